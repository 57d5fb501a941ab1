/**
 * Reading back the scanlines of a PNG for tests, written independently of lib/viz/png.ts from the
 * PNG specification (section 9, filter types 0-4): the filtered rows in, the pixels out.
 */

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** Inflated IDAT data of an 8-bit, non-interlaced PNG -> pixels [height, width * bpp], and the filter type of each row. */
export function unfilterScanlines(
  raw: Uint8Array,
  width: number,
  height: number,
  bpp: number,
): { pixels: Uint8Array; filters: number[] } {
  const stride = width * bpp;
  if (raw.length !== (stride + 1) * height)
    throw new Error(`unfilterScanlines: ${raw.length} bytes, expected ${(stride + 1) * height}`);
  const pixels = new Uint8Array(stride * height);
  const filters: number[] = [];
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    filters.push(f);
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x];
      const a = x >= bpp ? pixels[y * stride + x - bpp] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? pixels[(y - 1) * stride + x - bpp] : 0;
      let pred: number;
      switch (f) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = b;
          break;
        case 3:
          pred = Math.floor((a + b) / 2);
          break;
        case 4:
          pred = paeth(a, b, c);
          break;
        default:
          throw new Error(`unfilterScanlines: row ${y} has filter type ${f}`);
      }
      pixels[y * stride + x] = (v + pred) % 256;
    }
  }
  return { pixels, filters };
}

/**
 * Minimal PNG encoder (8-bit greyscale, RGB or RGBA, no interlace) on Node's zlib,
 * following the PNG specification (W3C, 2nd edition): signature, IHDR, IDAT, IEND, CRC-32.
 */
import { deflateSync } from 'zlib';

/** Options of {@link encodePng}. */
export interface PngOptions {
  /** zlib compression level 0..9 (default 6). */
  level: number;
}

export const DEFAULT_PNG_OPTIONS: Readonly<PngOptions> = Object.freeze({ level: 6 });

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let crcTable: Uint32Array | null = null;
function crc32(buf: Uint8Array): number {
  if (crcTable == null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = crcTable[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** PNG colour type for 1, 3 or 4 channels. */
function colorType(channels: number): number {
  switch (channels) {
    case 1: return 0;
    case 3: return 2;
    case 4: return 6;
    default: throw new Error(`encodePng: channels must be 1, 3 or 4, got ${channels}`);
  }
}

/**
 * Encodes row-major, channel-last 8-bit pixels (`[H, W, C]`, C in {1, 3, 4}) as a PNG file.
 */
export function encodePng(
  pixels: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: number,
  options: Partial<PngOptions> = {},
): Buffer {
  const opts = { ...DEFAULT_PNG_OPTIONS, ...options };
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`encodePng: width and height must be positive integers, got ${width}x${height}`);
  }
  const ct = colorType(channels);
  const stride = width * channels;
  if (pixels.length !== stride * height) {
    throw new Error(`encodePng: expected ${stride * height} bytes for ${width}x${height}x${channels}, got ${pixels.length}`);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = ct;
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  // Each scanline is prefixed with filter type 0 (None): simple and plenty for small images.
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const idat = deflateSync(raw, { level: opts.level });
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

/** `data:image/png;base64,...` URI of a PNG buffer. */
export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}

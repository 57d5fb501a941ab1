/**
 * Image grids for notebooks: augmented views, and DINO attention maps overlaid on images
 * (as in facebookresearch/dino's visualize_attention.py, drawn as a colour overlay).
 * Output: one PNG of the whole grid (`image/png`), plus an HTML table with per-image PNGs
 * and labels when there are labels or a title.
 */
import { inspect } from 'util';
import { display, type MimeBundle } from './display';
import { encodePng, pngDataUri } from './png';
import { escapeHtml } from './render';
import { colorize } from './specs';

/** One image, row-major and channel-last ([H, W, C]). */
export interface ImageInput {
  /** Pixels, length height*width*channels: bytes 0..255 or floats. */
  data: ArrayLike<number>;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** 1 (grey, or colour-mapped with `colormap`), 3 (RGB) or 4 (RGBA, alpha ignored). */
  channels: number;
}

/** A single-channel map ([h, w], any positive size) drawn over an image, e.g. attention. */
export interface OverlayInput {
  /** Values, length height*width; normalised per map to 0..1. */
  data: ArrayLike<number>;
  /** Rows (upsampled to the image size by nearest neighbour). */
  height: number;
  /** Columns. */
  width: number;
}

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /** Images per row. */
  cols: number;
  /** Integer nearest-neighbour upscaling of the grid PNG (CIFAR's 32x32 is tiny). */
  scale: number;
  /** Pixels between images. */
  gap: number;
  /** Caption under each image ([] for none). */
  labels: readonly string[];
  /** Title above the grid ('' for none). */
  title: string;
  /**
   * Value range mapped to 0..255: 'auto' = 0..255 for Uint8 arrays, 0..1 for data inside
   * [0, 1], 0..255 for other integer data inside it, otherwise each image's own min..max
   * (e.g. mean/std-normalised tensors); 'minmax' = always each image's own min..max.
   */
  range: 'auto' | 'minmax' | [number, number];
  /** Vega colour scheme for single-channel images and overlays ('' = grey for images). */
  colormap: string;
  /** One overlay per image (same order), drawn with `overlayAlpha`. */
  overlays: readonly OverlayInput[];
  /** Opacity of the overlays. */
  overlayAlpha: number;
  /** Bits kept per colour channel in the PNGs (lib/viz/png.ts; 8 = lossless, 5 about halves photographs). */
  bits: number;
  /** Display in the notebook when running in tslab. */
  display: boolean;
}

export const DEFAULT_IMAGE_GRID_OPTIONS: Readonly<ImageGridOptions> = Object.freeze({
  cols: 8,
  scale: 2,
  gap: 2,
  labels: [],
  title: '',
  range: 'auto' as const,
  colormap: '',
  overlays: [],
  overlayAlpha: 0.5,
  bits: 8,
  display: true,
});

/** What {@link imageGrid} produced. */
export interface ImageGridResult {
  /** PNG file of the whole grid. */
  png: Buffer;
  /** Grid PNG size in pixels. */
  width: number;
  /** See width. */
  height: number;
  /** The displayed mime bundle. */
  bundle: MimeBundle;
  /** Whether it reached a notebook. */
  shown: boolean;
}

function checkImage(img: ImageInput, k: number): void {
  const { data, height, width, channels } = img;
  if (![1, 3, 4].includes(channels))
    throw new Error(`imageGrid: image ${k} has ${channels} channels, expected 1, 3 or 4`);
  if (!(height > 0 && width > 0) || data == null || data.length !== height * width * channels) {
    throw new Error(`imageGrid: image ${k} has ${data?.length} values, expected ${height}x${width}x${channels}`);
  }
}

/** Maps an image to RGB bytes ([H, W, 3]) following `range` and `colormap`. */
export function toRgb8(img: ImageInput, range: ImageGridOptions['range'] = 'auto', colormap = ''): Uint8Array {
  checkImage(img, 0);
  const { data, height, width, channels } = img;
  let lo = Infinity;
  let hi = -Infinity;
  let integral = true;
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    if (integral && v !== Math.round(v)) integral = false;
  }
  if (lo === Infinity) lo = hi = 0;
  let r: [number, number];
  if (Array.isArray(range)) r = range as [number, number];
  else if (range === 'minmax') r = [lo, hi];
  else if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) r = [0, 255];
  else if (lo >= 0 && hi <= 1) r = [0, 1];
  else if (integral && lo >= 0 && hi <= 255) r = [0, 255];
  else r = [lo, hi];
  const n = height * width;
  if (channels === 1 && colormap) {
    return colorize(Array.from(data, Number), r, colormap, false);
  }
  const span = r[1] > r[0] ? r[1] - r[0] : 1;
  const to8 = (v: number): number =>
    Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round(((v - r[0]) / span) * 255))) : 0;
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      out[p * 3 + c] = to8(Number(data[p * channels + (channels === 1 ? 0 : c)]));
    }
  }
  return out;
}

/** Blends a colour-mapped overlay (normalised min..max, nearest-upsampled) onto RGB bytes in place. */
export function blendOverlay(
  rgb: Uint8Array,
  height: number,
  width: number,
  overlay: OverlayInput,
  alpha: number,
  colormap = 'inferno',
): void {
  if (overlay.data.length !== overlay.height * overlay.width) {
    throw new Error(
      `imageGrid: overlay has ${overlay.data.length} values, expected ${overlay.height}x${overlay.width}`,
    );
  }
  const up = new Float64Array(height * width);
  for (let y = 0; y < height; y++) {
    const oy = Math.min(overlay.height - 1, Math.floor((y * overlay.height) / height));
    for (let x = 0; x < width; x++) {
      const ox = Math.min(overlay.width - 1, Math.floor((x * overlay.width) / width));
      up[y * width + x] = Number(overlay.data[oy * overlay.width + ox]);
    }
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of up) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo === Infinity) return;
  const colors = colorize(up, [lo, hi], colormap, false);
  for (let i = 0; i < rgb.length; i++) rgb[i] = Math.round((1 - alpha) * rgb[i] + alpha * colors[i]);
}

/** Places RGB tiles on a white canvas, upscaled by an integer factor. */
function composeGrid(
  tiles: { rgb: Uint8Array; height: number; width: number }[],
  cols: number,
  scale: number,
  gap: number,
): { rgb: Uint8Array; width: number; height: number } {
  const cellW = Math.max(...tiles.map((t) => t.width)) * scale;
  const cellH = Math.max(...tiles.map((t) => t.height)) * scale;
  const c = Math.min(cols, tiles.length);
  const rows = Math.ceil(tiles.length / c);
  const width = c * cellW + (c - 1) * gap;
  const height = rows * cellH + (rows - 1) * gap;
  const out = new Uint8Array(width * height * 3).fill(255);
  tiles.forEach((t, k) => {
    const x0 = (k % c) * (cellW + gap);
    const y0 = Math.floor(k / c) * (cellH + gap);
    for (let y = 0; y < t.height * scale; y++) {
      const sy = Math.floor(y / scale);
      for (let x = 0; x < t.width * scale; x++) {
        const sx = Math.floor(x / scale);
        const src = (sy * t.width + sx) * 3;
        const dst = ((y0 + y) * width + x0 + x) * 3;
        out[dst] = t.rgb[src];
        out[dst + 1] = t.rgb[src + 1];
        out[dst + 2] = t.rgb[src + 2];
      }
    }
  });
  return { rgb: out, width, height };
}

/** Shows images in a grid (optionally with captions and overlays); returns the PNG and bundle. */
export function imageGrid(images: readonly ImageInput[], options: Partial<ImageGridOptions> = {}): ImageGridResult {
  const o = { ...DEFAULT_IMAGE_GRID_OPTIONS, ...options };
  if (images.length === 0) throw new Error('imageGrid: no images given');
  if (!Number.isInteger(o.cols) || o.cols < 1)
    throw new Error(`imageGrid: cols must be a positive integer, got ${o.cols}`);
  if (!Number.isInteger(o.scale) || o.scale < 1)
    throw new Error(`imageGrid: scale must be a positive integer, got ${o.scale}`);
  if (o.labels.length > 0 && o.labels.length !== images.length) {
    throw new Error(`imageGrid: ${o.labels.length} labels for ${images.length} images`);
  }
  if (o.overlays.length > 0 && o.overlays.length !== images.length) {
    throw new Error(`imageGrid: ${o.overlays.length} overlays for ${images.length} images`);
  }
  const tiles = images.map((img, k) => {
    checkImage(img, k);
    const rgb = toRgb8(img, o.range, o.colormap);
    if (o.overlays.length > 0)
      blendOverlay(rgb, img.height, img.width, o.overlays[k], o.overlayAlpha, o.colormap || 'inferno');
    return { rgb, height: img.height, width: img.width };
  });
  const grid = composeGrid(tiles, o.cols, o.scale, o.gap);
  const png = encodePng(grid.rgb, grid.width, grid.height, 3, { bits: o.bits });
  const bundle: MimeBundle = {
    'image/png': png.toString('base64'),
    'text/plain': `<image grid: ${images.length} images, ${grid.width}x${grid.height}>`,
  };
  if (o.labels.length > 0 || o.title) {
    // Per-image PNGs at native size, upscaled by CSS (pixelated), with captions.
    const cells = tiles.map((t, k) => {
      const uri = pngDataUri(encodePng(t.rgb, t.width, t.height, 3, { bits: o.bits }));
      const label =
        o.labels.length > 0
          ? `<div style="font:11px sans-serif;text-align:center;max-width:${t.width * o.scale}px;overflow-wrap:anywhere">${escapeHtml(o.labels[k])}</div>`
          : '';
      return `<td style="padding:${Math.ceil(o.gap / 2)}px;vertical-align:top"><img src="${uri}" width="${t.width * o.scale}" height="${t.height * o.scale}" style="image-rendering:pixelated;display:block">${label}</td>`;
    });
    const rows: string[] = [];
    for (let k = 0; k < cells.length; k += o.cols) rows.push(`<tr>${cells.slice(k, k + o.cols).join('')}</tr>`);
    const title = o.title ? `<div style="font:bold 13px sans-serif;margin:4px 0">${escapeHtml(o.title)}</div>` : '';
    bundle['text/html'] =
      `<div class="dinotwins-image-grid">${title}<table style="border-collapse:collapse">${rows.join('')}</table></div>`;
  }
  const shown = o.display ? display(bundle) : false;
  const result: ImageGridResult = { png, width: grid.width, height: grid.height, bundle, shown };
  Object.defineProperty(result, inspect.custom, {
    enumerable: false,
    value: () => `[image grid: ${images.length} images${shown ? ', shown' : ''}]`,
  });
  return result;
}

/** The part of a tf.Tensor that {@link imagesFromTensor} needs (keeps tfjs out of this module). */
export interface TensorLike {
  readonly shape: readonly number[];
  data(): Promise<ArrayLike<number>>;
}

/** Splits a [N, H, W, C] (or [H, W, C], or [N, H, W] single-channel) tensor into images. Uses `await data()`, which works on every backend. */
export async function imagesFromTensor(t: TensorLike): Promise<ImageInput[]> {
  const shape = t.shape;
  let n: number;
  let h: number;
  let w: number;
  let c: number;
  if (shape.length === 4) [n, h, w, c] = shape;
  else if (shape.length === 3 && [1, 3, 4].includes(shape[2])) [n, h, w, c] = [1, shape[0], shape[1], shape[2]];
  else if (shape.length === 3) [n, h, w, c] = [shape[0], shape[1], shape[2], 1];
  else throw new Error(`imagesFromTensor: expected [N, H, W, C], [H, W, C] or [N, H, W], got [${shape.join(', ')}]`);
  const data = await t.data();
  const size = h * w * c;
  const out: ImageInput[] = [];
  for (let k = 0; k < n; k++) {
    const sub = (data as { subarray?: (a: number, b: number) => ArrayLike<number> }).subarray;
    const part = sub
      ? sub.call(data, k * size, (k + 1) * size)
      : (Array.prototype.slice.call(data, k * size, (k + 1) * size) as number[]);
    out.push({ data: part, height: h, width: w, channels: c });
  }
  return out;
}

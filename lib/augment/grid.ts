/**
 * A picture of what a preset does: rows are images, columns the original followed by every view
 * (repeated with fresh seeds), as a raw RGB byte grid for a notebook to display.
 */
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from '../util/rng';
import { ImageBatch, RawImageSize, CIFAR10_IMAGE_SIZE, batchSize, toFloatImages } from './normalize';
import { ViewsConfig, makeViews } from './pipeline';

/** Options of `augmentGrid`. */
export interface AugmentGridOptions {
  /** How many images (rows), taken from the start of the batch. Default 4. */
  nImages: number;
  /** How many draws of the whole view list per image. Default 2. */
  repeats: number;
  /** Show the original image in the first column. Default true. */
  includeOriginal: boolean;
  /** Pixels of background between cells. Default 2. */
  gap: number;
  /** Background grey level 0..255. Default 255 (white). */
  background: number;
  /** Upscale factor (nearest neighbour) for small images. Default 1. */
  zoom: number;
}

export const AUGMENT_GRID_DEFAULTS: Readonly<AugmentGridOptions> = Object.freeze({
  nImages: 4,
  repeats: 2,
  includeOriginal: true,
  gap: 2,
  background: 255,
  zoom: 1,
});

/** Interleaved 8-bit RGB pixels, row-major [height, width, 3]. */
export interface ImageGrid {
  height: number;
  width: number;
  /** [height * width * 3] bytes. */
  rgb: Uint8Array;
  /** Rows and columns of cells, and each cell's side in pixels before zoom. */
  rows: number;
  cols: number;
  cell: number;
}

/**
 * Draws `repeats` sets of views (seeds deriveSeed(seed, r)) of the first `nImages` images and lays
 * them out in a grid; smaller views (DINO's locals) are centred in their cell. Views are shown
 * before normalisation. No tensors are left behind.
 */
export async function augmentGrid(
  images: ImageBatch,
  config: ViewsConfig,
  seed: number,
  opts: Partial<AugmentGridOptions> = {},
  size: RawImageSize = CIFAR10_IMAGE_SIZE,
): Promise<ImageGrid> {
  const o = { ...AUGMENT_GRID_DEFAULTS, ...opts };
  const total = batchSize(images, size);
  const n = Math.min(o.nImages, total);
  if (!(n >= 1 && Number.isInteger(o.repeats) && o.repeats >= 1 && Number.isInteger(o.zoom) && o.zoom >= 1)) {
    throw new Error(`augmentGrid: need nImages >= 1, integer repeats >= 1 and zoom >= 1, got ${JSON.stringify(o)}`);
  }
  const subset: ImageBatch =
    images instanceof Uint8Array
      ? images.subarray(0, n * size.height * size.width * 3)
      : tf.slice(images, [0, 0, 0, 0], [n, -1, -1, -1]);
  const cellsPerRow: { data: Float32Array; srcW: number; srcH: number }[][] = Array.from({ length: n }, () => []);
  try {
    const addCells = async (t: tf.Tensor4D) => {
      const [, hh, ww] = t.shape;
      const data = (await t.data()) as Float32Array;
      for (let i = 0; i < n; i++)
        cellsPerRow[i].push({ data: data.subarray(i * hh * ww * 3, (i + 1) * hh * ww * 3), srcH: hh, srcW: ww });
    };
    if (o.includeOriginal) {
      const orig = toFloatImages(subset, size);
      try {
        await addCells(orig);
      } finally {
        orig.dispose();
      }
    }
    const raw: ViewsConfig = { ...config, normalize: false };
    for (let r = 0; r < o.repeats; r++) {
      const views = makeViews(subset, raw, deriveSeed(seed, r), size);
      try {
        for (const v of views) await addCells(v);
      } finally {
        tf.dispose(views);
      }
    }
  } finally {
    if (!(images instanceof Uint8Array)) (subset as tf.Tensor).dispose();
  }
  const cols = cellsPerRow[0].length;
  const cell = Math.max(...cellsPerRow[0].map((c) => Math.max(c.srcH, c.srcW)));
  const side = cell * o.zoom;
  const height = n * side + (n + 1) * o.gap;
  const width = cols * side + (cols + 1) * o.gap;
  const rgb = new Uint8Array(height * width * 3).fill(o.background);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < cols; c++) {
      const { data, srcH, srcW } = cellsPerRow[i][c];
      const y0 = o.gap + i * (side + o.gap) + Math.floor((side - srcH * o.zoom) / 2);
      const x0 = o.gap + c * (side + o.gap) + Math.floor((side - srcW * o.zoom) / 2);
      for (let y = 0; y < srcH * o.zoom; y++) {
        for (let x = 0; x < srcW * o.zoom; x++) {
          const src = (Math.floor(y / o.zoom) * srcW + Math.floor(x / o.zoom)) * 3;
          const dst = ((y0 + y) * width + x0 + x) * 3;
          for (let k = 0; k < 3; k++) rgb[dst + k] = Math.round(Math.min(1, Math.max(0, data[src + k])) * 255);
        }
      }
    }
  }
  return { height, width, rgb, rows: n, cols, cell };
}

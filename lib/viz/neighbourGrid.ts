/**
 * Neighbour grids: for a few fixed query images, the k nearest training images under one
 * encoder's features (cosine, lib/eval/neighbours.ts), one row per query, the query first.
 * Captions give each image's class; a neighbour of another class than its query is marked ✗.
 * Images without labels (an unlabelled image folder) are captioned by their row instead.
 * The quickest look at what an encoder groups together.
 */
import { imageGrid, type ImageGridOptions, type ImageGridResult, type ImageInput } from './images';

/** Images, uint8 NHWC [n, height, width, 3], with their labels when they have any. */
export interface LabelledImages {
  images: Uint8Array;
  /** Absent without labels: captions then name the row (query #i, bank #j). */
  labels?: ArrayLike<number>;
  n: number;
}

export interface NeighbourGridOptions {
  title: string;
  /** Class names for the captions (not read without labels). */
  classNames: readonly string[];
  /** Image height and width (default 32, CIFAR-10; an image folder's `data.imageSize`). */
  size: number;
  /** Neighbours shown per query: the nearest `show` of the k given (0 = all k). */
  show: number;
  /** Integer upscaling of the grid. */
  scale: number;
  /** Bits kept per colour channel (lib/viz/png.ts): 4 keeps CIFAR thumbnails at 38 % of their lossless size and looks the same; 8 is lossless. */
  bits: number;
  /** Display in the notebook when running in tslab. */
  display: boolean;
}

export const DEFAULT_NEIGHBOUR_GRID_OPTIONS: Readonly<Omit<NeighbourGridOptions, 'classNames'>> = Object.freeze({
  title: '',
  size: 32,
  show: 0,
  scale: 2,
  bits: 4,
  display: true,
});

function image(set: LabelledImages, i: number, size: number): ImageInput {
  const per = size * size * 3;
  return { data: set.images.subarray(i * per, (i + 1) * per), height: size, width: size, channels: 3 };
}

/**
 * queries: the query images and which of them to show (`rows`, indices into `queries`);
 * neighbours: bank indices [queries.n * k] (nearest first) from nearestNeighbours; bank: the
 * training images they index. Shows rows x (1 + show) images.
 */
export function neighbourGrid(
  queries: LabelledImages,
  rows: readonly number[],
  bank: LabelledImages,
  neighbours: { indices: Int32Array; k: number },
  options: Partial<NeighbourGridOptions> & { classNames: readonly string[] },
): ImageGridResult {
  const o = { ...DEFAULT_NEIGHBOUR_GRID_OPTIONS, ...options };
  const { indices, k } = neighbours;
  if (rows.length === 0) throw new Error('neighbourGrid: no query rows');
  if (!Number.isInteger(o.show) || o.show < 0 || o.show > k)
    throw new Error(`neighbourGrid: show must be an integer in [0, ${k}] (0 = all), got ${o.show}`);
  const show = o.show === 0 ? k : o.show;
  if (indices.length !== queries.n * k)
    throw new Error(`neighbourGrid: ${indices.length} neighbour indices, expected ${queries.n} queries x k (${k})`);
  for (const r of rows)
    if (!(Number.isInteger(r) && r >= 0 && r < queries.n))
      throw new Error(`neighbourGrid: query row ${r} is not in [0, ${queries.n})`);
  const per = o.size * o.size * 3;
  if (queries.images.length !== queries.n * per || bank.images.length !== bank.n * per)
    throw new Error(
      `neighbourGrid: images must be ${o.size}x${o.size}x3 uint8 (queries ${queries.images.length} bytes for ${queries.n}, bank ${bank.images.length} for ${bank.n})`,
    );
  const name = (l: number): string => o.classNames[l] ?? String(l);
  const ql = queries.labels;
  const bl = bank.labels;
  if ((ql === undefined) !== (bl === undefined))
    throw new Error('neighbourGrid: the queries and the bank must both have labels, or neither');
  const images: ImageInput[] = [];
  const labels: string[] = [];
  for (const r of rows) {
    images.push(image(queries, r, o.size));
    labels.push(ql ? `query: ${name(ql[r])}` : `query #${r}`);
    for (let j = 0; j < show; j++) {
      const b = indices[r * k + j];
      if (!(b >= 0 && b < bank.n))
        throw new Error(`neighbourGrid: neighbour ${j} of query ${r} is bank row ${b}, outside [0, ${bank.n})`);
      images.push(image(bank, b, o.size));
      labels.push(!ql || !bl ? `#${b}` : bl[b] === ql[r] ? name(bl[b]) : `${name(bl[b])} ✗`);
    }
  }
  const grid: Partial<ImageGridOptions> = {
    cols: show + 1,
    scale: o.scale,
    labels,
    title: o.title,
    display: o.display,
    range: [0, 255],
    bits: o.bits,
  };
  return imageGrid(images, grid);
}

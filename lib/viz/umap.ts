/**
 * Seeded 2-D UMAP layouts (McInnes et al. 2018, through PAIR-code's umap-js): the same features,
 * options and seed give the same layout, bit for bit. Rows are L2-normalised first, so the
 * layout follows the cosine geometry the kNN classifier uses. The optimisation runs epoch by
 * epoch with a progress callback and yields to the event loop between batches of epochs, so a
 * notebook's progress bar updates while it runs.
 */
import { UMAP } from 'umap-js';
import { Rng } from '../util/rng';

export interface UmapOptions {
  /** Seed of every random choice (neighbour-descent trees, initial layout, negative samples). */
  seed: number;
  /** Neighbours of the fuzzy graph (umap-js default 15); clamped to n - 1. */
  nNeighbors: number;
  /** Minimum distance between points in the layout (default 0.1). */
  minDist: number;
  /** Optimisation epochs; 0 = umap-js' choice (500 up to 2,500 points, down to 200 above 7,500). */
  nEpochs: number;
  /** Called with (epochs done, epochs in all) every `progressEvery` epochs and at the end. */
  onProgress?: (done: number, total: number) => void;
  /** Epochs between progress calls (and event-loop yields). */
  progressEvery: number;
}

export const DEFAULT_UMAP_OPTIONS: Readonly<Omit<UmapOptions, 'onProgress'>> = Object.freeze({
  seed: 0,
  nNeighbors: 15,
  minDist: 0.1,
  nEpochs: 0,
  progressEvery: 25,
});

/** features: n rows of `dim` values, row-major. Returns the layout [n * 2] (x, y per row). */
export async function umapLayout(
  features: Float32Array,
  dim: number,
  options: Partial<UmapOptions> = {},
): Promise<Float32Array> {
  const o = { ...DEFAULT_UMAP_OPTIONS, ...options };
  if (!Number.isInteger(dim) || dim < 1 || features.length % dim !== 0)
    throw new Error(`umapLayout: ${features.length} values are not whole rows of dim ${dim}`);
  const n = features.length / dim;
  if (n < 3) throw new Error(`umapLayout: needs at least 3 rows, got ${n}`);
  if (!Number.isInteger(o.nNeighbors) || o.nNeighbors < 2)
    throw new Error(`umapLayout: nNeighbors must be an integer >= 2, got ${o.nNeighbors}`);
  if (!(o.minDist >= 0)) throw new Error(`umapLayout: minDist must be >= 0, got ${o.minDist}`);
  if (!Number.isInteger(o.nEpochs) || o.nEpochs < 0)
    throw new Error(`umapLayout: nEpochs must be a non-negative integer (0 = automatic), got ${o.nEpochs}`);
  if (!Number.isInteger(o.progressEvery) || o.progressEvery < 1)
    throw new Error(`umapLayout: progressEvery must be a positive integer, got ${o.progressEvery}`);
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const r = Array.from(features.subarray(i * dim, (i + 1) * dim));
    const norm = Math.sqrt(r.reduce((s, v) => s + v * v, 0));
    if (!Number.isFinite(norm)) throw new Error(`umapLayout: row ${i} has a non-finite value`);
    rows.push(norm > 1e-12 ? r.map((v) => v / norm) : r);
  }
  const rng = new Rng(o.seed);
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.min(o.nNeighbors, n - 1),
    minDist: o.minDist,
    ...(o.nEpochs > 0 ? { nEpochs: o.nEpochs } : {}),
    random: () => rng.next(),
  });
  const total = umap.initializeFit(rows);
  for (let e = 0; e < total; e++) {
    umap.step();
    if ((e + 1) % o.progressEvery === 0 || e + 1 === total) {
      o.onProgress?.(e + 1, total);
      await new Promise((r) => setImmediate(r));
    }
  }
  const out = new Float32Array(n * 2);
  umap.getEmbedding().forEach((p, i) => {
    out[i * 2] = p[0];
    out[i * 2 + 1] = p[1];
  });
  return out;
}

/**
 * What finished runs learned, image by image: each run's encoder (frozen, inference mode) embeds a
 * training bank and a sample of test images; the sample gets a seeded 2-D UMAP layout, a weighted
 * kNN prediction against the bank (lib/eval/knn.ts, the protocol of the kNN monitor) and its nearest
 * training images (lib/eval/neighbours.ts). lib/viz/embeddingExplorer.ts and lib/viz/neighbourGrid.ts show them.
 * Without labels (an unlabelled image folder) the layouts and the neighbours are computed all the same;
 * the kNN predictions and the class scores are left out.
 */
import * as tf from '@tensorflow/tfjs';
import { loadBackbone } from './experiment';
import { extractFeatures, imageSizeOf } from '../eval/features';
import { knnPredict, KNN_DEFAULTS } from '../eval/knn';
import { nearestNeighbours } from '../eval/neighbours';
import { RunRecord } from '../train/runRecord';
import { umapLayout, type UmapOptions } from '../viz/umap';
import type { EmbeddingPanel } from '../viz/embeddingExplorer';

/** Images (uint8 NHWC [n, height, width, 3], default 32 x 32) with their labels when they have any, e.g. a Subset from lib/data or an ExperimentData split. */
export interface LabelledImageSet {
  images: Uint8Array;
  /** Absent for an unlabelled image folder: then no kNN predictions or class scores. */
  labels?: ArrayLike<number>;
  n: number;
  height?: number;
  width?: number;
}

/** One run's view of the sample: an explorer panel, plus what the grids and tables need. */
export interface RunEmbedding extends EmbeddingPanel {
  /** kNN prediction per sample image (empty without labels). */
  knnPred: Int32Array;
  /** Labels of each image's nearest training images, [n * k] (empty without labels). */
  neighbourLabels: Int32Array;
  runId: string;
  method: string;
  /** Feature width of the encoder. */
  dim: number;
  /** Nearest bank rows of each sample image, [n * k], nearest first. */
  neighbours: Int32Array;
  /** kNN top-1 (%) on the sample (null without labels). */
  knnTop1: number | null;
  /** Share (%) of the kept nearest training images that have their sample image's class (null without labels). */
  sameClassNeighbours: number | null;
  /** Seconds spent (features, kNN, UMAP). */
  seconds: number;
}

export interface EmbedRunsOptions {
  /** Classes the labels range over (0 without labels). */
  numClasses: number;
  /** UMAP settings; the seed makes the layouts reproducible. */
  umap: Partial<Omit<UmapOptions, 'onProgress'>>;
  /** kNN vote: neighbours and temperature (defaults: the project's kNN, k 200, T 0.1; k capped at the bank size). */
  knn: { k: number; temperature: number };
  /** Nearest training images kept per sample image (for hover labels and neighbour grids). */
  neighbours: number;
  /** Progress: (stage label, done, total) per stage of each run. */
  onProgress?: (label: string, done: number, total: number) => void;
}

export const DEFAULT_EMBED_RUNS_OPTIONS: Readonly<Omit<EmbedRunsOptions, 'numClasses' | 'onProgress'>> = Object.freeze({
  umap: {},
  knn: { k: KNN_DEFAULTS.k, temperature: KNN_DEFAULTS.temperature },
  neighbours: 10,
});

/** The latest finished run of each wanted method (baselines count by their method, e.g. 'random-init'), with the same backbone. */
export function pickRuns(
  records: readonly RunRecord[],
  methods: readonly string[],
  backbone?: unknown,
): { chosen: RunRecord[]; missing: string[] } {
  const same = (r: RunRecord): boolean =>
    backbone === undefined ||
    JSON.stringify((r.config as { backbone?: unknown }).backbone) === JSON.stringify(backbone);
  const chosen: RunRecord[] = [];
  const missing: string[] = [];
  for (const m of methods) {
    const runs = records
      .filter((r) => r.method === m && r.status === 'done' && same(r))
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    if (runs.length === 0) missing.push(m);
    else chosen.push(runs[runs.length - 1]);
  }
  return { chosen, missing };
}

/** The kNN prediction of each sample image against the bank, and the labels of its nearest bank images, with the two scores. */
async function classScores(
  fb: Float32Array,
  bankLabels: ArrayLike<number>,
  fs: Float32Array,
  sampleLabels: ArrayLike<number>,
  nearest: Int32Array,
  dim: number,
  o: Pick<EmbedRunsOptions, 'knn' | 'numClasses' | 'neighbours'>,
): Promise<Pick<RunEmbedding, 'knnPred' | 'neighbourLabels' | 'knnTop1' | 'sameClassNeighbours'>> {
  const nBank = fb.length / dim;
  const nSample = fs.length / dim;
  const tb = tf.tensor2d(fb, [nBank, dim]);
  const ts = tf.tensor2d(fs, [nSample, dim]);
  let pred: number[];
  try {
    pred = await knnPredict(tb, Array.from(bankLabels), ts, {
      k: Math.min(o.knn.k, nBank),
      temperature: o.knn.temperature,
      numClasses: o.numClasses,
    });
  } finally {
    tf.dispose([tb, ts]);
  }
  const neighbourLabels = Int32Array.from(nearest, (b) => bankLabels[b]);
  let correct = 0;
  for (let i = 0; i < nSample; i++) if (pred[i] === sampleLabels[i]) correct++;
  let same = 0;
  neighbourLabels.forEach((l, j) => {
    if (l === sampleLabels[Math.floor(j / o.neighbours)]) same++;
  });
  return {
    knnPred: Int32Array.from(pred),
    neighbourLabels,
    knnTop1: (100 * correct) / nSample,
    sameClassNeighbours: (100 * same) / neighbourLabels.length,
  };
}

/** Embeds `bank` and `sample` with each run's encoder and lays the sample out (kNN too when both have labels). Runs one encoder at a time; disposes everything it creates. */
export async function embedRuns(
  records: readonly RunRecord[],
  bank: LabelledImageSet,
  sample: LabelledImageSet,
  options: Partial<EmbedRunsOptions> & { numClasses: number },
): Promise<RunEmbedding[]> {
  const o = { ...DEFAULT_EMBED_RUNS_OPTIONS, ...options };
  const bankLabels = bank.labels;
  const sampleLabels = sample.labels;
  const labelled = bankLabels !== undefined && sampleLabels !== undefined;
  if ((bankLabels === undefined) !== (sampleLabels === undefined))
    throw new Error('embedRuns: the bank and the sample must both have labels, or neither');
  if (!Number.isInteger(o.neighbours) || o.neighbours < 1 || o.neighbours > bank.n)
    throw new Error(
      `embedRuns: neighbours must be an integer in [1, ${bank.n}] (the bank's size), got ${o.neighbours}`,
    );
  const labelCount = new Map<string, number>();
  for (const r of records) labelCount.set(r.method, (labelCount.get(r.method) ?? 0) + 1);
  const out: RunEmbedding[] = [];
  for (const record of records) {
    const t0 = Date.now();
    const label = labelCount.get(record.method)! > 1 ? `${record.method} (${record.id})` : record.method;
    const { backbone, params } = loadBackbone(record);
    let fb: Float32Array;
    let fs: Float32Array;
    try {
      fb = await extractFeatures(backbone, params, bank.images, bank.n, {
        size: imageSizeOf(bank),
        onProgress: (d, t) => o.onProgress?.(`${label}: features of the bank`, d, t),
      });
      fs = await extractFeatures(backbone, params, sample.images, sample.n, {
        size: imageSizeOf(sample),
        onProgress: (d, t) => o.onProgress?.(`${label}: features of the sample`, d, t),
      });
    } finally {
      params.dispose();
    }
    const dim = backbone.featureDim;
    const nb = await nearestNeighbours(fb, fs, dim, o.neighbours);
    const xy = await umapLayout(fs, dim, { ...o.umap, onProgress: (d, t) => o.onProgress?.(`${label}: UMAP`, d, t) });
    const scores = labelled
      ? await classScores(fb, bankLabels, fs, sampleLabels, nb.indices, dim, o)
      : { knnPred: new Int32Array(0), neighbourLabels: new Int32Array(0), knnTop1: null, sameClassNeighbours: null };
    out.push({
      label,
      runId: record.id,
      method: record.method,
      dim,
      xy,
      ...scores,
      k: o.neighbours,
      neighbours: nb.indices,
      seconds: (Date.now() - t0) / 1000,
    });
  }
  return out;
}

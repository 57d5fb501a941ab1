/**
 * kNN monitor for pretraining (as DINO's eval_knn, used every few epochs): features of a labelled
 * bank (the training subset) and of the validation split, from the frozen backbone in inference
 * mode, then weighted kNN. Validation only: the test set is never used during training.
 */
import * as tf from '@tensorflow/tfjs';
import { extractFeatures } from './features';
import { knnAccuracy, KNN_DEFAULTS } from './knn';
import { effectiveRank, embeddingStd } from './monitors';
import { EpochInfo } from '../train/trainer';

export interface LabelledImages {
  /** uint8 NHWC [n, 32, 32, 3]. */
  images: Uint8Array;
  labels: ArrayLike<number>;
  n: number;
}

export interface KnnMonitorOptions {
  bank: LabelledImages;
  val: LabelledImages;
  /** Run every N epochs (and always after the last epoch). Default 1. */
  every?: number;
  k?: number;
  temperature?: number;
  numClasses?: number;
}

/** Evaluates kNN top-1 (%) on `val`, plus effective rank and normalised std of the bank features. */
export async function knnEvaluate(info: Pick<EpochInfo, 'model'>, opts: KnnMonitorOptions): Promise<Record<string, number>> {
  const m = info.model;
  const dim = m.backbone.featureDim;
  const bank = await extractFeatures(m.backbone, m.student, opts.bank.images, opts.bank.n);
  const val = await extractFeatures(m.backbone, m.student, opts.val.images, opts.val.n);
  const tb = tf.tensor2d(bank, [opts.bank.n, dim]);
  const tv = tf.tensor2d(val, [opts.val.n, dim]);
  try {
    const k = Math.min(opts.k ?? KNN_DEFAULTS.k, opts.bank.n);
    const acc = await knnAccuracy(tb, Array.from(opts.bank.labels), tv, Array.from(opts.val.labels), { k, temperature: opts.temperature ?? KNN_DEFAULTS.temperature, numClasses: opts.numClasses ?? 10 });
    return { knnTop1: 100 * acc, effectiveRank: await effectiveRank(tb), featureStd: await embeddingStd(tb) };
  } finally {
    tb.dispose();
    tv.dispose();
  }
}

/** An onEpochEnd callback that runs `knnEvaluate` every `every` epochs. */
export function knnMonitor(opts: KnnMonitorOptions): (info: EpochInfo) => Promise<Record<string, number> | void> {
  const every = opts.every ?? 1;
  return async (info) => {
    if ((info.epoch + 1) % every !== 0 && info.epoch + 1 !== info.totalEpochs) return;
    return knnEvaluate(info, opts);
  };
}

/**
 * kNN monitor for pretraining (as DINO's eval_knn, used every few epochs): features of a labelled
 * bank (the training subset) and of the validation split, from the frozen backbone in inference
 * mode, then weighted kNN. Validation only: the test set is never used during training. Without
 * labels (an unlabelled image folder) the label-free monitors still run: the effective rank and the
 * feature std of the bank (`featureMonitor`).
 */
import * as tf from '@tensorflow/tfjs';
import { extractFeatures, imageSizeOf } from './features';
import { knnAccuracy, KNN_DEFAULTS } from './knn';
import { effectiveRank, embeddingStd } from './collapseMonitors';
import { EpochInfo } from '../train/trainer';

/** Images without labels: uint8 NHWC [n, height, width, 3] (default 32 x 32). */
export interface ImageSet {
  images: Uint8Array;
  n: number;
  height?: number;
  width?: number;
}

export interface LabelledImages extends ImageSet {
  labels: ArrayLike<number>;
  /** Classes the labels range over (image folders and subsets set it; CIFAR-10's may leave it out: 10). */
  numClasses?: number;
}

export interface KnnMonitorOptions {
  bank: LabelledImages;
  val: LabelledImages;
  /** Run every N epochs (and always after the last epoch). Default 1. */
  every?: number;
  k?: number;
  temperature?: number;
  /** Classes the labels range over. Default: the bank's `numClasses` when it has one, else 10 (CIFAR-10). */
  numClasses?: number;
}

/** Effective rank and normalised std of the features of `bank` [n, dim]. */
async function spread(tb: tf.Tensor2D): Promise<{ effectiveRank: number; featureStd: number }> {
  return { effectiveRank: await effectiveRank(tb), featureStd: await embeddingStd(tb) };
}

/** Evaluates kNN top-1 (%) on `val`, plus effective rank and normalised std of the bank features. */
export async function knnEvaluate(
  info: Pick<EpochInfo, 'model'>,
  opts: KnnMonitorOptions,
): Promise<Record<string, number>> {
  const m = info.model;
  const dim = m.backbone.featureDim;
  const bank = await extractFeatures(m.backbone, m.student, opts.bank.images, opts.bank.n, {
    size: imageSizeOf(opts.bank),
  });
  const val = await extractFeatures(m.backbone, m.student, opts.val.images, opts.val.n, {
    size: imageSizeOf(opts.val),
  });
  const tb = tf.tensor2d(bank, [opts.bank.n, dim]);
  const tv = tf.tensor2d(val, [opts.val.n, dim]);
  try {
    const k = Math.min(opts.k ?? KNN_DEFAULTS.k, opts.bank.n);
    const numClasses = opts.numClasses ?? opts.bank.numClasses ?? 10;
    const acc = await knnAccuracy(tb, Array.from(opts.bank.labels), tv, Array.from(opts.val.labels), {
      k,
      temperature: opts.temperature ?? KNN_DEFAULTS.temperature,
      numClasses,
    });
    return { knnTop1: 100 * acc, ...(await spread(tb)) };
  } finally {
    tb.dispose();
    tv.dispose();
  }
}

/** The label-free monitors of the encoder on `bank`: effective rank and normalised feature std. */
export async function featureEvaluate(info: Pick<EpochInfo, 'model'>, bank: ImageSet): Promise<Record<string, number>> {
  const m = info.model;
  const f = await extractFeatures(m.backbone, m.student, bank.images, bank.n, { size: imageSizeOf(bank) });
  const tb = tf.tensor2d(f, [bank.n, m.backbone.featureDim]);
  try {
    return await spread(tb);
  } finally {
    tb.dispose();
  }
}

/** Runs `evaluate` every `every` epochs and after the last. */
function everyEpochs(
  every: number,
  evaluate: (info: EpochInfo) => Promise<Record<string, number>>,
): (info: EpochInfo) => Promise<Record<string, number> | void> {
  return async (info) => {
    if ((info.epoch + 1) % every !== 0 && info.epoch + 1 !== info.totalEpochs) return;
    return evaluate(info);
  };
}

/** An onEpochEnd callback that runs `knnEvaluate` every `every` epochs. */
export function knnMonitor(opts: KnnMonitorOptions): (info: EpochInfo) => Promise<Record<string, number> | void> {
  return everyEpochs(opts.every ?? 1, (info) => knnEvaluate(info, opts));
}

/** An onEpochEnd callback for unlabelled data: `featureEvaluate` on `bank` every `every` epochs (default 1). */
export function featureMonitor(opts: {
  bank: ImageSet;
  every?: number;
}): (info: EpochInfo) => Promise<Record<string, number> | void> {
  return everyEpochs(opts.every ?? 1, (info) => featureEvaluate(info, opts.bank));
}

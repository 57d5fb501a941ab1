/**
 * DINO-Twins loss (the original project, ArthurZucker/DeepLearningProject): the DINO loss plus β times the mean
 * Barlow Twins loss over ordered pairs of views of a projection of the student outputs.
 */
import * as tf from '@tensorflow/tfjs';
import { barlowPairMean } from './barlow';
import { dinoLoss, DinoTemps } from './dino';

export interface DinoTwinsOptions extends DinoTemps {
  /** Off-diagonal weight λ of the Barlow Twins term (lib/config/config.ts barlow.lambda). */
  lambda: number;
  /** Weight β of the Barlow Twins term in the total (lib/config/config.ts twins.beta). */
  beta: number;
}

export interface DinoTwinsLoss {
  /** dino + β·barlow (the differentiated loss). */
  total: tf.Scalar;
  /** The DINO term. */
  dino: tf.Scalar;
  /** The Barlow Twins pair mean (before β). */
  barlow: tf.Scalar;
}

/**
 * student [V, B, K], teacher [2, B, K], center [K], projections [V, B, D] -> {total, dino, barlow}. The three scalars
 * are new tensors owned by the caller.
 */
export function dinoTwinsLoss(
  student: tf.Tensor3D,
  teacher: tf.Tensor3D,
  center: tf.Tensor1D,
  projections: tf.Tensor3D,
  opts: DinoTwinsOptions,
): DinoTwinsLoss {
  const { lambda, beta } = opts;
  if (!Number.isFinite(beta) || beta < 0)
    throw new Error(`dinoTwinsLoss: beta must be a finite number >= 0, got ${beta}`);
  if (projections.rank !== 3 || projections.shape[0] !== student.shape[0]) {
    throw new Error(
      `dinoTwinsLoss: expected projections [${student.shape[0]}, B, D] (one per student view), got shape [${projections.shape}]`,
    );
  }
  return tf.tidy(() => {
    const dino = dinoLoss(student, teacher, center, opts);
    const barlow = barlowPairMean(projections, lambda);
    return { total: tf.add(dino, tf.mul(barlow, beta)) as tf.Scalar, dino, barlow };
  });
}

/** What a method contributes to one training step (lib/train/step.ts runs it). */
import * as tf from '@tensorflow/tfjs';
import { SslModel } from './model';
import { StepSchedule } from '../schedules';

export type { StepSchedule } from '../schedules';

export interface StepLoss {
  /** The differentiated loss. */
  total: tf.Scalar;
  /** Named scalars for logging: loss terms and cheap in-graph collapse monitors. */
  parts: Record<string, tf.Scalar>;
}

export interface MethodStep {
  /**
   * Teacher outputs for the global views [2, B, K], computed outside the gradient tape (so no
   * gradient reaches the teacher). Undefined for methods without a teacher. Caller disposes.
   */
  teacherOutputs?(m: SslModel, views: tf.Tensor4D[], s: StepSchedule): tf.Tensor3D;
  /** Student loss, called inside the gradient tape. */
  loss(m: SslModel, views: tf.Tensor4D[], teacher: tf.Tensor3D | undefined, s: StepSchedule): StepLoss;
  /** Student parameters the optimizer must leave alone this step (DINO's last layer in its first epochs). */
  frozen?(m: SslModel, s: StepSchedule): ReadonlySet<string> | undefined;
  /** State updates after the optimizer step (EMA teacher, center). */
  afterStep?(m: SslModel, teacher: tf.Tensor3D | undefined, s: StepSchedule): void;
}

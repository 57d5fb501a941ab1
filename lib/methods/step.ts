/** What a method contributes to one training step, and the per-step schedule values it reads. */
import * as tf from '@tensorflow/tfjs';
import { SslModel } from './model';

/** Schedule values for one step (all pure functions of the step; see lib/train/schedule.ts). */
export interface StepSchedule {
  step: number;
  epoch: number;
  lr: number;
  weightDecay: number;
  /** EMA momentum for the teacher. */
  emaMomentum: number;
  /** Teacher temperature after the ablation switches. */
  teacherTemp: number;
  /** Student temperature. */
  studentTemp: number;
}

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
  teacherOutputs?(m: SslModel, views: tf.Tensor4D[]): tf.Tensor3D;
  /** Student loss, called inside the gradient tape. */
  loss(m: SslModel, views: tf.Tensor4D[], teacher: tf.Tensor3D | undefined, s: StepSchedule): StepLoss;
  /** State updates after the optimizer step (EMA teacher, center). */
  afterStep?(m: SslModel, teacher: tf.Tensor3D | undefined, s: StepSchedule): void;
}

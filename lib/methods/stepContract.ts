/**
 * What a method contributes to one training step (lib/train/trainStep.ts runs it). A method builds its
 * step once, in its `build` (lib/methods/method.ts), over its own networks and with its knobs read
 * from the config there: the step reads no config, only the step's schedule.
 */
import * as tf from '@tensorflow/tfjs';
import { StepSchedule } from './schedules';

export type { StepSchedule } from './schedules';

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
  teacherOutputs?(views: tf.Tensor4D[], s: StepSchedule): tf.Tensor3D;
  /** Student loss, called inside the gradient tape. */
  loss(views: tf.Tensor4D[], teacher: tf.Tensor3D | undefined, s: StepSchedule): StepLoss;
  /** Student parameters the optimizer must leave alone this step (DINO's last layer in its first epochs). */
  frozen?(s: StepSchedule): ReadonlySet<string> | undefined;
  /** State updates after the optimizer step (EMA teacher, center). */
  afterStep?(teacher: tf.Tensor3D | undefined, s: StepSchedule): void;
}

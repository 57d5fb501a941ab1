/**
 * One training step, the only one: the trainer, the benchmarks and the tests all run this.
 *   teacher outputs (outside the tape) -> student loss and gradients -> optimizer update (with the
 *   method's frozen parameters) -> the method's state updates (EMA teacher, center).
 * Returns the step's scalars (loss, gradient norm, the method's logged parts) as tensors the caller
 * owns: read them back lazily, since a read forces a device sync. Nothing else outlives the step.
 */
import * as tf from '@tensorflow/tfjs';
import { SslModel } from '../methods/method';
import { StepSchedule } from '../methods/schedules';
import { Optimizer } from './optimizers';

export interface StepOutputs {
  /** The differentiated loss. */
  loss: tf.Scalar;
  /** Global norm of the updated parameters' gradients before clipping (frozen ones left out). */
  gradNorm: tf.Scalar;
  /** The method's logged scalars (loss terms, collapse monitors), each its own tensor. */
  parts: Record<string, tf.Scalar>;
}

export type TrainStep = (views: tf.Tensor4D[], s: StepSchedule) => StepOutputs;

/** The step function of `model` with optimizer `opt`. `views` stay the caller's (not disposed). */
export function makeTrainStep(model: SslModel, opt: Optimizer): TrainStep {
  const method = model.step;
  const byVarName = new Map<string, string>();
  const trainable = model.student.trainableNames().map((name) => {
    const v = model.student.get(name);
    byVarName.set(v.name, name);
    return v;
  });
  return (views, s) => {
    const teacherOut = method.teacherOutputs?.(views, s);
    let parts: Record<string, tf.Scalar> = {};
    const { value, grads } = tf.variableGrads(() => {
      const r = method.loss(views, teacherOut, s);
      parts = Object.fromEntries(Object.entries(r.parts).map(([k, t]) => [k, tf.keep(t)]));
      return r.total;
    }, trainable);
    const named = new Map<string, tf.Tensor>();
    for (const [vn, g] of Object.entries(grads)) named.set(byVarName.get(vn)!, g);
    const gradNorm = opt.apply(model.student, named, s.lr, { weightDecay: s.weightDecay, frozen: method.frozen?.(s) });
    method.afterStep?.(teacherOut, s);
    tf.dispose(Object.values(grads));
    teacherOut?.dispose();
    // A method may log its total as a part too (the same tensor): give each entry its own handle.
    for (const k of Object.keys(parts)) if (parts[k] === value) parts[k] = tf.clone(value);
    return { loss: value, gradNorm, parts };
  };
}

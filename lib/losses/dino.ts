/**
 * DINO loss and center (Caron et al. 2021), following facebookresearch/dino main_dino.py DINOLoss: cross-entropy
 * between the centred, sharpened teacher probabilities of each global view and the student's log-probabilities of
 * every other view, averaged over those pairs; the center is an EMA of the mean teacher output.
 */
import * as tf from '@tensorflow/tfjs';
import { stopGradient } from '../nn/layers';

/** Temperatures of one DINO loss evaluation (the teacher's is scheduled by the caller: `dinoTemps` in lib/methods/dino.ts). */
export interface DinoTemps {
  /** Student softmax temperature τₛ (DINO: 0.1). */
  studentTemp: number;
  /** Teacher softmax temperature τₜ (DINO: warmed up from 0.04 over the first 30 epochs to its final value, 0.07 by default, 0.04 if training is unstable). */
  teacherTemp: number;
}

function checkTemp(fn: string, name: string, t: number): void {
  if (!Number.isFinite(t) || t <= 0) throw new Error(`${fn}: ${name} must be a finite number > 0, got ${t}`);
}

/**
 * student [V, B, K] (views 0 and 1 are the global views), teacher [2, B, K] (the global views), center [K] -> scalar.
 * For each teacher view i and student view j ≠ i: mean over the batch of −Σₖ softmax((tᵢ − c)/τₜ)ₖ·log_softmax(sⱼ/τₛ)ₖ;
 * the loss is the mean over the 2(V − 1) pairs. No gradient flows to the teacher or the center.
 */
export function dinoLoss(student: tf.Tensor3D, teacher: tf.Tensor3D, center: tf.Tensor1D, opts: DinoTemps): tf.Scalar {
  if (student.rank !== 3) throw new Error(`dinoLoss: expected student [views, B, K], got shape [${student.shape}]`);
  if (teacher.rank !== 3 || teacher.shape[0] !== 2)
    throw new Error(`dinoLoss: expected teacher [2, B, K] (the 2 global views), got shape [${teacher.shape}]`);
  const [v, b, k] = student.shape;
  if (v < 2) throw new Error(`dinoLoss: the student needs at least the 2 global views, got ${v}`);
  if (teacher.shape[1] !== b || teacher.shape[2] !== k)
    throw new Error(
      `dinoLoss: teacher [${teacher.shape}] does not match student [${student.shape}] in batch or output dim`,
    );
  if (center.rank !== 1 || center.shape[0] !== k)
    throw new Error(`dinoLoss: expected center [${k}], got shape [${center.shape}]`);
  checkTemp('dinoLoss', 'studentTemp', opts.studentTemp);
  checkTemp('dinoLoss', 'teacherTemp', opts.teacherTemp);
  return tf.tidy(() => {
    const q = stopGradient(tf.softmax(tf.div(tf.sub(teacher, center), opts.teacherTemp))); // [2, B, K]
    const logP = tf.logSoftmax(tf.div(student, opts.studentTemp)); // [V, B, K]
    // ce[i, j] = mean_b −Σₖ q[i, b, k]·logP[j, b, k]: one [2, B·K] x [B·K, V] product covers every pair.
    const ce = tf.div(tf.matMul(tf.reshape(q, [2, b * k]), tf.reshape(logP, [v, b * k]), false, true), -b); // [2, V]
    // Pairs with j = i (the same global view) are excluded.
    const mask = tf.tensor2d(
      Array.from({ length: 2 * v }, (_, idx) => (Math.floor(idx / v) === idx % v ? 0 : 1)),
      [2, v],
    );
    return tf.div(tf.sum(tf.mul(ce, mask)), 2 * (v - 1)) as tf.Scalar;
  });
}

/** m·c + (1 − m)·(mean of the teacher outputs over views and batch). center [K], teacher [V, B, K] -> [K] (a new tensor). */
export function updateCenter(center: tf.Tensor1D, teacher: tf.Tensor3D, momentum: number): tf.Tensor1D {
  if (teacher.rank !== 3) throw new Error(`updateCenter: expected teacher [views, B, K], got shape [${teacher.shape}]`);
  const k = teacher.shape[2];
  if (center.rank !== 1 || center.shape[0] !== k)
    throw new Error(`updateCenter: expected center [${k}], got shape [${center.shape}]`);
  if (!Number.isFinite(momentum) || momentum < 0 || momentum > 1)
    throw new Error(`updateCenter: momentum must be in [0, 1], got ${momentum}`);
  return tf.tidy(() => {
    const batchCenter = tf.mean(tf.reshape(teacher, [-1, k]), 0); // [K]
    return tf.add(tf.mul(center, momentum), tf.mul(batchCenter, 1 - momentum));
  });
}

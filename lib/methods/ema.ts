/**
 * Exponential moving average of weights (the DINO/BYOL teacher; facebookresearch/dino main_dino.py:
 * param_k = m·param_k + (1 − m)·param_q over the student's parameters, buffers excluded).
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params';
import { FUSED_KERNELS, hasFusedKernel } from '../kernels/fused';

function checkMomentum(fn: string, m: number): void {
  if (!Number.isFinite(m) || m < 0 || m > 1) throw new Error(`${fn}: momentum must be in [0, 1], got ${m}`);
}

/**
 * In place: for every trainable parameter of the student, teacher[name] ← m·teacher[name] + (1 − m)·student[name].
 * The teacher may be a frozen clone (ParamStore.clone(label, false)); buffers (batch-norm running statistics) are
 * left alone, as in DINO, so the teacher keeps its own. Throws if the teacher lacks a name or a shape differs.
 * `names` restricts the update (e.g. to the student parameters the teacher mirrors: backbone and DINO head).
 */
export function emaUpdateStore(
  teacher: ParamStore,
  student: ParamStore,
  momentum: number,
  names: readonly string[] = student.trainableNames(),
): void {
  checkMomentum('emaUpdateStore', momentum);
  for (const name of names) {
    if (!teacher.has(name))
      throw new Error(
        `emaUpdateStore: teacher (${teacher.label}) has no parameter "${name}" of the student (${student.label})`,
      );
    const t = teacher.get(name);
    const s = student.get(name);
    if (t.shape.join(',') !== s.shape.join(','))
      throw new Error(`emaUpdateStore: "${name}" has shape [${t.shape}] in the teacher, [${s.shape}] in the student`);
  }
  // One fused kernel per parameter where the backend has it (lib/kernels/fused.ts), else mul, mul, add.
  const fused = hasFusedKernel(FUSED_KERNELS.axpby);
  tf.tidy(() => {
    for (const name of names) {
      const t = teacher.get(name);
      const s = student.get(name);
      t.assign(
        fused && t.dtype === 'float32'
          ? (tf.engine().runKernel(FUSED_KERNELS.axpby, { x: t, y: s }, {
              a: momentum,
              b: 1 - momentum,
            } as unknown as tf.NamedAttrMap) as tf.Tensor)
          : tf.add(tf.mul(t, momentum), tf.mul(s, 1 - momentum)),
      );
    }
  });
}

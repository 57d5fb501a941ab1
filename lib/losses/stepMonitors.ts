/**
 * Collapse monitors the training step logs every step, in-graph (no read-back): SimSiam's std of
 * L2-normalised embeddings (Chen & He 2021, sec. 4.1), the summary of Barlow Twins' cross-correlation
 * matrix, and DINO's teacher entropy and teacher-student KL (Caron et al. 2021, sec. 5.3). Offline
 * analysis that reads numbers back is in lib/eval/collapseMonitors.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { DinoTemps } from './dino';
import { l2Normalize } from '../nn/layers';

/** Mean over dims of the per-dimension std (unbiased, as torch.std) of the L2-normalised rows of z [N, D]: ≈ 1/√D healthy, 0 collapsed. Scalar. */
export function embeddingStdTensor(z: tf.Tensor2D): tf.Scalar {
  if (z.rank !== 2) throw new Error(`embeddingStd: expected a [N, D] tensor, got shape [${z.shape}]`);
  if (z.shape[0] < 2) throw new Error(`embeddingStd: needs at least 2 rows, got ${z.shape[0]}`);
  return tf.tidy(() => {
    const zn = l2Normalize(z); // [N, D]
    const centred = tf.sub(zn, tf.mean(zn, 0, true));
    return tf.mean(tf.sqrt(tf.div(tf.sum(tf.square(centred), 0), z.shape[0] - 1))) as tf.Scalar;
  });
}

export interface CrossCorrelationStats {
  /** Mean of the diagonal of C (1 is perfect invariance). */
  diagMean: number;
  /** Mean of the off-diagonal entries of C. */
  offDiagMean: number;
  /** Mean absolute off-diagonal entry of C (0 is fully decorrelated). */
  offDiagAbsMean: number;
}

/**
 * The summary of C [D, D] and its diagonal [D] (from `crossCorrelationParts`), as scalars: no D x D
 * mask (off-diagonal sums are totals minus the diagonal's). Needs D ≥ 2.
 */
export function crossCorrelationSummary(
  c: tf.Tensor2D,
  diag: tf.Tensor1D,
): { [K in keyof CrossCorrelationStats]: tf.Scalar } {
  const d = c.shape[0];
  if (c.rank !== 2 || c.shape[1] !== d || diag.rank !== 1 || diag.shape[0] !== d) {
    throw new Error(
      `crossCorrelationSummary: expected C [D, D] and its diagonal [D], got [${c.shape}] and [${diag.shape}]`,
    );
  }
  if (d < 2)
    throw new Error(`crossCorrelationSummary: needs at least 2 features for off-diagonal statistics, got D = ${d}`);
  return tf.tidy(() => {
    const off = d * (d - 1);
    return {
      diagMean: tf.div(tf.sum(diag), d) as tf.Scalar,
      offDiagMean: tf.div(tf.sub(tf.sum(c), tf.sum(diag)), off) as tf.Scalar,
      offDiagAbsMean: tf.div(tf.sub(tf.sum(tf.abs(c)), tf.sum(tf.abs(diag))), off) as tf.Scalar,
    };
  });
}

function checkTeacher(fn: string, teacher: tf.Tensor, center: tf.Tensor1D, temp: number): void {
  if (teacher.rank < 2) throw new Error(`${fn}: expected teacher logits [..., B, K], got shape [${teacher.shape}]`);
  const k = teacher.shape[teacher.rank - 1];
  if (center.rank !== 1 || center.shape[0] !== k)
    throw new Error(`${fn}: expected center [${k}], got shape [${center.shape}]`);
  if (!Number.isFinite(temp) || temp <= 0)
    throw new Error(`${fn}: temperature must be a finite number > 0, got ${temp}`);
}

/** Mean over rows of the entropy (nats) of softmax((t − c)/temp). teacher [..., K], center [K] -> scalar. */
export function teacherEntropyTensor(teacher: tf.Tensor, center: tf.Tensor1D, temp: number): tf.Scalar {
  checkTeacher('teacherEntropy', teacher, center, temp);
  return tf.tidy(() => {
    const logP = tf.logSoftmax(tf.div(tf.sub(teacher, center), temp));
    return tf.mean(tf.neg(tf.sum(tf.mul(tf.exp(logP), logP), -1))) as tf.Scalar;
  });
}

/**
 * Mean over rows of KL(p_teacher || p_student) in nats, p_teacher = softmax((t − c)/τₜ),
 * p_student = softmax(s/τₛ); teacher and student rows are paired, same shape [..., K].
 */
export function teacherStudentKLTensor(
  teacher: tf.Tensor,
  student: tf.Tensor,
  center: tf.Tensor1D,
  opts: DinoTemps,
): tf.Scalar {
  checkTeacher('teacherStudentKL', teacher, center, opts.teacherTemp);
  if (teacher.shape.join(',') !== student.shape.join(','))
    throw new Error(
      `teacherStudentKL: teacher [${teacher.shape}] and student [${student.shape}] must have the same shape`,
    );
  if (!Number.isFinite(opts.studentTemp) || opts.studentTemp <= 0)
    throw new Error(`teacherStudentKL: studentTemp must be a finite number > 0, got ${opts.studentTemp}`);
  return tf.tidy(() => {
    const logPt = tf.logSoftmax(tf.div(tf.sub(teacher, center), opts.teacherTemp));
    const logPs = tf.logSoftmax(tf.div(student, opts.studentTemp));
    return tf.mean(tf.sum(tf.mul(tf.exp(logPt), tf.sub(logPt, logPs)), -1)) as tf.Scalar;
  });
}

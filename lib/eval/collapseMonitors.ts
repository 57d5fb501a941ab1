/**
 * Collapse monitors for self-supervised embeddings, read back as plain numbers (async: GPU backends cannot read
 * synchronously). effectiveRank is RankMe (Garrido et al. 2023, eq. 1); embeddingStd is SimSiam's std of
 * L2-normalised outputs (Chen & He 2021, sec. 4.1); the teacher monitors follow DINO's collapse analysis (sec. 5.3).
 * The in-graph forms the training step logs live beside the losses (lib/losses/stepMonitors.ts); these read them back.
 */
import * as tf from '@tensorflow/tfjs';
import { crossCorrelationParts } from '../losses/barlow';
import { DinoTemps } from '../losses/dino';
import {
  crossCorrelationSummary,
  embeddingStdTensor,
  teacherEntropyTensor,
  teacherStudentKLTensor,
} from '../losses/stepMonitors';

export type { CrossCorrelationStats } from '../losses/stepMonitors';
import type { CrossCorrelationStats } from '../losses/stepMonitors';

/** RankMe's epsilon added to each normalised singular value. */
export const RANKME_EPS = 1e-7;

function check2d(fn: string, z: tf.Tensor): void {
  if (z.rank !== 2) throw new Error(`${fn}: expected a [N, D] tensor, got shape [${z.shape}]`);
}

/**
 * Eigenvalues of a symmetric n x n matrix (row-major, overwritten) by the cyclic Jacobi method in float64.
 * Each sweep rotates every off-diagonal pair once (n²/2 rotations of O(n) each, about 4n³ flops per sweep);
 * convergence is quadratic, typically 6-10 sweeps. Eigenvalues only, unordered.
 */
export function symmetricEigenvalues(a: Float64Array, n: number, maxSweeps = 50): Float64Array {
  if (a.length !== n * n)
    throw new Error(`symmetricEigenvalues: expected ${n * n} entries for a ${n} x ${n} matrix, got ${a.length}`);
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i] * a[i];
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      const rp = p * n;
      for (let q = p + 1; q < n; q++) {
        const rq = q * n;
        const apq = a[rp + q];
        if (apq === 0) continue;
        const app = a[rp + p];
        const aqq = a[rq + q];
        // Rotation that zeroes a[p][q] (Golub & Van Loan, sym. Schur 2x2): t = tan(angle), the smaller root.
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          if (k === p || k === q) continue;
          const akp = a[rp + k];
          const akq = a[rq + k];
          const np_ = c * akp - s * akq;
          const nq = s * akp + c * akq;
          a[rp + k] = np_;
          a[k * n + p] = np_;
          a[rq + k] = nq;
          a[k * n + q] = nq;
        }
        a[rp + p] = app - t * apq;
        a[rq + q] = aqq + t * apq;
        a[rp + q] = 0;
        a[rq + p] = 0;
      }
    }
  }
  const ev = new Float64Array(n);
  for (let i = 0; i < n; i++) ev[i] = a[i * n + i];
  return ev;
}

/**
 * Singular values of a row-major [rows, cols] matrix, from the eigenvalues of the smaller Gram matrix (ZᵀZ when
 * cols ≤ rows, else ZZᵀ), all in float64. Cost: rows·cols·m/2 multiply-adds for the Gram (m = min(rows, cols)) plus
 * the Jacobi sweeps on m x m. Singular values below about sqrt(machine eps)·σ_max are only as accurate as the Gram.
 */
export function singularValues(z: ArrayLike<number>, rows: number, cols: number): Float64Array {
  if (z.length !== rows * cols)
    throw new Error(`singularValues: expected ${rows * cols} values for [${rows}, ${cols}], got ${z.length}`);
  const byCols = cols <= rows;
  const m = byCols ? cols : rows;
  const g = new Float64Array(m * m);
  if (byCols) {
    // G = ZᵀZ accumulated row by row of Z (contiguous reads).
    const row = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < cols; j++) row[j] = z[r * cols + j];
      for (let i = 0; i < cols; i++) {
        const zi = row[i];
        if (zi === 0) continue;
        const gi = i * m;
        for (let j = i; j < cols; j++) g[gi + j] += zi * row[j];
      }
    }
  } else {
    const zz = Float64Array.from(z as ArrayLike<number>);
    for (let i = 0; i < rows; i++) {
      for (let j = i; j < rows; j++) {
        let s = 0;
        for (let k = 0; k < cols; k++) s += zz[i * cols + k] * zz[j * cols + k];
        g[i * m + j] = s;
      }
    }
  }
  for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) g[i * m + j] = g[j * m + i];
  const ev = symmetricEigenvalues(g, m);
  const sv = new Float64Array(m);
  for (let i = 0; i < m; i++) sv[i] = Math.sqrt(Math.max(ev[i], 0));
  return sv.sort().reverse();
}

export interface EffectiveRankOptions {
  /**
   * Largest min(N, D) accepted (the Jacobi solver's cost grows as its cube). Default 1024. With D larger than this,
   * pass at most this many rows: the N x N Gram is used when N < D.
   */
  maxDim?: number;
}

export const EFFECTIVE_RANK_DEFAULTS: Readonly<Required<EffectiveRankOptions>> = Object.freeze({ maxDim: 1024 });

/**
 * RankMe effective rank of z [N, D]: exp(−Σ pₖ log pₖ) with pₖ = σₖ/Σσ + 1e-7 over the min(N, D) singular values,
 * exactly RankMe's formula (so its range is about [1, min(N, D)]). An all-zero z returns 0 (the formula gives NaN).
 * Reads z back to the host and works in float64 JS. Measured on the 2-core CPU machine (Node 20), Gram + Jacobi:
 * N=2048, D=128: 60 ms; N=2048, D=256: 0.3 s; N=10000, D=512: 2.3 s + 7.5 s (Jacobi sweeps: 7-9).
 */
export async function effectiveRank(z: tf.Tensor2D, opts: EffectiveRankOptions = {}): Promise<number> {
  check2d('effectiveRank', z);
  const [n, d] = z.shape;
  const maxDim = opts.maxDim ?? EFFECTIVE_RANK_DEFAULTS.maxDim;
  if (Math.min(n, d) > maxDim) {
    throw new Error(
      `effectiveRank: min(N, D) = ${Math.min(n, d)} for z [${z.shape}] exceeds maxDim ${maxDim} (Jacobi costs ~n³: about 7 s at 512); pass at most ${maxDim} rows or raise maxDim`,
    );
  }
  const sv = singularValues(await z.data(), n, d);
  let total = 0;
  for (const s of sv) total += s;
  if (!(total > 0)) {
    if (Number.isNaN(total)) throw new Error('effectiveRank: the embeddings contain NaN');
    return 0;
  }
  let h = 0;
  for (const s of sv) {
    const p = s / total + RANKME_EPS;
    h -= p * Math.log(p);
  }
  return Math.exp(h);
}

/** Mean over dims of the per-dimension std (unbiased, as torch.std) of the L2-normalised rows of z [N, D]: ≈ 1/√D healthy, 0 collapsed. */
export async function embeddingStd(z: tf.Tensor2D): Promise<number> {
  return readScalar(embeddingStdTensor(z));
}

/** Summary of the Barlow Twins cross-correlation matrix C of z1, z2 [N, D] (see crossCorrelationParts); needs D ≥ 2. */
export async function crossCorrelationStats(z1: tf.Tensor2D, z2: tf.Tensor2D): Promise<CrossCorrelationStats> {
  const stats = tf.tidy(() => {
    const { c, diag } = crossCorrelationParts(z1, z2);
    const s = crossCorrelationSummary(c, diag);
    return tf.stack([s.diagMean, s.offDiagMean, s.offDiagAbsMean]); // [3]
  });
  const v = await stats.data();
  stats.dispose();
  return { diagMean: v[0], offDiagMean: v[1], offDiagAbsMean: v[2] };
}

async function readScalar(s: tf.Scalar): Promise<number> {
  try {
    return (await s.data())[0];
  } finally {
    s.dispose();
  }
}

/** Mean teacher entropy in nats (log K is uniform: collapse by flattening; 0 is one-hot: collapse by dominance). */
export async function teacherEntropy(teacher: tf.Tensor, center: tf.Tensor1D, temp: number): Promise<number> {
  return readScalar(teacherEntropyTensor(teacher, center, temp));
}

/** Mean KL(p_teacher || p_student) in nats (DINO fig. 7: it drops to 0 when the model collapses). */
export async function teacherStudentKL(
  teacher: tf.Tensor,
  student: tf.Tensor,
  center: tf.Tensor1D,
  opts: DinoTemps,
): Promise<number> {
  return readScalar(teacherStudentKLTensor(teacher, student, center, opts));
}

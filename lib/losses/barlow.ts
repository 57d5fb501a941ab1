/**
 * Barlow Twins loss (Zbontar et al. 2021, eq. 1), as facebookresearch/barlowtwins main.py computes it: each view is
 * standardised per feature over the batch like BatchNorm1d(affine=False) (biased variance, eps 1e-5), then
 * C = z1nᵀ·z2n / N and L = Σᵢ(1 − Cᵢᵢ)² + λ·Σ_{i≠j} Cᵢⱼ² (λ from the caller: lib/config/config.ts barlow.lambda). (lightly's BarlowTwinsLoss divides by the unbiased std
 * without eps instead; the two differ by a factor N/(N−1) inside C.)
 */
import * as tf from '@tensorflow/tfjs';

/** Per-feature variance epsilon of the standardisation (BatchNorm1d's default). */
export const BARLOW_EPS = 1e-5;

function checkPair(fn: string, z1: tf.Tensor, z2: tf.Tensor): void {
  if (z1.rank !== 2 || z2.rank !== 2)
    throw new Error(`${fn}: expected two [N, D] tensors, got shapes [${z1.shape}] and [${z2.shape}]`);
  if (z1.shape[0] !== z2.shape[0] || z1.shape[1] !== z2.shape[1]) {
    throw new Error(`${fn}: the two views must have the same shape, got [${z1.shape}] and [${z2.shape}]`);
  }
  if (z1.shape[0] < 2)
    throw new Error(`${fn}: needs a batch of at least 2 rows to standardise features, got N = ${z1.shape[0]}`);
}

function checkLambda(fn: string, lambda: number): void {
  if (!Number.isFinite(lambda) || lambda < 0)
    throw new Error(`${fn}: lambda must be a finite number >= 0, got ${lambda}`);
}

/** Standardises each column over the batch: (z − mean) / sqrt(biased var + eps). [N, D] -> [N, D]. */
function standardise(z: tf.Tensor2D): tf.Tensor2D {
  const { mean, variance } = tf.moments(z, 0, true); // [1, D] each
  return tf.mul(tf.sub(z, mean), tf.rsqrt(tf.add(variance, BARLOW_EPS)));
}

/**
 * C = z1nᵀ·z2n / N and its diagonal, the latter as column sums of z1n ⊙ z2n / N: O(N·D) work and no
 * D x D mask (tf.eye builds one on the CPU and uploads it every call; a strided slice of C is slow
 * on wasm). [N, D] x 2 -> C [D, D], diag [D].
 */
export function crossCorrelationParts(z1: tf.Tensor2D, z2: tf.Tensor2D): { c: tf.Tensor2D; diag: tf.Tensor1D } {
  checkPair('crossCorrelationParts', z1, z2);
  const n = z1.shape[0];
  return tf.tidy(() => {
    const a = standardise(z1);
    const b = standardise(z2);
    return {
      c: tf.div(tf.matMul(a, b, true, false), n) as tf.Tensor2D,
      diag: tf.div(tf.sum(tf.mul(a, b), 0), n) as tf.Tensor1D,
    };
  });
}

/**
 * Σᵢ(1 − Cᵢᵢ)² + λ·Σ_{i≠j} Cᵢⱼ², written as Σᵢ(1 − Cᵢᵢ)² + λ·(ΣC² − ΣᵢCᵢᵢ²) to avoid masking; for a stack
 * [..., D, D] with diagonals [..., D], the sum over the stack.
 */
function lossFromC(c: tf.Tensor, diag: tf.Tensor, lambda: number): tf.Scalar {
  const onDiag = tf.sum(tf.square(tf.sub(1, diag)));
  const offDiag = tf.sub(tf.sum(tf.square(c)), tf.sum(tf.square(diag)));
  return tf.add(onDiag, tf.mul(offDiag, lambda)) as tf.Scalar;
}

/** Barlow Twins loss of two views [N, D] -> scalar. */
export function barlowTwinsLoss(z1: tf.Tensor2D, z2: tf.Tensor2D, lambda: number): tf.Scalar {
  checkPair('barlowTwinsLoss', z1, z2);
  checkLambda('barlowTwinsLoss', lambda);
  return tf.tidy(() => {
    const { c, diag } = crossCorrelationParts(z1, z2);
    return lossFromC(c, diag, lambda);
  });
}

/** The Barlow Twins loss from `crossCorrelationParts` (when C is also wanted for monitoring). */
export function barlowLossFromParts(c: tf.Tensor2D, diag: tf.Tensor1D, lambda: number): tf.Scalar {
  checkLambda('barlowLossFromParts', lambda);
  if (c.rank !== 2 || c.shape[0] !== c.shape[1] || diag.rank !== 1 || diag.shape[0] !== c.shape[0]) {
    throw new Error(
      `barlowLossFromParts: expected C [D, D] and its diagonal [D], got [${c.shape}] and [${diag.shape}]`,
    );
  }
  return tf.tidy(() => lossFromC(c, diag, lambda));
}

/**
 * Mean of barlowTwinsLoss(pᵢ, pⱼ, λ) over the ordered pairs i ≠ j of V ≥ 2 views (the original DINO-Twins project's
 * multi-view Barlow term). [V, B, D] -> scalar. The loss is symmetric (C_ji = C_ijᵀ has the same
 * diagonal and the same squares), so the mean over ordered pairs is the mean over the V(V−1)/2 pairs i < j: all views
 * are standardised in one pass, and view i meets every later view in one batched product [V−1−i, D, D].
 */
export function barlowPairMean(projections: tf.Tensor3D, lambda: number): tf.Scalar {
  if (projections.rank !== 3)
    throw new Error(`barlowPairMean: expected projections [views, B, D], got shape [${projections.shape}]`);
  const [v, b, d] = projections.shape;
  if (v < 2) throw new Error(`barlowPairMean: needs at least 2 views, got ${v}`);
  if (b < 2) throw new Error(`barlowPairMean: needs a batch of at least 2 rows, got B = ${b}`);
  checkLambda('barlowPairMean', lambda);
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(projections, 1, true); // [V, 1, D] each
    const zn = tf.mul(tf.sub(projections, mean), tf.rsqrt(tf.add(variance, BARLOW_EPS))); // [V, B, D]
    const terms: tf.Scalar[] = [];
    for (let i = 0; i < v - 1; i++) {
      const k = v - 1 - i;
      // tfjs' BatchMatMul gradient does not reduce broadcast batch dims, so broadcast explicitly (its gradient sums).
      const zi = tf.broadcastTo(tf.slice(zn, [i, 0, 0], [1, b, d]), [k, b, d]); // [k, B, D]
      const later = tf.slice(zn, [i + 1, 0, 0], [k, b, d]); // [k, B, D]
      const c = tf.div(tf.matMul(zi, later, true, false), b); // [k, D, D]
      const diag = tf.div(tf.sum(tf.mul(zi, later), 1), b); // [k, D]
      terms.push(lossFromC(c, diag, lambda));
    }
    return tf.div(terms.length === 1 ? terms[0] : tf.addN(terms), (v * (v - 1)) / 2) as tf.Scalar;
  });
}

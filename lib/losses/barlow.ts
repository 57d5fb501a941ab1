/**
 * Barlow Twins loss (Zbontar et al. 2021, eq. 1), as facebookresearch/barlowtwins main.py computes it: each view is
 * standardised per feature over the batch like BatchNorm1d(affine=False) (biased variance, eps 1e-5), then
 * C = z1nᵀ·z2n / N and L = Σᵢ(1 − Cᵢᵢ)² + λ·Σ_{i≠j} Cᵢⱼ². (lightly's BarlowTwinsLoss divides by the unbiased std
 * without eps instead; the two differ by a factor N/(N−1) inside C.)
 */
import * as tf from '@tensorflow/tfjs';

/** The original paper's off-diagonal weight for its 8192-d projector. */
export const BARLOW_LAMBDA = 0.0051;
/** Per-feature variance epsilon of the standardisation (BatchNorm1d's default). */
export const BARLOW_EPS = 1e-5;

function checkPair(fn: string, z1: tf.Tensor, z2: tf.Tensor): void {
  if (z1.rank !== 2 || z2.rank !== 2) throw new Error(`${fn}: expected two [N, D] tensors, got shapes [${z1.shape}] and [${z2.shape}]`);
  if (z1.shape[0] !== z2.shape[0] || z1.shape[1] !== z2.shape[1]) {
    throw new Error(`${fn}: the two views must have the same shape, got [${z1.shape}] and [${z2.shape}]`);
  }
  if (z1.shape[0] < 2) throw new Error(`${fn}: needs a batch of at least 2 rows to standardise features, got N = ${z1.shape[0]}`);
}

function checkLambda(fn: string, lambda: number): void {
  if (!Number.isFinite(lambda) || lambda < 0) throw new Error(`${fn}: lambda must be a finite number >= 0, got ${lambda}`);
}

/** Standardises each column over the batch: (z − mean) / sqrt(biased var + eps). [N, D] -> [N, D]. */
function standardise(z: tf.Tensor2D): tf.Tensor2D {
  const { mean, variance } = tf.moments(z, 0, true); // [1, D] each
  return tf.mul(tf.sub(z, mean), tf.rsqrt(tf.add(variance, BARLOW_EPS)));
}

/** Cross-correlation matrix of the standardised views. [N, D], [N, D] -> [D, D]. */
export function crossCorrelation(z1: tf.Tensor2D, z2: tf.Tensor2D): tf.Tensor2D {
  checkPair('crossCorrelation', z1, z2);
  const n = z1.shape[0];
  return tf.tidy(() => tf.div(tf.matMul(standardise(z1), standardise(z2), true, false), n)); // [D, D]
}

/** Σᵢ(1 − Cᵢᵢ)² + λ·Σ_{i≠j} Cᵢⱼ², written as Σᵢ(1 − Cᵢᵢ)² + λ·(ΣC² − ΣᵢCᵢᵢ²) to avoid masking. */
function lossFromC(c: tf.Tensor2D, lambda: number): tf.Scalar {
  const d = c.shape[0];
  const diag = tf.sum(tf.mul(c, tf.eye(d)), 1); // [D]
  const onDiag = tf.sum(tf.square(tf.sub(1, diag)));
  const offDiag = tf.sub(tf.sum(tf.square(c)), tf.sum(tf.square(diag)));
  return tf.add(onDiag, tf.mul(offDiag, lambda)) as tf.Scalar;
}

/** Barlow Twins loss of two views [N, D] -> scalar. */
export function barlowTwinsLoss(z1: tf.Tensor2D, z2: tf.Tensor2D, lambda = BARLOW_LAMBDA): tf.Scalar {
  checkPair('barlowTwinsLoss', z1, z2);
  checkLambda('barlowTwinsLoss', lambda);
  return tf.tidy(() => lossFromC(crossCorrelation(z1, z2), lambda));
}

/**
 * Mean of barlowTwinsLoss(pᵢ, pⱼ, λ) over the ordered pairs i ≠ j of V ≥ 2 views (the original DINO-Twins project's
 * multi-view Barlow term; λ = 0.005 there). [V, B, D] -> scalar. Each view is standardised once.
 */
export function barlowPairMean(projections: tf.Tensor3D, lambda = 0.005): tf.Scalar {
  if (projections.rank !== 3) throw new Error(`barlowPairMean: expected projections [views, B, D], got shape [${projections.shape}]`);
  const [v, b] = projections.shape;
  if (v < 2) throw new Error(`barlowPairMean: needs at least 2 views, got ${v}`);
  if (b < 2) throw new Error(`barlowPairMean: needs a batch of at least 2 rows, got B = ${b}`);
  checkLambda('barlowPairMean', lambda);
  return tf.tidy(() => {
    const zn = tf.unstack(projections).map((p) => standardise(p as tf.Tensor2D)); // V x [B, D]
    const terms: tf.Scalar[] = [];
    for (let i = 0; i < v; i++) {
      for (let j = 0; j < v; j++) {
        if (i !== j) terms.push(lossFromC(tf.div(tf.matMul(zn[i], zn[j], true, false), b) as tf.Tensor2D, lambda));
      }
    }
    return tf.div(tf.addN(terms), terms.length) as tf.Scalar;
  });
}

/**
 * Training-mode batch norm as one differentiable op (tf.customGrad), in two forms with the same
 * math: one fused kernel pair where the active backend registers it (lib/kernels/fused.ts; WebGPU:
 * five dispatches for forward and backward together), else stock tfjs ops. An optional ReLU is part
 * of the op in the fused form and applied after it in the composed one.
 *
 * Forward y = (x - mean) * scale + beta with scale = gamma / sqrt(var + eps) (biased batch
 * variance); backward dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat)), dgamma = sum(dy * xhat),
 * dbeta = sum(dy), xhat = (x - mean) / sqrt(var + eps) (Ioffe & Szegedy 2015). Subtracting the mean
 * before scaling (not x * scale + shift) keeps float32 error low when |mean| >> std.
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, hasFusedKernel } from '../kernels/fused';

export const BN_EPS = 1e-5;

/** Receives the batch statistics for the running averages: either (mean, variance) or packed [2, C]. */
export interface BnStatsSink {
  /** Composed form: mean [C] and biased variance [C]. */
  composed(mean: tf.Tensor, variance: tf.Tensor): void;
  /** Fused form: [2, C] = (mean, biased variance), updated through the running-statistics kernel. */
  fused(stats: tf.Tensor): void;
}

type CustomFn = Parameters<typeof tf.customGrad>[0];

/** Composed from stock ops: about 11 passes over the activations forward and backward together. */
function composedFn(rank: number, affine: boolean, sink?: BnStatsSink) {
  const axes = Array.from({ length: rank - 1 }, (_, i) => i);
  return (...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x = args[0] as tf.Tensor;
    const gamma = affine ? (args[1] as tf.Tensor) : undefined;
    const beta = affine ? (args[2] as tf.Tensor) : undefined;
    const { mean, variance } = tf.moments(x, axes); // [C]
    sink?.composed(mean, variance);
    const inv = tf.rsqrt(tf.add(variance, BN_EPS)); // [C]
    const scale = gamma ? tf.mul(inv, gamma) : inv;
    const scaled = tf.mul(tf.sub(x, mean), scale);
    const value = beta ? tf.add(scaled, beta) : scaled;
    save([x, mean, inv, scale]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xs, m, iv, sc] = saved;
      const n = xs.size / xs.shape[xs.shape.length - 1];
      const xhat = tf.mul(tf.sub(xs, m), iv);
      const dbeta = tf.sum(dy, axes); // [C]
      const dgamma = tf.sum(tf.mul(dy, xhat), axes); // [C]
      const dx = tf.mul(tf.sub(tf.sub(dy, tf.div(dbeta, n)), tf.mul(xhat, tf.div(dgamma, n))), sc);
      return affine ? [dx, dgamma, dbeta] : [dx];
    };
    return { value, gradFunc };
  };
}

/** The fused kernel pair; ReLU (if asked) inside the op. */
function fusedFn(affine: boolean, relu: boolean, sink?: BnStatsSink) {
  const attrs = { eps: BN_EPS, relu } as unknown as tf.NamedAttrMap;
  return (...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const t = args.slice(0, -1) as tf.Tensor[];
    const inputs: tf.NamedTensorMap = affine ? { x: t[0], gamma: t[1], beta: t[2] } : { x: t[0] };
    const [value, stats] = tf.engine().runKernel(FUSED_KERNELS.batchNorm, inputs, attrs) as tf.Tensor[];
    sink?.fused(stats);
    save([...t, stats]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xs, g, b] = saved;
      const st = saved[saved.length - 1];
      const ins: tf.NamedTensorMap = affine ? { dy, x: xs, stats: st, gamma: g, beta: b } : { dy, x: xs, stats: st };
      return tf.engine().runKernel(FUSED_KERNELS.batchNormGrad, ins, attrs) as tf.Tensor[];
    };
    return { value, gradFunc };
  };
}

/** True when the active backend runs training batch norm as fused kernels. */
export function fusedBatchNormActive(): boolean {
  return hasFusedKernel(FUSED_KERNELS.batchNorm) && hasFusedKernel(FUSED_KERNELS.batchNormGrad);
}

/**
 * Training-mode batch norm over all axes but the last of `x`, with affine `gamma`/`beta` (both or
 * neither) and an optional ReLU after it. `sink` receives the batch statistics.
 */
export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor | undefined, beta: tf.Tensor | undefined, relu: boolean, sink?: BnStatsSink): tf.Tensor {
  if ((gamma === undefined) !== (beta === undefined)) throw new Error('batchNormTrain: gamma and beta come together or not at all');
  const affine = gamma !== undefined;
  const inputs = affine ? [x, gamma!, beta!] : [x];
  if (fusedBatchNormActive() && x.dtype === 'float32') {
    const f = tf.customGrad(fusedFn(affine, relu, sink) as unknown as CustomFn) as unknown as (...t: tf.Tensor[]) => tf.Tensor;
    return f(...inputs);
  }
  const f = tf.customGrad(composedFn(x.rank, affine, sink) as unknown as CustomFn) as unknown as (...t: tf.Tensor[]) => tf.Tensor;
  const y = f(...inputs);
  return relu ? tf.relu(y) : y;
}

/** Running-average update (PyTorch convention, momentum m): fused kernel where registered. */
export function runningUpdate(running: tf.Tensor, stats: tf.Tensor, row: 0 | 1, momentum: number, factor: number): tf.Tensor {
  if (hasFusedKernel(FUSED_KERNELS.batchNormRunning)) {
    return tf.engine().runKernel(FUSED_KERNELS.batchNormRunning, { running, stats }, { row, momentum, factor } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return tf.tidy(() => {
    const C = running.size;
    const s = tf.reshape(tf.slice(tf.reshape(stats, [2, C]), [row, 0], [1, C]), running.shape);
    return tf.add(tf.mul(running, 1 - momentum), tf.mul(tf.mul(s, factor), momentum));
  });
}

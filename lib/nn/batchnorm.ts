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

/** Receives the batch statistics for the running averages, one entry per statistics group, in order. */
export interface BnStatsSink {
  /** Composed form: per group, mean [C] and biased variance [C]. */
  composed(means: tf.Tensor[], variances: tf.Tensor[]): void;
  /** Fused form: [groups * 2, C] = per group (mean, biased variance), for `runningUpdate`. */
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
    sink?.composed([mean], [variance]);
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

/**
 * Composed, with statistics per group of consecutive batch rows: x seen as [g, M, C], moments over
 * M. The same math as `composedFn` on each group; dgamma and dbeta sum over the groups.
 */
function composedGroupedFn(shape: number[], groups: number, affine: boolean, sink?: BnStatsSink) {
  const C = shape[shape.length - 1];
  return (...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x = tf.reshape(args[0] as tf.Tensor, [groups, -1, C]);
    const gamma = affine ? (args[1] as tf.Tensor) : undefined;
    const beta = affine ? (args[2] as tf.Tensor) : undefined;
    const { mean, variance } = tf.moments(x, [1], true); // [g, 1, C]
    if (sink) {
      const flat = (t: tf.Tensor): tf.Tensor[] => tf.unstack(tf.reshape(t, [groups, C]));
      sink.composed(flat(mean), flat(variance));
    }
    const inv = tf.rsqrt(tf.add(variance, BN_EPS)); // [g, 1, C]
    const scale = gamma ? tf.mul(inv, gamma) : inv;
    const scaled = tf.mul(tf.sub(x, mean), scale);
    const value = tf.reshape(beta ? tf.add(scaled, beta) : scaled, shape);
    save([x, mean, inv, scale]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xs, m, iv, sc] = saved;
      const n = xs.shape[1] as number;
      const dyg = tf.reshape(dy, [groups, -1, C]);
      const xhat = tf.mul(tf.sub(xs, m), iv);
      const dbetaG = tf.sum(dyg, [1], true); // [g, 1, C]
      const dgammaG = tf.sum(tf.mul(dyg, xhat), [1], true);
      const dx = tf.reshape(
        tf.mul(tf.sub(tf.sub(dyg, tf.div(dbetaG, n)), tf.mul(xhat, tf.div(dgammaG, n))), sc),
        shape,
      );
      return affine ? [dx, tf.reshape(tf.sum(dgammaG, [0, 1]), [C]), tf.reshape(tf.sum(dbetaG, [0, 1]), [C])] : [dx];
    };
    return { value, gradFunc };
  };
}

/** The fused kernel pair; ReLU (if asked) and a residual added before it inside the op. */
function fusedFn(affine: boolean, relu: boolean, groups: number, hasResidual: boolean, sink?: BnStatsSink) {
  const attrs = { eps: BN_EPS, relu, groups } as unknown as tf.NamedAttrMap;
  return (...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const t = args.slice(0, -1) as tf.Tensor[]; // x, (gamma, beta), (residual)
    const named = (ts: tf.Tensor[]): tf.NamedTensorMap => ({
      x: ts[0],
      ...(affine ? { gamma: ts[1], beta: ts[2] } : {}),
      ...(hasResidual ? { residual: ts[ts.length - 1] } : {}),
    });
    const [value, stats] = tf.engine().runKernel(FUSED_KERNELS.batchNorm, named(t), attrs) as tf.Tensor[];
    sink?.fused(stats);
    save([...t, stats]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const st = saved[saved.length - 1];
      return tf
        .engine()
        .runKernel(FUSED_KERNELS.batchNormGrad, { dy, stats: st, ...named(saved.slice(0, -1)) }, attrs) as tf.Tensor[];
    };
    return { value, gradFunc };
  };
}

/** True when the active backend runs training batch norm as fused kernels. */
export function fusedBatchNormActive(): boolean {
  return [FUSED_KERNELS.batchNorm, FUSED_KERNELS.batchNormGrad, FUSED_KERNELS.batchNormRunning].every(hasFusedKernel);
}

/**
 * Training-mode batch norm over all axes but the last of `x`, with affine `gamma`/`beta` (both or
 * neither) and an optional ReLU after it. `sink` receives the batch statistics. `groups` > 1 takes
 * statistics per group of consecutive batch rows (V views of B images concatenated: groups = V
 * equals V separate passes). `residual` (same shape as x, with relu) is added before the ReLU:
 * ReLU(bn(x) + residual), a ResNet block's end, one fused op where the backend has it.
 */
export function batchNormTrain(
  x: tf.Tensor,
  gamma: tf.Tensor | undefined,
  beta: tf.Tensor | undefined,
  relu: boolean,
  sink?: BnStatsSink,
  groups = 1,
  residual?: tf.Tensor,
): tf.Tensor {
  if ((gamma === undefined) !== (beta === undefined))
    throw new Error('batchNormTrain: gamma and beta come together or not at all');
  if (x.rank < 2) throw new Error(`batchNormTrain: input must have rank >= 2, got shape [${x.shape}]`);
  if (!Number.isInteger(groups) || groups < 1 || x.shape[0] % groups !== 0) {
    throw new Error(
      `batchNormTrain: groups must be a positive integer dividing the batch (${x.shape[0]}), got ${groups}`,
    );
  }
  if (residual && residual.shape.join(',') !== x.shape.join(','))
    throw new Error(`batchNormTrain: residual [${residual.shape}] does not match x [${x.shape}]`);
  if (residual && !relu)
    throw new Error(
      'batchNormTrain: a residual is only part of the op under a ReLU (relu: true); add it after the op otherwise',
    );
  const affine = gamma !== undefined;
  const inputs = [x, ...(affine ? [gamma!, beta!] : []), ...(residual ? [residual] : [])];
  if (fusedBatchNormActive() && x.dtype === 'float32') {
    const f = tf.customGrad(
      fusedFn(affine, relu, groups, residual !== undefined, sink) as unknown as CustomFn,
    ) as unknown as (...t: tf.Tensor[]) => tf.Tensor;
    return f(...inputs);
  }
  const fn = groups === 1 ? composedFn(x.rank, affine, sink) : composedGroupedFn(x.shape, groups, affine, sink);
  const f = tf.customGrad(fn as unknown as CustomFn) as unknown as (...t: tf.Tensor[]) => tf.Tensor;
  const y = f(...(affine ? [x, gamma!, beta!] : [x]));
  const z = residual ? tf.add(y, residual) : y;
  return relu ? tf.relu(z) : z;
}

/**
 * Running-average update (PyTorch convention, momentum m) from fused statistics [groups * 2, C]:
 * running <- (1 - m) * running + m * factor * stats[g, row], group after group. Only the fused
 * form produces such statistics, so this is always the fused kernel.
 */
export function runningUpdate(
  running: tf.Tensor,
  stats: tf.Tensor,
  row: 0 | 1,
  momentum: number,
  factor: number,
): tf.Tensor {
  return tf.engine().runKernel(FUSED_KERNELS.batchNormRunning, { running, stats }, {
    row,
    momentum,
    factor,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

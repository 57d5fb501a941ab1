/**
 * Functional layers over a ParamStore: `init*` creates parameters (seeded, PyTorch-default
 * initialisation), the forward function reads them. Layout is NHWC, filters [kh, kw, in, out].
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from './params';
import { Rng } from '../util/rng';
import { BN_EPS, BnStatsSink, batchNormTrain, runningUpdate } from './batchnorm';
import { FUSED_KERNELS, hasFusedKernel } from '../kernels/fused';

/** Per-forward-pass state. */
export interface ForwardContext {
  /** Training mode: batch norm uses batch statistics and updates its running statistics. */
  training: boolean;
  /** Update batch-norm running statistics in training mode. Default true. */
  updateStats?: boolean;
  /** Running-statistics momentum, PyTorch convention (new = (1-m)*old + m*batch). Default BN_MOMENTUM. */
  bnMomentum?: number;
  /**
   * Training-mode batch norm takes statistics per group of this many consecutive equal parts of
   * the batch (default 1). With V views concatenated into one batch, V gives each view its own
   * statistics and running-average update, exactly as V separate forward passes (Barlow Twins).
   */
  bnGroups?: number;
  /** If set, attention layers push their attention weights [B, heads, T, T] here (kept, caller disposes). */
  attention?: tf.Tensor4D[];
}

export { BN_EPS };

/** Batch-norm running-statistics momentum: PyTorch's default (the config's `bnMomentum` default too). */
export const BN_MOMENTUM = 0.1;

function fill(n: number, f: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f();
  return a;
}

/** Conv weights with torchvision ResNet's init: kaiming normal, fan_out, ReLU gain. */
export function initConv2d(
  ps: ParamStore,
  name: string,
  k: number,
  inC: number,
  outC: number,
  rng: Rng,
  bias = false,
): void {
  const std = Math.sqrt(2 / (outC * k * k));
  ps.addValues(
    `${name}.weight`,
    [k, k, inC, outC],
    fill(k * k * inC * outC, () => std * rng.normal()),
    'weight',
  );
  if (bias) ps.addValues(`${name}.bias`, [outC], new Float32Array(outC), 'bias');
}

export function conv2d(
  ps: ParamStore,
  name: string,
  x: tf.Tensor4D,
  stride: number,
  pad: 'same' | 'valid' | number,
): tf.Tensor4D {
  const w = ps.get(`${name}.weight`) as tf.Tensor4D;
  // A number is PyTorch's symmetric zero padding, passed to the convolution as explicit padding
  // (no separate Pad and, in the backward pass, no Slice of the padded gradient).
  const padding: 'same' | 'valid' | tf.backend_util.ExplicitPadding =
    typeof pad === 'number'
      ? pad > 0
        ? [
            [0, 0],
            [pad, pad],
            [pad, pad],
            [0, 0],
          ]
        : 'valid'
      : pad;
  let y = tf.conv2d(x, w, stride, padding);
  if (ps.has(`${name}.bias`)) y = tf.add(y, ps.get(`${name}.bias`));
  return y;
}

export type LinearInit = 'torch' | 'trunc02' | 'xavier';

/** Linear layer, weight [in, out]. 'torch': U(+-1/sqrt(in)) as nn.Linear; 'trunc02': trunc normal std 0.02, zero bias (ViT/DINO). */
export function initLinear(
  ps: ParamStore,
  name: string,
  inF: number,
  outF: number,
  rng: Rng,
  opts: { bias?: boolean; init?: LinearInit } = {},
): void {
  const init = opts.init ?? 'torch';
  const bound = 1 / Math.sqrt(inF);
  const wf =
    init === 'torch'
      ? () => rng.uniform(-bound, bound)
      : init === 'trunc02'
        ? () => 0.02 * rng.truncNormal()
        : (() => {
            const a = Math.sqrt(6 / (inF + outF));
            return () => rng.uniform(-a, a);
          })();
  ps.addValues(`${name}.weight`, [inF, outF], fill(inF * outF, wf), 'weight');
  if (opts.bias ?? true) {
    ps.addValues(
      `${name}.bias`,
      [outF],
      init === 'torch' ? fill(outF, () => rng.uniform(-bound, bound)) : new Float32Array(outF),
      'bias',
    );
  }
}

/** x [..., in] -> [..., out]. */
export function linear<T extends tf.Tensor>(ps: ParamStore, name: string, x: T): T {
  const w = ps.get(`${name}.weight`) as tf.Tensor2D;
  const shape = x.shape;
  const inF = shape[shape.length - 1];
  const x2 = shape.length === 2 ? (x as unknown as tf.Tensor2D) : (tf.reshape(x, [-1, inF]) as tf.Tensor2D);
  // With a bias: one fused matmul + bias kernel (tfjs' own; on cpu the same two steps).
  let y: tf.Tensor = ps.has(`${name}.bias`)
    ? tf.fused.matMul({ a: x2, b: w, bias: ps.get(`${name}.bias`) })
    : tf.matMul(x2, w);
  if (shape.length !== 2) y = tf.reshape(y, [...shape.slice(0, -1), w.shape[1]]);
  return y as T;
}

/** Batch norm parameters: affine weight/bias plus running mean/var buffers. */
export function initBatchNorm(ps: ParamStore, name: string, c: number, affine = true): void {
  if (affine) {
    ps.addValues(`${name}.weight`, [c], new Float32Array(c).fill(1), 'norm');
    ps.addValues(`${name}.bias`, [c], new Float32Array(c), 'norm');
  }
  ps.addValues(`${name}.running_mean`, [c], new Float32Array(c), 'buffer', false);
  ps.addValues(`${name}.running_var`, [c], new Float32Array(c).fill(1), 'buffer', false);
}

/**
 * Batch norm over all axes but the last (NHWC or [B, C]), as torch.nn.BatchNorm (Ioffe &
 * Szegedy 2015, Alg. 1), with an optional ReLU after it and a residual added before that ReLU
 * (`relu`, `residual`: one op with the batch norm where the backend has the fused kernel,
 * lib/nn/batchnorm.ts). Training: batch statistics (biased
 * variance), running statistics updated with the unbiased variance as PyTorch does. Inference:
 * running statistics only.
 */
export function batchNorm<T extends tf.Tensor>(
  ps: ParamStore,
  name: string,
  x: T,
  ctx: ForwardContext,
  opts: { relu?: boolean; residual?: tf.Tensor } = {},
): T {
  const affine = ps.has(`${name}.weight`);
  const relu = opts.relu === true;
  if (ctx.training) {
    const groups = ctx.bnGroups ?? 1;
    const n = x.size / x.shape[x.shape.length - 1] / groups; // rows per statistics group
    const mom = ctx.bnMomentum ?? BN_MOMENTUM;
    const unbias = n / Math.max(n - 1, 1);
    const rm = ps.get(`${name}.running_mean`);
    const rv = ps.get(`${name}.running_var`);
    // Only the loss is differentiated, so these updates carry no gradient.
    const sink: BnStatsSink | undefined =
      ctx.updateStats === false
        ? undefined
        : {
            composed: (means, variances) =>
              tf.tidy(() => {
                for (let g = 0; g < means.length; g++) {
                  rm.assign(tf.add(tf.mul(rm, 1 - mom), tf.mul(means[g], mom)));
                  rv.assign(tf.add(tf.mul(rv, 1 - mom), tf.mul(tf.mul(variances[g], unbias), mom)));
                }
              }),
            fused: (stats) =>
              tf.tidy(() => {
                rm.assign(runningUpdate(rm, stats, 0, mom, 1));
                rv.assign(runningUpdate(rv, stats, 1, mom, unbias));
              }),
          };
    const gamma = affine ? ps.get(`${name}.weight`) : undefined;
    const beta = affine ? ps.get(`${name}.bias`) : undefined;
    return batchNormTrain(x, gamma, beta, relu, sink, groups, opts.residual) as T;
  }
  const mean = ps.get(`${name}.running_mean`);
  const variance = ps.get(`${name}.running_var`);
  let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, BN_EPS)));
  if (affine) y = tf.add(tf.mul(y, ps.get(`${name}.weight`)), ps.get(`${name}.bias`));
  if (opts.residual) y = tf.add(y, opts.residual);
  return (relu ? tf.relu(y) : y) as T;
}

export function initLayerNorm(ps: ParamStore, name: string, c: number): void {
  ps.addValues(`${name}.weight`, [c], new Float32Array(c).fill(1), 'norm');
  ps.addValues(`${name}.bias`, [c], new Float32Array(c), 'norm');
}

type CustomFn = Parameters<typeof tf.customGrad>[0];

/**
 * Layer norm over the last axis, eps 1e-6 as timm/DINO's ViT. One fused op (forward and
 * backward kernels) where the backend has it (lib/kernels/fused.ts), else tfjs ops and autodiff.
 */
export function layerNorm<T extends tf.Tensor>(ps: ParamStore, name: string, x: T, eps = 1e-6): T {
  const gamma = ps.get(`${name}.weight`);
  const beta = ps.get(`${name}.bias`);
  if (x.dtype === 'float32' && hasFusedKernel(FUSED_KERNELS.layerNorm) && hasFusedKernel(FUSED_KERNELS.layerNormGrad)) {
    const attrs = { eps } as unknown as tf.NamedAttrMap;
    const f = tf.customGrad(((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
      save([xi, g]);
      return {
        value: tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x: xi, gamma: g, beta: b }, attrs) as tf.Tensor,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf
            .engine()
            .runKernel(FUSED_KERNELS.layerNormGrad, { dy, x: saved[0], gamma: saved[1] }, attrs) as tf.Tensor[],
      };
    }) as unknown as CustomFn) as unknown as (...t: tf.Tensor[]) => tf.Tensor;
    return f(x, gamma, beta) as T;
  }
  const { mean, variance } = tf.moments(x, -1, true);
  const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(y, gamma), beta) as T;
}

/** Exact GELU (erf form), as nn.GELU; one fused op where the backend has it. */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (x.dtype === 'float32' && hasFusedKernel(FUSED_KERNELS.gelu) && hasFusedKernel(FUSED_KERNELS.geluGrad)) {
    const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
      save([xi]);
      return {
        value: tf.engine().runKernel(FUSED_KERNELS.gelu, { x: xi }) as tf.Tensor,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.engine().runKernel(FUSED_KERNELS.geluGrad, { dy, x: saved[0] }) as tf.Tensor,
      };
    }) as unknown as CustomFn) as unknown as (t: tf.Tensor) => tf.Tensor;
    return f(x) as T;
  }
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T;
}

/** L2-normalise rows of [B, D] (eps as F.normalize: 1e-12 on the norm). */
export function l2Normalize<T extends tf.Tensor>(x: T, axis = -1): T {
  const norm = tf.maximum(tf.sqrt(tf.sum(tf.square(x), axis, true)), 1e-12);
  return tf.div(x, norm) as T;
}

/** Identity in the forward pass, zero gradient in the backward pass (torch's .detach()). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad(((a: tf.Tensor) => ({
    value: tf.clone(a),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as T;
}

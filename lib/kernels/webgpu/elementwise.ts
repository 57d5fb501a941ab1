/**
 * Elementwise kernels that replace short chains of tfjs ops with one dispatch.
 *
 * `axpby`: a * x + b * y, for the EMA teacher update (tfjs: mul, mul, add = three dispatches and
 * two intermediate tensors per parameter). a and b are uniforms: the EMA momentum follows a
 * schedule, and a baked constant would compile a new shader every step.
 */
import * as tf from '@tensorflow/tfjs';
import { WebgpuBackendLike, gridProgram } from './program';

export function axpby(
  backend: WebgpuBackendLike,
  x: tf.TensorInfo,
  y: tf.TensorInfo,
  a: number,
  b: number,
): tf.TensorInfo {
  if (x.shape.join(',') !== y.shape.join(',')) throw new Error(`axpby: shapes differ, [${x.shape}] vs [${y.shape}]`);
  if (!Number.isFinite(a) || !Number.isFinite(b))
    throw new Error(`axpby: a and b must be finite numbers, got ${a}, ${b}`);
  const n = x.shape.reduce((p, q) => p * q, 1);
  if (n === 0) return backend.makeTensorInfo(x.shape, 'float32');
  const prog = gridProgram({
    shaderKey: `dtAxpby_${n}`,
    outputShape: x.shape,
    variableNames: ['X', 'Y'],
    uniforms: 'a : f32, b : f32,',
    n,
    body: 'result[i] = uniforms.a * X[i] + uniforms.b * Y[i];',
  });
  return backend.runWebGPUProgram(prog, [x, y], 'float32', [
    { type: 'float32', data: [a] },
    { type: 'float32', data: [b] },
  ]);
}

/** WGSL erf, the Abramowitz-Stegun 7.1.26 approximation tfjs uses for its Erf kernel (same constants). */
function erfWgsl(): string {
  const b = tf.backend_util;
  return `
      fn dtErf(a: f32) -> f32 {
        let s = sign(a);
        let z = abs(a);
        let t = 1.0 / (1.0 + ${b.ERF_P} * z);
        return s * (1.0 - (((((${b.ERF_A5} * t + ${b.ERF_A4}) * t) + ${b.ERF_A3}) * t + ${b.ERF_A2}) * t + ${b.ERF_A1}) * t * exp(-z * z));
      }`;
}

/**
 * Exact (erf) GELU, x * 0.5 * (1 + erf(x / sqrt 2)), as nn.GELU; `grad` gives dy * GELU'(x) with
 * GELU'(x) = 0.5 * (1 + erf(x / sqrt 2)) + x * exp(-x^2 / 2) / sqrt(2 pi). One dispatch each, where
 * tfjs' autodiff through mul/erf/add takes about five forward and ten backward.
 */
export function gelu(backend: WebgpuBackendLike, x: tf.TensorInfo, dy?: tf.TensorInfo): tf.TensorInfo {
  if (dy && dy.shape.join(',') !== x.shape.join(','))
    throw new Error(`gelu gradient: dy [${dy.shape}] and x [${x.shape}] differ`);
  const n = x.shape.reduce((p, q) => p * q, 1);
  if (n === 0) return backend.makeTensorInfo(x.shape, 'float32');
  const body = dy
    ? `let v = X[i];
          let cdf = 0.5 * (1.0 + dtErf(v * 0.707106781));
          result[i] = DY[i] * (cdf + v * exp(-0.5 * v * v) * 0.398942280);`
    : `let v = X[i];
          result[i] = (v * 0.5) * (1.0 + dtErf(v * 0.707106781));`;
  const prog = gridProgram({
    shaderKey: `dtGelu_${dy ? 'grad' : 'fwd'}_${n}`,
    outputShape: x.shape,
    variableNames: dy ? ['DY', 'X'] : ['X'],
    n,
    decls: erfWgsl(),
    body,
  });
  return backend.runWebGPUProgram(prog, dy ? [dy, x] : [x], 'float32');
}

/** Per-step values of the flat Adam/AdamW update (uniforms: they change every step). */
export interface AdamStep {
  lr: number;
  wd: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1 - beta1^t and 1 - beta2^t. */
  bc1: number;
  bc2: number;
  /** 'adamw': decoupled decay on the update; 'adam': L2 decay added to the gradient. */
  decoupled: boolean;
}

/**
 * One of the three outputs of an Adam/AdamW step over flat tensors, in one dispatch each (tfjs ops
 * take about 17, each with a flat-size temporary): 'm' the new first moment, 'v' the new second
 * moment, 'p' the new parameters. Inputs: g (gradient, multiplied by `scale[0]`, the clipping
 * factor), p, m, v, `decay` (nonzero where weight decay applies) and optionally `active` (zero
 * for frozen parameters, which keep p, m and v). The same arithmetic, in the same order, as the
 * tfjs form in lib/train/optimizers.ts.
 */
export function adamFlat(
  backend: WebgpuBackendLike,
  which: 'm' | 'v' | 'p',
  ins: {
    g: tf.TensorInfo;
    scale: tf.TensorInfo;
    p: tf.TensorInfo;
    m: tf.TensorInfo;
    v: tf.TensorInfo;
    decay: tf.TensorInfo;
    active?: tf.TensorInfo;
  },
  s: AdamStep,
): tf.TensorInfo {
  const n = ins.p.shape.reduce((a, b) => a * b, 1);
  for (const [k, t] of Object.entries(ins)) {
    if (k !== 'scale' && t && t.shape.reduce((a, b) => a * b, 1) !== n)
      throw new Error(`adamFlat: ${k} has shape [${t.shape}], expected ${n} elements`);
  }
  const names = ['G', 'S', 'P', 'M', 'V', 'D', ...(ins.active ? ['A'] : [])];
  const gradTerm = s.decoupled ? 'G[i] * S[0]' : 'select(G[i] * S[0], G[i] * S[0] + P[i] * uniforms.wd, D[i] != 0)';
  const out =
    which === 'm'
      ? 'M[i] * uniforms.beta1 + g * (1.0 - uniforms.beta1)'
      : which === 'v'
        ? 'V[i] * uniforms.beta2 + (g * g) * (1.0 - uniforms.beta2)'
        : `P[i] - upd * uniforms.lr`;
  const keep = which === 'm' ? 'M[i]' : which === 'v' ? 'V[i]' : 'P[i]';
  const update =
    which === 'p'
      ? `let m = M[i] * uniforms.beta1 + g * (1.0 - uniforms.beta1);
          let v = V[i] * uniforms.beta2 + (g * g) * (1.0 - uniforms.beta2);
          var upd = (m / uniforms.bc1) / (sqrt(v / uniforms.bc2) + uniforms.eps);
          ${s.decoupled ? 'if (D[i] != 0) { upd = upd + P[i] * uniforms.wd; }' : ''}`
      : '';
  const body = `let g = ${gradTerm};
          ${update}
          var r = ${out};
          ${ins.active ? `if (A[i] == 0) { r = ${keep}; }` : ''}
          result[i] = r;`;
  const prog = gridProgram({
    shaderKey: `dtAdam_${which}_${n}_${s.decoupled}_${ins.active ? 'a' : ''}`,
    outputShape: ins.p.shape,
    variableNames: names,
    uniforms: 'lr : f32, wd : f32, beta1 : f32, beta2 : f32, eps : f32, bc1 : f32, bc2 : f32,',
    n,
    body,
  });
  const u = [s.lr, s.wd, s.beta1, s.beta2, s.eps, s.bc1, s.bc2].map((x) => ({ type: 'float32', data: [x] }));
  const inputs = [ins.g, ins.scale, ins.p, ins.m, ins.v, ins.decay, ...(ins.active ? [ins.active] : [])];
  return backend.runWebGPUProgram(prog, inputs, 'float32', u);
}

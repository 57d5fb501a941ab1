/**
 * Elementwise kernels that replace short chains of tfjs ops with one dispatch.
 *
 * `axpby`: a * x + b * y, for the EMA teacher update (tfjs: mul, mul, add = three dispatches and
 * two intermediate tensors per parameter). a and b are uniforms: the EMA momentum follows a
 * schedule, and a baked constant would compile a new shader every step.
 */
import * as tf from '@tensorflow/tfjs';
import { USE_UNIFORMS, WebgpuBackendLike, ceilDiv, i32, wgslProgram } from './program';

const GROUPS_MAX = 8192;

export function axpby(backend: WebgpuBackendLike, x: tf.TensorInfo, y: tf.TensorInfo, a: number, b: number): tf.TensorInfo {
  if (x.shape.join(',') !== y.shape.join(',')) throw new Error(`axpby: shapes differ, [${x.shape}] vs [${y.shape}]`);
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new Error(`axpby: a and b must be finite numbers, got ${a}, ${b}`);
  const n = x.shape.reduce((p, q) => p * q, 1);
  if (n === 0) return backend.makeTensorInfo(x.shape, 'float32');
  const groups = Math.max(1, Math.min(ceilDiv(n, 256), GROUPS_MAX));
  const prog = wgslProgram({
    shaderKey: `dtAxpby_${n}_${groups}`,
    outputShape: x.shape,
    variableNames: ['X', 'Y'],
    workgroupSize: [256, 1, 1],
    dispatch: [groups, 1, 1],
    uniforms: 'a : f32, b : f32,',
    getUserCode: () => `
      fn main() {
        ${USE_UNIFORMS}
        for (var i = i32(workgroupId.x) * 256 + i32(localIndex); i < ${i32(n)}; i = i + ${i32(groups * 256)}) {
          result[i] = uniforms.a * X[i] + uniforms.b * Y[i];
        }
      }`,
  });
  return backend.runWebGPUProgram(prog, [x, y], 'float32', [{ type: 'float32', data: [a] }, { type: 'float32', data: [b] }]);
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
  if (dy && dy.shape.join(',') !== x.shape.join(',')) throw new Error(`gelu gradient: dy [${dy.shape}] and x [${x.shape}] differ`);
  const n = x.shape.reduce((p, q) => p * q, 1);
  if (n === 0) return backend.makeTensorInfo(x.shape, 'float32');
  const groups = Math.max(1, Math.min(ceilDiv(n, 256), GROUPS_MAX));
  const body = dy
    ? `let v = X[i];
          let cdf = 0.5 * (1.0 + dtErf(v * 0.707106781));
          result[i] = DY[i] * (cdf + v * exp(-0.5 * v * v) * 0.398942280);`
    : `let v = X[i];
          result[i] = (v * 0.5) * (1.0 + dtErf(v * 0.707106781));`;
  const prog = wgslProgram({
    shaderKey: `dtGelu_${dy ? 'grad' : 'fwd'}_${n}_${groups}`,
    outputShape: x.shape,
    variableNames: dy ? ['DY', 'X'] : ['X'],
    workgroupSize: [256, 1, 1],
    dispatch: [groups, 1, 1],
    getUserCode: () => `${erfWgsl()}
      fn main() {
        ${USE_UNIFORMS}
        for (var i = i32(workgroupId.x) * 256 + i32(localIndex); i < ${i32(n)}; i = i + ${i32(groups * 256)}) {
          ${body}
        }
      }`,
  });
  return backend.runWebGPUProgram(prog, dy ? [dy, x] : [x], 'float32');
}

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

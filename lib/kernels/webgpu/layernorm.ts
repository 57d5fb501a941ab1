/**
 * Layer norm over the last axis on WebGPU (x seen as [R, C], one row per token), in one dispatch
 * forward and four backward, instead of ~9 and ~15 tfjs kernels:
 *
 *   forward   y = (x - mean) / sqrt(var + eps) * gamma + beta   one workgroup per row: mean, then
 *                                                               the centred variance (two passes
 *                                                               over the row, as tf.moments), then y
 *   backward  rowStats [R, 2] = (mean, 1/sqrt(var + eps))       same row reductions
 *             dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma
 *             (dbeta, dgamma) = column sums of (dy, dy * xhat)  block partials + one finish, its
 *                                                               two rows copied out (batchnorm.ts'
 *                                                               pairPartials/finishPairs, copy.ts)
 *
 * The row kernels run 64 threads per row (a ViT-T row has 192 channels); the statistics meet in
 * workgroup memory in a fixed tree order, so the result is the same every run.
 */
import * as tf from '@tensorflow/tfjs';
import { USE_UNIFORMS, WebgpuBackendLike, allocTemp, ceilDiv, f32, freeTemp, i32, wgslProgram } from './program';
import { finishPairs, pairPartials } from './bnKernels';
import { copyOut } from './copy';

const T = 64; // threads per row
const MAX_GROUPS = 65535;

/** [R, C] view of x (channels last). */
export function lnRowsCols(shape: number[]): { R: number; C: number } {
  if (shape.length < 1) throw new Error('layer norm: input must have rank >= 1');
  const C = shape[shape.length - 1];
  const R = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  if (R < 1 || C < 1) throw new Error(`layer norm: empty input [${shape}]`);
  return { R, C };
}

/**
 * WGSL shared by the row kernels: `rowSum(v)` reduces one value per thread to the row total
 * (every thread gets it), and constant-trip loops over rows so barriers stay in uniform control flow.
 */
function rowHelpers(): string {
  return `
      var<workgroup> red: array<f32, ${T}>;
      fn rowSum(v: f32, lid: i32) -> f32 {
        red[lid] = v;
        workgroupBarrier();
        for (var s = ${T / 2}; s > 0; s = s >> 1u) {
          if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
          workgroupBarrier();
        }
        let total = red[0];
        workgroupBarrier();
        return total;
      }`;
}

/** mean and 1/sqrt(var + eps) of row `row` (two passes, as tf.moments: mean, then squared deviations). */
function rowStatsCode(C: number, eps: number): string {
  return `
          var s1 = 0.0;
          if (live) { for (var c = lid; c < C_; c = c + ${T}) { s1 = s1 + X[row * C_ + c]; } }
          let mean = rowSum(s1, lid) / ${f32(C)};
          var s2 = 0.0;
          if (live) { for (var c = lid; c < C_; c = c + ${T}) { let d = X[row * C_ + c] - mean; s2 = s2 + d * d; } }
          let rstd = inverseSqrt(rowSum(s2, lid) / ${f32(C)} + ${f32(eps)});`;
}

function rowProgram(kind: 'forward' | 'stats' | 'dx', R: number, C: number, eps: number) {
  const groups = Math.min(R, MAX_GROUPS);
  const iters = ceilDiv(R, groups);
  const names = kind === 'forward' ? ['X', 'GA', 'BE'] : kind === 'stats' ? ['X'] : ['DY', 'X', 'GA', 'RS'];
  let body: string;
  if (kind === 'forward') {
    body = `${rowStatsCode(C, eps)}
          if (live) {
            for (var c = lid; c < C_; c = c + ${T}) {
              result[row * C_ + c] = (X[row * C_ + c] - mean) * rstd * GA[c] + BE[c];
            }
          }`;
  } else if (kind === 'stats') {
    body = `${rowStatsCode(C, eps)}
          if (live && lid == 0) { result[row * 2] = mean; result[row * 2 + 1] = rstd; }`;
  } else {
    body = `
          var mean = 0.0;
          var rstd = 0.0;
          if (live) { mean = RS[row * 2]; rstd = RS[row * 2 + 1]; }
          var a = 0.0;
          var b = 0.0;
          if (live) {
            for (var c = lid; c < C_; c = c + ${T}) {
              let g = DY[row * C_ + c] * GA[c];
              a = a + g;
              b = b + g * (X[row * C_ + c] - mean) * rstd;
            }
          }
          let ma = rowSum(a, lid) / ${f32(C)};
          let mb = rowSum(b, lid) / ${f32(C)};
          if (live) {
            for (var c = lid; c < C_; c = c + ${T}) {
              let xhat = (X[row * C_ + c] - mean) * rstd;
              result[row * C_ + c] = rstd * (DY[row * C_ + c] * GA[c] - ma - xhat * mb);
            }
          }`;
  }
  return wgslProgram({
    shaderKey: `dtLn_${kind}_${R}_${C}_${f32(eps)}`,
    outputShape: kind === 'stats' ? [R, 2] : [R, C],
    variableNames: names,
    workgroupSize: [T, 1, 1],
    dispatch: [groups, 1, 1],
    getUserCode: () => `
      const R_: i32 = ${i32(R)};
      const C_: i32 = ${i32(C)};
      ${rowHelpers()}
      fn main() {
        ${USE_UNIFORMS}
        let lid = i32(localIndex);
        for (var it = 0; it < ${i32(iters)}; it = it + 1) {
          let row = i32(workgroupId.x) + it * ${i32(groups)};
          let live = row < R_;${body}
        }
      }`,
  });
}

/** Column partial sums over row blocks, P[g] = (sum dy, sum dy * xhat) -> [G, 2C], with the row statistics RS. */
function columnPartials(R: number, C: number) {
  return pairPartials({
    key: 'dtLnCols',
    R,
    C,
    groups: 1,
    names: ['DY', 'X', 'RS'],
    prologue: '',
    row: `let d = DY[r * C_ + c];
            s1 = s1 + d;
            s2 = s2 + d * (X[r * C_ + c] - RS[r * 2]) * RS[r * 2 + 1];`,
  });
}

/** y = layerNorm(x) * gamma + beta over the last axis. */
export function lnForward(
  backend: WebgpuBackendLike,
  x: tf.TensorInfo,
  gamma: tf.TensorInfo,
  beta: tf.TensorInfo,
  eps: number,
): tf.TensorInfo {
  const { R, C } = lnRowsCols(x.shape);
  if (gamma.shape.reduce((a, b) => a * b, 1) !== C || beta.shape.reduce((a, b) => a * b, 1) !== C) {
    throw new Error(`layer norm: gamma/beta must have ${C} elements, got [${gamma.shape}] and [${beta.shape}]`);
  }
  return backend.runWebGPUProgram(
    rowProgram('forward', R, C, eps),
    [x, gamma, beta],
    'float32',
    undefined,
    backend.makeTensorInfo(x.shape, 'float32'),
  );
}

/** [dx, dgamma, dbeta] of layer norm. */
export function lnBackward(
  backend: WebgpuBackendLike,
  dy: tf.TensorInfo,
  x: tf.TensorInfo,
  gamma: tf.TensorInfo,
  eps: number,
): tf.TensorInfo[] {
  const { R, C } = lnRowsCols(x.shape);
  const rs = backend.runWebGPUProgram(
    rowProgram('stats', R, C, eps),
    [x],
    'float32',
    undefined,
    allocTemp(backend, [R, 2]),
  );
  const dx = backend.runWebGPUProgram(
    rowProgram('dx', R, C, eps),
    [dy, x, gamma, rs],
    'float32',
    undefined,
    backend.makeTensorInfo(x.shape, 'float32'),
  );
  const part = columnPartials(R, C);
  const P = backend.runWebGPUProgram(
    part.program,
    [dy, x, rs],
    'float32',
    undefined,
    allocTemp(backend, [part.G, 2 * C]),
  );
  // Both column sums in one finishing dispatch, handed out as copies of its two rows.
  const sums = backend.runWebGPUProgram(finishPairs('both', part.Gb, 1, R, C), [P], 'float32');
  const [dgamma, dbeta] = [1, 0].map((h) => copyOut(backend, sums, h * C, C, [C]));
  freeTemp(backend, rs);
  freeTemp(backend, P);
  freeTemp(backend, sums);
  return [dx, dgamma, dbeta];
}

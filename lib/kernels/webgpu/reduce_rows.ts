/**
 * Column sums of a row-major matrix X [R, C] -> [C] on WebGPU: the reduction behind batch-norm
 * statistics (NHWC activations seen as [N*H*W, C]), bias/BN gradients and split-K GEMM partials.
 *
 * Each workgroup owns 64 columns and a block of rows; its 64x4 threads read rows in a coalesced
 * way (consecutive threads, consecutive columns), sum in registers, then combine the four row lanes
 * through workgroup memory. That writes one partial row per block, [G, C]; a second pass (same
 * program) sums the G partials. Bytes: one read of X plus G*C; no atomics, deterministic order.
 */
import * as tf from '@tensorflow/tfjs';
import { USE_UNIFORMS, WebgpuBackendLike, allocTemp, ceilDiv, f32, freeTemp, i32, wgslProgram } from './program';

/** Tuning of the column-sum kernel. */
export interface ReduceRowsOptions {
  /** Columns per workgroup (threads along x). */
  columnsPerGroup: number;
  /** Row lanes per workgroup (threads along y); columnsPerGroup * rowLanes <= 256. */
  rowLanes: number;
  /** Aim for about this many workgroups in the first pass (enough to fill a big GPU). */
  targetGroups: number;
  /** Never give one workgroup fewer rows than this (keeps the second pass small). */
  minRowsPerGroup: number;
  /** At most this many workgroups along the columns (WebGPU's per-dimension limit; tests lower it). */
  maxGroupsX: number;
}

export const REDUCE_ROWS_DEFAULTS: Readonly<ReduceRowsOptions> = Object.freeze({
  columnsPerGroup: 64,
  rowLanes: 4,
  targetGroups: 1024,
  minRowsPerGroup: 64,
  maxGroupsX: 65535,
});

/** Work counts for the notes/bench: one full pass over X [R, C] plus the partials. */
export function reduceRowsCost(R: number, C: number): { flops: number; bytes: number } {
  return { flops: R * C, bytes: 4 * (R * C + C) };
}

function reduceProgram(
  R: number,
  C: number,
  rowsPerGroup: number,
  scale: number,
  outShape: number[],
  o: ReduceRowsOptions,
) {
  const CW = o.columnsPerGroup;
  const RL = o.rowLanes;
  const groups = ceilDiv(R, rowsPerGroup);
  // More than 65,535 column blocks (C > 4M): each workgroup takes blocks x, x + NX, x + 2 NX, ...
  const blocks = ceilDiv(C, CW);
  const NX = Math.min(blocks, o.maxGroupsX);
  const iters = ceilDiv(blocks, NX);
  const key = `dtReduceRows_${R}_${C}_${rowsPerGroup}_${f32(scale)}_${CW}x${RL}_${NX}`;
  return wgslProgram({
    shaderKey: key,
    outputShape: outShape,
    variableNames: ['X'],
    workgroupSize: [CW, RL, 1],
    dispatch: [NX, groups, 1],
    getUserCode: () => `
      const R_: i32 = ${i32(R)};
      const C_: i32 = ${i32(C)};
      const RPG: i32 = ${i32(rowsPerGroup)};
      var<workgroup> part: array<f32, ${CW * RL}>;
      fn main() {
        ${USE_UNIFORMS}
        let lx = i32(localId.x);
        let ly = i32(localId.y);
        let g = i32(workgroupId.y);
        let rBegin = g * RPG;
        let rEnd = min(R_, rBegin + RPG);
        for (var it = 0; it < ${iters}; it = it + 1) {
          let c = (i32(workgroupId.x) + it * ${NX}) * ${CW} + lx;
          var s = 0.0;
          if (c < C_) {
            for (var r = rBegin + ly; r < rEnd; r = r + ${RL}) {
              s = s + X[r * C_ + c];
            }
          }
          part[ly * ${CW} + lx] = s;
          workgroupBarrier();
          if (ly == 0 && c < C_) {
            var t = part[lx];
            ${Array.from({ length: RL - 1 }, (_, i) => `t = t + part[${(i + 1) * CW} + lx];`).join('\n            ')}
            result[g * C_ + c] = t * ${f32(scale)};
          }
          workgroupBarrier();
        }
      }`,
  });
}

/**
 * Sums X [R, C] (any tensor whose leading dims flatten to R) over its rows, times `scale`,
 * into a tensor of shape `outShape` (C elements). `out`, if given, receives the result (tests pass a
 * NaN-filled buffer to prove every element is written).
 */
export function sumRows(
  backend: WebgpuBackendLike,
  x: tf.TensorInfo,
  R: number,
  C: number,
  scale: number,
  outShape: number[],
  out?: tf.TensorInfo,
  opts: Partial<ReduceRowsOptions> = {},
): tf.TensorInfo {
  const o = { ...REDUCE_ROWS_DEFAULTS, ...opts };
  if (o.columnsPerGroup * o.rowLanes > 256)
    throw new Error(`sumRows: columnsPerGroup*rowLanes must be <= 256, got ${o.columnsPerGroup}*${o.rowLanes}`);
  if (outShape.reduce((a, b) => a * b, 1) !== C)
    throw new Error(`sumRows: outShape ${JSON.stringify(outShape)} does not hold C=${C}`);
  if (R * C !== x.shape.reduce((a, b) => a * b, 1))
    throw new Error(`sumRows: input shape ${JSON.stringify(x.shape)} is not ${R}x${C}`);
  let cur = x;
  let rows = R;
  const temps: tf.TensorInfo[] = [];
  // First passes: blocks of rows -> partial rows, until one block covers everything.
  for (;;) {
    const rpg = Math.max(o.minRowsPerGroup, ceilDiv(rows, o.targetGroups));
    if (rpg >= rows) break;
    const groups = ceilDiv(rows, rpg);
    const prog = reduceProgram(rows, C, rpg, 1, [groups, C], o);
    const next = backend.runWebGPUProgram(prog, [cur], 'float32', undefined, allocTemp(backend, [groups, C]));
    temps.push(next);
    cur = next;
    rows = groups;
  }
  const prog = reduceProgram(rows, C, rows, scale, outShape, o);
  const res = backend.runWebGPUProgram(prog, [cur], 'float32', undefined, out);
  for (const t of temps) freeTemp(backend, t);
  return res;
}

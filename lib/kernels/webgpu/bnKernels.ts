/**
 * Training-mode batch norm on WebGPU in six dispatches forward and backward (three each) instead of
 * about thirty tfjs kernels (tf.moments, rsqrt, scale/shift, ReLU and their gradients):
 *
 *   forward   partials  P[g] = (sum (x - k), sum (x - k)^2) over a block of rows    [G, 2C]
 *             finish    stats = (mean, biased var) = (k + S1/n, S2/n - (S1/n)^2)    [2, C]
 *             apply     y = (x - mean) * gamma / sqrt(var + eps) + beta (+ residual), then ReLU
 *   backward  partials  P[g] = (sum d, sum d * xhat), d = dy masked by y > 0 (ReLU) [G, 2C]
 *             finish    sums (S_d, S_dxhat) per group -> [2 * groups, C], and with several
 *                       groups a last pair of rows summed over all of them; dbeta = S_d and
 *                       dgamma = S_dxhat are buffer copies of the totals (affine only; copy.ts)
 *             dx        gamma/sqrt(var+eps) * (d - S_d/n - xhat * S_dxhat/n)        [R, C]
 *             dres      the residual's gradient, dy masked by the ReLU (with a residual)
 *   running   (1 - m) * running + m * f * stats[row]  (one per buffer)              [C]
 *
 * X is any activation whose leading axes flatten to R rows of C channels (NHWC or [B, C]). The
 * variance uses sums shifted by the first row, k = x[0, c], so partials from different blocks add
 * exactly and the E[x^2] - E[x]^2 cancellation is only as large as (mean - k)^2 / var (the
 * "shifted data" algorithm; Chan, Golub & LeVeque 1983). The backward pass recomputes xhat and
 * the ReLU mask from x instead of saving the output (the same expression as the forward pass, so
 * the mask is bit-identical to `y > 0`). Partials are combined in a fixed order: no
 * atomics, the same bits every run.
 */
import * as tf from '@tensorflow/tfjs';
import {
  USE_UNIFORMS,
  WebgpuBackendLike,
  allocTemp,
  ceilDiv,
  f32,
  freeTemp,
  gridProgram,
  i32,
  wgslProgram,
} from './program';
import { copyOut } from './copy';

const CW = 64; // columns per workgroup
const RL = 4; // row lanes per workgroup
const TARGET_GROUPS = 1024;
const MIN_ROWS_PER_GROUP = 64;

/** Batch-norm options baked into the shaders. */
export interface BnAttrs {
  eps: number;
  relu: boolean;
  /**
   * Statistics per group of consecutive rows ("ghost" batch norm): with V views of B images
   * concatenated into one batch, groups = V gives each view its own statistics, exactly as V
   * separate passes would. R must divide by it. Default 1.
   */
  groups: number;
}

/** [R, C] view of x: channels last, every leading axis a row; Rg rows per statistics group. */
export function bnRowsCols(shape: number[], groups = 1): { R: number; C: number; Rg: number } {
  if (shape.length < 2) throw new Error(`batch norm: input must have rank >= 2, got shape [${shape}]`);
  const C = shape[shape.length - 1];
  const R = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  if (R < 1 || C < 1) throw new Error(`batch norm: empty input [${shape}]`);
  if (ceilDiv(C, CW) > 65535) throw new Error(`batch norm: ${C} channels exceed the dispatch limit (${65535 * CW})`);
  if (!Number.isInteger(groups) || groups < 1 || shape[0] % groups !== 0) {
    throw new Error(`batch norm: groups must be a positive integer dividing the batch (${shape[0]}), got ${groups}`);
  }
  return { R, C, Rg: R / groups };
}

function rowsPerGroup(R: number): number {
  return Math.max(MIN_ROWS_PER_GROUP, ceilDiv(R, TARGET_GROUPS));
}

/** Per-column (WGSL) prologue for group `grp`: inv = 1/sqrt(var + eps), scale = inv * gamma, shift = beta. */
function columnPrologue(affine: boolean, eps: number): string {
  return `
          let mean = ST[grp * 2 * C_ + c];
          let inv = inverseSqrt(ST[grp * 2 * C_ + C_ + c] + ${f32(eps)});
          let scale = ${affine ? 'inv * GA[c]' : 'inv'};
          let shift = ${affine ? 'BE[c]' : '0.0'};`;
}

/**
 * Two column sums per block of rows, P[g] = (sum s1, sum s2) -> [G, 2C]: the workgroup is 64
 * columns x 4 row lanes, lane sums meet in workgroup memory. Row blocks never straddle a statistics
 * group (`groups` equal parts of the rows). `prologue` runs once per column (it may use `grp`, `c`);
 * `row` adds row r's terms to s1 and s2. Used by the batch-norm statistics and gradients and by
 * layer norm's dgamma/dbeta (layernorm.ts); `finishPairs` sums the partial rows.
 */
export function pairPartials(o: {
  key: string;
  R: number;
  C: number;
  groups: number;
  names: string[];
  prologue: string;
  row: string;
}) {
  const { R, C, groups } = o;
  const Rg = R / groups;
  const rpg = rowsPerGroup(Rg);
  const Gb = ceilDiv(Rg, rpg); // row blocks per statistics group
  const G = Gb * groups;
  return {
    G,
    Gb,
    program: wgslProgram({
      shaderKey: `${o.key}_${R}_${C}_${groups}_${rpg}`,
      outputShape: [G, 2 * C],
      variableNames: o.names,
      workgroupSize: [CW, RL, 1],
      dispatch: [ceilDiv(C, CW), G, 1],
      getUserCode: () => `
      const R_: i32 = ${i32(R)};
      const C_: i32 = ${i32(C)};
      var<workgroup> p1: array<f32, ${CW * RL}>;
      var<workgroup> p2: array<f32, ${CW * RL}>;
      fn main() {
        ${USE_UNIFORMS}
        let lx = i32(localId.x);
        let ly = i32(localId.y);
        let g = i32(workgroupId.y);
        let grp = g / ${i32(Gb)};
        let c = i32(workgroupId.x) * ${CW} + lx;
        let rBegin = grp * ${i32(Rg)} + (g % ${i32(Gb)}) * ${i32(rpg)};
        let rEnd = min((grp + 1) * ${i32(Rg)}, rBegin + ${i32(rpg)});
        var s1 = 0.0;
        var s2 = 0.0;
        if (c < C_) {${o.prologue}
          for (var r = rBegin + ly; r < rEnd; r = r + ${RL}) {
            ${o.row}
          }
        }
        p1[ly * ${CW} + lx] = s1;
        p2[ly * ${CW} + lx] = s2;
        workgroupBarrier();
        if (ly == 0 && c < C_) {
          var t1 = p1[lx];
          var t2 = p2[lx];
          ${Array.from({ length: RL - 1 }, (_, i) => `t1 = t1 + p1[${(i + 1) * CW} + lx]; t2 = t2 + p2[${(i + 1) * CW} + lx];`).join('\n          ')}
          result[g * 2 * C_ + c] = t1;
          result[g * 2 * C_ + C_ + c] = t2;
        }
      }`,
    }),
  };
}

/** Batch-norm partials: 'stats' sums (x - k, (x - k)^2) with k the group's first row; 'grad' sums (d, d * xhat). */
function partialsProgram(kind: 'stats' | 'grad', R: number, C: number, affine: boolean, a: BnAttrs, res = false) {
  const Rg = R / a.groups;
  if (kind === 'stats') {
    return pairPartials({
      key: 'dtBnPart_stats',
      R,
      C,
      groups: a.groups,
      names: ['X'],
      prologue: `
          let k = X[grp * ${i32(Rg)} * C_ + c];`,
      row: `let d = X[r * C_ + c] - k;
            s1 = s1 + d;
            s2 = s2 + d * d;`,
    });
  }
  return pairPartials({
    key: `dtBnPart_grad_${affine}_${a.relu}_${res}_${f32(a.eps)}`,
    R,
    C,
    groups: a.groups,
    names: ['DY', 'X', 'ST', ...(affine ? ['GA', 'BE'] : []), ...(res ? ['RES'] : [])],
    prologue: columnPrologue(affine, a.eps),
    row: `let xc = X[r * C_ + c] - mean;
            let xhat = xc * inv;
            var d = DY[r * C_ + c];
            ${a.relu ? `if (xc * scale + shift${res ? ' + RES[r * C_ + c]' : ''} <= 0.0) { d = 0.0; }` : ''}
            s1 = s1 + d;
            s2 = s2 + d * xhat;`,
  });
}

/**
 * Sums partial rows (Gb row blocks per group, `groups` groups). `what`: 'stats' -> [groups * 2, C]
 * (mean, biased var per group) using k = the group's first row; 'both' -> [groups * 2, C] raw sums
 * per group, and with `withTotals` (groups > 1) one more pair of rows with the sums over every group
 * (the gradients of gamma and beta are copies of them).
 */
export function finishPairs(
  what: 'stats' | 'both',
  Gb: number,
  groups: number,
  R: number,
  C: number,
  withTotals = false,
) {
  const halves = [0, 1];
  const withTotal = what === 'both' && withTotals && groups > 1;
  const rows = Gb; // partial rows summed by one output row (the total row: all of them)
  const outRows = groups + (withTotal ? 1 : 0);
  const Rg = R / groups;
  const sumLanes = (h: number): string => `
          var t${h} = 0.0;
          for (var r = first + ly; r < first + count; r = r + ${RL}) { t${h} = t${h} + P[r * 2 * C_ + ${h} * C_ + c]; }
          p${h}[ly * ${CW} + lx] = t${h};`;
  const total = (h: number): string => `
          var u${h} = p${h}[lx];
          ${Array.from({ length: RL - 1 }, (_, i) => `u${h} = u${h} + p${h}[${(i + 1) * CW} + lx];`).join(' ')}`;
  const write =
    what === 'stats'
      ? `
          let m1 = u0 / ${f32(Rg)};
          result[o * 2 * C_ + c] = X[o * ${i32(Rg)} * C_ + c] + m1;
          result[o * 2 * C_ + C_ + c] = max(u1 / ${f32(Rg)} - m1 * m1, 0.0);`
      : halves.map((h) => `result[o * 2 * C_ + ${h} * C_ + c] = u${h};`).join('\n          ');
  return wgslProgram({
    shaderKey: `dtBnFinish_${what}${withTotal ? 'T' : ''}_${Gb}_${groups}_${R}_${C}`,
    outputShape: [outRows * 2, C],
    variableNames: what === 'stats' ? ['P', 'X'] : ['P'],
    workgroupSize: [CW, RL, 1],
    dispatch: [ceilDiv(C, CW), outRows, 1],
    getUserCode: () => `
      const C_: i32 = ${i32(C)};
      ${halves.map((h) => `var<workgroup> p${h}: array<f32, ${CW * RL}>;`).join('\n      ')}
      fn main() {
        ${USE_UNIFORMS}
        let lx = i32(localId.x);
        let ly = i32(localId.y);
        let c = i32(workgroupId.x) * ${CW} + lx;
        let o = i32(workgroupId.y);
        ${
          withTotal
            ? `// Output row pair ${groups} (the last) sums the partial rows of every group.
        let first = select(o * ${i32(rows)}, 0, o == ${i32(groups)});
        let count = select(${i32(rows)}, ${i32(rows * groups)}, o == ${i32(groups)});`
            : `let first = o * ${i32(rows)};
        let count = ${i32(rows)};`
        }
        if (c < C_) {${halves.map(sumLanes).join('')}
        }
        workgroupBarrier();
        if (ly == 0 && c < C_) {${halves.map(total).join('')}
          ${write}
        }
      }`,
  });
}

/**
 * Elementwise pass over [R, C]: 'apply' writes y, 'dx' the input gradient, 'dres' the gradient of
 * the residual (dy where the ReLU passed). With `res`, y = ReLU(bn(x) + residual).
 */
function elementwiseProgram(
  kind: 'apply' | 'dx' | 'dres',
  R: number,
  C: number,
  affine: boolean,
  a: BnAttrs,
  res = false,
) {
  const N = R * C;
  const Rg = R / a.groups;
  const cols = affine ? ['GA', 'BE'] : [];
  const resName = res ? ['RES'] : [];
  const names =
    kind === 'apply'
      ? ['X', 'ST', ...cols, ...resName]
      : kind === 'dx'
        ? ['DY', 'X', 'ST', 'GS', ...cols, ...resName]
        : ['DY', 'X', 'ST', ...cols, ...resName];
  const mask = a.relu ? `if (xc * scale + shift${res ? ' + RES[i]' : ''} <= 0.0) { d = 0.0; }` : '';
  const body =
    kind === 'apply'
      ? `
          var y = (X[i] - mean) * scale + shift${res ? ' + RES[i]' : ''}; // the backward mask recomputes exactly this
          ${a.relu ? 'y = max(y, 0.0);' : ''}
          result[i] = y;`
      : kind === 'dx'
        ? `
          let xc = X[i] - mean;
          let xhat = xc * inv;
          var d = DY[i];
          ${mask}
          result[i] = (d - GS[grp * 2 * C_ + c] / ${f32(Rg)} - xhat * (GS[grp * 2 * C_ + C_ + c] / ${f32(Rg)})) * scale;`
        : `
          let xc = X[i] - mean;
          var d = DY[i];
          ${mask}
          result[i] = d;`;
  return gridProgram({
    shaderKey: `dtBnElem_${kind}_${R}_${C}_${a.groups}_${affine}_${a.relu}_${res}_${f32(a.eps)}`,
    outputShape: [R, C],
    variableNames: names,
    n: N,
    decls: `const C_: i32 = ${i32(C)};`,
    body: `let c = i % C_;
          let grp = i / ${i32(Rg * C)};${columnPrologue(affine, a.eps)}${body}`,
  });
}

/** Forward: [y, stats] with stats = [2, C] (mean, biased variance). */
export function bnForward(
  backend: WebgpuBackendLike,
  x: tf.TensorInfo,
  gamma: tf.TensorInfo | undefined,
  beta: tf.TensorInfo | undefined,
  a: BnAttrs,
  residual?: tf.TensorInfo,
): [tf.TensorInfo, tf.TensorInfo] {
  const { R, C } = bnRowsCols(x.shape, a.groups);
  checkResidual(x, a, residual);
  const affine = gamma !== undefined && beta !== undefined;
  const part = partialsProgram('stats', R, C, affine, a);
  const P = backend.runWebGPUProgram(part.program, [x], 'float32', undefined, allocTemp(backend, [part.G, 2 * C]));
  const stats = backend.runWebGPUProgram(finishPairs('stats', part.Gb, a.groups, R, C), [P, x], 'float32');
  freeTemp(backend, P);
  const apply = elementwiseProgram('apply', R, C, affine, a, residual !== undefined);
  const ins = [x, stats, ...(affine ? [gamma, beta] : []), ...(residual ? [residual] : [])];
  const y = backend.runWebGPUProgram(apply, ins, 'float32', undefined, backend.makeTensorInfo(x.shape, 'float32'));
  return [y, stats];
}

/** With a residual: same shape as x, and only under a ReLU (otherwise its gradient is just dy). */
function checkResidual(x: tf.TensorInfo, a: BnAttrs, residual?: tf.TensorInfo): void {
  if (!residual) return;
  if (residual.shape.join(',') !== x.shape.join(','))
    throw new Error(`batch norm: residual [${residual.shape}] does not match x [${x.shape}]`);
  if (!a.relu) throw new Error('batch norm: a residual is only fused under a ReLU (relu: true)');
}

/** Backward: [dx] or, affine, [dx, dgamma, dbeta]; with a residual, its gradient last. */
export function bnBackward(
  backend: WebgpuBackendLike,
  dy: tf.TensorInfo,
  x: tf.TensorInfo,
  stats: tf.TensorInfo,
  gamma: tf.TensorInfo | undefined,
  beta: tf.TensorInfo | undefined,
  a: BnAttrs,
  residual?: tf.TensorInfo,
): tf.TensorInfo[] {
  const { R, C } = bnRowsCols(x.shape, a.groups);
  checkResidual(x, a, residual);
  if (stats.shape.reduce((p, q) => p * q, 1) !== 2 * C * a.groups)
    throw new Error(
      `batch norm gradient: stats ${JSON.stringify(stats.shape)} do not match ${a.groups} group(s) of ${C} channels`,
    );
  const affine = gamma !== undefined && beta !== undefined;
  const res = residual !== undefined;
  const cols = [...(affine ? [gamma, beta] : []), ...(residual ? [residual] : [])];
  const part = partialsProgram('grad', R, C, affine, a, res);
  const P = backend.runWebGPUProgram(
    part.program,
    [dy, x, stats, ...cols],
    'float32',
    undefined,
    allocTemp(backend, [part.G, 2 * C]),
  );
  // Per-group sums (for dx) and, after them, the sums over every group: dbeta and dgamma are copies
  // of that last pair of rows (one finishing dispatch instead of three).
  const sums = backend.runWebGPUProgram(finishPairs('both', part.Gb, a.groups, R, C, affine), [P], 'float32');
  const dx = backend.runWebGPUProgram(
    elementwiseProgram('dx', R, C, affine, a, res),
    [dy, x, stats, sums, ...cols],
    'float32',
    undefined,
    backend.makeTensorInfo(x.shape, 'float32'),
  );
  const out = [dx];
  if (affine) {
    const totals = a.groups > 1 ? 2 * C * a.groups : 0;
    for (const h of [1, 0] as const) {
      out.push(copyOut(backend, sums, totals + h * C, C, [C]));
    }
  }
  if (residual) {
    out.push(
      backend.runWebGPUProgram(
        elementwiseProgram('dres', R, C, affine, a, true),
        [dy, x, stats, ...cols],
        'float32',
        undefined,
        backend.makeTensorInfo(x.shape, 'float32'),
      ),
    );
  }
  freeTemp(backend, P);
  freeTemp(backend, sums);
  return out;
}

/**
 * One running-statistics buffer: running <- (1 - momentum) * running + momentum * factor *
 * stats[g, row] for each group g in order (what successive passes over the groups would do).
 */
export function bnRunning(
  backend: WebgpuBackendLike,
  running: tf.TensorInfo,
  stats: tf.TensorInfo,
  row: 0 | 1,
  momentum: number,
  factor: number,
): tf.TensorInfo {
  const C = running.shape.reduce((p, q) => p * q, 1);
  const S = stats.shape.reduce((p, q) => p * q, 1);
  if (S % (2 * C) !== 0 || S === 0)
    throw new Error(`bnRunning: stats ${JSON.stringify(stats.shape)} do not match ${C} channels`);
  const groups = S / (2 * C);
  const prog = gridProgram({
    shaderKey: `dtBnRunning_${C}_${groups}_${row}_${f32(momentum)}_${f32(factor)}`,
    outputShape: running.shape,
    variableNames: ['RUN', 'ST'],
    n: C,
    index: 'c',
    body: `var r = RUN[c];
          for (var g = 0; g < ${i32(groups)}; g = g + 1) {
            r = r * ${f32(1 - momentum)} + (ST[g * ${i32(2 * C)} + ${i32(row * C)} + c] * ${f32(factor)}) * ${f32(momentum)};
          }
          result[c] = r;`,
  });
  return backend.runWebGPUProgram(prog, [running, stats], 'float32');
}

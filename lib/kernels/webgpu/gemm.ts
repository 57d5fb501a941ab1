/**
 * Tiled implicit GEMM on WebGPU: C[M, N] = sum_k A[m, k] * B[k, n], where A and B are not
 * materialised but read through WGSL loader functions (`loadA(m, k)`, `loadB(k, n)`), which is how
 * convolutions become GEMMs without an im2col buffer (the "implicit GEMM" of cuDNN/CUTLASS).
 *
 * Classic shared-memory tiling (as in CUTLASS's SIMT path / the tfjs matmul_packed program, our own
 * code): a 16x16 workgroup computes a (16*TM)x(16*TN) tile, each thread a TMxTN register block at
 * rows ty+16i and columns tx+16j (conflict-free broadcast reads from workgroup memory); K advances
 * by BK=16 per step with both operand tiles staged in workgroup memory (rows padded by one word to
 * avoid bank conflicts on the transposing stores). When the tile grid is too small to fill the GPU
 * (the conv filter gradient: M*N is tiny, K = batch*H*W is huge) K is split across workgroups
 * (split-K): each split writes a partial [S, M, N] and a column-sum pass adds them. Options choose
 * the register block (4 or 8 per side), the thread layout ('strided' or 'blocked'), register
 * prefetch of the next K step and vec4 operand loads (`GemmOptions`).
 */
import * as tf from '@tensorflow/tfjs';
import { USE_UNIFORMS, WebgpuBackendLike, allocTemp, ceilDiv, freeTemp, i32, wgslProgram } from './program';
import { sumRows } from './reduce_rows';

/** Tuning of the GEMM tiles and split-K. */
export interface GemmOptions {
  /** Rows of the register block per thread; the tile has 16*TM rows (4 or 8; 0 = choose by M). */
  tm: number;
  /** Columns of the register block per thread; the tile has 16*TN columns (4 or 8; 0 = choose by N). */
  tn: number;
  /** Split K when the tile grid has fewer workgroups than this (about 4 per SM on an H100). */
  targetWorkgroups: number;
  /** Never give a split fewer than this many K values. */
  minKPerSplit: number;
  /** Force this many K splits (tests); 0 means choose automatically. */
  forceSplits: number;
  /**
   * Which rows/columns a thread owns. 'strided' (measured on the H100): rows ty+16i, columns
   * tx+16j, scalar workgroup-memory reads, 8 per 16 FMAs at 4x4. 'blocked': TM contiguous rows and
   * TN contiguous columns, operand tiles stored as vec4, so a 4x4 block reads two vec4s per 16 FMAs
   * (the usual SGEMM layout: fewer shared-memory instructions per FMA). Not yet timed on a GPU.
   */
  layout: 'strided' | 'blocked';
  /**
   * Register prefetch: the next K step's operand values are loaded from global memory into
   * registers before the current step's multiply-adds and stored to workgroup memory after them,
   * so the loads' latency overlaps the arithmetic instead of waiting on it (the classic SGEMM
   * software pipeline; it matters when few warps per SM can hide latency, as with 8x8 blocks).
   * Not yet timed on a GPU.
   */
  prefetch: boolean;
  /**
   * Load operands from global memory as vec4 (4 consecutive values along the operand's contiguous
   * axis: channels, for every conv pass) where the GEMM offers it (`GemmSpec.vec4`): a quarter of
   * the load instructions and of the im2col index arithmetic per value, which the scalar loaders
   * redo for every element (stock tfjs' Conv2DMM loads vec4 where channels allow, and its forward
   * beat ours at 256x32x32x64 on the H100: 1.28 vs 2.03 ms). Ignored where the spec has no vec4
   * loaders. Not yet timed on a GPU.
   */
  vec4: boolean;
  /**
   * Let a measured choice for this GEMM (`tune.ts`: `tuneGemms`), if one was made in this process,
   * override these options. The tuner itself times candidates with this off.
   */
  useTuned: boolean;
}

export const GEMM_DEFAULTS: Readonly<GemmOptions> = Object.freeze({
  tm: 4,
  tn: 4,
  targetWorkgroups: 528,
  minKPerSplit: 512,
  forceSplits: 0,
  layout: 'strided',
  prefetch: false,
  vec4: false,
  useTuned: true,
});

/** Measured choices by GEMM key (`GemmSpec.key` names every size of the conv pass), set by `tune.ts`. */
const tunedChoices = new Map<string, Partial<GemmOptions>>();

/** Sets (or with undefined, removes) the measured choice for the GEMM with this key. */
export function setTunedGemm(key: string, choice: Partial<GemmOptions> | undefined): void {
  if (choice) tunedChoices.set(key, { ...choice });
  else tunedChoices.delete(key);
}

/** The measured choices made in this process, by GEMM key. */
export function tunedGemms(): ReadonlyMap<string, Partial<GemmOptions>> {
  return tunedChoices;
}

/** Forgets every measured choice (back to the registered options). */
export function clearGemmTuning(): void {
  tunedChoices.clear();
}

/** Called by `runGemm` with every GEMM it runs while set (the tuner records a workload's GEMMs with it). */
type GemmRecorder = (spec: GemmSpec, inputs: readonly tf.TensorInfo[], outShape: number[]) => void;
let recorder: GemmRecorder | undefined;

/** Installs (or with undefined, removes) the GEMM recorder. */
export function setGemmRecorder(r: GemmRecorder | undefined): void {
  recorder = r;
}

const BK = 16;

/**
 * Register-block size for an extent of `n` rows (or columns) when the option is 0 ("auto"): 8 (a
 * 128-wide tile, 64 FMAs per 16 workgroup-memory reads) where the extent is at least 512 and a
 * 128 tile wastes at most 1/8 of it, else 4 (a 64-wide tile). Small extents keep 4 so that the
 * grid has enough workgroups and edge tiles waste less; split-K fills the GPU when it has not.
 */
export function autoBlock(n: number): 4 | 8 {
  return n >= 512 && ceilDiv(n, 128) * 128 <= n * 1.125 ? 8 : 4;
}

/** Resolves `tm`/`tn` = 0 ("auto") for a GEMM of M x N. */
export function resolveTiles(M: number, N: number, o: GemmOptions): GemmOptions {
  return { ...o, tm: o.tm === 0 ? autoBlock(M) : o.tm, tn: o.tn === 0 ? autoBlock(N) : o.tn };
}

/** How a loader's 256 threads walk a BK x (16*T) operand tile: along K (`k`) or along M/N (`mn`). */
export type TileWalk = 'k' | 'mn';

/** One implicit GEMM: sizes, WGSL loaders and how they walk memory. */
export interface GemmSpec {
  /** Name in the shader key (e.g. `conv2dFwd_...` with every baked size). */
  key: string;
  M: number;
  N: number;
  K: number;
  /** WGSL declarations: constants and `fn loadA(m: i32, k: i32) -> f32`, `fn loadB(k: i32, n: i32) -> f32`. Called only with m < M, n < N, k < K. */
  loaders: string;
  /** Input binding names, in the order of the `inputs` passed to `runGemm`. */
  variableNames: string[];
  /** Consecutive threads take consecutive k (`k`) or consecutive m (`mn`) when loading A: pick the contiguous one in memory. */
  walkA: TileWalk;
  /** Same for B: consecutive k (`k`) or consecutive n (`mn`). */
  walkB: TileWalk;
  /**
   * Optional scatter: `loaders` also define `fn outRow(m: i32) -> i32`, the row of the [rows, N]
   * output that GEMM row m goes to (several GEMMs filling disjoint rows of one output, e.g. the
   * phases of a strided conv's input gradient). Such GEMMs never split K.
   */
  scatter?: boolean;
  /**
   * Optional batch of independent GEMMs of the same sizes (C[e] = A[e] B[e], e < batch, output
   * [batch, M, N]): the loaders read the private `gemmBatch` (the e of the running workgroup).
   * Batched GEMMs never split K.
   */
  batch?: number;
  /** Optional vec4 loaders, used when `GemmOptions.vec4` is on (`GemmVec4`). */
  vec4?: GemmVec4;
}

/**
 * Loaders that read an operand 4 values at a time along its walk: `fn loadA4(m: i32, k: i32) ->
 * vec4<f32>` returns A[m, k..k+3] when `walkA` is 'k' and A[m..m+3, k] when it is 'mn' (likewise
 * `loadB4(k, n)`: B[k..k+3, n] or B[k, n..n+3]). They are called with that index a multiple of 4
 * and all four values in range, so the extent along the walk (K, or M / N) must be a multiple of 4.
 */
export interface GemmVec4 {
  /** Whether A is read with `loadA4` (otherwise `loaders` defines the scalar `loadA`). */
  a: boolean;
  /** Whether B is read with `loadB4` (otherwise the scalar `loadB`). */
  b: boolean;
  /** WGSL used instead of `GemmSpec.loaders` (constants, the loaders above, `outRow` if scattering). */
  loaders: string;
  /** Components of each input binding (1: array<f32>, 4: array<vec4<f32>>), in `variableNames` order. */
  components: number[];
}

/**
 * One operand's loader: WGSL statements `body` (which may `return ZERO;`, e.g. in the padding),
 * then a read of binding `buf` at flat index `at`. `vec4`: whether the operand may also be read 4
 * values at a time (the 4 values along its walk are consecutive in `buf` and `at` is then a
 * multiple of 4).
 */
export interface OperandLoader {
  body: string;
  buf: string;
  at: string;
  vec4: boolean;
}

function loaderFn(which: 'A' | 'B', l: OperandLoader, vec: boolean): string {
  const args = which === 'A' ? 'm: i32, k: i32' : 'k: i32, n: i32';
  return `fn load${which}${vec ? '4' : ''}(${args}) -> ${vec ? 'vec4<f32>' : 'f32'} {
        ${l.body.replaceAll('ZERO', vec ? 'vec4<f32>(0.0)' : '0.0')}
        return ${l.buf}[${vec ? `(${l.at}) >> 2u` : l.at}];
      }`;
}

/**
 * `loaders` and `vec4` of a GEMM whose A reads only its first binding and B only its second (every
 * conv pass, Winograd's batched GEMM): `common` WGSL (constants, helpers, `outRow`) and the two
 * operands' loaders, scalar and, where an operand allows it, vec4.
 */
export function operandLoaders(common: string, a: OperandLoader, b: OperandLoader): Pick<GemmSpec, 'loaders' | 'vec4'> {
  const loaders = `${common}
      ${loaderFn('A', a, false)}
      ${loaderFn('B', b, false)}`;
  if (!a.vec4 && !b.vec4) return { loaders };
  return {
    loaders,
    vec4: {
      a: a.vec4,
      b: b.vec4,
      components: [a.vec4 ? 4 : 1, b.vec4 ? 4 : 1],
      loaders: `${common}
      ${loaderFn('A', a, a.vec4)}
      ${loaderFn('B', b, b.vec4)}`,
    },
  };
}

/** The vec4 loaders `runGemm` uses for `spec` under `opts`, checked, or undefined for scalar loads. */
function vec4Loaders(spec: GemmSpec, o: GemmOptions): GemmVec4 | undefined {
  const v = spec.vec4;
  if (!o.vec4 || !v || (!v.a && !v.b)) return undefined;
  const along = (walk: TileWalk, mn: number): number => (walk === 'k' ? spec.K : mn);
  if (v.a && along(spec.walkA, spec.M) % 4 !== 0)
    throw new Error(
      `runGemm(${spec.key}): vec4 loads of A need ${spec.walkA === 'k' ? `K (${spec.K})` : `M (${spec.M})`} divisible by 4`,
    );
  if (v.b && along(spec.walkB, spec.N) % 4 !== 0)
    throw new Error(
      `runGemm(${spec.key}): vec4 loads of B need ${spec.walkB === 'k' ? `K (${spec.K})` : `N (${spec.N})`} divisible by 4`,
    );
  if (v.components.length !== spec.variableNames.length || v.components.some((c) => c !== 1 && c !== 4)) {
    throw new Error(
      `runGemm(${spec.key}): vec4 components ${JSON.stringify(v.components)} do not give 1 or 4 for each of ${spec.variableNames.length} bindings`,
    );
  }
  return v;
}

/** The split-K plan for a GEMM. */
export interface GemmPlan {
  tilesM: number;
  tilesN: number;
  splits: number;
  kPerSplit: number;
}

export function planGemm(M: number, N: number, K: number, opts: GemmOptions): GemmPlan {
  const o = resolveTiles(M, N, opts);
  const tilesM = ceilDiv(M, 16 * o.tm);
  const tilesN = ceilDiv(N, 16 * o.tn);
  let splits = o.forceSplits > 0 ? o.forceSplits : 1;
  if (o.forceSplits <= 0) {
    const tiles = tilesM * tilesN;
    if (tiles < o.targetWorkgroups)
      splits = Math.max(1, Math.min(ceilDiv(o.targetWorkgroups, tiles), Math.floor(K / o.minKPerSplit)));
  }
  splits = Math.min(splits, ceilDiv(K, BK), 65535);
  const kPerSplit = ceilDiv(ceilDiv(K, splits), BK) * BK;
  return { tilesM, tilesN, splits: ceilDiv(K, kPerSplit), kPerSplit };
}

/**
 * Position (kl, ml) in a BK x (16*T) operand tile of the r-th load of a thread: one value, or with
 * `w` = 4 the first of 4 consecutive values along the walk (consecutive threads take consecutive loads).
 */
function tilePos(r: number, T: number, walk: TileWalk, w: 1 | 4): string {
  const idx = `(tid + ${256 * r})`;
  const times = w === 1 ? '' : ` * ${w}`;
  const [kl, ml] =
    walk === 'k'
      ? [`(${idx} % ${BK / w})${times}`, `${idx} / ${BK / w}`]
      : [`${idx} / ${(16 * T) / w}`, `(${idx} % ${(16 * T) / w})${times}`];
  return `let kl = ${kl}; let ml = ${ml};`;
}

/**
 * Reads the thread's T values of one operand tile starting at K index `kStart` into `v{which}{r}`:
 * T scalars, or with `w` = 4 T/4 vec4s (`loadA4`/`loadB4`). Zero past kEnd or the M/N edge, which
 * never cut a vec4 (the extents along a vec4 walk are multiples of 4).
 */
function tileFetch(which: 'A' | 'B', T: number, walk: TileWalk, kStart: string, w: 1 | 4): string {
  const ext = which === 'A' ? 'M_' : 'N_';
  const base = which === 'A' ? 'm0' : 'n0';
  const fn = `load${which}${w === 4 ? '4' : ''}`;
  const call = which === 'A' ? `${fn}(${base} + ml, k)` : `${fn}(k, ${base} + ml)`;
  const lines: string[] = [];
  for (let r = 0; r < T / w; r++) {
    lines.push(`{
          ${tilePos(r, T, walk, w)} let k = ${kStart} + kl;
          v${which}${r} = ${w === 4 ? 'vec4<f32>(0.0)' : '0.0'};
          if (${base} + ml < ${ext} && k < kEnd) { v${which}${r} = ${call}; }
        }`);
  }
  return lines.join('\n        ');
}

/**
 * Writes the thread's fetched values into workgroup memory: scalar `As`/`Bs` of shape
 * [BK][16*T+1] ('strided'), or vec4 `As4`/`Bs4` of shape [BK][16*T/4+1] ('blocked'). A fetched vec4
 * is one vec4 store where it runs along a row of `As4`/`Bs4` (walk 'mn', 'blocked'), else 4 scalars.
 */
function tileStore(which: 'A' | 'B', T: number, walk: TileWalk, layout: GemmOptions['layout'], w: 1 | 4): string {
  const W = 16 * T;
  const cell = (kl: string, ml: string): string =>
    layout === 'blocked'
      ? `${which}s4[${kl} * ${W / 4 + 1} + (${ml} >> 2u)][${ml} & 3]`
      : `${which}s[${kl} * ${W + 1} + ${ml}]`;
  const lines: string[] = [];
  for (let r = 0; r < T / w; r++) {
    const v = `v${which}${r}`;
    let st: string;
    if (w === 1) st = `${cell('kl', 'ml')} = ${v};`;
    else if (walk === 'mn' && layout === 'blocked') st = `${which}s4[kl * ${W / 4 + 1} + (ml >> 2u)] = ${v};`;
    else
      st = [0, 1, 2, 3]
        .map((i) => `${walk === 'mn' ? cell('kl', `(ml + ${i})`) : cell(`(kl + ${i})`, 'ml')} = ${v}[${i}];`)
        .join(' ');
    lines.push(`{ ${tilePos(r, T, walk, w)} ${st} }`);
  }
  return lines.join('\n        ');
}

/** The WGSL of one GEMM program (built only when tfjs compiles a new pipeline: the code is large). */
function gemmSource(spec: GemmSpec, plan: GemmPlan, o: GemmOptions, v4: GemmVec4 | undefined): string {
  const { tm: TM, tn: TN } = o;
  const batch = spec.batch ?? 1;
  const BM = 16 * TM;
  const BN = 16 * TN;
  const blocked = o.layout === 'blocked';
  // Row i of the thread's block and column j, relative to the tile origin.
  const rowOf = (i: number): string => (blocked ? `ty * ${TM} + ${i}` : `ty + ${16 * i}`);
  const colOf = (j: number): string => (blocked ? `tx * ${TN} + ${j}` : `tx + ${16 * j}`);
  const fma: string[] = [];
  const decl: string[] = [];
  if (blocked) {
    for (let q = 0; q < TM / 4; q++) fma.push(`a${q} = As4[kk * ${BM / 4 + 1} + ty * ${TM / 4} + ${q}];`);
    for (let q = 0; q < TN / 4; q++) fma.push(`b${q} = Bs4[kk * ${BN / 4 + 1} + tx * ${TN / 4} + ${q}];`);
    for (let i = 0; i < TM; i++)
      for (let j = 0; j < TN; j++)
        fma.push(`acc${i}_${j} = fma(a${i >> 2}[${i & 3}], b${j >> 2}[${j & 3}], acc${i}_${j});`);
    for (let q = 0; q < TM / 4; q++) decl.push(`var a${q} = vec4<f32>(0.0);`);
    for (let q = 0; q < TN / 4; q++) decl.push(`var b${q} = vec4<f32>(0.0);`);
  } else {
    for (let i = 0; i < TM; i++) fma.push(`a${i} = As[kk * ${BM + 1} + ty + ${16 * i}];`);
    for (let j = 0; j < TN; j++) fma.push(`b${j} = Bs[kk * ${BN + 1} + tx + ${16 * j}];`);
    for (let i = 0; i < TM; i++)
      for (let j = 0; j < TN; j++) fma.push(`acc${i}_${j} = fma(a${i}, b${j}, acc${i}_${j});`);
    for (let i = 0; i < TM; i++) decl.push(`var a${i} = 0.0;`);
    for (let j = 0; j < TN; j++) decl.push(`var b${j} = 0.0;`);
  }
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN; j++) decl.push(`var acc${i}_${j} = 0.0;`);
  const vecA = v4?.a ?? false;
  const vecB = v4?.b ?? false;
  for (let r = 0; r < (vecA ? TM / 4 : TM); r++) decl.push(vecA ? `var vA${r} = vec4<f32>(0.0);` : `var vA${r} = 0.0;`);
  for (let r = 0; r < (vecB ? TN / 4 : TN); r++) decl.push(vecB ? `var vB${r} = vec4<f32>(0.0);` : `var vB${r} = 0.0;`);
  const [wA, wB] = [vecA ? 4 : 1, vecB ? 4 : 1] as const;
  const fetch = (kStart: string): string => `${tileFetch('A', TM, spec.walkA, kStart, wA)}
        ${tileFetch('B', TN, spec.walkB, kStart, wB)}`;
  const store = `${tileStore('A', TM, spec.walkA, o.layout, wA)}
        ${tileStore('B', TN, spec.walkB, o.layout, wB)}`;
  const compute = `for (var kk = 0; kk < ${BK}; kk = kk + 1) {
            ${fma.join('\n            ')}
          }`;
  // Without prefetch: fetch, store, barrier, compute, barrier. With it, the next step's fetch is
  // issued between the barrier and the compute, and stored at the top of the next step.
  const loop = o.prefetch
    ? `${fetch('kBegin')}
        for (var step = 0; step < ${plan.kPerSplit / BK}; step = step + 1) {
          let k0 = kBegin + step * ${BK};
          ${store}
          workgroupBarrier();
          ${fetch(`k0 + ${BK}`)}
          ${compute}
          workgroupBarrier();
        }`
    : `for (var step = 0; step < ${plan.kPerSplit / BK}; step = step + 1) {
          let k0 = kBegin + step * ${BK};
          ${fetch('k0')}
          ${store}
          workgroupBarrier();
          ${compute}
          workgroupBarrier();
        }`;
  const writeOut: string[] = [];
  for (let i = 0; i < TM; i++) {
    for (let j = 0; j < TN; j++) {
      const m = `m0 + ${rowOf(i)}`;
      const row = spec.scatter ? `outRow(${m})` : `(${m})`;
      writeOut.push(
        `if (${m} < M_ && n0 + ${colOf(j)} < N_) { result[outBase + ${row} * N_ + n0 + ${colOf(j)}] = acc${i}_${j}; }`,
      );
    }
  }
  const shared = blocked
    ? `var<workgroup> As4: array<vec4<f32>, ${BK * (BM / 4 + 1)}>;
      var<workgroup> Bs4: array<vec4<f32>, ${BK * (BN / 4 + 1)}>;`
    : `var<workgroup> As: array<f32, ${BK * (BM + 1)}>;
      var<workgroup> Bs: array<f32, ${BK * (BN + 1)}>;`;
  return `
      const M_: i32 = ${i32(spec.M)};
      const N_: i32 = ${i32(spec.N)};
      const K_: i32 = ${i32(spec.K)};
      const KPS: i32 = ${i32(plan.kPerSplit)};
      ${batch > 1 ? 'var<private> gemmBatch: i32;' : ''}
      ${v4 ? v4.loaders : spec.loaders}
      ${shared}
      fn main() {
        ${USE_UNIFORMS}
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let tid = i32(localIndex);
        let n0 = i32(workgroupId.x) * ${BN};
        let m0 = i32(workgroupId.y) * ${BM};
        ${
          batch > 1
            ? `let split = 0;
        gemmBatch = i32(workgroupId.z);
        let outBase = gemmBatch * M_ * N_;`
            : `let split = i32(workgroupId.z);
        let outBase = split * M_ * N_;`
        }
        let kBegin = split * KPS;
        let kEnd = min(K_, kBegin + KPS);
        ${decl.join(' ')}
        // Constant trip count: barriers need uniform control flow, and workgroupId is not
        // provably uniform to WGSL. Steps past kEnd (only in the last split) load zeros.
        ${loop}
        ${writeOut.join('\n        ')}
      }`;
}

function gemmProgram(spec: GemmSpec, plan: GemmPlan, o: GemmOptions, outShape: number[], v4: GemmVec4 | undefined) {
  const { tm: TM, tn: TN } = o;
  const vecA = v4?.a ?? false;
  const vecB = v4?.b ?? false;
  return wgslProgram({
    shaderKey: `dtGemm_${spec.key}_${TM}x${TN}${o.layout === 'blocked' ? 'b' : ''}${o.prefetch ? 'p' : ''}${v4 ? `v${vecA ? 'a' : ''}${vecB ? 'b' : ''}` : ''}_s${plan.splits}_${plan.kPerSplit}_${spec.walkA}${spec.walkB}`,
    outputShape: outShape,
    variableNames: spec.variableNames,
    ...(v4 ? { variableComponents: v4.components } : {}),
    workgroupSize: [16, 16, 1],
    dispatch: [plan.tilesN, plan.tilesM, plan.splits * (spec.batch ?? 1)],
    getUserCode: () => gemmSource(spec, plan, o, v4),
  });
}

/**
 * Runs the GEMM described by `spec` on `inputs`, writing C [M, N] (as `outShape`) into `out` if
 * given. With several K splits, the partials go to a temporary [S, M*N] that a column sum adds.
 */
export function runGemm(
  backend: WebgpuBackendLike,
  spec: GemmSpec,
  inputs: tf.TensorInfo[],
  outShape: number[],
  opts: Partial<GemmOptions> = {},
  out?: tf.TensorInfo,
): tf.TensorInfo {
  recorder?.(spec, inputs, outShape);
  const merged = { ...GEMM_DEFAULTS, ...opts };
  const tuned = merged.useTuned ? tunedChoices.get(spec.key) : undefined;
  const batch = spec.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1 || batch > 65535)
    throw new Error(`runGemm(${spec.key}): batch must be an integer in 1..65535, got ${batch}`);
  if (batch > 1 && spec.scatter) throw new Error(`runGemm(${spec.key}): a batched GEMM cannot scatter rows`);
  const o = resolveTiles(spec.M, spec.N, {
    ...merged,
    ...tuned,
    ...(spec.scatter || batch > 1 ? { forceSplits: 1 } : {}),
  });
  if (![4, 8].includes(o.tm) || ![4, 8].includes(o.tn))
    throw new Error(`runGemm: tm/tn must be 4 or 8, got ${o.tm}x${o.tn}`);
  if (o.layout !== 'strided' && o.layout !== 'blocked')
    throw new Error(`runGemm: layout must be 'strided' or 'blocked', got ${String(o.layout)}`);
  if (typeof o.prefetch !== 'boolean')
    throw new Error(`runGemm: prefetch must be true or false, got ${String(o.prefetch)}`);
  if (typeof o.vec4 !== 'boolean') throw new Error(`runGemm: vec4 must be true or false, got ${String(o.vec4)}`);
  const v4 = vec4Loaders(spec, o);
  const outSize = outShape.reduce((a, b) => a * b, 1);
  if (spec.scatter ? outSize % spec.N !== 0 || outSize < spec.M * spec.N : batch * spec.M * spec.N !== outSize) {
    throw new Error(
      `runGemm(${spec.key}): outShape ${JSON.stringify(outShape)} does not hold ${batch > 1 ? `${batch}x` : ''}${spec.M}x${spec.N}${spec.scatter ? ' scattered rows' : ''}`,
    );
  }
  if (inputs.length !== spec.variableNames.length)
    throw new Error(`runGemm(${spec.key}): ${inputs.length} inputs for ${spec.variableNames.length} bindings`);
  const plan = planGemm(spec.M, spec.N, spec.K, o);
  if (plan.splits === 1)
    return backend.runWebGPUProgram(gemmProgram(spec, plan, o, outShape, v4), inputs, 'float32', undefined, out);
  if (plan.splits * spec.M * spec.N > 2 ** 31 - 1) throw new Error(`runGemm(${spec.key}): split-K partials too large`);
  const partial = backend.runWebGPUProgram(
    gemmProgram(spec, plan, o, [plan.splits, spec.M * spec.N], v4),
    inputs,
    'float32',
    undefined,
    allocTemp(backend, [plan.splits, spec.M * spec.N]),
  );
  const res = sumRows(backend, partial, plan.splits, spec.M * spec.N, 1, outShape, out);
  freeTemp(backend, partial);
  return res;
}

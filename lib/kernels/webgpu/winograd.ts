/**
 * 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016, "Fast
 * Algorithms for Convolutional Neural Networks"): each 2x2 block of outputs comes from a 4x4 input
 * tile with 16 multiplies per channel pair instead of 36, so the GEMM work is 16/36 = 4/9 of the
 * direct convolution's (2.25x fewer multiply-adds). Four dispatches:
 *   filter transform   U[e, c, n] = (G g G^T)[e]        g the 3x3 filter of input c, output n
 *   input transform    V[e, t, c] = (B^T d B)[e]        d the 4x4 input patch of tile t, channel c
 *   16 GEMMs           M[e] = V[e] U[e]                 (one batched GEMM, gemm.ts)
 *   output transform   y[tile t, 2x2, n] = A^T M A
 * with e < 16 the position in the 4x4 transformed tile, and, for F(2x2, 3x3):
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * The transformed tensors are 16/4 = 4x the input and output: memory passes the direct GEMM does
 * not make, cheap next to the multiply-adds saved at CIFAR's channel counts.
 *
 * The input gradient of a stride-1 3x3 conv is itself such a convolution: of dy with the filter
 * flipped in space and with its channel axes swapped, padded by 2 - pad. `flip` reads the filter
 * that way, so both passes share the code. The filter gradient stays the direct GEMM (conv2d.ts).
 * Not yet timed on a GPU: opt-in (`WebgpuKernelOptions.winograd`).
 */
import * as tf from '@tensorflow/tfjs';
import { GemmOptions, GemmSpec, operandLoaders, runGemm } from './gemm';
import { WebgpuBackendLike, allocTemp, freeTemp, gridProgram, i32 } from './program';

type ConvInfo = tf.backend_util.Conv2DInfo;

/** One stride-1 3x3 correlation: input [NB, HI, WI, CI] -> output [NB, HO, WO, CO], input offset -PT/-PL. */
export interface WinogradConv {
  NB: number;
  HI: number;
  WI: number;
  CI: number;
  HO: number;
  WO: number;
  CO: number;
  PT: number;
  PL: number;
  /** Read the filter as the input gradient needs it: w[2-r, 2-s, n, c] from a [3, 3, CO, CI] filter. */
  flip: boolean;
}

/** Whether the Winograd path computes this convolution (3x3, stride 1, dilation 1, NHWC, top/left padding 0..2). */
export function winogradApplies(c: ConvInfo): boolean {
  return (
    c.filterHeight === 3 &&
    c.filterWidth === 3 &&
    c.strideHeight === 1 &&
    c.strideWidth === 1 &&
    c.dilationHeight === 1 &&
    c.dilationWidth === 1 &&
    c.dataFormat === 'channelsLast' &&
    c.padInfo.top >= 0 &&
    c.padInfo.top <= 2 &&
    c.padInfo.left >= 0 &&
    c.padInfo.left <= 2
  );
}

/** Which conv pass: the forward or the input gradient. */
export type ConvPass = 'fwd' | 'dx';

/** Names a conv pass with every size that matters (the key of a measured algorithm choice). */
export function convPassKey(pass: ConvPass, c: ConvInfo): string {
  return `${pass}_${c.batchSize}_${c.inHeight}_${c.inWidth}_${c.inChannels}_${c.outChannels}_${c.padInfo.top}_${c.padInfo.left}_${c.padInfo.bottom}_${c.padInfo.right}`;
}

/** Measured algorithm per conv pass (set by the tuner, tune.ts): true = Winograd, false = the direct GEMM. */
const algorithmChoices = new Map<string, boolean>();

export function setWinogradChoice(key: string, winograd: boolean | undefined): void {
  if (winograd === undefined) algorithmChoices.delete(key);
  else algorithmChoices.set(key, winograd);
}

export function clearWinogradChoices(): void {
  algorithmChoices.clear();
}

/** Called with every Winograd-eligible conv pass while set (the tuner records a workload's passes with it). */
type ConvRecorder = (pass: ConvPass, c: ConvInfo, inputs: readonly tf.TensorInfo[]) => void;
let convRecorder: ConvRecorder | undefined;

export function setConvRecorder(r: ConvRecorder | undefined): void {
  convRecorder = r;
}

/**
 * Whether this pass runs as Winograd: a measured choice if the tuner made one, else `enabled`
 * (the registered option). Records the pass for the tuner when it is eligible.
 */
export function useWinograd(pass: ConvPass, c: ConvInfo, inputs: readonly tf.TensorInfo[], enabled: boolean): boolean {
  if (!winogradApplies(c)) return false;
  convRecorder?.(pass, c, inputs);
  if (algorithmChoices.size === 0) return enabled;
  return algorithmChoices.get(convPassKey(pass, c)) ?? enabled;
}

/** The forward convolution as a Winograd problem. */
export function winogradForward(c: ConvInfo): WinogradConv {
  return {
    NB: c.batchSize,
    HI: c.inHeight,
    WI: c.inWidth,
    CI: c.inChannels,
    HO: c.outHeight,
    WO: c.outWidth,
    CO: c.outChannels,
    PT: c.padInfo.top,
    PL: c.padInfo.left,
    flip: false,
  };
}

/**
 * The input gradient as a Winograd problem: dx[h, w, ci] = sum dy[h + PT - kh, w + PL - kw, co] w[kh, kw, ci, co]
 * = a correlation of dy with w[2 - r, 2 - s, ci, co] at offset -(2 - PT), -(2 - PL).
 */
export function winogradInputGrad(c: ConvInfo): WinogradConv {
  return {
    NB: c.batchSize,
    HI: c.outHeight,
    WI: c.outWidth,
    CI: c.outChannels,
    HO: c.inHeight,
    WO: c.inWidth,
    CO: c.inChannels,
    PT: 2 - c.padInfo.top,
    PL: 2 - c.padInfo.left,
    flip: true,
  };
}

function tiles(p: WinogradConv): { TH: number; TW: number; T: number } {
  const TH = Math.ceil(p.HO / 2);
  const TW = Math.ceil(p.WO / 2);
  return { TH, TW, T: p.NB * TH * TW };
}

/** WGSL `tileOf(t)`: tile t as (image, tile row, tile column). */
function tileOf(p: WinogradConv): string {
  const { TH, TW } = tiles(p);
  return `fn tileOf(t: i32) -> vec3<i32> {
        let r = t / ${i32(TW)};
        return vec3<i32>(r / ${i32(TH)}, r % ${i32(TH)}, t % ${i32(TW)});
      }`;
}

function key(p: WinogradConv): string {
  return [p.NB, p.HI, p.WI, p.CI, p.HO, p.WO, p.CO, p.PT, p.PL, p.flip ? 1 : 0].join('_');
}

/** Multiply-adds of the batched GEMM vs the direct convolution's, for cost reports. */
export function winogradFlops(p: WinogradConv): { gemm: number; direct: number } {
  return { gemm: 2 * 16 * tiles(p).T * p.CI * p.CO, direct: 2 * 9 * p.NB * p.HO * p.WO * p.CI * p.CO };
}

/** U [16, CI, CO] from the filter. */
function filterTransform(backend: WebgpuBackendLike, w: tf.TensorInfo, p: WinogradConv): tf.TensorInfo {
  // g[r][s] for input channel c, output channel o of this problem.
  const at = p.flip ? '((2 - r) * 3 + (2 - s)) * CO + o) * CI + c' : '(r * 3 + s) * CI + c) * CO + o';
  return backend.runWebGPUProgram(
    gridProgram({
      shaderKey: `dtWinoU_${p.CI}_${p.CO}_${p.flip ? 1 : 0}`,
      outputShape: [16, p.CI, p.CO],
      variableNames: ['Wf'],
      n: p.CI * p.CO,
      decls: `
      const CI: i32 = ${i32(p.CI)};
      const CO: i32 = ${i32(p.CO)};
      fn g(r: i32, s: i32, c: i32, o: i32) -> f32 { return Wf[(${at}]; }`,
      body: `
          let c = i / CO; let o = i % CO;
          // t = G g (4x3), rows of g mixed
          var t: array<vec3<f32>, 4>;
          for (var s = 0; s < 3; s = s + 1) {
            let g0 = g(0, s, c, o); let g1 = g(1, s, c, o); let g2 = g(2, s, c, o);
            t[0][s] = g0; t[1][s] = 0.5 * (g0 + g1 + g2); t[2][s] = 0.5 * (g0 - g1 + g2); t[3][s] = g2;
          }
          // U = t G^T (4x4)
          for (var a = 0; a < 4; a = a + 1) {
            let u = t[a];
            let base = (a * 4) * CI * CO + i;
            result[base] = u.x;
            result[base + CI * CO] = 0.5 * (u.x + u.y + u.z);
            result[base + 2 * CI * CO] = 0.5 * (u.x - u.y + u.z);
            result[base + 3 * CI * CO] = u.z;
          }`,
    }),
    [w],
    'float32',
    undefined,
    allocTemp(backend, [16, p.CI, p.CO]),
  );
}

/** V [16, T, CI] from the input. */
function inputTransform(backend: WebgpuBackendLike, x: tf.TensorInfo, p: WinogradConv): tf.TensorInfo {
  const { T } = tiles(p);
  return backend.runWebGPUProgram(
    gridProgram({
      shaderKey: `dtWinoV_${key(p)}`,
      outputShape: [16, T, p.CI],
      variableNames: ['X'],
      n: T * p.CI,
      decls: `
      const HI: i32 = ${i32(p.HI)};
      const WI: i32 = ${i32(p.WI)};
      const CI: i32 = ${i32(p.CI)};
      const TC: i32 = ${i32(T * p.CI)};
      ${tileOf(p)}
      fn d(b: i32, h: i32, w: i32, c: i32) -> f32 {
        if (h < 0 || h >= HI || w < 0 || w >= WI) { return 0.0; }
        return X[((b * HI + h) * WI + w) * CI + c];
      }`,
      body: `
          let c = i % CI;
          let tile = tileOf(i / CI); let b = tile.x; let ty = tile.y; let tx = tile.z;
          let h0 = 2 * ty - ${i32(p.PT)}; let w0 = 2 * tx - ${i32(p.PL)};
          // rows of B^T d, one 4-vector (over the patch's columns) each
          var q: array<vec4<f32>, 4>;
          var rows: array<vec4<f32>, 4>;
          for (var r = 0; r < 4; r = r + 1) {
            rows[r] = vec4<f32>(d(b, h0 + r, w0, c), d(b, h0 + r, w0 + 1, c), d(b, h0 + r, w0 + 2, c), d(b, h0 + r, w0 + 3, c));
          }
          q[0] = rows[0] - rows[2]; q[1] = rows[1] + rows[2]; q[2] = rows[2] - rows[1]; q[3] = rows[1] - rows[3];
          // (B^T d) B: the same combination over columns
          for (var a = 0; a < 4; a = a + 1) {
            let v = q[a];
            let base = (a * 4) * TC + i;
            result[base] = v.x - v.z;
            result[base + TC] = v.y + v.z;
            result[base + 2 * TC] = v.z - v.y;
            result[base + 3 * TC] = v.y - v.w;
          }`,
    }),
    [x],
    'float32',
    undefined,
    allocTemp(backend, [16, T, p.CI]),
  );
}

/** y [NB, HO, WO, CO] from M [16, T, CO]. */
function outputTransform(
  backend: WebgpuBackendLike,
  m: tf.TensorInfo,
  p: WinogradConv,
  out?: tf.TensorInfo,
): tf.TensorInfo {
  const { T } = tiles(p);
  const shape = [p.NB, p.HO, p.WO, p.CO];
  return backend.runWebGPUProgram(
    gridProgram({
      shaderKey: `dtWinoY_${key(p)}`,
      outputShape: shape,
      variableNames: ['Mt'],
      n: T * p.CO,
      decls: `
      const HO: i32 = ${i32(p.HO)};
      const WO: i32 = ${i32(p.WO)};
      const CO: i32 = ${i32(p.CO)};
      const TC: i32 = ${i32(T * p.CO)};
      ${tileOf(p)}`,
      body: `
          let o = i % CO;
          let tile = tileOf(i / CO); let b = tile.x; let ty = tile.y; let tx = tile.z;
          // A^T M: two 4-vectors (over the transformed tile's columns)
          var mrow: array<vec4<f32>, 4>;
          for (var a = 0; a < 4; a = a + 1) {
            let base = (a * 4) * TC + i;
            mrow[a] = vec4<f32>(Mt[base], Mt[base + TC], Mt[base + 2 * TC], Mt[base + 3 * TC]);
          }
          let s0 = mrow[0] + mrow[1] + mrow[2];
          let s1 = mrow[1] - mrow[2] - mrow[3];
          // (A^T M) A
          let y00 = s0.x + s0.y + s0.z; let y01 = s0.y - s0.z - s0.w;
          let y10 = s1.x + s1.y + s1.z; let y11 = s1.y - s1.z - s1.w;
          let oy = 2 * ty; let ox = 2 * tx;
          let at = ((b * HO + oy) * WO + ox) * CO + o;
          result[at] = y00;
          if (ox + 1 < WO) { result[at + CO] = y01; }
          if (oy + 1 < HO) {
            result[at + WO * CO] = y10;
            if (ox + 1 < WO) { result[at + WO * CO + CO] = y11; }
          }`,
    }),
    [m],
    'float32',
    undefined,
    out ?? backend.makeTensorInfo(shape, 'float32'),
  );
}

/** The 16 GEMMs M[e] [T, CO] = V[e] [T, CI] x U[e] [CI, CO] as one batched GEMM. */
export function winogradGemmSpec(p: WinogradConv): GemmSpec {
  const { T } = tiles(p);
  return {
    key: `wino_${key(p)}`,
    M: T,
    N: p.CO,
    K: p.CI,
    batch: 16,
    variableNames: ['V', 'U'],
    walkA: 'k',
    walkB: 'mn',
    ...operandLoaders(
      '',
      { body: '', buf: 'V', at: '(gemmBatch * M_ + m) * K_ + k', vec4: p.CI % 4 === 0 },
      { body: '', buf: 'U', at: '(gemmBatch * K_ + k) * N_ + n', vec4: p.CO % 4 === 0 },
    ),
  };
}

/** Runs one Winograd convolution: `x` is its input, `w` the [3, 3, ., .] filter (read per `p.flip`). */
export function winogradConv(
  backend: WebgpuBackendLike,
  x: tf.TensorInfo,
  w: tf.TensorInfo,
  p: WinogradConv,
  opts?: Partial<GemmOptions>,
  out?: tf.TensorInfo,
): tf.TensorInfo {
  if (p.PT < 0 || p.PL < 0 || p.PT > 2 || p.PL > 2)
    throw new Error(`winogradConv: padding ${p.PT}/${p.PL} outside 0..2`);
  const { T } = tiles(p);
  const u = filterTransform(backend, w, p);
  const v = inputTransform(backend, x, p);
  const m = runGemm(backend, winogradGemmSpec(p), [v, u], [16, T, p.CO], opts);
  freeTemp(backend, u);
  freeTemp(backend, v);
  const y = outputTransform(backend, m, p, out);
  freeTemp(backend, m);
  return y;
}

/**
 * 2-D convolution (NHWC, filter [KH, KW, Cin, Cout], no dilation) and both its gradients as implicit
 * GEMMs (`gemm.ts`), following the usual lowering (cuDNN's implicit GEMM; Chetlur et al. 2014,
 * "cuDNN: Efficient Primitives for Deep Learning", section 3):
 *   forward        y[M=B*Ho*Wo, Cout]   = A(x)[M, K=KH*KW*Cin]   * w[K, Cout]
 *   input grad     dx[M=B*H*W, Cin]     = A(dy)[M, K=KH*KW*Cout] * w^T[K, Cin]  (stride 1; strided: one
 *                  GEMM per stride phase over the taps that reach it, `inputGradPhases`)
 *   filter grad    dw[M=KH*KW*Cin, Cout] = A(x)^T[M, K=B*Ho*Wo]  * dy[K, Cout]   (split-K)
 * Every size is baked into the shader as a constant; `convInfo` comes from tfjs'
 * backend_util.computeConv2DInfo, so padding follows tfjs ('same' puts the odd pixel at the bottom/right).
 */
import * as tf from '@tensorflow/tfjs';
import { GemmOptions, GemmSpec, operandLoaders, runGemm } from './gemm';
import { WebgpuBackendLike, gpuFill, i32 } from './program';

type ConvInfo = tf.backend_util.Conv2DInfo;

/** Throws unless our kernels handle this convolution (NHWC, dilation 1). */
export function checkConvSupported(info: ConvInfo, what: string): void {
  if (info.dataFormat !== 'channelsLast')
    throw new Error(`${what}: only NHWC (channelsLast) is supported, got ${info.dataFormat}`);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1)
    throw new Error(`${what}: dilation must be 1, got ${info.dilationHeight}x${info.dilationWidth}`);
}

/** True when our kernels handle this convolution. */
export function convSupported(info: ConvInfo): boolean {
  return info.dataFormat === 'channelsLast' && info.dilationHeight === 1 && info.dilationWidth === 1;
}

/** The sizes every conv shader bakes in, as WGSL constants, and their shader-key form. */
function convConsts(c: ConvInfo): { wgsl: string; key: string } {
  const v: Record<string, number> = {
    NB: c.batchSize,
    H: c.inHeight,
    W: c.inWidth,
    CI: c.inChannels,
    HO: c.outHeight,
    WO: c.outWidth,
    CO: c.outChannels,
    KH: c.filterHeight,
    KW: c.filterWidth,
    SH: c.strideHeight,
    SW: c.strideWidth,
    PT: c.padInfo.top,
    PL: c.padInfo.left,
  };
  return {
    wgsl: Object.entries(v)
      .map(([k, x]) => `const ${k}: i32 = ${i32(x)};`)
      .join('\n      '),
    key: Object.values(v).join('_'),
  };
}

/** GEMM counts of each conv pass (multiply-adds count 2 flops; bytes = compulsory traffic). */
export function convCosts(
  c: ConvInfo,
): Record<'forward' | 'inputGrad' | 'filterGrad', { flops: number; bytes: number }> {
  const pix = c.batchSize * c.outHeight * c.outWidth;
  const k = c.filterHeight * c.filterWidth;
  const flops = 2 * pix * k * c.inChannels * c.outChannels;
  const xB = 4 * c.batchSize * c.inHeight * c.inWidth * c.inChannels;
  const yB = 4 * pix * c.outChannels;
  const wB = 4 * k * c.inChannels * c.outChannels;
  return {
    forward: { flops, bytes: xB + wB + yB },
    inputGrad: { flops, bytes: yB + wB + xB },
    filterGrad: { flops, bytes: xB + yB + wB },
  };
}

export function conv2dForwardSpec(c: ConvInfo): GemmSpec {
  checkConvSupported(c, 'conv2dForward');
  const k = convConsts(c);
  return {
    key: `convFwd_${k.key}`,
    M: c.batchSize * c.outHeight * c.outWidth,
    N: c.outChannels,
    K: c.filterHeight * c.filterWidth * c.inChannels,
    variableNames: ['X', 'Wf'],
    walkA: 'k',
    walkB: 'mn',
    ...operandLoaders(
      k.wgsl,
      {
        // A[m = (b, ho, wo), k = (kh, kw, ci)] = x[b, ho*SH - PT + kh, wo*SW - PL + kw, ci] (0 in the padding)
        body: `let wo = m % WO; let t = m / WO; let ho = t % HO; let b = t / HO;
        let ci = k % CI; let t2 = k / CI; let kw = t2 % KW; let kh = t2 / KW;
        let h = ho * SH - PT + kh; let w = wo * SW - PL + kw;
        if (h < 0 || h >= H || w < 0 || w >= W) { return ZERO; }`,
        buf: 'X',
        at: '((b * H + h) * W + w) * CI + ci',
        vec4: c.inChannels % 4 === 0,
      },
      {
        // B[k, n = co] = w[kh, kw, ci, co]
        body: '',
        buf: 'Wf',
        at: 'k * CO + n',
        vec4: c.outChannels % 4 === 0,
      },
    ),
  };
}

export function conv2dInputGradSpec(c: ConvInfo): GemmSpec {
  checkConvSupported(c, 'conv2dInputGrad');
  const k = convConsts(c);
  return {
    key: `convDx_${k.key}`,
    M: c.batchSize * c.inHeight * c.inWidth,
    N: c.inChannels,
    K: c.filterHeight * c.filterWidth * c.outChannels,
    variableNames: ['Dy', 'Wf'],
    walkA: 'k',
    walkB: 'k',
    ...operandLoaders(
      k.wgsl,
      {
        // A[m = (b, h, w), k = (kh, kw, co)] = dy[b, (h + PT - kh)/SH, (w + PL - kw)/SW, co] when both divide exactly
        body: `let wi = m % W; let t = m / W; let hi = t % H; let b = t / H;
        let co = k % CO; let t2 = k / CO; let kw = t2 % KW; let kh = t2 / KW;
        let hn = hi + PT - kh; let wn = wi + PL - kw;
        if (hn < 0 || wn < 0) { return ZERO; }
        let ho = hn / SH; let wo = wn / SW;
        if (ho * SH != hn || wo * SW != wn || ho >= HO || wo >= WO) { return ZERO; }`,
        buf: 'Dy',
        at: '((b * HO + ho) * WO + wo) * CO + co',
        vec4: c.outChannels % 4 === 0,
      },
      {
        // B[k = (kh, kw, co), n = ci] = w[kh, kw, ci, co]
        body: '',
        buf: 'Wf',
        at: '((k / CO) * CI + n) * CO + k % CO',
        vec4: c.outChannels % 4 === 0,
      },
    ),
  };
}

export function conv2dFilterGradSpec(c: ConvInfo): GemmSpec {
  checkConvSupported(c, 'conv2dFilterGrad');
  const k = convConsts(c);
  return {
    key: `convDw_${k.key}`,
    M: c.filterHeight * c.filterWidth * c.inChannels,
    N: c.outChannels,
    K: c.batchSize * c.outHeight * c.outWidth,
    variableNames: ['X', 'Dy'],
    walkA: 'mn',
    walkB: 'mn',
    ...operandLoaders(
      k.wgsl,
      {
        // A[m = (kh, kw, ci), k = (b, ho, wo)] = x[b, ho*SH - PT + kh, wo*SW - PL + kw, ci] (0 in the padding)
        body: `let ci = m % CI; let t = m / CI; let kw = t % KW; let kh = t / KW;
        let wo = k % WO; let t2 = k / WO; let ho = t2 % HO; let b = t2 / HO;
        let h = ho * SH - PT + kh; let w = wo * SW - PL + kw;
        if (h < 0 || h >= H || w < 0 || w >= W) { return ZERO; }`,
        buf: 'X',
        at: '((b * H + h) * W + w) * CI + ci',
        vec4: c.inChannels % 4 === 0,
      },
      {
        // B[k = (b, ho, wo), n = co] = dy[b, ho, wo, co]
        body: '',
        buf: 'Dy',
        at: 'k * CO + n',
        vec4: c.outChannels % 4 === 0,
      },
    ),
  };
}

/** y = conv2d(x, w): x [B, H, W, Cin], w [KH, KW, Cin, Cout] -> [B, Ho, Wo, Cout]. */
export function conv2dForward(
  backend: WebgpuBackendLike,
  x: tf.TensorInfo,
  w: tf.TensorInfo,
  c: ConvInfo,
  opts?: Partial<GemmOptions>,
  out?: tf.TensorInfo,
): tf.TensorInfo {
  return runGemm(backend, conv2dForwardSpec(c), [x, w], c.outShape, opts, out);
}

/** One phase (ph, pw) of a strided conv's input gradient: the input pixels with (h + PT) % SH = ph and (w + PL) % SW = pw. */
export interface InputGradPhase {
  ph: number;
  pw: number;
  /** Taps that reach these pixels: kh = ph + SH*j (j < nKh), kw = pw + SW*i (i < nKw). */
  nKh: number;
  nKw: number;
  /** Pixels: h = SH*(q0h + a) + ph - PT for a < Hp, w likewise. */
  q0h: number;
  q0w: number;
  Hp: number;
  Wp: number;
}

/**
 * The stride phases of the input gradient. Each input pixel gets contributions only from the taps
 * congruent to its phase, so a strided conv's input gradient splits into SH*SW dense GEMMs with
 * K = nKh*nKw*Cout instead of one GEMM over all KH*KW taps where most loads are zero (3x3 stride 2:
 * 9 taps split as 4 + 2 + 2 + 1, a quarter of the multiply-adds; 1x1 stride 2: one phase, the
 * other three pixels of each 2x2 get zero).
 */
export function inputGradPhases(c: ConvInfo): InputGradPhase[] {
  const out: InputGradPhase[] = [];
  const taps = (p: number, k: number, s: number): number => (p < k ? Math.ceil((k - p) / s) : 0);
  const span = (p: number, pad: number, s: number, n: number): [number, number] => {
    const q0 = Math.ceil((pad - p) / s);
    const q1 = Math.floor((n - 1 + pad - p) / s);
    return [q0, Math.max(0, q1 - q0 + 1)];
  };
  for (let ph = 0; ph < c.strideHeight; ph++) {
    for (let pw = 0; pw < c.strideWidth; pw++) {
      const [q0h, Hp] = span(ph, c.padInfo.top, c.strideHeight, c.inHeight);
      const [q0w, Wp] = span(pw, c.padInfo.left, c.strideWidth, c.inWidth);
      out.push({
        ph,
        pw,
        nKh: taps(ph, c.filterHeight, c.strideHeight),
        nKw: taps(pw, c.filterWidth, c.strideWidth),
        q0h,
        q0w,
        Hp,
        Wp,
      });
    }
  }
  return out;
}

/** GEMM of one phase: rows (b, a, a') of that phase's pixels, K = (j, i, co); rows scattered into dx. */
export function conv2dInputGradPhaseSpec(c: ConvInfo, p: InputGradPhase): GemmSpec {
  checkConvSupported(c, 'conv2dInputGrad');
  const k = convConsts(c);
  const v = { PH: p.ph, PW: p.pw, NKH: p.nKh, NKW: p.nKw, Q0H: p.q0h, Q0W: p.q0w, HP: p.Hp, WP: p.Wp };
  return {
    key: `convDxPhase_${k.key}_${Object.values(v).join('_')}`,
    M: c.batchSize * p.Hp * p.Wp,
    N: c.inChannels,
    K: p.nKh * p.nKw * c.outChannels,
    variableNames: ['Dy', 'Wf'],
    walkA: 'k',
    walkB: 'k',
    scatter: true,
    ...operandLoaders(
      `${k.wgsl}
      ${Object.entries(v)
        .map(([n, x]) => `const ${n}: i32 = ${i32(x)};`)
        .join('\n      ')}
      // GEMM row m = (b, a, a'): image b, the a-th row and a'-th column of this phase's pixels
      fn phasePixel(m: i32) -> vec3<i32> {
        let t = m / WP;
        return vec3<i32>(t / HP, t % HP, m % WP);
      }
      // GEMM row m -> pixel (b, SH*(Q0H + a) + PH - PT, SW*(Q0W + a') + PW - PL) of dx
      fn outRow(m: i32) -> i32 {
        let px = phasePixel(m); let b = px.x; let a = px.y; let ap = px.z;
        return (b * H + SH * (Q0H + a) + PH - PT) * W + SW * (Q0W + ap) + PW - PL;
      }`,
      {
        // A[m = (b, a, a'), k = (j, i, co)] = dy[b, Q0H + a - j, Q0W + a' - i, co] (0 outside dy)
        body: `let px = phasePixel(m); let b = px.x; let a = px.y; let ap = px.z;
        let co = k % CO; let t2 = k / CO; let i = t2 % NKW; let j = t2 / NKW;
        let ho = Q0H + a - j; let wo = Q0W + ap - i;
        if (ho < 0 || ho >= HO || wo < 0 || wo >= WO) { return ZERO; }`,
        buf: 'Dy',
        at: '((b * HO + ho) * WO + wo) * CO + co',
        vec4: c.outChannels % 4 === 0,
      },
      {
        // B[k = (j, i, co), n = ci] = w[PH + SH*j, PW + SW*i, ci, co]
        body: 'let co = k % CO; let t2 = k / CO; let i = t2 % NKW; let j = t2 / NKW;',
        buf: 'Wf',
        at: '(((PH + SH * j) * KW + PW + SW * i) * CI + n) * CO + co',
        vec4: c.outChannels % 4 === 0,
      },
    ),
  };
}

/**
 * dx from dy [B, Ho, Wo, Cout] and w -> [B, H, W, Cin]. Stride 1: one implicit GEMM. Larger
 * strides: one GEMM per stride phase (`inputGradPhases`), after a zero fill when some pixels get
 * no tap at all.
 */
export function conv2dInputGrad(
  backend: WebgpuBackendLike,
  dy: tf.TensorInfo,
  w: tf.TensorInfo,
  c: ConvInfo,
  opts?: Partial<GemmOptions>,
  out?: tf.TensorInfo,
): tf.TensorInfo {
  if (c.strideHeight === 1 && c.strideWidth === 1)
    return runGemm(backend, conv2dInputGradSpec(c), [dy, w], c.inShape, opts, out);
  const phases = inputGradPhases(c);
  const live = phases.filter((p) => p.Hp > 0 && p.Wp > 0 && p.nKh > 0 && p.nKw > 0);
  const uncovered = phases.some((p) => p.Hp > 0 && p.Wp > 0 && (p.nKh === 0 || p.nKw === 0));
  let dx =
    uncovered || live.length === 0
      ? gpuFill(backend, c.inShape, 0, out)
      : (out ?? backend.makeTensorInfo(c.inShape, 'float32'));
  for (const p of live) dx = runGemm(backend, conv2dInputGradPhaseSpec(c, p), [dy, w], c.inShape, opts, dx);
  return dx;
}

/** dw from x [B, H, W, Cin] and dy [B, Ho, Wo, Cout] -> [KH, KW, Cin, Cout]. */
export function conv2dFilterGrad(
  backend: WebgpuBackendLike,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  c: ConvInfo,
  opts?: Partial<GemmOptions>,
  out?: tf.TensorInfo,
): tf.TensorInfo {
  return runGemm(backend, conv2dFilterGradSpec(c), [x, dy], c.filterShape, opts, out);
}

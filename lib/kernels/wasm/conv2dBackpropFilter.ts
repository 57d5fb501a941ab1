/**
 * `Conv2DBackpropFilter` for wasm (the stock backend has none). The filter gradient of an NHWC
 * convolution is dW = cols^T dY (the im2col form of TensorFlow's Conv2DBackpropFilter), with
 * cols [M, kh*kw*Ci] the input windows (shifted by each tap, subsampled by the stride, zero
 * outside the image) and dY [M, Co], M = N * Ho * Wo. cols^T is written by JavaScript from x laid
 * out channels-first (for stride 1, each row of cols^T is one shifted copy of a channel plane) and
 * multiplied by dY in one XNNPACK matMul, whose [kh*kw*Ci, Co] result already has the filter's
 * layout; big batches are split into chunks whose partial products are summed. The convolution
 * form (TensorFlow's "filter gradient as a convolution": x laid out as [Ci, H, W, N] correlated
 * with dY laid out as [Ho, Wo, N, Co] as the filter) is kept as an option; it is slower here.
 */
import * as tf from '@tensorflow/tfjs';
import { withScope } from './scope';
import { channelsFirst, im2colT, swapOuterBlocks, swapOuterInner } from './heap';

type TensorInfo = tf.TensorInfo;

/** Tunable limit: the largest im2col buffer (floats) one chunk of images may use (16 Mi = 64 MiB). */
export const IM2COL_LIMIT: { maxFloats: number } = { maxFloats: 1 << 24 };

/** Which algorithm a filter gradient uses. */
export type FilterGradMethod = 'im2col' | 'conv';

/**
 * Tunable: the filter-gradient method (tests and measurements). Default im2col everywhere: with
 * the shifted-plane im2col of stride-1 convolutions (heap.ts) it measured 1.3-2x faster than the
 * convolution form on every ResNet-18 shape (2 cores, AMD EPYC, 2026-11-26), whose [Ho, Wo]
 * "filter" XNNPACK re-packs on every call. 'conv' applies to stride-1 convolutions only.
 */
export const FILTER_GRAD_FORCE: { method?: FilterGradMethod } = {};

let scratchBuf = new Float32Array(0);

/** A reusable JavaScript buffer of at least `size` floats (contents undefined). */
function scratch(size: number): Float32Array {
  if (scratchBuf.length < size) scratchBuf = new Float32Array(size);
  return scratchBuf;
}

/** Attributes of tfjs's Conv2DBackpropFilter kernel. */
interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

export function conv2dBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as Attrs;
  if (attrs.dataFormat === 'NCHW')
    throw new Error(`Conv2DBackpropFilter (wasm): dataFormat NCHW is not supported; use NHWC`);
  if (x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`Conv2DBackpropFilter (wasm): float32 only, got x ${x.dtype}, dy ${dy.dtype}`);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const {
    batchSize: n,
    inHeight: h,
    inWidth: w,
    inChannels: ci,
    outChannels: co,
    outHeight: ho,
    outWidth: wo,
    filterHeight: kh,
    filterWidth: kw,
    strideHeight: sh,
    strideWidth: sw,
  } = info;
  if (dy.shape.join() !== [n, ho, wo, co].join()) {
    throw new Error(
      `Conv2DBackpropFilter (wasm): dy has shape [${dy.shape}], expected [${[n, ho, wo, co]}] for x [${x.shape}] and filter [${attrs.filterShape}]`,
    );
  }
  const geom = { h, w, c: ci, ho, wo, kh, kw, sh, sw, top: info.padInfo.top, left: info.padInfo.left };

  const k = kh * kw * ci;
  const perImage = ho * wo;
  const chunk = Math.max(1, Math.min(n, Math.floor(IM2COL_LIMIT.maxFloats / (k * perImage))));
  const { top, left } = info.padInfo;
  if (FILTER_GRAD_FORCE.method === 'conv' && sh === 1 && sw === 1) {
    return withScope(args.backend, (s) => {
      const xt = s.alloc([ci, h, w, n]);
      const dyt = s.alloc([ho, wo, n, co]);
      swapOuterInner(s.f32(x), s.f32(xt), n, h * w, ci); // [N, H*W, Ci] -> [Ci, H*W, N]
      swapOuterBlocks(s.f32(dy), s.f32(dyt), n, ho * wo, co); // [N, Ho*Wo, Co] -> [Ho*Wo, N, Co]
      // Padding so that the (dilation-free) correlation of [H, W] with the [Ho, Wo] "filter" is [kh, kw].
      const bottom = kh - 1 + ho - h - top;
      const right = kw - 1 + wo - w - left;
      const pad: tf.backend_util.ExplicitPadding = [
        [0, 0],
        [top, Math.max(0, bottom)],
        [left, Math.max(0, right)],
        [0, 0],
      ];
      let r = s.run('Conv2D', { x: xt, filter: dyt }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] }); // [Ci, kh', kw', Co]
      if (bottom < 0 || right < 0) r = s.runOurs('Slice', { x: r }, { begin: [0, 0, 0, 0], size: [ci, kh, kw, co] });
      return s.transpose(r, [1, 2, 0, 3]);
    });
  }
  return withScope(args.backend, (s) => {
    let acc: TensorInfo | undefined;
    // x as [C, N, H, W] in JavaScript memory (not the wasm heap, which never shrinks).
    const xt = scratch(n * h * w * ci);
    channelsFirst(s.f32(x), xt, n, h, w, ci);
    for (let n0 = 0; n0 < n; n0 += chunk) {
      const n1 = Math.min(n, n0 + chunk);
      const m = (n1 - n0) * perImage;
      const colsT = s.alloc([1, k, m]);
      // Views are taken after the allocation, which may have grown (detached) the heap.
      im2colT(xt, s.f32(colsT), geom, n, n0, n1);
      const dyChunk =
        n0 === 0 && n1 === n
          ? dy
          : s.runOurs('Slice', { x: dy }, { begin: [n0, 0, 0, 0], size: [n1 - n0, ho, wo, co] });
      const part = s.run(
        'BatchMatMul',
        { a: colsT, b: s.reshape(dyChunk, [1, m, co]) },
        { transposeA: false, transposeB: false },
      ); // [1, K, Co]
      acc = acc === undefined ? part : s.run('Add', { a: acc, b: part });
    }
    return s.reshape(acc as TensorInfo, [kh, kw, ci, co]);
  });
}

export const conv2dBackpropFilterConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
};

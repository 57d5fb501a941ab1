/**
 * `Conv2DBackpropFilter` for wasm (the stock backend has none). The filter gradient of an NHWC
 * convolution is, per filter tap (i, j), dW[i, j] = X_ij^T dY, where X_ij [M, Ci] is the input
 * window shifted by the tap and subsampled by the stride, dY [M, Co], M = N * Ho * Wo
 * (the im2col form of TensorFlow's Conv2DBackpropFilter). Each tap is one strided slice of
 * the padded input plus one XNNPACK matMul, computed as dY^T X_ij so the big operand is the one
 * XNNPACK packs; the [taps, Co, Ci] result is transposed once at the end.
 */
import * as tf from '@tensorflow/tfjs';
import { withScope } from './scope';

type TensorInfo = tf.TensorInfo;

/** Attributes of tfjs's Conv2DBackpropFilter kernel. */
interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

export function conv2dBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs: tf.NamedAttrMap }): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as Attrs;
  if (attrs.dataFormat === 'NCHW') throw new Error(`Conv2DBackpropFilter (wasm): dataFormat NCHW is not supported; use NHWC`);
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') throw new Error(`Conv2DBackpropFilter (wasm): float32 only, got x ${x.dtype}, dy ${dy.dtype}`);
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co, outHeight: ho, outWidth: wo, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  if (dy.shape.join() !== [n, ho, wo, co].join()) {
    throw new Error(`Conv2DBackpropFilter (wasm): dy has shape [${dy.shape}], expected [${[n, ho, wo, co]}] for x [${x.shape}] and filter [${attrs.filterShape}]`);
  }
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const m = n * ho * wo;
  return withScope(args.backend, (s) => {
    // Padded input, only as large as the taps reach: [N, Hp, Wp, Ci].
    const needH = (ho - 1) * sh + kh;
    const needW = (wo - 1) * sw + kw;
    const bottom = Math.max(0, needH - h - top);
    const right = Math.max(0, needW - w - left);
    const xp = top > 0 || left > 0 || bottom > 0 || right > 0
      ? s.run('PadV2', { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 })
      : x;
    const dyT = s.transpose(s.reshape(dy, [1, m, co]), [0, 2, 1]); // [1, Co, M]
    const taps: TensorInfo[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        // X_ij [N, Ho, Wo, Ci]: rows i, i+sh, ...; columns j, j+sw, ...
        const full = ho * sh === xp.shape[1] && wo * sw === xp.shape[2] && i === 0 && j === 0 && sh === 1 && sw === 1;
        const xs = full ? xp : s.run('StridedSlice', { x: xp }, {
          begin: [0, i, j, 0], end: [n, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, ci], strides: [1, sh, sw, 1],
          beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
        });
        const cols = s.reshape(xs, [1, m, ci]);
        taps.push(s.runOurs('BatchMatMul', { a: dyT, b: cols }, { transposeA: false, transposeB: false })); // [1, Co, Ci]
      }
    }
    const stacked = taps.length === 1 ? taps[0] : s.run('Concat', taps as unknown as tf.NamedTensorInfoMap, { axis: 0 }); // [taps, Co, Ci]
    const dw = s.transpose(stacked, [0, 2, 1]); // [taps, Ci, Co]
    return s.reshape(dw, [kh, kw, ci, co]);
  });
}

export const conv2dBackpropFilterConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
};

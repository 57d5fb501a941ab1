/**
 * Depthwise-convolution gradients for wasm (`DepthwiseConv2dNativeBackpropInput` and
 * `...BackpropFilter`, missing from the stock backend), NHWC with channel multiplier m, filter
 * [kh, kw, C, m], output channel c * m + q, as TensorFlow's DepthwiseConv2dNative. One
 * JavaScript pass over the wasm heap each (direct loops over output positions and taps); our
 * models do not differentiate through depthwise convolutions, this keeps tf.grad complete.
 */
import * as tf from '@tensorflow/tfjs';
import { WasmBackend, makeOutput } from './scope';

type TensorInfo = tf.TensorInfo;

interface Attrs {
  strides: [number, number] | number;
  dilations: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape?: [number, number, number, number];
  filterShape?: [number, number, number, number];
}

type Info = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

/** Calls f(xOffset, yOffset, tapIndex) for every (input pixel, output pixel, tap) triple of the conv. */
function forEachTap(info: Info, f: (xBase: number, yBase: number, tap: number) => void): void {
  const {
    batchSize: nb,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: ho,
    outWidth: wo,
    outChannels: co,
    strideHeight: sh,
    strideWidth: sw,
    dilationHeight: dh,
    dilationWidth: dw,
    filterHeight: kh,
    filterWidth: kw,
  } = info;
  const { top, left } = info.padInfo;
  for (let b = 0; b < nb; b++) {
    for (let yr = 0; yr < ho; yr++) {
      for (let yc = 0; yc < wo; yc++) {
        const yBase = ((b * ho + yr) * wo + yc) * co;
        for (let i = 0; i < kh; i++) {
          const xr = yr * sh - top + i * dh;
          if (xr < 0 || xr >= h) continue;
          for (let j = 0; j < kw; j++) {
            const xc = yc * sw - left + j * dw;
            if (xc < 0 || xc >= w) continue;
            f(((b * h + xr) * w + xc) * c, yBase, i * kw + j);
          }
        }
      }
    }
  }
}

function checkInfo(name: string, dy: TensorInfo, info: Info): void {
  if (info.dataFormat !== 'channelsLast') throw new Error(`${name} (wasm): NHWC only`);
  const want = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (dy.shape.join() !== want.join())
    throw new Error(`${name} (wasm): dy has shape [${dy.shape}], expected [${want}]`);
  if (dy.dtype !== 'float32') throw new Error(`${name} (wasm): float32 only, got dy ${dy.dtype}`);
}

export function depthwiseConv2dBackpropInput(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = args.attrs as unknown as Attrs;
  const backend = args.backend as WasmBackend;
  if (!a.inputShape) throw new Error('DepthwiseConv2dNativeBackpropInput (wasm): attribute inputShape is missing');
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape,
    filter.shape as [number, number, number, number],
    a.strides,
    a.dilations,
    a.pad,
    a.dimRoundingMode,
    true,
  );
  checkInfo('DepthwiseConv2dNativeBackpropInput', dy, info);
  const c = info.inChannels;
  const m = info.outChannels / c;
  const out = makeOutput(backend, a.inputShape, 'float32');
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const wv = backend.typedArrayFromHeap(filter) as Float32Array;
  dx.fill(0);
  forEachTap(info, (xBase, yBase, tap) => {
    const wBase = tap * c * m;
    for (let d = 0; d < c; d++) {
      let acc = 0;
      for (let q = 0; q < m; q++) acc += g[yBase + d * m + q] * wv[wBase + d * m + q];
      dx[xBase + d] += acc;
    }
  });
  return out;
}

export function depthwiseConv2dBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const a = args.attrs as unknown as Attrs;
  const backend = args.backend as WasmBackend;
  if (!a.filterShape) throw new Error('DepthwiseConv2dNativeBackpropFilter (wasm): attribute filterShape is missing');
  if (x.dtype !== 'float32')
    throw new Error(`DepthwiseConv2dNativeBackpropFilter (wasm): float32 only, got x ${x.dtype}`);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    a.dilations,
    a.pad,
    a.dimRoundingMode,
    true,
  );
  checkInfo('DepthwiseConv2dNativeBackpropFilter', dy, info);
  const c = info.inChannels;
  const m = info.outChannels / c;
  const out = makeOutput(backend, a.filterShape, 'float32');
  const dw = backend.typedArrayFromHeap(out) as Float32Array;
  const xv = backend.typedArrayFromHeap(x) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  dw.fill(0);
  forEachTap(info, (xBase, yBase, tap) => {
    const wBase = tap * c * m;
    for (let d = 0; d < c; d++) {
      const xval = xv[xBase + d];
      for (let q = 0; q < m; q++) dw[wBase + d * m + q] += xval * g[yBase + d * m + q];
    }
  });
  return out;
}

export const depthwiseBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dBackpropInput as unknown as tf.KernelFunc,
};

export const depthwiseBackpropFilterConfig: tf.KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropFilter',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dBackpropFilter as unknown as tf.KernelFunc,
};

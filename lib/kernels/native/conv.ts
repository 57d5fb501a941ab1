/**
 * Conv2D, FusedConv2D (bias, ReLU), Conv2DBackpropInput and Conv2DBackpropFilter for wasm through
 * the native addon (oneDNN, native/src/dnnl_ops.cc). NHWC float32 with dilation 1 (forward: any
 * dilation); anything else, and any shape the addon declines, goes to the kernel that was
 * registered before (`fallback`), so no call ever gets a wrong result.
 */
import * as tf from '@tensorflow/tfjs';
import { NativeAddon } from './addon';
import { KernelArgs, alloc, allFloat, f32, free, size } from './heapViews';

type Conv2DInfo = tf.backend_util.Conv2DInfo;

/** The addon's 17 shape numbers of a convolution. */
export function convDims(c: Conv2DInfo): Int32Array {
  const p = c.padInfo;
  return Int32Array.from([
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.outChannels,
    c.filterHeight,
    c.filterWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
    c.outHeight,
    c.outWidth,
  ]);
}

interface ConvAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
  inputShape?: [number, number, number, number];
  filterShape?: [number, number, number, number];
}

function info(xShape: number[], filterShape: number[], a: ConvAttrs): Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
  );
}

const isNhwc = (a: ConvAttrs): boolean =>
  a.dataFormat === undefined || a.dataFormat === 'NHWC' || (a.dataFormat as string) === 'channelsLast';

export function conv2dKernels(addon: NativeAddon, fallback: (name: string) => tf.KernelFunc): tf.KernelConfig[] {
  const forward =
    (name: 'Conv2D' | 'FusedConv2D'): tf.KernelFunc =>
    (args) => {
      const { inputs, backend } = args as unknown as KernelArgs;
      const attrs = args.attrs as unknown as ConvAttrs;
      const { x, filter, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo | undefined>;
      const act = attrs.activation ?? 'linear';
      if (
        !x ||
        !filter ||
        !isNhwc(attrs) ||
        x.shape.length !== 4 ||
        filter.shape.length !== 4 ||
        !allFloat(x, filter, bias) ||
        preluActivationWeights ||
        (act !== 'linear' && act !== 'relu')
      )
        return fallback(name)(args);
      const c = info(x.shape, filter.shape, attrs);
      if (bias && size(bias.shape) !== c.outChannels) return fallback(name)(args);
      const out = alloc(backend, c.outShape);
      const ok = addon.conv2dForward(
        convDims(c),
        f32(backend, x),
        f32(backend, filter),
        bias ? f32(backend, bias) : null,
        f32(backend, out),
        act === 'relu',
      );
      if (ok) return out;
      free(backend, out);
      return fallback(name)(args);
    };

  const backpropInput: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const attrs = args.attrs as unknown as ConvAttrs;
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    if (!isNhwc(attrs) || !attrs.inputShape || !allFloat(dy, filter)) return fallback('Conv2DBackpropInput')(args);
    const c = info(attrs.inputShape, filter.shape, attrs);
    if (dy.shape.join() !== c.outShape.join()) return fallback('Conv2DBackpropInput')(args);
    const out = alloc(backend, attrs.inputShape);
    if (addon.conv2dBackwardData(convDims(c), f32(backend, dy), f32(backend, filter), f32(backend, out))) return out;
    free(backend, out);
    return fallback('Conv2DBackpropInput')(args);
  };

  const backpropFilter: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const attrs = args.attrs as unknown as ConvAttrs;
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    if (!isNhwc(attrs) || !attrs.filterShape || !allFloat(x, dy)) return fallback('Conv2DBackpropFilter')(args);
    const c = info(x.shape, attrs.filterShape, attrs);
    if (dy.shape.join() !== c.outShape.join()) return fallback('Conv2DBackpropFilter')(args);
    const out = alloc(backend, attrs.filterShape);
    if (addon.conv2dBackwardWeights(convDims(c), f32(backend, x), f32(backend, dy), f32(backend, out))) return out;
    free(backend, out);
    return fallback('Conv2DBackpropFilter')(args);
  };

  return [
    { kernelName: 'Conv2D', backendName: 'wasm', kernelFunc: forward('Conv2D') },
    { kernelName: 'FusedConv2D', backendName: 'wasm', kernelFunc: forward('FusedConv2D') },
    { kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: backpropInput },
    { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: backpropFilter },
  ];
}

/**
 * `Conv2DBackpropInput` for wasm on XNNPACK (the stock kernel is a scalar loop). The input
 * gradient of a convolution is a "full" convolution of the output gradient with the filter
 * rotated by 180 degrees and its channel axes swapped (the transposed-convolution identity, as
 * in Dumoulin & Visin, "A guide to convolution arithmetic", sec. 4): for stride s the gradient
 * is first dilated by inserting s - 1 zeros between its rows and columns.
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, WasmBackend, withScope } from './scope';
import { flipFilterInto } from './heap';

type TensorInfo = tf.TensorInfo;

/** Attributes of tfjs's Conv2DBackpropInput kernel. */
interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/**
 * Inserts `sh - 1` zero rows after every row and `sw - 1` zero columns after every column:
 * [N, H, W, C] -> [N, H * sh, W * sw, C] (two rank-4 pads, which the backend does with memcpy).
 */
export function zeroInsert(s: Scope, x: TensorInfo, sh: number, sw: number): TensorInfo {
  const [n, h, w, c] = x.shape;
  let t = x;
  if (sw > 1) {
    t = s.run('PadV2', { x: s.reshape(t, [n * h, w, 1, c]) }, { paddings: [[0, 0], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 }); // [N*H, W, sw, C]
  }
  if (sh > 1) {
    t = s.run('PadV2', { x: s.reshape(t, [n * h, 1, w * sw * c]) }, { paddings: [[0, 0], [0, sh - 1], [0, 0]], constantValue: 0 }); // [N*H, sh, W*sw*C]
  }
  return s.reshape(t, [n, h * sh, w * sw, c]);
}

/**
 * Flipped filters by the dataId of the filter they come from. A training step calls the input
 * gradient once per view with the same weights: the second call reuses the flipped copy (and
 * XNNPACK's packed operator, cached by tensor id). Entries whose filter has been disposed are
 * freed at the next call.
 */
const flipped = new Map<object, TensorInfo>();

/** Filter [kh, kw, Ci, Co] rotated by 180 degrees with channels swapped: [kh, kw, Co, Ci] (cached). */
export function flipFilter(backend: WasmBackend, filter: TensorInfo): TensorInfo {
  for (const [id, t] of flipped) {
    if (!backend.dataIdMap.has(id)) {
      if (backend.dataIdMap.has(t.dataId)) backend.disposeData(t.dataId);
      flipped.delete(id);
    }
  }
  const hit = flipped.get(filter.dataId);
  if (hit) return hit;
  const [kh, kw, ci, co] = filter.shape;
  const out = backend.makeOutput([kh, kw, co, ci], 'float32');
  flipFilterInto(backend.typedArrayFromHeap(filter) as Float32Array, backend.typedArrayFromHeap(out) as Float32Array, kh, kw, ci, co);
  flipped.set(filter.dataId, out);
  return out;
}

/** Frees every cached flipped filter (for tests and backend teardown). */
export function clearFlipCache(backend: WasmBackend): void {
  for (const t of flipped.values()) if (backend.dataIdMap.has(t.dataId)) backend.disposeData(t.dataId);
  flipped.clear();
}

export function conv2dBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs: tf.NamedAttrMap }): TensorInfo {
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as Attrs;
  if (attrs.dataFormat === 'NCHW') throw new Error(`Conv2DBackpropInput (wasm): dataFormat NCHW is not supported; use NHWC`);
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32') throw new Error(`Conv2DBackpropInput (wasm): float32 only, got dy ${dy.dtype}, filter ${filter.dtype}`);
  const info = tf.backend_util.computeConv2DInfo(attrs.inputShape, filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize: n, inHeight: h, inWidth: w, outChannels: co, outHeight: ho, outWidth: wo, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  if (dy.shape.join() !== [n, ho, wo, co].join()) {
    throw new Error(`Conv2DBackpropInput (wasm): dy has shape [${dy.shape}], expected [${[n, ho, wo, co]}] for input [${attrs.inputShape}] and filter [${filter.shape}]`);
  }
  const { top, left } = info.padInfo;
  // Padding of the (dilated) gradient so that a VALID correlation with the flipped filter yields [H, W].
  const before = [kh - 1 - top, kw - 1 - left];
  if (before[0] < 0 || before[1] < 0) {
    throw new Error(`Conv2DBackpropInput (wasm): padding (top ${top}, left ${left}) at least as large as the filter [${kh}, ${kw}] is not supported`);
  }
  // After-padding relative to the zero-inserted array, which already ends with s - 1 zeros.
  const after = [h + top - (ho - 1) * sh - 1 - (sh - 1), w + left - (wo - 1) * sw - 1 - (sw - 1)];
  return withScope(args.backend, (s) => {
    let up = sh > 1 || sw > 1 ? zeroInsert(s, dy, sh, sw) : dy; // [N, Ho*sh, Wo*sw, Co]
    if (after[0] < 0 || after[1] < 0) {
      const size = [n, up.shape[1] + Math.min(0, after[0]), up.shape[2] + Math.min(0, after[1]), co];
      up = s.run('Slice', { x: up }, { begin: [0, 0, 0, 0], size });
    }
    const pad: tf.backend_util.ExplicitPadding = [[0, 0], [before[0], Math.max(0, after[0])], [before[1], Math.max(0, after[1])], [0, 0]];
    const wf = flipFilter(s.backend, filter);
    return s.run('Conv2D', { x: up, filter: wf }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined as unknown as string });
  });
}

export const conv2dBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput as unknown as tf.KernelFunc,
};

/**
 * `Conv2DBackpropInput` for wasm on XNNPACK (the stock kernel is a scalar loop). The input
 * gradient of a convolution is a "full" convolution of the output gradient with the filter
 * rotated by 180 degrees and its channel axes swapped (the transposed-convolution identity, as
 * in Dumoulin & Visin, "A guide to convolution arithmetic", sec. 4). For stride s, instead of
 * dilating the gradient with s - 1 zeros between rows and columns (s*s times the work), each of
 * the s*s output phases is its own stride-1 convolution with the taps that reach it.
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, WasmBackend, makeOutput, withScope } from './scope';
import { flipFilterInto, scatterPhase, transposeBatched } from './heap';

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
  const out = makeOutput(backend, [kh, kw, co, ci], 'float32');
  flipFilterInto(
    backend.typedArrayFromHeap(filter) as Float32Array,
    backend.typedArrayFromHeap(out) as Float32Array,
    kh,
    kw,
    ci,
    co,
  );
  flipped.set(filter.dataId, out);
  return out;
}

/** Taps of one output phase along one axis: filter index per sub-filter position, and the dy offset of position 0. */
interface PhaseTaps {
  /** taps[t] = filter index used at sub-filter position t (positions are consecutive dy offsets). */
  taps: number[];
  /** dy offset (relative to the phase's output index) of sub-filter position 0. */
  dMin: number;
}

/**
 * Along one axis, output phase r (dx positions p = r + s*u) receives dy[u + d] * W[i] for the
 * taps i = r + pad - s*d. Returns them ordered by increasing d.
 */
function phaseTaps(r: number, pad: number, s: number, k: number): PhaseTaps {
  const ds: number[] = [];
  for (let i = 0; i < k; i++) if ((((r + pad - i) % s) + s) % s === 0) ds.push((r + pad - i) / s);
  ds.sort((a, b) => a - b);
  return { taps: ds.map((d) => r + pad - s * d), dMin: ds.length ? ds[0] : 0 };
}

/**
 * Strided input gradient as s*s stride-1 convolutions of dy, one per output phase, each with the
 * sub-filter of the taps that reach that phase ("sub-pixel" decomposition of the transposed
 * convolution): the same multiply-adds as the forward convolution, where zero insertion would
 * do s*s times as many.
 */
function stridedInputGrad(
  s: Scope,
  dy: TensorInfo,
  filter: TensorInfo,
  info: ReturnType<typeof tf.backend_util.computeConv2DInfo>,
): TensorInfo {
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
  const { top, left } = info.padInfo;
  const dx = s.alloc([n, h, w, ci]);
  // Phases that no tap reaches (kernel smaller than the stride) stay zero.
  let someEmpty = false;
  for (let r = 0; r < sh; r++) someEmpty ||= phaseTaps(r, top, sh, kh).taps.length === 0;
  for (let r = 0; r < sw; r++) someEmpty ||= phaseTaps(r, left, sw, kw).taps.length === 0;
  if (someEmpty) s.f32(dx).fill(0);
  for (let rh = 0; rh < sh && rh < h; rh++) {
    for (let rw = 0; rw < sw && rw < w; rw++) {
      const hr = Math.ceil((h - rh) / sh);
      const wr = Math.ceil((w - rw) / sw);
      const th = phaseTaps(rh, top, sh, kh);
      const tw = phaseTaps(rw, left, sw, kw);
      if (th.taps.length === 0 || tw.taps.length === 0) continue;
      const fh = th.taps.length;
      const fw = tw.taps.length;
      // Sub-filter [fh, fw, Co, Ci]: position (a, b) holds W[taps_h[a], taps_w[b]] transposed.
      const sub = s.alloc([fh, fw, co, ci]);
      const wv = s.f32(filter);
      const sv = s.f32(sub);
      for (let a = 0; a < fh; a++) {
        for (let b = 0; b < fw; b++) {
          transposeBatched(wv, sv, 1, ci, co, (th.taps[a] * kw + tw.taps[b]) * ci * co, (a * fw + b) * ci * co);
        }
      }
      // out[u] = sum_t dy[u + dMin + t] F[t]: pad before by -dMin, after so that out has hr rows.
      const before = [-th.dMin, -tw.dMin];
      const after = [hr + fh - 1 - before[0] - ho, wr + fw - 1 - before[1] - wo];
      let src = dy;
      if (before[0] < 0 || before[1] < 0 || after[0] < 0 || after[1] < 0) {
        const b0 = [Math.max(0, -before[0]), Math.max(0, -before[1])];
        const size = [n, ho - b0[0] + Math.min(0, after[0]), wo - b0[1] + Math.min(0, after[1]), co];
        src = s.runOurs('Slice', { x: dy }, { begin: [0, b0[0], b0[1], 0], size });
      }
      const pad: tf.backend_util.ExplicitPadding = [
        [0, 0],
        [Math.max(0, before[0]), Math.max(0, after[0])],
        [Math.max(0, before[1]), Math.max(0, after[1])],
        [0, 0],
      ];
      const part = s.run(
        'Conv2D',
        { x: src, filter: sub },
        { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] },
      ); // [N, hr, wr, Ci]
      scatterPhase(s.f32(part), s.f32(dx), n, hr, wr, ci, h, w, rh, rw, sh, sw);
    }
  }
  return dx;
}

export function conv2dBackpropInput(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as Attrs;
  if (attrs.dataFormat === 'NCHW')
    throw new Error(`Conv2DBackpropInput (wasm): dataFormat NCHW is not supported; use NHWC`);
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32')
    throw new Error(`Conv2DBackpropInput (wasm): float32 only, got dy ${dy.dtype}, filter ${filter.dtype}`);
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const {
    batchSize: n,
    inHeight: h,
    inWidth: w,
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
      `Conv2DBackpropInput (wasm): dy has shape [${dy.shape}], expected [${[n, ho, wo, co]}] for input [${attrs.inputShape}] and filter [${filter.shape}]`,
    );
  }
  const { top, left } = info.padInfo;
  // Padding of the (dilated) gradient so that a VALID correlation with the flipped filter yields [H, W].
  const before = [kh - 1 - top, kw - 1 - left];
  if (before[0] < 0 || before[1] < 0) {
    throw new Error(
      `Conv2DBackpropInput (wasm): padding (top ${top}, left ${left}) at least as large as the filter [${kh}, ${kw}] is not supported`,
    );
  }
  // Stride 1 from here on: pad so that a VALID correlation with the flipped filter yields [H, W].
  const after = [h + top - ho, w + left - wo];
  if (sh > 1 || sw > 1) return withScope(args.backend, (s) => stridedInputGrad(s, dy, filter, info));
  return withScope(args.backend, (s) => {
    let up = dy; // [N, Ho*sh, Wo*sw, Co]
    if (after[0] < 0 || after[1] < 0) {
      const size = [n, up.shape[1] + Math.min(0, after[0]), up.shape[2] + Math.min(0, after[1]), co];
      up = s.runOurs('Slice', { x: up }, { begin: [0, 0, 0, 0], size });
    }
    const pad: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [before[0], Math.max(0, after[0])],
      [before[1], Math.max(0, after[1])],
      [0, 0],
    ];
    const wf = flipFilter(s.backend, filter);
    return s.run(
      'Conv2D',
      { x: up, filter: wf },
      { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined as unknown as string },
    );
  });
}

export const conv2dBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput as unknown as tf.KernelFunc,
};

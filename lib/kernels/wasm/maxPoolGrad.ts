/**
 * `MaxPoolGrad` for wasm (the stock one gives wrong values). Same rule as tfjs's `cpu` backend
 * and TensorFlow: each output's gradient goes to the first maximum of its window (row-major
 * scan, padding ignored). One JavaScript pass over the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import { WasmBackend, makeOutput } from './scope';

type TensorInfo = tf.TensorInfo;

interface Attrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function maxPoolGrad(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const attrs = args.attrs as unknown as Attrs;
  const backend = args.backend as WasmBackend;
  if (input.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`MaxPoolGrad (wasm): float32 only, got input ${input.dtype}, dy ${dy.dtype}`);
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const {
    batchSize: nb,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: ho,
    outWidth: wo,
    strideHeight: sh,
    strideWidth: sw,
    filterHeight: fh,
    filterWidth: fw,
  } = info;
  if (dy.shape.join() !== [nb, ho, wo, c].join())
    throw new Error(`MaxPoolGrad (wasm): dy has shape [${dy.shape}], expected [${[nb, ho, wo, c]}]`);
  const { top, left } = info.padInfo;
  const out = makeOutput(backend, input.shape, 'float32');
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  const xv = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  dx.fill(0);
  for (let b = 0; b < nb; b++) {
    for (let yr = 0; yr < ho; yr++) {
      const r0 = yr * sh - top;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(h, r0 + fh);
      for (let yc = 0; yc < wo; yc++) {
        const c0 = yc * sw - left;
        const cMin = Math.max(0, c0);
        const cMax = Math.min(w, c0 + fw);
        const gBase = ((b * ho + yr) * wo + yc) * c;
        for (let d = 0; d < c; d++) {
          let best = Number.NEGATIVE_INFINITY;
          let pos = -1;
          for (let xr = rMin; xr < rMax; xr++) {
            for (let xc = cMin; xc < cMax; xc++) {
              const p = ((b * h + xr) * w + xc) * c + d;
              if (xv[p] > best) {
                best = xv[p];
                pos = p;
              }
            }
          }
          if (pos >= 0) dx[pos] += g[gBase + d];
        }
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};

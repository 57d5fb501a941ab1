/**
 * `UnsortedSegmentSum` for wasm (missing from the stock backend; it is the gradient of
 * `gather`). A single pass over the wasm heap in JavaScript, with TensorFlow's semantics:
 * out[s, ...] = sum of x[i, ...] over the i with segmentIds[i] = s; ids outside
 * [0, numSegments) are dropped.
 */
import * as tf from '@tensorflow/tfjs';
import { WasmBackend, makeOutput } from './scope';

type TensorInfo = tf.TensorInfo;

export function unsortedSegmentSum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = args.attrs as { numSegments: number };
  const backend = args.backend as WasmBackend;
  const r = segmentIds.shape.length;
  if (x.shape.slice(0, r).join() !== segmentIds.shape.join()) {
    throw new Error(
      `UnsortedSegmentSum (wasm): segmentIds [${segmentIds.shape}] must be a prefix of x's shape [${x.shape}]`,
    );
  }
  if (!Number.isInteger(numSegments) || numSegments < 0)
    throw new Error(`UnsortedSegmentSum (wasm): numSegments must be a non-negative integer, got ${numSegments}`);
  if (x.dtype !== 'float32' && x.dtype !== 'int32')
    throw new Error(`UnsortedSegmentSum (wasm): x must be float32 or int32, got ${x.dtype}`);
  if (segmentIds.dtype !== 'int32')
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${segmentIds.dtype}`);
  const inner = x.shape.slice(r).reduce((p, q) => p * q, 1);
  const rows = segmentIds.shape.reduce((p, q) => p * q, 1);
  const out = makeOutput(backend, [numSegments, ...x.shape.slice(r)], x.dtype);
  // Views are taken after makeOutput: allocation may grow (and detach) the heap.
  const o = backend.typedArrayFromHeap(out);
  const xv = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  o.fill(0);
  for (let i = 0; i < rows; i++) {
    const sid = ids[i];
    if (sid < 0 || sid >= numSegments) continue;
    const src = i * inner;
    const dst = sid * inner;
    for (let k = 0; k < inner; k++) o[dst + k] += xv[src + k];
  }
  return out;
}

export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc,
};

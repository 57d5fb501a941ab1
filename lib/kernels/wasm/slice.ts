/**
 * Slice, SplitV and Unpack for wasm that read the input where it lies. The stock kernels first copy the
 * whole input out of the heap (`readSync`) for every slice: a split of the flat Adam parameters
 * (9.4 M floats into 62 parts) copied 2.3 GB and took about 0.7 s per step. Here a contiguous
 * slice is one typed-array copy and any other is a copy of its contiguous innermost runs.
 */
import * as tf from '@tensorflow/tfjs';
import { WasmBackend, makeOutput, stockKernel } from './scope';

type TensorInfo = tf.TensorInfo;
type Typed = Float32Array | Int32Array | Uint8Array;

/** out = x[begin : begin + size] for x of `shape` (row-major), any rank. */
export function sliceInto(
  x: Typed,
  out: Typed,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
): void {
  const rank = shape.length;
  // Merge trailing axes taken whole into one innermost run.
  let inner = 1;
  let d = rank - 1;
  while (d >= 0 && begin[d] === 0 && size[d] === shape[d]) inner *= shape[d--];
  if (d < 0) {
    out.set(x.subarray(0, inner));
    return;
  }
  const run = size[d] * inner; // contiguous elements per copy
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let k = rank - 1; k >= 0; k--) {
    strides[k] = s;
    s *= shape[k];
  }
  // Odometer over axes 0..d-1 of the slice.
  const idx = new Array<number>(d).fill(0);
  const total = size.slice(0, d).reduce((a, b) => a * b, 1);
  let o = 0;
  for (let t = 0; t < total; t++) {
    let src = begin[d] * strides[d];
    for (let k = 0; k < d; k++) src += (begin[k] + idx[k]) * strides[k];
    if (run >= 16) out.set(x.subarray(src, src + run), o);
    else for (let j = 0; j < run; j++) out[o + j] = x[src + j];
    o += run;
    for (let k = d - 1; k >= 0; k--) {
      if (++idx[k] < size[k]) break;
      idx[k] = 0;
    }
  }
}

function sliceInfo(backend: WasmBackend, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const out = makeOutput(backend, size, x.dtype);
  if (size.some((v) => v === 0)) return out;
  sliceInto(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), x.shape, begin, size);
  return out;
}

function slice(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs: tf.NamedAttrMap }): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
  if (x.dtype === 'string') return stockSlice(args);
  const [b, s] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
  tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, b, s);
  return sliceInfo(args.backend as WasmBackend, x, b, s);
}

function splitV(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo[] {
  const { x } = args.inputs as { x: TensorInfo };
  const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
  if (x.dtype === 'string') return stockSplit(args);
  const ax = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
  const begin = new Array<number>(x.shape.length).fill(0);
  const outs: TensorInfo[] = [];
  for (const s of sizes) {
    const size = x.shape.slice();
    size[ax] = s;
    outs.push(sliceInfo(args.backend as WasmBackend, x, begin.slice(), size));
    begin[ax] += s;
  }
  return outs;
}

/** Unpack (tf.unstack): one slice per index of `axis`, the axis dropped (the same layout). */
function unpack(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo[] {
  const { value: x } = args.inputs as { value: TensorInfo };
  if (x.dtype === 'string') return stockKernel('Unpack')(args) as TensorInfo[];
  const ax = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, x.shape)[0];
  const backend = args.backend as WasmBackend;
  const outShape = x.shape.filter((_, i) => i !== ax);
  const size = x.shape.slice();
  size[ax] = 1;
  const outs: TensorInfo[] = [];
  for (let i = 0; i < x.shape[ax]; i++) {
    const begin = x.shape.map((_, d) => (d === ax ? i : 0));
    const out = makeOutput(backend, outShape, x.dtype);
    if (outShape.every((d) => d > 0))
      sliceInto(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), x.shape, begin, size);
    outs.push(out);
  }
  return outs;
}

function stockSlice(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  return stockKernel('Slice')(args) as TensorInfo;
}
function stockSplit(args: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  return stockKernel('SplitV')(args) as TensorInfo[];
}

export const sliceConfig: tf.KernelConfig = {
  kernelName: 'Slice',
  backendName: 'wasm',
  kernelFunc: slice as unknown as tf.KernelFunc,
};
export const unpackConfig: tf.KernelConfig = {
  kernelName: 'Unpack',
  backendName: 'wasm',
  kernelFunc: unpack as unknown as tf.KernelFunc,
};
export const splitVConfig: tf.KernelConfig = {
  kernelName: 'SplitV',
  backendName: 'wasm',
  kernelFunc: splitV as unknown as tf.KernelFunc,
};

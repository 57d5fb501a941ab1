/**
 * Add, Sub, Multiply, RealDiv (equal shapes, or one operand a single value), Square, Sum over
 * every axis or over leading axes, and Transpose (float32, int32), for big tensors on wasm through the native addon: the same IEEE float32
 * operations as wasm's kernels (so the same values; the full Sum accumulates in double), on every
 * thread of the pool. Smaller tensors, other dtypes and other broadcasts go to the kernel
 * registered before.
 */
import * as tf from '@tensorflow/tfjs';
import { NativeAddon } from './addon';
import { KernelArgs, alloc, f32, size } from './heap';
import { WasmBackend, makeOutput } from '../wasm/scope';
import { reducePermutation } from '../wasm/heap';

/** Below this many elements the wasm kernel is as fast (no thread hand-off, no call overhead). */
export const NATIVE_ELEMENTWISE_MIN = 1 << 15;

const BINARY = [['Add', 0], ['Sub', 1], ['Multiply', 2], ['RealDiv', 3]] as const;

export function elementwiseKernels(addon: NativeAddon, fallback: (name: string) => tf.KernelFunc): tf.KernelConfig[] {
  const binary = (name: string, op: number): tf.KernelFunc => (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(name)(args);
    const na = size(a.shape);
    const nb = size(b.shape);
    const same = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
    // One side a single value: the output has the other's shape only if that side's rank is not lower.
    const shape = same ? a.shape : nb === 1 && b.shape.length <= a.shape.length ? a.shape : na === 1 && a.shape.length <= b.shape.length ? b.shape : undefined;
    if (!shape || size(shape) < NATIVE_ELEMENTWISE_MIN) return fallback(name)(args);
    const out = alloc(backend, shape);
    addon.binary(op, f32(backend, a), f32(backend, b), f32(backend, out));
    return out;
  };

  const square: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32' || size(x.shape) < NATIVE_ELEMENTWISE_MIN) return fallback('Square')(args);
    const out = alloc(backend, x.shape);
    addon.square(f32(backend, x), f32(backend, out));
    return out;
  };

  const sum: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { x } = inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
    const rank = x.shape.length;
    const leading = axes.length > 0 && axes.every((a, i) => a === i); // axes 0..k-1 (k = rank: every axis)
    if (x.dtype !== 'float32' || !leading || size(x.shape) < NATIVE_ELEMENTWISE_MIN) return fallback('Sum')(args);
    const kept = x.shape.slice(axes.length);
    const out = alloc(backend, keepDims ? [...axes.map(() => 1), ...kept] : kept);
    if (axes.length === rank) f32(backend, out)[0] = addon.sumAll(f32(backend, x));
    else addon.sumRows(f32(backend, x), size(x.shape.slice(0, axes.length)), size(kept), f32(backend, out));
    return out;
  };

  const transpose: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { x } = inputs as { x: tf.TensorInfo };
    const { perm } = args.attrs as { perm: number[] };
    if ((x.dtype !== 'float32' && x.dtype !== 'int32') || perm.length !== x.shape.length || size(x.shape) < NATIVE_ELEMENTWISE_MIN) return fallback('Transpose')(args);
    const r = reducePermutation(x.shape, perm);
    const out = makeOutput(backend as WasmBackend, perm.map((p) => x.shape[p]), x.dtype);
    const heap = (t: tf.TensorInfo) => (backend as WasmBackend).typedArrayFromHeap(t) as Float32Array | Int32Array;
    if (r.shape.length <= 1) heap(out).set(heap(x));
    else addon.transpose(heap(x), heap(out), Float64Array.from(r.shape), Int32Array.from(r.perm));
    return out;
  };

  return [
    ...BINARY.map(([name, op]) => ({ kernelName: name, backendName: 'wasm', kernelFunc: binary(name, op) })),
    { kernelName: 'Square', backendName: 'wasm', kernelFunc: square },
    { kernelName: 'Sum', backendName: 'wasm', kernelFunc: sum },
    { kernelName: 'Transpose', backendName: 'wasm', kernelFunc: transpose },
  ];
}

/**
 * Element-wise kernels for big tensors on wasm through the native addon: arithmetic, Maximum and
 * Minimum, comparisons and logical ops with the broadcasts an augmentation or a batch norm uses
 * (equal shapes, one value, one value per row or per column), Abs/Floor/Ceil/Neg/Sqrt/ClipByValue/
 * LogicalNot, Select, Square, Sum over every axis or over leading axes, and Transpose (float32,
 * int32). The same IEEE float32 operations as wasm's kernels, so the same values (the Sums
 * accumulate in double), on every thread of the pool. Smaller tensors, other dtypes and other
 * broadcasts go to the kernel registered before.
 */
import * as tf from '@tensorflow/tfjs';
import { NativeAddon } from './addon';
import { KernelArgs, alloc, f32, size } from './heapViews';
import { WasmBackend, makeOutput } from '../wasm/scope';
import { reducePermutation } from '../wasm/heap';

/** Below this many elements the wasm kernel is as fast (no thread hand-off, no call overhead). */
export const NATIVE_ELEMENTWISE_MIN = 1 << 15;

/** Binary kernels and the addon's op numbers; `logical` ops take bool operands, the others float32. */
const BINARY: ReadonlyArray<{ name: string; op: number; logical?: boolean }> = [
  { name: 'Add', op: 0 },
  { name: 'Sub', op: 1 },
  { name: 'Multiply', op: 2 },
  { name: 'RealDiv', op: 3 },
  { name: 'Maximum', op: 4 },
  { name: 'Minimum', op: 5 },
  { name: 'Equal', op: 6 },
  { name: 'NotEqual', op: 7 },
  { name: 'Greater', op: 8 },
  { name: 'GreaterEqual', op: 9 },
  { name: 'Less', op: 10 },
  { name: 'LessEqual', op: 11 },
  { name: 'LogicalAnd', op: 12, logical: true },
  { name: 'LogicalOr', op: 13, logical: true },
];
const UNARY: ReadonlyArray<{ name: string; op: number; logical?: boolean }> = [
  { name: 'Abs', op: 0 },
  { name: 'Floor', op: 1 },
  { name: 'Ceil', op: 2 },
  { name: 'Neg', op: 3 },
  { name: 'Sqrt', op: 4 },
  { name: 'ClipByValue', op: 5 },
  { name: 'LogicalNot', op: 6, logical: true },
];

/** How an operand of `shape` maps onto `out` seen as [rows, cols] (0 full, 1 per row, 2 per column, 3 one value). */
function modeAt(shape: readonly number[], out: readonly number[], k: number): number | undefined {
  const s = [...Array(out.length - shape.length).fill(1), ...shape]; // right-aligned, as broadcasting reads it
  const ones = (from: number, to: number): boolean => s.slice(from, to).every((d) => d === 1);
  const same = (from: number, to: number): boolean => s.slice(from, to).every((d, i) => d === out[from + i]);
  if (ones(0, s.length)) return 3;
  if (same(0, s.length)) return 0;
  if (same(0, k) && ones(k, s.length)) return 1;
  if (ones(0, k) && same(k, s.length)) return 2;
  return undefined;
}

/**
 * The [rows, cols] view of a broadcast output in which both operands are full, per-row, per-column
 * or one value, if there is one (e.g. [B, 1] against [B, N], [C] against [N, H, W, C]).
 */
export function broadcastPlan(
  a: readonly number[],
  b: readonly number[],
  out: readonly number[],
): { rows: number; cols: number; am: number; bm: number } | undefined {
  for (let k = 0; k <= out.length; k++) {
    const am = modeAt(a, out, k);
    const bm = modeAt(b, out, k);
    if (am !== undefined && bm !== undefined) return { rows: size(out.slice(0, k)), cols: size(out.slice(k)), am, bm };
  }
  return undefined;
}

export function elementwiseKernels(addon: NativeAddon, fallback: (name: string) => tf.KernelFunc): tf.KernelConfig[] {
  const view = (backend: tf.KernelBackend, t: tf.TensorInfo): Float32Array | Uint8Array =>
    (backend as WasmBackend).typedArrayFromHeap(t) as Float32Array | Uint8Array;

  const binary =
    (name: string, op: number, logical: boolean): tf.KernelFunc =>
    (args) => {
      const { inputs, backend } = args as unknown as KernelArgs;
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const want = logical ? 'bool' : 'float32';
      if (a.dtype !== want || b.dtype !== want) return fallback(name)(args);
      let shape: number[];
      try {
        shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      } catch {
        return fallback(name)(args); // the stock kernel names the mismatch
      }
      const plan = size(shape) >= NATIVE_ELEMENTWISE_MIN ? broadcastPlan(a.shape, b.shape, shape) : undefined;
      if (!plan) return fallback(name)(args);
      const out = makeOutput(backend as WasmBackend, shape, op <= 5 ? 'float32' : 'bool');
      addon.binaryBcast(
        op,
        view(backend, a),
        plan.am,
        view(backend, b),
        plan.bm,
        plan.rows,
        plan.cols,
        view(backend, out),
      );
      return out;
    };

  const unary =
    (name: string, op: number, logical: boolean): tf.KernelFunc =>
    (args) => {
      const { inputs, backend } = args as unknown as KernelArgs;
      const { x } = inputs as { x: tf.TensorInfo };
      if (x.dtype !== (logical ? 'bool' : 'float32') || size(x.shape) < NATIVE_ELEMENTWISE_MIN)
        return fallback(name)(args);
      const { clipValueMin, clipValueMax } = (args.attrs ?? {}) as { clipValueMin?: number; clipValueMax?: number };
      const out = makeOutput(backend as WasmBackend, x.shape, x.dtype);
      addon.unary(op, view(backend, x), view(backend, out), clipValueMin ?? 0, clipValueMax ?? 0);
      return out;
    };

  const select: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { condition, t, e } = inputs as { condition: tf.TensorInfo; t: tf.TensorInfo; e: tf.TensorInfo };
    const n = size(t.shape);
    const sameShape = (x: tf.TensorInfo): boolean =>
      x.shape.length === t.shape.length && x.shape.every((d, i) => d === t.shape[i]);
    if (
      condition.dtype !== 'bool' ||
      t.dtype !== 'float32' ||
      e.dtype !== 'float32' ||
      !sameShape(condition) ||
      !sameShape(e) ||
      n < NATIVE_ELEMENTWISE_MIN
    ) {
      return fallback('Select')(args);
    }
    const out = alloc(backend, t.shape);
    addon.select(view(backend, condition) as Uint8Array, f32(backend, t), 0, f32(backend, e), 0, f32(backend, out));
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
    if (
      (x.dtype !== 'float32' && x.dtype !== 'int32') ||
      perm.length !== x.shape.length ||
      size(x.shape) < NATIVE_ELEMENTWISE_MIN
    )
      return fallback('Transpose')(args);
    const r = reducePermutation(x.shape, perm);
    const out = makeOutput(
      backend as WasmBackend,
      perm.map((p) => x.shape[p]),
      x.dtype,
    );
    const heap = (t: tf.TensorInfo) => (backend as WasmBackend).typedArrayFromHeap(t) as Float32Array | Int32Array;
    if (r.shape.length <= 1) heap(out).set(heap(x));
    else addon.transpose(heap(x), heap(out), Float64Array.from(r.shape), Int32Array.from(r.perm));
    return out;
  };

  return [
    ...BINARY.map(({ name, op, logical }) => ({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: binary(name, op, logical === true),
    })),
    ...UNARY.map(({ name, op, logical }) => ({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: unary(name, op, logical === true),
    })),
    { kernelName: 'Select', backendName: 'wasm', kernelFunc: select },
    { kernelName: 'Square', backendName: 'wasm', kernelFunc: square },
    { kernelName: 'Sum', backendName: 'wasm', kernelFunc: sum },
    { kernelName: 'Transpose', backendName: 'wasm', kernelFunc: transpose },
  ];
}

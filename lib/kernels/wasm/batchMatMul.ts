/**
 * `BatchMatMul` for wasm that always reaches XNNPACK. The stock kernel uses XNNPACK's
 * fully-connected operator only for a single, untransposed product and otherwise falls back to
 * a scalar triple loop, which is what every matMul gradient (dA = dC B^T, dB = A^T dC) and
 * every attention product hit. Here transposed operands are transposed explicitly (a memory
 * copy, cheap next to the product) and batched products run one XNNPACK call per batch entry;
 * small batched products, where per-call overhead dominates, keep the stock loop. A product
 * with a transposed big operand is computed transposed (C^T = op(B)^T op(A)^T) when that copies
 * fewer floats.
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, withScope } from './scope';
import { transposeBatched } from './heap';

type TensorInfo = tf.TensorInfo;

/** Below this many multiply-adds per batch entry, batched products use the stock loop. */
export const XNN_BATCHED_MIN_MACS = 1 << 17;

/** x holding [batch, rows, cols] row-major -> new [batch, cols, rows] (JavaScript blocked transpose). */
function transposeLast2(s: Scope, x: TensorInfo, batch: number, rows: number, cols: number): TensorInfo {
  const out = s.alloc([batch, cols, rows]);
  transposeBatched(s.f32(x), s.f32(out), batch, rows, cols);
  return out;
}

/** x holding [rows, cols] -> [1, cols, rows]. */
function transpose2d(s: Scope, x: TensorInfo, rows: number, cols: number): TensorInfo {
  return transposeLast2(s, x, 1, rows, cols);
}

export function batchMatMul(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  return withScope(args.backend, (s) => {
    if (a.dtype !== 'float32' || b.dtype !== 'float32') {
      return s.run('BatchMatMul', { a, b }, args.attrs);
    }
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (ra < 2 || rb < 2)
      throw new Error(`BatchMatMul (wasm): operands must have rank >= 2, got a [${a.shape}], b [${b.shape}]`);
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const k2 = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (k !== k2)
      throw new Error(
        `BatchMatMul (wasm): inner dimensions differ: a [${a.shape}] (transposeA ${transposeA}), b [${b.shape}] (transposeB ${transposeB})`,
      );
    const batchA = a.shape.slice(0, -2).reduce((p, q) => p * q, 1);
    const batchB = b.shape.slice(0, -2).reduce((p, q) => p * q, 1);
    const batch = Math.max(batchA, batchB);
    const outBatchShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const outShape = [...outBatchShape, m, n];
    if (batch > 1 && m * k * n < XNN_BATCHED_MIN_MACS) {
      return s.run('BatchMatMul', { a, b }, args.attrs);
    }
    if (batch === 1) {
      // C = op(A) op(B) directly, or as C = (op(B)^T op(A)^T)^T, whichever moves fewer floats:
      // the transposed copies plus XNNPACK's packing of its right operand (a copy of it). For
      // dA = dC B^T with a big weight B the second form copies only the small dC, C and A.
      const sizeA = m * k;
      const sizeB = k * n;
      const direct = (transposeA ? sizeA : 0) + (transposeB ? sizeB : 0) + sizeB;
      const swapped = (transposeA ? 0 : sizeA) + (transposeB ? 0 : sizeB) + m * n + sizeA;
      if (swapped < direct) {
        const bt = transposeB ? s.reshape(b, [1, n, k]) : transpose2d(s, b, k, n); // op(B)^T [N, K]
        const at = transposeA ? s.reshape(a, [1, k, m]) : transpose2d(s, a, m, k); // op(A)^T [K, M]
        const ct = s.run('BatchMatMul', { a: bt, b: at }, { transposeA: false, transposeB: false }); // [1, N, M]
        return s.reshape(transpose2d(s, ct, n, m), outShape);
      }
      const a1 = transposeA ? transpose2d(s, a, k, m) : s.reshape(a, [1, m, k]);
      const b1 = transposeB ? transpose2d(s, b, n, k) : s.reshape(b, [1, k, n]);
      return s.reshape(s.run('BatchMatMul', { a: a1, b: b1 }, { transposeA: false, transposeB: false }), outShape);
    }
    // Untransposed rank-3 operands: A [batchA, M, K], B [batchB, K, N].
    const a3 = transposeA ? transposeLast2(s, a, batchA, k, m) : s.reshape(a, [batchA, m, k]);
    const b3 = transposeB ? transposeLast2(s, b, batchB, n, k) : s.reshape(b, [batchB, k, n]);
    const plain = { transposeA: false, transposeB: false };
    if (batchA !== batchB && batchA !== 1 && batchB !== 1) {
      // General broadcasting of batch axes: rare; leave it to the stock kernel.
      return s.run('BatchMatMul', { a, b }, args.attrs);
    }
    // One XNNPACK product per batch entry; operands are copied out and results copied back with
    // typed-array copies (the stock Slice/Concat kernels cost about 1 ms each).
    const out = s.alloc([batch, m, n]);
    const ai = batchA === 1 ? a3 : s.alloc([1, m, k]);
    for (let i = 0; i < batch; i++) {
      if (batchA !== 1) s.f32(ai).set(s.f32(a3).subarray(i * m * k, (i + 1) * m * k));
      let bi = b3;
      if (batchB !== 1) {
        bi = s.alloc([1, k, n]); // a fresh tensor per entry: XNNPACK caches packed weights by tensor id
        s.f32(bi).set(s.f32(b3).subarray(i * k * n, (i + 1) * k * n));
      }
      const ci = s.run('BatchMatMul', { a: ai, b: bi }, plain);
      s.f32(out).set(s.f32(ci), i * m * n);
      s.free(ci);
      if (bi !== b3) s.free(bi);
    }
    return s.reshape(out, outShape);
  });
}

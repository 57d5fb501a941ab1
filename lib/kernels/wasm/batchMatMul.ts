/**
 * `BatchMatMul` for wasm that always reaches XNNPACK. The stock kernel uses XNNPACK's
 * fully-connected operator only for a single, untransposed product and otherwise falls back to
 * a scalar triple loop, which is what every matMul gradient (dA = dC B^T, dB = A^T dC) and
 * every attention product hit. Here transposed operands are transposed explicitly (a memory
 * copy, cheap next to the product) and batched products run one XNNPACK call per batch entry;
 * small batched products, where per-call overhead dominates, keep the stock loop.
 */
import * as tf from '@tensorflow/tfjs';
import { withScope } from './scope';

type TensorInfo = tf.TensorInfo;

/** Below this many multiply-adds per batch entry, batched products use the stock loop. */
export const XNN_BATCHED_MIN_MACS = 1 << 17;

export function batchMatMul(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs: tf.NamedAttrMap }): TensorInfo {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  return withScope(args.backend, (s) => {
    if (a.dtype !== 'float32' || b.dtype !== 'float32') {
      return s.run('BatchMatMul', { a, b }, args.attrs);
    }
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (ra < 2 || rb < 2) throw new Error(`BatchMatMul (wasm): operands must have rank >= 2, got a [${a.shape}], b [${b.shape}]`);
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const k2 = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (k !== k2) throw new Error(`BatchMatMul (wasm): inner dimensions differ: a [${a.shape}] (transposeA ${transposeA}), b [${b.shape}] (transposeB ${transposeB})`);
    const batchA = a.shape.slice(0, -2).reduce((p, q) => p * q, 1);
    const batchB = b.shape.slice(0, -2).reduce((p, q) => p * q, 1);
    const batch = Math.max(batchA, batchB);
    const outBatchShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const outShape = [...outBatchShape, m, n];
    if (batch > 1 && m * k * n < XNN_BATCHED_MIN_MACS) {
      return s.run('BatchMatMul', { a, b }, args.attrs);
    }
    // Untransposed rank-3 operands: A [batchA, M, K], B [batchB, K, N].
    const a3 = transposeA ? s.transpose(s.reshape(a, [batchA, k, m]), [0, 2, 1]) : s.reshape(a, [batchA, m, k]);
    const b3 = transposeB ? s.transpose(s.reshape(b, [batchB, n, k]), [0, 2, 1]) : s.reshape(b, [batchB, k, n]);
    const plain = { transposeA: false, transposeB: false };
    if (batch === 1) return s.reshape(s.run('BatchMatMul', { a: a3, b: b3 }, plain), outShape);
    if (batchA !== batchB && batchA !== 1 && batchB !== 1) {
      // General broadcasting of batch axes: rare; leave it to the stock kernel.
      return s.run('BatchMatMul', { a, b }, args.attrs);
    }
    const parts: TensorInfo[] = [];
    for (let i = 0; i < batch; i++) {
      const ai = batchA === 1 ? a3 : s.run('Slice', { x: a3 }, { begin: [i, 0, 0], size: [1, m, k] });
      const bi = batchB === 1 ? b3 : s.run('Slice', { x: b3 }, { begin: [i, 0, 0], size: [1, k, n] });
      parts.push(s.run('BatchMatMul', { a: ai, b: bi }, plain));
    }
    return s.reshape(s.run('Concat', parts as unknown as tf.NamedTensorInfoMap, { axis: 0 }), outShape);
  });
}

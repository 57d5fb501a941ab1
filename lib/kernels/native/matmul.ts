/**
 * BatchMatMul and _FusedMatMul (bias, ReLU) for wasm through the native addon (oneDNN matmul):
 * transposed operands are read in place through strides, a batch of 1 broadcasts. Other dtypes,
 * activations and batch broadcasts go to the kernel registered before (`fallback`).
 */
import * as tf from '@tensorflow/tfjs';
import { NativeAddon } from './addon';
import { KernelArgs, alloc, allFloat, f32, free, size } from './heapViews';

export function matMulKernels(addon: NativeAddon, fallback: (name: string) => tf.KernelFunc): tf.KernelConfig[] {
  const make =
    (name: 'BatchMatMul' | '_FusedMatMul'): tf.KernelFunc =>
    (args) => {
      const { inputs, backend } = args as unknown as KernelArgs;
      const { a, b, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo | undefined>;
      const { transposeA, transposeB, activation } = args.attrs as {
        transposeA: boolean;
        transposeB: boolean;
        activation?: string;
      };
      const act = activation ?? 'linear';
      if (!a || !b || !allFloat(a, b, bias) || preluActivationWeights || (act !== 'linear' && act !== 'relu'))
        return fallback(name)(args);
      const ra = a.shape.length;
      const rb = b.shape.length;
      if (ra < 2 || rb < 2) return fallback(name)(args);
      const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
      const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
      const k2 = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
      const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
      if (k !== k2) return fallback(name)(args); // the stock kernel names the mismatch
      const batchShapeA = a.shape.slice(0, -2);
      const batchShapeB = b.shape.slice(0, -2);
      const batchA = size(batchShapeA);
      const batchB = size(batchShapeB);
      // Equal batch shapes, or one side a single matrix: other broadcasts go to the fallback.
      const sameBatch = batchShapeA.length === batchShapeB.length && batchShapeA.every((d, i) => d === batchShapeB[i]);
      if (!sameBatch && batchA !== 1 && batchB !== 1) return fallback(name)(args);
      if (bias && size(bias.shape) !== n) return fallback(name)(args);
      const outBatch = batchA >= batchB ? batchShapeA : batchShapeB;
      const out = alloc(backend, [...outBatch, m, n]);
      const ok = addon.matmul(
        batchA,
        batchB,
        m,
        k,
        n,
        transposeA,
        transposeB,
        f32(backend, a),
        f32(backend, b),
        bias ? f32(backend, bias) : null,
        f32(backend, out),
        act === 'relu',
      );
      if (ok) return out;
      free(backend, out);
      return fallback(name)(args);
    };
  return [
    { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: make('BatchMatMul') },
    { kernelName: '_FusedMatMul', backendName: 'wasm', kernelFunc: make('_FusedMatMul') },
  ];
}

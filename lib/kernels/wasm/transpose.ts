/**
 * `Transpose` for wasm in JavaScript. The stock kernel walks element by element with index
 * arithmetic in C++ (about 50 ns per element at rank 5, e.g. the [B, T, 3, heads, d] ->
 * [3, B, heads, T, d] split of a ViT's qkv); this one collapses the permutation and copies with
 * a blocked 2-D transpose or a strided odometer loop (a few ns per element).
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, WasmBackend, makeOutput } from './scope';
import { permute } from './heap';

type TensorInfo = tf.TensorInfo;

export function transpose(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const { perm } = args.attrs as { perm: number[] };
  const backend = args.backend as WasmBackend;
  if (x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'bool')
    return new Scope(backend).run('Transpose', { x }, args.attrs);
  if (perm.length !== x.shape.length)
    throw new Error(`Transpose (wasm): perm [${perm}] does not match the rank of x [${x.shape}]`);
  const out = makeOutput(
    backend,
    perm.map((p) => x.shape[p]),
    x.dtype,
  );
  permute(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), x.shape, perm);
  return out;
}

export const transposeConfig: tf.KernelConfig = {
  kernelName: 'Transpose',
  backendName: 'wasm',
  kernelFunc: transpose as unknown as tf.KernelFunc,
};

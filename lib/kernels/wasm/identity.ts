/**
 * `Identity` and same-dtype `Cast` for wasm without a copy. The stock kernels copy the whole
 * buffer; tfjs tensors are immutable, so (as the `cpu` backend does) the output can share the
 * input's storage with its reference count raised. The engine clones every tensor it saves for
 * the backward pass through Identity (about 1,600 copies per ResNet-18 training step). Also
 * fixes the stock cast to bool, which copied values (2 stayed 2) instead of testing x != 0.
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, WasmBackend, makeOutput } from './scope';

type TensorInfo = tf.TensorInfo;

function share(backend: WasmBackend, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function identity(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend }): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const backend = args.backend as WasmBackend;
  if (x.dtype === 'string') return new Scope(backend).run('Identity', { x });
  return share(backend, x);
}

export function cast(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs: tf.NamedAttrMap;
}): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const { dtype } = args.attrs as { dtype: tf.DataType };
  const backend = args.backend as WasmBackend;
  if (dtype === x.dtype && dtype !== 'string') return share(backend, x);
  if (dtype === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32')) {
    // The stock kernel copies the numbers into the byte array (2 stays 2); bool means x != 0.
    const out = makeOutput(backend, x.shape, 'bool');
    const o = backend.typedArrayFromHeap(out);
    const v = backend.typedArrayFromHeap(x);
    for (let i = 0; i < v.length; i++) o[i] = v[i] !== 0 ? 1 : 0;
    return out;
  }
  return new Scope(backend).run('Cast', { x }, args.attrs);
}

export const identityConfig: tf.KernelConfig = {
  kernelName: 'Identity',
  backendName: 'wasm',
  kernelFunc: identity as unknown as tf.KernelFunc,
};
export const castConfig: tf.KernelConfig = {
  kernelName: 'Cast',
  backendName: 'wasm',
  kernelFunc: cast as unknown as tf.KernelFunc,
};

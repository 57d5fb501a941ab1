/**
 * What the native kernels need from the wasm backend: outputs allocated on its heap and typed-array
 * views of tensors there, handed to the addon, which reads and writes them in place (no copies).
 * Views are taken after every allocation of a kernel call: an allocation can grow the heap, which
 * detaches earlier views of a non-shared heap.
 */
import * as tf from '@tensorflow/tfjs';
import { WasmBackend, makeOutput } from '../wasm/scope';

export type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs: tf.NamedAttrMap };

export function f32(backend: tf.KernelBackend, t: tf.TensorInfo): Float32Array {
  return (backend as WasmBackend).typedArrayFromHeap(t) as Float32Array;
}

export function u8(backend: tf.KernelBackend, t: tf.TensorInfo): Uint8Array {
  return (backend as WasmBackend).typedArrayFromHeap(t) as Uint8Array;
}

export function alloc(backend: tf.KernelBackend, shape: number[]): tf.TensorInfo {
  return makeOutput(backend as WasmBackend, shape, 'float32');
}

export function free(backend: tf.KernelBackend, t: tf.TensorInfo): void {
  (backend as WasmBackend).disposeData(t.dataId);
}

export const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** True when every given tensor is float32 (undefined entries are ignored). */
export function allFloat(...ts: Array<tf.TensorInfo | undefined>): boolean {
  return ts.every((t) => t === undefined || t.dtype === 'float32');
}

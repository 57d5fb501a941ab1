/**
 * Uploads of CPU-side tensor data (scalars made from JS numbers, small constants, input batches)
 * through `queue.writeBuffer` instead of tfjs-backend-webgpu's staging buffers.
 *
 * Stock `uploadToGPU` (tfjs-backend-webgpu 4.22) takes a storage buffer from the pool and, when the
 * pool hands back an already-unmapped buffer (every time after the first step), copies through a
 * new MAP_WRITE staging buffer created with `reuse = false`: one `device.createBuffer` and one
 * `destroy` per upload. A ResNet-18 Barlow Twins step makes ~390 such uploads (counted with
 * `bench/gpu.ts`), and a buffer creation cost ~0.4 ms of CPU on the H100 (bench/RESULTS-GPU.md).
 * `queue.writeBuffer` is what the backend already uses for its uniforms: Dawn copies the bytes into
 * its own ring of staging memory, no buffer object is made.
 *
 * Ordering: `writeBuffer` lands on the queue before the command buffer tfjs is still recording.
 * That is safe because the target is freshly taken from the pool: tfjs returns a buffer to the
 * pool only when no unsubmitted command uses it (`commandQueueOwnedIds` / pending disposal), and
 * work already submitted stays ahead of the write on the queue.
 */
import * as tf from '@tensorflow/tfjs';

interface TensorData {
  values: ArrayLike<number> | null | undefined;
  dtype: tf.DataType;
  shape: number[];
  resource: unknown;
}

interface BackendInternals {
  tensorMap: { get(dataId: object): TensorData };
  bufferManager: { acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): unknown };
  queue: { writeBuffer(buffer: unknown, offset: number, data: ArrayBuffer, dataOffset: number, size: number): void };
  uploadToGPU(dataId: object): void;
}

type Upload = (this: BackendInternals, dataId: object) => void;

let stockUpload: Upload | undefined;
let proto: { uploadToGPU: Upload } | undefined;

/** Bytes for `values` as the GPU holds them: float32 as is, int32/bool as Int32Array. */
function gpuBytes(td: TensorData): ArrayBufferView | undefined {
  const v = td.values;
  if (v == null) return undefined;
  if (td.dtype === 'float32') return v instanceof Float32Array ? v : Float32Array.from(v);
  if (td.dtype === 'int32' || td.dtype === 'bool') return v instanceof Int32Array ? v : Int32Array.from(v);
  return undefined; // complex64/string: left to the stock path
}

function writeBufferUpload(this: BackendInternals, dataId: object): void {
  const td = this.tensorMap.get(dataId);
  const bytes = td.resource == null ? gpuBytes(td) : undefined;
  if (!bytes || bytes.byteLength === 0 || bytes.byteLength % 4 !== 0) {
    stockUpload!.call(this, dataId);
    return;
  }
  const g = globalThis as unknown as { GPUBufferUsage: Record<string, number> };
  const usage = g.GPUBufferUsage.STORAGE | g.GPUBufferUsage.COPY_SRC | g.GPUBufferUsage.COPY_DST;
  const buffer = this.bufferManager.acquireBuffer(bytes.byteLength, usage, false);
  this.queue.writeBuffer(buffer, 0, bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
  td.values = null; // as stock: once uploaded, the CPU copy is dropped
  td.resource = buffer;
}

/** Makes every WebGPU backend upload through `queue.writeBuffer` (idempotent). */
export function installWriteBufferUploads(): void {
  if (stockUpload) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require('@tensorflow/tfjs-backend-webgpu') as { WebGPUBackend: { prototype: { uploadToGPU: Upload } } };
  proto = mod.WebGPUBackend.prototype;
  stockUpload = proto.uploadToGPU;
  proto.uploadToGPU = writeBufferUpload;
}

/** Restores the stock upload path (A/B benchmarks). */
export function uninstallWriteBufferUploads(): void {
  if (!stockUpload || !proto) return;
  proto.uploadToGPU = stockUpload;
  stockUpload = undefined;
}

/** Whether uploads currently go through `queue.writeBuffer`. */
export function writeBufferUploadsActive(): boolean {
  return stockUpload !== undefined;
}

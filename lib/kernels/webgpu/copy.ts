/**
 * Slices and concatenations that are contiguous in memory as GPU buffer copies
 * (`copyBufferToBuffer`) instead of compute dispatches.
 *
 * Why: on WebGPU a tfjs dispatch costs CPU time whatever its size (a uniform buffer, a bind group,
 * the pass commands: ~0.18 ms each on the H100 host, bench/RESULTS-GPU.md), and training issues
 * many contiguous copies: the flat Adam update slices every parameter back out of the flat vector
 * (73 slices per ResNet-18 step, ~150 for ViT-T/4) and concatenates the gradients into it (stock
 * Concat binds all its inputs at once, so it runs as a tree of dispatches: 30 for ResNet-18, 73
 * for ViT), and the Barlow views are joined and split along the batch axis. A copy command needs
 * neither uniforms nor a bind group; tfjs ends its compute pass first and opens a new one at the
 * next dispatch.
 *
 * Bookkeeping follows the backend's own `recordAndSubmit` (tfjs-backend-webgpu 4.22): source and
 * destination are marked as used by the command buffer being recorded (`commandQueueOwnedIds`), so
 * a source disposed before the submit is returned to the pool only after it.
 */
import * as tf from '@tensorflow/tfjs';

interface GpuBufferLike {
  size: number;
  usage: number;
}

interface CopyBackend {
  tensorMap: { get(dataId: object): { resource?: unknown; dtype: tf.DataType } | undefined };
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  commandEncoder: {
    copyBufferToBuffer(src: unknown, srcOffset: number, dst: unknown, dstOffset: number, size: number): void;
  };
  commandQueueOwnedIds: WeakSet<object>;
  shouldExecuteOnCPU(inputs: tf.TensorInfo[]): boolean;
}

const size = tf.util.sizeFromShape;

/** Dtypes stored as 4 bytes per element on the GPU that copies may move. */
const COPYABLE: ReadonlySet<tf.DataType> = new Set(['float32', 'int32']);

/** The GPU buffer holding `t` (uploaded first if it is CPU data), or undefined if it is not a plain copyable buffer. */
function bufferOf(be: CopyBackend, t: tf.TensorInfo): GpuBufferLike | undefined {
  be.uploadToGPU(t.dataId);
  const r = be.tensorMap.get(t.dataId)?.resource as GpuBufferLike | undefined;
  const usage = (globalThis as unknown as { GPUBufferUsage?: { COPY_SRC: number; COPY_DST: number } }).GPUBufferUsage;
  if (!r || typeof r.size !== 'number' || typeof r.usage !== 'number' || !usage) return undefined;
  return r.usage & usage.COPY_SRC && r.usage & usage.COPY_DST ? r : undefined;
}

/** Copies `parts` (source tensor, first element, element count, destination element) into a new tensor. */
function copyInto(
  be: CopyBackend,
  outShape: number[],
  dtype: tf.DataType,
  parts: Array<{ src: tf.TensorInfo; from: number; n: number; to: number }>,
): tf.TensorInfo | undefined {
  // Small CPU data: the stock kernels compute on the CPU (tfjs' CPU hand-off), so leave it to them.
  if (be.shouldExecuteOnCPU(parts.map((p) => p.src))) return undefined;
  const sources = parts.map((p) => bufferOf(be, p.src));
  if (sources.some((b) => b === undefined)) return undefined;
  const out = be.makeTensorInfo(outShape, dtype);
  const dst = bufferOf(be, out);
  if (!dst) {
    be.disposeData(out.dataId);
    return undefined;
  }
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  parts.forEach((p, i) => {
    if (p.n > 0) be.commandEncoder.copyBufferToBuffer(sources[i], 4 * p.from, dst, 4 * p.to, 4 * p.n);
    be.commandQueueOwnedIds.add(p.src.dataId);
  });
  be.commandQueueOwnedIds.add(out.dataId);
  return out;
}

/**
 * `x[begin : begin + size]` as one buffer copy when that block is contiguous in `x` (row-major: a
 * leading run of single indices, then one partial axis, then full axes), else undefined.
 */
export function copySlice(
  backend: unknown,
  x: tf.TensorInfo,
  begin: number[],
  sizes: number[],
): tf.TensorInfo | undefined {
  if (!tf.slice_util.isSliceContinous(x.shape, begin, sizes)) return undefined;
  return copyRange(
    backend,
    x,
    tf.slice_util.computeFlatOffset(begin, tf.util.computeStrides(x.shape)),
    size(sizes),
    sizes,
  );
}

/**
 * `x` split along `axis` into parts of `sizes` (tf.split), each part one buffer copy, when every
 * axis before `axis` has size 1 (the parts are then contiguous blocks of `x`), else undefined.
 */
export function copySplit(
  backend: unknown,
  x: tf.TensorInfo,
  sizes: number[],
  axis: number,
): tf.TensorInfo[] | undefined {
  const be = backend as CopyBackend;
  if (size(x.shape.slice(0, axis)) !== 1) return undefined;
  const inner = size(x.shape.slice(axis + 1));
  const parts: tf.TensorInfo[] = [];
  let from = 0;
  for (const s of sizes) {
    const shape = x.shape.slice();
    shape[axis] = s;
    const part =
      s === 0
        ? be.makeTensorInfo(shape, x.dtype, tf.util.getTypedArrayFromDType(x.dtype as 'float32', 0))
        : copyRange(backend, x, from, s * inner, shape);
    if (!part) {
      for (const p of parts) be.disposeData(p.dataId);
      return undefined;
    }
    parts.push(part);
    from += s * inner;
  }
  return parts;
}

/**
 * The concatenation of `inputs` along `axis` as buffer copies when every axis before it has size
 * 1 (each input is then one contiguous block of the output), else undefined.
 */
export function copyConcat(backend: unknown, inputs: tf.TensorInfo[], axis: number): tf.TensorInfo | undefined {
  const be = backend as CopyBackend;
  if (inputs.length === 0) return undefined;
  const dtype = inputs[0].dtype;
  if (!COPYABLE.has(dtype) || inputs.some((t) => t.dtype !== dtype)) return undefined;
  const shapes = inputs.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const outShape = tf.backend_util.computeOutShape(shapes, axis);
  if (size(outShape) === 0 || size(outShape.slice(0, axis)) !== 1) return undefined;
  let to = 0;
  const parts = inputs
    .map((src) => {
      const n = size(src.shape);
      const p = { src, from: 0, n, to };
      to += n;
      return p;
    })
    .filter((p) => p.n > 0);
  // One non-empty input: stock returns it without a copy.
  return parts.length < 2 ? undefined : copyInto(be, outShape, dtype, parts);
}

/**
 * Elements [from, from + n) of `src` as a new tensor of `outShape` by one buffer copy, or
 * undefined where a copy cannot do it (small data still on the CPU, a dtype other than 4 bytes).
 */
export function copyRange(
  backend: unknown,
  src: tf.TensorInfo,
  from: number,
  n: number,
  outShape: number[],
): tf.TensorInfo | undefined {
  if (!COPYABLE.has(src.dtype) || n <= 0 || size(outShape) !== n || from < 0 || from + n > size(src.shape))
    return undefined;
  return copyInto(backend as CopyBackend, outShape, src.dtype, [{ src, from, n, to: 0 }]);
}

/**
 * `copyRange` for a result a kernel has just computed on the GPU into a shared buffer (a norm
 * gradient's dgamma and dbeta): such data always copies, so failing is a bug, not a fallback.
 */
export function copyOut(
  backend: unknown,
  src: tf.TensorInfo,
  from: number,
  n: number,
  outShape: number[],
): tf.TensorInfo {
  const t = copyRange(backend, src, from, n, outShape);
  if (!t)
    throw new Error(
      `copyOut: elements ${from}..${from + n} of a ${src.dtype} [${src.shape}] tensor cannot be copied out`,
    );
  return t;
}

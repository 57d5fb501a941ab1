/**
 * Calling the wasm backend's own kernels from inside our kernels, with the intermediate
 * outputs freed when the kernel finishes. Kernels run inside `engine.runKernel`, so they work on
 * `TensorInfo`s (dataId + shape), not on `tf.Tensor`s: nested kernel calls are not taped and
 * their outputs must be released with `backend.disposeData`.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = tf.TensorInfo;
type DataType = tf.DataType;

/** The parts of tfjs-backend-wasm's `BackendWasm` that our kernels use. */
export interface WasmBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number, values?: unknown): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  incRef(dataId: object): void;
  /** Live tensors' storage (a dataId stays valid until its tensor is disposed). */
  dataIdMap: { has(dataId: object): boolean; get(dataId: object): { memoryOffset: number | null } | undefined };
}

/**
 * `backend.makeOutput` that fails loudly when the wasm heap is exhausted: malloc then returns 0
 * and JavaScript writes through that offset would silently corrupt the heap (the wasm32 heap
 * stops at 4 GiB).
 */
export function makeOutput(backend: WasmBackend, shape: number[], dtype: DataType): TensorInfo {
  const out = backend.makeOutput(shape, dtype);
  const size = shape.reduce((p, q) => p * q, 1);
  if (size > 0 && !backend.dataIdMap.get(out.dataId)?.memoryOffset) {
    backend.disposeData(out.dataId);
    const mib = (backend as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.buffer.byteLength;
    throw new Error(
      `wasm kernels: out of wasm memory allocating [${shape}] ${dtype} (heap ${mib === undefined ? '?' : Math.round(mib / 2 ** 20)} MiB; wasm32 stops at 4096 MiB): use a smaller batch`,
    );
  }
  return out;
}

/** Kernel functions taken from the registry before we override any of them. */
const stock = new Map<string, tf.KernelFunc>();

/** Remembers the backend's own kernel `name` (call before registering an override of it). */
export function captureStock(name: string): tf.KernelConfig | undefined {
  const k = tf.getKernel(name, 'wasm');
  if (k && !stock.has(name)) stock.set(name, k.kernelFunc);
  return k;
}

/** The backend's own kernel `name` (the stock one even where we registered an override). */
export function stockKernel(name: string): tf.KernelFunc {
  return kernelFunc(name);
}

function kernelFunc(name: string): tf.KernelFunc {
  const own = stock.get(name);
  if (own) return own;
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernels: the backend has no kernel '${name}'`);
  return k.kernelFunc;
}

/**
 * A set of intermediate outputs owned by one kernel invocation. `run` calls a wasm kernel
 * (the stock one if we override it), `keep` marks the result that leaves the kernel, `end`
 * frees everything else.
 */
export class Scope {
  private readonly owned: TensorInfo[] = [];

  constructor(readonly backend: WasmBackend) {}

  /** Runs kernel `name` (the backend's own implementation) and owns its output. */
  run(name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): TensorInfo {
    const out = kernelFunc(name)({ inputs, attrs, backend: this.backend }) as TensorInfo | TensorInfo[];
    if (Array.isArray(out)) throw new Error(`wasm kernels: '${name}' returned several outputs; use runMany`);
    this.owned.push(out);
    return out;
  }

  /** Runs one of our own (registered) kernels by name, owning its output. */
  runOurs(name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): TensorInfo {
    const k = tf.getKernel(name, 'wasm');
    if (!k) throw new Error(`wasm kernels: '${name}' is not registered`);
    const out = k.kernelFunc({ inputs, attrs, backend: this.backend }) as TensorInfo;
    this.owned.push(out);
    return out;
  }

  /** Allocates an output on the wasm heap (owned). */
  alloc(shape: number[], dtype: DataType = 'float32'): TensorInfo {
    const out = makeOutput(this.backend, shape, dtype);
    this.owned.push(out);
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  /** Transposes with our Transpose kernel when registered (the stock one is slow). */
  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return stock.has('Transpose') ? this.runOurs('Transpose', { x }, { perm }) : this.run('Transpose', { x }, { perm });
  }

  /** Float32 view of a tensor's memory on the wasm heap (valid until the heap grows). */
  f32(x: TensorInfo): Float32Array {
    if (x.dtype !== 'float32') throw new Error(`wasm kernels: expected float32, got ${x.dtype} [${x.shape}]`);
    return this.backend.typedArrayFromHeap(x) as Float32Array;
  }

  /** Marks `x` as the kernel's result: it is not freed by `end`. Returns `x`. */
  keep(x: TensorInfo): TensorInfo {
    const i = this.owned.lastIndexOf(x);
    if (i >= 0) this.owned.splice(i, 1);
    return x;
  }

  /** Frees one owned intermediate now (inside loops that would otherwise pile them up). */
  free(x: TensorInfo): void {
    const i = this.owned.lastIndexOf(x);
    if (i < 0) throw new Error('wasm kernels: free() of a tensor this scope does not own');
    this.owned.splice(i, 1);
    this.backend.disposeData(x.dataId);
  }

  /** Frees every owned intermediate. */
  end(): void {
    for (const t of this.owned) this.backend.disposeData(t.dataId);
    this.owned.length = 0;
  }
}

/** Runs `body` with a fresh scope; the returned TensorInfo is kept, everything else freed. */
export function withScope(backend: tf.KernelBackend, body: (s: Scope) => TensorInfo): TensorInfo {
  const s = new Scope(backend as WasmBackend);
  try {
    return s.keep(body(s));
  } finally {
    s.end();
  }
}

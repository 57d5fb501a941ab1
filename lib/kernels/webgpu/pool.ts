/**
 * tfjs-backend-webgpu's buffer pool: what it holds, how much of it is in use, and a way to give the
 * unused part back to the GPU.
 *
 * The backend (4.22, `BufferManager`) keeps every released GPU buffer in a free list keyed by its
 * exact byte size and usage, and never destroys one. Once a training step has run, the pool holds,
 * for every tensor size the step uses, as many buffers as were ever alive at once: buffers of one
 * size cannot serve another, so the pool is larger than the most memory the step ever had in use.
 * And it stays allocated after the run: a notebook that pretrains one model and then another keeps
 * the first model's pool for the rest of the kernel's life.
 *
 * `trimGpuPool` destroys the free buffers (those no live tensor owns). It first ends the open compute
 * pass and submits the command encoder tfjs is still recording, so tensors disposed while queued work used them are back in the
 * free lists and no unsubmitted command refers to a destroyed buffer; work already submitted keeps
 * its buffers until it completes (WebGPU's `destroy` semantics). The next steps allocate again, so
 * call it between runs, not between steps.
 */
import * as tf from '@tensorflow/tfjs';

interface PoolBuffer {
  size: number;
  destroy(): void;
}

interface BufferManagerInternals {
  freeBuffers: Map<string, PoolBuffer[]>;
  numFreeBuffers: number;
  numBytesUsed: number;
  numBytesAllocated: number;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): PoolBuffer;
}

interface WebgpuBackendInternals {
  bufferManager: BufferManagerInternals;
  commandEncoder: unknown;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** Bytes in the pool of the active WebGPU backend. */
export interface GpuPoolStats {
  /** Bytes of buffers owned by live tensors (and uniforms/staging in flight). */
  usedBytes: number;
  /** Bytes of free buffers kept for reuse. */
  freeBytes: number;
  /** All bytes the pool has allocated and not destroyed: `usedBytes + freeBytes`. */
  allocatedBytes: number;
  /** Free buffers kept for reuse. */
  freeBuffers: number;
}

function webgpuInternals(): WebgpuBackendInternals | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  const be = tf.backend() as unknown as Partial<WebgpuBackendInternals>;
  const bm = be.bufferManager;
  if (
    !bm ||
    !(bm.freeBuffers instanceof Map) ||
    typeof be.submitQueue !== 'function' ||
    typeof be.endComputePassEncoder !== 'function'
  ) {
    throw new Error('gpu pool: this tfjs-backend-webgpu has no BufferManager with free lists (written for 4.22)');
  }
  return be as WebgpuBackendInternals;
}

/** The pool's byte counts, or undefined when the active backend is not `webgpu`. */
export function gpuPoolStats(): GpuPoolStats | undefined {
  const be = webgpuInternals();
  if (!be) return undefined;
  const bm = be.bufferManager;
  let freeBytes = 0;
  let freeBuffers = 0;
  for (const list of bm.freeBuffers.values()) {
    for (const b of list) freeBytes += b.size;
    freeBuffers += list.length;
  }
  return { usedBytes: bm.numBytesUsed, freeBytes, allocatedBytes: bm.numBytesAllocated, freeBuffers };
}

/**
 * Submits the command encoder tfjs is still recording (after ending its open compute pass, as the
 * backend does: a pass left open invalidates the command buffer). No-op on other backends.
 */
export function submitRecordedWork(): void {
  const be = webgpuInternals();
  if (!be?.commandEncoder) return;
  be.endComputePassEncoder();
  be.submitQueue();
}

/**
 * Destroys every free buffer in the WebGPU backend's pool and returns the bytes released (0 on
 * other backends). Live tensors are untouched. The pool refills as later work allocates.
 */
export function trimGpuPool(): number {
  const be = webgpuInternals();
  if (!be) return 0;
  submitRecordedWork();
  const bm = be.bufferManager;
  let released = 0;
  for (const list of bm.freeBuffers.values()) {
    for (const b of list) {
      released += b.size;
      b.destroy();
    }
    bm.numFreeBuffers -= list.length;
    list.length = 0;
  }
  bm.numBytesAllocated -= released;
  return released;
}

/**
 * Tracks the most bytes in use at once (`numBytesUsed` after each buffer the pool hands out) from
 * now on: the least memory any allocator could have run this work in, as opposed to what the
 * exact-size pool allocated. Returns a function that reads the peak and one that stops tracking.
 * Throws unless the active backend is `webgpu`.
 */
export function trackPeakGpuUse(): { peak: () => number; stop: () => void } {
  const be = webgpuInternals();
  if (!be) throw new Error('trackPeakGpuUse: the active backend is not webgpu');
  const bm = be.bufferManager;
  const own = Object.prototype.hasOwnProperty.call(bm, 'acquireBuffer');
  const prev = bm.acquireBuffer;
  let peak = bm.numBytesUsed;
  bm.acquireBuffer = function (
    this: BufferManagerInternals,
    ...args: Parameters<BufferManagerInternals['acquireBuffer']>
  ) {
    const b = prev.apply(this, args);
    if (this.numBytesUsed > peak) peak = this.numBytesUsed;
    return b;
  };
  return {
    peak: () => peak,
    stop: () => {
      if (own) bm.acquireBuffer = prev;
      else delete (bm as Partial<BufferManagerInternals>).acquireBuffer;
    },
  };
}

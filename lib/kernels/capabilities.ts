/**
 * What the active backend can do cheaply, as registered by its kernel module (lib/kernels/webgpu,
 * lib/kernels/wasm). The library asks these questions and never names a backend: methods choose how
 * to batch views, the trainer gives memory back at the end of a run.
 */
import * as tf from '@tensorflow/tfjs';

export interface BackendCapabilities {
  /**
   * Batch norm with statistics per group of rows costs no more in one pass than in separate passes
   * (a fused kernel takes the groups; composed from stock ops, groups broadcast [groups, 1, C]
   * vectors, and one pass was measured 17 % slower than two on wasm for the ResNet-18 width-16 step).
   */
  groupedBatchNorm: boolean;
  /** Binary ops broadcast a [B, 1] operand over [B, P] as fast as equal shapes (tfjs' pure-JS cpu backend does not). */
  fastBroadcast: boolean;
  /** Frees the backend's cache of released device memory (WebGPU keeps every freed buffer for reuse, forever); returns the bytes freed. */
  releaseCachedMemory(): number;
}

const NONE: BackendCapabilities = Object.freeze({
  groupedBatchNorm: false,
  fastBroadcast: true,
  releaseCachedMemory: () => 0,
});
const byBackend = new Map<string, Partial<BackendCapabilities>>();

/** Sets (merges) `backend`'s capabilities; a kernel module calls this when it registers or unregisters its kernels. */
export function registerCapabilities(backend: string, caps: Partial<BackendCapabilities>): void {
  byBackend.set(backend, { ...byBackend.get(backend), ...caps });
}

/** The capabilities of the active backend (all off where its kernel module registered none). */
export function backendCapabilities(): BackendCapabilities {
  return { ...NONE, ...byBackend.get(tf.getBackend()) };
}

// tfjs' own pure-JS cpu backend (no kernel module of ours): its broadcasting binary ops go element by
// element through index arithmetic, so only equal shapes are fast there.
registerCapabilities('cpu', { fastBroadcast: false });

/**
 * GPU errors that WebGPU reports only as events. A failed pipeline validation or an allocation
 * that does not fit makes Dawn drop the whole command buffer with no exception in JavaScript:
 * training goes on with work silently missing (on an H100, stock tfjs' AddN past 7 inputs did
 * this 13 times per run; an out-of-memory step gives NaN or stale values). The backend selection
 * starts watching the WebGPU device; the trainer checks before every read-back and checkpoint and
 * stops with a clear error, keeping the last good checkpoint.
 */
import * as tf from '@tensorflow/tfjs';

type Device = { addEventListener?: (type: string, f: (e: { error?: { message?: string } }) => void) => void };

const watched = new WeakSet<object>();
const errors: string[] = [];

/** Starts collecting the current backend's GPU errors (WebGPU only). Returns whether it could. */
export function watchDeviceErrors(): boolean {
  const dev = (tf.backend() as unknown as { device?: Device }).device;
  if (!dev || typeof dev.addEventListener !== 'function') return false;
  if (!watched.has(dev)) {
    dev.addEventListener('uncapturederror', (e) => {
      errors.push(e.error?.message ?? 'unknown GPU error');
    });
    watched.add(dev);
  }
  return true;
}

/** The GPU errors seen since the last call (and forgets them). */
export function takeDeviceErrors(): string[] {
  return errors.splice(0, errors.length);
}

export class DeviceError extends Error {
  override name = 'DeviceError';
}

/** A message that says what happened and what to do. */
export function deviceErrorMessage(errs: string[]): string {
  const first = errs[0].split('\n')[0].trim();
  const oom = errs.some((m) => /out of memory|outofmemory|allocation/i.test(m));
  return (
    `the GPU reported ${errs.length} error(s) (first: ${first}); the work around it was dropped, so results from here on would be wrong. ` +
    (oom
      ? 'The GPU ran out of memory: lower batchSize, the backbone width or the number of local crops.'
      : `This is a bug in a GPU kernel or in tfjs: continue on the CPU with DINOTWINS_BACKEND=wasm, and report it.`)
  );
}

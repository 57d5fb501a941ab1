/**
 * A keep-by-name registry for notebooks: re-running a cell that creates a model or tensors
 * disposes what the previous run of that cell kept under the same name, so tensor counts stay
 * flat across re-executions. Lives on globalThis, so re-importing lib (tslab recompiles on edits)
 * keeps one registry per kernel.
 */
import * as tf from '@tensorflow/tfjs';

type Disposable = { dispose(): void } | tf.Tensor | tf.Tensor[] | null | undefined;

const KEY = Symbol.for('dinotwins.keep');

function registry(): Map<string, Disposable> {
  const g = globalThis as unknown as Record<symbol, Map<string, Disposable> | undefined>;
  return (g[KEY] ??= new Map());
}

function disposeValue(v: Disposable): void {
  if (!v) return;
  if (Array.isArray(v)) tf.dispose(v);
  else if (v instanceof tf.Tensor) v.dispose();
  else v.dispose();
}

/** Keeps `value` under `name`, disposing whatever was kept under that name before. Returns `value`. */
export function keep<T extends Disposable>(name: string, value: T): T {
  const r = registry();
  const old = r.get(name);
  if (old && old !== value) disposeValue(old);
  r.set(name, value);
  return value;
}

/** Disposes and forgets `name` (or everything, without a name). */
export function release(name?: string): void {
  const r = registry();
  for (const [k, v] of [...r]) {
    if (name !== undefined && k !== name) continue;
    disposeValue(v);
    r.delete(k);
  }
}

/** Names currently kept. */
export function keptNames(): string[] {
  return [...registry().keys()];
}

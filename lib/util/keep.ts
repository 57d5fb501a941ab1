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

/** What is kept under `name`, or undefined. */
export function kept<T extends Disposable>(name: string): T | undefined {
  return registry().get(name) as T | undefined;
}

/** Names currently kept. */
export function keptNames(): string[] {
  return [...registry().keys()];
}

const COUNTS = Symbol.for('dinotwins.tensorCounts');

/**
 * Prints the live tensor count under `label` and checks it against the count this label reported
 * earlier in the same kernel: re-running a notebook must not grow it. Throws if it grew.
 */
export function reportTensors(label: string): void {
  const g = globalThis as unknown as Record<symbol, Map<string, number> | undefined>;
  const seen = (g[COUNTS] ??= new Map());
  const n = tf.memory().numTensors;
  const before = seen.get(label);
  console.log(
    `tensors alive: ${n}${before === undefined ? '' : ` (previous run of this notebook: ${before})`}; kept: ${keptNames().join(', ') || 'none'}`,
  );
  seen.set(label, n);
  if (before !== undefined && n > before)
    throw new Error(`${label}: ${n - before} tensors leaked by re-running the notebook (${before} -> ${n})`);
}

/** Helpers shared by the tests (not a test file itself: `npm test` runs test/*.test.ts). */
import assert from 'node:assert/strict';
import { TestContext } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ensureWebgpu, WebgpuAvailability } from '../lib/kernels/webgpu/setup';
import { Rng } from '../lib/util/rng';
import { ParamStore } from '../lib/nn/params';
import type { ConfigLayer } from '../lib/config/config';

/** max |a - b| / max |a|: the error relative to the tensor's scale. */
export function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(a[i]));
  }
  return den === 0 ? num : num / den;
}

/** n seeded normal draws, offset + scale * N(0, 1). */
export function randn(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => offset + scale * r.normal());
}

let availability: Promise<WebgpuAvailability> | undefined;

/**
 * For WebGPU tests: skips `t` with the reason when there is no adapter (on a CPU-only machine run
 * `eval "$(scripts/setup-lavapipe.sh)"` first), else makes `webgpu` the active backend.
 */
export async function useWebgpu(t: TestContext): Promise<boolean> {
  availability ??= ensureWebgpu();
  const a = await availability;
  if (!a.ok) {
    t.skip(a.reason);
    return false;
  }
  return tf.setBackend('webgpu');
}

/**
 * Fills every parameter of `params` (running statistics included) with seeded random values instead
 * of the init's zeros and ones, so a round trip that drops or swaps one shows: weights ~ N(0, 0.3),
 * variances |N(1, 0.2)|, weight-norm gains N(1, 0.3).
 */
export function randomiseParams(params: ParamStore, seed: number): void {
  params.names().forEach((n, k) => {
    const v = params.get(n);
    const r = randn(
      v.size,
      seed * 1000 + k,
      n.endsWith('running_var') ? 0.2 : 0.3,
      n.endsWith('running_var') || n.endsWith('weight_g') ? 1 : 0,
    );
    if (n.endsWith('running_var')) r.forEach((x, i) => (r[i] = Math.abs(x)));
    tf.tidy(() => v.assign(tf.tensor(r, v.shape)));
  });
}

/** Tiny but complete runs on the cpu backend: ResNet-18 of width 2 on 16x16 global and 8x8 local views (use it as a budget layer). */
export const TINY_RUN: ConfigLayer = {
  backbone: { kind: 'resnet', depth: 18, width: 2 },
  epochs: 2,
  batchSize: 8,
  seed: 3,
  warmupEpochs: 1,
  logEvery: 1,
  checkpointEvery: 3,
  augment: { globalSize: 16, localSize: 8, nLocal: 1 },
  projector: { hidden: 16, out: 16, layers: 2 },
  dino: { head: { out: 32, hidden: 16, bottleneck: 8 }, warmupTeacherTempEpochs: 1 },
};

/** The keys where two resolved configs differ ("augment.blur", ...). */
export function configDifferences(a: unknown, b: unknown, prefix = ''): string[] {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b as object)])].sort();
    return keys.flatMap((k) =>
      configDifferences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${prefix}${k}.`),
    );
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix.slice(0, -1)];
}

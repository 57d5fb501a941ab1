/**
 * The augmentation pipeline on the tfjs `webgpu` backend (stock kernels) against `cpu`.
 * Needs a WebGPU adapter; on a CPU-only machine run `eval "$(scripts/setup-lavapipe.sh)"` first
 * (lavapipe). Without one the tests are skipped with the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../lib/util/rng';
import { useWebgpu } from './helpers';
import { AUGMENT_PRESETS, augmentGrid, dinoViews, makeViews } from '../lib/augment';

function images(n: number): Uint8Array {
  const r = new Rng(21);
  return Uint8Array.from({ length: n * 32 * 32 * 3 }, () => r.int(256));
}

test('webgpu: barlow and dino views equal the cpu ones; nothing leaks', async (t) => {
  const img = images(6);
  await tf.setBackend('cpu');
  const want: Float32Array[] = [];
  for (const cfg of [AUGMENT_PRESETS.barlow, AUGMENT_PRESETS.dino]) {
    const v = makeViews(img, cfg, 17);
    for (const x of v) want.push((await x.data()) as Float32Array);
    tf.dispose(v);
  }
  if (!(await useWebgpu(t))) return;
  const before = tf.memory().numTensors;
  let k = 0;
  for (const cfg of [AUGMENT_PRESETS.barlow, AUGMENT_PRESETS.dino]) {
    const v = makeViews(img, cfg, 17);
    for (const x of v) {
      const got = (await x.data()) as Float32Array;
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[k][i]));
      // Normalised values span about [-2, 2.2]; float32 matMul sums in another order differ by ~1e-6.
      assert.ok(worst < 1e-4, `${cfg.name} view ${k}: max |webgpu - cpu| = ${worst}`);
      k++;
    }
    tf.dispose(v);
  }
  assert.equal(tf.memory().numTensors, before);
  const g = await augmentGrid(img, dinoViews({ nLocal: 2 }), 3, { nImages: 2, repeats: 1 });
  assert.equal(g.rgb.length, g.height * g.width * 3);
  assert.equal(tf.memory().numTensors, before);
  await tf.setBackend('cpu');
});

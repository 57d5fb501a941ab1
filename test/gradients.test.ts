import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '../lib/kernels';
import { meanGradConfig, sumGradConfig } from '../lib/kernels/gradients';

// Sum/Mean gradients written out by hand (what tfjs-core 4.22 computes: dy broadcast over the
// reduced axes, Mean divided by the reduced size), for several axes and keepDims.
const CASES: Array<{ shape: number[]; axis: number | number[] | undefined; keepDims: boolean }> = [
  { shape: [4, 3, 3, 5], axis: [0, 1, 2], keepDims: false },
  { shape: [4, 3, 3, 5], axis: [0, 1, 2], keepDims: true },
  { shape: [6, 7], axis: 0, keepDims: false },
  { shape: [6, 7], axis: -1, keepDims: true },
  { shape: [2, 3, 4], axis: [1], keepDims: false },
  { shape: [2, 3, 4], axis: undefined, keepDims: false },
];

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** Expected dL/dx for L = sum(w * reduce(x)): w broadcast back over the reduced axes (/ n for mean). */
function expected(shape: number[], axis: number | number[] | undefined, w: Float32Array, mean: boolean): Float32Array {
  const axes = tf.util.parseAxisParam(axis ?? (null as unknown as number), shape);
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = axes.reduce((p, a) => p * shape[a], 1);
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const strides = tf.util.computeStrides(shape);
  const keptStrides = tf.util.computeStrides(kept);
  for (let i = 0; i < size; i++) {
    let rem = i;
    let j = 0;
    for (let d = 0; d < shape.length; d++) {
      const idx = d < shape.length - 1 ? Math.floor(rem / strides[d]) : rem;
      if (d < shape.length - 1) rem -= idx * strides[d];
      const k = kept[d] === 1 ? 0 : idx;
      j += d < shape.length - 1 ? k * keptStrides[d] : k;
    }
    out[i] = mean ? w[j] / n : w[j];
  }
  return out;
}

test('our Sum and Mean gradients are the registered ones', () => {
  assert.equal(tf.getGradient('Sum'), sumGradConfig);
  assert.equal(tf.getGradient('Mean'), meanGradConfig);
});

test('Sum and Mean gradients match the hand-written broadcast for several axes and keepDims', async () => {
  await tf.setBackend('cpu');
  for (const [ci, c] of CASES.entries()) {
    for (const op of ['sum', 'mean'] as const) {
      const xv = seeded(
        c.shape.reduce((a, b) => a * b, 1),
        10 + ci,
      );
      const before = tf.memory().numTensors;
      const g = tf.tidy(() => {
        const x = tf.tensor(xv, c.shape);
        const y = tf[op](x, c.axis, c.keepDims);
        const w = tf.tensor(seeded(y.size, 50 + ci), y.shape);
        return {
          g: tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf[op](xx, c.axis, c.keepDims), w)))(x),
          w: w.dataSync() as Float32Array,
        };
      });
      const got = g.g.dataSync() as Float32Array;
      const want = expected(c.shape, c.axis, g.w, op === 'mean');
      assert.deepEqual(g.g.shape, c.shape, `${op} ${JSON.stringify(c)} shape`);
      for (let i = 0; i < want.length; i++)
        assert.ok(
          Math.abs(got[i] - want[i]) <= 1e-7 * Math.max(1, Math.abs(want[i])),
          `${op} ${JSON.stringify(c)} element ${i}: ${got[i]} vs ${want[i]}`,
        );
      g.g.dispose();
      assert.equal(tf.memory().numTensors, before, `${op} leaked tensors`);
    }
  }
});

test('the broadcast runs as a Fill kernel on the backend, not a JavaScript-side array', async () => {
  await tf.setBackend('cpu');
  const x = tf.randomNormal([8, 4, 4, 16]);
  const info = await tf.profile(() => tf.grad((xx: tf.Tensor) => tf.sum(tf.mean(xx, [0, 1, 2])))(x));
  const names = info.kernels.map((k) => k.name);
  assert.ok(names.includes('Fill'), `kernels run by the gradient: ${names.join(', ')}`);
  (info.result as tf.Tensor).dispose();
  x.dispose();
});

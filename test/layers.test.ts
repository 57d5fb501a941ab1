import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '../lib/kernels/wasm';
import { registerKernelsFor } from '../lib/kernels';
import { ParamStore } from '../lib/nn/params';
import { batchNorm, initBatchNorm, BN_EPS } from '../lib/nn/layers';
import { relErr } from './helpers';

/** Deterministic pseudo-random values in [lo, hi). */
function rand(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  const n = shape.reduce((p, q) => p * q, 1);
  const v = new Float32Array(n);
  let s = (seed * 2654435761) % 4294967296;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) % 4294967296;
    v[i] = lo + (s / 4294967296) * (hi - lo);
  }
  return tf.tensor(v, shape);
}

/** The plain autodiff form batchNorm replaced: moments, rsqrt, mul, add. */
function bnAutodiff(x: tf.Tensor, gamma?: tf.Tensor, beta?: tf.Tensor): tf.Tensor {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, BN_EPS)));
  return gamma && beta ? tf.add(tf.mul(y, gamma), beta) : y;
}

/** Output, dx, dgamma, dbeta (affine) of both forms for one input, plus the running statistics after one step. */
function both(shape: number[], affine: boolean, seed: number, offset: number): { ours: tf.Tensor[]; ref: tf.Tensor[] } {
  const c = shape[shape.length - 1];
  const x = tf.tidy(() => tf.add(rand(shape, seed, -2, 2), rand([c], seed + 1, -offset, offset))); // channel means away from 0
  const dy = rand(shape, seed + 2);
  const ps = new ParamStore('t');
  initBatchNorm(ps, 'bn', c, affine);
  if (affine) {
    tf.tidy(() => {
      ps.get('bn.weight').assign(rand([c], seed + 3, 0.5, 1.5));
      ps.get('bn.bias').assign(rand([c], seed + 4));
    });
  }
  const names = affine ? ['bn.weight', 'bn.bias'] : [];
  const vars = names.map((n) => ps.get(n));
  const ours = tf.tidy(() => {
    const f = (xx: tf.Tensor, ...p: tf.Tensor[]): tf.Tensor => {
      void p;
      return tf.sum(tf.mul(batchNorm(ps, 'bn', xx, { training: true }), dy));
    };
    const y = batchNorm(ps, 'bn', x, { training: true, updateStats: false });
    const g = tf.grads(f)([x, ...vars]);
    return [y, ...g];
  });
  const stats = [ps.get('bn.running_mean').clone(), ps.get('bn.running_var').clone()];
  const ref = tf.tidy(() => {
    const f = (xx: tf.Tensor, ...p: tf.Tensor[]): tf.Tensor => tf.sum(tf.mul(bnAutodiff(xx, p[0], p[1]), dy));
    const y = bnAutodiff(x, vars[0], vars[1]);
    const axes = shape.slice(0, -1).map((_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    const n = x.size / c;
    const rm = tf.mul(mean, 0.1);
    const rv = tf.add(0.9, tf.mul(variance, (0.1 * n) / (n - 1)));
    return [y, ...tf.grads(f)([x, ...vars]), rm, rv];
  });
  tf.dispose([x, dy]);
  ps.dispose();
  return { ours: [...ours, ...stats], ref };
}

for (const backend of ['cpu', 'wasm']) {
  test(`batchNorm (one customGrad op) matches autodiff through moments on ${backend}: output, gradients, running statistics`, async () => {
    if (backend === 'wasm') registerKernelsFor('wasm');
    assert.ok(await tf.setBackend(backend));
    const cases: Array<[number[], boolean, number]> = [
      [[4, 6, 6, 8], true, 0],
      [[4, 6, 6, 8], true, 20], // |mean| >> std
      [[3, 5, 7, 4], false, 3],
      [[16, 32], true, 5],
      [[16, 32], false, 0],
    ];
    for (const [shape, affine, offset] of cases) {
      const before = tf.memory().numTensors;
      const { ours, ref } = both(shape, affine, shape.length * 7 + offset, offset);
      const what = ['y', 'dx', ...(affine ? ['dgamma', 'dbeta'] : []), 'running_mean', 'running_var'];
      assert.equal(ours.length, what.length);
      ours.forEach((t, i) => {
        const e = relErr(ref[i].dataSync() as Float32Array, t.dataSync() as Float32Array);
        assert.ok(
          e <= 1e-4,
          `[${shape}] affine ${affine} offset ${offset}: ${what[i]} differs by ${e.toExponential(2)} (tolerance 1e-4)`,
        );
      });
      tf.dispose([...ours, ...ref]);
      assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
    }
  });
}

test('batchNorm in training mode updates running statistics once per call; inference uses them', async () => {
  assert.ok(await tf.setBackend('cpu'));
  const ps = new ParamStore('t');
  initBatchNorm(ps, 'bn', 3);
  const x = rand([8, 3], 11, 0, 4);
  const y = tf.tidy(() =>
    tf.grad((xx: tf.Tensor) => tf.sum(batchNorm(ps, 'bn', xx, { training: true, bnMomentum: 0.5 })))(x),
  );
  const { mean, variance } = tf.moments(x, [0]);
  const rm = ps.get('bn.running_mean').dataSync();
  const rv = ps.get('bn.running_var').dataSync();
  const m = mean.dataSync();
  const v = variance.dataSync();
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(rm[c] - 0.5 * m[c]) < 1e-6, 'running mean: one update with momentum 0.5');
    assert.ok(Math.abs(rv[c] - (0.5 + (0.5 * v[c] * 8) / 7)) < 1e-5, 'running var: unbiased batch variance');
  }
  const ev = tf.tidy(() => batchNorm(ps, 'bn', x, { training: false }));
  const want = tf.tidy(() =>
    tf.div(tf.sub(x, ps.get('bn.running_mean')), tf.sqrt(tf.add(ps.get('bn.running_var'), BN_EPS))),
  );
  assert.ok(relErr(want.dataSync() as Float32Array, ev.dataSync() as Float32Array) < 1e-6);
  tf.dispose([x, y, mean, variance, ev, want]);
  ps.dispose();
});

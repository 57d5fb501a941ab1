/**
 * The fused WebGPU batch norm (lib/kernels/webgpu/bnKernels.ts, through lib/nn/batchnorm.ts)
 * against the composed form on `cpu`: output, gradients of x / gamma / beta for a random upstream
 * gradient, and both running statistics, with and without ReLU and affine parameters, at shapes
 * that take one or many row blocks, channel counts that are not a multiple of the 64-column
 * workgroup, activations whose mean is far from zero (the shifted-sum variance), and statistics
 * per group of batch rows (views concatenated into one batch), and a residual added before the ReLU
 * (a ResNet block's end, with its own gradient). Temporaries
 * start as NaN, so a partial row the kernels forget to write shows up.
 *
 * Needs a WebGPU adapter (lavapipe on a CPU-only machine: `eval "$(scripts/setup-lavapipe.sh)"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { randn, useWebgpu } from './helpers';
import { registerWebgpuKernels, unregisterWebgpuKernels } from '../lib/kernels/webgpu';
import { setPoisonTemporaries } from '../lib/kernels/webgpu/program';
import { batchNormTrain, fusedBatchNormActive, runningUpdate } from '../lib/nn/batchnorm';

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length, 'length');
  let d = 0;
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    assert.ok(Number.isFinite(got[i]), `element ${i} is ${got[i]}`);
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / Math.max(m, 1e-30);
}

interface Case {
  shape: number[];
  affine: boolean;
  relu: boolean;
  offset?: number;
  groups?: number;
  residual?: boolean;
}

/** y, dx, dgamma, dbeta, new running mean and variance on the active backend. */
async function run(c: Case): Promise<Record<string, Float32Array>> {
  const C = c.shape[c.shape.length - 1];
  const n = c.shape.reduce((a, b) => a * b, 1);
  const out = tf.tidy(() => {
    const x = tf.tensor(randn(n, 1, 0.5 + (c.offset ?? 0) * 0.01, c.offset ?? 0), c.shape);
    const dy = tf.tensor(randn(n, 2), c.shape);
    const gamma = tf.tensor1d(randn(C, 3, 0.3, 1));
    const beta = tf.tensor1d(randn(C, 4, 0.5));
    const runMean = tf.tensor1d(randn(C, 5));
    const runVar = tf.tensor1d(randn(C, 6, 0.1, 2));
    const res = c.residual ? tf.tensor(randn(n, 7, 0.8), c.shape) : undefined;
    const got: Record<string, tf.Tensor> = {};
    const f = (...t: tf.Tensor[]): tf.Tensor => {
      const y = batchNormTrain(
        t[0],
        c.affine ? t[1] : undefined,
        c.affine ? t[2] : undefined,
        c.relu,
        {
          composed: (means, variances) => {
            let rm: tf.Tensor = runMean;
            let rv: tf.Tensor = runVar;
            for (let g = 0; g < means.length; g++) {
              rm = tf.add(tf.mul(rm, 0.9), tf.mul(means[g], 0.1));
              rv = tf.add(tf.mul(rv, 0.9), tf.mul(tf.mul(variances[g], 1.25), 0.1));
            }
            got.runMean = tf.keep(rm);
            got.runVar = tf.keep(rv);
          },
          fused: (stats) => {
            got.runMean = tf.keep(runningUpdate(runMean, stats, 0, 0.1, 1));
            got.runVar = tf.keep(runningUpdate(runVar, stats, 1, 0.1, 1.25));
          },
        },
        c.groups ?? 1,
        res ? t[t.length - 1] : undefined,
      );
      return tf.sum(tf.mul(y, dy));
    };
    const inputs = [x, ...(c.affine ? [gamma, beta] : []), ...(res ? [res] : [])];
    const y = batchNormTrain(
      x,
      c.affine ? gamma : undefined,
      c.affine ? beta : undefined,
      c.relu,
      undefined,
      c.groups ?? 1,
      res,
    );
    const grads = tf.grads(f)(inputs);
    return {
      y,
      dx: grads[0],
      ...(c.affine ? { dgamma: grads[1], dbeta: grads[2] } : {}),
      ...(res ? { dres: grads[grads.length - 1] } : {}),
      ...got,
    };
  });
  const res: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(out)) res[k] = (await v.data()) as Float32Array;
  tf.dispose(Object.values(out));
  return res;
}

const CASES: Case[] = [
  { shape: [4, 5, 6, 7], affine: true, relu: true }, // R = 120: two row blocks, 7 of 64 columns
  { shape: [8, 16, 16, 96], affine: true, relu: false }, // R = 2048: 32 blocks, 2 column groups
  { shape: [300, 130], affine: false, relu: true }, // projector-like [B, C], no affine
  { shape: [2, 3], affine: true, relu: true }, // one block smaller than a lane group
  { shape: [16, 4, 4, 65], affine: true, relu: true, offset: 100 }, // |mean| >> std
  { shape: [6, 8, 8, 16], affine: true, relu: true, groups: 2 }, // two views of 3 images in one batch
  { shape: [24, 70], affine: true, relu: false, groups: 3 }, // three [8, 70] projector batches
  { shape: [4, 40, 40, 8], affine: false, relu: true, groups: 4 }, // 1,600 rows per group: many blocks each
  { shape: [4, 6, 6, 70], affine: true, relu: true, residual: true }, // a ResNet block's end: ReLU(bn(x) + shortcut)
  { shape: [6, 5, 5, 16], affine: true, relu: true, residual: true, groups: 2 },
  { shape: [8, 33], affine: false, relu: true, residual: true },
];

test('fused batch norm on webgpu matches the composed form on cpu (values, gradients, running statistics)', async (t) => {
  if (!(await useWebgpu(t))) return;
  const want: Array<Record<string, Float32Array>> = [];
  await tf.setBackend('cpu');
  assert.equal(fusedBatchNormActive(), false, 'cpu has no fused batch norm');
  for (const c of CASES) want.push(await run(c));
  await tf.setBackend('webgpu');
  registerWebgpuKernels();
  setPoisonTemporaries(true);
  try {
    assert.equal(fusedBatchNormActive(), true, 'registerWebgpuKernels registers the fused batch norm');
    const before = tf.memory().numTensors;
    for (let i = 0; i < CASES.length; i++) {
      const got = await run(CASES[i]);
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want[i]).sort());
      for (const k of Object.keys(want[i])) {
        const e = relErr(got[k], want[i][k]);
        assert.ok(e < 1e-4, `${JSON.stringify(CASES[i])} ${k}: relative error ${e.toExponential(2)}`);
      }
    }
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  } finally {
    setPoisonTemporaries(false);
  }
});

test('stock mode on webgpu uses the composed form (the A/B switch removes the fused kernels)', async (t) => {
  if (!(await useWebgpu(t))) return;
  await tf.setBackend('webgpu');
  try {
    unregisterWebgpuKernels();
    assert.equal(fusedBatchNormActive(), false);
    const composed = await run(CASES[0]);
    registerWebgpuKernels();
    assert.equal(fusedBatchNormActive(), true);
    const fused = await run(CASES[0]);
    for (const k of Object.keys(composed)) assert.ok(relErr(fused[k], composed[k]) < 1e-4, k);
  } finally {
    registerWebgpuKernels();
  }
});

test('bad input to the fused kernels is named', async (t) => {
  if (!(await useWebgpu(t))) return;
  await tf.setBackend('webgpu');
  registerWebgpuKernels();
  assert.throws(
    () => tf.engine().runKernel('DinotwinsBatchNorm', { x: tf.zeros([4, 3]) }, { eps: 0, relu: false }),
    /eps must be a positive number, got 0/,
  );
  assert.throws(
    () => tf.engine().runKernel('DinotwinsBatchNorm', { x: tf.zeros([4, 3], 'int32') }, { eps: 1e-5, relu: false }),
    /float32 inputs only, got int32/,
  );
  assert.throws(
    () => tf.engine().runKernel('DinotwinsBatchNorm', { x: tf.zeros([5]) }, { eps: 1e-5, relu: false }),
    /rank >= 2, got shape \[5\]/,
  );
  assert.throws(() => batchNormTrain(tf.zeros([4, 3]), tf.ones([3]), undefined, false), /gamma and beta come together/);
  assert.throws(
    () => batchNormTrain(tf.zeros([4, 3]), undefined, undefined, false, undefined, 1, tf.zeros([4, 3])),
    /only part of the op under a ReLU/,
  );
  assert.throws(
    () => batchNormTrain(tf.zeros([4, 3]), undefined, undefined, true, undefined, 1, tf.zeros([4, 2])),
    /residual \[4,2\] does not match x \[4,3\]/,
  );
  assert.throws(
    () =>
      tf
        .engine()
        .runKernel(
          'DinotwinsBatchNorm',
          { x: tf.zeros([4, 3]), residual: tf.zeros([4, 3]) },
          { eps: 1e-5, relu: false },
        ),
    /only fused under a ReLU/,
  );
});

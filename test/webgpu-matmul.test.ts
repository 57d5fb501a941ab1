/**
 * Matrix products on WebGPU do not depend on the GPU's timing: the shapes for which tfjs would run
 * its split-K program (partial sums added with float atomics, so the order of workgroups changes
 * the result) run its small-output program instead (lib/kernels/webgpu/matmul.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { randn, relErr, useWebgpu } from './helpers';
import { registerWebgpuKernels, unregisterWebgpuKernels } from '../lib/kernels/webgpu';
import { matmulWouldSplitK } from '../lib/kernels/webgpu/matmul';

test('which products tfjs would run with its atomic split-K program', () => {
  // [2, 2048] x [2048, 256]: 8 tiles of 32x32 (the non-Intel threshold), 512 outputs, inner 2048.
  assert.equal(matmulWouldSplitK([2, 2048], [2048, 256], false, false, 8), true);
  assert.equal(matmulWouldSplitK([2, 2048], [256, 2048], false, true, 8), true, 'b transposed');
  assert.equal(matmulWouldSplitK([2048, 2], [2048, 256], true, false, 8), true, 'a transposed');
  assert.equal(matmulWouldSplitK([1, 2, 2048], [1, 2048, 256], false, false, 8), true, 'batch of one');
  assert.equal(matmulWouldSplitK([512, 2048], [2048, 2048], false, false, 8), false, 'many tiles');
  assert.equal(matmulWouldSplitK([2, 1999], [1999, 256], false, false, 8), false, 'inner below 2000');
  assert.equal(matmulWouldSplitK([3, 2, 2048], [3, 2048, 256], false, false, 8), false, 'batched');
  assert.equal(matmulWouldSplitK([2, 2048], [2048, 32], false, false, 8), false, '64 outputs: the reduce program');
  assert.equal(
    matmulWouldSplitK([8, 2048], [2048, 512], false, false, 8),
    true,
    'up to twice the threshold when a has <= 8 rows',
  );
  assert.equal(matmulWouldSplitK([16, 2048], [2048, 512], false, false, 8), false, '16 tiles, 16 rows');
});

/** Shader keys of the programs `f` runs. */
function programs(f: () => tf.Tensor): { keys: string[]; out: tf.Tensor } {
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...r: unknown[]) => unknown };
  const orig = be.runWebGPUProgram;
  const keys: string[] = [];
  be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...r: unknown[]) {
    keys.push(p.shaderKey);
    return orig.call(this, p, ...r);
  };
  try {
    return { keys, out: f() };
  } finally {
    be.runWebGPUProgram = orig;
  }
}

test('products that tfjs would split with atomics run without them, match cpu and repeat bit for bit', async (t) => {
  if (!(await useWebgpu(t))) return;
  const av = randn(2 * 2048, 11);
  const bv = randn(2048 * 256, 12);
  const biasv = randn(256, 13);
  await tf.setBackend('cpu');
  const want = tf.tidy(() =>
    tf.fused.matMul({
      a: tf.tensor2d(av, [2, 2048]),
      b: tf.tensor2d(bv, [2048, 256]),
      bias: tf.tensor1d(biasv),
      activation: 'relu',
    }),
  );
  const wantPlain = tf.tidy(() => tf.matMul(tf.tensor2d(av, [2, 2048]), tf.tensor2d(bv, [2048, 256])));
  const [ref, refPlain] = [(await want.data()) as Float32Array, (await wantPlain.data()) as Float32Array];
  tf.dispose([want, wantPlain]);
  await tf.setBackend('webgpu');
  const a = tf.tensor2d(av, [2, 2048]);
  const b = tf.tensor2d(bv, [2048, 256]);
  const bias = tf.tensor1d(biasv);
  const fused = (): tf.Tensor => tf.fused.matMul({ a, b, bias, activation: 'relu' });
  const plain = (): tf.Tensor => tf.matMul(a, b);
  try {
    // Stock tfjs: the split-K program (the check below would pass vacuously otherwise).
    unregisterWebgpuKernels();
    const stock = programs(plain);
    stock.out.dispose();
    assert.ok(
      stock.keys.some((k) => k.startsWith('matMulSplitK')),
      `stock runs split-K: ${stock.keys.join(' ')}`,
    );

    registerWebgpuKernels();
    for (const [name, f, r] of [
      ['matMul', plain, refPlain],
      ['fused matMul + bias + relu', fused, ref],
    ] as const) {
      const runs: Float32Array[] = [];
      for (let i = 0; i < 4; i++) {
        const { keys, out } = programs(f);
        assert.ok(!keys.some((k) => k.startsWith('matMulSplitK')), `${name}: no split-K program: ${keys.join(' ')}`);
        runs.push((await out.data()) as Float32Array);
        out.dispose();
      }
      assert.ok(relErr(r, runs[0]) < 1e-4, `${name} vs cpu: ${relErr(r, runs[0])}`);
      for (const run of runs.slice(1)) assert.deepEqual(run, runs[0], `${name}: the same bits every time`);
    }
    assert.equal(tf.env().getNumber('WEBGPU_MATMUL_PROGRAM_TYPE'), -1, 'the program flag is restored');
    // A flag the user set is left alone: forcing split-K still gives split-K.
    tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', 1);
    try {
      const forced = programs(plain);
      forced.out.dispose();
      assert.ok(
        forced.keys.some((k) => k.startsWith('matMulSplitK')),
        "the user's choice runs",
      );
    } finally {
      tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', -1);
    }
  } finally {
    registerWebgpuKernels();
    tf.dispose([a, b, bias]);
  }
});

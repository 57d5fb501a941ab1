/**
 * Adam and AdamW through the fused flat kernel on WebGPU (lib/kernels/webgpu/elementwise.ts
 * `adamFlat`, used by lib/train/optimizers.ts where registered) against the tfjs-op form on `cpu`
 * (which test/optimizers.test.ts checks against PyTorch), to 1e-4 relative (the clipping norm sums in
 * another order on the GPU): parameters and both moments after five
 * steps with gradient clipping, weight decay on weights only, a frozen parameter in the middle
 * steps, and a learning rate that changes every step. Needs a WebGPU adapter (lavapipe).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWebgpuKernels } from '../lib/kernels/webgpu';
import { ParamStore } from '../lib/nn/params';
import { Optimizer, optimizerConfig } from '../lib/train/optimizers';
import { OptimizerKind } from '../lib/config/config';
import { randn, relErr, useWebgpu } from './helpers';

/** Parameters and state after 5 steps on the active backend. */
async function run(kind: OptimizerKind): Promise<Map<string, Float32Array>> {
  const ps = new ParamStore('opt');
  ps.addValues('w', [40, 30], randn(1200, 1), 'weight');
  ps.addValues('b', [30], randn(30, 2), 'bias');
  ps.addValues('w2', [1500], randn(1500, 3), 'weight'); // > 1,000 elements: GPU-resident
  const opt = new Optimizer(optimizerConfig(kind, { clipGradNorm: 2 }));
  for (let s = 0; s < 5; s++) {
    const grads = new Map<string, tf.Tensor>([
      ['w', tf.tensor(randn(1200, 10 + s, 0.3), [40, 30])],
      ['b', tf.tensor(randn(30, 20 + s, 0.3), [30])],
      ['w2', tf.tensor(randn(1500, 30 + s, 0.3), [1500])],
    ]);
    const frozen = s === 2 || s === 3 ? new Set(['w']) : undefined;
    opt.apply(ps, grads, 0.01 * (s + 1), { frozen, weightDecay: 0.05 + 0.01 * s }).dispose();
    tf.dispose([...grads.values()]);
  }
  const out = new Map<string, Float32Array>();
  for (const n of ps.names()) out.set(n, (await ps.get(n).data()) as Float32Array);
  for (const [n, t] of opt.getState().tensors) out.set(n, (await t.data()) as Float32Array);
  opt.dispose();
  ps.dispose();
  return out;
}

for (const kind of ['adamw', 'adam'] as OptimizerKind[]) {
  test(`${kind}: the fused flat kernel on webgpu matches the tfjs-op form on cpu`, async (t) => {
    if (!(await useWebgpu(t))) return;
    await tf.setBackend('cpu');
    const want = await run(kind);
    await tf.setBackend('webgpu');
    registerWebgpuKernels();
    const before = tf.memory().numTensors;
    const got = await run(kind);
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [k, w] of want) {
      const e = relErr(got.get(k)!, w);
      assert.ok(e < 1e-4, `${kind} ${k}: relative error ${e.toExponential(2)}`);
    }
  });
}

/**
 * The fused WebGPU layer norm and GELU (lib/kernels/webgpu/layernorm.ts, elementwise.ts, used by
 * lib/nn/layers.ts) against tfjs ops on `cpu`: values and the gradients of x, gamma and beta for a
 * random upstream gradient, at ViT's 192 channels, a channel count that is not a multiple of the
 * 64 threads per row, one channel, and more rows than one dispatch has workgroups (65,535).
 * Temporaries start as NaN. Needs a WebGPU adapter (lavapipe: `eval "$(scripts/setup-lavapipe.sh)"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWebgpuKernels } from '../lib/kernels/webgpu';
import { setPoisonTemporaries } from '../lib/kernels/webgpu/program';
import { ParamStore } from '../lib/nn/params';
import { gelu, initLayerNorm, layerNorm } from '../lib/nn/layers';
import { randn, relErr, useWebgpu } from './helpers';

/** Layer norm + GELU output and gradients (x, gamma, beta) on the active backend. */
async function run(shape: number[]): Promise<Record<string, Float32Array>> {
  const C = shape[shape.length - 1];
  const n = shape.reduce((a, b) => a * b, 1);
  const ps = new ParamStore('ln');
  initLayerNorm(ps, 'ln', C);
  tf.tidy(() => {
    ps.get('ln.weight').assign(tf.tensor1d(randn(C, 3, 0.5, 1)));
    ps.get('ln.bias').assign(tf.tensor1d(randn(C, 4, 0.5)));
  });
  const x = tf.tensor(randn(n, 1, 2, 3), shape);
  const dy = tf.tensor(randn(n, 2), shape);
  const f = (xi: tf.Tensor): tf.Scalar => tf.sum(tf.mul(gelu(layerNorm(ps, 'ln', xi)), dy));
  const y = tf.tidy(() => gelu(layerNorm(ps, 'ln', x)));
  const dx = tf.grad(f)(x);
  const { value, grads } = tf.variableGrads(() => f(x), [ps.get('ln.weight'), ps.get('ln.bias')]);
  const out = {
    y: (await y.data()) as Float32Array,
    dx: (await dx.data()) as Float32Array,
    dgamma: (await grads[ps.get('ln.weight').name].data()) as Float32Array,
    dbeta: (await grads[ps.get('ln.bias').name].data()) as Float32Array,
  };
  tf.dispose([x, dy, y, dx, value, ...Object.values(grads)]);
  ps.dispose();
  return out;
}

const SHAPES = [
  [2, 65, 192],
  [7, 200],
  [5, 1],
  [70_000, 3],
];

test('fused layer norm + GELU on webgpu match tfjs ops on cpu (values and gradients)', async (t) => {
  if (!(await useWebgpu(t))) return;
  const want: Array<Record<string, Float32Array>> = [];
  await tf.setBackend('cpu');
  for (const s of SHAPES) want.push(await run(s));
  await tf.setBackend('webgpu');
  registerWebgpuKernels();
  setPoisonTemporaries(true);
  try {
    const before = tf.memory().numTensors;
    for (let i = 0; i < SHAPES.length; i++) {
      const got = await run(SHAPES[i]);
      for (const k of Object.keys(want[i])) {
        const e = relErr(got[k], want[i][k]);
        // One channel: x - mean is 0, y = beta exactly, and every gradient but dbeta is 0 on both sides.
        assert.ok(
          e < 1e-4 ||
            (SHAPES[i][1] === 1 &&
              Math.max(...want[i][k].map(Math.abs)) === 0 &&
              Math.max(...got[k].map(Math.abs)) === 0),
          `[${SHAPES[i]}] ${k}: relative error ${e.toExponential(2)}`,
        );
      }
    }
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  } finally {
    setPoisonTemporaries(false);
  }
});

test('fused GELU at large |x| and exactly 0 matches cpu', async (t) => {
  if (!(await useWebgpu(t))) return;
  const xs = Float32Array.from([-12, -6, -3, -1, -1e-3, 0, 1e-3, 1, 3, 6, 12]);
  await tf.setBackend('cpu');
  const wantY = (await gelu(tf.tensor1d(xs)).data()) as Float32Array;
  const wantG = (await tf
    .grad((x: tf.Tensor) => gelu(x))(tf.tensor1d(xs))
    .data()) as Float32Array;
  await tf.setBackend('webgpu');
  registerWebgpuKernels();
  const gotY = (await gelu(tf.tensor1d(xs)).data()) as Float32Array;
  const gotG = (await tf
    .grad((x: tf.Tensor) => gelu(x))(tf.tensor1d(xs))
    .data()) as Float32Array;
  for (let i = 0; i < xs.length; i++) {
    assert.ok(
      Math.abs(gotY[i] - wantY[i]) <= 1e-5 * Math.max(1, Math.abs(wantY[i])),
      `gelu(${xs[i]}): ${gotY[i]} vs ${wantY[i]}`,
    );
    assert.ok(
      Math.abs(gotG[i] - wantG[i]) <= 1e-5 * Math.max(1, Math.abs(wantG[i])),
      `gelu'(${xs[i]}): ${gotG[i]} vs ${wantG[i]}`,
    );
  }
});

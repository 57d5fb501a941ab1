/**
 * Winograd F(2x2, 3x3) convolutions (lib/kernels/webgpu/winograd.ts) against the `cpu` backend:
 * forward and input gradient on several shapes (odd sizes, odd channel counts, 'same', 'valid' and
 * numeric padding), every output element written (NaN-poisoned outputs and temporaries), the
 * batched GEMM with several tile variants, and a small conv net trained through the registered
 * kernels with `winograd: true` giving cpu's loss and gradients.
 *
 * Needs a WebGPU adapter (lavapipe: `eval "$(scripts/setup-lavapipe.sh)"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWebgpuKernels, unregisterWebgpuKernels } from '../lib/kernels/webgpu';
import { GemmOptions } from '../lib/kernels/webgpu/gemm';
import { WebgpuBackendLike, gpuFill, setPoisonTemporaries } from '../lib/kernels/webgpu/program';
import {
  winogradApplies,
  winogradConv,
  winogradFlops,
  winogradForward,
  winogradInputGrad,
} from '../lib/kernels/webgpu/winograd';
import { randn, relErr, useWebgpu } from './helpers';

const CASES: Array<{ x: [number, number, number, number]; cout: number; pad: 'same' | 'valid' | number }> = [
  { x: [2, 8, 8, 16], cout: 16, pad: 'same' },
  { x: [2, 7, 9, 5], cout: 6, pad: 'same' },
  { x: [1, 6, 5, 4], cout: 3, pad: 'valid' },
  { x: [2, 5, 5, 3], cout: 7, pad: 2 },
  { x: [3, 4, 4, 33], cout: 17, pad: 1 },
];

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

async function values(t: tf.Tensor | tf.TensorInfo): Promise<Float32Array> {
  const x = t instanceof tf.Tensor ? t : tf.engine().makeTensorFromTensorInfo(t);
  const v = (await x.data()) as Float32Array;
  x.dispose();
  return v;
}

test('Winograd forward and input gradient match cpu, write every element, with several GEMM tilings and vec4 loads', async (t) => {
  if (!(await useWebgpu(t))) return;
  const backend = tf.backend() as unknown as WebgpuBackendLike;
  const tilings: Array<Partial<GemmOptions>> = [
    {},
    { tm: 8, tn: 8, layout: 'blocked', prefetch: true },
    { tm: 4, tn: 8, layout: 'blocked' },
    { vec4: true },
    { tm: 8, tn: 8, layout: 'blocked', prefetch: true, vec4: true },
  ];
  setPoisonTemporaries(true);
  try {
    for (const [i, c] of CASES.entries()) {
      const f: [number, number, number, number] = [3, 3, c.x[3], c.cout];
      const info = tf.backend_util.computeConv2DInfo(c.x, f, 1, 1, c.pad);
      assert.ok(winogradApplies(info), `${JSON.stringify(c)} is a Winograd case`);
      const xv = randn(size(c.x), 100 + i);
      const wv = randn(size(f), 200 + i, 0.3);
      const dyv = randn(size(info.outShape), 300 + i);
      await tf.setBackend('cpu');
      const [wantY, wantDx] = await Promise.all([
        values(tf.conv2d(tf.tensor4d(xv, c.x), tf.tensor4d(wv, f), 1, c.pad)),
        values(
          tf.conv2dTranspose(
            tf.tensor4d(dyv, info.outShape as [number, number, number, number]),
            tf.tensor4d(wv, f),
            c.x,
            1,
            c.pad,
          ),
        ),
      ]);
      await tf.setBackend('webgpu');
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, f);
      const dy = tf.tensor4d(dyv, info.outShape as [number, number, number, number]);
      for (const opts of tilings) {
        const label = `${JSON.stringify(c)} ${JSON.stringify(opts)}`;
        const y = await values(
          winogradConv(backend, x, w, winogradForward(info), opts, gpuFill(backend, info.outShape, NaN)),
        );
        const dx = await values(
          winogradConv(backend, dy, w, winogradInputGrad(info), opts, gpuFill(backend, c.x, NaN)),
        );
        const ey = relErr(y, wantY);
        const edx = relErr(dx, wantDx);
        assert.ok(y.every(Number.isFinite) && ey < 1e-4, `${label} forward: rel err ${ey}`);
        assert.ok(dx.every(Number.isFinite) && edx < 1e-4, `${label} input grad: rel err ${edx}`);
      }
      tf.dispose([x, w, dy]);
    }
  } finally {
    setPoisonTemporaries(false);
  }
});

test('only 3x3 stride-1 convolutions take the Winograd path; its GEMM does 4/9 of the direct multiply-adds', () => {
  const info = (f: number, s: number, pad: 'same' | 'valid' | number = 'same') =>
    tf.backend_util.computeConv2DInfo([1, 8, 8, 4], [f, f, 4, 4], s, 1, pad);
  assert.ok(winogradApplies(info(3, 1)));
  assert.ok(!winogradApplies(info(3, 2)), 'stride 2');
  assert.ok(!winogradApplies(info(1, 1)), '1x1');
  assert.ok(!winogradApplies(info(5, 1)), '5x5');
  assert.ok(!winogradApplies(info(3, 1, 3)), 'padding 3');
  const fl = winogradFlops(
    winogradForward(tf.backend_util.computeConv2DInfo([256, 32, 32, 64], [3, 3, 64, 64], 1, 1, 'same')),
  );
  assert.equal(fl.gemm / fl.direct, 16 / 36);
});

test('a conv net trained through the registered kernels with winograd on gives the cpu loss and gradients', async (t) => {
  if (!(await useWebgpu(t))) return;
  const xs = randn(2 * 8 * 8 * 3, 1);
  const w1v = randn(3 * 3 * 3 * 8, 2, 0.3);
  const w2v = randn(3 * 3 * 8 * 8, 3, 0.3);
  const run = async (): Promise<Float32Array[]> => {
    const x = tf.tensor4d(xs, [2, 8, 8, 3]);
    const w1 = tf.variable(tf.tensor4d(w1v, [3, 3, 3, 8]));
    const w2 = tf.variable(tf.tensor4d(w2v, [3, 3, 8, 8]));
    const { value, grads } = tf.variableGrads(() => {
      const h = tf.relu(tf.conv2d(x, w1 as unknown as tf.Tensor4D, 1, 'same'));
      return tf.sum(tf.square(tf.conv2d(h, w2 as unknown as tf.Tensor4D, 1, 'same')));
    }, [w1, w2]);
    const out = [await values(value), await values(grads[w1.name]), await values(grads[w2.name])];
    tf.dispose([x, w1, w2]);
    return out;
  };
  await tf.setBackend('cpu');
  const want = await run();
  await tf.setBackend('webgpu');
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...r: unknown[]) => unknown };
  const orig = be.runWebGPUProgram;
  const keys: string[] = [];
  registerWebgpuKernels({ winograd: true });
  be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...r: unknown[]) {
    keys.push(p.shaderKey);
    return orig.call(this, p, ...r);
  };
  try {
    const got = await run();
    want.forEach((w, i) => assert.ok(relErr(got[i], w) < 1e-4, `output ${i}: rel err ${relErr(got[i], w)}`));
    assert.ok(
      keys.some((k) => k.startsWith('dtWinoV_')) && keys.some((k) => k.startsWith('dtGemm_wino_')),
      'the Winograd kernels ran',
    );
  } finally {
    be.runWebGPUProgram = orig;
    unregisterWebgpuKernels();
  }
});

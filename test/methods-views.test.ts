/**
 * Barlow Twins can run its two views as one forward pass with per-view batch-norm statistics
 * ('perView', lib/methods/viewPasses.ts; the method does so where batch norm is a fused kernel). That
 * must give what the reference's separate passes give: the same loss, every parameter gradient and
 * the running statistics, here on `cpu` with a tiny ResNet-18 and projector against an explicit
 * 'separate' computation, and on WebGPU (fused kernels, one pass) against `cpu`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig } from '../lib/config/config';
import { buildSslModel } from '../lib/methods';
import { PREFIX } from '../lib/methods/model';
import { backboneFeatures, headOverViews, perViewGrouping, ViewGrouping } from '../lib/methods/viewPasses';
import { backendCapabilities } from '../lib/kernels/capabilities';
import { barlowTwinsLoss } from '../lib/losses/index';
import { stepSchedule } from '../lib/methods/schedules';
import { relErr, useWebgpu } from './helpers';
import { registerWebgpuKernels } from '../lib/kernels/webgpu';
import { fusedBatchNormActive } from '../lib/nn/batchnorm';

const cfg = resolveConfig({
  method: 'barlow',
  backbone: { kind: 'resnet', depth: 18, width: 4 },
  batchSize: 6,
  epochs: 1,
  seed: 5,
  augment: { globalSize: 16 },
  projector: { hidden: 24, out: 24, layers: 3 },
});

async function run(grouping: ViewGrouping | 'method'): Promise<Map<string, Float32Array>> {
  const m = buildSslModel(cfg);
  const views = [0, 1].map((v) => tf.randomNormal([6, 16, 16, 3], 0, 1, 'float32', 40 + v)) as tf.Tensor4D[];
  const names = m.student.trainableNames();
  const { value, grads } = tf.variableGrads(
    () => {
      if (grouping === 'method') return m.step.loss(views, undefined, stepSchedule(cfg, 0, 10)).total;
      const ctx = { training: true, bnMomentum: cfg.bnMomentum };
      const feats = backboneFeatures(m.backbone, m.student, views, ctx, grouping);
      const [z1, z2] = tf.unstack(
        headOverViews(m.student, m.projector!, PREFIX.projector, feats, ctx, grouping),
      ) as tf.Tensor2D[];
      return barlowTwinsLoss(z1, z2, cfg.barlow!.lambda);
    },
    names.map((n) => m.student.get(n)),
  );
  const out = new Map<string, Float32Array>();
  out.set('loss', (await value.data()) as Float32Array);
  for (const n of names) out.set(`grad ${n}`, (await grads[m.student.get(n).name].data()) as Float32Array);
  for (const n of m.student.names())
    if (/running_(mean|var)$/.test(n)) out.set(n, (await m.student.get(n).data()) as Float32Array);
  tf.dispose([value, ...Object.values(grads), ...views]);
  m.dispose();
  return out;
}

test("Barlow Twins' one-pass per-view statistics equal separate passes (loss, gradients, running statistics)", async () => {
  await tf.setBackend('cpu');
  // The cpu backend has no fused batch norm and slow broadcasts: separate passes, expanded per-image values.
  assert.deepEqual(
    { ...backendCapabilities(), releaseCachedMemory: undefined },
    { groupedBatchNorm: false, fastBroadcast: false, releaseCachedMemory: undefined },
  );
  assert.equal(perViewGrouping(), 'separate');
  const separate = await run('separate');
  const perView = await run('perView');
  const method = await run('method');
  assert.ok(separate.size > 100, `compared ${separate.size} tensors`);
  for (const [name, want] of separate) {
    for (const [label, got] of [
      ['perView', perView],
      ['barlowStep', method],
    ] as const) {
      const g = got.get(name);
      assert.ok(g, `${label} lacks ${name}`);
      const e = relErr(g, want);
      assert.ok(e < 1e-4, `${label} ${name}: relative error ${e.toExponential(2)} vs separate passes`);
    }
  }
  // And 'joint' (one set of statistics over both views) is a different computation.
  const joint = await run('joint');
  assert.ok(relErr(joint.get('loss')!, separate.get('loss')!) > 1e-4, 'joint statistics change the loss');
});

test('on WebGPU the Barlow step runs one pass with fused per-view batch norm and matches cpu', async (t) => {
  if (!(await useWebgpu(t))) return;
  await tf.setBackend('cpu');
  const want = await run('separate');
  await tf.setBackend('webgpu');
  registerWebgpuKernels({ fusedOps: false });
  assert.equal(backendCapabilities().groupedBatchNorm, false, 'without fused ops, grouped batch norm is not cheap');
  assert.equal(perViewGrouping(), 'separate');
  registerWebgpuKernels();
  assert.ok(fusedBatchNormActive(), 'fused batch norm registered');
  assert.equal(backendCapabilities().groupedBatchNorm, true, 'the WebGPU kernels register cheap grouped batch norm');
  assert.equal(perViewGrouping(), 'perView', 'so the Barlow step asks for one pass');
  const got = await run('method');
  for (const [name, w] of want) {
    const e = relErr(got.get(name)!, w);
    // Forward values to 1e-4; gradients through a float32 conv net to 1e-3 (as test/models-backends.test.ts).
    const tol = name === 'loss' || /running/.test(name) ? 1e-4 : 1e-3;
    assert.ok(e < tol, `${name}: webgpu vs cpu relative error ${e.toExponential(2)}`);
  }
});

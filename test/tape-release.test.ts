/**
 * The backward pass's early release (lib/kernels/tapeRelease.ts): training steps of every method
 * and backbone give bit-identical losses and gradients with and without it; saved tensors and
 * intermediate gradients are already gone when the backward reaches the start of the graph (and
 * are not without it, so the probe can fail); a dy passed in by the caller survives; higher-order
 * gradients still work; nothing leaks.
 */
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  installTapeRelease,
  tapeReleaseActive,
  tapeReleaseCounts,
  uninstallTapeRelease,
} from '../lib/kernels/tapeRelease';
import { resolveConfig, ConfigLayer } from '../lib/config/config';
import { buildSslModel } from '../lib/methods';
import { makeTrainStep } from '../lib/train/trainStep';
import { Optimizer } from '../lib/train/optimizers';
import { stepSchedule } from '../lib/methods/schedules';
import { randn } from './helpers';

const CONFIGS: Array<[string, ConfigLayer]> = [
  [
    'barlow resnet18',
    {
      method: 'barlow',
      backbone: { kind: 'resnet', depth: 18, width: 4 },
      augment: { globalSize: 16 },
      projector: { hidden: 16, out: 16, layers: 3 },
    },
  ],
  [
    'dino-twins resnet18',
    {
      method: 'dino-twins',
      backbone: { kind: 'resnet', depth: 18, width: 4 },
      augment: { globalSize: 16, localSize: 8, nLocal: 2 },
      projector: { hidden: 16, out: 16, layers: 2 },
      dino: { head: { out: 32, hidden: 16, bottleneck: 8 }, freezeLastLayerEpochs: 0 },
    },
  ],
  [
    'barlow vit',
    {
      method: 'barlow',
      backbone: { kind: 'vit', preset: 'tiny4-seed' },
      augment: { globalSize: 16 },
      projector: { hidden: 16, out: 16, layers: 2 },
    },
  ],
];

/**
 * Two steps of the training step (lib/train/trainStep.ts) with plain SGD at lr 1, so every gradient
 * lands in the parameters unscaled: the losses, gradient norms, and every parameter, teacher and
 * center value after them, as arrays.
 */
async function stepValues(over: ConfigLayer): Promise<Map<string, Float32Array>> {
  const cfg = resolveConfig({
    batchSize: 4,
    epochs: 1,
    seed: 3,
    lr: 1,
    minLr: 1,
    warmupEpochs: 0,
    optimizer: { kind: 'sgd', momentum: 0 },
    ...over,
  } as never);
  const m = buildSslModel(cfg);
  const opt = new Optimizer(cfg.optimizer);
  const trainStep = makeTrainStep(m, opt);
  const views: tf.Tensor4D[] = [];
  const g = cfg.augment.globalSize;
  const l = cfg.augment.localSize ?? 0;
  for (let v = 0; v < 2; v++) views.push(tf.tensor4d(randn(4 * g * g * 3, 10 + v), [4, g, g, 3]));
  for (let v = 0; v < (cfg.augment.nLocal ?? 0); v++)
    views.push(tf.tensor4d(randn(4 * l * l * 3, 20 + v), [4, l, l, 3]));
  const out = new Map<string, Float32Array>();
  for (let step = 0; step < 2; step++) {
    const r = trainStep(views, stepSchedule(cfg, step, 10));
    out.set(`loss ${step}`, (await r.loss.data()) as Float32Array);
    out.set(`gradNorm ${step}`, (await r.gradNorm.data()) as Float32Array);
    tf.dispose([r.loss, r.gradNorm, ...Object.values(r.parts)]);
  }
  for (const n of m.student.names()) out.set(n, (await m.student.get(n).data()) as Float32Array);
  for (const n of m.teacher?.names() ?? []) out.set(`teacher ${n}`, (await m.teacher!.get(n).data()) as Float32Array);
  if (m.center) out.set('center', (await m.center.data()) as Float32Array);
  tf.dispose(views);
  opt.dispose();
  m.dispose();
  return out;
}

test('training steps give bit-identical losses, gradients and updated state with and without the early release', async () => {
  await tf.setBackend('cpu');
  try {
    for (const [label, over] of CONFIGS) {
      uninstallTapeRelease();
      const stock = await stepValues(over);
      installTapeRelease();
      const before = tapeReleaseCounts.saved + tapeReleaseCounts.gradients;
      const tensors = tf.memory().numTensors;
      const ours = await stepValues(over);
      assert.equal(tf.memory().numTensors, tensors, `${label}: no tensor leaked`);
      assert.ok(
        tapeReleaseCounts.saved + tapeReleaseCounts.gradients - before > 50,
        `${label}: tensors were released early`,
      );
      assert.equal(ours.size, stock.size);
      for (const [name, want] of stock)
        assert.deepEqual(Array.from(ours.get(name)!), Array.from(want), `${label}: ${name}`);
    }
  } finally {
    installTapeRelease();
  }
});

/**
 * x -> probe -> a chain of ops -> loss. The probe is a custom op whose gradient runs last in the
 * backward pass; it records whether the chain's saved tensors are disposed by then and how many
 * bytes are held.
 */
async function probeBackward(): Promise<{ savedDisposed: number; savedTotal: number; bytes: number }> {
  const engine = tf.engine() as unknown as { state: { activeTape: Array<{ saved?: tf.Tensor[] }> } };
  let seen = { savedDisposed: 0, savedTotal: 0, bytes: 0 };
  const probe = tf.customGrad(((x: tf.Tensor) => ({
    value: tf.clone(x),
    gradFunc: (dy: tf.Tensor) => {
      const saved = engine.state.activeTape.flatMap((n) => n.saved ?? []);
      seen = {
        savedDisposed: saved.filter((t) => t.isDisposed).length,
        savedTotal: saved.length,
        bytes: tf.memory().numBytes,
      };
      return tf.clone(dy);
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;
  const x = tf.variable(tf.tensor2d(randn(64 * 64, 7), [64, 64]));
  const { value, grads } = tf.variableGrads(() => {
    let h = probe(x);
    for (let i = 0; i < 6; i++) h = tf.tanh(tf.matMul(h, h));
    return tf.sum(tf.square(h));
  }, [x]);
  await grads[x.name].data();
  tf.dispose([value, ...Object.values(grads), x]);
  return seen;
}

test('saved tensors are gone before the backward pass ends, and stay until its end without the release', async () => {
  await tf.setBackend('cpu');
  try {
    uninstallTapeRelease();
    const stock = await probeBackward();
    installTapeRelease();
    const ours = await probeBackward();
    assert.ok(
      stock.savedTotal > 10 && stock.savedDisposed === 0,
      `stock keeps every saved tensor: ${JSON.stringify(stock)}`,
    );
    assert.ok(ours.savedDisposed >= ours.savedTotal - 1, `early release freed them: ${JSON.stringify(ours)}`);
    assert.ok(ours.bytes < stock.bytes / 2, `bytes held at the end of the backward: ${ours.bytes} vs ${stock.bytes}`);
  } finally {
    installTapeRelease();
  }
});

test('a dy passed by the caller survives; higher-order gradients still work', async () => {
  await tf.setBackend('cpu');
  installTapeRelease();
  assert.ok(tapeReleaseActive());
  const x = tf.tensor1d([0.5, -1, 2]);
  const dy = tf.tensor1d([1, 2, 3]);
  const [g] = tf.grads((a: tf.Tensor) => tf.mul(tf.exp(a), 2))([x], dy);
  assert.ok(!dy.isDisposed, "the caller's dy is not disposed");
  assert.deepEqual(
    Array.from(await g.data()).map((v) => v.toFixed(4)),
    [0.5, -1, 2].map((v, i) => (2 * Math.exp(v) * (i + 1)).toFixed(4)),
  );
  // d2/dx2 of x^3 = 6x: the inner backward runs while the outer tape is recording.
  const d2 = tf.grad(tf.grad((a: tf.Tensor) => tf.pow(a, 3)));
  assert.deepEqual(Array.from(await d2(x).data()), [3, -6, 12]);
  tf.dispose([x, dy, g]);
});

test('the release is on in a fresh process that only imported lib (before any gradient has run)', () => {
  // This is how users and notebooks get it: installed when lib loads. tfjs creates the engine's
  // tape only when the first gradient starts, so a check on the tape at load time once turned the
  // release off everywhere but in tests that re-install it later.
  const root = join(__dirname, '..');
  const code =
    "const m = await import('./lib/kernels/tapeRelease.ts'); await import('./lib/index.ts');" +
    " const f = m.tapeReleaseActive ?? m.default.tapeReleaseActive; console.log('active=' + f());";
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /active=true/, `stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /backward pass keeps its memory/);
});

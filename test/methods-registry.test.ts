/**
 * A method is one file and one registry line (lib/methods/registry.ts). A toy method defined in this
 * file (its own config section, row of defaults, views, budget recipe and step: the mean squared
 * difference between the two views' normalised features) is registered and trains two steps
 * through the normal trainer, with nothing else in lib/ knowing it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ConfigLayer, Method, resolveConfig } from '../lib/config/config';
import { BUDGETS, experimentConfig } from '../lib/config/budget';
import { ConfigSection, MethodDefinition, sectionOf } from '../lib/methods/method';
import { METHODS, registerMethod, registeredMethods, viewsForMethod } from '../lib/methods/registry';
import { backboneFeatures } from '../lib/methods/viewPasses';
import { augmentViewOptions, barlowViews } from '../lib/augment/presets';
import { l2Normalize } from '../lib/nn/layers';
import { check, nonNeg } from '../lib/util/check';
import { pretrain } from '../lib/train/trainer';
import { generateFixtureSplit } from '../lib/data/index';
import { TINY_RUN } from './helpers';

interface MsvConfig {
  /** Weight of the loss. */
  weight: number;
}

const MSV_SECTION: ConfigSection<MsvConfig> = {
  key: 'msv',
  title: 'mean-squared-views term',
  defaults: { weight: 1 },
  validate: (v) => check(nonNeg(v.weight), `msv.weight must be a finite number >= 0, got ${String(v.weight)}`),
};

const msv: MethodDefinition = {
  name: 'msv',
  sections: [MSV_SECTION],
  defaults: { lr: 0.01 },
  augment: { read: ['globalSize', 'jitterStrength', 'blur'], never: 'the toy trains on two global views' },
  views: (a) => barlowViews({ size: a.globalSize, ...augmentViewOptions(a) }),
  recipe: { smoke: { epochs: 1 } },
  build(cfg, base) {
    const { weight } = sectionOf<MsvConfig>(cfg, 'msv');
    return {
      step: {
        loss(views) {
          const ctx = { training: true, bnMomentum: cfg.bnMomentum };
          const [f1, f2] = backboneFeatures(base.backbone, base.student, views, ctx, 'separate'); // 2 x [B, F]
          const total = tf.mul(weight, tf.mean(tf.squaredDifference(l2Normalize(f1), l2Normalize(f2)))) as tf.Scalar;
          return { total, parts: { msv: total } };
        },
      },
    };
  },
};

const toy = (layer: Record<string, unknown>) =>
  ({ ...layer, method: 'msv' as Method }) as ConfigLayer & { method: Method };

test('a method registered from outside lib/ resolves, trains two steps through the trainer, and leaves again', async (t) => {
  await tf.setBackend('cpu');
  const unregister = registerMethod(msv);
  t.after(unregister);
  assert.deepEqual(
    registeredMethods().map((m) => m.name),
    [...METHODS, 'msv'],
  );

  // Its section and row of defaults; nothing of the other methods' sections.
  const cfg = resolveConfig(toy({ msv: { weight: 0.5 }, epochs: 1, batchSize: 8 }), { budget: TINY_RUN });
  assert.deepEqual((cfg as unknown as { msv: MsvConfig }).msv, { weight: 0.5 });
  assert.equal(cfg.lr, 0.01);
  assert.deepEqual(Object.keys(cfg.augment).sort(), ['blur', 'globalSize', 'jitterStrength']);
  assert.ok(
    cfg.dino === undefined && cfg.projector === undefined && cfg.barlow === undefined,
    "the budget layer's DINO and projector keys are dropped",
  );
  assert.throws(
    () => resolveConfig(toy({ dino: { studentTemp: 0.2 } })),
    /"dino.studentTemp" has no effect in this run: method "msv" has no DINO part/,
  );
  assert.throws(
    () => resolveConfig(toy({ augment: { nLocal: 2 } })),
    /"augment.nLocal" has no effect in this run: the toy trains on two global views/,
  );
  assert.throws(
    () => resolveConfig({ method: 'barlow', msv: { weight: 2 } } as never),
    /method "barlow" has no mean-squared-views term; it belongs to method "msv"/,
  );
  assert.throws(() => resolveConfig(toy({ msv: { weight: -1 } })), /msv.weight must be a finite number >= 0, got -1/);
  // Its recipe for the smoke budget applies after the budget's shared layer.
  assert.equal(experimentConfig('msv' as Method, BUDGETS.smoke).epochs, 1);
  assert.equal(viewsForMethod('msv', cfg.augment).views.length, 2);

  // Two steps through the normal trainer: 20 images at batch 8 (the last 4 of the epoch are left out, as always).
  const data = generateFixtureSplit(20, 3);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-toy-'));
  const before = tf.memory().numTensors;
  const run = await pretrain({ config: cfg, data, runDir });
  run.model.dispose();
  assert.equal(tf.memory().numTensors, before, 'nothing leaks');
  assert.equal(run.record.status, 'done');
  assert.equal(run.record.step, 2);
  assert.deepEqual(
    run.record.steps.map((s) => s.step),
    [0, 1],
  );
  for (const s of run.record.steps)
    assert.ok(Number.isFinite(s.loss) && s.loss > 0 && s.msv === s.loss, JSON.stringify(s));
  assert.equal(run.record.method, 'msv');

  // A section key is one knob: another method may share the toy's section only by using the same object.
  assert.throws(
    () => registerMethod({ ...msv, name: 'msv2', sections: [{ ...MSV_SECTION }] }),
    (e: unknown) => e instanceof ConfigError && /config section "msv" is another one/.test((e as Error).message),
  );
  unregister();
  assert.throws(() => resolveConfig(toy({})), /method "msv" is not one of barlow, dino, dino-twins/);
});

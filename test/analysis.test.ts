import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig } from '../lib/config/config';
import { buildSslModel } from '../lib/methods/model';
import { crossCorrelationMatrix, dinoDistributions } from '../lib/eval/analysis';
import { generateFixtureSplit } from '../lib/data/index';

test('model analyses leak no tensors, also with local views in the augmentation (DINO-Twins)', async () => {
  await tf.setBackend('cpu');
  const data = generateFixtureSplit(20, 1);
  const cfg = resolveConfig({
    method: 'dino-twins',
    backbone: { kind: 'resnet', depth: 18, width: 2 },
    augment: { globalSize: 16, localSize: 8, nLocal: 2 },
    projector: { hidden: 16, out: 16, layers: 2 },
    dino: { head: { out: 32, hidden: 16, bottleneck: 8 } },
  });
  const m = buildSslModel(cfg);
  const before = tf.memory().numTensors;
  const cc = await crossCorrelationMatrix(m, data.images, 8);
  assert.equal(cc.dim, 16);
  assert.equal(cc.matrix.length, 256);
  const d = await dinoDistributions(m, data.images, 8, { teacherTemp: 0.04, studentTemp: 0.1 });
  assert.equal(d.k, 32);
  assert.ok(
    Math.abs(d.teacherSorted.reduce((a, b) => a + b, 0) - 1) < 1e-4,
    'mean sorted teacher probabilities sum to 1',
  );
  assert.ok(d.prototypesUsed >= 1 && d.prototypesUsed <= 32);
  assert.equal(tf.memory().numTensors, before);
  m.dispose();
});

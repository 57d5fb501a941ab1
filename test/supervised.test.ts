import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { trainSupervised } from '../lib/eval/supervised';
import { buildBackbone } from '../lib/models/index';
import { generateFixtureSplit } from '../lib/data/index';

test('the supervised baseline trains, reports per-epoch loss and accuracy, and leaks no tensors', async () => {
  await tf.setBackend('cpu');
  const data = generateFixtureSplit(20, 2);
  const before = tf.memory().numTensors;
  const r = await trainSupervised(buildBackbone({ kind: 'resnet', depth: 18, width: 2 }), data, {
    epochs: 2,
    batchSize: 10,
  });
  assert.equal(r.history.length, 2);
  for (const h of r.history) {
    assert.ok(Number.isFinite(h.loss) && h.loss > 0);
    assert.ok(h.trainTop1 >= 0 && h.trainTop1 <= 100);
  }
  r.params.dispose();
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(
    trainSupervised(buildBackbone({ kind: 'resnet', depth: 18, width: 2 }), data, { batchSize: 64 }),
    /batchSize 64 exceeds the 20 labelled images/,
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { knnAccuracy, knnPredict, KNN_DEFAULTS } from '../lib/eval/knn';
import { Rng } from '../lib/util/rng';
import { loadRefs } from './reference/refs';

const K = loadRefs().knn;

test('knnPredict matches DINO eval_knn knn_classifier (weighted top-k vote), for any chunk size', async () => {
  await tf.setBackend('cpu');
  assert.deepEqual({ ...KNN_DEFAULTS }, { k: 200, temperature: 0.1, chunkSize: 256 });
  assert.ok(Object.isFrozen(KNN_DEFAULTS));
  const train = tf.tensor2d(K.train);
  const testF = tf.tensor2d(K.test);
  const before = tf.memory().numTensors;
  const opts = { k: K.k, temperature: K.temperature, numClasses: K.num_classes };
  for (const chunkSize of [256, 5, 1]) {
    assert.deepEqual(
      await knnPredict(train, K.train_labels, testF, { ...opts, chunkSize }),
      K.pred,
      `chunk ${chunkSize}`,
    );
  }
  assert.deepEqual(
    await knnPredict(train, Int32Array.from(K.train_labels), testF, { ...opts, k: 1 }),
    K.pred_k1,
    'k = 1',
  );
  const acc = await knnAccuracy(train, K.train_labels, testF, K.test_labels, opts);
  assert.equal(acc, K.accuracy);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  tf.dispose([train, testF]);
});

test('knnPredict: scale-invariant features, nearest copy wins at k = 1, tiny temperature stays finite', async () => {
  await tf.setBackend('cpu');
  const rng = new Rng(7);
  const n = 50;
  const d = 6;
  const vals = Array.from({ length: n * d }, () => rng.normal());
  const labels = Array.from({ length: n }, (_, i) => (i * 7) % 5);
  const train = tf.tensor2d(vals, [n, d]);
  const before = tf.memory().numTensors;
  // Each train row, rescaled, is its own nearest neighbour (cosine 1).
  const scaled = tf.tidy(() => tf.mul(train, 3.5)) as tf.Tensor2D;
  assert.deepEqual(await knnPredict(train, labels, scaled, { k: 1, numClasses: 5 }), labels);
  // T = 1e-3 makes exp(sim/T) overflow float32 without the shift by the best similarity.
  assert.deepEqual(await knnPredict(train, labels, scaled, { k: 10, temperature: 1e-3, numClasses: 5 }), labels);
  scaled.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  train.dispose();
});

test('knnPredict errors name the bad input', async () => {
  const train = tf.zeros([4, 3]) as tf.Tensor2D;
  const testF = tf.zeros([2, 3]) as tf.Tensor2D;
  await assert.rejects(
    knnPredict(train, [0, 1, 0, 1], testF, { k: 5, numClasses: 2 }),
    /k must be an integer in \[1, 4\].*got 5/,
  );
  await assert.rejects(knnPredict(train, [0, 1, 0], testF, { k: 1, numClasses: 2 }), /3 train labels for 4 train rows/);
  await assert.rejects(
    knnPredict(train, [0, 1, 2, 1], testF, { k: 1, numClasses: 2 }),
    /train label 2 is 2, expected an integer in \[0, 2\)/,
  );
  await assert.rejects(
    knnPredict(train, [0, 1, 0, 1], tf.zeros([2, 4]) as tf.Tensor2D, { k: 1, numClasses: 2 }),
    /feature dims differ/,
  );
  await assert.rejects(knnPredict(train, [0, 1, 0, 1], testF, { k: 1, numClasses: 2, temperature: 0 }), /temperature/);
  await assert.rejects(
    knnAccuracy(train, [0, 1, 0, 1], testF, [0], { k: 1, numClasses: 2 }),
    /1 test labels for 2 test rows/,
  );
  tf.dispose([train, testF]);
});

test(
  'knnPredict on 10k x 10k x 128 (the size of a CIFAR-10 monitor) fits a time budget on cpu',
  { skip: process.env.KNN_BENCH !== '1' },
  async () => {
    await tf.setBackend('cpu');
    const n = 10000;
    const d = 128;
    const train = tf.randomNormal([n, d], 0, 1, 'float32', 1) as tf.Tensor2D;
    const testF = tf.randomNormal([n, d], 0, 1, 'float32', 2) as tf.Tensor2D;
    const labels = Array.from({ length: n }, (_, i) => i % 10);
    const t0 = Date.now();
    const pred = await knnPredict(train, labels, testF, { numClasses: 10 });
    const ms = Date.now() - t0;
    console.log(`knn 10k x 10k x ${d}, k 200: ${ms} ms on cpu`);
    assert.equal(pred.length, n);
    tf.dispose([train, testF]);
  },
);

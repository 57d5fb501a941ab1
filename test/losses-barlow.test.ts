import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { barlowLossFromParts, barlowPairMean, barlowTwinsLoss, crossCorrelationParts } from '../lib/losses';
import { assertClose, flat, loadRefs } from './reference/refs';

const R = loadRefs();
const t2 = (x: number[][]): tf.Tensor2D => tf.tensor2d(x);

test('the cross-correlation matrix and barlowTwinsLoss match facebookresearch/barlowtwins (float64 torch)', async () => {
  await tf.setBackend('cpu');
  const b = R.barlow;
  const before = tf.memory().numTensors;
  const z1 = t2(b.z1);
  const z2 = t2(b.z2);
  const { c, diag } = crossCorrelationParts(z1, z2);
  diag.dispose();
  assert.deepEqual(c.shape, [6, 6]);
  assertClose(await c.data(), b.cc, 1e-4, 'cc', 1e-3);
  const loss = barlowTwinsLoss(z1, z2, b.lambda_);
  assertClose((await loss.data())[0], b.loss, 1e-4, 'loss');
  const big = barlowTwinsLoss(z1, z2, 0.5);
  assertClose((await big.data())[0], b.loss_lambda_big, 1e-4, 'loss lambda 0.5');
  // Gradients: entries are O(1e-1); float32 standardisation over 8 rows loses a little, so the floor is 1e-4 absolute.
  const [g1, g2] = tf.grads((a: tf.Tensor, bb: tf.Tensor) =>
    barlowTwinsLoss(a as tf.Tensor2D, bb as tf.Tensor2D, b.lambda_),
  )([z1, z2]);
  const scale = Math.max(...flat(b.grad_z1).map(Math.abs));
  assertClose(await g1.data(), b.grad_z1, 1e-4, 'grad z1', scale);
  assertClose(await g2.data(), b.grad_z2, 1e-4, 'grad z2', scale);
  tf.dispose([z1, z2, c, loss, big, g1, g2]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('barlowPairMean matches the mean over ordered view pairs, with gradients', async () => {
  await tf.setBackend('cpu');
  const r = R.barlow_pairs;
  const before = tf.memory().numTensors;
  const p = tf.tensor3d(r.projections);
  const loss = barlowPairMean(p, r.lambda_);
  assertClose((await loss.data())[0], r.loss, 1e-4, 'pair mean');
  const g = tf.grad((x: tf.Tensor) => barlowPairMean(x as tf.Tensor3D, r.lambda_))(p);
  assertClose(await g.data(), r.grad, 1e-4, 'pair mean grad', Math.max(...flat(r.grad).map(Math.abs)));
  // Two views: the mean of L(p0, p1) and L(p1, p0), which are equal.
  const two = tf.slice(p, [0, 0, 0], [2, -1, -1]);
  const [a, b] = tf.unstack(two) as tf.Tensor2D[];
  const l2 = barlowPairMean(two, 0.005);
  const lab = barlowTwinsLoss(a, b, 0.005);
  assertClose((await l2.data())[0], (await lab.data())[0], 1e-6, 'two views');
  tf.dispose([p, loss, g, two, a, b, l2, lab]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('Barlow Twins properties: affine invariance per feature, symmetry, zero at perfect decorrelation, lambda = 0', async () => {
  await tf.setBackend('cpu');
  const b = R.barlow;
  const before = tf.memory().numTensors;
  const v = tf.tidy(() => {
    const z1 = t2(b.z1);
    const z2 = t2(b.z2);
    const base = barlowTwinsLoss(z1, z2, b.lambda_);
    // Positive per-feature scale and arbitrary shift: standardisation removes both (up to the 1e-5 variance eps).
    const a1 = tf.tensor1d([0.5, 1, 2, 3, 0.7, 1.5]);
    const b1 = tf.tensor1d([5, -3, 0, 1, 10, -7]);
    const affine = barlowTwinsLoss(
      tf.add(tf.mul(z1, a1), b1) as tf.Tensor2D,
      tf.add(tf.mul(z2, tf.reverse(a1)), 2) as tf.Tensor2D,
      b.lambda_,
    );
    // A negative scale flips the sign of that feature's correlations: the loss changes.
    const flipped = barlowTwinsLoss(tf.mul(z1, tf.tensor1d([-1, 1, 1, 1, 1, 1])) as tf.Tensor2D, z2, b.lambda_);
    const swapped = barlowTwinsLoss(z2, z1, b.lambda_);
    // Orthogonal, standardised columns (a 4 x 4 Hadamard matrix without its constant column): C = I/(1 + 1e-5).
    const h = t2([
      [1, 1, 1],
      [1, -1, -1],
      [-1, 1, -1],
      [-1, -1, 1],
    ]);
    const perfect = barlowTwinsLoss(h, h, 0.0051);
    // lambda = 0: only the diagonal, Σ(1 − corrᵢ)².
    const { c } = crossCorrelationParts(z1, z2);
    const diagOnly = tf.sum(tf.square(tf.sub(1, tf.sum(tf.mul(c, tf.eye(6)), 1))));
    const l0 = barlowTwinsLoss(z1, z2, 0);
    return tf.stack([base, affine, flipped, swapped, perfect, diagOnly, l0]).dataSync();
  });
  const [base, affine, flipped, swapped, perfect, diagOnly, l0] = Array.from(v);
  assert.ok(Math.abs(affine - base) <= 1e-4 * base, `affine rescaling changed the loss: ${base} -> ${affine}`);
  assert.ok(Math.abs(flipped - base) > 1e-2 * base, `sign flip should change the loss: ${base} vs ${flipped}`);
  assert.ok(Math.abs(swapped - base) <= 1e-5 * base, `L(z1, z2) = L(z2, z1): ${base} vs ${swapped}`);
  assert.ok(perfect >= 0 && perfect < 1e-8, `perfectly decorrelated identical views give ~0, got ${perfect}`);
  assert.ok(Math.abs(l0 - diagOnly) <= 1e-5 * diagOnly, `lambda 0: ${l0} vs ${diagOnly}`);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('Barlow Twins errors name the bad input', () => {
  const a = tf.zeros([4, 3]) as tf.Tensor2D;
  const b = tf.zeros([4, 2]) as tf.Tensor2D;
  const one = tf.zeros([1, 3]) as tf.Tensor2D;
  assert.throws(() => crossCorrelationParts(a, b), /same shape.*\[4,3\].*\[4,2\]/);
  assert.throws(() => barlowTwinsLoss(one, one, 0.005), /at least 2 rows.*N = 1/);
  assert.throws(() => barlowTwinsLoss(a, a, -1), /lambda/);
  assert.throws(() => barlowTwinsLoss(tf.zeros([2, 2, 2]) as unknown as tf.Tensor2D, a, 0.005), /\[N, D\]/);
  assert.throws(() => barlowPairMean(tf.zeros([1, 4, 3]) as tf.Tensor3D, 0.005), /at least 2 views, got 1/);
  assert.throws(() => barlowPairMean(a as unknown as tf.Tensor3D, 0.005), /\[views, B, D\]/);
  tf.dispose([a, b, one]);
});

test('crossCorrelationParts: C and its diagonal from the views; the loss from the parts equals barlowTwinsLoss', async () => {
  await tf.setBackend('cpu');
  const b = R.barlow;
  const z1 = t2(b.z1);
  const z2 = t2(b.z2);
  const { c, diag } = crossCorrelationParts(z1, z2);
  assertClose(await c.data(), b.cc, 1e-4, 'cc', 1e-3);
  const cc = b.cc as number[][];
  assertClose(
    await diag.data(),
    cc.map((row, i) => row[i]),
    1e-4,
    'diag',
    1e-3,
  );
  const l1 = barlowLossFromParts(c, diag, b.lambda_);
  assertClose((await l1.data())[0], b.loss, 1e-4, 'loss from parts');
  assert.throws(
    () => barlowLossFromParts(c, tf.zeros([5]) as tf.Tensor1D, b.lambda_),
    /expected C \[D, D\] and its diagonal \[D\]/,
  );
  tf.dispose([z1, z2, c, diag, l1]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { dinoLoss, dinoTwinsLoss, updateCenter } from '../lib/losses';
import { assertClose, flat, loadRefs } from './reference/refs';

const R = loadRefs();
const d = R.dino;
const temps = { studentTemp: d.student_temp as number, teacherTemp: d.teacher_temp as number };

test('dinoLoss matches facebookresearch/dino DINOLoss (2 global + 2 local views), with the student gradient', async () => {
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  const s = tf.tensor3d(d.student);
  const t = tf.tensor3d(d.teacher);
  const c = tf.tensor1d(d.center);
  const loss = dinoLoss(s, t, c, temps);
  // Logits / 0.04 are O(100): float32 log-softmax keeps ~1e-6 relative, well inside 1e-4.
  assertClose((await loss.data())[0], d.loss, 1e-4, 'dino loss');
  const g = tf.grad((x: tf.Tensor) => dinoLoss(x as tf.Tensor3D, t, c, temps))(s);
  assertClose(await g.data(), d.grad_student, 1e-4, 'grad student', Math.max(...flat(d.grad_student).map(Math.abs)));
  // No gradient reaches the teacher (or the center).
  const [gt, gc] = tf.grads((tt: tf.Tensor, cc: tf.Tensor) => dinoLoss(s, tt as tf.Tensor3D, cc as tf.Tensor1D, temps))(
    [t, c],
  );
  assert.ok(
    Array.from(await gt.data()).every((x) => x === 0),
    'teacher gradient must be 0',
  );
  assert.ok(
    Array.from(await gc.data()).every((x) => x === 0),
    'center gradient must be 0',
  );
  tf.dispose([s, t, c, loss, g, gt, gc]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('dinoLoss properties: identical student and teacher views give the teacher entropy; pairs j = i are excluded', async () => {
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  const v = tf.tidy(() => {
    const t = tf.tensor3d(d.teacher); // [2, B, K]
    const t0 = tf.slice(t, [0, 0, 0], [1, -1, -1]);
    // Every student view equals teacher view 0, same temperature, zero center: CE(p, p) = H(p) for every pair.
    const same = tf.concat([t0, t0, t0], 0) as tf.Tensor3D;
    const teacherSame = tf.concat([t0, t0], 0) as tf.Tensor3D;
    const zero = tf.zeros([t.shape[2]]) as tf.Tensor1D;
    const ident = dinoLoss(same, teacherSame, zero, { studentTemp: 0.1, teacherTemp: 0.1 });
    const logP = tf.logSoftmax(tf.div(t0, 0.1));
    const entropy = tf.mean(tf.neg(tf.sum(tf.mul(tf.exp(logP), logP), -1)));
    // With 2 views, only (teacher 0, student 1) and (teacher 1, student 0) count: swapping the student's global views
    // to equal their own teacher view must change the loss only through those cross pairs.
    const s = tf.tensor3d(d.student).slice([0, 0, 0], [2, -1, -1]) as tf.Tensor3D;
    const lossA = dinoLoss(s, t, zero, temps);
    const sSwap = tf.reverse(s, 0) as tf.Tensor3D;
    const tSwap = tf.reverse(t, 0) as tf.Tensor3D;
    const lossB = dinoLoss(sSwap, tSwap, zero, temps);
    // A manual two-pair cross-entropy.
    const ce = (ti: number, sj: number) => {
      const q = tf.softmax(tf.div(tf.squeeze(tf.slice(t, [ti, 0, 0], [1, -1, -1]), [0]), temps.teacherTemp));
      const lp = tf.logSoftmax(tf.div(tf.squeeze(tf.slice(s, [sj, 0, 0], [1, -1, -1]), [0]), temps.studentTemp));
      return tf.mean(tf.neg(tf.sum(tf.mul(q, lp), -1)));
    };
    const manual = tf.div(tf.add(ce(0, 1), ce(1, 0)), 2);
    return tf.stack([ident, entropy, lossA, lossB, manual]).dataSync();
  });
  const [ident, entropy, lossA, lossB, manual] = Array.from(v);
  assertClose(ident, entropy, 1e-5, 'identical views give the entropy');
  assertClose(lossA, manual, 1e-5, 'two views: mean of the 2 cross pairs');
  assertClose(lossB, lossA, 1e-5, 'swapping both view orders leaves the loss unchanged');
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('updateCenter matches DINO update_center and leaks nothing', async () => {
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  const t = tf.tensor3d(d.teacher);
  const c = tf.tensor1d(d.center);
  const nc = updateCenter(c, t, d.center_momentum);
  assert.deepEqual(nc.shape, [d.center.length]);
  assertClose(await nc.data(), d.new_center, 1e-5, 'center', 1e-2);
  // Momentum 1 keeps the center; momentum 0 is the batch mean.
  const keep = updateCenter(c, t, 1);
  assertClose(await keep.data(), d.center, 1e-6, 'momentum 1');
  const mean = updateCenter(c, t, 0);
  const m = tf.tidy(() => tf.mean(tf.reshape(t, [-1, d.center.length]), 0));
  assertClose(await mean.data(), Array.from(await m.data()), 1e-6, 'momentum 0');
  tf.dispose([t, c, nc, keep, mean, m]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  // In place on a variable, as the training loop does it.
  const cv = tf.variable(tf.zeros([d.center.length]));
  const tt = tf.tensor3d(d.teacher);
  const mid = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) tf.tidy(() => cv.assign(updateCenter(cv as unknown as tf.Tensor1D, tt, 0.9)));
  assert.equal(tf.memory().numTensors, mid, 'assigning the update in a loop leaks nothing');
  tf.dispose([cv, tt]);
});

test("dinoTwinsLoss = dino + beta * barlowPairMean (the original project's lambda and beta)", async () => {
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  const s = tf.tensor3d(d.student);
  const t = tf.tensor3d(d.teacher);
  const c = tf.tensor1d(d.center);
  const p = tf.tensor3d(d.projections);
  const twins = { ...temps, lambda: d.twins_lambda as number, beta: d.twins_beta as number };
  const out = dinoTwinsLoss(s, t, c, p, twins);
  assertClose((await out.dino.data())[0], d.loss, 1e-4, 'dino term');
  assertClose((await out.barlow.data())[0], d.twins_barlow, 1e-4, 'barlow term');
  assertClose((await out.total.data())[0], d.twins_total, 1e-4, 'total');
  const g = tf.grad((x: tf.Tensor) => dinoTwinsLoss(s, t, c, x as tf.Tensor3D, { ...twins, beta: 0 }).total)(p);
  assert.ok(
    Array.from(await g.data()).every((x) => x === 0),
    'beta 0: no gradient reaches the projections',
  );
  tf.dispose([s, t, c, p, out.total, out.dino, out.barlow, g]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('DINO errors name the bad input', () => {
  const s = tf.zeros([4, 3, 5]) as tf.Tensor3D;
  const t = tf.zeros([2, 3, 5]) as tf.Tensor3D;
  const c = tf.zeros([5]) as tf.Tensor1D;
  assert.throws(() => dinoLoss(s, tf.zeros([3, 3, 5]) as tf.Tensor3D, c, temps), /teacher \[2, B, K\].*\[3,3,5\]/);
  assert.throws(() => dinoLoss(s, tf.zeros([2, 4, 5]) as tf.Tensor3D, c, temps), /does not match/);
  assert.throws(() => dinoLoss(s, t, tf.zeros([4]) as tf.Tensor1D, temps), /center \[5\]/);
  assert.throws(
    () => dinoLoss(s.slice([0, 0, 0], [1, -1, -1]) as tf.Tensor3D, t, c, temps),
    /at least the 2 global views/,
  );
  assert.throws(() => dinoLoss(s, t, c, { studentTemp: 0, teacherTemp: 0.04 }), /studentTemp/);
  assert.throws(() => dinoLoss(s, t, c, { studentTemp: 0.1, teacherTemp: NaN }), /teacherTemp/);
  assert.throws(() => updateCenter(c, t, 1.5), /momentum/);
  assert.throws(() => updateCenter(tf.zeros([4]) as tf.Tensor1D, t, 0.9), /center \[5\]/);
  assert.throws(
    () => dinoTwinsLoss(s, t, c, tf.zeros([2, 3, 4]) as tf.Tensor3D, { ...temps, lambda: 0.005, beta: 0.0025 }),
    /projections \[4, B, D\]/,
  );
  assert.throws(
    () => dinoTwinsLoss(s, t, c, tf.zeros([4, 3, 4]) as tf.Tensor3D, { ...temps, lambda: 0.005, beta: -1 }),
    /beta must be a finite number >= 0, got -1/,
  );
});

/** The losses, their gradients and the kNN vote on the wasm backend (the CPU training backend) against the torch references. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { barlowPairMean, barlowTwinsLoss, dinoLoss, updateCenter } from '../lib/losses';
import { knnPredict } from '../lib/eval/knn';
import { assertClose, flat, loadRefs } from './reference/refs';

const R = loadRefs();
const maxAbs = (x: unknown): number => Math.max(...flat(x).map(Math.abs));

test('wasm backend: Barlow Twins, DINO, center and kNN match the float64 references', async () => {
  require('@tensorflow/tfjs-backend-wasm');
  assert.ok(await tf.setBackend('wasm'), 'wasm backend did not initialise');
  try {
    const before = tf.memory().numTensors;
    const b = R.barlow;
    const d = R.dino;
    const temps = { studentTemp: d.student_temp as number, teacherTemp: d.teacher_temp as number };
    const z1 = tf.tensor2d(b.z1);
    const z2 = tf.tensor2d(b.z2);
    const p = tf.tensor3d(R.barlow_pairs.projections);
    const s = tf.tensor3d(d.student);
    const t = tf.tensor3d(d.teacher);
    const c = tf.tensor1d(d.center);
    // wasm sums float32 sequentially: values to 1e-4, gradients to 1e-3 of their largest entry.
    const bt = barlowTwinsLoss(z1, z2, b.lambda_);
    assertClose((await bt.data())[0], b.loss, 1e-4, 'barlow loss');
    const [g1, g2] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
      barlowTwinsLoss(x as tf.Tensor2D, y as tf.Tensor2D, b.lambda_),
    )([z1, z2]);
    assertClose(await g1.data(), b.grad_z1, 1e-3, 'barlow grad z1', maxAbs(b.grad_z1));
    assertClose(await g2.data(), b.grad_z2, 1e-3, 'barlow grad z2', maxAbs(b.grad_z2));
    const pm = barlowPairMean(p, R.barlow_pairs.lambda_);
    assertClose((await pm.data())[0], R.barlow_pairs.loss, 1e-4, 'pair mean');
    const dl = dinoLoss(s, t, c, temps);
    assertClose((await dl.data())[0], d.loss, 1e-4, 'dino loss');
    const gs = tf.grad((x: tf.Tensor) => dinoLoss(x as tf.Tensor3D, t, c, temps))(s);
    assertClose(await gs.data(), d.grad_student, 1e-3, 'dino grad', maxAbs(d.grad_student));
    const nc = updateCenter(c, t, d.center_momentum);
    assertClose(await nc.data(), d.new_center, 1e-5, 'center', 1e-2);
    tf.dispose([z1, z2, p, s, t, c, bt, g1, g2, pm, dl, gs, nc]);
    const k = R.knn;
    const train = tf.tensor2d(k.train);
    const testF = tf.tensor2d(k.test);
    assert.deepEqual(
      await knnPredict(train, k.train_labels, testF, {
        k: k.k,
        temperature: k.temperature,
        numClasses: k.num_classes,
        chunkSize: 10,
      }),
      k.pred,
    );
    tf.dispose([train, testF]);
    assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  } finally {
    await tf.setBackend('cpu');
  }
});

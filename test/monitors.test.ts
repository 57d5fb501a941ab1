import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  crossCorrelationStats,
  effectiveRank,
  embeddingStd,
  singularValues,
  symmetricEigenvalues,
  teacherEntropy,
  teacherStudentKL,
} from '../lib/eval/collapseMonitors';
import { teacherEntropyTensor, teacherStudentKLTensor } from '../lib/losses/stepMonitors';
import { Rng } from '../lib/util/rng';
import { assertClose, flat, loadRefs } from './reference/refs';

const R = loadRefs();
const M = R.monitors;

test('Jacobi eigenvalues of a known symmetric matrix, and singular values against torch.linalg.svdvals', () => {
  // [[2, 1], [1, 2]] has eigenvalues 1 and 3; a diagonal matrix is its own answer.
  const ev = Array.from(symmetricEigenvalues(Float64Array.from([2, 1, 1, 2]), 2)).sort();
  assertClose(ev, [1, 3], 1e-14, 'eig 2x2');
  // A random symmetric 6 x 6: trace and Frobenius norm are preserved by the rotations.
  const rng = new Rng(3);
  const n = 6;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rng.normal();
  let tr = 0;
  let fro = 0;
  for (let i = 0; i < n; i++) tr += a[i * n + i];
  for (const x of a) fro += x * x;
  const e = symmetricEigenvalues(Float64Array.from(a), n);
  assertClose(
    e.reduce((s, x) => s + x, 0),
    tr,
    1e-12,
    'trace',
    1,
  );
  assertClose(
    e.reduce((s, x) => s + x * x, 0),
    fro,
    1e-12,
    'sum of squares',
    1,
  );
  // Tall (D x D Gram) and wide (N x N Gram) inputs; torch's values are float64 from the same float64 inputs.
  const tall = flat(M.tall);
  assertClose(singularValues(tall, 30, 6), M.sv_tall, 1e-9, 'svdvals tall', 1e-3);
  assert.throws(() => singularValues([1, 2, 3], 2, 2), /expected 4 values for \[2, 2\], got 3/);
});

test('effectiveRank matches RankMe (torch svdvals, p = s/sum(s) + 1e-7) on tall, wide and rank-2 inputs', async () => {
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  // Inputs go through float32 tensors: the singular values move by ~1e-7 relative, the entropy by less.
  for (const [key, rank] of [
    ['tall', 'rank_tall'],
    ['wide', 'rank_wide'],
    ['low', 'rank_low'],
  ] as const) {
    const z = tf.tensor2d(M[key]);
    assertClose(await effectiveRank(z), M[rank], 1e-4, `effectiveRank ${key}`);
    z.dispose();
  }
  assert.ok(M.rank_low > 1.5 && M.rank_low < 2.5, `rank-2 input has effective rank about 2 (${M.rank_low})`);
  // Collapse: identical rows have rank 1 (up to RankMe's eps terms); zeros return 0.
  const same = tf.tidy(() => tf.tile(tf.tensor2d([[1, 2, 3, 4]]), [10, 1])) as tf.Tensor2D;
  const r1 = await effectiveRank(same);
  assert.ok(Math.abs(r1 - 1) < 1e-4, `identical rows: rank ${r1}`);
  const zeros = tf.zeros([5, 3]) as tf.Tensor2D;
  assert.equal(await effectiveRank(zeros), 0);
  // An orthonormal basis has all singular values equal: rank = D.
  const eye = tf.eye(8) as tf.Tensor2D;
  assertClose(await effectiveRank(eye), 8, 1e-5, 'identity');
  tf.dispose([same, zeros, eye]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  const nan = tf.tensor2d([
    [NaN, 1],
    [2, 3],
  ]);
  await assert.rejects(effectiveRank(nan), /NaN/);
  const big = tf.zeros([40, 30]) as tf.Tensor2D;
  await assert.rejects(effectiveRank(big, { maxDim: 16 }), /min\(N, D\) = 30 for z \[40,30\] exceeds maxDim 16/);
  assert.equal(await effectiveRank(big, { maxDim: 30 }), 0);
  big.dispose();
  const v = tf.zeros([3]);
  await assert.rejects(effectiveRank(v as unknown as tf.Tensor2D), /\[N, D\].*\[3\]/);
  tf.dispose([nan, v]);
});

test('embeddingStd matches torch.std(F.normalize(z), 0).mean(), and is 0 when collapsed', async () => {
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  const z = tf.tensor2d(M.tall);
  assertClose(await embeddingStd(z), M.std_tall, 1e-5, 'std');
  const same = tf.tidy(() => tf.tile(tf.tensor2d([[1, -2, 3]]), [6, 1])) as tf.Tensor2D;
  assert.ok((await embeddingStd(same)) < 1e-6);
  // Isotropic Gaussian in D dims: about 1/sqrt(D).
  const g = tf.randomNormal([4000, 16], 0, 1, 'float32', 5) as tf.Tensor2D;
  const s = await embeddingStd(g);
  assert.ok(Math.abs(s - 0.25) < 0.01, `isotropic 16-d: ${s}, expected about 0.25`);
  tf.dispose([z, same, g]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('crossCorrelationStats matches the BatchNorm cross-correlation summary', async () => {
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  const z1 = tf.tensor2d(M.z1);
  const z2 = tf.tensor2d(M.z2);
  const st = await crossCorrelationStats(z1, z2);
  assertClose(st.diagMean, M.diag_mean, 1e-4, 'diagMean');
  assertClose(st.offDiagMean, M.off_mean, 1e-4, 'offDiagMean', 1e-2);
  assertClose(st.offDiagAbsMean, M.off_abs_mean, 1e-4, 'offDiagAbsMean');
  tf.dispose([z1, z2]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('teacherEntropy and teacherStudentKL match the reference; KL is 0 for identical distributions', async () => {
  await tf.setBackend('cpu');
  const d = R.dino;
  const before = tf.memory().numTensors;
  const t0 = tf.tensor2d(d.teacher[0]);
  const s1 = tf.tensor2d(d.student[1]);
  const c = tf.tensor1d(d.center);
  const temps = { teacherTemp: M.teacher_temp, studentTemp: M.student_temp };
  assertClose(await teacherEntropy(t0, c, M.teacher_temp), M.entropy, 1e-4, 'entropy');
  assertClose(await teacherStudentKL(t0, s1, c, temps), M.kl, 1e-4, 'kl');
  // Uniform teacher: entropy log K. Identical distributions: KL 0.
  const flatT = tf.zeros([3, 7]);
  const zero = tf.zeros([7]) as tf.Tensor1D;
  assertClose(await teacherEntropy(flatT, zero, 0.04), Math.log(7), 1e-6, 'uniform');
  assert.ok(Math.abs(await teacherStudentKL(t0, t0, zero, { teacherTemp: 0.1, studentTemp: 0.1 })) < 1e-5);
  // The in-graph variants are scalars the caller owns.
  const both = tf.stack([t0, t0]);
  const e = teacherEntropyTensor(both, c, M.teacher_temp);
  const kl = teacherStudentKLTensor(t0, s1, c, temps);
  assert.equal(e.rank, 0);
  assertClose((await e.data())[0], M.entropy, 1e-4, 'entropy over stacked views');
  assertClose((await kl.data())[0], M.kl, 1e-4, 'kl tensor');
  tf.dispose([t0, s1, c, flatT, zero, both, e, kl]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  const a = tf.zeros([2, 5]);
  assert.throws(() => teacherStudentKLTensor(a, tf.zeros([2, 4]), tf.zeros([5]) as tf.Tensor1D, temps), /same shape/);
  assert.throws(() => teacherEntropyTensor(a, tf.zeros([4]) as tf.Tensor1D, 0.04), /center \[5\]/);
  assert.throws(() => teacherEntropyTensor(a, tf.zeros([5]) as tf.Tensor1D, 0), /temperature/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { emaUpdateStore } from '../lib/methods/ema';
import { ParamStore } from '../lib/nn/params';
import { assertClose, loadRefs } from './reference/refs';

const E = loadRefs().ema;

function makeStore(label: string, w: number[][], bias: number[], runningMean: number[]): ParamStore {
  const ps = new ParamStore(label);
  ps.addValues('fc.weight', [3, 4], Float32Array.from(w.flat()), 'weight');
  ps.addValues('fc.bias', [4], Float32Array.from(bias), 'bias');
  ps.addValues('bn.running_mean', [4], Float32Array.from(runningMean), 'buffer', false);
  return ps;
}

test('emaUpdateStore: teacher <- m*teacher + (1-m)*student in place (torch float64 reference), over the trainable names, buffers left alone', async () => {
  await tf.setBackend('cpu');
  const student = makeStore('student', E.student, [1, 2, 3, 4], [9, 9, 9, 9]);
  const teacher = makeStore('teacher', E.teacher, [0, 0, 0, 0], [5, 5, 5, 5]);
  const frozen = student.clone('frozen-teacher', false);
  const before = tf.memory().numTensors;
  emaUpdateStore(teacher, student, E.momentum);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  assertClose(await teacher.get('fc.weight').data(), E.out, 1e-6, 'weight', 1e-1);
  assertClose(await teacher.get('fc.bias').data(), [0.004, 0.008, 0.012, 0.016], 1e-5, 'bias');
  assert.deepEqual(Array.from(await teacher.get('bn.running_mean').data()), [5, 5, 5, 5], 'buffers are not averaged');
  assert.deepEqual(Array.from(await student.get('fc.bias').data()), [1, 2, 3, 4], 'the student is unchanged');
  // Momentum 1 keeps the teacher, 0 copies the student.
  const keep = makeStore('keep', E.teacher, [0, 0, 0, 0], [5, 5, 5, 5]);
  emaUpdateStore(keep, student, 1);
  assertClose(await keep.get('fc.weight').data(), E.teacher.flat(), 1e-7, 'momentum 1 keeps the teacher', 1e-1);
  emaUpdateStore(keep, student, 0);
  assertClose(await keep.get('fc.weight').data(), E.student.flat(), 1e-7, 'momentum 0 copies the student', 1e-1);
  keep.dispose();
  assert.throws(() => emaUpdateStore(teacher, student, -0.1), /momentum must be in \[0, 1\], got -0.1/);
  // A frozen clone (no trainable variables of its own) is updated all the same.
  for (let i = 0; i < 3; i++) emaUpdateStore(frozen, teacher, 0.5);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors over repeated updates');
  const fb = Array.from(await frozen.get('fc.bias').data());
  assertClose(
    fb,
    [1, 2, 3, 4].map((b, j) => b / 8 + 0.004 * (j + 1) * (7 / 8)),
    1e-5,
    'three halvings',
  );
  // Mismatches are reported by name.
  const other = new ParamStore('other');
  other.addValues('fc.weight', [4, 3], new Float32Array(12), 'weight');
  assert.throws(
    () => emaUpdateStore(other, student, 0.9),
    /"fc.weight" has shape \[4,3\] in the teacher, \[3,4\] in the student/,
  );
  const missing = new ParamStore('missing');
  assert.throws(() => emaUpdateStore(missing, student, 0.9), /teacher \(missing\) has no parameter "fc.weight"/);
  assert.throws(() => emaUpdateStore(teacher, student, NaN), /momentum/);
  for (const ps of [student, teacher, frozen, other, missing]) ps.dispose();
});

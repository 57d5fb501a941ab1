import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, parseBackendId, BackendError, BACKEND_IDS } from '../lib/backend/select';

test('a bad DINOTWINS_BACKEND value is an error listing the valid ones', async () => {
  assert.throws(
    () => parseBackendId('cuda'),
    (e: unknown) =>
      e instanceof BackendError &&
      /DINOTWINS_BACKEND="cuda" is not a backend; valid values: tensorflow-gpu, webgpu, tensorflow-cpu, wasm, cpu/.test(
        (e as Error).message,
      ),
  );
  const old = process.env.DINOTWINS_BACKEND;
  process.env.DINOTWINS_BACKEND = 'tpu';
  try {
    await assert.rejects(selectBackend({ print: false, reselect: true }), /valid values/);
  } finally {
    if (old === undefined) delete process.env.DINOTWINS_BACKEND;
    else process.env.DINOTWINS_BACKEND = old;
  }
});

test('automatic selection picks a backend and gives a reason for each skipped one', async () => {
  const old = process.env.DINOTWINS_BACKEND;
  delete process.env.DINOTWINS_BACKEND;
  try {
    const r = await selectBackend({ print: false, reselect: true });
    assert.ok(BACKEND_IDS.includes(r.chosen));
    assert.equal(tf.getBackend(), r.tfBackend);
    const idx = BACKEND_IDS.indexOf(r.chosen);
    assert.deepEqual(
      r.skipped.map((s) => s.id),
      BACKEND_IDS.slice(0, idx),
    );
    for (const s of r.skipped) assert.ok(s.reason.length > 5, `reason for ${s.id}`);
    assert.match(r.line, new RegExp(`^backend: ${r.chosen} `));
    for (const s of r.skipped) assert.ok(r.line.includes(`${s.id}: `), `line mentions ${s.id}`);
    // Without tfjs-node installed (as on this project's machines) the first candidate is skipped as not installed.
    if (r.skipped[0]?.id === 'tensorflow-gpu') assert.match(r.skipped[0].reason, /tfjs-node-gpu/);
  } finally {
    if (old !== undefined) process.env.DINOTWINS_BACKEND = old;
  }
});

test('forcing cpu works and is recorded in the report', async () => {
  const r = await selectBackend({ force: 'cpu', print: false, reselect: true });
  assert.equal(r.chosen, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.match(r.line, /forced by option force/);
  assert.deepEqual(r.skipped, []);
});

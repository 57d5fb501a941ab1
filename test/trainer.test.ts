import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { pretrain, NonFiniteLossError } from '../lib/train/trainer';
import { resolveConfig, ConfigError, ConfigLayer, PretrainConfig, Method } from '../lib/config/config';
import { CheckpointError, loadCheckpoint } from '../lib/train/checkpoint';
import { readRunRecord } from '../lib/train/runRecord';
import { generateFixtureSplit } from '../lib/data/index';
import { TINY_RUN } from './helpers';

const data = generateFixtureSplit(40, 5);
// TINY_RUN acts as a budget: each method keeps the keys it reads.
const cfg = (method: Method, over: ConfigLayer = {}) => resolveConfig({ ...over, method }, { budget: TINY_RUN });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'dt-train-'));
const losses = (dir: string) => readRunRecord(path.join(dir, 'record.json')).steps.map((s) => [s.step, s.loss]);

test('a killed run resumed from its checkpoint reproduces the uninterrupted run bit for bit (cpu)', async () => {
  await tf.setBackend('cpu');
  for (const method of ['dino-twins', 'barlow'] as Method[]) {
    const c = cfg(method);
    const full = tmp();
    const a = await pretrain({ config: c, data, runDir: full });
    a.model.dispose();
    assert.equal(a.record.status, 'done');
    assert.equal(a.record.step, 10);
    const cut = tmp();
    const b1 = await pretrain({ config: c, data, runDir: cut, stopAfterSteps: 7 }); // checkpoint at step 6, step 7 is lost
    b1.model.dispose();
    assert.equal(b1.record.status, 'stopped');
    assert.equal(loadCheckpoint<{ step: number }>(path.join(cut, 'checkpoint.ckpt')).meta.step, 6);
    const b2 = await pretrain({ config: c, data, runDir: cut });
    assert.deepEqual(b2.record.resumedFrom, [6]);
    assert.equal(b2.record.status, 'done');
    assert.deepEqual(losses(cut), losses(full), `${method}: per-step losses after resume`);
    assert.deepEqual(
      b2.record.epochs.map((e) => e.means),
      a.record.epochs.map((e) => e.means),
    );
    // Final weights are identical too.
    const again = await pretrain({ config: c, data, runDir: full }); // finished run: resumes at the end, no training
    const [x, y] = [await again.model.student.snapshot(), await b2.model.student.snapshot()];
    for (let i = 0; i < x.length; i++) assert.deepEqual(Array.from(x[i].values), Array.from(y[i].values), x[i].name);
    again.model.dispose();
    b2.model.dispose();
  }
});

test('no tensors leak per training step', async () => {
  await tf.setBackend('cpu');
  const counts: number[] = [];
  const r = await pretrain({
    config: cfg('dino-twins', { epochs: 1, checkpointEvery: 100 }),
    data,
    runDir: tmp(),
    callbacks: { onStep: () => void counts.push(tf.memory().numTensors) },
  });
  r.model.dispose();
  assert.equal(counts.length, 5);
  // Slots of the optimizer appear at the first step; from then on the count is flat.
  assert.deepEqual(
    counts.slice(1),
    counts.slice(1).map(() => counts[1]),
  );
  const before = tf.memory().numTensors;
  const r2 = await pretrain({ config: cfg('barlow', { epochs: 1 }), data, runDir: tmp() });
  r2.model.dispose();
  assert.equal(tf.memory().numTensors, before, 'a finished and disposed run leaves nothing behind');
});

test('a non-finite loss stops the run with a clear error and keeps the last good checkpoint', async () => {
  await tf.setBackend('cpu');
  const dir = tmp();
  const before = tf.memory().numTensors;
  await assert.rejects(
    pretrain({
      config: cfg('barlow', { lr: 1e30, warmupEpochs: 0, optimizer: { kind: 'sgd' }, checkpointEvery: 1 }),
      data,
      runDir: dir,
    }),
    (e: unknown) =>
      e instanceof NonFiniteLossError &&
      /non-finite loss=(NaN|-?Infinity)(, gradNorm=\S+)? at step \d+ .*last good checkpoint \(step \d+\) is kept/.test(
        (e as Error).message,
      ),
  );
  const rec = readRunRecord(path.join(dir, 'record.json'));
  assert.equal(rec.status, 'failed');
  assert.match(rec.message ?? '', /non-finite/);
  const ck = loadCheckpoint<{ step: number }>(path.join(dir, 'checkpoint.ckpt'));
  for (const [, t] of ck.groups.student) assert.ok(t.values.every(Number.isFinite), 'checkpoint holds finite weights');
  assert.equal(tf.memory().numTensors, before, 'a failed run disposes its model');
});

test('a corrupt checkpoint is a clear error, not a silent restart', async () => {
  await tf.setBackend('cpu');
  const dir = tmp();
  const c = cfg('barlow', { epochs: 1 });
  (await pretrain({ config: c, data, runDir: dir, stopAfterSteps: 3 })).model.dispose();
  const f = path.join(dir, 'checkpoint.ckpt');
  const buf = fs.readFileSync(f);
  buf[buf.length - 10] ^= 0x55;
  fs.writeFileSync(f, buf);
  const before = tf.memory().numTensors;
  await assert.rejects(
    pretrain({ config: c, data, runDir: dir }),
    (e: unknown) =>
      e instanceof CheckpointError && /checkpoint\.ckpt is corrupt: payload sha256/.test((e as Error).message),
  );
  assert.equal(tf.memory().numTensors, before);
  // A folder of another config is refused, too, naming the difference (test/run-identity.test.ts has every case).
  fs.rmSync(dir, { recursive: true });
  (await pretrain({ config: c, data, runDir: dir, stopAfterSteps: 3 })).model.dispose();
  await assert.rejects(
    pretrain({ config: cfg('barlow', { epochs: 1, lr: 0.5 }), data, runDir: dir }),
    /is another run than this one: config\.lr: recorded 0\.001, now 0\.5/,
  );
});

test('bad inputs are rejected before any compute', async () => {
  await tf.setBackend('cpu');
  await assert.rejects(
    pretrain({ config: cfg('barlow', { batchSize: 64 }), data, runDir: tmp() }),
    (e: unknown) =>
      e instanceof ConfigError && /batchSize 64 is larger than the data set \(40 images\)/.test((e as Error).message),
  );
  await assert.rejects(
    pretrain({ config: cfg('barlow'), data: { images: new Uint8Array(100), n: 40 }, runDir: tmp() }),
    /expected 40 images of 32x32x3 uint8/,
  );
});

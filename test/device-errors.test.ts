import { test, TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { ensureWebgpu } from '../lib/kernels/webgpu/setup';
import { registerWebgpuKernels, unregisterWebgpuKernels } from '../lib/kernels/webgpu';
import { DeviceError, takeDeviceErrors, watchDeviceErrors, deviceErrorMessage } from '../lib/backend/deviceErrors';
import { pretrain } from '../lib/train/trainer';
import { resolveConfig } from '../lib/config/config';
import { readRunRecord } from '../lib/train/runRecord';
import { generateFixtureSplit } from '../lib/data/index';

// A real GPU error: stock tfjs-webgpu AddN binds all its inputs at once and fails pipeline
// validation past Dawn's 8 storage buffers per stage (our AddN, unregistered here, groups them).
async function badAddN(): Promise<void> {
  unregisterWebgpuKernels();
  try {
    const xs = Array.from({ length: 20 }, (_, i) => tf.fill([1200], i + 1));
    const y = tf.addN(xs);
    await y.data();
    tf.dispose([...xs, y]);
  } finally {
    registerWebgpuKernels();
  }
  await new Promise((r) => setTimeout(r, 20));
}

async function onWebgpu(t: TestContext): Promise<boolean> {
  const a = await ensureWebgpu();
  if (!a.ok) {
    t.skip(a.reason);
    return false;
  }
  await tf.setBackend('webgpu');
  assert.ok(watchDeviceErrors());
  takeDeviceErrors();
  return true;
}

test('GPU validation errors, which tfjs never throws, are collected', async (t) => {
  if (!(await onWebgpu(t))) return;
  await badAddN();
  const errs = takeDeviceErrors();
  assert.ok(errs.length >= 1, 'no error event seen');
  assert.match(errs.join('\n'), /storage buffers/);
  assert.deepEqual(takeDeviceErrors(), []);
  assert.match(deviceErrorMessage(errs), /bug in a GPU kernel or in tfjs/);
  assert.match(deviceErrorMessage(['Out of memory while allocating']), /ran out of memory: lower batchSize/);
});

test('training stops with a DeviceError at the next read-back after a GPU error, before any checkpoint is written', async (t) => {
  if (!(await onWebgpu(t))) return;
  const data = generateFixtureSplit(30, 9);
  const cfg = resolveConfig({
    method: 'barlow',
    backbone: { kind: 'resnet', depth: 18, width: 2 },
    epochs: 1,
    batchSize: 8,
    seed: 1,
    logEvery: 1,
    checkpointEvery: 2,
    augment: { globalSize: 16 },
    projector: { hidden: 16, out: 16, layers: 2 },
  } as never);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-deverr-'));
  await assert.rejects(
    pretrain({
      config: cfg,
      data,
      runDir: dir,
      callbacks: {
        onStep: async (s) => {
          if (s.step === 0) await badAddN();
        },
      },
    }),
    (e: Error) =>
      e instanceof DeviceError &&
      /the GPU reported \d+ error\(s\)/.test(e.message) &&
      /last good checkpoint/.test(e.message),
  );
  const rec = readRunRecord(path.join(dir, 'record.json'));
  assert.equal(rec.status, 'failed');
  assert.ok(!fs.existsSync(path.join(dir, 'checkpoint.ckpt')), 'a checkpoint was written after the GPU error');
  await tf.setBackend('cpu');
});

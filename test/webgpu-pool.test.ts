/**
 * The WebGPU buffer pool helpers (lib/kernels/webgpu/pool.ts): trimming destroys exactly the free
 * buffers and leaves live tensors intact, also when tensors were disposed while unsubmitted work
 * still used them; later work allocates again and computes the same values; the peak tracker sees
 * the most bytes in use at once and uninstalls itself; on other backends the helpers do nothing.
 *
 * Needs a WebGPU adapter for all but the last test (lavapipe on a CPU-only machine:
 * `eval "$(scripts/setup-lavapipe.sh)"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { gpuPoolStats, trackPeakGpuUse, trimGpuPool } from '../lib/kernels/webgpu/pool';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pretrain } from '../lib/train/trainer';
import { resolveConfig } from '../lib/config/config';
import { generateFixtureSplit } from '../lib/data/index';
import { randn, useWebgpu } from './helpers';

// Above tfjs' CPU-forwarding threshold (1,000 elements), so ops on these run on the GPU.
const N = 5003;

/** x -> tanh(x * 0.5 + 1) repeated: a chain whose intermediates all return to the pool. */
function chain(x: tf.Tensor, n: number): tf.Tensor {
  return tf.tidy(() => {
    let y = x;
    for (let i = 0; i < n; i++) y = tf.tanh(tf.add(tf.mul(y, 0.5), 1));
    return y;
  });
}

test('trimGpuPool destroys the free buffers only: live tensors keep their values, later work allocates again', async (t) => {
  if (!(await useWebgpu(t))) return;
  const keep = tf.tensor1d(randn(N, 1));
  const want = await chain(keep, 6).data();
  const s0 = gpuPoolStats()!;
  assert.ok(
    s0.freeBuffers > 0 && s0.freeBytes >= 4 * N,
    `the chain left free buffers in the pool (${JSON.stringify(s0)})`,
  );
  assert.equal(s0.allocatedBytes, s0.usedBytes + s0.freeBytes, 'allocated = used + free');

  const released = trimGpuPool();
  const s1 = gpuPoolStats()!;
  assert.equal(released, s0.freeBytes);
  assert.deepEqual({ free: s1.freeBytes, buffers: s1.freeBuffers }, { free: 0, buffers: 0 });
  assert.equal(s1.allocatedBytes, s1.usedBytes);
  assert.deepEqual(
    Array.from(await keep.data()),
    Array.from(await tf.tensor1d(randn(N, 1)).data()),
    'the live tensor is intact',
  );

  const again = chain(keep, 6);
  assert.deepEqual(Array.from(await again.data()), Array.from(want), 'same values after the trim');
  assert.ok(gpuPoolStats()!.freeBuffers > 0, 'the pool refills');
  tf.dispose([keep, again]);
  trimGpuPool();
});

test('trimGpuPool with unsubmitted work whose inputs were already disposed', async (t) => {
  if (!(await useWebgpu(t))) return;
  const prev = tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE');
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 1000); // keep the chain in one unsubmitted command buffer
  try {
    const v = randn(N, 2);
    const want = Float32Array.from(v, (a) => Math.fround(Math.fround(a * 3) + 2));
    const x = tf.tensor1d(v);
    const y = tf.tidy(() => tf.add(tf.mul(x, 3), 2));
    x.dispose(); // still owned by the pending commands: its buffer must not be destroyed before they are submitted
    trimGpuPool();
    assert.deepEqual(Array.from(await y.data()), Array.from(want));
    y.dispose();
  } finally {
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', prev);
  }
});

test('trackPeakGpuUse sees the most bytes in use at once, and stop() removes the tracker', async (t) => {
  if (!(await useWebgpu(t))) return;
  trimGpuPool();
  const base = gpuPoolStats()!.usedBytes;
  const live = trackPeakGpuUse();
  const xs = [1, 2, 3].map((s) => tf.tensor1d(randn(N, s)));
  const sum = tf.addN(xs);
  await sum.data();
  const holding = gpuPoolStats()!.usedBytes;
  tf.dispose([...xs, sum]);
  await tf.tidy(() => tf.sum(tf.tensor1d(randn(N, 4)))).data();
  const peak = live.peak();
  live.stop();
  assert.ok(holding - base >= 4 * 4 * N, 'four live tensors of N floats');
  assert.ok(peak >= holding, `peak ${peak} >= bytes held with four tensors alive ${holding}`);
  assert.ok(peak < holding + 4 * 4 * N, 'and not some unrelated figure');
  const bm = (tf.backend() as unknown as { bufferManager: object }).bufferManager;
  assert.ok(!Object.prototype.hasOwnProperty.call(bm, 'acquireBuffer'), 'the tracker is gone after stop()');
  trimGpuPool();
});

test('a finished pretraining run gives its pool back; the returned model still works', async (t) => {
  if (!(await useWebgpu(t))) return;
  const cfg = resolveConfig({
    method: 'barlow',
    backbone: { kind: 'resnet', depth: 18, width: 2 },
    epochs: 1,
    batchSize: 8,
    seed: 1,
    logEvery: 1,
    checkpointEvery: 100,
    augment: { globalSize: 16 },
    projector: { hidden: 16, out: 16, layers: 2 },
  } as never);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-pool-'));
  const r = await pretrain({ config: cfg, data: generateFixtureSplit(20, 3), runDir: dir });
  assert.equal(r.record.status, 'done');
  const s = gpuPoolStats()!;
  assert.deepEqual(
    { free: s.freeBytes, buffers: s.freeBuffers },
    { free: 0, buffers: 0 },
    'pool trimmed at the end of the run',
  );
  const snap = await r.model.student.snapshot();
  assert.ok(
    snap.length > 0 && snap.every((p) => Array.from(p.values).every(Number.isFinite)),
    'parameters readable and finite',
  );
  r.model.dispose();
  trimGpuPool();
});

test('on a backend other than webgpu the pool helpers do nothing', async () => {
  await tf.setBackend('cpu');
  assert.equal(gpuPoolStats(), undefined);
  assert.equal(trimGpuPool(), 0);
  assert.throws(() => trackPeakGpuUse(), /not webgpu/);
});

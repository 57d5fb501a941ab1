/**
 * Uploads through `queue.writeBuffer` (lib/kernels/webgpu/upload.ts): values arrive intact for
 * float32, int32 and bool (and from a Float32Array view with an offset), no GPU buffer is created
 * per upload once the pool is warm (stock creates a staging buffer every time: checked too, so the
 * count can fail), and uploads interleaved with unsubmitted GPU work that frees buffers of the same
 * size give the same numbers as plain JavaScript.
 *
 * Needs a WebGPU adapter (lavapipe on a CPU-only machine: `eval "$(scripts/setup-lavapipe.sh)"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  installWriteBufferUploads,
  uninstallWriteBufferUploads,
  writeBufferUploadsActive,
} from '../lib/kernels/webgpu/upload';
import { Rng } from '../lib/util/rng';
import { useWebgpu } from './helpers';

// Above tfjs' CPU-forwarding threshold (1,000 elements), so ops on these run on the GPU.
const N = 4099;

/** Counts `device.createBuffer` calls while `f` runs. */
async function countCreates(f: () => Promise<void>): Promise<number> {
  const device = (tf.backend() as unknown as { device: { createBuffer: (...a: unknown[]) => unknown } }).device;
  const orig = device.createBuffer;
  let n = 0;
  device.createBuffer = function (this: unknown, ...a: unknown[]) {
    n++;
    return orig.apply(this, a);
  };
  try {
    await f();
  } finally {
    device.createBuffer = orig;
  }
  return n;
}

function values(seed: number, n = N): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}

test('uploads keep float32, int32 and bool values (and an offset view) intact', async (t) => {
  if (!(await useWebgpu(t))) return;
  installWriteBufferUploads();
  assert.ok(writeBufferUploadsActive());
  const f = values(1, N + 7);
  const view = f.subarray(7); // byteOffset 28
  const ints = Int32Array.from({ length: N }, (_, i) => ((i * 7919) % 100003) - 50000);
  const bools = Uint8Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 1 : 0));
  // An identity-like GPU op forces the upload: x + 0 (float/int), logicalOr(b, false) for bool.
  const gotF = await tf.tidy(() => tf.add(tf.tensor1d(view), tf.zeros([N]))).data();
  const gotI = await tf.tidy(() => tf.add(tf.tensor1d(ints, 'int32'), tf.zeros([N], 'int32'))).data();
  const gotB = await tf
    .tidy(() => tf.cast(tf.logicalOr(tf.tensor1d(bools, 'bool'), tf.zeros([N], 'bool')), 'int32'))
    .data();
  assert.deepEqual(Array.from(gotF), Array.from(view));
  assert.deepEqual(Array.from(gotI), Array.from(ints));
  assert.deepEqual(Array.from(gotB), Array.from(bools));
});

test('a warm pool uploads without creating buffers; the stock path creates one per upload', async (t) => {
  if (!(await useWebgpu(t))) return;
  // One read-back at the end (its staging buffer comes from the pool, stock and ours alike).
  const run = async (): Promise<void> => {
    let acc = tf.zeros([N]);
    for (let i = 0; i < 10; i++) {
      const next = tf.tidy(() => tf.add(acc, tf.tensor1d(values(10 + i))));
      acc.dispose();
      acc = next;
    }
    const s = tf.sum(acc);
    acc.dispose();
    await s.data();
    s.dispose();
  };
  try {
    installWriteBufferUploads();
    await run(); // warms the pool
    assert.equal(await countCreates(run), 0, 'writeBuffer uploads from a warm pool create no buffer');
    uninstallWriteBufferUploads();
    await run();
    assert.ok(
      (await countCreates(run)) >= 10,
      'stock uploads make a staging buffer per upload (else this test cannot tell them apart)',
    );
  } finally {
    installWriteBufferUploads();
  }
});

test('uploads interleaved with unsubmitted GPU work that frees same-size buffers compute what JavaScript does', async (t) => {
  if (!(await useWebgpu(t))) return;
  installWriteBufferUploads();
  const prev = tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE');
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 1000); // keep everything in one unsubmitted command buffer
  try {
    const want = values(100);
    let x: tf.Tensor = tf.tensor1d(want);
    for (let i = 0; i < 40; i++) {
      const v = values(200 + i);
      for (let j = 0; j < N; j++) want[j] = Math.fround(Math.fround(want[j] * 0.5) + v[j]);
      const next = tf.tidy(() => tf.add(tf.mul(x, 0.5), tf.tensor1d(v)));
      x.dispose(); // its buffer is still owned by the pending commands
      x = next;
    }
    const got = await x.data();
    x.dispose();
    assert.deepEqual(Array.from(got), Array.from(want));
  } finally {
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', prev);
  }
});

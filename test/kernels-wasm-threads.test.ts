import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '../lib/kernels/wasm';
import { registerKernelsFor } from '../lib/kernels';
import { useWasmThreads, wasmThreadsCount, stopWasmThreads, threadCpuSeconds } from '../lib/kernels/wasm/threads';

after(() => stopWasmThreads());

test('useWasmThreads rejects bad thread counts', () => {
  assert.throws(() => useWasmThreads({ threads: 0 }), /threads must be an integer in 1\.\.8, got 0/);
  assert.throws(() => useWasmThreads({ threads: 2.5 }), /got 2.5/);
});

test('the threaded wasm build runs with 2 threads in Node and a second thread does compute', async () => {
  assert.equal(useWasmThreads({ threads: 2 }), 2);
  registerKernelsFor('wasm');
  assert.ok(await tf.setBackend('wasm'));
  assert.equal(wasmThreadsCount(), 2);
  const a = tf.randomNormal([256, 1024], 0, 1, 'float32', 1);
  const b = tf.randomNormal([1024, 1024], 0, 1, 'float32', 2);
  const before = new Map(threadCpuSeconds().map((t) => [t.tid, t.seconds]));
  for (let i = 0; i < 8; i++) tf.tidy(() => tf.matMul(a, tf.add(b, i)).dataSync());
  const gained = threadCpuSeconds()
    .map((t) => ({ ...t, d: t.seconds - (before.get(t.tid) ?? 0) }))
    .sort((x, y) => y.d - x.d);
  // The main thread and one pool worker share the products: the second-busiest thread gains
  // CPU time too (the other workers idle).
  if (gained.length > 1)
    assert.ok(
      gained[1].d >= 0.05,
      `second thread gained only ${gained[1].d}s (threads: ${JSON.stringify(gained.slice(0, 3))})`,
    );
  // Results agree with the cpu backend.
  const want = tf.tidy(() => tf.matMul(a, b).dataSync());
  await tf.setBackend('cpu');
  const ref = tf.tidy(() => tf.matMul(a, b).dataSync());
  let err = 0;
  for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(ref[i] - want[i]));
  assert.ok(err < 1e-3, `max abs diff ${err}`);
  tf.dispose([a, b]);
});

test('our gradient kernels give the same results on the threaded build', async () => {
  const f = (): tf.Tensor[] => {
    const x = tf.randomNormal([4, 12, 12, 8], 0, 1, 'float32', 3) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 8, 16], 0, 1, 'float32', 4) as tf.Tensor4D;
    const g = tf.randomNormal([4, 6, 6, 16], 0, 1, 'float32', 5);
    const g1 = tf.randomNormal([4, 12, 12, 16], 0, 1, 'float32', 6);
    const s2 = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), g)),
    )([x, w]);
    const s1 = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), g1)),
    )([x, w]);
    return [...s2, ...s1];
  };
  await tf.setBackend('cpu');
  const ref = tf.tidy(f).map((t) => t.dataSync());
  await tf.setBackend('wasm');
  const n0 = tf.memory().numTensors;
  const got = tf
    .tidy(() => f())
    .map((t) => {
      const d = t.dataSync();
      t.dispose();
      return d;
    });
  assert.equal(tf.memory().numTensors, n0);
  ref.forEach((r, i) => {
    let num = 0;
    let den = 0;
    for (let k = 0; k < r.length; k++) {
      num = Math.max(num, Math.abs(r[k] - got[i][k]));
      den = Math.max(den, Math.abs(r[k]));
    }
    assert.ok(num / den < 1e-4, `output ${i}: relative error ${num / den}`);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { channelStats, classCounts, CIFAR10_SOURCE, defaultSharedTarball, loadCifar10 } from '../lib/data';

// The real CIFAR-10 tarball this project's machines keep next to the repository; elsewhere this test is skipped.
const SHARED = defaultSharedTarball();

test('real CIFAR-10: counts, per-class counts, channel means, load time (cold unpack and warm cache)', async (t) => {
  if (!fs.existsSync(SHARED)) {
    t.skip(`real CIFAR-10 not found at ${SHARED}; skipping the real-data checks`);
    return;
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinotwins-cifar10-'));
  try {
    const opts = { dataDir, env: {}, sharedTarball: SHARED, download: false, progress: false } as const;
    const cold = await loadCifar10(opts);
    console.log(`cold (unpack + verify + decode): ${cold.seconds.toFixed(2)} s -- ${cold.source.line}`);
    assert.equal(cold.source.kind, 'shared-tarball');
    assert.equal(cold.source.extracted, true);
    const warm = await loadCifar10(opts);
    console.log(`warm (verify + decode from the cache): ${warm.seconds.toFixed(2)} s -- ${warm.source.line}`);
    assert.equal(warm.source.kind, 'cache');
    for (const d of [cold, warm]) assert.ok(d.seconds < 30, `load took ${d.seconds} s`);

    const d = warm;
    // The official files: the identity every real run records (and sweeps name runs with) without loading.
    assert.deepEqual(cold.identity, CIFAR10_SOURCE);
    assert.deepEqual(d.identity, CIFAR10_SOURCE);
    assert.equal(d.train.n, 50_000);
    assert.equal(d.test.n, 10_000);
    assert.deepEqual(classCounts(d.train), new Array(10).fill(5000));
    assert.deepEqual(classCounts(d.test), new Array(10).fill(1000));
    // The official order: data_batch_1 has these class counts (from the data's README).
    assert.deepEqual(
      classCounts({ labels: d.train.labels.subarray(0, 10_000), n: 10_000 }),
      [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981],
    );
    assert.deepEqual(d.classNames, [
      'airplane',
      'automobile',
      'bird',
      'cat',
      'deer',
      'dog',
      'frog',
      'horse',
      'ship',
      'truck',
    ]);
    const s = channelStats(d.train);
    [0.4914, 0.4822, 0.4465].forEach((m, c) =>
      assert.ok(Math.abs(s.mean[c] - m) < 1e-4, `train mean ${c}: ${s.mean[c]} vs ${m}`),
    );
    [0.247, 0.2435, 0.2616].forEach((m, c) =>
      assert.ok(Math.abs(s.std[c] - m) < 1e-4, `train std ${c}: ${s.std[c]} vs ${m}`),
    );
    const st = channelStats(d.test);
    [0.4942, 0.4851, 0.4504].forEach((m, c) =>
      assert.ok(Math.abs(st.mean[c] - m) < 1e-4, `test mean ${c}: ${st.mean[c]} vs ${m}`),
    );
    assert.deepEqual(cold.train.images.subarray(0, 3072 * 10), d.train.images.subarray(0, 3072 * 10));
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

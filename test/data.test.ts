import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import * as tar from 'tar';
import {
  BATCHES_DIR,
  CIFAR10_CLASS_NAMES,
  CIFAR10_ENV,
  DataError,
  PIXELS_PER_IMAGE,
  RECORD_BYTES,
  TARBALL_NAME,
  balancedSubset,
  channelStats,
  classCountTable,
  classCounts,
  cleanStaleTemps,
  damageFixture,
  decodeRecords,
  fileCheck,
  md5Hex,
  generateFixture,
  loadCifar10,
  loadCifar10OrFixture,
  parseMeta,
  progressLine,
  take,
  trainValSplit,
  writeCifar10Fixture,
  cifar10Checksum,
  CIFAR10_SOURCE,
  type BatchFile,
  type Fixture,
  type LoadCifar10Options,
  type LoadOrFixtureOptions,
  type Split,
} from '../lib/data';

const R = 20; // records per batch file in these tests: 100 train, 20 test

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dinotwins-data-'));
}

async function fixtureIn(root: string, tarball = false): Promise<Fixture> {
  return writeCifar10Fixture(path.join(root, 'src'), { recordsPerBatch: R, seed: 7, tarball });
}

/** Options that see only what the test gives (no env var, no shared tarball, no download). */
function isolated<T extends LoadCifar10Options>(dataDir: string, extra: T): T {
  return { dataDir, env: {}, sharedTarball: false, download: false, progress: false, ...extra };
}

async function rejectsData(p: Promise<unknown>, check: (e: DataError) => void): Promise<DataError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    check(e);
    return e;
  }
  assert.fail('expected a DataError, nothing was thrown');
}

/** Files and folders left in the cache root, temp folders included. */
function leftovers(dataDir: string): string[] {
  return fs.existsSync(dataDir) ? fs.readdirSync(dataDir).sort() : [];
}

test('decodeRecords: planar R,G,B records land in NHWC order', () => {
  const n = 2;
  const buf = new Uint8Array(n * RECORD_BYTES);
  // record r, channel c, pixel (y, x) = (r*7 + c*50 + y*3 + x) % 256
  for (let r = 0; r < n; r++) {
    buf[r * RECORD_BYTES] = 3 + r;
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++)
          buf[r * RECORD_BYTES + 1 + c * 1024 + y * 32 + x] = (r * 7 + c * 50 + y * 3 + x) % 256;
  }
  const split: Split = { images: new Uint8Array(n * PIXELS_PER_IMAGE), labels: new Uint8Array(n), n };
  decodeRecords(buf, n, split, 0, 'mem');
  assert.deepEqual([...split.labels], [3, 4]);
  for (const [r, y, x, c] of [
    [0, 0, 0, 0],
    [0, 0, 1, 2],
    [1, 31, 31, 1],
    [1, 5, 17, 2],
    [0, 12, 0, 1],
  ]) {
    assert.equal(
      split.images[r * PIXELS_PER_IMAGE + y * 96 + x * 3 + c],
      (r * 7 + c * 50 + y * 3 + x) % 256,
      `r${r} y${y} x${x} c${c}`,
    );
  }
  buf[RECORD_BYTES] = 10;
  assert.throws(
    () => decodeRecords(buf, n, split, 0, 'mem.bin'),
    (e: unknown) =>
      e instanceof DataError && e.code === 'layout' && /mem\.bin: record 1 .*label byte 10/.test(e.message),
  );
});

test('parseMeta ignores empty lines and rejects a wrong count', () => {
  assert.deepEqual(parseMeta(CIFAR10_CLASS_NAMES.join('\n') + '\n\n', 'm'), [...CIFAR10_CLASS_NAMES]);
  assert.deepEqual(parseMeta(CIFAR10_CLASS_NAMES.join('\r\n') + '\r\n', 'm'), [...CIFAR10_CLASS_NAMES]);
  assert.throws(() => parseMeta('a\nb\n', 'meta.txt'), /meta\.txt: expected 10 class names .* found 2/);
});

test('fixture round trip: loading the written folder gives the generated pixels, labels and class names', async () => {
  const root = tmp();
  try {
    const fx = await fixtureIn(root);
    const want = generateFixture({ recordsPerBatch: R, seed: 7 });
    const d = await loadCifar10(isolated(path.join(root, 'data'), { path: fx.folder, checksums: fx.checksums }));
    assert.equal(d.train.n, 5 * R);
    assert.equal(d.test.n, R);
    assert.equal(d.train.role, 'train');
    assert.equal(d.test.role, 'test');
    assert.deepEqual(d.train.images, want.train.images);
    assert.deepEqual(d.train.labels, want.train.labels);
    assert.deepEqual(d.test.images, want.test.images);
    assert.deepEqual(d.test.labels, want.test.labels);
    assert.deepEqual(d.classNames, [...CIFAR10_CLASS_NAMES]);
    assert.deepEqual(classCounts(d.train), new Array(10).fill(5 * (R / 10)));
    assert.equal(d.source.kind, 'folder');
    assert.equal(d.source.via, 'option');
    assert.equal(d.source.folder, fx.folder);
    assert.equal(d.source.extracted, false);
    assert.match(d.source.line, /folder .*100 train \+ 20 test/);
    // Deterministic: the same seed writes the same bytes; another seed does not.
    const again = await writeCifar10Fixture(path.join(root, 'again'), { recordsPerBatch: R, seed: 7 });
    const other = await writeCifar10Fixture(path.join(root, 'other'), { recordsPerBatch: R, seed: 8 });
    assert.deepEqual(again.checksums, fx.checksums);
    assert.notEqual(other.checksums['data_batch_1.bin'].md5, fx.checksums['data_batch_1.bin'].md5);
    // The parent folder works too, and 'none' skips the MD5s.
    const p = await loadCifar10(
      isolated(path.join(root, 'data'), { path: path.dirname(fx.folder), checksums: 'none' }),
    );
    assert.deepEqual(p.train.labels, want.train.labels);
    assert.equal(p.source.folder, fx.folder);
    // The data's identity is a digest of its batch files' MD5s, checked or not: the same bytes, the same identity.
    const md5 = Object.fromEntries(Object.entries(fx.checksums).map(([f, c]) => [f, c.md5])) as Record<
      BatchFile,
      string
    >;
    assert.deepEqual(d.identity, { source: 'cifar10', checksum: cifar10Checksum(md5) });
    assert.deepEqual(p.identity, d.identity);
    assert.notEqual(d.identity.checksum, CIFAR10_SOURCE.checksum, 'not the official files');
    const otherLoad = await loadCifar10(isolated(path.join(root, 'data2'), { path: other.folder, checksums: 'none' }));
    assert.notEqual(otherLoad.identity.checksum, d.identity.checksum);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('fixture images are learnable: nearest class mean on raw pixels beats chance by far', () => {
  const { train, test: te } = generateFixture({ recordsPerBatch: 100, seed: 3 });
  const means = Array.from({ length: 10 }, () => new Float64Array(PIXELS_PER_IMAGE));
  const counts = classCounts(train);
  for (let i = 0; i < train.n; i++) {
    const m = means[train.labels[i]];
    for (let k = 0; k < PIXELS_PER_IMAGE; k++) m[k] += train.images[i * PIXELS_PER_IMAGE + k] / counts[train.labels[i]];
  }
  let ok = 0;
  for (let i = 0; i < te.n; i++) {
    let best = -1;
    let bestD = Infinity;
    means.forEach((m, c) => {
      let d = 0;
      for (let k = 0; k < PIXELS_PER_IMAGE; k++) d += (te.images[i * PIXELS_PER_IMAGE + k] - m[k]) ** 2;
      if (d < bestD) [bestD, best] = [d, c];
    });
    if (best === te.labels[i]) ok++;
  }
  assert.ok(ok / te.n > 0.6, `nearest-mean accuracy ${ok / te.n}`);
  const s = channelStats(train);
  for (const v of s.std) assert.ok(v > 0.1, `std ${v}: images should not be flat`);
});

test('checksum mismatch: the error names the file, the expected and the actual MD5, and the remedy', async () => {
  const root = tmp();
  try {
    const fx = await fixtureIn(root);
    damageFixture(fx.folder, 'flip-byte', 'data_batch_3.bin');
    const file = path.join(fx.folder, 'data_batch_3.bin');
    const actual = md5Hex(fs.readFileSync(file));
    await rejectsData(
      loadCifar10(isolated(path.join(root, 'data'), { path: fx.folder, checksums: fx.checksums })),
      (e) => {
        assert.equal(e.code, 'checksum');
        assert.equal(e.file, file);
        assert.equal(e.expected, fx.checksums['data_batch_3.bin'].md5);
        assert.equal(e.actual, actual);
        assert.ok(e.message.includes(file) && e.message.includes(e.expected!) && e.message.includes(actual), e.message);
        assert.match(e.message, /good copy/);
      },
    );
    // The official checks reject the fixture on size before reading anything.
    await rejectsData(loadCifar10(isolated(path.join(root, 'data'), { path: fx.folder })), (e) => {
      assert.equal(e.code, 'size');
      assert.match(e.message, /data_batch_1\.bin is truncated: expected 30730000 bytes/);
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('truncated file: size error with and without a checksum map', async () => {
  const root = tmp();
  try {
    const fx = await fixtureIn(root);
    damageFixture(fx.folder, 'truncate', 'test_batch.bin');
    const file = path.join(fx.folder, 'test_batch.bin');
    await rejectsData(
      loadCifar10(isolated(path.join(root, 'data'), { path: fx.folder, checksums: fx.checksums })),
      (e) => {
        assert.equal(e.code, 'size');
        assert.equal(e.file, file);
        assert.equal(e.expected, `${R * RECORD_BYTES} bytes`);
        assert.equal(e.actual, `${R * RECORD_BYTES - 1000} bytes`);
        assert.match(e.message, /truncated/);
      },
    );
    await rejectsData(loadCifar10(isolated(path.join(root, 'data'), { path: fx.folder, checksums: 'none' })), (e) => {
      assert.equal(e.code, 'size');
      assert.match(e.message, /not a positive multiple of the 3073-byte record/);
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('wrong layout: bad label byte, missing batch file, missing meta file, folder without CIFAR-10', async () => {
  const root = tmp();
  const dataDir = path.join(root, 'data');
  try {
    const fx = await fixtureIn(root);
    damageFixture(fx.folder, 'bad-label', 'data_batch_4.bin');
    await rejectsData(loadCifar10(isolated(dataDir, { path: fx.folder, checksums: 'none' })), (e) => {
      assert.equal(e.code, 'layout');
      assert.match(e.message, /data_batch_4\.bin: record 0 .*label byte 10, expected 0-9/);
    });
    damageFixture(fx.folder, 'remove', 'data_batch_5.bin');
    await rejectsData(loadCifar10(isolated(dataDir, { path: fx.folder, checksums: 'none' })), (e) => {
      assert.equal(e.code, 'missing');
      assert.equal(e.file, path.join(fx.folder, 'data_batch_5.bin'));
    });
    damageFixture(fx.folder, 'remove', 'batches.meta.txt');
    await rejectsData(loadCifar10(isolated(dataDir, { path: fx.folder, checksums: 'none' })), (e) => {
      assert.equal(e.code, 'missing');
      assert.match(e.message, /batches\.meta\.txt is missing/);
    });
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    await rejectsData(loadCifar10(isolated(dataDir, { path: empty })), (e) => {
      assert.equal(e.code, 'source');
      assert.match(e.message, /holds neither the CIFAR-10 batch files nor a cifar-10-batches-bin\/ folder/);
    });
    await rejectsData(loadCifar10(isolated(dataDir, { path: path.join(root, 'nope') })), (e) =>
      assert.equal(e.code, 'source'),
    );
    // A malformed checksum map is a plain Error about the option, named precisely.
    assert.throws(
      () => fileCheck({ 'data_batch_1.bin': 'x' }, 'data_batch_1.bin'),
      /data_batch_1\.bin has md5 "x", expected 32 hex digits/,
    );
    assert.throws(
      () => fileCheck({ 'data_batch_1.bin': 'a'.repeat(32) }, 'test_batch.bin'),
      /the map has no entry for test_batch\.bin/,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('tarball source: unpacked into the cache once, then the cache is used; folder order and env var', async () => {
  const root = tmp();
  const dataDir = path.join(root, 'data');
  try {
    const fx = await fixtureIn(root, true);
    const a = await loadCifar10(isolated(dataDir, { path: fx.tarball, checksums: fx.checksums }));
    assert.equal(a.source.kind, 'tarball');
    assert.equal(a.source.extracted, true);
    assert.equal(a.source.folder, path.join(dataDir, BATCHES_DIR));
    assert.deepEqual(leftovers(dataDir), [BATCHES_DIR]);
    const want = generateFixture({ recordsPerBatch: R, seed: 7 });
    assert.deepEqual(a.train.images, want.train.images);
    assert.deepEqual(a.test.labels, want.test.labels);

    const b = await loadCifar10(isolated(dataDir, { path: fx.tarball, checksums: fx.checksums }));
    assert.equal(b.source.extracted, false);
    const c = await loadCifar10(isolated(dataDir, { checksums: fx.checksums }));
    assert.equal(c.source.kind, 'cache');
    assert.deepEqual(c.train.labels, want.train.labels);

    // The environment variable is a user path like the option; the option wins over it.
    const e = await loadCifar10({
      ...isolated(path.join(root, 'data2'), { checksums: fx.checksums }),
      env: { [CIFAR10_ENV]: fx.folder },
    });
    assert.equal(e.source.kind, 'folder');
    assert.equal(e.source.via, CIFAR10_ENV);
    assert.match(e.source.line, /\$DINOTWINS_CIFAR10/);
    const f = await loadCifar10({
      ...isolated(path.join(root, 'data2'), { checksums: fx.checksums, path: fx.tarball }),
      env: { [CIFAR10_ENV]: fx.folder },
    });
    assert.equal(f.source.kind, 'tarball');
    await rejectsData(
      loadCifar10({ ...isolated(dataDir, {}), env: { [CIFAR10_ENV]: path.join(root, 'missing.tar.gz') } }),
      (err) => {
        assert.equal(err.code, 'source');
        assert.match(err.message, /from \$DINOTWINS_CIFAR10\) does not exist.*unset DINOTWINS_CIFAR10/);
      },
    );

    // The convenience tarball comes after the cache and before the download.
    const s = await loadCifar10({
      ...isolated(path.join(root, 'data3'), { checksums: fx.checksums }),
      sharedTarball: fx.tarball,
    });
    assert.equal(s.source.kind, 'shared-tarball');
    assert.equal(s.source.extracted, true);
    await rejectsData(loadCifar10(isolated(path.join(root, 'data4'), {})), (err) => {
      assert.equal(err.code, 'source');
      assert.match(err.message, /not found .*downloading is switched off/);
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a failed extraction leaves no cache folder and no temp folder', async () => {
  const root = tmp();
  try {
    const fx = await fixtureIn(root, true);
    // 1. A tarball whose content fails verification.
    const badRoot = path.join(root, 'bad');
    const bad = await writeCifar10Fixture(badRoot, { recordsPerBatch: R, seed: 7 });
    damageFixture(bad.folder, 'flip-byte', 'data_batch_2.bin');
    const badTar = path.join(root, 'bad.tar.gz');
    await tar.c({ gzip: true, file: badTar, cwd: badRoot }, [BATCHES_DIR]);
    const d1 = path.join(root, 'd1');
    await rejectsData(loadCifar10(isolated(d1, { path: badTar, checksums: fx.checksums })), (e) => {
      assert.equal(e.code, 'checksum');
      assert.match(e.message, /Nothing was written to .*cifar-10-batches-bin/);
    });
    assert.deepEqual(leftovers(d1), []);

    // 2. A tarball cut in half (gzip/tar error).
    const cut = path.join(root, 'cut.tar.gz');
    const bytes = fs.readFileSync(fx.tarball!);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    const d2 = path.join(root, 'd2');
    await rejectsData(loadCifar10(isolated(d2, { path: cut, checksums: fx.checksums })), (e) => {
      assert.equal(e.code, 'extract');
      assert.match(e.message, /unexpected end of file/);
    });
    assert.deepEqual(leftovers(d2), []);

    // 3. A tarball without the cifar-10-batches-bin folder.
    const other = path.join(root, 'other.tar.gz');
    await tar.c({ gzip: true, file: other, cwd: fx.folder }, ['data_batch_1.bin']);
    const d3 = path.join(root, 'd3');
    await rejectsData(loadCifar10(isolated(d3, { path: other, checksums: fx.checksums })), (e) => {
      assert.equal(e.code, 'layout');
      assert.match(e.message, /has no cifar-10-batches-bin\/ folder/);
    });
    assert.deepEqual(leftovers(d3), []);

    // 4. Not a tarball at all.
    const junk = path.join(root, 'junk.tar.gz');
    fs.writeFileSync(junk, 'this is not gzip');
    const d4 = path.join(root, 'd4');
    await rejectsData(loadCifar10(isolated(d4, { path: junk, checksums: fx.checksums })), (e) =>
      assert.equal(e.code, 'extract'),
    );
    assert.deepEqual(leftovers(d4), []);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('cleanStaleTemps removes temp folders and partial downloads of dead processes only', () => {
  const root = tmp();
  try {
    const dead = 2 ** 22 + 12345; // above Linux's pid_max default: no such process
    fs.mkdirSync(path.join(root, `.extract-${dead}-abc`));
    fs.writeFileSync(path.join(root, `${TARBALL_NAME}.${dead}.partial`), 'x');
    fs.mkdirSync(path.join(root, `.extract-${process.pid}-live`));
    fs.writeFileSync(path.join(root, `${TARBALL_NAME}.${process.pid}.partial`), 'x');
    const removed = cleanStaleTemps(root).sort();
    assert.deepEqual(removed, [`.extract-${dead}-abc`, `${TARBALL_NAME}.${dead}.partial`].sort());
    assert.deepEqual(
      leftovers(root),
      [`.extract-${process.pid}-live`, `${TARBALL_NAME}.${process.pid}.partial`].sort(),
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** Serves `body` at /ok; /die sends the headers and half the body, then drops the connection; /missing is a 404; /moved redirects to /ok. */
async function serve(body: Buffer): Promise<{ base: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === '/ok') {
      res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/gzip' });
      // Several chunks so the progress line is drawn more than once.
      const step = Math.ceil(body.length / 4);
      for (let i = 0; i < body.length; i += step) res.write(body.subarray(i, i + step));
      res.end();
    } else if (req.url === '/die') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
    } else if (req.url === '/moved') {
      res.writeHead(302, { location: '/ok' });
      res.end();
    } else {
      res.writeHead(404);
      res.end('not here');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { base: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('download: to a .partial file, renamed when complete, then unpacked; a dropped connection leaves nothing', async () => {
  const root = tmp();
  const fx = await fixtureIn(root, true);
  const srv = await serve(fs.readFileSync(fx.tarball!));
  try {
    let progress = '';
    const sink = new Writable({
      write(chunk, _e, cb) {
        progress += String(chunk);
        cb();
      },
    });
    const d1 = path.join(root, 'd1');
    const a = await loadCifar10({
      ...isolated(d1, { checksums: fx.checksums, url: `${srv.base}/moved`, download: true }),
      progress: sink,
    });
    assert.equal(a.source.kind, 'download');
    assert.equal(a.source.location, `${srv.base}/moved`);
    assert.equal(a.source.extracted, true);
    assert.deepEqual(leftovers(d1), [BATCHES_DIR, TARBALL_NAME].sort());
    assert.deepEqual(fs.readFileSync(path.join(d1, TARBALL_NAME)), fs.readFileSync(fx.tarball!));
    assert.deepEqual(a.train.labels, generateFixture({ recordsPerBatch: R, seed: 7 }).train.labels);
    assert.match(progress, /^\rdownloading cifar-10-binary\.tar\.gz: [\d.]+\/[\d.]+ MB \(\d+%\) [\d.]+ MB\/s/);
    assert.match(progress, /\(100%\)/);
    assert.ok(progress.endsWith('\n') && progress.split('\n').length === 2, 'a single updating line');

    const d2 = path.join(root, 'd2');
    await rejectsData(
      loadCifar10(isolated(d2, { checksums: fx.checksums, url: `${srv.base}/die`, download: true })),
      (e) => {
        assert.equal(e.code, 'download');
        assert.equal(e.file, `${srv.base}/die`);
        assert.match(e.message, /nothing was kept/);
      },
    );
    assert.deepEqual(leftovers(d2), []);

    const d3 = path.join(root, 'd3');
    await rejectsData(
      loadCifar10(isolated(d3, { checksums: fx.checksums, url: `${srv.base}/missing`, download: true })),
      (e) => {
        assert.equal(e.code, 'download');
        assert.match(e.message, /HTTP 404/);
      },
    );
    assert.deepEqual(leftovers(d3), []);

    // A complete download whose content fails verification is not kept either.
    const d4 = path.join(root, 'd4');
    const wrong = { ...fx.checksums, 'test_batch.bin': { md5: '0'.repeat(32) } };
    await rejectsData(loadCifar10(isolated(d4, { checksums: wrong, url: `${srv.base}/ok`, download: true })), (e) =>
      assert.equal(e.code, 'checksum'),
    );
    assert.deepEqual(leftovers(d4), []);
  } finally {
    await srv.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  assert.equal(progressLine('x', 5e6, 10e6, 2), 'downloading x: 5.0/10.0 MB (50%) 2.5 MB/s');
});

test('balancedSubset: N per class, deterministic per seed, different across seeds, error when a class is short', () => {
  const { train } = generateFixture({ recordsPerBatch: 40, seed: 1 }); // 200 rows, 20 per class
  const a = balancedSubset(train, 5, 11);
  const b = balancedSubset(train, 5, 11);
  const c = balancedSubset(train, 5, 12);
  assert.equal(a.n, 50);
  assert.deepEqual(classCounts(a), new Array(10).fill(5));
  assert.deepEqual(a.indices, b.indices);
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual(a.indices, c.indices);
  for (let i = 1; i < a.n; i++) assert.ok(a.indices[i] > a.indices[i - 1], 'ascending, no repeats');
  for (let i = 0; i < a.n; i++) {
    const j = a.indices[i];
    assert.equal(a.labels[i], train.labels[j]);
    assert.deepEqual(
      a.images.subarray(i * PIXELS_PER_IMAGE, (i + 1) * PIXELS_PER_IMAGE),
      train.images.subarray(j * PIXELS_PER_IMAGE, (j + 1) * PIXELS_PER_IMAGE),
    );
  }
  assert.throws(() => balancedSubset(train, 21, 0), /class \d has 20 rows, fewer than the 21 asked for/);
  assert.throws(() => balancedSubset(train, 0, 0), /perClass must be a positive integer/);
  assert.throws(() => take(train, [0, 200]), /index 200 at position 1 is outside \[0, 200\)/);
});

test('trainValSplit: class-balanced, disjoint, covers the training set, deterministic, never from test', () => {
  const { train, test: te } = generateFixture({ recordsPerBatch: 40, seed: 2 });
  const s = trainValSplit({ ...train, role: 'train' }, 4, 5);
  assert.equal(s.val.n, 40);
  assert.equal(s.train.n, 160);
  assert.deepEqual(classCounts(s.val), new Array(10).fill(4));
  assert.deepEqual(classCounts(s.train), new Array(10).fill(16));
  const seen = new Set<number>();
  for (const i of s.val.indices) seen.add(i);
  for (const i of s.train.indices) (assert.ok(!seen.has(i), `row ${i} in both`), seen.add(i));
  assert.equal(seen.size, train.n);
  assert.equal(s.val.role, 'val');
  assert.equal(s.train.role, 'train');
  assert.deepEqual(trainValSplit(train, 4, 5).val.indices, s.val.indices);
  assert.notDeepEqual(trainValSplit(train, 4, 6).val.indices, s.val.indices);
  const f = trainValSplit(train, 0.1, 5);
  assert.deepEqual(classCounts(f.val), new Array(10).fill(2));
  assert.throws(
    () => trainValSplit({ ...te, role: 'test' }, 2, 0),
    /role 'test'.*validation must come from the training set/,
  );
  assert.throws(() => trainValSplit(train, 20, 0), /leaves no training rows/);
  assert.throws(() => trainValSplit(train, 1.5, 0), /val must be rows per class/);
});

test('channelStats matches a direct float64 computation; classCounts', () => {
  const { train } = generateFixture({ recordsPerBatch: 20, seed: 4 });
  const s = channelStats(train);
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    let sq = 0;
    const n = train.n * 1024;
    for (let i = c; i < train.images.length; i += 3) sum += train.images[i] / 255;
    const m = sum / n;
    for (let i = c; i < train.images.length; i += 3) sq += (train.images[i] / 255 - m) ** 2;
    assert.ok(Math.abs(s.mean[c] - m) < 1e-12, `mean ${c}`);
    assert.ok(Math.abs(s.std[c] - Math.sqrt(sq / n)) < 1e-9, `std ${c}`);
  }
  assert.deepEqual(classCounts({ labels: Uint8Array.from([0, 3, 3, 9]), n: 4 }), [1, 0, 0, 2, 0, 0, 0, 0, 0, 1]);
});

test('classCountTable: one row per class, a column per split, in the given order', () => {
  const rows = classCountTable(
    { train: { labels: Uint8Array.from([0, 2, 2, 1]), n: 4 }, test: { labels: Uint8Array.from([2, 2, 2]), n: 3 } },
    ['cat', 'dog', 'ship'],
  );
  assert.deepEqual(rows, [
    { class: 'cat', train: 1, test: 0 },
    { class: 'dog', train: 1, test: 0 },
    { class: 'ship', train: 2, test: 3 },
  ]);
  assert.deepEqual(Object.keys(rows[0]), ['class', 'train', 'test']);
  assert.throws(
    () => classCountTable({ train: { labels: Uint8Array.from([3]), n: 1 } }, ['cat', 'dog', 'ship']),
    /label 3 at row 0 is outside \[0, 3\)/,
  );
  assert.throws(() => classCountTable({}, ['cat']), /no splits/);
});

test('classCountTable: a split without labels counts in one last "(no labels)" row', () => {
  // An unlabelled image folder: no classes at all.
  assert.deepEqual(classCountTable({ train: { n: 7 }, val: { n: 2 } }, []), [
    { class: '(no labels)', train: 7, val: 2 },
  ]);
  // Mixed: the labelled split's classes, the unlabelled one's images in the last row only.
  assert.deepEqual(
    classCountTable({ train: { n: 5 }, test: { labels: Uint8Array.from([1, 1, 0]), n: 3 } }, ['a', 'b']),
    [
      { class: 'a', train: 0, test: 1 },
      { class: 'b', train: 0, test: 2 },
      { class: '(no labels)', train: 5, test: 0 },
    ],
  );
});

test('loadCifar10OrFixture: real data when found, the fixture when nothing is found, errors on corrupt data', async () => {
  const root = tmp();
  try {
    const fx = await fixtureIn(root);
    const real = await loadCifar10OrFixture(
      isolated(path.join(root, 'd'), { path: fx.folder, checksums: fx.checksums }),
    );
    assert.equal(real.source.kind, 'folder');
    assert.equal(real.fallbackReason, undefined);
    const fb = await loadCifar10OrFixture(
      isolated(path.join(root, 'd'), { fixture: { recordsPerBatch: 10, seed: 1 } } as LoadOrFixtureOptions),
    );
    assert.equal(fb.source.kind, 'fixture');
    assert.equal(fb.train.n, 50);
    assert.equal(fb.test.role, 'test');
    assert.match(fb.source.line, /FIXTURE .* because real CIFAR-10 unavailable/);
    assert.deepEqual(fb.train.images, generateFixture({ recordsPerBatch: 10, seed: 1 }).train.images);
    await rejectsData(
      loadCifar10OrFixture(isolated(path.join(root, 'd'), { mode: 'real' } as LoadOrFixtureOptions)),
      (e) => assert.equal(e.code, 'source'),
    );
    const forced = await loadCifar10OrFixture({
      ...isolated(path.join(root, 'd'), { path: fx.folder, checksums: fx.checksums }),
      env: { DINOTWINS_DATA: 'fixture' },
    });
    assert.equal(forced.source.kind, 'fixture');
    assert.match(forced.fallbackReason!, /DINOTWINS_DATA=fixture/);
    await assert.rejects(
      loadCifar10OrFixture({ ...isolated(path.join(root, 'd'), {}), env: { DINOTWINS_DATA: 'fake' } }),
      /DINOTWINS_DATA="fake" is not a data mode; valid values: auto, real, fixture/,
    );
    damageFixture(fx.folder, 'flip-byte');
    await rejectsData(
      loadCifar10OrFixture(isolated(path.join(root, 'd'), { path: fx.folder, checksums: fx.checksums })),
      (e) => assert.equal(e.code, 'checksum'),
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

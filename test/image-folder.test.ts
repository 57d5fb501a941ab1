/**
 * Image folders (lib/data/imageFolder.ts): a folder generated here (PNG and JPEG of several sizes, greyscale,
 * alpha, nested class folders, a corrupt file, unsupported extensions, a flat layout, a CSV) checks labels and
 * their order against torchvision's ImageFolder rules, pixels against independently encoded PNGs
 * (lib/viz/png.ts, not sharp), the seeded splits, the cache and its invalidation, the errors, and a two-step
 * pretraining run plus kNN through the existing trainer and monitor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gzipSync } from 'zlib';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { encodePng } from '../lib/viz/png';
import {
  DataError,
  ImageFolderError,
  UnreadableImagesError,
  loadImageFolder,
  trainValSplit,
  take,
  parseCsv,
  parseIdx,
  compareCodePoints,
  writeExampleFolder,
  writeCifar10Fixture,
  EXAMPLE_MARKER,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DEBIAN_DIR,
  FASHION_MNIST_TEST_IMAGES,
  readIdxFile,
  UNLABELLED_EVALUATION,
  MANIFEST_FILE,
  sniffFormat,
  scanImageFolder,
  decodeFiles,
  type LabelledImageFolder,
  type LoadImageFolderOptions,
} from '../lib/data/index';
import { pretrain } from '../lib/train/trainer';
import { resolveConfig } from '../lib/config/config';
import { knnEvaluate } from '../lib/eval/knnMonitor';
import { TINY_RUN } from './helpers';

type Rgb = [number, number, number];
const tmp = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `dt-imgf-${tag}-`));

function put(file: string, bytes: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}

/** Pixels [h, w, c] from a function of (x, y). */
function pixels(w: number, h: number, c: number, f: (x: number, y: number) => number[]): Uint8Array {
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.set(f(x, y), (y * w + x) * c);
  return out;
}

const pattern = (x: number, y: number): Rgb => [(x * 7 + y) % 256, (y * 5 + 3) % 256, (x * y) % 256];
const png = (w: number, h: number, c: 1 | 3 | 4, f: (x: number, y: number) => number[]) =>
  encodePng(pixels(w, h, c, f), w, h, c);
const jpeg = (w: number, h: number, rgb: Rgb) =>
  sharp(Buffer.from(pixels(w, h, 3, () => rgb)), { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 95 })
    .toBuffer();

/** Row `i` of a split as [size*size*3]. */
const row = (images: Uint8Array, i: number, size: number) =>
  images.subarray(i * size * size * 3, (i + 1) * size * size * 3);

/** Every pixel of `img` within `tol` of `rgb` (optionally only columns [x0, x1)). */
function allNear(img: Uint8Array, size: number, rgb: Rgb, tol: number, x0 = 0, x1 = size): boolean {
  for (let y = 0; y < size; y++)
    for (let x = x0; x < x1; x++)
      for (let c = 0; c < 3; c++) if (Math.abs(img[(y * size + x) * 3 + c] - rgb[c]) > tol) return false;
  return true;
}

/**
 * The mixed folder: three classes ('Zebra' sorts before 'ant' by code point, as Python sorts), a nested folder,
 * PNG and JPEG of different sizes, greyscale and alpha, plus unsupported files.
 */
async function mixedFolder(root: string): Promise<void> {
  put(path.join(root, 'Zebra', 'a.png'), png(32, 32, 3, pattern)); // exact at 32
  put(path.join(root, 'Zebra', 'b.jpg'), await jpeg(100, 80, [40, 160, 220])); // uniform JPEG, scaled
  put(
    path.join(root, 'ant', 'g.png'),
    png(32, 32, 1, (x, y) => [(x * 8 + y * 3) % 256]),
  ); // greyscale
  put(
    path.join(root, 'ant', 'z.png'),
    png(48, 32, 3, (x) => (x < 8 || x >= 40 ? [255, 0, 0] : [0, 0, 255])),
  ); // red margins cropped away
  put(
    path.join(root, 'ant', 'sub', 'x.png'),
    png(20, 50, 4, (x, y) => [200, 100, 50, (x + y) % 2 ? 0 : 255]),
  ); // half transparent
  put(
    path.join(root, 'bee', 'w.png'),
    png(96, 64, 3, (x) => (x < 16 || x >= 80 ? [255, 0, 0] : [0, 255, 0])),
  ); // scaled, then cropped
  put(path.join(root, 'bee', 'Y.JPEG'), await jpeg(64, 64, [128, 128, 128])); // upper-case extension
  put(path.join(root, 'bee', 'notes.txt'), 'not an image');
  put(path.join(root, 'bee', 'anim.gif'), 'GIF89a');
  put(path.join(root, 'README'), 'what these are');
  put(path.join(root, '.DS_Store'), 'hidden');
}

const quiet =
  (lines: string[] = []) =>
  (line: string) =>
    void lines.push(line);
const all = { val: 0, test: 0 }; // every image in train, in row order

test('class folders: labels and row order follow torchvision ImageFolder; pixels are resized, cropped and converted', async () => {
  const root = tmp('mixed');
  await mixedFolder(root);
  fs.symlinkSync(path.join('..', '..'), path.join(root, 'ant', 'sub', 'loop')); // back to the root: not walked again
  const lines: string[] = [];
  const d = await loadImageFolder({ path: root, dataDir: tmp('data'), ...all, log: quiet(lines) });
  assert.ok(d.labelled);
  assert.deepEqual(d.classNames, ['Zebra', 'ant', 'bee']);
  // Within 'ant': its own files first, then those of ant/sub (sorted(os.walk())), not plain path order.
  assert.deepEqual(d.train.files, [
    'Zebra/a.png',
    'Zebra/b.jpg',
    'ant/g.png',
    'ant/z.png',
    'ant/sub/x.png',
    'bee/Y.JPEG',
    'bee/w.png',
  ]);
  assert.deepEqual(Array.from(d.train.labels), [0, 0, 1, 1, 1, 2, 2]);
  assert.equal(d.train.numClasses, 3);
  assert.equal(d.train.height, 32);
  assert.equal(d.train.images.length, 7 * 32 * 32 * 3);
  const at = (f: string) => row(d.train.images, d.train.files.indexOf(f), 32);
  assert.deepEqual(at('Zebra/a.png'), pixels(32, 32, 3, pattern), 'a 32x32 PNG is stored unchanged');
  assert.ok(allNear(at('Zebra/b.jpg'), 32, [40, 160, 220], 3), 'a uniform 100x80 JPEG stays uniform');
  assert.deepEqual(
    at('ant/g.png'),
    pixels(32, 32, 3, (x, y) => [0, 1, 2].map(() => (x * 8 + y * 3) % 256)),
    'greyscale becomes three equal channels',
  );
  assert.ok(
    allNear(at('ant/z.png'), 32, [0, 0, 255], 0),
    'the shorter side fits; the centre is kept and the margins are cropped',
  );
  assert.ok(
    allNear(at('ant/sub/x.png'), 32, [200, 100, 50], 1),
    'alpha is dropped and the stored colour kept (transparent pixels are not blackened)',
  );
  const w = at('bee/w.png');
  assert.ok(allNear(w, 32, [0, 255, 0], 2, 4, 28), 'a 96x64 PNG is scaled by its shorter side and centre-cropped');
  assert.equal(sniffFormat(fs.readFileSync(path.join(root, 'bee', 'Y.JPEG'))), 'jpeg');
  // Unsupported files are counted and reported, hidden ones skipped.
  assert.deepEqual(d.unsupported, { '.txt': 1, '.gif': 1, '': 1 });
  assert.ok(
    lines.some((l) =>
      /ignored 3 file\(s\) with unsupported extensions \(1 \(no extension\), 1 \.gif, 1 \.txt\)/.test(l),
    ),
    lines.join('\n'),
  );
  assert.equal(d.identity.source, 'folder');
  assert.equal(d.identity.layout, 'classes');
  assert.match(d.identity.manifestHash, /^[0-9a-f]{16}$/);
  assert.deepEqual(
    compareCodePoints('Zebra', 'ant') < 0 && compareCodePoints('\u{1F600}', '\uFFFD') > 0,
    true,
    'code-point order, astral characters last',
  );
});

test('store sizes 64 and 96 work, and the generalised split helpers keep the image size', async () => {
  const root = tmp('sizes');
  await mixedFolder(root);
  for (const size of [64, 96]) {
    const d = await loadImageFolder({ path: root, dataDir: tmp('data'), imageSize: size, ...all, log: quiet() });
    assert.ok(d.labelled);
    assert.equal(d.train.height, size);
    assert.equal(d.identity.imageSize, size);
    assert.equal(d.train.images.length, 7 * size * size * 3);
    assert.ok(
      allNear(row(d.train.images, d.train.files.indexOf('ant/z.png'), size), size, [0, 0, 255], 1, 4, size - 4),
      'upscaled, the centre is kept (lanczos rings at the cut edges)',
    );
    const t = take(d.train, [6, 0]);
    assert.equal(t.height, size);
    assert.equal(t.numClasses, 3);
    assert.deepEqual(t.images.subarray(size * size * 3), row(d.train.images, 0, size));
    const tv = trainValSplit(d.train, 1, 5);
    assert.equal(tv.val.n, 3, 'one per class of 3 classes');
    assert.equal(tv.train.n + tv.val.n, 7);
    assert.equal(tv.val.images.length, 3 * size * size * 3);
  }
});

/** `perClass` PNGs per class, each a different uniform colour. */
function bigFolder(root: string, classes: string[], perClass: number): void {
  classes.forEach((c, k) => {
    for (let i = 0; i < perClass; i++)
      put(
        path.join(root, c, `img-${String(i).padStart(3, '0')}.png`),
        png(8 + (i % 5), 8, 3, () => [k * 60, i * 4, 255 - i]),
      );
  });
}

test('splits: seeded, by file, per class; disjoint and covering; fractions and counts', async () => {
  const root = tmp('split');
  bigFolder(root, ['a', 'b', 'c'], 20);
  put(
    path.join(root, 'd', 'only-five-0.png'),
    png(8, 8, 3, () => [1, 2, 3]),
  );
  for (let i = 1; i < 5; i++)
    put(
      path.join(root, 'd', `only-five-${i}.png`),
      png(8, 8, 3, () => [i, 2, 3]),
    );
  const dataDir = tmp('data');
  const load = (o: Partial<LoadImageFolderOptions>) =>
    loadImageFolder({ path: root, dataDir, log: quiet(), ...o }) as Promise<LabelledImageFolder>;
  const d = await load({ seed: 1 });
  const perClass = (s: { labels: Uint8Array }) => [0, 1, 2, 3].map((c) => s.labels.filter((y) => y === c).length);
  assert.deepEqual(perClass(d.test), [2, 2, 2, 1], 'round(0.1 * 20) = 2; a class of 5 still gets one');
  assert.deepEqual(perClass(d.val), [2, 2, 2, 1]);
  assert.deepEqual(perClass(d.train), [16, 16, 16, 3]);
  const ids = [...d.train.indices, ...d.val.indices, ...d.test.indices].sort((a, b) => a - b);
  assert.deepEqual(
    ids,
    Array.from({ length: 65 }, (_, i) => i),
    'disjoint, and together every image',
  );
  assert.deepEqual([d.train.role, d.val.role, d.test.role], ['train', 'val', 'test']);
  for (const s of [d.train, d.val, d.test])
    s.indices.forEach((r, i) => assert.equal(s.files[i], d.manifest.rows[r].path));
  const again = await load({ seed: 1 });
  assert.deepEqual(again.test.files, d.test.files, 'same seed, same split');
  assert.deepEqual(again.train.images, d.train.images);
  const other = await load({ seed: 2 });
  assert.notDeepEqual(other.test.files, d.test.files, 'another seed, another split');
  assert.notDeepEqual(other.identity.split, d.identity.split);
  assert.equal(other.identity.manifestHash, d.identity.manifestHash, 'the manifest does not depend on the split');
  const counts = await load({ val: 3, test: 0 });
  assert.deepEqual(perClass(counts.val), [3, 3, 3, 3]);
  assert.equal(counts.test.n, 0);
  await assert.rejects(
    load({ val: 2, test: 3 }),
    (e: unknown) =>
      e instanceof ImageFolderError &&
      e.code === 'split' &&
      /class 'd' has 5 image\(s\): test 3 and val 2 take 3 \+ 2, leaving none for training/.test(e.message),
  );
  await assert.rejects(
    load({ val: 1.5 }),
    (e: unknown) => e instanceof ImageFolderError && e.code === 'split' && /val must be a fraction/.test(e.message),
  );
  await assert.rejects(
    load({ val: 0.5, test: 0.5 }),
    (e: unknown) => e instanceof ImageFolderError && e.code === 'split',
  );
});

test('flat folder: unlabelled, splits without labels, evaluation skipped with a message', async () => {
  const root = tmp('flat');
  for (let i = 0; i < 12; i++)
    put(
      path.join(root, `p${i}.png`),
      png(10 + i, 12, 3, () => [i * 20, 0, 0]),
    );
  put(path.join(root, 'q.jpg'), await jpeg(50, 40, [10, 20, 30]));
  const d = await loadImageFolder({ path: root, dataDir: tmp('data'), log: quiet() });
  assert.equal(d.labelled, false);
  assert.ok(!d.labelled);
  assert.equal(d.evaluationSkipped, UNLABELLED_EVALUATION);
  assert.match(d.evaluationSkipped, /kNN and the linear probe are skipped/);
  assert.equal(d.train.labels, undefined);
  assert.deepEqual(d.classNames, []);
  assert.deepEqual([d.train.n, d.val.n, d.test.n], [11, 1, 1]);
  assert.equal(d.identity.labelled, false);
  assert.equal(d.identity.classes, 0);
  assert.equal(d.layout, 'flat');
  // labels 'none' takes every image below a folder of class folders, unlabelled.
  const nested = tmp('none');
  await mixedFolder(nested);
  fs.symlinkSync('..', path.join(nested, 'bee', 'up')); // a link back up the tree is walked once, not forever
  const n = await loadImageFolder({ path: nested, dataDir: tmp('data'), labels: 'none', ...all, log: quiet() });
  assert.equal(n.labelled, false);
  assert.equal(n.train.n, 7);
  assert.deepEqual(n.train.files, [
    'Zebra/a.png',
    'Zebra/b.jpg',
    'ant/g.png',
    'ant/z.png',
    'ant/sub/x.png',
    'bee/Y.JPEG',
    'bee/w.png',
  ]);
});

test('the cache: a second load reads it; files added, removed, modified or touched are found and only they are decoded', async () => {
  const root = tmp('cache');
  bigFolder(root, ['a', 'b'], 6);
  const dataDir = tmp('data');
  const lines: string[] = [];
  const load = () => loadImageFolder({ path: root, dataDir, ...all, log: quiet(lines) });
  const first = await load();
  assert.equal(first.cache.status, 'decoded');
  assert.equal(first.cache.decoded, 12);
  const dir = first.cache.dir as string;
  assert.ok(dir.startsWith(path.join(dataDir, 'image-folders')));
  assert.ok(fs.existsSync(path.join(dir, MANIFEST_FILE)));
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8'));
  assert.equal(manifest.imageSize, 32);
  assert.deepEqual(Object.keys(manifest.rows[0]).sort(), ['label', 'mtimeMs', 'path', 'sha256', 'size']);

  const hit = await load();
  assert.equal(hit.cache.status, 'hit');
  assert.equal(hit.cache.decoded, 0);
  assert.deepEqual(hit.train.images, first.train.images);
  assert.equal(hit.identity.manifestHash, first.identity.manifestHash);

  lines.length = 0;
  put(
    path.join(root, 'a', 'new.png'),
    png(9, 9, 3, () => [7, 7, 7]),
  );
  const added = await load();
  assert.equal(added.cache.status, 'updated');
  assert.equal(added.cache.decoded, 1);
  assert.deepEqual(added.cache.changes?.added, ['a/new.png']);
  assert.ok(
    lines.some((l) => /changed since it was cached \(1 added \(a\/new\.png\)\); decoding 1 image\(s\)/.test(l)),
    lines.join('\n'),
  );
  assert.equal(added.train.n, 13);
  assert.notEqual(added.identity.manifestHash, first.identity.manifestHash);
  assert.ok(allNear(row(added.train.images, added.train.files.indexOf('a/new.png'), 32), 32, [7, 7, 7], 0));

  lines.length = 0;
  fs.rmSync(path.join(root, 'a', 'new.png'));
  const removed = await load();
  assert.equal(removed.cache.decoded, 0);
  assert.deepEqual(removed.cache.changes?.removed, ['a/new.png']);
  assert.ok(lines.some((l) => /1 removed \(a\/new\.png\)/.test(l)));
  assert.deepEqual(removed.train.images, first.train.images);
  assert.equal(removed.identity.manifestHash, first.identity.manifestHash, 'the same files again: the same hash');

  const f = path.join(root, 'b', 'img-002.png');
  put(
    f,
    png(8, 8, 3, () => [250, 1, 2]),
  );
  fs.utimesSync(f, new Date(), new Date(Date.now() + 5000)); // a new mtime even on coarse file systems
  const modified = await load();
  assert.deepEqual(modified.cache.changes?.modified, ['b/img-002.png']);
  assert.equal(modified.cache.decoded, 1);
  assert.ok(allNear(row(modified.train.images, modified.train.files.indexOf('b/img-002.png'), 32), 32, [250, 1, 2], 0));
  assert.notEqual(modified.identity.manifestHash, first.identity.manifestHash);

  // Touched only: decoded again (its mtime changed) but the content hash, hence the identity, stays.
  fs.utimesSync(f, new Date(), new Date(Date.now() + 10000));
  const touched = await load();
  assert.deepEqual(touched.cache.changes?.modified, ['b/img-002.png']);
  assert.equal(touched.identity.manifestHash, modified.identity.manifestHash);

  // Nothing half-written is left: one pixel file, no temp files.
  assert.deepEqual(fs.readdirSync(dir).sort(), [path.basename(touched.manifest.imagesFile), MANIFEST_FILE].sort());

  // A damaged pixel file is noticed and the folder decoded again.
  fs.truncateSync(path.join(dir, touched.manifest.imagesFile), 100);
  lines.length = 0;
  const repaired = await load();
  assert.equal(repaired.cache.status, 'decoded');
  assert.ok(
    lines.some((l) => /cached images .* have 100 bytes, expected \d+/.test(l)),
    lines.join('\n'),
  );
  assert.deepEqual(repaired.train.images, touched.train.images);

  // Another store size is another cache entry; cache: false writes nothing.
  const noCacheDir = tmp('nocache');
  const off = await loadImageFolder({ path: root, dataDir: noCacheDir, ...all, cache: false, log: quiet() });
  assert.equal(off.cache.status, 'off');
  assert.deepEqual(fs.readdirSync(noCacheDir), []);
  assert.equal(off.identity.manifestHash, repaired.identity.manifestHash);
});

test('decoding holds at most `concurrency` files at once', async () => {
  const root = tmp('conc');
  bigFolder(root, ['a', 'b'], 10);
  const scan = scanImageFolder(root, { labels: 'auto' });
  const tasks = scan.files.map((f, row) => ({ file: path.join(root, f.path), row }));
  const read = fs.promises.readFile;
  let started = 0;
  let done = 0;
  let most = 0;
  (fs.promises as { readFile: unknown }).readFile = (...args: Parameters<typeof read>) => {
    started++;
    most = Math.max(most, started - done);
    return read(...args);
  };
  try {
    const out = new Uint8Array(tasks.length * 8 * 8 * 3);
    const r = await decodeFiles(tasks, out, { size: 8, concurrency: 3, onProgress: (n) => void (done = n) });
    assert.deepEqual(r.failed, []);
  } finally {
    fs.promises.readFile = read;
  }
  assert.equal(started, 20);
  assert.equal(most, 3, 'three files in flight, never more');
});

test('corrupt files: named in an error by default; skipBad skips them and records them in the manifest', async () => {
  const root = tmp('bad');
  bigFolder(root, ['a', 'b'], 5);
  put(path.join(root, 'a', 'broken.jpg'), 'this is not a JPEG');
  const good = png(16, 16, 3, pattern);
  put(path.join(root, 'b', 'cut.png'), good.subarray(0, good.length - 30));
  put(path.join(root, 'b', 'empty.webp'), '');
  const dataDir = tmp('data');
  await assert.rejects(loadImageFolder({ path: root, dataDir, log: quiet() }), (e: unknown) => {
    assert.ok(e instanceof UnreadableImagesError && e instanceof DataError, String(e));
    assert.equal(e.code, 'unreadable');
    assert.deepEqual(
      e.bad.map((b) => b.path),
      ['a/broken.jpg', 'b/cut.png', 'b/empty.webp'],
    );
    assert.match(
      e.message,
      /3 of 13 image\(s\) in .* cannot be decoded: a\/broken\.jpg \(unrecognised content \(not jpeg\/png\/webp\)\); b\/cut\.png \(.+?\); b\/empty\.webp \(the file is empty\)/,
    );
    assert.match(e.message, /pass skipBad \(--skip-bad\)/);
    return true;
  });
  const lines: string[] = [];
  const d = await loadImageFolder({ path: root, dataDir, skipBad: true, ...all, log: quiet(lines) });
  assert.equal(d.cache.status, 'hit', 'the failed load cached what it learnt: nothing is decoded again');
  assert.deepEqual(
    d.skipped.map((b) => b.path),
    ['a/broken.jpg', 'b/cut.png', 'b/empty.webp'],
  );
  assert.equal(d.identity.skipped, 3);
  assert.equal(d.train.n, 10);
  assert.ok(!d.train.files.includes('a/broken.jpg'));
  const m = JSON.parse(fs.readFileSync(path.join(d.cache.dir as string, MANIFEST_FILE), 'utf8'));
  assert.deepEqual(
    m.bad.map((b: { path: string }) => b.path),
    ['a/broken.jpg', 'b/cut.png', 'b/empty.webp'],
  );
  assert.ok(
    lines.some((l) => /skipped 3 unreadable image\(s\) \(all listed in .*manifest\.json\): a\/broken\.jpg/.test(l)),
    lines.join('\n'),
  );
  // Fixing a file: only it is decoded.
  put(path.join(root, 'a', 'broken.jpg'), await jpeg(20, 20, [9, 9, 9]));
  fs.utimesSync(path.join(root, 'a', 'broken.jpg'), new Date(), new Date(Date.now() + 5000));
  const fixed = await loadImageFolder({ path: root, dataDir, skipBad: true, ...all, log: quiet() });
  assert.equal(fixed.cache.decoded, 1);
  assert.equal(fixed.train.n, 11);
  // A GIF behind a .png name is not decoded as an image.
  const gif = tmp('gif');
  bigFolder(gif, ['a', 'b'], 3);
  put(
    path.join(gif, 'a', 'fake.png'),
    await sharp(Buffer.from(pixels(4, 4, 3, () => [1, 2, 3])), { raw: { width: 4, height: 4, channels: 3 } })
      .gif()
      .toBuffer(),
  );
  await assert.rejects(
    loadImageFolder({ path: gif, dataDir, log: quiet() }),
    (e: unknown) =>
      e instanceof UnreadableImagesError && /a\/fake\.png \(the content is gif, not jpeg\/png\/webp\)/.test(e.message),
  );
});

test('bad folders: each error says what was found', async () => {
  const dataDir = tmp('data');
  const load = (p: string, o: Partial<LoadImageFolderOptions> = {}) =>
    loadImageFolder({ path: p, dataDir, log: quiet(), ...o });
  const is = (code: string, re: RegExp) => (e: unknown) =>
    e instanceof ImageFolderError && e.code === code && re.test(e.message);
  await assert.rejects(load(path.join(tmp('x'), 'nope')), is('source', /does not exist/));
  const empty = tmp('empty');
  await assert.rejects(load(empty), is('empty', /is empty: found nothing/));
  fs.mkdirSync(path.join(empty, 'cats'));
  await assert.rejects(load(empty), is('empty', /found 1 folder\(s\) \(cats\) but no files/));
  const docs = tmp('docs');
  put(path.join(docs, 'a.txt'), 'x');
  put(path.join(docs, 'b.txt'), 'x');
  put(path.join(docs, 'c.gif'), 'x');
  await assert.rejects(
    load(docs),
    is(
      'unsupported',
      /holds no supported images: found 3 file\(s\) \(2 \.txt, 1 \.gif\); supported extensions: \.jpg, \.jpeg, \.png, \.webp/,
    ),
  );
  const one = tmp('one');
  bigFolder(one, ['cats'], 4);
  await assert.rejects(
    load(one),
    is('labels', /has one class folder \('cats', 4 images\): a labelled split needs at least 2 classes.*labels 'none'/),
  );
  const unl = await load(one, { labels: 'none' });
  assert.equal(unl.labelled, false, "labels 'none' is the way out");
  const mixed = tmp('mixed');
  bigFolder(mixed, ['a', 'b'], 3);
  put(path.join(mixed, 'stray.png'), png(8, 8, 3, pattern));
  await assert.rejects(
    load(mixed),
    is('layout', /mixes layouts: 1 image\(s\) at the top level \(stray\.png\) beside 2 class folder\(s\) \(a, b\)/),
  );
  const emptyClass = tmp('emptyclass');
  bigFolder(emptyClass, ['a', 'b'], 3);
  put(path.join(emptyClass, 'c', 'readme.txt'), 'x');
  await assert.rejects(load(emptyClass), is('labels', /class folder\(s\) 'c' hold no supported images/));
  const flat = tmp('flatonly');
  put(path.join(flat, 'a.png'), png(8, 8, 3, pattern));
  await assert.rejects(
    load(flat, { labels: 'folders' }),
    is('labels', /labels 'folders' needs class folders .* found 1 file\(s\) at the top level and no subfolders/),
  );
  await assert.rejects(
    load(flat, { imageSize: 3 }),
    is('source', /imageSize must be an integer in \[4, 1024\], got 3/),
  );
  await assert.rejects(
    load(flat, { labels: 'maybe' as never }),
    is('labels', /labels must be one of auto, folders, none/),
  );
});

test('a labels CSV: classes from its labels (numeric labels in numeric order), unlisted images reported, bad rows named', async () => {
  const root = tmp('csv');
  for (let i = 0; i < 9; i++)
    put(
      path.join(root, 'imgs', `${i}.png`),
      png(8, 8, 3, () => [i * 25, 0, 0]),
    );
  put(path.join(root, 'extra.png'), png(8, 8, 3, pattern));
  const csv = path.join(root, 'labels.csv');
  const rows = Array.from({ length: 9 }, (_, i) => `imgs/${i}.png,${[2, 10, 2, 10, 1, 1, 2, 10, 1][i]}`);
  put(csv, `file,label\n${rows.join('\r\n')}\n`);
  const lines: string[] = [];
  const d = await loadImageFolder({ path: root, csv, dataDir: tmp('data'), ...all, log: quiet(lines) });
  assert.ok(d.labelled);
  assert.equal(d.layout, 'csv');
  assert.deepEqual(d.classNames, ['1', '2', '10'], 'numeric labels sort as numbers');
  assert.deepEqual(d.train.files, [
    'imgs/4.png',
    'imgs/5.png',
    'imgs/8.png',
    'imgs/0.png',
    'imgs/2.png',
    'imgs/6.png',
    'imgs/1.png',
    'imgs/3.png',
    'imgs/7.png',
  ]);
  assert.deepEqual(Array.from(d.train.labels), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.ok(
    lines.some((l) => /1 image\(s\) in .* are not listed in .*labels\.csv and are left out/.test(l)),
    lines.join('\n'),
  );
  assert.equal(d.identity.csv, csv);
  // Quoting as RFC 4180.
  assert.deepEqual(
    parseCsv('a,"b ""c"", d"\n\n"e\nf",g', 'x.csv').map((r) => [r.fields, r.line]),
    [
      [['a', 'b "c", d'], 1],
      [['e\nf', 'g'], 3],
    ],
  );
  const is = (re: RegExp) => (e: unknown) => e instanceof ImageFolderError && e.code === 'csv' && re.test(e.message);
  put(csv, 'imgs/0.png,a\nimgs/missing.png,b\n');
  await assert.rejects(
    loadImageFolder({ path: root, csv, dataDir: tmp('data'), log: quiet() }),
    is(/lists 1 file\(s\) that are not supported images .*imgs\/missing\.png \(line 2\)/),
  );
  put(csv, 'imgs/0.png,a\nimgs/0.png,b\n');
  await assert.rejects(
    loadImageFolder({ path: root, csv, dataDir: tmp('data'), log: quiet() }),
    is(/:2: 'imgs\/0\.png' is listed twice \(first on line 1\)/),
  );
  put(csv, 'imgs/0.png,a,extra\n');
  await assert.rejects(
    loadImageFolder({ path: root, csv, dataDir: tmp('data'), log: quiet() }),
    is(/:1: expected 2 fields/),
  );
  put(csv, '../outside.png,a\n');
  await assert.rejects(
    loadImageFolder({ path: root, csv, dataDir: tmp('data'), log: quiet() }),
    is(/leaves the image folder/),
  );
  put(csv, 'imgs/0.png,a\nimgs/1.png,a\n');
  await assert.rejects(
    loadImageFolder({ path: root, csv, dataDir: tmp('data'), log: quiet() }),
    (e: unknown) =>
      e instanceof ImageFolderError &&
      e.code === 'labels' &&
      /the labels CSV .* names one class \('a', 2 images\)/.test(e.message),
  );
});

test('two pretraining steps on a folder through the trainer, then kNN on its validation split (cpu)', async () => {
  await tf.setBackend('cpu');
  const root = tmp('train');
  // 2 classes x 12 images; val and test take one per class, leaving 20 for training: 2 steps of batch 8.
  for (const [k, c] of ['circle', 'stripes'].entries()) {
    for (let i = 0; i < 12; i++) {
      const f =
        k === 0
          ? (x: number, y: number) => ((x - 20) ** 2 + (y - 20) ** 2 < 150 ? [230, 200, 40] : [20, 30, 90])
          : (x: number) => (Math.floor((x + i) / 5) % 2 ? [250, 250, 250] : [120, 20, 20]);
      put(
        path.join(root, c, `${i}.${i % 2 ? 'png' : 'jpg'}`),
        i % 2
          ? png(40 + i, 40, 3, f)
          : await sharp(Buffer.from(pixels(40, 40 + i, 3, f)), { raw: { width: 40, height: 40 + i, channels: 3 } })
              .jpeg()
              .toBuffer(),
      );
    }
  }
  const d = await loadImageFolder({ path: root, dataDir: tmp('data'), log: quiet() });
  assert.ok(d.labelled);
  assert.deepEqual([d.train.n, d.val.n, d.test.n], [20, 2, 2]);
  const before = tf.memory().numTensors;
  const config = resolveConfig({ method: 'barlow', epochs: 1, checkpointEvery: 100 }, { budget: TINY_RUN });
  const r = await pretrain({
    config,
    data: { images: d.train.images, n: d.train.n },
    runDir: tmp('run'),
    dataInfo: { ...d.identity },
  });
  try {
    assert.equal(r.record.status, 'done');
    assert.equal(r.record.step, 2);
    assert.ok(
      r.record.steps.every((s) => Number.isFinite(s.loss)),
      'finite losses',
    );
    const knn = await knnEvaluate(
      { model: r.model },
      { bank: d.train, val: d.val, numClasses: d.classNames.length, k: 5 },
    );
    assert.ok(knn.knnTop1 >= 0 && knn.knnTop1 <= 100, `kNN top-1 ${knn.knnTop1}`);
    assert.ok(Number.isFinite(knn.effectiveRank));
  } finally {
    r.model.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'nothing leaks');
});

/** A stand-in for Debian's dataset-fashion-mnist: gzipped IDX files, `perClass` images of each class. */
function fakeFashionMnist(dir: string, perClass: number): { images: Uint8Array; labels: Uint8Array } {
  const n = 10 * perClass;
  const labels = Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10);
  const images = Uint8Array.from({ length: n * 784 }, (_, j) => (Math.floor(j / 784) * 31 + (j % 784) * 7) % 256);
  const idx = (dims: number[], data: Uint8Array) => {
    const h = Buffer.alloc(4 + 4 * dims.length);
    h.set([0, 0, 8, dims.length]);
    dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
    return gzipSync(Buffer.concat([h, data]));
  };
  put(path.join(dir, FASHION_MNIST_TEST_IMAGES), idx([n, 28, 28], images));
  put(path.join(dir, 't10k-labels-idx1-ubyte.gz'), idx([n], labels));
  return { images, labels };
}

test('the example folder: Fashion-MNIST as greyscale PNG class folders (exact pixels), idempotent; CIFAR-10 when the package is missing', async () => {
  const fm = tmp('fm');
  const src = fakeFashionMnist(fm, 6);
  const out = path.join(tmp('ex'), 'example-images');
  const a = await writeExampleFolder({ out, perClass: 4, seed: 1, fashionMnistDir: fm });
  assert.equal(a.source, 'fashion-mnist');
  assert.equal(a.written, true);
  assert.equal(a.images, 40);
  const markerTime = fs.statSync(path.join(out, EXAMPLE_MARKER)).mtimeMs;
  const again = await writeExampleFolder({ out, perClass: 4, seed: 1, fashionMnistDir: fm });
  assert.equal(again.written, false);
  assert.match(again.line, /already there/);
  assert.equal(fs.statSync(path.join(out, EXAMPLE_MARKER)).mtimeMs, markerTime, 'a second call writes nothing');
  // Loaded at 28 (no resize), every image is its IDX record in three equal channels.
  const d = await loadImageFolder({ path: out, dataDir: tmp('data'), imageSize: 28, ...all, log: quiet() });
  assert.ok(d.labelled);
  assert.deepEqual(d.classNames, [...FASHION_MNIST_CLASSES].sort(compareCodePoints));
  assert.equal(d.train.n, 40);
  assert.deepEqual(Object.keys(d.unsupported), [], 'the marker is hidden');
  for (let i = 0; i < d.train.n; i++) {
    const r: number = Number(/fmnist-test-(\d+)\.png$/.exec(d.train.files[i])?.[1]);
    assert.equal(d.classNames[d.train.labels[i]], FASHION_MNIST_CLASSES[src.labels[r]], d.train.files[i]);
    const want = Uint8Array.from({ length: 28 * 28 * 3 }, (_, j) => src.images[r * 784 + Math.floor(j / 3)]);
    assert.deepEqual(row(d.train.images, i, 28), want, d.train.files[i]);
  }
  // Another request rewrites the folder in place (no leftovers beside it).
  const b = await writeExampleFolder({ out, perClass: 2, seed: 1, fashionMnistDir: fm });
  assert.equal(b.written, true);
  assert.equal(fs.readdirSync(path.join(out, 'bag')).length, 2);
  assert.deepEqual(fs.readdirSync(path.dirname(out)), ['example-images']);
  // Without the package: CIFAR-10's test images (here the generated CIFAR-10 fixture).
  const fx = await writeCifar10Fixture(tmp('cifar'), { recordsPerBatch: 30 });
  const c = await writeExampleFolder({
    out,
    perClass: 2,
    seed: 1,
    fashionMnistDir: false,
    cifar10: { path: fx.folder, checksums: fx.checksums, dataDir: tmp('cdata') },
  });
  assert.equal(c.source, 'cifar10-test');
  assert.equal(c.written, true);
  const cd = await loadImageFolder({ path: out, dataDir: tmp('data'), ...all, log: quiet() });
  assert.ok(cd.labelled);
  assert.deepEqual(cd.classNames, [...fx.classNames].sort(compareCodePoints));
  assert.equal(cd.train.n, 20);
  await assert.rejects(
    writeExampleFolder({
      out: path.join(tmp('none'), 'x'),
      fashionMnistDir: false,
      cifar10: { path: path.join(tmp('nothing'), 'absent') },
    }),
    (e: unknown) =>
      e instanceof DataError &&
      /Fashion-MNIST is not installed \(apt-get install dataset-fashion-mnist\) and CIFAR-10 was not found/.test(
        e.message,
      ),
  );
  assert.throws(
    () => parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0]), 'f.idx'),
    (e: unknown) => e instanceof DataError && /element type 0xd/.test(e.message),
  );
  assert.throws(
    () => parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 0]), 'f.idx'),
    (e: unknown) => e instanceof DataError && e.code === 'size',
  );
});

test("Debian's dataset-fashion-mnist, when installed, has the layout the example folder reads", (t) => {
  if (!fs.existsSync(path.join(FASHION_MNIST_DEBIAN_DIR, FASHION_MNIST_TEST_IMAGES))) {
    t.skip(`skipped: ${FASHION_MNIST_DEBIAN_DIR} is absent (apt-get install dataset-fashion-mnist)`);
    return;
  }
  const images = readIdxFile(path.join(FASHION_MNIST_DEBIAN_DIR, FASHION_MNIST_TEST_IMAGES));
  const labels = readIdxFile(path.join(FASHION_MNIST_DEBIAN_DIR, 't10k-labels-idx1-ubyte.gz'));
  assert.deepEqual(images.dims, [10000, 28, 28]);
  assert.deepEqual(labels.dims, [10000]);
  const counts = new Array(10).fill(0);
  labels.data.forEach((y) => counts[y]++);
  assert.deepEqual(counts, new Array(10).fill(1000), 'the test set has 1,000 images per class');
});

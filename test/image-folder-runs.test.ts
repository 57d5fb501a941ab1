/**
 * Image folders end to end (issue 26): a folder as an experiment's data (lib/protocol/experiment.ts with a DATA spec), its
 * run identity (the manifest hash: a changed folder is a new run, resuming with another folder is refused by name),
 * training and evaluation at 64 px, unlabelled folders (the monitors, embeddings and neighbour grids without
 * labels; kNN and the probe refused with the reason), and `npm run pretrain -- --data FOLDER` with its export and
 * its errors. Folders are generated here; everything trains on the cpu backend with tiny networks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { inspect } from 'util';
import * as tf from '@tensorflow/tfjs';
import { encodePng } from '../lib/viz/png';
import { BUDGETS, Budget, budgetForImageSize, experimentConfig, imageSizeLayer } from '../lib/config/budget';
import { resolveConfig, ConfigError, ConfigLayer } from '../lib/config/config';
import {
  loadExperimentData,
  runPretraining,
  probeRun,
  runBaseline,
  trainedRun,
  evaluationUnavailable,
  experimentRunsDir,
  experimentRunDir,
  UnlabelledDataError,
  LabelledExperimentData,
} from '../lib/protocol/experiment';
import {
  resolveDataSpec,
  ImageFolderError,
  defaultDataDir,
  IMAGE_FOLDER_CACHE,
  UNLABELLED_SUBSET_FACTOR,
} from '../lib/data/index';
import { RunIdentityError, runName } from '../lib/train/runName';
import { readRunRecord } from '../lib/train/runRecord';
import { parseCli } from '../lib/train/cli';
import { embedRuns } from '../lib/protocol/runEmbeddings';
import { embeddingExplorer } from '../lib/viz/embeddingExplorer';
import { neighbourGrid } from '../lib/viz/neighbourGrid';
import { gallery } from '../lib/viz/gallery';
import { readSafetensors } from '../lib/io/safetensors';
import { WEIGHTS_METADATA } from '../lib/io/weights';
import { startCli } from './cli-helpers';

const ROOT = path.join(__dirname, '..');
const tmp = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `dt-fr-${tag}-`));
const quietLog = () => {};

/** `perClass` PNGs of 12x12 per class: a class colour with a per-image gradient, so classes are told apart. */
function classFolder(root: string, classes: readonly string[], perClass: number): void {
  classes.forEach((c, k) => {
    fs.mkdirSync(path.join(root, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = new Uint8Array(12 * 12 * 3);
      for (let p = 0; p < 144; p++)
        px.set([(k * 90 + p) % 256, (i * 20 + (p % 12) * 8) % 256, (255 - k * 80 + i * 3) % 256], p * 3);
      fs.writeFileSync(path.join(root, c, `${String(i).padStart(2, '0')}.png`), encodePng(px, 12, 12, 3));
    }
  });
}

/** Runs beside the test's folders (DINOTWINS_RUNS), the cache of each folder under data/ removed afterwards. */
const runsRoot = tmp('runs');
process.env.DINOTWINS_RUNS = runsRoot;
const folders: string[] = [];
function newFolder(tag: string, classes: readonly string[] = ['ant', 'bee', 'cat'], perClass = 10): string {
  const root = tmp(tag);
  classFolder(root, classes, perClass);
  folders.push(root);
  return root;
}
test.after(() => {
  const cache = path.join(defaultDataDir(), IMAGE_FOLDER_CACHE);
  for (const f of folders) {
    const name = path.basename(f).slice(0, 40);
    if (fs.existsSync(cache))
      for (const d of fs.readdirSync(cache))
        if (d.startsWith(`${name}-`)) fs.rmSync(path.join(cache, d), { recursive: true, force: true });
    fs.rmSync(f, { recursive: true, force: true });
  }
  fs.rmSync(runsRoot, { recursive: true, force: true });
});

/** The smoke budget with `trainPerClass` images per class and a tiny network (1 epoch of batch 8). */
function budgetOf(trainPerClass: number): Budget {
  return {
    ...BUDGETS.smoke,
    trainPerClass,
    probeEpochs: 2,
    pretrain: { ...BUDGETS.smoke.pretrain, backbone: { kind: 'resnet', depth: 18, width: 2 }, epochs: 1, batchSize: 8 },
  };
}
const TINY: ConfigLayer = {
  projector: { hidden: 16, out: 16, layers: 2 },
  augment: { globalSize: 16 },
  logEvery: 1,
  warmupEpochs: 0,
};

const silently = async <T>(f: () => Promise<T>): Promise<T> => {
  const log = console.log;
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
  }
};

test('DATA specs: cifar10 by default, folder paths from a base, options checked by name', () => {
  assert.deepEqual(resolveDataSpec(undefined), { kind: 'cifar10' });
  assert.deepEqual(resolveDataSpec('CIFAR10'), { kind: 'cifar10' });
  assert.deepEqual(resolveDataSpec('data/mine', '/repo'), { kind: 'folder', folder: { path: '/repo/data/mine' } });
  assert.deepEqual(resolveDataSpec('~/pics', '/repo'), {
    kind: 'folder',
    folder: { path: path.join(os.homedir(), 'pics') },
  });
  assert.deepEqual(resolveDataSpec({ path: 'x', imageSize: 64, csv: 'l.csv' }, '/r'), {
    kind: 'folder',
    folder: { path: '/r/x', imageSize: 64, csv: '/r/l.csv' },
  });
  assert.throws(
    () => resolveDataSpec(''),
    (e: unknown) =>
      e instanceof ImageFolderError &&
      /DATA must be 'cifar10', a folder path.*got an empty string/.test((e as Error).message),
  );
  assert.throws(
    () => resolveDataSpec({ path: 'x', size: 64 } as never),
    /DATA: unknown option\(s\) size; an image folder takes path, imageSize/,
  );
  assert.throws(() => resolveDataSpec({ imageSize: 64 } as never), /the folder's path is missing/);
  // A notebook cell that fails on its data prints the one line, not the loader's stack.
  assert.equal(
    inspect(new ImageFolderError('empty', 'image folder /x is empty: found nothing')),
    'ImageFolderError: image folder /x is empty: found nothing',
  );
  assert.equal(
    inspect(new UnlabelledDataError('kNN needs labels: none')),
    'UnlabelledDataError: kNN needs labels: none',
  );
});

test('a labelled folder as experiment data: its splits, the class-balanced subset, the identity and its own runs folder', async () => {
  const root = newFolder('lab', ['ant', 'bee', 'cat'], 10);
  const d = await loadExperimentData(budgetOf(3), { data: root, log: quietLog });
  assert.ok(d.labelled);
  assert.deepEqual(d.classNames, ['ant', 'bee', 'cat']);
  assert.equal(d.imageSize, 32);
  assert.deepEqual([d.val.n, d.test.n], [3, 3], "the folder's own split: 0.1 of 10 per class, rounded, at least one");
  assert.equal(d.train.n, 9, '3 per class');
  assert.deepEqual(Array.from(d.train.labels).sort(), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.equal(d.folder?.root, root);
  assert.deepEqual(d.identity, {
    source: 'folder',
    checksum: d.folder!.identity.manifestHash,
    perClass: 3,
    valPerClass: 0.1,
    splitSeed: 0,
    testPerClass: 0.1,
  });
  assert.equal(d.runsSubdir, path.join('folders', path.basename(root)));
  assert.equal(experimentRunsDir(BUDGETS.smoke, d), path.join(runsRoot, 'smoke', 'folders', path.basename(root)));
  assert.equal(evaluationUnavailable(d), null);
  // A budget asking for more than the smallest class has: every class capped at it.
  const all = await loadExperimentData(budgetOf(100), { data: root, log: quietLog });
  assert.equal(all.train.n, 24);
  assert.match(String(all.protocol.split), /8 per class \(class-balanced; the smallest class has 8\)/);
  // The same images elsewhere are the same data; one changed file is other data, hence another run name.
  const copy = tmp('copy');
  folders.push(copy);
  fs.cpSync(root, copy, { recursive: true });
  const same = await loadExperimentData(budgetOf(3), { data: copy, log: quietLog });
  assert.deepEqual(same.identity, d.identity, 'the manifest hash does not depend on where the folder is');
  const px = new Uint8Array(12 * 12 * 3).fill(7);
  fs.writeFileSync(path.join(copy, 'bee', '04.png'), encodePng(px, 12, 12, 3));
  const changed = await loadExperimentData(budgetOf(3), { data: copy, log: quietLog });
  assert.notEqual(changed.identity.checksum, d.identity.checksum);
  const cfg = experimentConfig('barlow', budgetOf(3), TINY);
  assert.notEqual(runName(cfg, changed.identity), runName(cfg, d.identity), 'a changed folder is a new run');
  // Options reach the loader: labels 'none' makes the same folder unlabelled (another manifest, so other data).
  const none = await loadExperimentData(budgetOf(3), { data: { path: root, labels: 'none' }, log: quietLog });
  assert.equal(none.labelled, false);
  assert.notEqual(none.identity.checksum, d.identity.checksum);
});

test('an unlabelled folder: 10 x trainPerClass images at random, no labels, evaluation refused with the reason', async () => {
  const root = tmp('flat');
  folders.push(root);
  classFolder(root, ['x'], 40);
  for (const f of fs.readdirSync(path.join(root, 'x'))) fs.renameSync(path.join(root, 'x', f), path.join(root, f));
  fs.rmdirSync(path.join(root, 'x'));
  const d = await loadExperimentData(budgetOf(2), { data: root, log: quietLog });
  assert.equal(d.labelled, false);
  if (d.labelled) return;
  assert.deepEqual([d.val.n, d.test.n], [4, 4]);
  assert.equal(d.train.n, 2 * UNLABELLED_SUBSET_FACTOR, '20 of the 32 training images');
  assert.equal(new Set(d.train.files).size, 20);
  assert.equal(d.train.labels, undefined);
  assert.deepEqual(d.classNames, []);
  assert.match(evaluationUnavailable(d)!, /no labels/);
  const again = await loadExperimentData(budgetOf(2), { data: root, log: quietLog });
  assert.deepEqual(again.labelled ? [] : again.train.files, d.train.files, 'the subset is seeded');
  // Pretraining runs with the label-free monitors; kNN, the probe and the supervised baseline say why they cannot run.
  await tf.setBackend('cpu');
  const cfg = experimentConfig('barlow', budgetOf(2), TINY);
  const r = await silently(() => runPretraining(cfg, budgetOf(2), d));
  r.model.dispose();
  assert.equal(r.record.status, 'done');
  const last = r.record.epochs[r.record.epochs.length - 1];
  assert.ok(
    Number.isFinite(last.extra.effectiveRank) &&
      Number.isFinite(last.extra.featureStd) &&
      last.extra.knnTop1 === undefined,
    JSON.stringify(last.extra),
  );
  assert.ok(r.recordFile.startsWith(experimentRunsDir(budgetOf(2), d)));
  await assert.rejects(
    probeRun(r.recordFile, d, 2),
    (e: unknown) =>
      e instanceof UnlabelledDataError &&
      /the linear probe and kNN of run .* needs labels: the image folder has no labels/.test((e as Error).message),
  );
  await assert.rejects(runBaseline('supervised', cfg.backbone, budgetOf(2), d), /the supervised baseline needs labels/);
  // Embeddings, the explorer and the neighbour grid work without labels.
  const base = await silently(() => runBaseline('random-init', cfg.backbone, budgetOf(2), d));
  const before = tf.memory().numTensors;
  const [e] = await embedRuns([readRunRecord(r.recordFile), base], d.train, d.test, {
    numClasses: 0,
    neighbours: 3,
    umap: { seed: 0, nEpochs: 20, nNeighbors: 3 },
  }).then((x) => x.slice(0, 1));
  assert.equal(tf.memory().numTensors, before, 'nothing leaked');
  assert.equal(e.knnTop1, null);
  assert.equal(e.knnPred.length, 0);
  assert.equal(e.neighbours.length, 4 * 3);
  const ex = await embeddingExplorer(
    [e],
    { images: d.test.images, n: d.test.n, classNames: [], height: 32, width: 32 },
    { display: false },
  );
  assert.match(ex.html, /"unlabelled":true/);
  assert.match(ex.html, /Hover over a point: its image \(the images have no labels\)/);
  const grid = neighbourGrid(
    d.test,
    [0, 1],
    d.train,
    { indices: e.neighbours, k: 3 },
    { classNames: [], display: false },
  );
  const html = String(grid.bundle['text/html']);
  assert.match(html, />query #0</);
  assert.match(html, />query #1</);
  assert.equal((html.match(/>#\d+</g) ?? []).length, 6, 'each neighbour captioned by its row');
});

test('a changed folder is a new run; resuming a run folder with another folder is refused naming data.checksum', async () => {
  await tf.setBackend('cpu');
  const a = newFolder('ida', ['ant', 'bee'], 13); // 11 training images per class: 2 steps of 8
  const b = tmp('idb');
  folders.push(b);
  fs.cpSync(a, b, { recursive: true });
  fs.rmSync(path.join(b, 'ant', '03.png'));
  const budget = budgetOf(0);
  const da = await loadExperimentData(budget, { data: a, log: quietLog });
  const db = await loadExperimentData(budget, { data: b, log: quietLog });
  const cfg = experimentConfig('barlow', budget, TINY);
  assert.notEqual(experimentRunDir(cfg, budget, db), experimentRunDir(cfg, budget, da));
  const runDir = path.join(runsRoot, 'explicit-run');
  const r = await silently(() => runPretraining(cfg, budget, da, { runDir, stopAfterSteps: 1 }));
  r.model.dispose();
  assert.equal(r.record.status, 'stopped');
  assert.deepEqual(r.record.dataIdentity, da.identity);
  const recordBefore = fs.readFileSync(path.join(runDir, 'record.json'), 'utf8');
  await assert.rejects(
    silently(() => runPretraining(cfg, budget, db, { runDir })),
    (e: unknown) => {
      assert.ok(e instanceof RunIdentityError, String(e));
      assert.match(
        (e as Error).message,
        new RegExp(
          `is another run than this one: data\\.checksum: recorded "${da.identity.checksum}", now "${db.identity.checksum}"`,
        ),
      );
      return true;
    },
  );
  assert.equal(fs.readFileSync(path.join(runDir, 'record.json'), 'utf8'), recordBefore, 'the run folder is left alone');
  // The same folder resumes and finishes; the cells after training find it under the folder's runs folder.
  const done = await silently(() => runPretraining(cfg, budget, da));
  done.model.dispose();
  assert.equal(done.record.status, 'done');
  const t = trainedRun('barlow', budget, da, TINY);
  assert.equal(t.record.id, runName(cfg, da.identity));
  await assert.rejects(
    probeRun(done.recordFile, await loadExperimentData(budget), 2),
    /was trained on other data \(folder /,
  );
});

test('64 px: the views follow the data, training and the probe run at 64, a ViT for 32 px is refused naming the fix', async () => {
  await tf.setBackend('cpu');
  assert.deepEqual(imageSizeLayer(32), {});
  assert.deepEqual(imageSizeLayer(64), { augment: { globalSize: 64, localSize: 32 } });
  assert.equal(budgetForImageSize(BUDGETS.cpu, 32), BUDGETS.cpu, 'CIFAR-10 configs and run names do not change');
  assert.deepEqual(experimentConfig('dino', budgetForImageSize(BUDGETS.gpu, 96)).augment, {
    ...experimentConfig('dino', BUDGETS.gpu).augment,
    globalSize: 96,
    localSize: 48,
  });
  const root = newFolder('px64', ['ant', 'bee'], 10);
  const budget = budgetForImageSize(budgetOf(4), 64);
  const d = (await loadExperimentData(budget, {
    data: { path: root, imageSize: 64 },
    log: quietLog,
  })) as LabelledExperimentData;
  assert.equal(d.imageSize, 64);
  assert.equal(d.train.images.length, 8 * 64 * 64 * 3);
  const cfg = experimentConfig('barlow', budget, { projector: { hidden: 16, out: 16, layers: 2 }, logEvery: 1 });
  assert.equal(cfg.augment.globalSize, 64);
  const r = await silently(() => runPretraining(cfg, budget, d));
  r.model.dispose();
  assert.equal(r.record.status, 'done');
  assert.ok(Number.isFinite(r.record.epochs[0].extra.knnTop1), 'the kNN monitor ran on 64 px images');
  const p = await probeRun(r.recordFile, d, 2);
  assert.ok(p.knnTestTop1 >= 0 && p.knnTestTop1 <= 100 && p.linear.testTop1 !== null);
  const vit = resolveConfig({
    method: 'barlow',
    backbone: { kind: 'vit', preset: 'tiny4-seed', dim: 8, depth: 1, heads: 2, mlpDim: 8 },
    projector: { hidden: 8, out: 8, layers: 2 },
    epochs: 1,
    batchSize: 8,
    warmupEpochs: 0,
  });
  await assert.rejects(
    silently(() => runPretraining(vit, budget, d)),
    (e: unknown) =>
      e instanceof ConfigError &&
      /the ViT's position embeddings are for 32x32 images \(imageSize 32\), but the data is 64x64: give the backbone imageSize: 64/.test(
        (e as Error).message,
      ),
  );
});

/** `npm run pretrain` on a folder, waited for; returns exit status and output. */
async function cli(args: string[], t: Parameters<typeof startCli>[1]): Promise<{ code: number | null; out: string }> {
  const c = startCli(args, t, { DINOTWINS_RUNS: runsRoot });
  const code = await c.exit;
  return { code, out: c.output() };
}

test('CLI: --data FOLDER trains and probes; the record names the folder; the run exports to safetensors', async (t) => {
  const root = newFolder('cli', ['ant', 'bee', 'cat'], 10);
  const conf = path.join(runsRoot, 'tiny-cli.json');
  fs.writeFileSync(conf, JSON.stringify(TINY));
  const args = [
    '--method',
    'barlow',
    '--data',
    root,
    '--width',
    '2',
    '--batch',
    '8',
    '--epochs',
    '1',
    '--budget',
    'smoke',
    '--config',
    conf,
    '--probe-epochs',
    '2',
  ];
  const r = await cli(args, t);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`image folder: ${root} \\(3 class folders\\); 30 images at 32x32`));
  assert.match(r.out, /split: 24 training, 3 validation and 3 test images; the folder's own split by file \(seed 0\)/);
  assert.match(r.out, /epoch 1\/1: loss [\d.]+, kNN val [\d.]+%/);
  assert.match(
    r.out,
    /probe: kNN test top-1 [\d.]+%, linear probe test top-1 [\d.]+% \(val [\d.]+%; 24 training, 3 test images\)/,
  );
  const recordFile = /run record: (\S+) \(done\)/.exec(r.out)![1];
  assert.equal(path.dirname(path.dirname(recordFile)), path.join(runsRoot, 'smoke', 'folders', path.basename(root)));
  const rec = readRunRecord(recordFile);
  assert.equal(rec.dataIdentity?.source, 'folder');
  assert.equal(rec.data.folder, root);
  assert.equal(rec.dataIdentity?.checksum, rec.data.manifestHash);
  assert.ok((rec.results.linearProbe as { testTop1: number }).testTop1 >= 0);
  // The same command again: the finished run is loaded, not trained again.
  const again = await cli(args, t);
  assert.equal(again.code, 0, again.out);
  assert.match(again.out, /loaded finished run barlow-r18w2-s0-/);
  // Export.
  const out = path.join(runsRoot, 'folder.safetensors');
  const ex = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bin/export.ts'), '--run', path.dirname(recordFile), '--out', out],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DINOTWINS_BACKEND: 'cpu' } },
  );
  assert.equal(ex.status, 0, ex.stdout + ex.stderr);
  const file = readSafetensors(out);
  assert.ok(file.tensors.has('conv1.weight'));
  const data = JSON.parse(file.metadata[WEIGHTS_METADATA.data]);
  assert.deepEqual(data, { identity: rec.dataIdentity, imageSize: 32, folder: root });
});

test('CLI: an unlabelled folder trains and skips the probe with the reason; folder flags without a folder are refused', async (t) => {
  const root = newFolder('clinone', ['ant', 'bee'], 10);
  const conf = path.join(runsRoot, 'tiny-none.json');
  fs.writeFileSync(conf, JSON.stringify(TINY));
  const r = await cli(
    [
      '--method',
      'barlow',
      '--data',
      root,
      '--labels',
      'none',
      '--width',
      '2',
      '--batch',
      '8',
      '--epochs',
      '1',
      '--budget',
      'smoke',
      '--config',
      conf,
    ],
    t,
  );
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /no labels: the image folder has no labels/);
  assert.match(r.out, /epoch 1\/1: loss [\d.]+, effective rank [\d.]+/);
  assert.match(
    r.out,
    /probe: skipped: the image folder has no labels \(a flat folder, or labels 'none'\): kNN and the linear probe are skipped/,
  );
  assert.throws(
    () => parseCli(['--method', 'barlow', '--image-size', '64']),
    /--image-size needs --data FOLDER \(CIFAR-10 is 32x32 and labelled\)/,
  );
  assert.throws(
    () => parseCli(['--method', 'barlow', '--skip-bad', '--labels', 'none']),
    /--skip-bad, --labels need --data FOLDER/,
  );
  assert.throws(
    () => parseCli(['--method', 'barlow', '--data', root, '--image-size', '2']),
    /--image-size must be an integer in \[4, 1024\], got 2/,
  );
  assert.throws(
    () => parseCli(['--method', 'barlow', '--data', root, '--labels', 'maybe']),
    /--labels must be one of auto, folders, none, got "maybe"/,
  );
  assert.throws(
    () => parseCli(['--method', 'barlow', '--data', root, '--val-split', '0.6', '--test-split', '0.5']),
    /--val-split \/ --test-split: val \+ test must leave images for training/,
  );
  assert.deepEqual(parseCli(['--method', 'barlow', '--data', 'rel/dir', '--image-size', '64', '--skip-bad']).data, {
    path: path.resolve('rel/dir'),
    imageSize: 64,
    skipBad: true,
  });
});

test('CLI: bad folders are clear errors (empty, no images, one class, corrupt files) and --skip-bad trains without the corrupt ones', async (t) => {
  const conf = path.join(runsRoot, 'tiny-bad.json');
  fs.writeFileSync(conf, JSON.stringify(TINY));
  const base = [
    '--method',
    'barlow',
    '--width',
    '2',
    '--batch',
    '8',
    '--epochs',
    '1',
    '--budget',
    'smoke',
    '--config',
    conf,
    '--probe-epochs',
    '0',
  ];
  const empty = tmp('empty');
  folders.push(empty);
  const docs = tmp('docs');
  folders.push(docs);
  fs.writeFileSync(path.join(docs, 'a.txt'), 'x');
  fs.writeFileSync(path.join(docs, 'b.gif'), 'x');
  const one = newFolder('one', ['cats'], 4);
  const bad = newFolder('bad', ['ant', 'bee'], 10);
  fs.writeFileSync(path.join(bad, 'ant', 'broken.jpg'), 'not a jpeg');
  const cases: Array<[string[], RegExp]> = [
    [['--data', path.join(empty, 'nope')], /^error: image folder .*nope does not exist$/m],
    [['--data', empty], /^error: .* is empty: found nothing/m],
    [
      ['--data', docs],
      /^error: .* holds no supported images: found 2 file\(s\) \(1 \.gif, 1 \.txt\); supported extensions: \.jpg, \.jpeg, \.png, \.webp/m,
    ],
    [
      ['--data', one],
      /^error: .* has one class folder \('cats', 4 images\): a labelled split needs at least 2 classes/m,
    ],
    [
      ['--data', bad],
      /^error: 1 of 21 image\(s\) in .* cannot be decoded: ant\/broken\.jpg \(unrecognised content \(not jpeg\/png\/webp\)\)\. Fix or delete them, or pass skipBad \(--skip-bad\)/m,
    ],
  ];
  for (const [args, re] of cases) {
    const r = await cli([...base, ...args], t);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, re);
    assert.doesNotMatch(r.out, /\n\s+at /, 'a message, not a stack trace');
  }
  const skip = await cli([...base, '--data', bad, '--skip-bad'], t);
  assert.equal(skip.code, 0, skip.out);
  assert.match(
    skip.out,
    /image folder: skipped 1 unreadable image\(s\) \(all listed in .*manifest\.json\): ant\/broken\.jpg/,
  );
  assert.match(skip.out, /20 images at 32x32, from the cache, 1 skipped/);
});

test('the gallery: the first images of each class, one class per row (blank tiles pad a short class); without labels, the first images', () => {
  const n = 7;
  const images = Uint8Array.from({ length: n * 4 * 4 * 3 }, (_, i) => Math.floor(i / 48) * 30);
  const labels = Uint8Array.from([1, 0, 1, 0, 1, 0, 2]);
  const g = gallery(
    { images, n, height: 4, width: 4, labels },
    { classNames: ['a', 'b', 'c'], perRow: 2, display: false, scale: 1 },
  );
  const captions = [...String(g.bundle['text/html']).matchAll(/overflow-wrap:anywhere">([^<]*)</g)].map((m) => m[1]);
  assert.deepEqual(captions, ['a', 'a', 'b', 'b', 'c', '']);
  const flat = gallery({ images, n, height: 4, width: 4 }, { perRow: 3, rows: 2, display: false });
  assert.deepEqual(
    [...String(flat.bundle['text/html']).matchAll(/overflow-wrap:anywhere">([^<]*)</g)].map((m) => m[1]),
    ['#0', '#1', '#2', '#3', '#4', '#5'],
  );
  assert.throws(
    () => gallery({ images: images.subarray(1), n, height: 4, width: 4 }),
    /gallery: 335 bytes for 7 images of 4x4x3/,
  );
});

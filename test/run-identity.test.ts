/**
 * A run is what it trained on (lib/train/runName.ts): its config without the cadence knobs, and its
 * data (lib/data/dataIdentity.ts). Two CLI-style runs that differ only in --per-class train into two
 * folders; resuming or reloading a folder with other data or another config is refused, naming each
 * difference, and leaves the folder alone; a changed log or checkpoint interval resumes the same
 * folder; a finished run stays finished by its record's own plan; records written before runs had a
 * data identity are refused for resuming but read as before; and the cells after a training cell
 * find its run by the training cell's arguments (trainedRun), finished or not.
 * Runs are tiny (ResNet-18 of width 2, 16x16 views) on the generated fixture, on the cpu backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Budget, BUDGETS, experimentConfig } from '../lib/config/budget';
import { ConfigLayer, PretrainConfig, resolveConfig } from '../lib/config/config';
import {
  ExperimentData,
  loadExperimentData,
  runPretraining,
  RunNotFinishedError,
  trainedRun,
} from '../lib/protocol/experiment';
import { cliBudget, cliRunDir, parseCli } from '../lib/train/cli';
import { readRunRecord, listRunRecords, RunRecord } from '../lib/train/runRecord';
import { RunIdentityError, runDirFor } from '../lib/train/runName';
import { requestInterrupt, InterruptedError } from '../lib/train/interrupt';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { resultRows } from '../lib/results/report';
import { seedGroups } from '../lib/results/seedGroups';

const ROOT = path.join(__dirname, '..');
process.env.DINOTWINS_RUNS = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-identity-'));
process.env.DINOTWINS_DATA = 'fixture';

/** The smoke budget on 2 or 3 images per class: 20 or 30 training images, 2 or 3 steps at batch 10. */
const TINY: ConfigLayer & { backbone: Budget['pretrain']['backbone'] } = {
  backbone: { kind: 'resnet', depth: 18, width: 2 },
  epochs: 1,
  batchSize: 10,
  warmupEpochs: 0,
  logEvery: 1,
  checkpointEvery: 1,
  projector: { hidden: 16, out: 16, layers: 2 },
  augment: { globalSize: 16 },
};
const budgetOf = (perClass: number): Budget => ({
  ...BUDGETS.smoke,
  trainPerClass: perClass,
  knnEvery: Number.MAX_SAFE_INTEGER,
  pretrain: { ...BUDGETS.smoke.pretrain, ...TINY },
});
const barlow = (over: ConfigLayer = {}): PretrainConfig =>
  resolveConfig({ ...over, method: 'barlow' }, { budget: TINY });
const quiet = async <T>(f: () => Promise<T>): Promise<{ value: T; logs: string[] }> => {
  const logs: string[] = [];
  const log = console.log;
  console.log = (...m: unknown[]) => void logs.push(m.join(' '));
  try {
    return { value: await f(), logs };
  } finally {
    console.log = log;
  }
};
const dataCache = new Map<string, ExperimentData>();
async function dataFor(b: Budget, seed = 0): Promise<ExperimentData> {
  const key = `${b.trainPerClass}/${seed}`;
  if (!dataCache.has(key)) dataCache.set(key, await loadExperimentData(b, { seed, allowFixture: true }));
  return dataCache.get(key)!;
}
async function train(
  config: PretrainConfig,
  b: Budget,
  data: ExperimentData,
  opts: Parameters<typeof runPretraining>[3] = {},
): Promise<RunRecord> {
  const r = await quiet(() => runPretraining(config, b, data, opts));
  r.value.model.dispose();
  return r.value.record;
}
const record = (dir: string) => readRunRecord(path.join(dir, 'record.json'));

test('two CLI-style runs that differ only in --per-class train into two folders; the same flags reload their own', async () => {
  await tf.setBackend('cpu');
  const tiny = path.join(process.env.DINOTWINS_RUNS!, 'tiny.json');
  fs.writeFileSync(
    tiny,
    JSON.stringify({ projector: TINY.projector, augment: TINY.augment, warmupEpochs: 0, logEvery: 1 }),
  );
  const cli = (perClass: number) =>
    parseCli([
      '--method',
      'barlow',
      '--width',
      '2',
      '--batch',
      '10',
      '--epochs',
      '1',
      '--per-class',
      String(perClass),
      '--budget',
      'smoke',
      '--knn-every',
      '0',
      '--config',
      tiny,
    ]);
  const dirs: string[] = [];
  for (const perClass of [2, 3]) {
    // What bin/pretrain.ts does: the budget of the flags, its data, then the folder named from config and data.
    const o = cli(perClass);
    const b = cliBudget(o);
    const data = await dataFor(b);
    const dir = cliRunDir(o, data.identity);
    const rec = await train(o.config, b, data, { runDir: dir });
    assert.equal(rec.status, 'done');
    assert.equal(rec.dataIdentity!.perClass, perClass);
    assert.equal(rec.data.n, 10 * perClass);
    assert.equal(rec.totalSteps, perClass);
    dirs.push(dir);
  }
  assert.deepEqual(cli(2).config, cli(3).config, 'the same config');
  assert.notEqual(dirs[0], dirs[1], 'two folders');
  // The same flags again: the same folder, loaded as finished, not trained again.
  const o = cli(2);
  const again = await quiet(() =>
    runPretraining(o.config, cliBudget(o), dataCache.get('2/0')!, {
      runDir: cliRunDir(o, dataCache.get('2/0')!.identity),
    }),
  );
  again.value.model.dispose();
  assert.deepEqual(
    again.logs.filter((l) => l.startsWith('loaded finished run')),
    [`loaded finished run ${path.basename(dirs[0])}: 2 steps, ${(again.value.record.seconds / 60).toFixed(1)} min`],
  );
  assert.deepEqual(again.value.record.resumedFrom, []);
});

test('resuming or reloading a folder with other data or another config is refused, naming each difference; the folder is left alone', async () => {
  await tf.setBackend('cpu');
  const b2 = budgetOf(2);
  const d2 = await dataFor(b2);
  const cfg = barlow({ seed: 1 });
  const dir = runDirFor(cfg, b2, d2.identity);
  const cut = await train(cfg, b2, d2, { stopAfterSteps: 1 }); // checkpoint at step 1 (checkpointEvery 1)
  assert.equal(cut.status, 'stopped');
  const before = fs.readFileSync(path.join(dir, 'record.json'), 'utf8');
  const ckptBefore = fs.readFileSync(path.join(dir, 'checkpoint.ckpt'));
  const refused = async (config: PretrainConfig, b: Budget, data: ExperimentData, re: RegExp) => {
    const tensors = tf.memory().numTensors;
    await assert.rejects(
      quiet(() => runPretraining(config, b, data, { runDir: dir })),
      (e: unknown) => e instanceof RunIdentityError && re.test((e as Error).message),
    );
    assert.equal(tf.memory().numTensors, tensors, 'the refused run built nothing that stays');
    assert.equal(fs.readFileSync(path.join(dir, 'record.json'), 'utf8'), before, 'the record is left alone');
    assert.deepEqual(fs.readFileSync(path.join(dir, 'checkpoint.ckpt')), ckptBefore, 'the checkpoint is left alone');
  };
  // Another subset (--per-class 3 into this folder).
  const b3 = budgetOf(3);
  await refused(
    cfg,
    b3,
    await dataFor(b3),
    /run folder .* \(its record\.json\) is another run than this one: data\.perClass: recorded 2, now 3\. Use a new run folder/,
  );
  // Another source content and split seed (the fixture generated and split with seed 1).
  await refused(
    cfg,
    b2,
    await dataFor(b2, 1),
    /data\.checksum: recorded "[0-9a-f]{16}", now "[0-9a-f]{16}"; data\.splitSeed: recorded 0, now 1/,
  );
  // Another config knob.
  await refused(barlow({ seed: 1, lr: 0.5 }), b2, d2, /config\.lr: recorded 0\.001, now 0\.5/);
  // A checkpoint of another run (the record deleted) is refused as well.
  fs.rmSync(path.join(dir, 'record.json'));
  await assert.rejects(
    quiet(() => runPretraining(barlow({ seed: 1, lr: 0.5 }), b2, d2, { runDir: dir })),
    (e: unknown) =>
      e instanceof RunIdentityError &&
      /the checkpoint .*checkpoint\.ckpt is another run than this one: config\.lr: recorded 0\.001, now 0\.5\./.test(
        (e as Error).message,
      ),
  );
  fs.writeFileSync(path.join(dir, 'record.json'), before);
  // The same run resumes.
  const done = await train(cfg, b2, d2);
  assert.deepEqual([done.status, done.resumedFrom], ['done', [1]]);
});

test('a changed log or checkpoint interval is the same run: it resumes the folder, and the record shows the new cadence', async () => {
  await tf.setBackend('cpu');
  const b = budgetOf(3);
  const data = await dataFor(b);
  const first = barlow({ seed: 2, logEvery: 1, checkpointEvery: 1 });
  const later = barlow({ seed: 2, logEvery: 2, checkpointEvery: 5 });
  const dir = runDirFor(first, b, data.identity);
  assert.equal(runDirFor(later, b, data.identity), dir, 'one folder');
  await train(first, b, data, { stopAfterSteps: 1 });
  const resumed = await train(later, b, data);
  assert.deepEqual([resumed.status, resumed.resumedFrom, resumed.step], ['done', [1], 3]);
  assert.equal((resumed.config as { logEvery: number }).logEvery, 2);
  assert.equal(
    loadCheckpoint<{ config: PretrainConfig }>(path.join(dir, 'checkpoint.ckpt')).meta.config.checkpointEvery,
    5,
  );
});

test("a finished run stays finished by its record's own plan, even reloaded with stopAfterSteps", async () => {
  await tf.setBackend('cpu');
  const b = budgetOf(2);
  const data = await dataFor(b);
  const cfg = barlow({ seed: 3 });
  const done = await train(cfg, b, data);
  assert.deepEqual([done.status, done.step, done.totalSteps], ['done', 2, 2]);
  const reloaded = await train(cfg, b, data, { stopAfterSteps: 1 });
  assert.deepEqual([reloaded.status, reloaded.step, reloaded.totalSteps], ['done', 2, 2]);
  assert.equal(record(runDirFor(cfg, b, data.identity)).status, 'done');
});

test('the committed records (written before runs had a data identity) read as before but cannot be resumed', async () => {
  await tf.setBackend('cpu');
  const committed = path.join(ROOT, 'results', 'cpu', 'runs');
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-history-'));
  for (const f of fs.readdirSync(committed)) {
    fs.mkdirSync(path.join(copy, f.replace(/\.json$/, '')));
    fs.copyFileSync(path.join(committed, f), path.join(copy, f.replace(/\.json$/, ''), 'record.json'));
  }
  const recs = listRunRecords(copy).map((r) => r.record);
  assert.equal(recs.length, fs.readdirSync(committed).length);
  assert.ok(recs.every((r) => r.dataIdentity === undefined));
  const rows = resultRows(recs);
  assert.equal(rows.length, recs.length);
  assert.ok(
    rows.filter((r) => r.linearTest !== null).length === recs.length,
    'every committed run has its linear probe',
  );
  assert.ok(seedGroups(recs).length >= 4, 'grouped over seeds as before');
  // Resuming one: refused, saying why.
  const old = recs.find((r) => r.method === 'barlow')!;
  const dir = path.join(copy, old.id);
  const b = { ...BUDGETS.cpu, trainPerClass: 13, valPerClass: 10 }; // 130 images: one batch of the record's 128
  const data = await dataFor(b);
  await assert.rejects(
    quiet(() => runPretraining(old.config as unknown as PretrainConfig, b, data, { runDir: dir })),
    (e: unknown) =>
      e instanceof RunIdentityError &&
      /written before runs recorded their data, so it cannot be resumed; it stays readable as history\): data: recorded \(none\), now \{"source":"cifar10-fixture"/.test(
        (e as Error).message,
      ),
  );
});

test("trainedRun: the cells after training find the run by the training cell's arguments, finished or not", async () => {
  await tf.setBackend('cpu');
  const b = budgetOf(2);
  const data = await dataFor(b);
  const over: ConfigLayer = { seed: 4 };
  assert.throws(
    () => trainedRun('barlow', b, data, over),
    (e: unknown) =>
      e instanceof RunNotFinishedError &&
      /^no run of this config in .* yet: run the training cell above first$/.test((e as Error).message),
  );
  // Interrupted in its first step (as Kernel > Interrupt): the cells after say so and how to go on.
  const config = experimentConfig('barlow', b, over);
  const err = await quiet(() => runPretraining(config, b, data, { onStep: () => requestInterrupt() })).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof InterruptedError, String(err));
  const id = path.basename(runDirFor(config, b, data.identity));
  assert.throws(
    () => trainedRun('barlow', b, data, over),
    (e: unknown) =>
      e instanceof RunNotFinishedError &&
      (e as Error).message === `run ${id} was interrupted at step 1 of 2; re-run the training cell to resume`,
  );
  // Finished: its record, config and model (from its checkpoint: the trained weights).
  const run = (await quiet(() => runPretraining(config, b, data))).value;
  const t = trainedRun('barlow', b, data, over);
  assert.equal(t.record.id, id);
  assert.equal(t.record.status, 'done');
  assert.deepEqual(t.config, config);
  const [x, y] = [await t.model.student.snapshot(), await run.model.student.snapshot()];
  for (let i = 0; i < x.length; i++) assert.deepEqual(Array.from(x[i].values), Array.from(y[i].values), x[i].name);
  run.model.dispose();
  // Asking again (the next cell) reuses the model: nothing more is allocated.
  const tensors = tf.memory().numTensors;
  assert.equal(trainedRun('barlow', b, data, over).model, t.model);
  assert.equal(tf.memory().numTensors, tensors);
});

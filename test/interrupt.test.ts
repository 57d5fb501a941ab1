/**
 * Interrupts stop work at the next step boundary (lib/train/interrupt.ts): the scope's SIGINT
 * handling, pretraining stopped mid-epoch and in its end-of-epoch evaluation and resumed to the
 * same weights bit for bit (cpu), the linear probe, the supervised baseline, and the CLI (first
 * Ctrl-C stops with a checkpoint, a second one exits at once). The cells after an interrupted
 * training cell: test/run-identity.test.ts (trainedRun).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { inspect } from 'util';
import * as tf from '@tensorflow/tfjs';
import { pretrain, PretrainResult } from '../lib/train/trainer';
import { resolveConfig, ConfigLayer, Method } from '../lib/config/config';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { readRunRecord } from '../lib/train/runRecord';
import { InterruptedError, openInterruptScope, requestInterrupt } from '../lib/train/interrupt';
import { readRunLock } from '../lib/train/runLock';
import { generateFixtureSplit } from '../lib/data/index';
import { extractFeatures } from '../lib/eval/features';
import { linearProbe } from '../lib/eval/linearProbe';
import { trainSupervised, SupervisedResumeState } from '../lib/eval/supervised';
import { buildBackbone } from '../lib/models/index';
import { BUDGETS } from '../lib/config/budget';
import { loadExperimentData, runBaseline } from '../lib/protocol/experiment';
import { cifarSource, startCli, cliArgs, cliConfig, until } from './cli-helpers';
import { TINY_RUN } from './helpers';

const data = generateFixtureSplit(40, 5);

const cfg = (method: Method) => resolveConfig({ method }, { budget: TINY_RUN }); // TINY_RUN acts as a budget: each method keeps the keys it reads
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'dt-int-'));
const losses = (dir: string) => readRunRecord(path.join(dir, 'record.json')).steps.map((s) => [s.step, s.loss]);

async function sameWeights(a: PretrainResult, b: PretrainResult): Promise<void> {
  const [x, y] = [await a.model.student.snapshot(), await b.model.student.snapshot()];
  assert.equal(x.length, y.length);
  for (let i = 0; i < x.length; i++) assert.deepEqual(Array.from(x[i].values), Array.from(y[i].values), x[i].name);
  if (a.model.teacher && b.model.teacher) {
    const [p, q] = [await a.model.teacher.snapshot(), await b.model.teacher.snapshot()];
    for (let i = 0; i < p.length; i++)
      assert.deepEqual(Array.from(p[i].values), Array.from(q[i].values), `teacher ${p[i].name}`);
  }
}

test('a scope owns SIGINT: the first signal asks loops to stop, the second goes to the previous handler; closing restores it', () => {
  const calls: string[] = [];
  const host = () => void calls.push('host');
  process.on('SIGINT', host);
  const writes: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => (writes.push(s), true)) as typeof process.stderr.write;
  try {
    const outer = openInterruptScope('outer work');
    const inner = openInterruptScope('inner work');
    assert.deepEqual(process.listeners('SIGINT').includes(host), false, 'the previous handler is set aside');
    assert.equal(outer.requested, false);
    process.emit('SIGINT', 'SIGINT');
    assert.equal(outer.requested && inner.requested, true);
    assert.deepEqual(calls, [], 'the first signal stays with the scope');
    assert.match(
      writes.join(''),
      /interrupt: stopping outer work at the next step boundary \(interrupt again to give the kernel back now\)/,
    );
    process.emit('SIGINT', 'SIGINT');
    assert.deepEqual(calls, ['host'], 'the second goes to the previous handler (tslab: the cell ends at once)');
    inner.close();
    assert.equal(outer.requested, true, 'an inner close keeps the outer scope');
    outer.close();
    outer.close();
    assert.ok(process.listeners('SIGINT').includes(host), 'restored');
    assert.equal(process.listeners('SIGINT').length, 1);
    const next = openInterruptScope('next work');
    assert.equal(next.requested, false, 'a new scope starts without the old request');
    next.close();
    requestInterrupt(); // outside a scope: nothing to stop
    const later = openInterruptScope('later work');
    assert.equal(later.requested, false);
    later.close();
  } finally {
    process.stderr.write = write;
    process.removeListener('SIGINT', host);
  }
  const e = new InterruptedError('run x was interrupted at step 3 of 10; re-run');
  assert.equal(
    inspect(e),
    'InterruptedError: run x was interrupted at step 3 of 10; re-run',
    'printed as one line, no stack',
  );
});

test('pretraining interrupted mid-epoch: checkpoint at that step, record interrupted, memory freed, lock released; resuming gives the same weights bit for bit (cpu)', async () => {
  await tf.setBackend('cpu');
  for (const method of ['dino-twins', 'barlow'] as Method[]) {
    const c = cfg(method);
    const full = tmp();
    const a = await pretrain({ config: c, data, runDir: full });
    assert.equal(a.record.status, 'done');
    const cut = tmp();
    const before = tf.memory().numTensors;
    // Interrupt while step 4 runs (between checkpoints at 3 and 6, inside epoch 0 of 5 steps).
    const onStep = (s: { step: number }) => void (s.step === 3 && requestInterrupt());
    const err = await pretrain({ config: c, data, runDir: cut, callbacks: { onStep } }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof InterruptedError, `${method}: ${String(err)}`);
    assert.match(
      err.message,
      new RegExp(
        `run ${path.basename(cut)} was interrupted at step 4 of 10; checkpoint written, memory freed\\. Re-run this cell \\(or the same command\\) to resume\\.`,
      ),
    );
    assert.equal(tf.memory().numTensors, before, `${method}: the interrupted run freed its model and optimizer`);
    assert.equal(readRunLock(cut), null, 'lock released');
    const rec = readRunRecord(path.join(cut, 'record.json'));
    assert.equal(rec.status, 'interrupted');
    assert.equal(rec.step, 4);
    assert.equal(loadCheckpoint<{ step: number }>(path.join(cut, 'checkpoint.ckpt')).meta.step, 4);

    const logs: string[] = [];
    const log = console.log;
    console.log = (...m: unknown[]) => void logs.push(m.join(' '));
    const b = await pretrain({ config: c, data, runDir: cut }).finally(() => (console.log = log));
    assert.deepEqual(logs, [`resuming run ${path.basename(cut)} from step 4 of 10 (where it was interrupted)`]);
    assert.equal(b.record.status, 'done');
    assert.deepEqual(b.record.resumedFrom, [4]);
    assert.deepEqual(losses(cut), losses(full), `${method}: per-step losses`);
    assert.deepEqual(
      b.record.epochs.map((e) => e.means),
      a.record.epochs.map((e) => e.means),
    );
    await sameWeights(a, b);
    a.model.dispose();
    b.model.dispose();
  }
});

test('an interrupt during the end-of-epoch evaluation (feature extraction) stops there; the resume runs that evaluation again and finishes identically', async () => {
  await tf.setBackend('cpu');
  const c = cfg('barlow');
  const evalOnce = async (info: { model: PretrainResult['model'] }, interrupt: boolean) => {
    if (interrupt) requestInterrupt();
    const f = await extractFeatures(info.model.backbone, info.model.student, data.images.subarray(0, 16 * 3072), 16, {
      batchSize: 4,
    });
    return { featMean: f.reduce((s, v) => s + v, 0) / f.length };
  };
  const full = tmp();
  const a = await pretrain({ config: c, data, runDir: full, callbacks: { onEpochEnd: (i) => evalOnce(i, false) } });
  const cut = tmp();
  const logs: string[] = [];
  const log = console.log;
  console.log = (...m: unknown[]) => void logs.push(m.join(' '));
  try {
    await assert.rejects(
      pretrain({ config: c, data, runDir: cut, callbacks: { onEpochEnd: (i) => evalOnce(i, i.epoch === 0) } }),
      /was interrupted at step 5 of 10 \(in the evaluation after epoch 1, which runs again on resume\)/,
    );
    assert.equal(
      loadCheckpoint<{ epochEndPending?: number }>(path.join(cut, 'checkpoint.ckpt')).meta.epochEndPending,
      0,
    );
    const b = await pretrain({ config: c, data, runDir: cut, callbacks: { onEpochEnd: (i) => evalOnce(i, false) } });
    assert.deepEqual(
      b.record.epochs,
      a.record.epochs.map((e, k) => ({ ...e, seconds: b.record.epochs[k].seconds })),
    );
    await sameWeights(a, b);
    // A finished run is reloaded, not resumed: one line, no new resume entry.
    const again = await pretrain({ config: c, data, runDir: cut });
    assert.deepEqual(again.record.resumedFrom, [5]);
    assert.match(
      logs.join('\n'),
      new RegExp(`resuming run ${path.basename(cut)} from step 5 of 10 \\(where it was interrupted\\)`),
    );
    assert.match(
      logs[logs.length - 1],
      new RegExp(`^loaded finished run ${path.basename(cut)}: 10 steps, \\d+\\.\\d min$`),
    );
    a.model.dispose();
    b.model.dispose();
    again.model.dispose();
  } finally {
    console.log = log;
  }
});

test('the linear probe and the supervised baseline stop at their next step; the baseline resumes to the same weights', async () => {
  await tf.setBackend('cpu');
  const dim = 8;
  const feats = (n: number, seed: number) =>
    Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i * 0.37 + seed));
  const labels = (n: number) => Array.from({ length: n }, (_, i) => i % 10);
  const before = tf.memory().numTensors;
  await assert.rejects(
    linearProbe({
      dim,
      numClasses: 10,
      train: { features: feats(40, 1), labels: labels(40), n: 40 },
      val: { features: feats(20, 2), labels: labels(20), n: 20 },
      config: { epochs: 5, batchSize: 8 },
      onProgress: (d) => void (d === 2 && requestInterrupt()),
    }),
    (e: unknown) =>
      e instanceof InterruptedError &&
      /linear probe interrupted at epoch 3 of 5 \(setting 1 of 4\); nothing was written/.test(e.message),
  );
  assert.equal(tf.memory().numTensors, before, 'the probe freed its tensors');

  const bb = { kind: 'resnet', depth: 18, width: 2 } as const;
  const labelled = { images: data.images, labels: data.labels, n: data.n };
  const sc = { epochs: 2, batchSize: 8, seed: 1 };
  const full = await trainSupervised(buildBackbone(bb), labelled, sc);
  let saved: SupervisedResumeState | undefined;
  const mid = tf.memory().numTensors;
  await assert.rejects(
    trainSupervised(buildBackbone(bb), labelled, sc, (step) => void (step === 7 && requestInterrupt()), {
      onInterrupt: (s) => void (saved = s),
    }),
    /supervised training interrupted at step 7 of 10/,
  );
  assert.equal(tf.memory().numTensors, mid, 'the interrupted baseline freed its store');
  assert.equal(saved?.step, 7);
  const resumed = await trainSupervised(buildBackbone(bb), labelled, sc, undefined, { resume: saved });
  assert.deepEqual(resumed.history, full.history);
  const [x, y] = [await full.params.snapshot(), await resumed.params.snapshot()];
  for (let i = 0; i < x.length; i++) assert.deepEqual(Array.from(x[i].values), Array.from(y[i].values), x[i].name);
  full.params.dispose();
  resumed.params.dispose();
});

test('runBaseline: an interrupted supervised baseline keeps a checkpoint and an interrupted record; re-running resumes to the same weights', async () => {
  await tf.setBackend('cpu');
  const env = { runs: process.env.DINOTWINS_RUNS, data: process.env.DINOTWINS_DATA };
  const warn = console.warn;
  const log = console.log;
  const logs: string[] = [];
  console.warn = () => {}; // the loud "GENERATED FIXTURE" warning: this test wants the fixture
  console.log = (...m: unknown[]) => void logs.push(m.join(' '));
  try {
    process.env.DINOTWINS_DATA = 'fixture';
    const budget = { ...BUDGETS.smoke, trainPerClass: 6, valPerClass: 2, testLimit: 20 }; // 60 training images
    const data = await loadExperimentData(budget, { allowFixture: true });
    const bb = { kind: 'resnet', depth: 18, width: 2 } as const;
    const opts = { epochs: 2, batchSize: 15 }; // 8 steps
    const ref = tmp();
    process.env.DINOTWINS_RUNS = ref;
    assert.equal((await runBaseline('supervised', bb, budget, data, opts)).status, 'done');
    const cut = tmp();
    process.env.DINOTWINS_RUNS = cut;
    const before = tf.memory().numTensors;
    await assert.rejects(
      runBaseline('supervised', bb, budget, data, {
        ...opts,
        onStep: (step) => void (step === 3 && requestInterrupt()),
      }),
      (e: unknown) =>
        e instanceof InterruptedError &&
        e.message ===
          'the supervised baseline was interrupted at step 3 of 8; checkpoint written, memory freed. Re-run this cell (or the same command) to resume.',
    );
    assert.equal(tf.memory().numTensors, before, 'memory freed');
    const dir = path.join(cut, 'smoke', 'supervised-s0');
    const rec = readRunRecord(path.join(dir, 'record.json'));
    assert.deepEqual([rec.status, rec.step, rec.totalSteps], ['interrupted', 3, 8]);
    assert.equal(readRunLock(dir), null);
    const done = await runBaseline('supervised', bb, budget, data, opts);
    assert.deepEqual([done.status, done.step, done.resumedFrom], ['done', 8, [3]]);
    assert.ok(logs.includes('resuming the supervised baseline from step 3 of 8'), logs.join('\n'));
    const a = loadCheckpoint(path.join(ref, 'smoke', 'supervised-s0', 'checkpoint.ckpt')).groups.student;
    const b = loadCheckpoint(path.join(dir, 'checkpoint.ckpt')).groups.student;
    assert.deepEqual([...b.keys()], [...a.keys()]);
    for (const [k, t] of a) assert.deepEqual(Array.from(b.get(k)!.values), Array.from(t.values), k);
  } finally {
    console.warn = warn;
    console.log = log;
    for (const [k, v] of [
      ['DINOTWINS_RUNS', env.runs],
      ['DINOTWINS_DATA', env.data],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('CLI: Ctrl-C stops at the next step with a checkpoint (exit 130, one line saying how to resume); re-running resumes', async (t) => {
  if (!cifarSource())
    return t.skip('real CIFAR-10 not found (bin/pretrain.ts refuses the fixture); skipping the CLI interrupt test');
  const dir = tmp();
  const runDir = path.join(dir, 'cli-run');
  const args = [...cliArgs(), '--epochs', '40', '--run-dir', runDir, '--config', cliConfig(dir)];
  const stepOf = () =>
    fs.existsSync(path.join(runDir, 'record.json')) ? readRunRecord(path.join(runDir, 'record.json')).step : 0;
  const a = startCli(args, t);
  await until(() => stepOf() >= 10, 120_000, 'the first checkpoint', a.output); // checkpoints at each epoch end (10 steps)
  a.child.kill('SIGINT');
  assert.equal(await a.exit, 130, a.output());
  const rec = readRunRecord(path.join(runDir, 'record.json'));
  assert.equal(rec.status, 'interrupted');
  assert.equal(loadCheckpoint<{ step: number }>(path.join(runDir, 'checkpoint.ckpt')).meta.step, rec.step);
  assert.match(
    a.output(),
    /interrupt: stopping pretraining run cli-run at the next step boundary \(Ctrl-C again to exit now\)/,
  );
  assert.match(
    a.output(),
    new RegExp(
      `\\nrun cli-run was interrupted at step ${rec.step} of 400; checkpoint written, memory freed\\. Re-run this cell \\(or the same command\\) to resume\\.\\n`,
    ),
  );
  assert.equal(readRunLock(runDir), null, 'lock released');

  // Re-run: it resumes where it stopped.
  const b = startCli(args, t);
  await until(
    () => b.output().includes(`resuming run cli-run from step ${rec.step} of 400 (where it was interrupted)`),
    60_000,
    'the resume line',
    b.output,
  );
  await until(() => stepOf() > rec.step, 60_000, 'a step after the resume', b.output);
  b.child.kill('SIGINT');
  assert.equal(await b.exit, 130, b.output());
  assert.equal(readRunRecord(path.join(runDir, 'record.json')).status, 'interrupted');

  fs.rmSync(dir, { recursive: true, force: true });
});

test('a second Ctrl-C exits at once (status 130), and the exit handler still frees the run lock', async (t) => {
  const dir = tmp();
  // A process in a long step that never reaches a boundary: only the second signal can end it.
  const code = `
    const { openInterruptScope } = require(${JSON.stringify(path.join(__dirname, '../lib/train/interrupt.ts'))});
    const { acquireRunLock } = require(${JSON.stringify(path.join(__dirname, '../lib/train/runLock.ts'))});
    acquireRunLock(${JSON.stringify(dir)}, 'a long step');
    openInterruptScope('a long step');
    console.log('ready');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  await until(() => out.includes('ready'), 30_000, 'the child');
  assert.ok(fs.existsSync(path.join(dir, 'run.lock')));
  child.kill('SIGINT');
  await until(
    () => out.includes('interrupt: stopping a long step at the next step boundary (Ctrl-C again to exit now)'),
    10_000,
    'the first signal',
  );
  assert.equal(child.exitCode, null, 'the first Ctrl-C only asks');
  const t0 = Date.now();
  child.kill('SIGINT');
  assert.equal(await exit, 130, out);
  assert.ok(Date.now() - t0 < 2000, `exited ${Date.now() - t0} ms after the second Ctrl-C`);
  assert.match(out, /second Ctrl-C, exiting now \(the last checkpoint is kept\)/);
  assert.equal(readRunLock(dir), null, 'lock freed on exit');
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a scope opened inside vm's breakOnSigint (how tslab runs a cell) still gets the signal: the kernel is not killed", async (t) => {
  // tslab runs each cell's synchronous part with vm breakOnSigint, which restores the SIGINT
  // disposition it found when that part ends; a listener added meanwhile would never be called and
  // the first Kernel > Interrupt killed the kernel.
  const code = `
    const vm = require('vm');
    const { openInterruptScope } = require(${JSON.stringify(path.join(__dirname, '../lib/train/interrupt.ts'))});
    process.on('SIGINT', () => console.log('tslab handler'));
    globalThis.openScope = () => { globalThis.scope = openInterruptScope('a cell'); };
    vm.runInThisContext('openScope()', { breakOnSigint: true });
    setTimeout(() => process.kill(process.pid, 'SIGINT'), 100);
    setTimeout(() => { console.log('requested', globalThis.scope.requested); process.kill(process.pid, 'SIGINT'); }, 400);
    setTimeout(() => { globalThis.scope.close(); console.log('alive'); }, 700);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const [code_, signal] = await new Promise<[number | null, string | null]>((r) =>
    child.on('exit', (c, s) => r([c, s])),
  );
  assert.equal(signal, null, `killed by ${signal}:\n${out}`);
  assert.equal(code_, 0, out);
  assert.match(
    out,
    /interrupt: stopping a cell at the next step boundary \(interrupt again to give the kernel back now\)/,
  );
  assert.match(out, /requested true\ntslab handler\nalive/);
});

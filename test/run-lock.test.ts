/**
 * One writer per run folder (lib/train/runLock.ts): a second writer is refused at once with the
 * holder named; locks of dead processes (exited, killed, pid reused, before a reboot) are taken
 * over with a message; a process that exits frees what it holds; and two pretraining runs on one
 * folder, in one process or from the CLI, leave the first run intact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {
  acquireRunLock,
  readRunLock,
  processStart,
  bootId,
  LockInfo,
  RunLockedError,
  LOCK_FILE,
} from '../lib/train/runLock';
import { pretrain } from '../lib/train/trainer';
import { resolveConfig } from '../lib/config/config';
import { readRunRecord } from '../lib/train/runRecord';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { generateFixtureSplit } from '../lib/data/index';
import { cifarSource, startCli, cliArgs, cliConfig } from './cli-helpers';

const ROOT = path.join(__dirname, '..');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'dt-lock-'));

function fakeLock(dir: string, over: Partial<LockInfo>): void {
  const info: LockInfo = {
    pid: 999_999,
    host: os.hostname(),
    startedAt: '2026-01-01T00:00:00.000Z',
    what: 'pretraining run x',
    command: 'node bin/pretrain.ts',
    bootId: bootId(),
    procStart: null,
    token: 'fake',
    ...over,
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(info));
}

/** A live process that is not this one (its pid and start tick). */
function sleeper(): { pid: number; start: number | null; kill(): Promise<void> } {
  const p = spawn('sleep', ['60'], { stdio: 'ignore' });
  return {
    pid: p.pid!,
    start: processStart(p.pid!),
    kill: () =>
      new Promise((r) => {
        p.on('exit', () => r());
        p.kill('SIGKILL');
      }),
  };
}

test('a second writer is refused at once and the error names the holder; release frees the folder', () => {
  const dir = tmp();
  const a = acquireRunLock(dir, 'pretraining run demo');
  assert.equal(readRunLock(dir)?.pid, process.pid);
  assert.throws(
    () => acquireRunLock(dir, 'linear probe of demo'),
    (e: unknown) =>
      e instanceof RunLockedError &&
      e.holder.pid === process.pid &&
      e.message.startsWith(
        `run folder ${dir} is in use by pretraining run demo (pid ${process.pid} on ${os.hostname()}, this process, since ${a.info.startedAt}; command: `,
      ) &&
      /Only one writer per run folder: wait for it to finish or stop it \(Ctrl-C, or Kernel > Interrupt in its notebook\)\.$/.test(
        e.message,
      ),
  );
  a.release();
  a.release();
  assert.equal(readRunLock(dir), null);
  const b = acquireRunLock(dir, 'again');
  fakeLock(dir, { token: 'someone else' }); // replaced under us: release must not delete another writer's lock
  b.release();
  assert.equal(readRunLock(dir)?.token, 'someone else');
  fs.rmSync(dir, { recursive: true });
});

test('a lock held by another live process is respected; once that process is gone it is taken over with a message', async () => {
  const dir = tmp();
  const s = sleeper();
  fakeLock(dir, { pid: s.pid, procStart: s.start, what: 'pretraining run in another kernel' });
  assert.throws(
    () => acquireRunLock(dir, 'me'),
    (e: unknown) =>
      e instanceof RunLockedError &&
      e.message.includes(
        `in use by pretraining run in another kernel (pid ${s.pid} on ${os.hostname()}, since 2026-01-01T00:00:00.000Z`,
      ),
  );
  await s.kill();
  const msgs: string[] = [];
  const l = acquireRunLock(dir, 'me', { onTakeover: (m) => msgs.push(m) });
  assert.deepEqual(msgs, [
    `run folder ${dir}: taking over the lock of pretraining run in another kernel (pid ${s.pid} on ${os.hostname()}, since 2026-01-01T00:00:00.000Z; command: node bin/pretrain.ts): process ${s.pid} is no longer running.`,
  ]);
  assert.equal(readRunLock(dir)?.pid, process.pid);
  l.release();
  assert.deepEqual(fs.readdirSync(dir), [], 'no temp or stale files left');
  fs.rmSync(dir, { recursive: true });
});

test("stale locks: a reused pid, a lock from before a reboot and an unreadable file are taken over; another host's lock is not", async () => {
  const dir = tmp();
  const s = sleeper();
  const cases: Array<[Partial<LockInfo>, RegExp]> = [
    [{ pid: s.pid, procStart: (s.start ?? 0) + 1 }, /its pid now belongs to another process/],
    [{ pid: s.pid, procStart: s.start, bootId: 'another-boot' }, /the machine has rebooted since/],
  ];
  if (s.start === null || bootId() === null) cases.length = 0; // not Linux: no /proc to check against
  for (const [over, why] of cases) {
    fakeLock(dir, over);
    const msgs: string[] = [];
    acquireRunLock(dir, 'me', { onTakeover: (m) => msgs.push(m) }).release();
    assert.match(msgs[0], why);
  }
  fs.writeFileSync(path.join(dir, LOCK_FILE), 'garbage');
  const msgs: string[] = [];
  acquireRunLock(dir, 'me', { onTakeover: (m) => msgs.push(m) }).release();
  assert.match(msgs[0], /taking over the lock of an unreadable lock file .*: it cannot be read\./);
  fakeLock(dir, { host: 'elsewhere', pid: 1 });
  assert.throws(
    () => acquireRunLock(dir, 'me'),
    /in use by pretraining run x \(pid 1 on elsewhere, .*; if it is gone, delete .*run\.lock\.$/,
  );
  await s.kill();
  fs.rmSync(dir, { recursive: true });
});

test('a process that exits frees its locks; one that is killed leaves a lock the next writer takes over', () => {
  const dir = tmp();
  const child = (code: string) =>
    spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `const { acquireRunLock } = require(${JSON.stringify(path.join(ROOT, 'lib/train/runLock.ts'))}); acquireRunLock(${JSON.stringify(dir)}, 'child'); ${code}`,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
  const exited = child('process.exit(130);');
  assert.equal(exited.status, 130, exited.stderr);
  assert.equal(readRunLock(dir), null, 'released by the exit handler');
  const killed = child("process.kill(process.pid, 'SIGKILL');");
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal(readRunLock(dir)?.what, 'child', 'a killed process cannot clean up');
  const msgs: string[] = [];
  acquireRunLock(dir, 'next run', { onTakeover: (m) => msgs.push(m) }).release();
  assert.match(msgs[0], /taking over the lock of child \(pid \d+ .*\): process \d+ is no longer running\./);
  fs.rmSync(dir, { recursive: true });
});

test('two pretraining runs on one folder in one process (two notebook cells): the second is refused at once, the first finishes intact', async () => {
  await tf.setBackend('cpu');
  const data = generateFixtureSplit(40, 5);
  const c = resolveConfig({
    method: 'barlow',
    backbone: { kind: 'resnet', depth: 18, width: 2 },
    epochs: 1,
    batchSize: 8,
    augment: { globalSize: 16 },
    projector: { hidden: 16, out: 16, layers: 2 },
  });
  const dir = path.join(tmp(), 'run');
  const first = pretrain({ config: c, data, runDir: dir });
  const t0 = Date.now();
  await assert.rejects(
    pretrain({ config: c, data, runDir: dir }),
    (e: unknown) =>
      e instanceof RunLockedError &&
      e.message.includes('in use by pretraining run run (pid') &&
      e.message.includes('this process'),
  );
  assert.ok(Date.now() - t0 < 1000, 'refused at once');
  const r = await first;
  assert.equal(r.record.status, 'done');
  assert.equal(readRunRecord(path.join(dir, 'record.json')).step, 5);
  assert.equal(loadCheckpoint<{ step: number }>(path.join(dir, 'checkpoint.ckpt')).meta.step, 5);
  assert.equal(readRunLock(dir), null);
  r.model.dispose();
});

test('CLI: a second `npm run pretrain` on a folder in use exits at once naming the holder; the first run finishes intact', async (t) => {
  if (!cifarSource())
    return t.skip('real CIFAR-10 not found (bin/pretrain.ts refuses the fixture); skipping the CLI lock test');
  const dir = tmp();
  const runDir = path.join(dir, 'shared-run');
  const args = [...cliArgs(), '--epochs', '3', '--run-dir', runDir, '--config', cliConfig(dir)];
  const a = startCli(args, t);
  const t0 = Date.now();
  while (readRunLock(runDir) === null) {
    if (Date.now() - t0 > 60_000) throw new Error(`no lock after 60 s:\n${a.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const b = startCli(args, t);
  assert.equal(await b.exit, 1, b.output());
  assert.match(
    b.output(),
    new RegExp(
      `error: run folder ${runDir} is in use by pretraining run shared-run \\(pid ${a.child.pid} on ${os.hostname()}, since \\S+; command: node pretrain.ts .*\\)\\. Only one writer per run folder`,
    ),
  );
  assert.equal(await a.exit, 0, a.output());
  const rec = readRunRecord(path.join(runDir, 'record.json'));
  assert.equal(rec.status, 'done');
  assert.equal(rec.step, 30);
  assert.deepEqual(rec.resumedFrom, []);
  assert.deepEqual(
    rec.steps.map((s) => s.step),
    Array.from({ length: 30 }, (_, i) => i),
    'one writer: every step logged once, in order',
  );
  assert.equal(loadCheckpoint<{ step: number }>(path.join(runDir, 'checkpoint.ckpt')).meta.step, 30);
  fs.rmSync(dir, { recursive: true, force: true });
});

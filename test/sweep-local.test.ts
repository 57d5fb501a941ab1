/**
 * The local engine and the one-run task on the smoke budget (tiny real runs, wasm): a finished run
 * is skipped untouched, a half-done one resumes from its checkpoint, a failing one does not stop
 * the sweep, the probe runs once; a task killed with SIGTERM leaves a checkpoint and a record that
 * says so, and running it again resumes. `sweepResults` reads whatever records exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { selectBackend } from '../lib/backend/select';
import { BUDGETS } from '../lib/config/budget';
import { ExperimentData, loadExperimentData, runPretraining } from '../lib/protocol/experiment';
import { readRunRecord } from '../lib/train/runRecord';
import { expandSweep, SweepSpec } from '../lib/sweep/spec';
import { runOne, runSweepLocal } from '../lib/sweep/local';
import { runSweep } from '../lib/sweep/run';
import { runProgress, sweepResults } from '../lib/sweep/records';

const ROOT = path.join(__dirname, '..');
process.env.DINOTWINS_RUNS = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-sweep-local-'));

let data: ExperimentData | undefined;
async function smokeData(): Promise<ExperimentData> {
  await selectBackend({ force: 'wasm', print: false });
  data ??= await loadExperimentData(BUDGETS.smoke);
  return data;
}

const record = (dir: string) => readRunRecord(path.join(dir, 'record.json'));

test('local engine: skips the finished run untouched, resumes the half-done one, survives a failing one, skips held runs', async () => {
  const d = await smokeData();
  const spec: SweepSpec = {
    name: 'local',
    budget: 'smoke',
    methods: ['barlow'],
    base: { epochs: 1, checkpointEvery: 2 },
    seeds: [0, 1, 2, 3],
  };
  const plan = expandSweep(spec, d.identity);
  const [finished, half, broken, held] = plan.runs;
  assert.equal(
    sweepResults(plan).every((r) => r.status === 'not-started' && r.knnVal === null),
    true,
  );

  assert.equal(await runOne(plan, finished, d, { log: () => {} }), 'trained');
  const finishedBefore = fs.readFileSync(path.join(finished.dir, 'record.json'), 'utf8');
  const cut = await runPretraining(half.config, plan.budget, d, { runDir: half.dir, stopAfterSteps: 5 }); // checkpoint at step 4
  cut.model.dispose();
  assert.equal(runProgress(half).state, 'partial');
  assert.equal(runProgress(half).checkpoint, true);
  assert.equal(
    runProgress(half).checkpointStep,
    null,
    'stopAfterSteps went past the checkpoint: the record cannot tell its step',
  );
  fs.mkdirSync(broken.dir, { recursive: true });
  fs.writeFileSync(path.join(broken.dir, 'checkpoint.ckpt'), 'not a checkpoint');

  const lines: string[] = [];
  const s = await runSweepLocal(plan, {
    data: d,
    held: new Map([[held.rel, 'Slurm job 7, task 3: RUNNING']]),
    log: (l) => lines.push(l),
  });
  assert.deepEqual(s.skipped, [finished.rel]);
  assert.deepEqual(s.trained, [half.rel]);
  assert.deepEqual(s.held, [held.rel]);
  assert.deepEqual(
    s.failed.map((f) => f.run),
    [broken.rel],
  );
  assert.match(s.failed[0].error, /checkpoint/i);
  assert.ok(lines.includes(`${finished.rel}: done, skipped`), lines.join('\n'));
  assert.ok(lines.includes(`${held.rel}: skipped, held by Slurm job 7, task 3: RUNNING`));
  assert.ok(
    lines.some((l) => l.startsWith(`${half.rel}: resuming (stopped at 5/8 (has a checkpoint))`)),
    lines.join('\n'),
  );

  assert.equal(
    fs.readFileSync(path.join(finished.dir, 'record.json'), 'utf8'),
    finishedBefore,
    'a finished run is not touched',
  );
  const h = record(half.dir);
  assert.equal(h.status, 'done');
  assert.deepEqual(h.resumedFrom, [4]);

  const rows = sweepResults(plan);
  assert.deepEqual(
    rows.map((r) => r.status),
    ['done', 'done', 'not-started', 'not-started'],
  );
  assert.deepEqual(
    rows.map((r) => r.seed),
    [0, 1, 2, 3],
  );
  for (const r of rows.slice(0, 2)) {
    assert.equal(r.steps, '8/8');
    assert.ok(r.knnVal !== null && r.knnVal >= 0 && r.knnVal <= 100, `kNN val ${r.knnVal}`);
    assert.ok(r.featStd !== null && r.featStd > 0);
    assert.equal(r.teacherEntropy, null, 'Barlow Twins logs no teacher entropy');
  }
});

test('a sweep that asks for the probe probes a finished run without training it again', async () => {
  const d = await smokeData();
  const spec: SweepSpec = {
    name: 'probe',
    budget: 'smoke',
    methods: ['barlow'],
    base: { epochs: 1, checkpointEvery: 2 },
    seeds: [0],
    probe: true,
  };
  const plan = expandSweep(spec, d.identity);
  const run = plan.runs[0]; // the same run (folder) as seed 0 of the test above when it ran first; trained here otherwise
  if (runProgress(run).state !== 'done')
    await runOne({ ...plan, spec: { ...spec, probe: false } }, run, d, { log: () => {} });
  const before = record(run.dir);
  assert.equal(runProgress(run, true).state, 'needs-probe');
  const s = await runSweepLocal(plan, { data: d, log: () => {} });
  assert.deepEqual(s.probed, [run.rel]);
  const after = record(run.dir);
  assert.deepEqual(after.resumedFrom, before.resumedFrom, 'not trained again');
  assert.equal(after.seconds, before.seconds);
  const row = sweepResults(plan)[0];
  assert.equal(row.status, 'done');
  assert.ok(row.linearTest !== null && row.knnTest !== null, JSON.stringify(row));
  assert.deepEqual((await runSweepLocal(plan, { data: d, log: () => {} })).skipped, [run.rel]);
});

/** Runs `bin/sweep.ts SPEC --task --run REL` in a child process; `onStart` gets the child. */
function task(
  specFile: string,
  rel: string,
  onStart?: (child: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/sweep.ts', specFile, '--task', '--run', rel], {
      cwd: ROOT,
      env: { ...process.env, DINOTWINS_BACKEND: 'wasm' },
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    onStart?.(child);
  });
}

test('a task killed with SIGTERM (what scancel and time limits send) leaves a checkpoint; the next task resumes it', async () => {
  const spec: SweepSpec = {
    name: 'term',
    budget: 'smoke',
    methods: ['barlow'],
    base: { epochs: 2, checkpointEvery: 2 },
    seeds: [5],
  };
  const plan = expandSweep(spec, (await smokeData()).identity); // the task loads the same data and names the run the same
  const run = plan.runs[0];
  const specFile = path.join(process.env.DINOTWINS_RUNS!, 'term.json');
  fs.writeFileSync(specFile, JSON.stringify(spec));
  const recFile = path.join(run.dir, 'record.json');
  const first = await task(specFile, run.rel, (child) => {
    const poll = setInterval(() => {
      try {
        const r = readRunRecord(recFile);
        if (r.status === 'running' && r.step >= 2) {
          clearInterval(poll);
          child.kill('SIGTERM');
        }
      } catch {
        // not written yet, or being replaced
      }
    }, 100);
    child.on('close', () => clearInterval(poll));
  });
  assert.equal(first.code, 143, first.out);
  assert.match(first.out, /SIGTERM \(Slurm cancelled the task/);
  const cut = readRunRecord(recFile);
  // With the trainer's interrupt handler (lib/train/interrupt.ts) the run stops at its next step with a
  // checkpoint there and says "interrupted"; without one the task marks the record failed and exits.
  const hasInterruptHandler = fs.existsSync(path.join(ROOT, 'lib', 'train', 'interrupt.ts'));
  if (hasInterruptHandler) {
    assert.equal(cut.status, 'interrupted', cut.message);
    assert.match(
      first.out,
      /stopped after SIGTERM: interrupted at \d+\/16 \(checkpoint at \d+\); re-submit the sweep to resume it/,
    );
  } else {
    assert.equal(cut.status, 'failed');
    assert.match(cut.message ?? '', /killed by SIGTERM/);
  }
  assert.ok(cut.step >= 2 && cut.step < 16, `stopped at step ${cut.step}`);
  assert.equal(runProgress(run).checkpointStep, cut.step);

  const second = await task(specFile, run.rel);
  assert.equal(second.code, 0, second.out);
  const done = readRunRecord(recFile);
  assert.equal(done.status, 'done');
  assert.deepEqual(done.resumedFrom, [cut.step]);
  const third = await task(specFile, run.rel);
  assert.equal(third.code, 0);
  assert.match(third.out, /already done, nothing to do/);
});

test('runSweep: "slurm" without sbatch trains here and says so; a bar per run ends at its last step; failures are thrown together', async () => {
  const d = await smokeData();
  const plan = expandSweep(
    { name: 'engine', budget: 'smoke', methods: ['barlow'], base: { epochs: 1 }, seeds: [5, 6] },
    d.identity,
  );
  const [good, broken] = plan.runs;
  fs.mkdirSync(broken.dir, { recursive: true });
  fs.writeFileSync(path.join(broken.dir, 'checkpoint.ckpt'), 'not a checkpoint');
  const lines: string[] = [];
  const drawn: string[] = [];
  const stream = { isTTY: false, write: (s: string) => (drawn.push(s), true) } as unknown as NodeJS.WriteStream;
  await assert.rejects(
    runSweep(plan, {
      engine: 'slurm',
      env: { PATH: '' },
      data: d,
      log: (l) => lines.push(l),
      progress: { mode: 'log', stream, logIntervalMs: 60_000 },
    }),
    new RegExp(
      `^Error: 1 of 2 runs of engine failed: ${broken.rel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*checkpoint`,
      'i',
    ),
  );
  assert.equal(lines[0], 'engine "slurm", but sbatch is not on the PATH: training here instead');
  assert.equal(record(good.dir).status, 'done');
  const total = record(good.dir).totalSteps;
  assert.match(
    drawn[drawn.length - 1],
    new RegExp(`^${good.label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} 100% \\|#+\\| ${total}/${total} `),
    drawn.join(''),
  );
  // Run again: the finished run is skipped without a bar, the broken one fails again.
  drawn.length = 0;
  await assert.rejects(
    runSweep(plan, { data: d, log: () => {}, progress: { mode: 'log', stream } }),
    /1 of 2 runs of engine failed/,
  );
  assert.deepEqual(drawn, []);
  await assert.rejects(
    runSweep(plan, { engine: 'cluster' as never }),
    /engine must be 'local' or 'slurm', got "cluster"/,
  );
});

/**
 * The Slurm engine. Without a cluster: the job script (array, throttle, logs, pass-through flags,
 * one case per run; bash accepts it), squeue/sacct parsing on real output, the status verdicts,
 * a dry run, and the CLI's message where sbatch is missing. With a cluster (scripts/test.sh starts
 * the one-node test cluster of scripts/slurm-test-cluster.sh when it can): a smoke sweep of 4 runs
 * through sbatch, 2 at once; one task is cancelled midway, the sweep re-submitted; then every record
 * is complete, the results table lists all runs, and the status shows what sacct says about the
 * cancelled task.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expandSweep, SweepPlan, SweepSpec } from '../lib/sweep/spec';
import { CIFAR10_SOURCE } from '../lib/data/dataIdentity';
import { loadExperimentData } from '../lib/protocol/experiment';
import { BUDGETS } from '../lib/config/budget';
import {
  arraySpec,
  onPath,
  parseSacct,
  parseSqueue,
  readLedger,
  sbatchScript,
  shq,
  submitSweep,
  TaskState,
} from '../lib/sweep/slurm';
import { sweepStatusFrom, formatStatus } from '../lib/sweep/status';
import { readRunRecord, RunRecord, writeRunRecord } from '../lib/train/runRecord';
import { sweepResults } from '../lib/sweep/records';

const ROOT = path.join(__dirname, '..');

/** A fresh, empty runs folder for one test (sweeps of a budget share run folders, so tests do not). */
function freshRuns(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-sweep-slurm-'));
  process.env.DINOTWINS_RUNS = dir;
  return dir;
}

const SMOKE4: SweepSpec = {
  name: 'smoke4',
  budget: 'smoke',
  methods: ['barlow', 'dino-twins'],
  base: { checkpointEvery: 2 },
  seeds: [0, 1],
  slurm: { maxRunning: 2, time: '00:20:00' },
};

/** A minimal run record in `run`'s folder. */
function fakeRecord(plan: SweepPlan, i: number, status: RunRecord['status'], step: number): void {
  const run = plan.runs[i];
  fs.mkdirSync(run.dir, { recursive: true });
  fs.writeFileSync(path.join(run.dir, 'checkpoint.ckpt'), '');
  writeRunRecord(path.join(run.dir, 'record.json'), {
    format: 'dinotwins-run/1',
    id: run.id,
    kind: 'pretrain',
    status,
    method: run.method,
    budget: 'smoke',
    config: run.config as never,
    backend: null,
    git: { commit: null, dirty: null },
    seed: run.seed,
    data: {},
    startedAt: new Date().toISOString(),
    updatedAt: '',
    seconds: 1,
    step,
    totalSteps: 16,
    epochs: [],
    steps: [],
    results: {},
    checkpoint: path.join(run.dir, 'checkpoint.ckpt'),
    resumedFrom: [],
  });
}

test('array spec: ranges, lists and the %N throttle', () => {
  assert.equal(arraySpec([0, 1, 2, 3], 2), '0-3%2');
  assert.equal(arraySpec([7, 2, 3, 4, 9]), '2-4,7,9');
  assert.equal(arraySpec([5], 1), '5%1');
  assert.equal(shq("it's"), `'it'\\''s'`);
});

test('the job script: one array task per run, logs per task, options passed through; bash accepts it', () => {
  const runs = freshRuns();
  const plan = expandSweep(SMOKE4, CIFAR10_SOURCE);
  const text = sbatchScript(
    plan,
    [plan.runs[0], plan.runs[2], plan.runs[3]],
    {
      maxRunning: 2,
      partition: 'gpu',
      time: '01:30:00',
      gpusPerTask: 1,
      cpusPerTask: 4,
      mem: '16G',
      sbatchArgs: ['--account=ml', '--qos=short'],
      setup: ['module load nodejs/20'],
    },
    { specFile: '/sweeps/smoke4/spec-x.json', logDir: '/sweeps/smoke4/logs', repo: '/src/dinotwins' },
  );
  const sb = text.split('\n').filter((l) => l.startsWith('#SBATCH'));
  assert.deepEqual(sb, [
    '#SBATCH --job-name=dt-smoke4',
    '#SBATCH --array=0,2-3%2',
    '#SBATCH --output=/sweeps/smoke4/logs/%A_%a.out',
    '#SBATCH --ntasks=1',
    '#SBATCH --partition=gpu',
    '#SBATCH --time=01:30:00',
    '#SBATCH --gres=gpu:1',
    '#SBATCH --cpus-per-task=4',
    '#SBATCH --mem=16G',
    '#SBATCH --account=ml',
    '#SBATCH --qos=short',
  ]);
  assert.ok(
    text.includes(
      `  0) RUN='${plan.runs[0].rel}' ;; # barlow s0\n  2) RUN='${plan.runs[2].rel}' ;; # dino-twins s0\n  3) RUN='${plan.runs[3].rel}' ;;`,
    ),
  );
  assert.ok(!text.includes(plan.runs[1].rel), 'a run left out of the job has no case');
  assert.ok(text.includes("cd '/src/dinotwins'\n"));
  assert.ok(text.includes(`export DINOTWINS_RUNS='${runs}'\n`));
  assert.ok(text.includes('module load nodejs/20\n'));
  assert.ok(text.endsWith(`exec node --import tsx bin/sweep.ts '/sweeps/smoke4/spec-x.json' --task --run "$RUN"\n`));
  // The #SBATCH lines come before any command (sbatch stops reading them at the first one).
  const lines = text.split('\n');
  const lastSbatch = lines.map((l) => l.startsWith('#SBATCH')).lastIndexOf(true);
  assert.ok(lines.findIndex((l) => l && !l.startsWith('#')) > lastSbatch);
  const file = path.join(runs, 'check.sbatch');
  fs.writeFileSync(file, text);
  const bash = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
  assert.equal(bash.status, 0, bash.stderr);
  // The case table maps each task to its run when run with a task id (the command itself is replaced by echo).
  fs.writeFileSync(
    file,
    text
      .replace(/^exec node .*$/m, 'echo "$RUN"')
      .replace(/^cd .*$/m, '')
      .replace(/^module load .*$/m, '')
      .replace(/^echo "sweep.*$/m, ''),
  );
  for (const i of [0, 2, 3])
    assert.equal(
      spawnSync('bash', [file], {
        env: { ...process.env, SLURM_ARRAY_TASK_ID: String(i) },
        encoding: 'utf8',
      }).stdout.trim(),
      plan.runs[i].rel,
    );
  const bad = spawnSync('bash', [file], { env: { ...process.env, SLURM_ARRAY_TASK_ID: '1' }, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /task 1 is not a run of this job/);
});

test('squeue and sacct output (as Slurm 22.05 prints it) parse into task states', () => {
  // squeue -r -h -o '%i|%T|%r|%M|%N'
  const q = parseSqueue(
    '1_2|PENDING|JobArrayTaskLimit|0:00|\n1_3|PENDING|JobArrayTaskLimit|0:00|\n1_0|RUNNING|None|0:03|localhost\n1_1|RUNNING|None|0:03|localhost\n',
  );
  assert.deepEqual(
    q.map((t) => [t.jobId, t.index, t.state, t.reason]),
    [
      ['1', 2, 'PENDING', 'JobArrayTaskLimit'],
      ['1', 3, 'PENDING', 'JobArrayTaskLimit'],
      ['1', 0, 'RUNNING', 'None'],
      ['1', 1, 'RUNNING', 'None'],
    ],
  );
  // sacct -n -P -X -o JobID,State,ExitCode,Elapsed,NodeList,Reason (steps and pending ranges are skipped)
  const a = parseSacct(
    '1_0|COMPLETED|0:0|00:00:16|localhost|None\n1_2|CANCELLED by 0|0:0|00:00:11|localhost|None\n1_2.batch|CANCELLED|0:15|00:00:11|localhost|\n1_[3-4%2]|PENDING|0:0|00:00:00|None assigned|JobArrayTaskLimit\n9|TIMEOUT|0:0|00:10:00|localhost|None\n',
  );
  assert.deepEqual(
    a.map((t) => [t.jobId, t.index, t.state, t.exitCode, t.elapsed]),
    [
      ['1', 0, 'COMPLETED', '0:0', '00:00:16'],
      ['1', 2, 'CANCELLED by 0', '0:0', '00:00:11'],
      ['9', -1, 'TIMEOUT', '0:0', '00:10:00'],
    ],
  );
});

test('status: records next to Slurm states; a run whose record says running but whose task ended is dead; sacct failures listed', () => {
  freshRuns();
  const plan = expandSweep({ ...SMOKE4, name: 'status' }, CIFAR10_SOURCE);
  fakeRecord(plan, 0, 'done', 16);
  fakeRecord(plan, 1, 'running', 8); // its task was cancelled: nobody trains it
  fakeRecord(plan, 2, 'running', 4); // its task is running
  const jobs = [
    { jobId: '5', submittedAt: '', script: '', tasks: plan.runs.map((r) => ({ index: r.index, run: r.rel })) },
  ];
  const t = (index: number, state: string, source: 'squeue' | 'sacct', more: Partial<TaskState> = {}): TaskState => ({
    jobId: '5',
    index,
    state,
    reason: 'None',
    source,
    ...more,
  });
  const st = sweepStatusFrom(
    plan,
    jobs,
    [t(2, 'RUNNING', 'squeue'), t(3, 'PENDING', 'squeue', { reason: 'JobArrayTaskLimit' })],
    {
      tasks: [
        t(0, 'COMPLETED', 'sacct', { exitCode: '0:0' }),
        t(1, 'CANCELLED by 0', 'sacct', { exitCode: '0:0', elapsed: '00:00:11', nodes: 'localhost' }),
        t(2, 'RUNNING', 'sacct'),
      ],
    },
  );
  assert.deepEqual(
    st.runs.map((r) => r.verdict),
    ['done', 'dead', 'running', 'pending'],
  );
  assert.deepEqual(
    st.failed.map((f) => [f.task.index, f.task.state, f.run?.rel]),
    [[1, 'CANCELLED by 0', plan.runs[1].rel]],
  );
  const text = formatStatus(st);
  assert.match(text, /4 runs, Slurm job 5\): 1 done, 1 dead, 1 running, 1 pending/);
  assert.match(
    text,
    new RegExp(
      `5_1 ${plan.runs[1].rel}: CANCELLED by 0, exit code 0:0, after 00:00:11 on localhost; run now: running, checkpoint at 8 of 16`,
    ),
  );
  assert.ok(text.includes(`    log: ${path.join(plan.sweepDir, 'logs', '5_1.out')}\n`), text);
  assert.match(text, /PENDING \(JobArrayTaskLimit\) 5_3/);
  assert.match(text, /1 run\(s\) not done and not queued: submit the sweep again/);
  const noAcct = formatStatus(
    sweepStatusFrom(plan, jobs, [], { tasks: [], error: 'sacct: Slurm accounting storage is disabled' }),
  );
  assert.match(
    noAcct,
    /sacct unavailable \(sacct: Slurm accounting storage is disabled\): finished tasks are judged from the run records only/,
  );
});

test('a dry run writes the frozen spec and the script for the runs that are not done, and submits nothing', () => {
  freshRuns();
  const plan = expandSweep({ ...SMOKE4, name: 'dry' }, CIFAR10_SOURCE);
  fakeRecord(plan, 1, 'done', 16);
  const res = submitSweep(plan, { dryRun: true, maxRunning: 3 });
  assert.equal(res.jobId, null);
  assert.deepEqual(
    res.runs.map((r) => r.index),
    [0, 2, 3],
  );
  assert.deepEqual(res.done, [plan.runs[1].rel]);
  const text = fs.readFileSync(res.script, 'utf8');
  assert.match(text, /^#SBATCH --array=0,2-3%3$/m, "the command line overrides the spec's maxRunning");
  assert.match(text, /^#SBATCH --time=00:20:00$/m, "the spec's time limit stays");
  const specFile = /bin\/sweep\.ts '([^']+)'/.exec(text)![1];
  assert.deepEqual(JSON.parse(fs.readFileSync(specFile, 'utf8')), plan.spec);
  assert.deepEqual(readLedger(plan.sweepDir), []);
});

test('the CLI without sbatch on the PATH says so and exits 2; --dry-run still writes the script', () => {
  const specFile = path.join(freshRuns(), 'cli.json');
  fs.writeFileSync(specFile, JSON.stringify({ ...SMOKE4, name: 'cli' }));
  // A PATH with node and nothing else (Debian's slurm-client puts sbatch in /usr/bin, beside node).
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-sweep-bin-'));
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const env = { ...process.env, PATH: bin };
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/sweep.ts', specFile, '--engine', 'slurm'], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /error: sbatch is not on the PATH: this machine has no Slurm client \(use --engine local/);
  const d = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'bin/sweep.ts',
      specFile,
      '--engine',
      'slurm',
      '--dry-run',
      '--partition',
      'short',
      '--sbatch-arg=--account=ml',
    ],
    { cwd: ROOT, env, encoding: 'utf8' },
  );
  assert.equal(d.status, 0, d.stderr);
  assert.match(
    d.stdout,
    /dry run: 4 task\(s\) \(0 of 4 runs already done\); job script .*sweeps\/cli\/sweep\.sbatch \(not submitted\)/,
  );
  const bad = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bin/sweep.ts', specFile, '--engine', 'slurm', '--max-running', 'two'],
    { cwd: ROOT, env, encoding: 'utf8' },
  );
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--max-running must be a positive integer, got "two"/);
});

// ---- against a real cluster ------------------------------------------------------------------

/** Why no cluster can be used here, or null when `scontrol ping` reaches a controller. */
function clusterUnavailable(): string | null {
  if (process.env.SLURM_TEST_UNAVAILABLE) return process.env.SLURM_TEST_UNAVAILABLE;
  for (const c of ['sbatch', 'squeue', 'sacct', 'scancel', 'scontrol'])
    if (!onPath(c))
      return `${c} is not on the PATH (install the test cluster: sudo bash scripts/slurm-test-cluster.sh install)`;
  const ping = spawnSync('scontrol', ['ping'], { encoding: 'utf8', timeout: 20_000 });
  if (ping.status !== 0 || !/is UP/.test(ping.stdout))
    return `no Slurm controller answers (scontrol ping: ${(ping.stdout + ping.stderr).trim().split('\n')[0]}); start one: sudo bash scripts/slurm-test-cluster.sh start, then eval "$(bash scripts/slurm-test-cluster.sh env)"`;
  return null;
}

function cli(specFile: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/sweep.ts', specFile, ...args], {
    cwd: ROOT,
    env: process.env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `sweep ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function squeueJob(jobId: string): TaskState[] {
  const r = spawnSync('squeue', ['-r', '-h', '-j', jobId, '-o', '%i|%T|%r|%M|%N'], { encoding: 'utf8' });
  return r.status === 0 ? parseSqueue(r.stdout) : [];
}

/** Polls `check` every 200 ms until it returns true; fails after `seconds` with `what` and the queue. */
async function until(seconds: number, what: string, check: () => boolean): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (check()) return;
    await sleep(200);
  }
  const q = spawnSync('squeue', ['-r'], { encoding: 'utf8' }).stdout;
  assert.fail(`timed out after ${seconds} s waiting for ${what}\nsqueue:\n${q}`);
}

test(
  'a real cluster: 4 smoke runs through sbatch, 2 at once; one cancelled midway; re-submitted; all records complete',
  { timeout: 15 * 60_000 },
  async (t) => {
    const why = clusterUnavailable();
    if (why) {
      t.skip(`no Slurm cluster: ${why}`);
      return;
    }
    const root = freshRuns();
    const specFile = path.join(root, 'smoke4.json');
    // Six epochs (48 steps) a run, so the cancelled run is still going when the --cancel command (a tsx start-up,
    // seconds on a busy machine) reaches Slurm: with the smoke budget's 16 steps it could finish first.
    const spec: SweepSpec = { ...SMOKE4, base: { ...SMOKE4.base, epochs: 6 } };
    fs.writeFileSync(specFile, JSON.stringify(spec));
    // The tasks load the smoke budget's data (the real CIFAR-10, or the fixture where it is absent) and name their runs with it.
    const plan = expandSweep(spec, (await loadExperimentData(BUDGETS.smoke)).identity);
    const total =
      plan.runs[0].config.epochs * Math.floor((10 * plan.budget.trainPerClass) / plan.runs[0].config.batchSize); // 10 classes
    const log: string[] = [];
    try {
      // Submit: one array job, tasks 0-3, at most 2 at once.
      const out = cli(specFile, '--engine', 'slurm');
      const jobId = /submitted Slurm job (\d+), 4 task\(s\)/.exec(out)?.[1];
      assert.ok(jobId, out);
      assert.equal(out.trim().split('\n').pop(), jobId, 'the last line is the job id');
      assert.match(
        fs.readFileSync(path.join(plan.sweepDir, `job-${jobId}.sbatch`), 'utf8'),
        /^#SBATCH --array=0-3%2$/m,
      );

      // Watch the queue: never more than 2 running; cancel the task of run 2 once it has a checkpoint and is not finished.
      const victim = plan.runs[2];
      const victimRecord = path.join(victim.dir, 'record.json');
      let maxRunning = 0;
      let throttled = false;
      let cancelledAt = -1;
      await until(600, `run ${victim.rel} to checkpoint midway`, () => {
        const q = squeueJob(jobId);
        const running = q.filter((x) => x.state === 'RUNNING').length;
        maxRunning = Math.max(maxRunning, running);
        throttled ||= q.some((x) => x.state === 'PENDING' && x.reason === 'JobArrayTaskLimit') && running === 2;
        if (!fs.existsSync(victimRecord)) return false;
        const r = readRunRecord(victimRecord);
        if (r.status === 'running' && r.step >= 2 && r.step < r.totalSteps) {
          cancelledAt = r.step;
          return true;
        }
        assert.notEqual(r.status, 'done', `run ${victim.rel} finished before it could be cancelled`);
        return false;
      });
      log.push(`squeue while running:\n${spawnSync('squeue', ['-r'], { encoding: 'utf8' }).stdout}`);
      const cancel = cli(specFile, '--cancel', '--run', victim.rel);
      assert.equal(cancel.trim(), `scancel ${jobId}_2`);
      await until(600, `job ${jobId} to leave the queue`, () => squeueJob(jobId).length === 0);
      assert.equal(maxRunning, 2, 'two tasks ran at once');
      assert.ok(throttled, 'tasks waited with reason JobArrayTaskLimit while two ran');

      // The cancelled run: a checkpoint at or after the step it had reached, and a record that says it stopped.
      // With the trainer's interrupt handler (lib/train/interrupt.ts) the task's SIGTERM stops the run at its
      // next step with a checkpoint ("interrupted"); without it the task marks the record failed and exits.
      const cut = readRunRecord(victimRecord);
      assert.equal(
        cut.status,
        fs.existsSync(path.join(ROOT, 'lib', 'train', 'interrupt.ts')) ? 'interrupted' : 'failed',
        cut.message,
      );
      assert.ok(
        cut.step >= cancelledAt && cut.step < cut.totalSteps,
        `checkpoint at ${cut.step}, cancelled at ${cancelledAt}`,
      );
      let status = '';
      await until(60, 'sacct to report the cancelled task', () => {
        status = cli(specFile, '--status');
        return new RegExp(`${jobId}_2 ${victim.rel}: CANCELLED`).test(status);
      });
      log.push(`status after the cancel:\n${status}`);
      assert.match(
        status,
        new RegExp(
          `${jobId}_2 ${victim.rel}: CANCELLED by \\d+, exit code \\S+, after \\S+ on localhost; run now: \\S+ at ${cut.step}/${total}`,
        ),
      );
      assert.match(status, /3 done, 1 (partial|failed|dead)/);

      // Re-submit: only the cancelled run goes; it resumes from its checkpoint.
      const again = cli(specFile, '--engine', 'slurm');
      const job2 = /submitted Slurm job (\d+), 1 task\(s\) \(3 of 4 runs already done\)/.exec(again)?.[1];
      assert.ok(job2, again);
      assert.match(fs.readFileSync(path.join(plan.sweepDir, `job-${job2}.sbatch`), 'utf8'), /^#SBATCH --array=2%2$/m);
      await until(600, `job ${job2} to finish`, () => squeueJob(job2).length === 0);

      for (const run of plan.runs) {
        const r = readRunRecord(path.join(run.dir, 'record.json'));
        assert.equal(r.status, 'done', `${run.rel}: ${r.status} ${r.message ?? ''}`);
        assert.equal(r.step, r.totalSteps);
        assert.equal(r.epochs.length, run.config.epochs, `${run.rel}: every epoch recorded`);
        assert.ok(typeof r.epochs[r.epochs.length - 1].extra.knnTop1 === 'number', `${run.rel}: kNN monitor`);
        assert.deepEqual(r.resumedFrom, run === victim ? [cut.step] : [], run.rel);
      }
      for (const [j, i] of [
        [jobId, 0],
        [jobId, 1],
        [jobId, 2],
        [jobId, 3],
        [job2, 2],
      ])
        assert.ok(fs.existsSync(path.join(plan.sweepDir, 'logs', `${j}_${i}.out`)), `log of task ${j}_${i}`);
      assert.match(
        fs.readFileSync(path.join(plan.sweepDir, 'logs', `${jobId}_2.out`), 'utf8'),
        /SIGTERM \(Slurm cancelled the task/,
      );

      const results = cli(specFile, '--results');
      log.push(`results:\n${results}`);
      for (const run of plan.runs)
        assert.match(results, new RegExp(`^${run.rel}\\s+done\\s+${total}/${total}\\s+\\d`, 'm'));
      assert.deepEqual(
        sweepResults(plan).map((r) => r.status),
        ['done', 'done', 'done', 'done'],
      );
      status = cli(specFile, '--status');
      log.push(`final status:\n${status}`);
      assert.match(status, new RegExp(`Slurm jobs ${jobId}, ${job2}\\): 4 done`));
      assert.match(status, new RegExp(`${jobId}_2 ${victim.rel}: CANCELLED.*; run now: done ${total}/${total}`));
      assert.match(status, new RegExp(`COMPLETED ${job2}_2, exit 0:0`));
      const nothing = cli(specFile, '--engine', 'slurm');
      assert.match(nothing, /nothing to submit \(4 of 4 runs done, 0 queued or running\)/);
      const acct = spawnSync('sacct', ['-X', '-j', `${jobId},${job2}`, '-o', 'JobID,State,ExitCode,Elapsed'], {
        encoding: 'utf8',
      }).stdout;
      log.push(`sacct:\n${acct}`);
      for (const line of log.join('\n').split('\n')) t.diagnostic(line);
    } finally {
      const left = spawnSync('squeue', ['-h', '-n', 'dt-smoke4', '-o', '%A'], { encoding: 'utf8' }).stdout.trim();
      if (left) spawnSync('scancel', [...new Set(left.split('\n'))]);
    }
  },
);

/**
 * The Slurm engine: one `sbatch` script per submission, a job array with one task per run (the
 * array index is the run's index in the plan, so a task keeps its number across re-submissions),
 * logs per task, the `%N` throttle for how many run at once, and partition, time limit, GPUs and
 * any other sbatch flag passed through. Each task runs `bin/sweep.ts --task` for its run, which
 * trains it exactly as the local engine does. Job ids go into a ledger in the sweep folder, so
 * `--status` asks squeue and sacct about the right jobs, `--cancel` cancels them, and a
 * re-submission leaves out what is done and what a live task of any sweep of the budget holds:
 * one run is never given to two tasks.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../data/index';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic';
import { SlurmOptions, SweepError, SweepPlan, SweepRun, checkSlurmOptions, specHash } from './spec';
import { runProgress } from './records';

/** One submission, as the ledger (sweeps/<name>/jobs.json) keeps it. */
export interface LedgerEntry {
  /** The array job id sbatch returned. */
  jobId: string;
  submittedAt: string;
  /** The script as submitted (a copy per job). */
  script: string;
  /** Array index -> run folder (relative to the budget's runs folder). */
  tasks: Array<{ index: number; run: string }>;
  /** The %N throttle, if any. */
  maxRunning?: number;
}

interface Ledger {
  format: 'dinotwins-sweep-jobs/1';
  jobs: LedgerEntry[];
}

/** A task's state, from squeue (live) or sacct (accounting, also after it ended). */
export interface TaskState {
  /** The array job id. */
  jobId: string;
  /** The array index (-1 for a job that is not an array task). */
  index: number;
  /** PENDING, RUNNING, COMPLETED, FAILED, CANCELLED by 0, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ... */
  state: string;
  /** squeue's reason (JobArrayTaskLimit, Resources, ...) or sacct's. */
  reason: string;
  /** sacct's exit code "code:signal". */
  exitCode?: string;
  elapsed?: string;
  nodes?: string;
  source: 'squeue' | 'sacct';
}

const LEDGER = 'jobs.json';

/** The sweep's submissions so far (none: []). */
export function readLedger(sweepDir: string): LedgerEntry[] {
  const file = path.join(sweepDir, LEDGER);
  if (!fs.existsSync(file)) return [];
  let l: Ledger;
  try {
    l = JSON.parse(fs.readFileSync(file, 'utf8')) as Ledger;
  } catch (e) {
    throw new SweepError(`cannot read the sweep's job ledger ${file}: ${(e as Error).message}`);
  }
  if (l.format !== 'dinotwins-sweep-jobs/1' || !Array.isArray(l.jobs))
    throw new SweepError(`${file} is not a dinotwins sweep job ledger`);
  return l.jobs;
}

function appendLedger(sweepDir: string, entry: LedgerEntry): void {
  const jobs = readLedger(sweepDir);
  jobs.push(entry);
  writeJsonAtomic(path.join(sweepDir, LEDGER), { format: 'dinotwins-sweep-jobs/1', jobs } satisfies Ledger);
}

/** Single-quoted for bash. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `sbatch --array` value: indices as ranges ("0-3,6,8-9"), with the %N throttle. */
export function arraySpec(indices: readonly number[], maxRunning?: number): string {
  const xs = [...indices].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(i === j ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return parts.join(',') + (maxRunning ? `%${maxRunning}` : '');
}

export interface ScriptFiles {
  /** The frozen spec the tasks expand. */
  specFile: string;
  /** Folder of the per-task logs. */
  logDir: string;
  /** The repository to run from (default: this one). */
  repo?: string;
}

/**
 * The job script for `runs` of the plan: a job array whose task i runs the plan's run i through
 * `bin/sweep.ts --task`, logging to <logDir>/<job>_<index>.out.
 */
export function sbatchScript(
  plan: SweepPlan,
  runs: readonly SweepRun[],
  options: SlurmOptions,
  files: ScriptFiles,
): string {
  const o = checkSlurmOptions(options);
  if (runs.length === 0) throw new SweepError('no runs to put in a job script');
  const repo = files.repo ?? thisRepo();
  const lines = [
    '#!/bin/bash',
    `# dinotwins sweep "${plan.spec.name}" (budget ${plan.budget.name}${plan.spec.ablationBudget ? ', ablation budget' : ''}): ${runs.length} of its ${plan.runs.length} runs,`,
    "# one array task per run; the task id is the run's index in the sweep. Written by `npm run sweep -- SPEC --engine slurm`,",
    '# which skips finished runs and resumes half-done ones from their checkpoints when submitted again.',
    `#SBATCH --job-name=${`dt-${plan.spec.name}`.slice(0, 64)}`,
    `#SBATCH --array=${arraySpec(
      runs.map((r) => r.index),
      o.maxRunning,
    )}`,
    `#SBATCH --output=${path.join(files.logDir, '%A_%a.out')}`,
    '#SBATCH --ntasks=1',
  ];
  if (o.partition) lines.push(`#SBATCH --partition=${o.partition}`);
  if (o.time) lines.push(`#SBATCH --time=${o.time}`);
  if (o.gpusPerTask) lines.push(`#SBATCH --gres=gpu:${o.gpusPerTask}`);
  if (o.cpusPerTask) lines.push(`#SBATCH --cpus-per-task=${o.cpusPerTask}`);
  if (o.mem) lines.push(`#SBATCH --mem=${o.mem}`);
  for (const a of o.sbatchArgs ?? []) lines.push(`#SBATCH ${a}`);
  lines.push('set -euo pipefail', '', 'case "$SLURM_ARRAY_TASK_ID" in');
  for (const r of runs) lines.push(`  ${r.index}) RUN=${shq(r.rel)} ;; # ${r.label}`);
  lines.push('  *) echo "task $SLURM_ARRAY_TASK_ID is not a run of this job" >&2; exit 2 ;;', 'esac');
  lines.push(`cd ${shq(repo)}`);
  lines.push(`export DINOTWINS_RUNS=${shq(path.dirname(plan.runsRoot))}`);
  for (const s of o.setup ?? []) lines.push(s);
  lines.push(
    `echo "sweep ${plan.spec.name}: job \${SLURM_ARRAY_JOB_ID}, task \${SLURM_ARRAY_TASK_ID}: run $RUN on $(hostname), $(date -Is)"`,
  );
  lines.push(`exec node --import tsx bin/sweep.ts ${shq(files.specFile)} --task --run "$RUN"`, '');
  return lines.join('\n');
}

/** The checkout this file is in (followed through symlinks such as notebooks/lib), which tasks run from. */
function thisRepo(): string {
  const candidates = [repoRoot(), path.resolve(fs.realpathSync(__dirname), '..', '..')];
  const repo = candidates.find((d) => fs.existsSync(path.join(d, 'bin', 'sweep.ts')));
  if (!repo)
    throw new SweepError(
      `cannot find bin/sweep.ts in ${candidates.join(' or ')}: the job's tasks need a dinotwins checkout to run from`,
    );
  return repo;
}

/** The absolute path of `cmd` on the PATH, or null. */
export function onPath(cmd: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Runs a Slurm command; its stdout, or a SweepError with the command and its stderr. */
function slurmCmd(cmd: string, args: string[]): { ok: boolean; stdout: string; stderr: string } {
  if (!onPath(cmd))
    throw new SweepError(
      `${cmd} is not on the PATH: this machine has no Slurm client (use --engine local, or run on the cluster's login node)`,
    );
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new SweepError(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '').trim() };
}

/** squeue -r output in the format `%i|%T|%r|%M|%N` -> task states. */
export function parseSqueue(text: string): TaskState[] {
  const out: TaskState[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split('|');
    if (f.length < 3 || !f[0]) continue;
    const m = /^(\d+)(?:_(\d+))?$/.exec(f[0]);
    if (!m) continue; // an unexpanded range such as 12_[3-5%2]
    out.push({
      jobId: m[1],
      index: m[2] === undefined ? -1 : Number(m[2]),
      state: f[1],
      reason: f[2] ?? '',
      elapsed: f[3],
      nodes: f[4],
      source: 'squeue',
    });
  }
  return out;
}

/** sacct -n -P -X output with `JobID,State,ExitCode,Elapsed,NodeList,Reason` -> task states. */
export function parseSacct(text: string): TaskState[] {
  const out: TaskState[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split('|');
    if (f.length < 4 || !f[0]) continue;
    const m = /^(\d+)(?:_(\d+))?$/.exec(f[0]);
    if (!m) continue; // steps (12_3.batch) and pending ranges (12_[4-5])
    out.push({
      jobId: m[1],
      index: m[2] === undefined ? -1 : Number(m[2]),
      state: f[1],
      exitCode: f[2],
      elapsed: f[3],
      nodes: f[4],
      reason: f[5] ?? '',
      source: 'sacct',
    });
  }
  return out;
}

/** The live tasks (pending, running, completing) of `jobIds`, from squeue. */
export function queueTasks(jobIds: readonly string[]): TaskState[] {
  if (jobIds.length === 0) return [];
  const r = slurmCmd('squeue', ['-r', '-h', '-j', jobIds.join(','), '-o', '%i|%T|%r|%M|%N']);
  if (!r.ok) {
    if (/Invalid job id/i.test(r.stderr)) return []; // every job has left the queue
    throw new SweepError(`squeue failed: ${r.stderr}`);
  }
  return parseSqueue(r.stdout);
}

/** What sacct knows about `jobIds` (one line per array task), or why it cannot tell. */
export function accountingTasks(jobIds: readonly string[]): { tasks: TaskState[]; error?: string } {
  if (jobIds.length === 0) return { tasks: [] };
  if (!onPath('sacct')) return { tasks: [], error: 'sacct is not on the PATH' };
  const r = slurmCmd('sacct', [
    '-n',
    '-P',
    '-X',
    '-j',
    jobIds.join(','),
    '-o',
    'JobID,State,ExitCode,Elapsed,NodeList,Reason',
  ]);
  if (!r.ok || /accounting storage is disabled/i.test(r.stdout + r.stderr))
    return { tasks: [], error: `sacct: ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
  return { tasks: parseSacct(r.stdout) };
}

/** Ledgers of every sweep of the plan's budget: a run can be in several sweeps. */
function allLedgers(plan: SweepPlan): Array<{ sweepDir: string; entry: LedgerEntry }> {
  const root = path.join(plan.runsRoot, 'sweeps');
  if (!fs.existsSync(root)) return [];
  const out: Array<{ sweepDir: string; entry: LedgerEntry }> = [];
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    if (!fs.existsSync(path.join(dir, LEDGER))) continue;
    for (const entry of readLedger(dir)) out.push({ sweepDir: dir, entry });
  }
  return out;
}

/**
 * Runs (by folder relative to the budget's runs folder) that a live task holds now, of this or any
 * other sweep of the budget, with a description ("Slurm job 12, task 3 of sweep x: RUNNING").
 * Empty without Slurm or without submissions.
 */
export function heldRuns(plan: SweepPlan): Map<string, string> {
  const held = new Map<string, string>();
  const ledgers = allLedgers(plan);
  if (ledgers.length === 0 || !onPath('squeue')) return held;
  const live = queueTasks([...new Set(ledgers.map((l) => l.entry.jobId))]);
  for (const t of live) {
    for (const { sweepDir, entry } of ledgers) {
      if (entry.jobId !== t.jobId) continue;
      const task = entry.tasks.find((x) => x.index === t.index);
      if (task)
        held.set(
          task.run,
          `Slurm job ${t.jobId}, task ${t.index} of sweep ${path.basename(sweepDir)}: ${t.state}${t.reason && t.reason !== 'None' ? ` (${t.reason})` : ''}`,
        );
    }
  }
  return held;
}

export interface SubmitOptions extends SlurmOptions {
  /** Write the script but do not submit (prints what would run). */
  dryRun?: boolean;
  /** The repository the tasks run from (default: this one). */
  repo?: string;
}

export interface SubmitResult {
  /** The array job id, or null when nothing was submitted (all done or held, or a dry run). */
  jobId: string | null;
  script: string;
  /** Runs in this job (array index = run.index). */
  runs: SweepRun[];
  /** Runs left out: done, or held by a live task (folder -> why). */
  done: string[];
  held: Map<string, string>;
}

/**
 * Submits the runs of the plan that are not done and that no live task holds, as one job array.
 * Writes the frozen spec (spec-<hash>.json), the script (sweep.sbatch, and job-<id>.sbatch once
 * submitted) and the ledger entry into the sweep folder.
 */
export function submitSweep(plan: SweepPlan, opts: SubmitOptions = {}): SubmitResult {
  const options = checkSlurmOptions(
    { ...(plan.spec.slurm ?? {}), ...stripUndefined(slurmPart(opts)) },
    'slurm options',
  );
  const probe = plan.spec.probe ?? false;
  const held = heldRuns(plan);
  const done: string[] = [];
  const runs: SweepRun[] = [];
  for (const r of plan.runs) {
    if (runProgress(r, probe).state === 'done') done.push(r.rel);
    else if (!held.has(r.rel)) runs.push(r);
  }
  const heldHere = new Map([...held].filter(([rel]) => plan.runs.some((r) => r.rel === rel)));
  const scriptFile = path.join(plan.sweepDir, 'sweep.sbatch');
  if (runs.length === 0) return { jobId: null, script: scriptFile, runs, done, held: heldHere };
  const specFile = path.join(plan.sweepDir, `spec-${specHash(plan.spec)}.json`);
  if (!fs.existsSync(specFile)) writeJsonAtomic(specFile, plan.spec);
  const logDir = path.join(plan.sweepDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const text = sbatchScript(plan, runs, options, { specFile, logDir, repo: opts.repo });
  writeFileAtomic(scriptFile, text);
  if (opts.dryRun) return { jobId: null, script: scriptFile, runs, done, held: heldHere };
  const r = slurmCmd('sbatch', ['--parsable', scriptFile]);
  const m = /^(\d+)/.exec(r.stdout.trim());
  if (!r.ok || !m) throw new SweepError(`sbatch ${scriptFile} failed: ${r.stderr || r.stdout.trim() || 'no job id'}`);
  const jobId = m[1];
  const copy = path.join(plan.sweepDir, `job-${jobId}.sbatch`);
  writeFileAtomic(copy, text);
  appendLedger(plan.sweepDir, {
    jobId,
    submittedAt: new Date().toISOString(),
    script: copy,
    tasks: runs.map((x) => ({ index: x.index, run: x.rel })),
    maxRunning: options.maxRunning,
  });
  return { jobId, script: copy, runs, done, held: heldHere };
}

function slurmPart(o: SubmitOptions): SlurmOptions {
  return {
    maxRunning: o.maxRunning,
    partition: o.partition,
    time: o.time,
    gpusPerTask: o.gpusPerTask,
    cpusPerTask: o.cpusPerTask,
    mem: o.mem,
    sbatchArgs: o.sbatchArgs,
    setup: o.setup,
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Cancels the sweep's live tasks: all of them, or the one running `run` (a folder of the plan).
 * Returns the ids given to scancel ("12" for a whole job, "12_3" for one task).
 */
export function cancelSweep(plan: SweepPlan, opts: { run?: string } = {}): string[] {
  const ledger = readLedger(plan.sweepDir);
  const live = queueTasks([...new Set(ledger.map((e) => e.jobId))]);
  let ids: string[];
  if (opts.run !== undefined) {
    const rel = path.isAbsolute(opts.run) ? path.relative(plan.runsRoot, opts.run) : opts.run;
    ids = [];
    for (const t of live) {
      const e = ledger.find((x) => x.jobId === t.jobId);
      if (e?.tasks.some((x) => x.index === t.index && x.run === rel)) ids.push(`${t.jobId}_${t.index}`);
    }
  } else {
    ids = [...new Set(live.map((t) => t.jobId))];
  }
  if (ids.length === 0) return [];
  const r = slurmCmd('scancel', ids);
  if (!r.ok) throw new SweepError(`scancel ${ids.join(' ')} failed: ${r.stderr}`);
  return ids;
}

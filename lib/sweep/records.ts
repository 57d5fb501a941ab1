/**
 * What the run records say about a sweep's runs: how far each one got (done, half done with a
 * checkpoint, failed, not started) and the results table. Only the records are read, so this works
 * while runs are still training, from any engine, in a notebook or on the command line.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RunRecord, readRunRecord } from '../train/runRecord';
import { resultRows } from '../results/report';
import { SweepPlan, SweepRun } from './spec';

/**
 * - done: pretrained to the last step (and probed when the sweep asks for the probe);
 * - needs-probe: pretrained, the probe the sweep asks for is missing;
 * - running: the record says a process is training it (alive, or dead without a word: the scheduler knows which);
 * - partial: stopped or interrupted, resumes from its checkpoint;
 * - failed: the run wrote "failed" (the record's message says why); re-running resumes from its checkpoint;
 * - not-started: no record yet.
 */
export type RunState = 'done' | 'needs-probe' | 'running' | 'partial' | 'failed' | 'not-started';

export interface RunProgress {
  state: RunState;
  /** Last step with a checkpoint (training resumes there), or 0. */
  step: number;
  totalSteps: number;
  /** Whether a checkpoint is on disk (training resumes from it). */
  checkpoint: boolean;
  /**
   * Its step, when the record tells it: a record that says running, failed or interrupted was last
   * written with its checkpoint; one stopped by stopAfterSteps went on past it (null then).
   */
  checkpointStep: number | null;
  /** The record's own status and message, when there is a record. */
  recordStatus: RunRecord['status'] | null;
  message?: string;
  record: RunRecord | null;
}

/** How far `run` got, from its record (and checkpoint) on disk; `probe`: whether the sweep asks for the linear probe. */
export function runProgress(run: SweepRun, probe = false): RunProgress {
  const file = path.join(run.dir, 'record.json');
  if (!fs.existsSync(file))
    return {
      state: 'not-started',
      step: 0,
      totalSteps: 0,
      checkpoint: false,
      checkpointStep: null,
      recordStatus: null,
      record: null,
    };
  let record: RunRecord;
  try {
    record = readRunRecord(file);
  } catch (e) {
    return {
      state: 'failed',
      step: 0,
      totalSteps: 0,
      checkpoint: false,
      checkpointStep: null,
      recordStatus: null,
      message: (e as Error).message,
      record: null,
    };
  }
  const checkpoint = record.checkpoint !== null && fs.existsSync(path.join(run.dir, path.basename(record.checkpoint)));
  const status: string = record.status; // 'interrupted' comes with the trainer's interrupt handler
  const knownStep = checkpoint && (status === 'running' || status === 'failed' || status === 'interrupted');
  const base = {
    step: record.step,
    totalSteps: record.totalSteps,
    checkpoint,
    checkpointStep: knownStep ? record.step : null,
    recordStatus: record.status,
    message: record.message,
    record,
  };
  if (record.status === 'done' && record.step >= record.totalSteps) {
    return { ...base, state: probe && !record.results.linearProbe ? 'needs-probe' : 'done' };
  }
  if (record.status === 'running') return { ...base, state: 'running' };
  if (record.status === 'failed') return { ...base, state: 'failed' };
  return { ...base, state: 'partial' };
}

/** One line on a run's progress: "done 16/16", "interrupted at 8/16, checkpoint at 8", "not started". */
export function describeProgress(p: RunProgress): string {
  if (p.state === 'not-started') return 'not started';
  const steps = `${p.step}/${p.totalSteps}`;
  const ckpt =
    p.checkpointStep !== null
      ? `checkpoint at ${p.checkpointStep}`
      : p.checkpoint
        ? 'has a checkpoint'
        : 'no checkpoint';
  switch (p.state) {
    case 'done':
      return `done ${steps}`;
    case 'needs-probe':
      return `trained ${steps}, probe missing`;
    case 'running':
      return `running, ${ckpt} of ${p.totalSteps}`;
    case 'failed':
      return `failed at ${steps} (${ckpt})${p.message ? `: ${p.message.split('\n')[0].slice(0, 160)}` : ''}`;
    default:
      return `${p.recordStatus} at ${steps} (${ckpt})`;
  }
}

/** A row of a sweep's results table. */
export interface SweepResultRow {
  run: string;
  method: string;
  variant: string;
  /** Grid values ("lr=0.001 dino.teacherTemp=0.04"), empty without a grid. */
  grid: string;
  seed: number;
  /** The run's state (see RunState) and its steps so far. */
  status: RunState;
  steps: string;
  /** kNN top-1 % on the validation split at the last evaluated epoch (monitor). */
  knnVal: number | null;
  /** Frozen linear probe, top-1 % on the test set (with `probe`). */
  linearTest: number | null;
  /** kNN top-1 % on the test set (with `probe`). */
  knnTest: number | null;
  /** Collapse monitors averaged over the last 5 logged steps (null when the method does not log them). */
  featStd: number | null;
  teacherEntropy: number | null;
  teacherStudentKL: number | null;
  /** Effective rank of the features at the last evaluated epoch. */
  effectiveRank: number | null;
  minutes: number | null;
}

function tailMean(rec: RunRecord, key: string, n = 5): number | null {
  const vals = rec.steps
    .slice(-n)
    .map((s) => s[key])
    .filter((v): v is number => typeof v === 'number');
  return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
}

/** A run's accuracies and collapse monitors as the results table shows them (all null without a record). */
export type RunMonitors = Pick<
  SweepResultRow,
  'knnVal' | 'linearTest' | 'knnTest' | 'featStd' | 'teacherEntropy' | 'teacherStudentKL' | 'effectiveRank' | 'minutes'
>;

/** The monitors of one record: probes and kNN from the record's results, collapse monitors over its last logged steps. */
export function recordMonitors(rec: RunRecord | null | undefined): RunMonitors {
  const r = rec ? resultRows([rec])[0] : null;
  const lastEpoch = rec?.epochs[rec.epochs.length - 1];
  return {
    knnVal: r?.knnVal ?? null,
    linearTest: r?.linearTest ?? null,
    knnTest: r?.knnTest ?? null,
    featStd: rec ? tailMean(rec, 'featStd') : null,
    teacherEntropy: rec ? tailMean(rec, 'teacherEntropy') : null,
    teacherStudentKL: rec ? tailMean(rec, 'teacherStudentKL') : null,
    effectiveRank: typeof lastEpoch?.extra.effectiveRank === 'number' ? lastEpoch.extra.effectiveRank : null,
    minutes: r ? r.minutes : null,
  };
}

/**
 * One row per run of the plan, in plan order, from whatever records exist now: runs not started
 * (or still training) are rows too, so the table can be shown while jobs run and filled in later.
 */
export function sweepResults(plan: SweepPlan): SweepResultRow[] {
  return plan.runs.map((run) => {
    const p = runProgress(run, plan.spec.probe ?? false);
    const rec = p.record;
    const m = recordMonitors(rec);
    return {
      run: run.rel,
      method: run.method,
      variant: run.variant,
      grid: Object.entries(run.grid)
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join(' '),
      seed: run.seed,
      status: p.state,
      steps: rec ? `${rec.step}/${rec.totalSteps}` : '-',
      knnVal: m.knnVal,
      linearTest: m.linearTest,
      knnTest: m.knnTest,
      featStd: m.featStd,
      teacherEntropy: m.teacherEntropy,
      teacherStudentKL: m.teacherStudentKL,
      effectiveRank: m.effectiveRank,
      minutes: m.minutes,
    };
  });
}

/** The results table as fixed-width text (for the command line and logs). */
export function formatResults(rows: readonly SweepResultRow[]): string {
  const num = (v: number | null, d = 2) => (v === null ? '-' : v.toFixed(d));
  const head = [
    'run',
    'status',
    'steps',
    'kNN val %',
    'linear test %',
    'kNN test %',
    'feature std',
    'teacher H',
    'minutes',
  ];
  const body = rows.map((r) => [
    r.run,
    r.status,
    r.steps,
    num(r.knnVal),
    num(r.linearTest),
    num(r.knnTest),
    num(r.featStd, 3),
    num(r.teacherEntropy, 3),
    num(r.minutes, 1),
  ]);
  return textTable(head, body);
}

/** Columns padded to their widest cell. */
export function textTable(head: string[], body: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(w[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

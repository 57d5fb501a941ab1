/**
 * A sweep's status: each run as its record tells it, next to what Slurm says about its latest task
 * (squeue while it is queued or running, sacct after), and the tasks sacct reports as failed,
 * cancelled, timed out or out of memory, with what their runs left behind for the next submission.
 */
import * as path from 'path';
import { SweepPlan, SweepRun } from './spec';
import { RunProgress, describeProgress, runProgress, textTable } from './records';
import { LedgerEntry, TaskState, accountingTasks, queueTasks, readLedger } from './slurm';

export interface RunStatus {
  run: SweepRun;
  progress: RunProgress;
  /** The run's task in its latest submission, and that task's state (squeue, else sacct). */
  task: { jobId: string; index: number; state: TaskState | null; log: string } | null;
  /** One word: done, running, pending, dead (the record says running, Slurm says the task ended), failed, partial, not-started, needs-probe. */
  verdict: string;
}

export interface FailedTask {
  task: TaskState;
  run: SweepRun | null;
  /** Where the run stands now (it may have been resumed and finished since). */
  now: string;
}

export interface SweepStatus {
  plan: SweepPlan;
  jobs: LedgerEntry[];
  runs: RunStatus[];
  /** Tasks sacct reports in a state other than COMPLETED, PENDING or RUNNING. */
  failed: FailedTask[];
  /** Why sacct could not be asked (no accounting on the cluster, no sacct), if so. */
  accountingError?: string;
}

const LIVE = /^(PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED|RESIZING|SIGNALING|STAGE_OUT)/;

/** Merges records, the ledger and Slurm's answers (`slurm`: injectable for tests). */
export function sweepStatusFrom(
  plan: SweepPlan,
  jobs: LedgerEntry[],
  queue: TaskState[],
  acct: { tasks: TaskState[]; error?: string },
): SweepStatus {
  const probe = plan.spec.probe ?? false;
  const key = (j: string, i: number) => `${j}_${i}`;
  const live = new Map(queue.map((t) => [key(t.jobId, t.index), t]));
  const finished = new Map(acct.tasks.map((t) => [key(t.jobId, t.index), t]));
  const runs = plan.runs.map((run): RunStatus => {
    const progress = runProgress(run, probe);
    let task: RunStatus['task'] = null;
    for (const e of jobs) {
      const t = e.tasks.find((x) => x.run === run.rel);
      if (t)
        task = {
          jobId: e.jobId,
          index: t.index,
          state: live.get(key(e.jobId, t.index)) ?? finished.get(key(e.jobId, t.index)) ?? null,
          log: path.join(plan.sweepDir, 'logs', `${e.jobId}_${t.index}.out`),
        };
    }
    const s = task?.state?.state ?? '';
    let verdict: string = progress.state;
    if (progress.state !== 'done') {
      if (task && LIVE.test(s)) verdict = s.startsWith('PENDING') ? 'pending' : 'running';
      else if (progress.state === 'running' && task) verdict = 'dead';
    }
    return { run, progress, task, verdict };
  });
  const failed: FailedTask[] = [];
  for (const t of acct.tasks) {
    if (/^(COMPLETED|PENDING|RUNNING)/.test(t.state)) continue;
    const e = jobs.find((x) => x.jobId === t.jobId);
    const rel = e?.tasks.find((x) => x.index === t.index)?.run;
    const run = plan.runs.find((r) => r.rel === rel) ?? null;
    failed.push({
      task: t,
      run,
      now: run ? describeProgress(runProgress(run, probe)) : 'not a run of this sweep as it expands now',
    });
  }
  return { plan, jobs, runs, failed, accountingError: acct.error };
}

/** The sweep's status now: records, plus squeue and sacct for the jobs in its ledger. */
export function sweepStatus(plan: SweepPlan): SweepStatus {
  const jobs = readLedger(plan.sweepDir);
  const ids = [...new Set(jobs.map((j) => j.jobId))];
  return sweepStatusFrom(plan, jobs, queueTasks(ids), accountingTasks(ids));
}

function describeTask(t: TaskState): string {
  const id = `${t.jobId}_${t.index}`;
  if (t.source === 'squeue')
    return `${t.state}${t.reason && t.reason !== 'None' ? ` (${t.reason})` : ''} ${id}${t.elapsed && t.elapsed !== '0:00' ? `, ${t.elapsed}` : ''}`;
  return `${t.state} ${id}, exit ${t.exitCode ?? '?'}, ${t.elapsed ?? '?'}`;
}

/** The status as text: a summary line, one row per run, then the failed tasks with sacct's words. */
export function formatStatus(st: SweepStatus): string {
  const counts = new Map<string, number>();
  for (const r of st.runs) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  const jobs = st.jobs.length
    ? `Slurm job${st.jobs.length > 1 ? 's' : ''} ${st.jobs.map((j) => j.jobId).join(', ')}`
    : 'never submitted to Slurm';
  const out = [
    `sweep ${st.plan.spec.name} (budget ${st.plan.budget.name}, ${st.runs.length} runs, ${jobs}): ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`,
    `runs in ${st.plan.runsRoot}, logs in ${path.join(st.plan.sweepDir, 'logs')}`,
    '',
    textTable(
      ['#', 'run', 'state', 'record', 'slurm'],
      st.runs.map((r) => [
        String(r.run.index),
        r.run.rel,
        r.verdict,
        describeProgress(r.progress),
        r.task
          ? r.task.state
            ? describeTask(r.task.state)
            : `job ${r.task.jobId}_${r.task.index}: not in squeue or sacct`
          : '-',
      ]),
    ),
  ];
  if (st.accountingError)
    out.push('', `sacct unavailable (${st.accountingError}): finished tasks are judged from the run records only`);
  if (st.failed.length) {
    out.push('', 'tasks that did not complete (sacct):');
    for (const f of st.failed) {
      const t = f.task;
      out.push(
        `  ${t.jobId}_${t.index} ${f.run ? f.run.rel : '?'}: ${t.state}, exit code ${t.exitCode ?? '?'}, after ${t.elapsed ?? '?'} on ${t.nodes || '?'}; run now: ${f.now}`,
      );
      out.push(`    log: ${path.join(st.plan.sweepDir, 'logs', `${t.jobId}_${t.index}.out`)}`);
    }
  }
  const redo = st.runs.filter((r) => r.verdict !== 'done' && r.verdict !== 'running' && r.verdict !== 'pending');
  if (redo.length)
    out.push(
      '',
      `${redo.length} run(s) not done and not queued: submit the sweep again to run them (half-done runs resume from their checkpoints)`,
    );
  return out.join('\n');
}

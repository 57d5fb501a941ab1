/**
 * Running a sweep's runs: one run (what a Slurm array task does, in a process of its own), and the
 * local engine (every run, one after another, in this process). Both call `runPretraining` and
 * `probeRun` from lib/protocol/experiment.ts on `loadExperimentData(budget)`, exactly as the notebooks do,
 * so a run trains on the same data in the same folder whichever of them starts it; a finished run
 * is skipped without being touched, a half-done one resumes from its checkpoint.
 */
import * as path from 'path';
import { ExperimentData, loadExperimentData, probeRun, runPretraining } from '../protocol/experiment';
import { StepInfo } from '../train/trainer';
import { readRunRecord, writeRunRecord } from '../train/runRecord';
import { SweepPlan, SweepRun } from './spec';
import { dataIdentityOf } from '../data/dataIdentity';
import { describeProgress, runProgress } from './records';

export interface RunOneOptions {
  /** Per-logged-step hook (progress bars). */
  onStep?: (run: SweepRun, info: StepInfo) => void;
  /** One line per event (default console.log). */
  log?: (line: string) => void;
}

/** What `runOne` did: trained (and probed), only probed, or nothing because the run was done. */
export type RunOutcome = 'trained' | 'probed' | 'already-done';

/** Pretrains (or resumes) one run of the plan on `data`, then probes it when the sweep asks; a done run is left alone. */
export async function runOne(
  plan: SweepPlan,
  run: SweepRun,
  data: ExperimentData,
  opts: RunOneOptions = {},
): Promise<RunOutcome> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const [want, got] = [JSON.stringify(run.data), JSON.stringify(dataIdentityOf(data.identity))];
  if (want !== got)
    throw new Error(
      `${run.rel}: the sweep was expanded for the data ${want}, but the data given is ${got}; expand it for this data (expandSweep(spec, data.identity))`,
    );
  const probe = plan.spec.probe ?? false;
  const before = runProgress(run, probe);
  if (before.state === 'done') return 'already-done';
  let outcome: RunOutcome = 'probed';
  if (before.state !== 'needs-probe') {
    log(`${run.rel}: ${before.state === 'not-started' ? 'starting' : `resuming (${describeProgress(before)})`}`);
    const res = await runPretraining(run.config, plan.budget, data, {
      runDir: run.dir,
      onStep: opts.onStep && ((s) => opts.onStep!(run, s)),
    });
    res.model.dispose();
    outcome = 'trained';
    if (res.record.status !== 'done')
      throw new Error(
        `run ${run.rel} ended with status "${res.record.status}"${res.record.message ? `: ${res.record.message}` : ''}`,
      );
  }
  if (probe) {
    const p = await probeRun(path.join(run.dir, 'record.json'), data, plan.budget.probeEpochs);
    log(`${run.rel}: linear probe test ${p.linear.testTop1?.toFixed(2)}%, kNN test ${p.knnTestTop1.toFixed(2)}%`);
  }
  return outcome;
}

export interface LocalOptions extends RunOneOptions {
  /** Data for the plan's budget (default: loaded once, as the notebooks load it, when a run needs training). */
  data?: ExperimentData;
  /** Runs another engine holds now (folder -> why, e.g. "Slurm job 12, task 3, RUNNING"): skipped here. */
  held?: ReadonlyMap<string, string>;
  /** Called when a run this engine started ends: without an error when it trained or probed, else with it. */
  onRunEnd?: (run: SweepRun, error?: Error) => void;
}

export interface LocalSummary {
  trained: string[];
  probed: string[];
  /** Finished before this call. */
  skipped: string[];
  /** Held by another engine (see LocalOptions.held). */
  held: string[];
  failed: Array<{ run: string; error: string }>;
}

/**
 * The local engine: every run of the plan, one after another, in this process. A failing run
 * (a diverging ablation, say) is recorded and the next one starts; the summary lists failures.
 */
export async function runSweepLocal(plan: SweepPlan, opts: LocalOptions = {}): Promise<LocalSummary> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const probe = plan.spec.probe ?? false;
  const summary: LocalSummary = { trained: [], probed: [], skipped: [], held: [], failed: [] };
  let data = opts.data;
  for (const run of plan.runs) {
    const why = opts.held?.get(run.rel);
    if (why) {
      log(`${run.rel}: skipped, held by ${why}`);
      summary.held.push(run.rel);
      continue;
    }
    if (runProgress(run, probe).state === 'done') {
      log(`${run.rel}: done, skipped`);
      summary.skipped.push(run.rel);
      continue;
    }
    try {
      data ??= await loadExperimentData(plan.budget);
      const outcome = await runOne(plan, run, data, opts);
      (outcome === 'trained' ? summary.trained : summary.probed).push(run.rel);
      opts.onRunEnd?.(run);
    } catch (e) {
      opts.onRunEnd?.(run, e as Error);
      const msg = (e as Error).message;
      log(`${run.rel}: FAILED: ${msg}`);
      summary.failed.push({ run: run.rel, error: msg });
      if ((e as Error).name === 'InterruptedError') break; // Ctrl-C stops the sweep, not just this run
    }
  }
  return summary;
}

/** A task stopped by SIGTERM; its message says where the run stands and that re-submitting resumes it. */
export class TaskTerminatedError extends Error {
  override name = 'TaskTerminatedError';
}

/**
 * One run in a process of its own (a Slurm array task). SIGTERM (scancel, the time limit, a
 * pre-emption) is handed to the trainer's interrupt handler when one is listening (lib/train/interrupt.ts:
 * it checkpoints at the next step and marks the run interrupted), and the task then fails with a
 * TaskTerminatedError; with no handler listening, the record is marked failed with the reason and
 * the process exits with status 143 at once. Either way the next submission resumes the run.
 */
export async function runSweepTask(
  plan: SweepPlan,
  run: SweepRun,
  opts: RunOneOptions & { data?: ExperimentData } = {},
): Promise<RunOutcome> {
  const log = opts.log ?? ((l: string) => console.log(l));
  let terminated = false;
  const onTerm = (): void => {
    terminated = true;
    log(`${run.rel}: SIGTERM (Slurm cancelled the task, its time limit passed or it was pre-empted)`);
    if (process.listenerCount('SIGINT') > 0) {
      process.kill(process.pid, 'SIGINT');
      return;
    }
    markKilled(
      run,
      'killed by SIGTERM (Slurm: scancel, time limit or pre-emption); re-submit the sweep to resume from the checkpoint',
    );
    process.exit(143);
  };
  process.on('SIGTERM', onTerm);
  try {
    if (runProgress(run, plan.spec.probe ?? false).state === 'done') {
      log(`${run.rel}: already done, nothing to do`);
      return 'already-done';
    }
    const data = opts.data ?? (await loadExperimentData(plan.budget));
    return await runOne(plan, run, data, opts);
  } catch (e) {
    if (!terminated) throw e;
    throw new TaskTerminatedError(
      `${run.rel} stopped after SIGTERM: ${describeProgress(runProgress(run))}; re-submit the sweep to resume it (${(e as Error).message})`,
    );
  } finally {
    process.removeListener('SIGTERM', onTerm);
  }
}

/** Marks a record that says "running" as failed with `message` (a process about to die). */
function markKilled(run: SweepRun, message: string): void {
  const file = path.join(run.dir, 'record.json');
  try {
    const rec = readRunRecord(file);
    if (rec.status !== 'running') return;
    rec.status = 'failed';
    rec.message = message;
    writeRunRecord(file, rec);
  } catch {
    // No record yet (killed while loading data): nothing to mark.
  }
}

/**
 * A sweep from a notebook in one call, whichever engine: with `engine: 'slurm'` and `sbatch` on the
 * PATH it is submitted as one Slurm job array (finished runs skipped, runs held by live tasks left
 * alone; the results cell reads the records while the tasks run); otherwise every run trains here,
 * one after another (runSweepLocal), each with its progress bar. Notebook 07 runs both of its grids
 * this way, and the Slurm/local switch lives here once instead of in each cell.
 */
import { ExperimentData } from '../protocol/experiment';
import { progress, type ProgressBar, type ProgressOptions } from '../viz/progress';
import { LocalSummary, runSweepLocal } from './local';
import { onPath, submitSweep, SubmitResult } from './slurm';
import { SweepPlan } from './spec';

export type SweepEngine = 'local' | 'slurm';

export interface RunSweepOptions {
  /** 'local' trains here; 'slurm' submits a job array when sbatch is on the PATH (else trains here, saying so). */
  engine: SweepEngine;
  /** Data for the plan's budget (default: loaded once by the local engine when a run needs training). */
  data?: ExperimentData;
  /** A progress bar per run trained here (true), none (false), or bars with these options (mode, stream, ...). */
  progress: boolean | Partial<Omit<ProgressOptions, 'total' | 'label'>>;
  /** One line per event (default console.log). */
  log?: (line: string) => void;
  /** The PATH searched for sbatch (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_RUN_SWEEP_OPTIONS: Readonly<Pick<RunSweepOptions, 'engine' | 'progress'>> = Object.freeze({
  engine: 'local' as const,
  progress: true,
});

/** What runSweep did: the Slurm submission, or the local engine's summary. */
export type SweepOutcome = { engine: 'slurm'; job: SubmitResult } | { engine: 'local'; summary: LocalSummary };

/**
 * Runs `plan` on the chosen engine. Locally a failing run does not stop the others; once all were
 * tried, any failure is thrown as one Error that names each failed run (an interrupt stops the
 * sweep and is re-thrown as it came).
 */
export async function runSweep(plan: SweepPlan, options: Partial<RunSweepOptions> = {}): Promise<SweepOutcome> {
  const o = { ...DEFAULT_RUN_SWEEP_OPTIONS, ...options };
  const log = o.log ?? ((l: string) => console.log(l));
  if (o.engine !== 'local' && o.engine !== 'slurm')
    throw new Error(`runSweep: engine must be 'local' or 'slurm', got ${JSON.stringify(o.engine)}`);
  if (o.engine === 'slurm') {
    if (onPath('sbatch', o.env ?? process.env)) {
      const job = submitSweep(plan);
      log(
        job.jobId
          ? `Slurm job ${job.jobId}: ${job.runs.length} runs (${job.done.length} already done); logs in ${plan.sweepDir}/logs`
          : `nothing to submit: ${job.done.length} runs done, ${job.held.size} queued or running`,
      );
      return { engine: 'slurm', job };
    }
    log('engine "slurm", but sbatch is not on the PATH: training here instead');
  }
  const bars = new Map<string, ProgressBar>();
  let interrupt: Error | undefined;
  const summary = await runSweepLocal(plan, {
    data: o.data,
    log,
    onStep: o.progress
      ? (run, s) => {
          let bar = bars.get(run.rel);
          if (!bar)
            bars.set(
              run.rel,
              (bar = progress({
                ...(typeof o.progress === 'object' ? o.progress : {}),
                total: s.totalSteps,
                label: run.label,
              })),
            );
          bar.update(s.step + 1, { loss: s.values.loss });
        }
      : undefined,
    // Each bar's last state, however its run ended (an interrupted run's bar shows where it stopped).
    onRunEnd: (run, error) => {
      if (error?.name === 'InterruptedError') interrupt = error;
      const bar = bars.get(run.rel);
      if (!bar) return;
      if (error) bar.stop(error.name === 'InterruptedError' ? 'interrupted' : 'failed');
      else bar.done();
    },
  });
  if (interrupt) throw interrupt;
  if (summary.failed.length)
    throw new Error(
      `${summary.failed.length} of ${plan.runs.length} runs of ${plan.spec.name} failed: ${summary.failed.map((f) => `${f.run}: ${f.error}`).join('; ')}`,
    );
  return { engine: 'local', summary };
}

/**
 * The outcome of the latest pretraining run in this process, for the notebook cells after the
 * training cell: when that cell was interrupted or failed, its variables are undefined (or were
 * never declared), so those cells ask here instead and get one clear line ("run X was
 * interrupted at step N; re-run the training cell to resume") rather than a TypeError.
 * Kept on `globalThis` under a registered symbol (tslab recompiles lib on edits).
 */
import { inspect } from 'util';
import type { RunRecord } from './runRecord';
import type { PretrainConfig } from '../config';
import type { SslModel } from '../methods/index';

/** What the trainer reports about a run. */
export interface LastRun {
  record: RunRecord;
  /** The trained model of a finished run (owned by whoever called pretrain), else null. */
  model: SslModel | null;
}

/** A finished run, as the cells after training use it. */
export interface TrainedRun {
  record: RunRecord;
  model: SslModel;
  config: PretrainConfig;
}

/** The run the cells after training need has not finished; the message says what to do. */
export class RunNotFinishedError extends Error {
  override name = 'RunNotFinishedError';

  /** One line when printed in a notebook. */
  [inspect.custom](): string {
    return `${this.name}: ${this.message}`;
  }
}

const KEY = Symbol.for('dinotwins.lastRun');

function slot(): { last: LastRun | null } {
  const g = globalThis as unknown as Record<symbol, { last: LastRun | null } | undefined>;
  return (g[KEY] ??= { last: null });
}

/** Records the latest state of a run (called by the trainer at start, end, interrupt and failure). */
export function noteRun(outcome: LastRun): void {
  slot().last = outcome;
}

/** The latest run of this process, whatever its state, or null. */
export function lastRun(): LastRun | null {
  return slot().last;
}

/** Why `rec` cannot be used by the cells after training, or null if it finished. */
function unfinishedMessage(rec: Pick<RunRecord, 'id' | 'status' | 'step' | 'totalSteps' | 'message'>): string | null {
  switch (rec.status) {
    case 'done':
      return null;
    case 'interrupted':
      return `run ${rec.id} was interrupted at step ${rec.step} of ${rec.totalSteps}; re-run the training cell to resume`;
    case 'failed':
      return `run ${rec.id} failed at step ${rec.step} of ${rec.totalSteps} (${rec.message ?? 'no message'}); fix the cause and re-run the training cell (it resumes from the last checkpoint)`;
    case 'stopped':
      return `run ${rec.id} stopped at step ${rec.step} of ${rec.totalSteps} (stopAfterSteps); re-run the training cell without it to finish`;
    default:
      return `run ${rec.id} has not finished (step ${rec.step} of ${rec.totalSteps}; it may still be stopping); wait a moment, then re-run the training cell`;
  }
}

/**
 * The finished run of the training cell above, for plots and analysis. Throws a one-line
 * {@link RunNotFinishedError} if there is none or it did not finish.
 */
export function trainedRun(): TrainedRun {
  const o = lastRun();
  if (!o) throw new RunNotFinishedError('no pretraining run in this kernel yet: run the training cell above first');
  const why = unfinishedMessage(o.record);
  if (why) throw new RunNotFinishedError(why);
  if (!o.model) throw new RunNotFinishedError(`run ${o.record.id} finished but its model was not kept; re-run the training cell`);
  return { record: o.record, model: o.model, config: o.record.config as unknown as PretrainConfig };
}

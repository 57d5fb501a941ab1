/**
 * Run records: one JSON file per run with the full config, backend report, git commit, seed and
 * per-epoch metrics. Results tables are built only from these. Written atomically.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { BackendReport } from '../backend/select';
import type { DataIdentity } from '../data/dataIdentity';
import { writeJsonAtomic } from '../util/atomic';

export interface EpochMetrics {
  epoch: number;
  /** Mean of each logged quantity over the epoch's steps (loss, loss terms, monitors). */
  means: Record<string, number>;
  /** Extra metrics from callbacks (kNN accuracy, effective rank, ...). */
  extra: Record<string, number>;
  seconds: number;
  lr: number;
}

export interface RunRecord {
  format: 'dinotwins-run/1';
  id: string;
  kind: 'pretrain' | 'probe' | 'baseline';
  /** 'interrupted': stopped by Ctrl-C or Kernel > Interrupt at `step`, with a checkpoint there; re-running resumes. */
  status: 'running' | 'done' | 'failed' | 'stopped' | 'interrupted';
  /** Why a run failed, stopped or was interrupted. */
  message?: string;
  method: string;
  /** Budget name (smoke | cpu | gpu | custom). */
  budget: string;
  config: Record<string, unknown>;
  backend: Pick<BackendReport, 'chosen' | 'tfBackend' | 'line' | 'details'> | null;
  git: { commit: string | null; dirty: boolean | null };
  seed: number;
  /** The data as described for people (source line, subset sizes, split). */
  data: Record<string, unknown>;
  /**
   * What the run trained on (lib/data/dataIdentity.ts): with `config`, the run's identity, which resuming
   * or reloading the folder checks. Absent from records written before runs recorded it (those cannot
   * be resumed, but read as before) and from baselines.
   */
  dataIdentity?: DataIdentity;
  startedAt: string;
  updatedAt: string;
  /** Wall-clock seconds of training so far (summed over resumes). */
  seconds: number;
  step: number;
  totalSteps: number;
  epochs: EpochMetrics[];
  /** Downsampled per-step log (every logEvery steps). */
  steps: Array<{ step: number } & Record<string, number>>;
  /** Evaluation results (kNN, linear probe) keyed by name. */
  results: Record<string, unknown>;
  checkpoint: string | null;
  resumedFrom: number[];
}

export function gitInfo(cwd = process.cwd()): RunRecord['git'] {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
        cwd,
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .toString()
        .trim().length > 0;
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

export function writeRunRecord(file: string, rec: RunRecord): void {
  rec.updatedAt = new Date().toISOString();
  writeJsonAtomic(file, rec);
}

export class RunRecordError extends Error {
  override name = 'RunRecordError';
}

export function readRunRecord(file: string): RunRecord {
  let rec: RunRecord;
  try {
    rec = JSON.parse(fs.readFileSync(file, 'utf8')) as RunRecord;
  } catch (e) {
    throw new RunRecordError(`cannot read run record ${file}: ${(e as Error).message}`);
  }
  if (rec.format !== 'dinotwins-run/1')
    throw new RunRecordError(`${file} is not a dinotwins run record (format ${String(rec.format)})`);
  return rec;
}

/** All run records under `dir` (each run in its own folder with record.json), oldest first. */
export function listRunRecords(dir: string): Array<{ file: string; record: RunRecord }> {
  if (!fs.existsSync(dir)) return [];
  const out: Array<{ file: string; record: RunRecord }> = [];
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name, 'record.json');
    if (fs.existsSync(file)) out.push({ file, record: readRunRecord(file) });
  }
  return out.sort((a, b) => a.record.startedAt.localeCompare(b.record.startedAt));
}

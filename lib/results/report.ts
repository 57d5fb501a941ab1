/**
 * Reporting from run records (the only source of results): training curves, collapse monitors,
 * kNN curves, and the results table side by side with the original project's numbers.
 */
import { RunRecord } from '../train/runRecord';
import { lineChart, ChartResult } from '../viz/charts';

/**
 * The original project's table (ArthurZucker/DeepLearningProject, CIFAR-10, linear probe top-1 %);
 * `backboneKind` is the kind of our config's backbone that each row compares with.
 */
export const ORIGINAL_RESULTS: ReadonlyArray<{
  method: string;
  backbone: string;
  backboneKind: 'resnet' | 'vit';
  top1: number;
}> = Object.freeze([
  { method: 'barlow', backbone: 'ResNet-50', backboneKind: 'resnet', top1: 80.3 },
  { method: 'dino', backbone: 'ResNet-50', backboneKind: 'resnet', top1: 48.7 },
  { method: 'dino-twins', backbone: 'ResNet-50', backboneKind: 'resnet', top1: 85.3 },
  { method: 'dino-twins', backbone: 'ViT-T/4', backboneKind: 'vit', top1: 78.2 },
]);

/** Human name of a record's backbone. */
export function backboneName(rec: RunRecord): string {
  const b = (rec.config as { backbone?: { kind: string; depth?: number; width?: number; preset?: string } }).backbone;
  if (!b) return '?';
  if (b.kind === 'resnet') return `ResNet-${b.depth}${b.width !== 64 ? ` (width ${b.width})` : ''}`;
  return `ViT ${b.preset}`;
}

function series(rec: RunRecord, keys: string[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const k of keys) {
    const ys = rec.steps.map((s) => s[k]).filter((v) => typeof v === 'number');
    if (ys.length > 0) out[k] = ys;
  }
  return out;
}

/** Loss curve(s), collapse monitors and kNN accuracy of one pretraining run. */
export async function plotTraining(rec: RunRecord): Promise<ChartResult[]> {
  const charts: ChartResult[] = [];
  const steps = rec.steps.map((s) => s.step);
  const toSeries = (m: Record<string, number[]>) =>
    Object.entries(m).map(([name, y]) => ({ name, y, x: steps.slice(0, y.length) }));
  charts.push(
    await lineChart(toSeries(series(rec, ['loss', 'dino'])), {
      title: `${rec.id}: training loss`,
      xLabel: 'step',
      yLabel: 'loss',
    }),
  );
  if (rec.steps.some((s) => typeof s.barlow === 'number'))
    charts.push(
      await lineChart(toSeries(series(rec, ['barlow'])), {
        title: 'Barlow Twins term',
        xLabel: 'step',
        yLabel: 'loss',
        logY: true,
      }),
    );
  const mon = series(rec, ['featStd', 'ccDiag', 'ccOffDiag']);
  if (Object.keys(mon).length)
    charts.push(
      await lineChart(toSeries(mon), {
        title: 'collapse monitors: feature std (L2-normalised), cross-correlation diagonal / off-diagonal means',
        xLabel: 'step',
        yLabel: 'value',
      }),
    );
  const dino = series(rec, ['teacherEntropy', 'teacherStudentKL']);
  if (Object.keys(dino).length)
    charts.push(
      await lineChart(toSeries(dino), {
        title: 'DINO monitors: teacher entropy and teacher-student KL (nats)',
        xLabel: 'step',
        yLabel: 'nats',
      }),
    );
  const ep = rec.epochs.filter((e) => typeof e.extra.knnTop1 === 'number');
  if (ep.length) {
    charts.push(
      await lineChart(
        [{ name: 'kNN top-1 (val, %)', x: ep.map((e) => e.epoch + 1), y: ep.map((e) => e.extra.knnTop1) }],
        { title: 'kNN monitor on the validation split', xLabel: 'epoch', yLabel: 'top-1 %', points: true },
      ),
    );
  }
  return charts;
}

export interface ResultRow {
  run: string;
  kind: string;
  method: string;
  backbone: string;
  /** The record's status: 'done', or 'interrupted', 'running', 'stopped', 'failed' for a run that did not finish. */
  status: string;
  /** Steps trained of the planned steps, e.g. '115/400'. */
  steps: string;
  /** Planned epochs (the config's); a run that did not finish trained fewer (see steps). */
  epochs: number;
  budget: string;
  /** kNN top-1 % on the validation split at the last epoch (monitor). */
  knnVal: number | null;
  /** kNN top-1 % on the test set (final report). */
  knnTest: number | null;
  /** Linear-probe top-1 % on the test set (final report). */
  linearTest: number | null;
  linearVal: number | null;
  minutes: number;
  backend: string;
  data: string;
}

/** One row per run record, built only from what the records hold. */
export function resultRows(records: readonly RunRecord[]): ResultRow[] {
  return records.map((r) => {
    const lp = r.results.linearProbe as { testTop1?: number | null; valTop1?: number } | undefined;
    const kt = r.results.knnTest as { top1?: number } | undefined;
    const lastKnn = [...r.epochs].reverse().find((e) => typeof e.extra.knnTop1 === 'number');
    return {
      run: r.id,
      kind: r.kind,
      method: r.method,
      backbone: backboneName(r),
      status: r.status,
      steps: `${r.step}/${r.totalSteps}`,
      epochs: Number((r.config as { epochs?: number }).epochs ?? 0),
      budget: r.budget,
      knnVal: lastKnn ? lastKnn.extra.knnTop1 : null,
      knnTest: kt?.top1 ?? null,
      linearTest: lp?.testTop1 ?? null,
      linearVal: lp?.valTop1 ?? null,
      minutes: Math.round((r.seconds / 60) * 10) / 10,
      backend: r.backend?.chosen ?? '?',
      data: String((r.data as { source?: string }).source ?? ''),
    };
  });
}

/** The runs a results table or chart shows, and those it leaves out. */
export interface RunSelection {
  shown: RunRecord[];
  /** Runs that did not finish (interrupted, running, stopped, failed), when not asked for. */
  leftOut: RunRecord[];
  /** One line naming what was left out and why ('' when nothing was). */
  note: string;
}

/**
 * Finished runs only, unless `unfinished` asks for every run: an interrupted or half-done run is not
 * a result (its config still says the planned epochs), so tables and charts of results leave it out
 * and say so.
 */
export function selectRuns(records: readonly RunRecord[], opts: { unfinished?: boolean } = {}): RunSelection {
  if (opts.unfinished) return { shown: [...records], leftOut: [], note: '' };
  const shown = records.filter((r) => r.status === 'done');
  const leftOut = records.filter((r) => r.status !== 'done');
  const list = leftOut.map((r) => `${r.id} (${r.status} at step ${r.step} of ${r.totalSteps})`);
  const note =
    leftOut.length === 0
      ? ''
      : `${leftOut.length} unfinished run${leftOut.length === 1 ? '' : 's'} left out of the results: ${list.join(', ')}`;
  return { shown, leftOut, note };
}

/** The kNN monitor (validation top-1 % per epoch) of each pretraining run that logged it, as line-chart series. */
export function knnCurves(records: readonly RunRecord[]): Array<{ name: string; x: number[]; y: number[] }> {
  return records
    .filter((r) => r.kind === 'pretrain')
    .map((r) => {
      const ep = r.epochs.filter((e) => typeof e.extra.knnTop1 === 'number');
      return { name: r.id, x: ep.map((e) => e.epoch + 1), y: ep.map((e) => e.extra.knnTop1) };
    })
    .filter((c) => c.y.length > 0);
}

/**
 * The results table as the notebook and results.md show it: our rows (mean ± std over seeds) joined
 * with the original project's rows, the pairwise seed-noise comparisons, and the bars of both.
 * Plain row objects with display column names, for viz.table and viz.markdownTable alike.
 */
import { ORIGINAL_RESULTS } from './report';
import { rowLabel, seedBars, type SeedGroup, type SeedMetric } from './seedGroups';
import type { SeedComparison } from './seedCompare';
import type { Summary } from './stats/describe';
import type { BarDatum } from '../viz/specs';

/** A table row: display column name -> cell. */
export type TableRow = Record<string, string | number>;

/** '36.14 ± 2.13' over 2+ seeds, '31.69 ± —' over one (no spread from one seed), '—' without values. */
export function formatMeanStd(s: Summary, digits = 2): string {
  if (s.mean === null) return '—';
  return `${s.mean.toFixed(digits)} ± ${s.std === null ? '—' : s.std.toFixed(digits)}`;
}

/**
 * Our rows beside the original project's: every seed group, with the original's linear-probe top-1
 * of the same method and backbone kind (their ResNet-50 / ViT-T/4) or '—', then the original rows
 * we have no run for.
 */
export function oursVsOriginalRows(groups: readonly SeedGroup[], budget: string): TableRow[] {
  const original = new Map(ORIGINAL_RESULTS.map((r) => [rowLabel(r.method, r.backboneKind), r]));
  const matched = new Set<string>();
  const rows: TableRow[] = groups.map((g) => {
    const o = original.get(rowLabel(g.method, g.backboneKind));
    if (o) matched.add(rowLabel(o.method, o.backboneKind));
    return {
      row: g.label,
      [`ours (${budget}): backbone`]: g.backbone,
      config: g.config,
      epochs: g.epochs,
      'seeds (n)': g.n,
      'linear test % (mean ± std)': formatMeanStd(g.linearTest),
      'kNN test % (mean ± std)': formatMeanStd(g.knnTest),
      'kNN val % (mean ± std)': formatMeanStd(g.knnVal),
      'original: backbone': o ? o.backbone : '—',
      'original: linear test %': o ? o.top1.toFixed(1) : '—',
    };
  });
  for (const o of ORIGINAL_RESULTS) {
    if (matched.has(rowLabel(o.method, o.backboneKind))) continue;
    rows.push({
      row: rowLabel(o.method, o.backboneKind),
      [`ours (${budget}): backbone`]: '—',
      config: '—',
      epochs: '—',
      'seeds (n)': 0,
      'linear test % (mean ± std)': '—',
      'kNN test % (mean ± std)': '—',
      'kNN val % (mean ± std)': '—',
      'original: backbone': o.backbone,
      'original: linear test %': o.top1.toFixed(1),
    });
  }
  return rows;
}

/**
 * Which seeds and runs make each row (the trace from a row to its records). The seed values are
 * named apart from the count of seeds of oursVsOriginalRows ('seeds (n)').
 */
export function seedGroupRunsRows(groups: readonly SeedGroup[]): TableRow[] {
  return groups.map((g) => ({
    row: g.label,
    'seed values': g.seeds.join(', '),
    runs: g.runs.join(', '),
    ...(g.duplicates.length ? { 'left out (same seed, older)': g.duplicates.join(', ') } : {}),
  }));
}

const METRIC_NAMES: Readonly<Record<SeedMetric, string>> = Object.freeze({
  linearTest: 'linear test',
  knnTest: 'kNN test',
  knnVal: 'kNN val',
});

/** The pairwise comparisons as table rows (differences in points of top-1 %). */
export function comparisonRows(comparisons: readonly SeedComparison[]): TableRow[] {
  const f = (v: number | null, d: number) => (v === null ? '—' : v.toFixed(d));
  return comparisons.map((c) => ({
    metric: METRIC_NAMES[c.metric],
    higher: `${c.a} (n=${c.nA})`,
    lower: `${c.b} (n=${c.nB})`,
    'difference (points)': f(c.diff, 2),
    detectable: c.threshold === null ? '—' : `≥ ${c.threshold.toFixed(2)}`,
    t: f(c.t, 2),
    df: f(c.df, 1),
    p: c.p === null ? '—' : c.p < 1e-4 ? c.p.toExponential(1) : c.p.toFixed(4),
    verdict: c.note ? `${c.verdict} (${c.note})` : c.verdict,
  }));
}

/** Bars of our rows (mean ± std, seeds as points) next to the original project's linear-probe numbers. */
export function oursVsOriginalBars(groups: readonly SeedGroup[], budget: string): BarDatum[] {
  const n = [...new Set(groups.filter((g) => g.linearTest.mean !== null).map((g) => g.linearTest.n))].sort(
    (a, b) => a - b,
  );
  const ours = seedBars(groups, 'linearTest', `ours (${budget}, ${n.length ? n.join('/') : 0} seeds)`);
  const original = ORIGINAL_RESULTS.map((r) => ({
    label: rowLabel(r.method, r.backboneKind),
    value: r.top1,
    group: 'original (ResNet-50 / ViT-T/4)',
  }));
  return [...ours, ...original];
}

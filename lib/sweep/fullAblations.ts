/**
 * Ablations at the budget's full schedule, for the accuracy half of notebook 07's question. The short
 * grid (ablations.ts, one epoch of half the data) shows collapse starting but cannot show an accuracy
 * cost: no cell there beats the untrained encoder. Here a few cells train as long as the main runs
 * and are probed like them, and each is compared with the main runs of its method (the budget's own
 * setting, notebook 06's rows), so every cell differs from its reference by one switch.
 *
 * The cells are chosen per method (a variant lists the methods it applies to); the runs go to
 * runs/<budget>/sweeps/ablations-full/<method>-<cell>-s<seed>-<hash>.
 */
import { BUDGETS, BudgetName, experimentConfig } from '../config/budget';
import { ConfigLayer, Method } from '../config/config';
import { RunRecord } from '../train/runRecord';
import { identityDifferences, runIdentity } from '../train/runName';
import type { DataIdentity } from '../data/dataIdentity';
import { Summary } from '../results/stats/describe';
import { formatMeanStd } from '../results/resultsTable';
import { welchTTest, WelchResult } from '../results/stats/welch';
import { ABLATION_LABELS, AblationSwitch, collapseCount, collapseOf, over } from './ablations';
import { SlurmOptions, SweepPlan, SweepSpec } from './spec';
import { RunMonitors, recordMonitors, sweepResults } from './records';

/**
 * The cells trained at full length: what DINO-Twins might drop (sharpening, which the short grid says
 * it survives while DINO loses feature rank; centering, where the short grid had no verdict; the EMA
 * teacher, without which the short grid shows both methods heading for one prototype, asked at full
 * length by issue 27), and DINO without sharpening as the contrast. The teacher-temperature warm-up
 * is not a switch of the short recipe (it trains at a constant 0.04).
 */
export const FULL_ABLATION_CELLS: Readonly<Partial<Record<Method, readonly AblationSwitch[]>>> = Object.freeze({
  'dino-twins': ['sharpening', 'centering', 'emaTeacher'],
  dino: ['sharpening'],
});

export interface FullAblationOptions {
  cells?: Partial<Record<Method, readonly AblationSwitch[]>>;
  seeds?: number[];
  slurm?: SlurmOptions;
}

/** The overrides of a full-length cell: the budget's own setting with one switch off. */
export function fullAblationOverrides(off: AblationSwitch): ConfigLayer {
  return { dino: { ablations: { [off]: false } } } as ConfigLayer;
}

/**
 * The full-length cells as one sweep spec: a variant per switch, limited to the methods that drop it,
 * at the budget's full schedule, probed like the main runs.
 */
export function fullAblationSweepSpec(budget: BudgetName, opts: FullAblationOptions = {}): SweepSpec {
  const cells = Object.entries(opts.cells ?? FULL_ABLATION_CELLS) as [Method, readonly AblationSwitch[]][];
  for (const [method, switches] of cells)
    if (switches.length === 0) throw new Error(`fullAblationSweepSpec: no cells for ${method}`);
  const switches = [...new Set(cells.flatMap(([, s]) => s))];
  return {
    name: 'ablations-full',
    budget,
    methods: cells.map(([m]) => m),
    probe: true,
    variants: switches.map((s) => ({
      label: ABLATION_LABELS[s],
      overrides: fullAblationOverrides(s),
      methods: cells.filter(([, sw]) => sw.includes(s)).map(([m]) => m),
    })),
    folder: 'sweeps/ablations-full/{method}-{variant}-s{seed}-{hash}',
    ...(opts.seeds ? { seeds: opts.seeds } : {}),
    ...(opts.slurm ? { slurm: opts.slurm } : {}),
  };
}

/** One row of the full-length comparison: a method's main runs ('recipe') or one of its cells, over seeds. */
export interface FullAblationRow {
  method: Method;
  /** 'recipe' (the method's main runs at the budget's own setting) or the cell's label ('no-sharpening'). */
  cell: string;
  seeds: number[];
  runs: string[];
  linearTest: Summary;
  knnTest: Summary;
  featStd: Summary;
  teacherEntropy: Summary;
  teacherStudentKL: Summary;
  effectiveRank: Summary;
  logK: number;
  /** Collapsed runs by kind (`collapseOf` per run), '' for none. */
  collapse: string;
  /** Welch's t-test of this row against the method's recipe row (null for the recipe, or with fewer than 2 seeds a side). */
  linearVsRecipe: WelchResult | null;
  knnVsRecipe: WelchResult | null;
}

/**
 * Whether `rec` is the budget's own setting of its method at its seed on `data`, as the notebooks and
 * run-budget train it: the recipe a cell is compared with. Records written before runs recorded their
 * data (the committed results) are matched on their config alone.
 */
function isRecipeRun(rec: RunRecord, budget: BudgetName, data: DataIdentity): boolean {
  if (rec.kind !== 'pretrain' || rec.status !== 'done' || !rec.results.linearProbe) return false;
  try {
    const want = runIdentity(experimentConfig(rec.method as Method, BUDGETS[budget], { seed: rec.seed }), data);
    return identityDifferences({ config: rec.config, data: rec.dataIdentity ?? data }, want).length === 0;
  } catch {
    return false; // a method this code no longer knows
  }
}

function welchOrNull(a: Summary, b: Summary): WelchResult | null {
  return a.n >= 2 && b.n >= 2 ? welchTTest(a.values, b.values) : null;
}

/**
 * Per method (in the plan's order): its main runs as the 'recipe' row, then each full-length cell,
 * over the finished and probed seeds, with Welch's t-test of each cell against the recipe on the
 * linear probe and kNN (test). `mainRecords` are the budget's main run records (`mainRunRecords`);
 * those not at the budget's own setting (other backbones, overrides) are left out.
 */
function summaryRow(
  method: Method,
  cell: string,
  seeds: number[],
  runs: string[],
  ms: readonly RunMonitors[],
  logK: number,
  ref?: FullAblationRow,
): FullAblationRow {
  const linearTest = over(ms.map((m) => m.linearTest));
  const knnTest = over(ms.map((m) => m.knnTest));
  return {
    method,
    cell,
    seeds,
    runs,
    linearTest,
    knnTest,
    featStd: over(ms.map((m) => m.featStd)),
    teacherEntropy: over(ms.map((m) => m.teacherEntropy)),
    teacherStudentKL: over(ms.map((m) => m.teacherStudentKL)),
    effectiveRank: over(ms.map((m) => m.effectiveRank)),
    logK,
    collapse: collapseCount(ms.map((m) => collapseOf(m.teacherEntropy, logK))),
    linearVsRecipe: ref ? welchOrNull(linearTest, ref.linearTest) : null,
    knnVsRecipe: ref ? welchOrNull(knnTest, ref.knnTest) : null,
  };
}

/** A method's main runs at the budget's own setting on `data`, over their seeds: the 'recipe' row cells are compared with. */
export function recipeRow(
  budget: BudgetName,
  method: Method,
  data: DataIdentity,
  mainRecords: readonly RunRecord[],
): FullAblationRow {
  const logK = Math.log(experimentConfig(method, BUDGETS[budget]).dino?.head.out ?? NaN);
  const main = mainRecords
    .filter((r) => r.method === method && isRecipeRun(r, budget, data))
    .sort((a, b) => a.seed - b.seed);
  return summaryRow(
    method,
    'recipe',
    main.map((r) => r.seed),
    main.map((r) => r.id),
    main.map((r) => recordMonitors(r)),
    logK,
  );
}

/**
 * Per method (in the plan's order): its main runs as the 'recipe' row, then each full-length cell,
 * over the finished and probed seeds, with Welch's t-test of each cell against the recipe on the
 * linear probe and kNN (test). `mainRecords` are the budget's main run records (`mainRunRecords`);
 * those not at the budget's own setting (other backbones, overrides) are left out.
 */
export function fullAblationTable(
  budget: BudgetName,
  plan: SweepPlan,
  mainRecords: readonly RunRecord[],
): FullAblationRow[] {
  const rows: FullAblationRow[] = [];
  const results = sweepResults(plan);
  const methods = [...new Set(plan.runs.map((r) => r.method))];
  for (const method of methods) {
    const recipe = recipeRow(budget, method, plan.data, mainRecords);
    rows.push(recipe);
    const variants = [...new Set(plan.runs.filter((r) => r.method === method).map((r) => r.variant))];
    for (const v of variants) {
      const done = results.filter((r) => r.method === method && r.variant === v && r.status === 'done');
      rows.push(
        summaryRow(
          method,
          v,
          done.map((r) => r.seed),
          done.map((r) => r.run),
          done,
          recipe.logK,
          recipe,
        ),
      );
    }
  }
  return rows;
}

/** "-1.20 (p 0.41)": a cell's difference from its recipe and Welch's p; '—' without a test. */
function diffCell(w: WelchResult | null): string {
  if (!w) return '—';
  const p = w.p < 1e-4 ? w.p.toExponential(1) : w.p.toFixed(2);
  return `${w.diff >= 0 ? '+' : ''}${w.diff.toFixed(2)} (p ${p})`;
}

/** The comparison as display rows (notebook 07's table and results/<budget>/ablations-full.md). */
export function fullAblationDisplayRows(rows: readonly FullAblationRow[]): Record<string, string>[] {
  return rows.map((r) => ({
    method: r.method,
    cell: r.cell,
    seeds: r.seeds.join(', ') || '—',
    'linear test %': formatMeanStd(r.linearTest, 2),
    'Δ linear vs recipe': diffCell(r.linearVsRecipe),
    'kNN test %': formatMeanStd(r.knnTest, 2),
    'Δ kNN vs recipe': diffCell(r.knnVsRecipe),
    'feature std': formatMeanStd(r.featStd, 3),
    'teacher entropy': formatMeanStd(r.teacherEntropy, 2),
    'log K': r.logK.toFixed(2),
    'teacher-student KL': formatMeanStd(r.teacherStudentKL, 2),
    'effective rank': formatMeanStd(r.effectiveRank, 1),
    collapse: r.collapse || '—',
  }));
}

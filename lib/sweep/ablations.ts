/**
 * The ablation grid of notebook 07 as a sweep spec, so the notebook and `npm run sweep` train the
 * same runs into the same folders (runs/<budget>/ablations/<method>-<variant>-<hash>).
 *
 * The question (the original project's second aim): which of DINO's components can DINO-Twins drop?
 * Every cell starts from the budget's DINO setting (DINO's recipe for the budget, lib/methods/dino.ts) with DINO's own teacher
 * temperature schedule put back (warm-up from `warmupTeacherTemp` 0.04 to 0.07): the cell 'all'.
 * Each other cell switches one component off. DINO's warm-up is per epoch (epoch e of W at
 * 0.04 + (0.07 - 0.04)·e/(W-1), 0.07 after), so in a one-epoch run 'all' trains at 0.04 throughout,
 * which is the short recipe's temperature, and 'no-warmup' (0.07 from the first step) is the test
 * of the warm-up. Where the budget's own setting trains differently from 'all' (smoke: two epochs),
 * it is one more cell, 'recipe', so the grid also shows what the main runs' setting does.
 */
import { ablationBudget, BUDGETS, BudgetName, experimentConfig } from '../config/budget';
import { ConfigLayer, Method, PretrainConfig } from '../config/config';
import { DINO_DEFAULTS, DINO_SECTION, dinoTemps } from '../methods/dino';
import { registeredMethods } from '../methods/registry';
import { summarize, Summary } from '../results/stats/describe';
import { SweepResultRow } from './records';
import { SlurmOptions, SweepPlan, SweepSpec, SweepVariant } from './spec';

/** DINO's components, each switched off in one cell of the grid. */
export const ABLATION_SWITCHES = ['centering', 'teacherTempWarmup', 'sharpening', 'emaTeacher'] as const;
export type AblationSwitch = (typeof ABLATION_SWITCHES)[number];

/** The short label of each cell in run folders and tables. */
export const ABLATION_LABELS: Readonly<Record<AblationSwitch, string>> = Object.freeze({
  centering: 'no-centering',
  teacherTempWarmup: 'no-warmup',
  sharpening: 'no-sharpening',
  emaTeacher: 'no-ema',
});

/** The overrides of the cell with `off` switched off ('all': nothing off). */
export function ablationOverrides(off: AblationSwitch | 'all'): ConfigLayer {
  // DINO's defaults have every component on.
  const ablations = off === 'all' ? { ...DINO_DEFAULTS.ablations } : { ...DINO_DEFAULTS.ablations, [off]: false };
  // Without sharpening the teacher uses the student's temperature, so no teacher temperature is read.
  return { dino: off === 'sharpening' ? { ablations } : { ablations, teacherTemp: DINO_DEFAULTS.teacherTemp } };
}

export interface AblationSweepOptions {
  methods?: Method[];
  seeds?: number[];
  slurm?: SlurmOptions;
}

/**
 * Whether two DINO configs train the same: equal outside the teacher temperature, and the same teacher
 * temperature in every epoch (DINO's warm-up is per epoch, so a warm-up longer than the run never
 * leaves its start).
 */
function sameTraining(a: PretrainConfig, b: PretrainConfig): boolean {
  const temps = (c: PretrainConfig) =>
    Array.from({ length: c.epochs }, (_, e) => (c.dino ? dinoTemps(c.dino, e).teacherTemp : undefined));
  const rest = (c: PretrainConfig) => {
    const {
      ablations,
      teacherTemp: _t,
      warmupTeacherTemp: _w,
      warmupTeacherTempEpochs: _e,
      ...dino
    } = c.dino ?? ({} as NonNullable<PretrainConfig['dino']>);
    return JSON.stringify({ ...c, dino: { ...dino, ablations: { ...ablations, teacherTempWarmup: null } } });
  };
  return rest(a) === rest(b) && JSON.stringify(temps(a)) === JSON.stringify(temps(b));
}

/** The grid for `budget`: 'all', one cell per switch, and 'recipe' where the budget's DINO setting trains differently from 'all'. */
export function ablationSweepSpec(budget: BudgetName, opts: AblationSweepOptions = {}): SweepSpec {
  // Default: every method with a DINO part.
  const methods =
    opts.methods ??
    (registeredMethods()
      .filter((m) => m.sections.includes(DINO_SECTION))
      .map((m) => m.name) as Method[]);
  const variants: SweepVariant[] = [
    { label: 'all', overrides: ablationOverrides('all') },
    ...ABLATION_SWITCHES.map((s) => ({ label: ABLATION_LABELS[s], overrides: ablationOverrides(s) })),
  ];
  const ab = ablationBudget(BUDGETS[budget]);
  if (methods.some((m) => !sameTraining(experimentConfig(m, ab), experimentConfig(m, ab, ablationOverrides('all')))))
    variants.push({ label: 'recipe' });
  return {
    name: '07-ablations',
    budget,
    ablationBudget: true,
    methods,
    variants,
    folder: 'ablations/{method}-{variant}-{hash}',
    ...(opts.seeds ? { seeds: opts.seeds } : {}),
    ...(opts.slurm ? { slurm: opts.slurm } : {}),
  };
}

/** One cell of the grid (a method and a variant) over its finished seeds. */
export interface AblationCell {
  method: Method;
  variant: string;
  /** Finished runs (seeds) in this cell, and how many the grid has. */
  done: number;
  planned: number;
  seeds: number[];
  knnVal: Summary;
  featStd: Summary;
  teacherEntropy: Summary;
  teacherStudentKL: Summary;
  effectiveRank: Summary;
  /** log of the number of prototypes: the entropy of a uniform teacher. */
  logK: number;
  /**
   * The runs whose teacher collapsed, by kind ('one prototype 1/2 seeds; uniform teacher 1/2 seeds'), from each
   * run's teacher entropy (see `collapseOf`): per run, because seeds can split (one collapses, one does not). '' for none.
   */
  collapse: string;
}

/** The finished runs' values of one monitor (runs without it are left out), summarised over seeds. */
export function over(values: readonly (number | null)[]): Summary {
  return summarize(values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)));
}

/** Fractions of log K that mark a collapsed teacher: above the first it is uniform, below the second it picks one prototype. */
export const COLLAPSE_BOUNDS = Object.freeze({ uniform: 0.98, onePrototype: 0.1 });

/** 'uniform teacher' when the teacher's entropy is within 2 % of log K, 'one prototype' below a tenth of it, else ''. */
export function collapseOf(teacherEntropy: number | null, logK: number): string {
  if (teacherEntropy === null) return '';
  if (teacherEntropy >= COLLAPSE_BOUNDS.uniform * logK) return 'uniform teacher';
  if (teacherEntropy <= COLLAPSE_BOUNDS.onePrototype * logK) return 'one prototype';
  return '';
}

/** Collapsed runs by kind ("one prototype 1/2 seeds"), from per-run kinds of `collapseOf`; "" for none. */
export function collapseCount(kinds: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const k of kinds) if (k) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} ${n}/${kinds.length} seeds`).join('; ');
}

/** Rows of the grid's results (`sweepResults`) folded into one cell per method and variant, in plan order. */
export function ablationCells(plan: SweepPlan, rows: readonly SweepResultRow[]): AblationCell[] {
  const cells = new Map<
    string,
    { method: Method; variant: string; runs: SweepResultRow[]; planned: number; logK: number }
  >();
  plan.runs.forEach((run, i) => {
    const key = `${run.method}\u0000${run.variant}`;
    const c = cells.get(key) ?? {
      method: run.method,
      variant: run.variant,
      runs: [],
      planned: 0,
      logK: Math.log(run.config.dino?.head.out ?? NaN),
    };
    c.planned++;
    if (rows[i].status === 'done') c.runs.push(rows[i]);
    cells.set(key, c);
  });
  return [...cells.values()].map((c) => {
    const teacherEntropy = over(c.runs.map((r) => r.teacherEntropy));
    return {
      method: c.method,
      variant: c.variant,
      done: c.runs.length,
      planned: c.planned,
      seeds: c.runs.map((r) => r.seed),
      knnVal: over(c.runs.map((r) => r.knnVal)),
      featStd: over(c.runs.map((r) => r.featStd)),
      teacherEntropy,
      teacherStudentKL: over(c.runs.map((r) => r.teacherStudentKL)),
      effectiveRank: over(c.runs.map((r) => r.effectiveRank)),
      logK: c.logK,
      collapse: collapseCount(c.runs.map((r) => collapseOf(r.teacherEntropy, c.logK))),
    };
  });
}

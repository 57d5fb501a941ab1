/**
 * The Barlow Twins control (issue 27): where does DINO-Twins' kNN gain over Barlow Twins come from?
 * DINO-Twins beat Barlow Twins on kNN in the 234-step cpu budget, but kept the gain with its DINO term
 * made inert, and its config differs from Barlow Twins' in three more places: augmentation (no blur,
 * colour jitter at half strength: DINO's short recipe), weight decay (cosine 0.04 -> 0.4 against a
 * constant 1e-4) and gradient clipping (global norm 3 against none). The control trains Barlow Twins
 * with all three of DINO-Twins' settings, and with each one alone, at the budget's full schedule,
 * probed like the main runs; each cell is then compared with Barlow Twins' and DINO-Twins' main runs.
 */
import { BUDGETS, BudgetName, experimentConfig } from '../config/budget';
import { ConfigLayer } from '../config/config';
import { RunRecord } from '../train/runRecord';
import { FullAblationRow, fullAblationTable, recipeRow } from './fullAblations';
import { SlurmOptions, SweepPlan, SweepSpec } from './spec';
import { welchTTest, WelchResult } from '../results/stats/welch';

/** The three settings in which DINO-Twins' config differs from Barlow Twins' (besides its DINO term). */
export const CONTROL_FACTORS = ['augment', 'weightDecay', 'clip'] as const;
export type ControlFactor = (typeof CONTROL_FACTORS)[number];

/** DINO-Twins' value of each factor in `budget`, as overrides of a Barlow Twins run. */
export function controlOverrides(budget: BudgetName, factors: readonly ControlFactor[]): ConfigLayer {
  const twins = experimentConfig('dino-twins', BUDGETS[budget]);
  const out: Record<string, unknown> = {};
  for (const f of factors) {
    if (f === 'augment') out.augment = { blur: twins.augment.blur, jitterStrength: twins.augment.jitterStrength };
    if (f === 'weightDecay')
      Object.assign(out, { weightDecay: twins.weightDecay, weightDecayEnd: twins.weightDecayEnd });
    if (f === 'clip') out.optimizer = { clipGradNorm: twins.optimizer.clipGradNorm };
  }
  return out as ConfigLayer;
}

/** Cell labels: 'twins-all' (all three), 'twins-augment', 'twins-weight-decay', 'twins-clip'. */
export const CONTROL_LABELS: Readonly<Record<ControlFactor | 'all', string>> = Object.freeze({
  all: 'twins-all',
  augment: 'twins-augment',
  weightDecay: 'twins-weight-decay',
  clip: 'twins-clip',
});

export interface BarlowControlOptions {
  /** Seeds of the cell with all three factors (default the spec's default seeds). */
  seeds?: number[];
  /** Seeds of each one-factor cell (default `seeds`). */
  factorSeeds?: number[];
  /** Leave the one-factor cells out. */
  allOnly?: boolean;
  slurm?: SlurmOptions;
}

/**
 * The control as sweep specs (one per seed set, since a spec has one seed list): Barlow Twins with
 * all of DINO-Twins' three settings, and with each alone, probed; runs go to
 * runs/<budget>/sweeps/barlow-control/barlow-<cell>-s<seed>-<hash>.
 */
export function barlowControlSweepSpecs(budget: BudgetName, opts: BarlowControlOptions = {}): SweepSpec[] {
  const common = {
    budget,
    methods: ['barlow' as const],
    probe: true,
    folder: 'sweeps/barlow-control/{method}-{variant}-s{seed}-{hash}',
    ...(opts.slurm ? { slurm: opts.slurm } : {}),
  };
  const all: SweepSpec = {
    ...common,
    name: 'barlow-control',
    variants: [{ label: CONTROL_LABELS.all, overrides: controlOverrides(budget, CONTROL_FACTORS) }],
    ...(opts.seeds ? { seeds: opts.seeds } : {}),
  };
  if (opts.allOnly) return [all];
  const single: SweepSpec = {
    ...common,
    name: 'barlow-control-factors',
    variants: CONTROL_FACTORS.map((f) => ({ label: CONTROL_LABELS[f], overrides: controlOverrides(budget, [f]) })),
    ...((opts.factorSeeds ?? opts.seeds) ? { seeds: opts.factorSeeds ?? opts.seeds } : {}),
  };
  return [all, single];
}

/** A control cell against Barlow Twins' main runs ('recipe') and against DINO-Twins' main runs. */
export interface ControlRow extends FullAblationRow {
  /** Welch's test of this row against DINO-Twins' main runs, linear probe and kNN (null with fewer than 2 seeds a side). */
  linearVsTwins: WelchResult | null;
  knnVsTwins: WelchResult | null;
}

/**
 * Barlow Twins' main runs, each control cell, and DINO-Twins' main runs as the last row, with Welch's
 * t-tests of every Barlow row against both references. `plans` are the expanded control specs.
 */
export function barlowControlTable(
  budget: BudgetName,
  plans: readonly SweepPlan[],
  mainRecords: readonly RunRecord[],
): ControlRow[] {
  if (plans.length === 0) throw new Error('barlowControlTable: no plans');
  // Barlow Twins' recipe row once, then each plan's cells.
  const rows = plans.flatMap((p, i) =>
    fullAblationTable(budget, p, mainRecords).filter((r) => i === 0 || r.cell !== 'recipe'),
  );
  const twins = recipeRow(budget, 'dino-twins', plans[0].data, mainRecords);
  const vs = (a: FullAblationRow, metric: 'linearTest' | 'knnTest'): WelchResult | null =>
    a[metric].n >= 2 && twins[metric].n >= 2 ? welchTTest(a[metric].values, twins[metric].values) : null;
  return [
    ...rows.map((r) => ({ ...r, linearVsTwins: vs(r, 'linearTest'), knnVsTwins: vs(r, 'knnTest') })),
    { ...twins, linearVsTwins: null, knnVsTwins: null },
  ];
}

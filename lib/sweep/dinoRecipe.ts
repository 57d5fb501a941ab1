/**
 * Does DINO's short-run recipe (SHORT_DINO, lib/methods/dino.ts) still suit a budget that trains
 * several times longer (issue 27)? Two of its departures from main_dino.py were made because 234
 * steps were too few: a constant EMA momentum of 0.99 (DINO: 0.996 cosine to 1, under which the
 * teacher hardly moved in 234 steps) and a constant teacher temperature of 0.04 (DINO: 0.04 warming up
 * to 0.07 over 30 of 100+ epochs). This sweep puts DINO's published EMA, its temperature warm-up, and
 * both back into the budget's DINO, at the full schedule, probed; each cell is compared with DINO's
 * main runs (the 'recipe' row, fullAblationTable).
 */
import { BUDGETS, BudgetName, experimentConfig } from '../config/budget';
import { ConfigLayer } from '../config/config';
import { DINO_DEFAULTS } from '../methods/dino';
import { SlurmOptions, SweepSpec } from './spec';

/** The fraction of a run DINO's warm-up takes (main_dino.py: 30 epochs of its 100-epoch runs, fewer of longer ones). */
export const DINO_WARMUP_FRACTION = 0.3;

/** DINO's published EMA schedule. */
export function publishedEma(): ConfigLayer {
  return {
    dino: { emaMomentum: DINO_DEFAULTS.emaMomentum, emaMomentumEnd: DINO_DEFAULTS.emaMomentumEnd },
  } as ConfigLayer;
}

/** DINO's teacher-temperature warm-up (0.04 to 0.07), over DINO_WARMUP_FRACTION of the budget's epochs (at least 1). */
export function publishedWarmup(budget: BudgetName): ConfigLayer {
  const epochs = experimentConfig('dino', BUDGETS[budget]).epochs;
  return {
    dino: {
      teacherTemp: DINO_DEFAULTS.teacherTemp,
      warmupTeacherTemp: DINO_DEFAULTS.warmupTeacherTemp,
      ablations: { teacherTempWarmup: true },
      warmupTeacherTempEpochs: Math.max(1, Math.round(DINO_WARMUP_FRACTION * epochs)),
    },
  } as ConfigLayer;
}

export interface DinoRecipeOptions {
  seeds?: number[];
  slurm?: SlurmOptions;
}

/** The recipe check as one sweep spec: cells 'published-ema', 'published-warmup' and 'published-both'. */
export function dinoRecipeSweepSpec(budget: BudgetName, opts: DinoRecipeOptions = {}): SweepSpec {
  const ema = publishedEma();
  const warm = publishedWarmup(budget);
  const both = { dino: { ...(ema.dino as object), ...(warm.dino as object) } } as ConfigLayer;
  return {
    name: 'dino-recipe',
    budget,
    methods: ['dino'],
    probe: true,
    variants: [
      { label: 'published-ema', overrides: ema },
      { label: 'published-warmup', overrides: warm },
      { label: 'published-both', overrides: both },
    ],
    folder: 'sweeps/dino-recipe/{method}-{variant}-s{seed}-{hash}',
    ...(opts.seeds ? { seeds: opts.seeds } : {}),
    ...(opts.slurm ? { slurm: opts.slurm } : {}),
  };
}

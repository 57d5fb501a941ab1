/**
 * Compute budgets for the notebooks and the CLI, chosen with DINOTWINS_BUDGET:
 *  - smoke: CI; a few minutes for all notebooks on 2 cores, on a small real subset;
 *  - cpu:   a real run on 2 cores on wasm (narrow ResNet-18, 3 epochs of a 10,000-image subset): about
 *           15 minutes of pretraining for Barlow Twins (2.4 s per step of 128 images) and 20-30 for DINO
 *           and DINO-Twins (two views each too, with the teacher's pass and the DINO head), then about
 *           45 s of probes (results/cpu/results.md has each run's minutes);
 *  - gpu:   the full schedule (ResNet-18, all 45,000 training images, 200 epochs).
 * Each budget fixes the data subset, the backbone and the schedule in one layer shared by every
 * method; a method adds its own settings per budget (its registry entry's `recipe`, e.g. DINO's
 * short-run recipe in lib/methods/dino.ts). A notebook's config cell starts from these and may
 * override anything. A budget key that no method can read is an error (`checkBudget`).
 */
import {
  BackboneConfig,
  ConfigLayer,
  hasPath,
  leafPaths,
  Method,
  neverRead,
  PretrainConfig,
  resolveConfig,
} from './config';
import { methodDefinition, registeredMethods } from '../methods/registry';
import type { DataIdentity, SourceIdentity } from '../data/dataIdentity';
import { AUGMENT_DEFAULTS } from '../augment/presets';

export const BUDGETS_NAMES = ['smoke', 'cpu', 'gpu'] as const;
export type BudgetName = (typeof BUDGETS_NAMES)[number];
export const BUDGET_ENV = 'DINOTWINS_BUDGET';

export interface Budget {
  name: BudgetName;
  /** Class-balanced pretraining/probe training subset: images per class (0 = all that remain after validation). */
  trainPerClass: number;
  /** Validation images per class, taken from the training set (never from test). */
  valPerClass: number;
  /** Test images used for the final report (0 = the full 10,000). */
  testLimit: number;
  /**
   * The pretraining config layer of this budget, shared by every method (see lib/config/config.ts): applied
   * after the defaults and before the method's recipe for this budget and a notebook's overrides;
   * keys a method does not read are dropped for that method, and each key must be read by some method.
   */
  pretrain: ConfigLayer & { backbone: BackboneConfig; epochs: number; batchSize: number };
  /** Run the kNN monitor every N epochs. */
  knnEvery: number;
  /** Linear-probe epochs per setting. */
  probeEpochs: number;
  /** Supervised-baseline epochs. */
  supervisedEpochs: number;
}

/** What every budget shares: one warm-up epoch, a checkpoint every 50 steps. */
const EVERY_BUDGET = { warmupEpochs: 1, checkpointEvery: 50 } as const;

export const BUDGETS: Readonly<Record<BudgetName, Budget>> = Object.freeze({
  smoke: {
    name: 'smoke',
    trainPerClass: 40,
    valPerClass: 10,
    testLimit: 500,
    knnEvery: 1,
    probeEpochs: 5,
    supervisedEpochs: 2,
    pretrain: {
      ...EVERY_BUDGET,
      backbone: { kind: 'resnet', depth: 18, width: 4 },
      epochs: 2,
      batchSize: 50,
      logEvery: 1,
      // Short runs scale DINO's 30-of-100+ epochs of teacher-temperature warm-up down (read where the warm-up is on: the ablation grid's cells).
      projector: { hidden: 128, out: 128, layers: 3 },
      dino: { head: { out: 256, hidden: 128, bottleneck: 64 }, warmupTeacherTempEpochs: 1 },
    },
  },
  cpu: {
    name: 'cpu',
    trainPerClass: 1000,
    valPerClass: 100,
    testLimit: 0,
    knnEvery: 1,
    probeEpochs: 30,
    supervisedEpochs: 3,
    pretrain: {
      ...EVERY_BUDGET,
      backbone: { kind: 'resnet', depth: 18, width: 16 },
      epochs: 3,
      batchSize: 128,
      logEvery: 5,
      // 512-wide heads: chosen when DINO-Twins trained on 4 views here, where a 1024-wide projector overflowed the wasm heap.
      // DINO's cpu recipe now trains on the 2 global views; wider heads were not measured since.
      projector: { hidden: 512, out: 512, layers: 3 },
      dino: { head: { out: 1024, hidden: 512, bottleneck: 128 }, warmupTeacherTempEpochs: 1 },
    },
  },
  gpu: {
    name: 'gpu',
    trainPerClass: 0,
    valPerClass: 500,
    testLimit: 0,
    knnEvery: 10,
    probeEpochs: 100,
    supervisedEpochs: 200,
    pretrain: {
      ...EVERY_BUDGET,
      backbone: { kind: 'resnet', depth: 18, width: 64 },
      epochs: 200,
      batchSize: 256,
      logEvery: 5,
      augment: { nLocal: 4 },
      projector: { hidden: 2048, out: 2048, layers: 3 },
      dino: { head: { out: 4096, hidden: 2048, bottleneck: 256 }, warmupTeacherTempEpochs: 30 },
    },
  },
});

export class BudgetError extends Error {
  override name = 'BudgetError';
}

/** The budget named by DINOTWINS_BUDGET (default smoke); a bad name is an error listing the valid ones. */
export function budgetFromEnv(env: NodeJS.ProcessEnv = process.env): Budget {
  const v = (env[BUDGET_ENV] ?? 'smoke').trim().toLowerCase();
  if (!(BUDGETS_NAMES as readonly string[]).includes(v))
    throw new BudgetError(
      `${BUDGET_ENV}="${env[BUDGET_ENV]}" is not a budget; valid values: ${BUDGETS_NAMES.join(', ')}`,
    );
  return BUDGETS[v as BudgetName];
}

/**
 * Throws a BudgetError for a key of `b` that no run reads: a `pretrain` key that no registered method
 * can read (or whose readers all take it from their own recipe for `b` instead), or a recipe key its
 * method never reads. A key a method reads only under some switches (the warm-up's length without the
 * warm-up) is not dead: a notebook or an ablation can turn the switch on.
 */
export function checkBudget(b: Budget): void {
  const methods = registeredMethods();
  const dead: string[] = [];
  for (const p of leafPaths(b.pretrain)) {
    const recipeSets = (m: (typeof methods)[number]) => hasPath(m.recipe[b.name] ?? {}, p);
    if (methods.some((m) => neverRead(m, p) === null && !recipeSets(m))) continue;
    dead.push(
      `pretrain.${p} (${methods.map((m) => neverRead(m, p) ?? `"${m.name}" takes it from its ${b.name} recipe`).join('; ')})`,
    );
  }
  for (const m of methods) {
    for (const p of leafPaths(m.recipe[b.name] ?? {})) {
      const why = neverRead(m, p);
      if (why) dead.push(`the ${b.name} recipe of method "${m.name}" sets ${p} (${why})`);
    }
  }
  if (dead.length > 0) throw new BudgetError(`budget "${b.name}": no run reads ${dead.join('; ')}; remove it`);
}

/**
 * The full config for `method` under `budget`: the budget's shared layer, then the method's recipe for
 * this budget (its registry entry), then `overrides` (a notebook's config cell, CLI flags).
 */
export function experimentConfig(method: Method, budget: Budget, overrides: ConfigLayer = {}): PretrainConfig {
  checkBudget(budget);
  const recipe = methodDefinition(method).recipe[budget.name];
  return resolveConfig({ ...overrides, method }, { budget: recipe ? [budget.pretrain, recipe] : [budget.pretrain] });
}

/**
 * The identity of a budget's training data taken from `source` with split seed `splitSeed`: what
 * `loadExperimentData` (lib/protocol/experiment.ts) trains on, known without loading it (sweeps name runs with it).
 */
export function budgetDataIdentity(
  source: SourceIdentity,
  budget: Pick<Budget, 'trainPerClass' | 'valPerClass'>,
  splitSeed = 0,
): DataIdentity {
  return {
    source: source.source,
    checksum: source.checksum,
    perClass: budget.trainPerClass,
    valPerClass: budget.valPerClass,
    splitSeed,
  };
}

/**
 * The config layer for square images of `imageSize` pixels: the views at the data's size (augment.globalSize,
 * and localSize at half of it, as DINO's 16 is half of CIFAR-10's 32), so the models take their input size
 * from the data. Empty at the default size (32: CIFAR-10), so those configs and run names do not change.
 */
export function imageSizeLayer(imageSize: number): ConfigLayer {
  if (!Number.isInteger(imageSize) || imageSize < 1)
    throw new BudgetError(`imageSize must be a positive integer, got ${imageSize}`);
  if (imageSize === AUGMENT_DEFAULTS.globalSize) return {};
  return {
    augment: {
      globalSize: imageSize,
      localSize: Math.max(1, Math.round((imageSize * AUGMENT_DEFAULTS.localSize) / AUGMENT_DEFAULTS.globalSize)),
    },
  };
}

/**
 * `budget` for data of `imageSize`-pixel images: its shared layer with `imageSizeLayer` on top (the budget's
 * own augment keys kept), so `experimentConfig` gives views at the data's size. A notebook's overrides still win.
 */
export function budgetForImageSize(budget: Budget, imageSize: number): Budget {
  const layer = imageSizeLayer(imageSize);
  if (!layer.augment) return budget;
  return { ...budget, pretrain: { ...budget.pretrain, augment: { ...budget.pretrain.augment, ...layer.augment } } };
}

/** Settings for the ablation notebook's runs: shorter than the method runs, so all switches fit the budget. */
export function ablationBudget(b: Budget): Budget {
  if (b.name === 'gpu') return { ...b, pretrain: { ...b.pretrain, epochs: 50 } };
  if (b.name === 'cpu') return { ...b, trainPerClass: 500, pretrain: { ...b.pretrain, epochs: 1 } };
  return b;
}

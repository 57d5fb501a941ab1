/**
 * Compute budgets for the notebooks and the CLI, chosen with DINOTWINS_BUDGET:
 *  - smoke: CI; a few minutes for all notebooks on 2 cores, on a small real subset;
 *  - cpu:   a real run on 2 cores, about 10-20 minutes per method on wasm (narrow ResNet-18,
 *           3 epochs of a 10,000-image subset: Barlow Twins measured at 2.4 s per step of 128
 *           images, 9.5 min pretraining + 45 s probes; the multi-crop methods take longer);
 *  - gpu:   the full schedule (ResNet-18, all 45,000 training images, 200 epochs).
 * Each budget fixes the data subset, the backbone and the schedule; a notebook's config cell
 * starts from these and may override anything.
 */
import { BackboneConfig, DeepPartial, PretrainConfig } from './train/config';

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
  backbone: BackboneConfig;
  epochs: number;
  batchSize: number;
  /** Width of the Barlow projector and the DINO head (prototypes); narrow budgets shrink them. */
  projector: { hidden: number; out: number; layers: number };
  dinoHead: { out: number; hidden: number; bottleneck: number };
  nLocal: number;
  /** Run the kNN monitor every N epochs. */
  knnEvery: number;
  /** Linear-probe epochs per setting. */
  probeEpochs: number;
  /** Teacher-temperature warm-up epochs (DINO uses 30 of 100+; short runs scale it down). */
  warmupTeacherTempEpochs: number;
  /** Supervised-baseline epochs. */
  supervisedEpochs: number;
}

export const BUDGETS: Readonly<Record<BudgetName, Budget>> = Object.freeze({
  smoke: {
    name: 'smoke', trainPerClass: 40, valPerClass: 10, testLimit: 500,
    backbone: { kind: 'resnet', depth: 18, width: 4 }, epochs: 2, batchSize: 50,
    projector: { hidden: 128, out: 128, layers: 3 }, dinoHead: { out: 256, hidden: 128, bottleneck: 64 }, nLocal: 2,
    knnEvery: 1, probeEpochs: 5, warmupTeacherTempEpochs: 1, supervisedEpochs: 2,
  },
  cpu: {
    name: 'cpu', trainPerClass: 1000, valPerClass: 100, testLimit: 0,
    backbone: { kind: 'resnet', depth: 18, width: 16 }, epochs: 3, batchSize: 128,
    // 512-wide heads: a 1024-wide projector over 4 views overflows the wasm heap in DINO-Twins.
    projector: { hidden: 512, out: 512, layers: 3 }, dinoHead: { out: 1024, hidden: 512, bottleneck: 128 }, nLocal: 2,
    knnEvery: 1, probeEpochs: 30, warmupTeacherTempEpochs: 1, supervisedEpochs: 3,
  },
  gpu: {
    name: 'gpu', trainPerClass: 0, valPerClass: 500, testLimit: 0,
    backbone: { kind: 'resnet', depth: 18, width: 64 }, epochs: 200, batchSize: 256,
    projector: { hidden: 2048, out: 2048, layers: 3 }, dinoHead: { out: 4096, hidden: 2048, bottleneck: 256 }, nLocal: 4,
    knnEvery: 10, probeEpochs: 100, warmupTeacherTempEpochs: 30, supervisedEpochs: 200,
  },
});

export class BudgetError extends Error {
  override name = 'BudgetError';
}

/** The budget named by DINOTWINS_BUDGET (default smoke); a bad name is an error listing the valid ones. */
export function budgetFromEnv(env: NodeJS.ProcessEnv = process.env): Budget {
  const v = (env[BUDGET_ENV] ?? 'smoke').trim().toLowerCase();
  if (!(BUDGETS_NAMES as readonly string[]).includes(v)) throw new BudgetError(`${BUDGET_ENV}="${env[BUDGET_ENV]}" is not a budget; valid values: ${BUDGETS_NAMES.join(', ')}`);
  return BUDGETS[v as BudgetName];
}

/** The pretraining-config overrides a budget implies (merge with the notebook's own overrides). */
export function budgetConfig(b: Budget): DeepPartial<PretrainConfig> {
  return {
    backbone: b.backbone,
    epochs: b.epochs,
    batchSize: b.batchSize,
    warmupEpochs: Math.min(1, b.epochs),
    projector: b.projector,
    augment: { nLocal: b.nLocal },
    dino: { head: b.dinoHead, warmupTeacherTempEpochs: b.warmupTeacherTempEpochs },
    checkpointEvery: 50,
    logEvery: b.name === 'smoke' ? 1 : 5,
  };
}

/** Settings for the ablation notebook's runs: shorter than the method runs, so all switches fit the budget. */
export function ablationBudget(b: Budget): Budget {
  return b.name === 'gpu' ? { ...b, epochs: 50 } : b.name === 'cpu' ? { ...b, epochs: 1, trainPerClass: 500 } : b;
}

/**
 * Command-line options for `npm run pretrain`: parsed and validated into a PretrainConfig before
 * any compute, so a typo fails in milliseconds with a message naming the option.
 */
import { parseArgs } from 'util';
import * as fs from 'fs';
import { ConfigError, ConfigLayer, CONFIG_DEFAULTS, Method, METHODS, PretrainConfig, resolveConfig, BackboneConfig } from '../config';
import { Budget, BudgetName, BUDGETS, BUDGETS_NAMES } from '../budget';
import type { DataIdentity } from '../data/identity';
import { runDirFor } from './runName';

export const BACKBONE_NAMES = ['resnet18', 'resnet50', 'vit-tiny4', 'vit-tiny4-seed'] as const;

/** The ResNet width when --width is not given: the config's default (one default per knob). */
function defaultWidth(): number {
  const b = CONFIG_DEFAULTS.backbone;
  if (b.kind !== 'resnet') throw new ConfigError('give --width: the default backbone is not a ResNet');
  return b.width;
}

export function parseBackboneName(name: string, width?: number): BackboneConfig {
  switch (name) {
    case 'resnet18': return { kind: 'resnet', depth: 18, width: width ?? defaultWidth() };
    case 'resnet50': return { kind: 'resnet', depth: 50, width: width ?? defaultWidth() };
    case 'vit-tiny4': return { kind: 'vit', preset: 'tiny4' };
    case 'vit-tiny4-seed': return { kind: 'vit', preset: 'tiny4-seed' };
    default: throw new ConfigError(`--backbone "${name}" is not one of ${BACKBONE_NAMES.join(', ')}`);
  }
}

export interface CliOptions {
  config: PretrainConfig;
  /** --run-dir; without it the folder is named from the config and the data (`cliRunDir`), once the data is loaded. */
  runDir?: string;
  resume: boolean;
  /** Images per class in the class-balanced training subset (0 = all). */
  perClass: number;
  /** Run kNN on a held-out validation split every N epochs (0 = never). */
  knnEvery: number;
  /** --budget: the record's label and the runs folder; its validation split (cpu's for a label that names no budget). */
  budget: string;
  help: boolean;
}

/** The budget of a CLI run: --budget's (cpu's when it names none), with the --per-class subset and the --knn-every interval. */
export function cliBudget(o: CliOptions): Budget {
  const base = (BUDGETS_NAMES as readonly string[]).includes(o.budget) ? BUDGETS[o.budget as BudgetName] : BUDGETS.cpu;
  return { ...base, trainPerClass: o.perClass, knnEvery: o.knnEvery > 0 ? o.knnEvery : Number.MAX_SAFE_INTEGER };
}

/**
 * The run's folder: --run-dir, else runs/<--budget>/<run name>, named from the config and the data
 * (lib/train/runName.ts) as the notebooks name runs: another --per-class is another folder.
 */
export function cliRunDir(o: CliOptions, data: DataIdentity): string {
  return o.runDir ?? runDirFor(o.config, o.budget, data);
}

export const CLI_HELP = `Usage: npm run pretrain -- --method barlow|dino|dino-twins [options]

  --method       barlow | dino | dino-twins                    (required)
  --backbone     ${BACKBONE_NAMES.join(' | ')}  (default resnet18)
  --width        ResNet width (default ${defaultWidth()}, the config's; 64 is the standard ResNet)
  --epochs N     --batch N     --lr X     --seed N
  --optimizer    adam | adamw | sgd | lars
  --local-crops  number of local views for DINO / DINO-Twins (default ${CONFIG_DEFAULTS.augment.nLocal})
  --per-class N  class-balanced training subset, N images per class (default 0 = all 50,000 minus validation)
  --knn-every N  kNN accuracy on the validation split every N epochs (default 1)
  --config FILE  JSON with any PretrainConfig fields (command-line options win)
  --run-dir DIR  where record.json and checkpoint.ckpt go (default runs/<budget>/<method>-<backbone>-s<seed>-<hash>, the hash
                 of the config and the data, named as the notebooks name runs: a changed option or subset is a new
                 folder, the same options resume; a folder of another run is refused, naming what differs)
  --no-resume    start over even if DIR has a checkpoint
  --budget NAME  label for the run record (default custom)

Tuning advice (from the DINO and Barlow Twins papers): if DINO collapses, lower the teacher temperature
(dino.teacherTemp 0.04) or raise the EMA momentum; Barlow Twins is robust to batch size but wants a wide projector.
`;

export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        method: { type: 'string' }, backbone: { type: 'string' }, width: { type: 'string' }, epochs: { type: 'string' },
        batch: { type: 'string' }, lr: { type: 'string' }, seed: { type: 'string' }, optimizer: { type: 'string' },
        'local-crops': { type: 'string' }, 'per-class': { type: 'string' }, 'knn-every': { type: 'string' },
        config: { type: 'string' }, 'run-dir': { type: 'string' }, 'no-resume': { type: 'boolean' }, budget: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\n\n${CLI_HELP}`);
  }
  const v = parsed.values;
  const num = (name: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const x = Number(s);
    if (!Number.isFinite(x)) throw new ConfigError(`--${name} must be a number, got "${s}"`);
    return x;
  };
  if (v.help) return { help: true } as CliOptions;
  if (!v.method) throw new ConfigError(`--method is required (one of ${METHODS.join(', ')})\n\n${CLI_HELP}`);
  if (!(METHODS as readonly string[]).includes(v.method)) throw new ConfigError(`--method "${v.method}" is not one of ${METHODS.join(', ')}`);
  let fileCfg: ConfigLayer = {};
  if (v.config) {
    try {
      fileCfg = JSON.parse(fs.readFileSync(v.config, 'utf8'));
    } catch (e) {
      throw new ConfigError(`--config ${v.config}: ${(e as Error).message}`);
    }
  }
  const over: ConfigLayer & { method: Method } = { ...fileCfg, method: v.method as Method };
  if (v.backbone !== undefined || v.width !== undefined) over.backbone = parseBackboneName(v.backbone ?? 'resnet18', num('width', v.width));
  if (v.epochs !== undefined) over.epochs = num('epochs', v.epochs);
  if (v.batch !== undefined) over.batchSize = num('batch', v.batch);
  if (v.lr !== undefined) over.lr = num('lr', v.lr);
  if (v.seed !== undefined) over.seed = num('seed', v.seed);
  if (v.optimizer !== undefined) over.optimizer = { ...(over.optimizer ?? {}), kind: v.optimizer as PretrainConfig['optimizer']['kind'] };
  if (v['local-crops'] !== undefined) over.augment = { ...(over.augment ?? {}), nLocal: num('local-crops', v['local-crops']) };
  const config = resolveConfig(over);
  const perClass = num('per-class', v['per-class']) ?? 0;
  if (!Number.isInteger(perClass) || perClass < 0) throw new ConfigError(`--per-class must be an integer >= 0, got ${perClass}`);
  const knnEvery = num('knn-every', v['knn-every']) ?? 1;
  return {
    config,
    runDir: v['run-dir'],
    resume: !v['no-resume'],
    perClass,
    knnEvery,
    budget: v.budget ?? 'custom',
    help: false,
  };
}

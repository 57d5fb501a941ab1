/**
 * Command-line options for `npm run pretrain`: parsed and validated into a PretrainConfig before
 * any compute, so a typo fails in milliseconds with a message naming the option. The data is
 * CIFAR-10 or an image folder (`--data`); once it is loaded, `cliConfig` puts the views at its
 * image size (lib/config/budget.ts `imageSizeLayer`), as the notebooks do.
 */
import { parseArgs } from 'util';
import * as fs from 'fs';
import * as path from 'path';
import {
  ConfigError,
  ConfigLayer,
  CONFIG_DEFAULTS,
  Method,
  METHODS,
  PretrainConfig,
  resolveConfig,
  BackboneConfig,
} from '../config/config';
import { Budget, BudgetName, BUDGETS, BUDGETS_NAMES, imageSizeLayer } from '../config/budget';
import type { DataIdentity } from '../data/dataIdentity';
import { CIFAR10_DATA, type ImageFolderSpec } from '../data/dataSpec';
import { LABEL_SOURCES, type LabelSource } from '../data/imageFolderScan';
import { MAX_IMAGE_SIZE, MIN_IMAGE_SIZE } from '../data/imageDecode';
import { checkSplitOptions } from '../data/imageFolderSplit';
import { IMAGE_FOLDER_DEFAULTS } from '../data/imageFolder';
import { UNLABELLED_SUBSET_FACTOR } from '../data/folderExperiment';
import { runName, runsDir } from './runName';

export const BACKBONE_NAMES = ['resnet18', 'resnet50', 'vit-tiny4', 'vit-tiny4-seed'] as const;

/** The ResNet width when --width is not given: the config's default (one default per knob). */
function defaultWidth(): number {
  const b = CONFIG_DEFAULTS.backbone;
  if (b.kind !== 'resnet') throw new ConfigError('give --width: the default backbone is not a ResNet');
  return b.width;
}

export function parseBackboneName(name: string, width?: number): BackboneConfig {
  switch (name) {
    case 'resnet18':
      return { kind: 'resnet', depth: 18, width: width ?? defaultWidth() };
    case 'resnet50':
      return { kind: 'resnet', depth: 50, width: width ?? defaultWidth() };
    case 'vit-tiny4':
      return { kind: 'vit', preset: 'tiny4' };
    case 'vit-tiny4-seed':
      return { kind: 'vit', preset: 'tiny4-seed' };
    default:
      throw new ConfigError(`--backbone "${name}" is not one of ${BACKBONE_NAMES.join(', ')}`);
  }
}

export interface CliOptions {
  /** The config before the data is known (the views at CIFAR-10's 32); `cliConfig` gives the run's. */
  config: PretrainConfig;
  /** The command line's config layer (--config file, then the flags), for `cliConfig`. */
  overrides: ConfigLayer & { method: Method };
  /** --data: 'cifar10', or an image folder with the folder flags (--image-size, --skip-bad, --labels, --csv, --val-split, --test-split). */
  data: typeof CIFAR10_DATA | ImageFolderSpec;
  /** --probe-epochs: linear-probe epochs after pretraining (kNN and the probe on the test split; 0 skips). Default: the budget's. */
  probeEpochs?: number;
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

/** The run's config once the data's image size is known: the command line's layers over `imageSizeLayer(imageSize)` (CIFAR-10's 32: `o.config`). */
export function cliConfig(o: CliOptions, imageSize: number): PretrainConfig {
  const layer = imageSizeLayer(imageSize);
  return layer.augment ? resolveConfig(o.overrides, { budget: layer }) : o.config;
}

/**
 * The run's folder: --run-dir, else runs/<--budget>/[<runsSubdir>/]<run name>, named from the config
 * and the data (lib/train/runName.ts) as the notebooks name runs: another --per-class or another
 * folder's content is another folder. `runsSubdir`: an image folder's (ExperimentData.runsSubdir);
 * `config`: the run's (`cliConfig`; default `o.config`).
 */
export function cliRunDir(
  o: CliOptions,
  data: DataIdentity,
  opts: { runsSubdir?: string; config?: PretrainConfig } = {},
): string {
  return o.runDir ?? path.join(runsDir(o.budget), opts.runsSubdir ?? '', runName(opts.config ?? o.config, data));
}

export const CLI_HELP = `Usage: npm run pretrain -- --method barlow|dino|dino-twins [--data FOLDER] [options]

  --method       barlow | dino | dino-twins                    (required)
  --data D       cifar10 (default) or a folder of your images: FOLDER/<class>/*.jpg|png|webp (labels from the folder
                 names) or FOLDER/*.jpg|... (unlabelled: kNN and the linear probe are skipped). Decoded once and cached
                 under data/image-folders/; a changed folder is decoded again (changed files only) and is a new run
  --image-size N side of the square images stored from the folder (default 32; 64 and 96 work too); the views
                 follow it (augment.globalSize N, localSize N/2)
  --skip-bad     skip images that cannot be decoded (listed in the manifest) instead of stopping with their names
  --labels L     auto (default: class folders if any) | folders | none (pretrain on class folders without their labels)
  --csv FILE     labels from a CSV of file,label (paths relative to the folder) instead of folder names
  --val-split X  --test-split X  validation / test images per class taken from the folder: a fraction (default 0.1),
                 a count, or 0
  --backbone     ${BACKBONE_NAMES.join(' | ')}  (default resnet18)
  --width        ResNet width (default ${defaultWidth()}, the config's; 64 is the standard ResNet)
  --epochs N     --batch N     --lr X     --seed N
  --optimizer    adam | adamw | sgd | lars
  --local-crops  number of local views for DINO / DINO-Twins (default ${CONFIG_DEFAULTS.augment.nLocal})
  --per-class N  class-balanced training subset, N images per class (default 0 = all 50,000 minus validation;
                 an unlabelled folder: ${UNLABELLED_SUBSET_FACTOR} x N images)
  --knn-every N  kNN accuracy on the validation split every N epochs (default 1; unlabelled: effective rank and feature std)
  --probe-epochs N  after pretraining, kNN and the linear probe (N epochs) on the test split, written into the run
                 record (default: the budget's, ${BUDGETS.cpu.probeEpochs} for cpu; 0 skips; skipped with a message without labels)
  --config FILE  JSON with any PretrainConfig fields (command-line options win)
  --run-dir DIR  where record.json and checkpoint.ckpt go (default runs/<budget>/<method>-<backbone>-s<seed>-<hash>, for a
                 folder runs/<budget>/folders/<folder name>/<method>-..., the hash
                 of the config and the data, named as the notebooks name runs: a changed option or subset is a new
                 folder, the same options resume; a folder of another run is refused, naming what differs)
  --no-resume    start over even if DIR has a checkpoint
  --budget NAME  label for the run record (default custom)

Tuning advice (from the DINO and Barlow Twins papers): if DINO collapses, lower the teacher temperature
(dino.teacherTemp 0.04) or raise the EMA momentum; Barlow Twins is robust to batch size but wants a wide projector.
`;

/** --data and the folder flags; a folder flag without a folder is an error naming it. Paths are taken from the working directory. */
function parseDataFlags(
  v: Record<string, string | boolean | undefined>,
  num: (name: string, s: string | undefined) => number | undefined,
): CliOptions['data'] {
  const data = typeof v.data === 'string' ? v.data : CIFAR10_DATA;
  const folderFlags = ['image-size', 'skip-bad', 'labels', 'csv', 'val-split', 'test-split'].filter(
    (k) => v[k] !== undefined,
  );
  if (data.trim().toLowerCase() === CIFAR10_DATA) {
    if (folderFlags.length > 0)
      throw new ConfigError(
        `${folderFlags.map((k) => `--${k}`).join(', ')} need${folderFlags.length === 1 ? 's' : ''} --data FOLDER (CIFAR-10 is 32x32 and labelled)`,
      );
    return CIFAR10_DATA;
  }
  if (data.trim() === '') throw new ConfigError('--data must be cifar10 or a folder, got an empty string');
  const folder: ImageFolderSpec = { path: path.resolve(data) };
  const imageSize = num('image-size', v['image-size'] as string | undefined);
  if (imageSize !== undefined) {
    if (!Number.isInteger(imageSize) || imageSize < MIN_IMAGE_SIZE || imageSize > MAX_IMAGE_SIZE)
      throw new ConfigError(
        `--image-size must be an integer in [${MIN_IMAGE_SIZE}, ${MAX_IMAGE_SIZE}], got ${imageSize}`,
      );
    folder.imageSize = imageSize;
  }
  if (v['skip-bad']) folder.skipBad = true;
  if (v.labels !== undefined) {
    if (!(LABEL_SOURCES as readonly string[]).includes(v.labels as string))
      throw new ConfigError(`--labels must be one of ${LABEL_SOURCES.join(', ')}, got "${String(v.labels)}"`);
    folder.labels = v.labels as LabelSource;
  }
  if (typeof v.csv === 'string') folder.csv = path.resolve(v.csv);
  const val = num('val-split', v['val-split'] as string | undefined);
  if (val !== undefined) folder.val = val;
  const test = num('test-split', v['test-split'] as string | undefined);
  if (test !== undefined) folder.test = test;
  try {
    checkSplitOptions({
      val: val ?? IMAGE_FOLDER_DEFAULTS.val,
      test: test ?? IMAGE_FOLDER_DEFAULTS.test,
      seed: IMAGE_FOLDER_DEFAULTS.seed,
    });
  } catch (e) {
    throw new ConfigError(`--val-split / --test-split: ${(e as Error).message}`);
  }
  return folder;
}

export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        method: { type: 'string' },
        backbone: { type: 'string' },
        width: { type: 'string' },
        epochs: { type: 'string' },
        batch: { type: 'string' },
        lr: { type: 'string' },
        seed: { type: 'string' },
        optimizer: { type: 'string' },
        'local-crops': { type: 'string' },
        'per-class': { type: 'string' },
        'knn-every': { type: 'string' },
        config: { type: 'string' },
        'run-dir': { type: 'string' },
        'no-resume': { type: 'boolean' },
        budget: { type: 'string' },
        data: { type: 'string' },
        'image-size': { type: 'string' },
        'skip-bad': { type: 'boolean' },
        labels: { type: 'string' },
        csv: { type: 'string' },
        'val-split': { type: 'string' },
        'test-split': { type: 'string' },
        'probe-epochs': { type: 'string' },
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
  if (!(METHODS as readonly string[]).includes(v.method))
    throw new ConfigError(`--method "${v.method}" is not one of ${METHODS.join(', ')}`);
  let fileCfg: ConfigLayer = {};
  if (v.config) {
    try {
      fileCfg = JSON.parse(fs.readFileSync(v.config, 'utf8'));
    } catch (e) {
      throw new ConfigError(`--config ${v.config}: ${(e as Error).message}`);
    }
  }
  const over: ConfigLayer & { method: Method } = { ...fileCfg, method: v.method as Method };
  if (v.backbone !== undefined || v.width !== undefined)
    over.backbone = parseBackboneName(v.backbone ?? 'resnet18', num('width', v.width));
  if (v.epochs !== undefined) over.epochs = num('epochs', v.epochs);
  if (v.batch !== undefined) over.batchSize = num('batch', v.batch);
  if (v.lr !== undefined) over.lr = num('lr', v.lr);
  if (v.seed !== undefined) over.seed = num('seed', v.seed);
  if (v.optimizer !== undefined)
    over.optimizer = { ...(over.optimizer ?? {}), kind: v.optimizer as PretrainConfig['optimizer']['kind'] };
  if (v['local-crops'] !== undefined)
    over.augment = { ...(over.augment ?? {}), nLocal: num('local-crops', v['local-crops']) };
  const config = resolveConfig(over);
  const perClass = num('per-class', v['per-class']) ?? 0;
  if (!Number.isInteger(perClass) || perClass < 0)
    throw new ConfigError(`--per-class must be an integer >= 0, got ${perClass}`);
  const knnEvery = num('knn-every', v['knn-every']) ?? 1;
  const probeEpochs = num('probe-epochs', v['probe-epochs']);
  if (probeEpochs !== undefined && (!Number.isInteger(probeEpochs) || probeEpochs < 0))
    throw new ConfigError(`--probe-epochs must be an integer >= 0, got ${probeEpochs}`);
  return {
    config,
    overrides: over,
    data: parseDataFlags(v, num),
    ...(probeEpochs !== undefined ? { probeEpochs } : {}),
    runDir: v['run-dir'],
    resume: !v['no-resume'],
    perClass,
    knnEvery,
    budget: v.budget ?? 'custom',
    help: false,
  };
}

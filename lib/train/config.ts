/**
 * Pretraining configuration: one typed object composed from each component's defaults, fully
 * serialisable (it goes into every run record and checkpoint). `resolveConfig` fills defaults and
 * rejects bad values with a ConfigError before any compute.
 */
import { OptimizerConfig, OPTIMIZER_DEFAULTS, OPTIMIZER_KINDS } from './optimizers';
import { buildBackbone, BackboneSpec, VIT_PRESETS } from '../models/index';

export const METHODS = ['barlow', 'dino', 'dino-twins'] as const;
export type Method = (typeof METHODS)[number];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Serialisable backbone description (see lib/models). */
export type BackboneConfig =
  | { kind: 'resnet'; depth: 18 | 50; width: number }
  | { kind: 'vit'; preset: string; [override: string]: unknown };

export interface ProjectorConfig {
  /** Hidden width of the Barlow Twins projector. Default 2048 (the original project; the paper used 8192). */
  hidden: number;
  /** Output width. Default 2048. */
  out: number;
  /** Number of Linear layers (Linear-BN-ReLU blocks then a final Linear). Default 3. */
  layers: number;
}

export interface DinoHeadConfig {
  /** Number of prototypes K. Default 4096 (CIFAR-sized; DINO used 65536 on ImageNet). */
  out: number;
  /** MLP hidden width. Default 2048. */
  hidden: number;
  /** Bottleneck width before the weight-normalised last layer. Default 256. */
  bottleneck: number;
  /** Batch norm inside the MLP. Default false. */
  useBn: boolean;
  /** Fix the weight-norm gain to 1. Default true. */
  normLastLayer: boolean;
}

export interface AblationConfig {
  /** Subtract the EMA center from teacher outputs. Default true. */
  centering: boolean;
  /** Warm the teacher temperature up from warmupTeacherTemp. Default true (false: constant teacherTemp). */
  teacherTempWarmup: boolean;
  /** Sharpen the teacher (teacherTemp < studentTemp). Default true (false: teacher temp = student temp). */
  sharpening: boolean;
  /** EMA teacher. Default true (false: teacher = student with stop-gradient). */
  emaTeacher: boolean;
}

export interface DinoConfig {
  head: DinoHeadConfig;
  /** Student temperature. Default 0.1. */
  studentTemp: number;
  /** Final teacher temperature. Default 0.07 (DINO's advice: lower to 0.04 if training is unstable). */
  teacherTemp: number;
  /** Initial teacher temperature. Default 0.04. */
  warmupTeacherTemp: number;
  /** Epochs of linear teacher-temperature warm-up. Default 30. */
  warmupTeacherTempEpochs: number;
  /** Center momentum. Default 0.9. */
  centerMomentum: number;
  /** Base EMA momentum, cosine-scheduled to 1. Default 0.996 (DINO: use 0.9995 with batch size 256 on ImageNet; small data sets need lower values). */
  emaMomentum: number;
  /** Freeze the last head layer for this many epochs. Default 1. */
  freezeLastLayerEpochs: number;
  ablations: AblationConfig;
}

export interface TwinsConfig {
  /** Weight of the Barlow term. Default 0.0025 (the original project). */
  beta: number;
  /** Barlow off-diagonal weight. Default 0.005 (the original project). */
  lambda: number;
  /** Where the Barlow term applies: a separate projector on the student backbone features (the original), or the DINO head outputs. */
  target: 'projector' | 'head';
}

export interface AugmentConfig {
  /** Size of the global views. Default 32. */
  globalSize: number;
  /** Number of local views (DINO, DINO-Twins). Default 4. */
  nLocal: number;
  /** Size of the local views. Default 16. */
  localSize: number;
}

export interface PretrainConfig {
  method: Method;
  backbone: BackboneConfig;
  /** Seed for weights, data order and augmentations. */
  seed: number;
  epochs: number;
  batchSize: number;
  /** Peak learning rate, reached after warm-up. */
  lr: number;
  /** Final learning rate of the cosine decay. */
  minLr: number;
  warmupEpochs: number;
  /** Weight decay at the start and the end (cosine). */
  weightDecay: number;
  weightDecayEnd: number;
  optimizer: OptimizerConfig;
  augment: AugmentConfig;
  projector: ProjectorConfig;
  /** Barlow Twins off-diagonal weight. Default 0.0051. */
  barlowLambda: number;
  dino: DinoConfig;
  twins: TwinsConfig;
  /** Batch-norm running-statistics momentum (PyTorch convention). Default 0.1. */
  bnMomentum: number;
  /** Write a checkpoint every N steps (and at the end of each epoch). Default 200. */
  checkpointEvery: number;
  /** Read losses back and log every N steps. Default 10. */
  logEvery: number;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

const BASE_DEFAULTS = {
  method: 'barlow' as Method,
  lr: 1e-3,
  weightDecay: 0,
  weightDecayEnd: 0,
  backbone: { kind: 'resnet', depth: 18, width: 16 } as BackboneConfig,
  seed: 0,
  epochs: 10,
  batchSize: 128,
  minLr: 1e-6,
  warmupEpochs: 1,
  augment: { globalSize: 32, nLocal: 4, localSize: 16 },
  projector: { hidden: 2048, out: 2048, layers: 3 },
  barlowLambda: 0.0051,
  dino: {
    head: { out: 4096, hidden: 2048, bottleneck: 256, useBn: false, normLastLayer: true },
    studentTemp: 0.1,
    teacherTemp: 0.07,
    warmupTeacherTemp: 0.04,
    warmupTeacherTempEpochs: 30,
    centerMomentum: 0.9,
    emaMomentum: 0.996,
    freezeLastLayerEpochs: 1,
    ablations: { centering: true, teacherTempWarmup: true, sharpening: true, emaTeacher: true },
  },
  twins: { beta: 0.0025, lambda: 0.005, target: 'projector' as const },
  bnMomentum: 0.1,
  checkpointEvery: 200,
  logEvery: 10,
};

/** Per-method defaults: Barlow Twins with LARS-free AdamW at small batch; DINO as its reference for ResNets on small data. */
export const METHOD_DEFAULTS: Readonly<Record<Method, DeepPartial<PretrainConfig>>> = Object.freeze({
  barlow: { lr: 1e-3, weightDecay: 1e-4, weightDecayEnd: 1e-4, optimizer: { kind: 'adamw' }, augment: { nLocal: 0 } },
  dino: { lr: 5e-4, weightDecay: 0.04, weightDecayEnd: 0.4, optimizer: { kind: 'adamw', clipGradNorm: 3 } },
  'dino-twins': { lr: 5e-4, weightDecay: 0.04, weightDecayEnd: 0.4, optimizer: { kind: 'adamw', clipGradNorm: 3 } },
});

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge<T>(base: T, over: unknown, path: string): T {
  if (over === undefined) return base;
  if (!isObj(base) || !isObj(over)) return over as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    if (!(k in base) && !(path === 'backbone')) throw new ConfigError(`unknown config key "${path ? path + '.' : ''}${k}"`);
    out[k] = path === '' && k === 'backbone' ? { ...(v as object) } : merge((base as Record<string, unknown>)[k], v, path ? `${path}.${k}` : k);
  }
  return out as T;
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new ConfigError(msg);
}

const posInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;
const nonNeg = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/**
 * Fills defaults for `method`, applies `partial` then each of `layers` in order (e.g. a budget,
 * then a notebook's overrides), and validates everything; throws ConfigError naming the bad field.
 */
export function resolveConfig(partial: DeepPartial<PretrainConfig> & { method: Method }, ...layers: DeepPartial<PretrainConfig>[]): PretrainConfig {
  check(isObj(partial), 'config must be an object');
  check((METHODS as readonly string[]).includes(partial.method as string), `method "${String(partial.method)}" is not one of ${METHODS.join(', ')}`);
  const base = merge({ ...BASE_DEFAULTS, optimizer: { ...OPTIMIZER_DEFAULTS } } as unknown as PretrainConfig, METHOD_DEFAULTS[partial.method], '');
  let c = merge(base, partial, '');
  for (const layer of layers) c = merge(c, layer, '');
  check(posInt(c.epochs), `epochs must be a positive integer, got ${String(c.epochs)}`);
  check(posInt(c.batchSize) && c.batchSize >= 2, `batchSize must be an integer >= 2 (batch statistics need two samples), got ${String(c.batchSize)}`);
  check(Number.isInteger(c.seed), `seed must be an integer, got ${String(c.seed)}`);
  for (const k of ['lr', 'minLr', 'weightDecay', 'weightDecayEnd', 'warmupEpochs', 'barlowLambda', 'bnMomentum'] as const) check(nonNeg(c[k]), `${k} must be a finite number >= 0, got ${String(c[k])}`);
  check(c.lr > 0, `lr must be > 0, got ${c.lr}`);
  check(c.warmupEpochs <= c.epochs, `warmupEpochs (${c.warmupEpochs}) must not exceed epochs (${c.epochs})`);
  check(OPTIMIZER_KINDS.includes(c.optimizer.kind), `optimizer.kind "${c.optimizer.kind}" is not one of ${OPTIMIZER_KINDS.join(', ')}`);
  check(posInt(c.checkpointEvery) && posInt(c.logEvery), 'checkpointEvery and logEvery must be positive integers');
  const b = c.backbone;
  check(isObj(b) && (b.kind === 'resnet' || b.kind === 'vit'), `backbone.kind must be "resnet" or "vit", got ${JSON.stringify(isObj(b) ? b.kind : b)}`);
  if (b.kind === 'resnet') {
    check(b.depth === 18 || b.depth === 50, `backbone.depth must be 18 or 50, got ${String(b.depth)}`);
    check(posInt(b.width), `backbone.width must be a positive integer, got ${String(b.width)}`);
  }
  // Build (not initialise) the backbone now, so an unknown ViT preset or option fails before any compute.
  let patch = 1;
  try {
    const built = buildBackbone(b as BackboneSpec);
    patch = b.kind === 'vit' ? Number((built.spec as { patch?: number }).patch ?? VIT_PRESETS[b.preset as keyof typeof VIT_PRESETS]?.patch ?? 1) : 1;
  } catch (e) {
    throw new ConfigError(`backbone: ${(e as Error).message}`);
  }
  if (b.kind === 'vit') {
    for (const k of ['globalSize', 'localSize'] as const) check(c.augment[k] % patch === 0, `augment.${k} (${c.augment[k]}) must be a multiple of the ViT patch size ${patch}`);
  }
  check(posInt(c.augment.globalSize) && c.augment.globalSize >= 8, `augment.globalSize must be an integer >= 8, got ${String(c.augment.globalSize)}`);
  check(Number.isInteger(c.augment.nLocal) && c.augment.nLocal >= 0, `augment.nLocal must be an integer >= 0, got ${String(c.augment.nLocal)}`);
  check(posInt(c.augment.localSize), `augment.localSize must be a positive integer`);
  check(posInt(c.projector.hidden) && posInt(c.projector.out) && posInt(c.projector.layers), 'projector.hidden, .out and .layers must be positive integers');
  const d = c.dino;
  check(posInt(d.head.out) && posInt(d.head.hidden) && posInt(d.head.bottleneck), 'dino.head.out, .hidden and .bottleneck must be positive integers');
  for (const k of ['studentTemp', 'teacherTemp', 'warmupTeacherTemp'] as const) check(typeof d[k] === 'number' && d[k] > 0 && Number.isFinite(d[k]), `dino.${k} must be > 0, got ${String(d[k])}`);
  check(d.centerMomentum >= 0 && d.centerMomentum < 1, `dino.centerMomentum must be in [0, 1), got ${d.centerMomentum}`);
  check(d.emaMomentum >= 0 && d.emaMomentum <= 1, `dino.emaMomentum must be in [0, 1], got ${d.emaMomentum}`);
  check(Number.isInteger(d.freezeLastLayerEpochs) && d.freezeLastLayerEpochs >= 0, 'dino.freezeLastLayerEpochs must be an integer >= 0');
  check(c.twins.target === 'projector' || c.twins.target === 'head', `twins.target must be "projector" or "head", got ${String(c.twins.target)}`);
  check(nonNeg(c.twins.beta) && nonNeg(c.twins.lambda), 'twins.beta and twins.lambda must be >= 0');
  if (c.method !== 'barlow') check(c.augment.nLocal >= 0, 'nLocal must be >= 0');
  return c;
}

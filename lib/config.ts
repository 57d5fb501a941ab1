/**
 * The pretraining configuration: one typed object, one default per knob, all of them in
 * `CONFIG_DEFAULTS` below (then `METHOD_DEFAULTS` per method). A resolved config holds exactly the
 * keys its run reads: Barlow Twins has no `dino` section, an SGD run has no Adam betas, a run without
 * the teacher-temperature warm-up has no warm-up temperature. So the run record shows only what
 * acted, and the run's hash (its folder name) changes only when something the run reads changes.
 *
 * Layers, in order: defaults -> method defaults -> the budget (lenient: keys the method does not read
 * are dropped) -> the caller's overrides (strict: a key the run would ignore is a ConfigError naming
 * it). `resolveConfig` validates everything before any compute.
 */
import { buildBackbone, BackboneSpec, VIT_PRESETS } from './models/index';
import type { BarlowProjectorOptions, DinoHeadOptions } from './models/heads';

export const METHODS = ['barlow', 'dino', 'dino-twins'] as const;
export type Method = (typeof METHODS)[number];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Serialisable backbone description (see lib/models). */
export type BackboneConfig =
  | { kind: 'resnet'; depth: 18 | 50; width: number }
  | { kind: 'vit'; preset: string; [override: string]: unknown };

export type OptimizerKind = 'adam' | 'adamw' | 'sgd' | 'lars';
export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['adam', 'adamw', 'sgd', 'lars'];

/** The update rule. Weight decay is not here: it is a schedule (`weightDecay` -> `weightDecayEnd`). */
export interface OptimizerConfig {
  kind: OptimizerKind;
  /** Adam/AdamW first-moment decay. */
  beta1?: number;
  /** Adam/AdamW second-moment decay. */
  beta2?: number;
  /** Adam/AdamW epsilon. */
  eps?: number;
  /** SGD/LARS momentum. */
  momentum?: number;
  /** LARS trust coefficient. */
  larsEta?: number;
  /** Clip the global norm of the gradients a step applies (frozen parameters left out) to this value; 0 turns clipping off. */
  clipGradNorm: number;
}

/** Which optimizer keys each kind reads. */
const OPTIMIZER_READS: Readonly<Record<OptimizerKind, readonly (keyof OptimizerConfig)[]>> = {
  adam: ['kind', 'beta1', 'beta2', 'eps', 'clipGradNorm'],
  adamw: ['kind', 'beta1', 'beta2', 'eps', 'clipGradNorm'],
  sgd: ['kind', 'momentum', 'clipGradNorm'],
  lars: ['kind', 'momentum', 'larsEta', 'clipGradNorm'],
};

/** The Barlow Twins projector's widths (documented in lib/models/heads.ts). */
export type ProjectorConfig = BarlowProjectorOptions;

/** The DINO head's shape (documented in lib/models/heads.ts). */
export type DinoHeadConfig = DinoHeadOptions;

/** The four DINO components the ablation notebook switches off one at a time. */
export interface AblationConfig {
  /** Subtract the EMA center from teacher outputs (false: no center). */
  centering: boolean;
  /** Warm the teacher temperature up from warmupTeacherTemp (false: constant teacherTemp). */
  teacherTempWarmup: boolean;
  /** Sharpen the teacher (false: teacher temperature = student temperature). */
  sharpening: boolean;
  /** EMA teacher (false: the teacher is the student with stop-gradient). */
  emaTeacher: boolean;
}

export interface DinoConfig {
  head: DinoHeadConfig;
  /** Student temperature. */
  studentTemp: number;
  /** Final teacher temperature (DINO's advice: lower to 0.04 if training is unstable). Read when sharpening is on. */
  teacherTemp?: number;
  /** Initial teacher temperature. Read when sharpening and the warm-up are on. */
  warmupTeacherTemp?: number;
  /** Epochs of linear teacher-temperature warm-up. Read when sharpening and the warm-up are on. */
  warmupTeacherTempEpochs?: number;
  /** Center momentum. Read when centering is on. */
  centerMomentum?: number;
  /** EMA momentum at step 0, cosine-scheduled to emaMomentumEnd (DINO: 0.996; "0.9995 with batch size 256" on ImageNet). Read with an EMA teacher. */
  emaMomentum?: number;
  /** EMA momentum at the last step (DINO: 1; equal to emaMomentum for a constant momentum). Read with an EMA teacher. */
  emaMomentumEnd?: number;
  /** Freeze the last head layer for this many epochs (DINO: 1). */
  freezeLastLayerEpochs: number;
  ablations: AblationConfig;
}

export interface BarlowConfig {
  /** Off-diagonal weight λ of the Barlow Twins loss (the paper: 0.0051 for its 8192-d projector; the DINO-Twins project: 0.005). */
  lambda: number;
}

export interface TwinsConfig {
  /** Weight β of the Barlow term in the DINO-Twins total (the original project: 0.0025). */
  beta: number;
  /** Where the Barlow term applies: a separate projector on the student backbone features (the original), or the DINO head outputs. */
  target: 'projector' | 'head';
}

export interface AugmentConfig {
  /** Size of the global views. */
  globalSize: number;
  /** Number of local views (DINO, DINO-Twins). */
  nLocal?: number;
  /** Size of the local views (DINO, DINO-Twins, with nLocal > 0). */
  localSize?: number;
  /** Multiplier on the colour jitter's brightness, contrast, saturation and hue (1: BYOL/DINO's 0.4, 0.4, 0.2, 0.1). */
  jitterStrength: number;
  /** Gaussian blur on (the recipes' probabilities per view) or off entirely. */
  blur: boolean;
}

export interface PretrainConfig {
  method: Method;
  backbone: BackboneConfig;
  /** Seed for weights, data order and augmentations. */
  seed: number;
  epochs: number;
  batchSize: number;
  /** Peak learning rate, reached after warm-up (not scaled by batch size). */
  lr: number;
  /** Final learning rate of the cosine decay. */
  minLr: number;
  warmupEpochs: number;
  /** Weight decay at the start; cosine-scheduled to weightDecayEnd (biases, norms and buffers never decay). */
  weightDecay: number;
  weightDecayEnd: number;
  optimizer: OptimizerConfig;
  augment: AugmentConfig;
  /** Barlow projector (barlow; dino-twins with twins.target 'projector'). */
  projector?: ProjectorConfig;
  /** Barlow Twins loss (barlow, dino-twins). */
  barlow?: BarlowConfig;
  /** DINO (dino, dino-twins). */
  dino?: DinoConfig;
  /** The DINO-Twins combination (dino-twins). */
  twins?: TwinsConfig;
  /** Batch-norm running-statistics momentum (PyTorch convention). */
  bnMomentum: number;
  /** Write a checkpoint every N steps (and at the end of each epoch). */
  checkpointEvery: number;
  /** Read losses back and log every N steps. */
  logEvery: number;
}

export type DeepPartial<T> = { [K in keyof T]?: NonNullable<T[K]> extends object ? DeepPartial<NonNullable<T[K]>> : T[K] };
/** A config layer: any subset of the keys (a budget, a notebook's overrides); a backbone is given whole. */
export type ConfigLayer = DeepPartial<Omit<PretrainConfig, 'backbone'>> & { backbone?: BackboneConfig };

type FullConfig = Required<Omit<PretrainConfig, 'optimizer' | 'augment' | 'dino'>> & {
  optimizer: Required<OptimizerConfig>;
  augment: Required<AugmentConfig>;
  dino: Required<DinoConfig>;
};

/** Every knob's default, once. Per-method differences are in METHOD_DEFAULTS. */
export const CONFIG_DEFAULTS: Readonly<FullConfig> = deepFreeze({
  method: 'barlow',
  backbone: { kind: 'resnet', depth: 18, width: 16 },
  seed: 0,
  epochs: 10,
  batchSize: 128,
  lr: 1e-3,
  minLr: 1e-6,
  warmupEpochs: 1,
  weightDecay: 0,
  weightDecayEnd: 0,
  optimizer: { kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, momentum: 0.9, larsEta: 0.001, clipGradNorm: 0 },
  augment: { globalSize: 32, nLocal: 4, localSize: 16, jitterStrength: 1, blur: true },
  projector: { hidden: 2048, out: 2048, layers: 3 },
  barlow: { lambda: 0.0051 },
  dino: {
    head: { out: 4096, hidden: 2048, bottleneck: 256, nlayers: 3, useBn: false, normLastLayer: true },
    studentTemp: 0.1,
    teacherTemp: 0.07,
    warmupTeacherTemp: 0.04,
    warmupTeacherTempEpochs: 30,
    centerMomentum: 0.9,
    emaMomentum: 0.996,
    emaMomentumEnd: 1,
    freezeLastLayerEpochs: 1,
    ablations: { centering: true, teacherTempWarmup: true, sharpening: true, emaTeacher: true },
  },
  twins: { beta: 0.0025, target: 'projector' },
  bnMomentum: 0.1,
  checkpointEvery: 200,
  logEvery: 10,
});

/**
 * Per-method defaults: Barlow Twins with AdamW at small batch (no LARS); DINO as main_dino.py for
 * ResNets (AdamW, weight decay 0.04 -> 0.4, gradient clip 3); DINO-Twins as DINO, with the
 * original project's λ = 0.005 for its Barlow term.
 */
export const METHOD_DEFAULTS: Readonly<Record<Method, ConfigLayer>> = deepFreeze({
  barlow: { weightDecay: 1e-4, weightDecayEnd: 1e-4 },
  dino: { lr: 5e-4, weightDecay: 0.04, weightDecayEnd: 0.4, optimizer: { clipGradNorm: 3 } },
  'dino-twins': { lr: 5e-4, weightDecay: 0.04, weightDecayEnd: 0.4, optimizer: { clipGradNorm: 3 }, barlow: { lambda: 0.005 } },
});

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `over` merged into `base`; a key `base` lacks is a ConfigError (the backbone is replaced whole). */
function merge<T>(base: T, over: unknown, path: string): T {
  if (over === undefined) return base;
  if (!isObj(base) || !isObj(over)) return over as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const at = path ? `${path}.${k}` : k;
    if (!(k in base)) throw new ConfigError(`unknown config key "${at}"`);
    out[k] = at === 'backbone' ? (isObj(v) ? { ...v } : v) : merge((base as Record<string, unknown>)[k], v, at);
  }
  return out as T;
}

function pick<T extends object>(o: T, keys: readonly (keyof T)[]): T {
  const out: Partial<T> = {};
  for (const k of keys) out[k] = o[k];
  return out as T;
}

/** The keys a run with full config `c` reads: everything else is dropped from the resolved config. */
function keepRead(c: FullConfig): PretrainConfig {
  const usesDino = c.method !== 'barlow';
  const usesProjector = c.method === 'barlow' || (c.method === 'dino-twins' && c.twins.target === 'projector');
  const out: PretrainConfig = {
    method: c.method, backbone: c.backbone, seed: c.seed, epochs: c.epochs, batchSize: c.batchSize,
    lr: c.lr, minLr: c.minLr, warmupEpochs: c.warmupEpochs, weightDecay: c.weightDecay, weightDecayEnd: c.weightDecayEnd,
    optimizer: pick(c.optimizer, OPTIMIZER_READS[c.optimizer.kind]),
    augment: usesDino
      ? pick(c.augment, c.augment.nLocal > 0 ? ['globalSize', 'nLocal', 'localSize', 'jitterStrength', 'blur'] : ['globalSize', 'nLocal', 'jitterStrength', 'blur'])
      : pick(c.augment, ['globalSize', 'jitterStrength', 'blur']),
    bnMomentum: c.bnMomentum, checkpointEvery: c.checkpointEvery, logEvery: c.logEvery,
  };
  if (usesProjector) out.projector = c.projector;
  if (c.method !== 'dino') out.barlow = c.barlow;
  if (usesDino) {
    const d = c.dino;
    const a = d.ablations;
    const keys: (keyof DinoConfig)[] = ['head', 'studentTemp', 'freezeLastLayerEpochs', 'ablations'];
    if (a.sharpening) keys.push('teacherTemp');
    if (a.sharpening && a.teacherTempWarmup) keys.push('warmupTeacherTemp', 'warmupTeacherTempEpochs');
    if (a.centering) keys.push('centerMomentum');
    if (a.emaTeacher) keys.push('emaMomentum', 'emaMomentumEnd');
    out.dino = pick(d, keys);
  }
  if (c.method === 'dino-twins') out.twins = c.twins;
  return out;
}

/** Leaf paths of a config layer ("dino.head.out"); the backbone counts as one leaf. */
function leafPaths(o: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    const at = prefix ? `${prefix}.${k}` : k;
    if (isObj(v) && at !== 'backbone') out.push(...leafPaths(v, at));
    else out.push(at);
  }
  return out;
}

function has(o: unknown, path: string): boolean {
  let cur: unknown = o;
  for (const k of path.split('.')) {
    if (!isObj(cur) || !(k in cur)) return false;
    cur = cur[k];
  }
  return true;
}

/** Why a run ignores `path` (for the error message). */
function whyUnread(c: FullConfig, path: string): string {
  const [top, sub] = path.split('.');
  const a = c.dino.ablations;
  if (top === 'dino') {
    if (c.method === 'barlow') return `method "barlow" has no DINO part`;
    if (sub === 'teacherTemp' || sub === 'warmupTeacherTemp' || sub === 'warmupTeacherTempEpochs') {
      return !a.sharpening ? 'dino.ablations.sharpening is false (the teacher uses the student temperature)' : 'dino.ablations.teacherTempWarmup is false';
    }
    if (sub === 'centerMomentum') return 'dino.ablations.centering is false';
    if (sub === 'emaMomentum' || sub === 'emaMomentumEnd') return 'dino.ablations.emaTeacher is false';
  }
  if (top === 'projector') return c.method === 'dino' ? 'method "dino" has no Barlow projector' : 'twins.target is "head" (the Barlow term uses the DINO head outputs)';
  if (top === 'barlow') return `method "${c.method}" has no Barlow Twins term`;
  if (top === 'twins') return `twins.* belongs to method "dino-twins", not "${c.method}"`;
  if (top === 'augment') return c.method === 'barlow' ? 'Barlow Twins trains on two global views only' : 'augment.nLocal is 0';
  if (top === 'optimizer') return `optimizer.kind "${c.optimizer.kind}" does not use it`;
  return 'the run does not read it';
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new ConfigError(msg);
}

const posInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;
const nonNeg = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const positive = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;

function validate(c: FullConfig): void {
  check((METHODS as readonly string[]).includes(c.method), `method "${String(c.method)}" is not one of ${METHODS.join(', ')}`);
  check(posInt(c.epochs), `epochs must be a positive integer, got ${String(c.epochs)}`);
  check(posInt(c.batchSize) && c.batchSize >= 2, `batchSize must be an integer >= 2 (batch statistics need two samples), got ${String(c.batchSize)}`);
  check(Number.isInteger(c.seed), `seed must be an integer, got ${String(c.seed)}`);
  for (const k of ['lr', 'minLr', 'weightDecay', 'weightDecayEnd', 'warmupEpochs', 'bnMomentum'] as const) check(nonNeg(c[k]), `${k} must be a finite number >= 0, got ${String(c[k])}`);
  check(c.lr > 0, `lr must be > 0, got ${c.lr}`);
  check(c.warmupEpochs <= c.epochs, `warmupEpochs (${c.warmupEpochs}) must not exceed epochs (${c.epochs})`);
  const o = c.optimizer;
  check(OPTIMIZER_KINDS.includes(o.kind), `optimizer.kind "${o.kind}" is not one of ${OPTIMIZER_KINDS.join(', ')}`);
  check(nonNeg(o.clipGradNorm), `optimizer.clipGradNorm must be >= 0 (0 turns clipping off), got ${String(o.clipGradNorm)}`);
  for (const k of ['beta1', 'beta2', 'momentum'] as const) check(nonNeg(o[k]) && o[k] < 1, `optimizer.${k} must be in [0, 1), got ${String(o[k])}`);
  check(positive(o.eps) && positive(o.larsEta), 'optimizer.eps and optimizer.larsEta must be > 0');
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
    if (b.kind === 'vit') patch = Number((built.spec as { patch?: number }).patch ?? VIT_PRESETS[b.preset as keyof typeof VIT_PRESETS].patch);
  } catch (e) {
    throw new ConfigError(`backbone: ${(e as Error).message}`);
  }
  const a = c.augment;
  check(posInt(a.globalSize) && a.globalSize >= 8, `augment.globalSize must be an integer >= 8, got ${String(a.globalSize)}`);
  check(Number.isInteger(a.nLocal) && a.nLocal >= 0, `augment.nLocal must be an integer >= 0, got ${String(a.nLocal)}`);
  check(posInt(a.localSize), `augment.localSize must be a positive integer, got ${String(a.localSize)}`);
  check(nonNeg(a.jitterStrength), `augment.jitterStrength must be a finite number >= 0, got ${String(a.jitterStrength)}`);
  check(typeof a.blur === 'boolean', `augment.blur must be true or false, got ${JSON.stringify(a.blur)}`);
  if (b.kind === 'vit') {
    for (const k of ['globalSize', 'localSize'] as const) check(a[k] % patch === 0, `augment.${k} (${a[k]}) must be a multiple of the ViT patch size ${patch}`);
  }
  const p = c.projector;
  check(posInt(p.hidden) && posInt(p.out) && posInt(p.layers), 'projector.hidden, .out and .layers must be positive integers');
  check(nonNeg(c.barlow.lambda), `barlow.lambda must be a finite number >= 0, got ${String(c.barlow.lambda)}`);
  const d = c.dino;
  check(posInt(d.head.out) && posInt(d.head.hidden) && posInt(d.head.bottleneck) && posInt(d.head.nlayers), 'dino.head.out, .hidden, .bottleneck and .nlayers must be positive integers');
  for (const k of ['studentTemp', 'teacherTemp', 'warmupTeacherTemp'] as const) check(positive(d[k]), `dino.${k} must be > 0, got ${String(d[k])}`);
  check(Number.isInteger(d.warmupTeacherTempEpochs) && d.warmupTeacherTempEpochs >= 0, `dino.warmupTeacherTempEpochs must be an integer >= 0, got ${String(d.warmupTeacherTempEpochs)}`);
  check(nonNeg(d.centerMomentum) && d.centerMomentum < 1, `dino.centerMomentum must be in [0, 1), got ${String(d.centerMomentum)}`);
  for (const k of ['emaMomentum', 'emaMomentumEnd'] as const) check(nonNeg(d[k]) && d[k] <= 1, `dino.${k} must be in [0, 1], got ${String(d[k])}`);
  check(Number.isInteger(d.freezeLastLayerEpochs) && d.freezeLastLayerEpochs >= 0, `dino.freezeLastLayerEpochs must be an integer >= 0, got ${String(d.freezeLastLayerEpochs)}`);
  for (const [k, v] of Object.entries(d.ablations)) check(typeof v === 'boolean', `dino.ablations.${k} must be true or false, got ${JSON.stringify(v)}`);
  check(c.twins.target === 'projector' || c.twins.target === 'head', `twins.target must be "projector" or "head", got ${String(c.twins.target)}`);
  check(nonNeg(c.twins.beta), `twins.beta must be a finite number >= 0, got ${String(c.twins.beta)}`);
}

/**
 * The resolved config for `overrides.method`: defaults, the method's defaults, then `opts.budget`
 * (one layer or several, in order; keys the method does not read are dropped), then `overrides` (a key the run would not read is a
 * ConfigError naming it and saying why). Validated; holds exactly the keys the run reads. A resolved
 * config resolves to itself.
 */
export function resolveConfig(overrides: ConfigLayer & { method: Method }, opts: { budget?: ConfigLayer | ConfigLayer[] } = {}): PretrainConfig {
  check(isObj(overrides), 'config must be an object');
  const method = overrides.method;
  check((METHODS as readonly string[]).includes(method as string), `method "${String(method)}" is not one of ${METHODS.join(', ')}`);
  let full = merge(CONFIG_DEFAULTS as FullConfig, METHOD_DEFAULTS[method], '');
  for (const layer of [opts.budget ?? []].flat()) full = merge(full, { ...layer, method }, '');
  full = merge(full, overrides, '');
  validate(full);
  const resolved = keepRead(full);
  const ignored = leafPaths(overrides as Record<string, unknown>).filter((p) => !has(resolved, p));
  if (ignored.length > 0) {
    throw new ConfigError(ignored.map((p) => `config key "${p}" has no effect in this run: ${whyUnread(full, p)}; remove it`).join('; '));
  }
  return resolved;
}

/** The section `key` of `cfg`, which its method needs: a clear error where the config lacks it. */
export function section<K extends 'projector' | 'barlow' | 'dino' | 'twins'>(cfg: PretrainConfig, key: K): NonNullable<PretrainConfig[K]> {
  const s = cfg[key];
  if (s === undefined) throw new ConfigError(`method "${cfg.method}" needs the config section "${key}", which this config lacks (resolve it with resolveConfig)`);
  return s as NonNullable<PretrainConfig[K]>;
}

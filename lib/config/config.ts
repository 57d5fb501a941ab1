/**
 * The pretraining configuration: one typed object, one default per knob. The common knobs' defaults
 * are `CONFIG_DEFAULTS` below; a method's own config sections (`barlow`, `dino`, ...) and its row of
 * defaults are declared in its file (lib/methods/<method>.ts) and found through the method registry.
 * A resolved config holds exactly the keys its run reads: Barlow Twins has no `dino` section, an SGD
 * run has no Adam betas, a run without the teacher-temperature warm-up has no warm-up temperature.
 * So the run record shows only what acted.
 *
 * Layers, in order: the defaults (common, then every registered section's) -> the method's row -> the
 * budget's layers (lib/config/budget.ts; a key one method does not read is dropped for that method, and
 * `checkBudget` makes a key that no run can read an error) -> the caller's overrides (strict: a key
 * the run would ignore is a ConfigError naming it). `resolveConfig` validates everything before any compute.
 */
import { buildBackbone, BackboneSpec, VIT_PRESETS } from '../models/index';
import { BN_MOMENTUM } from '../nn/layers';
import { AUGMENT_DEFAULTS, AugmentConfig } from '../augment/presets';
import { check, ConfigError, deepFreeze, isObj, nonNeg, posInt, positive } from '../util/check';
import { configSections, Method, methodDefinition, METHODS, registeredMethods } from '../methods/registry';
import type { MethodDefinition } from '../methods/method';
import type { BarlowConfig, ProjectorConfig } from '../methods/barlow';
import type { AblationConfig, DinoConfig, DinoHeadConfig } from '../methods/dino';
import type { TwinsConfig } from '../methods/dinoTwins';

export { ConfigError, METHODS };
export type {
  Method,
  AugmentConfig,
  ProjectorConfig,
  BarlowConfig,
  AblationConfig,
  DinoConfig,
  DinoHeadConfig,
  TwinsConfig,
};

/** Serialisable backbone description (see lib/models). */
export type BackboneConfig =
  { kind: 'resnet'; depth: 18 | 50; width: number } | { kind: 'vit'; preset: string; [override: string]: unknown };

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
  /** The views' knobs (lib/augment/presets.ts AugmentConfig); each method reads those its views use. */
  augment: AugmentConfig;
  /** Barlow projector (barlow; dino-twins with twins.target 'projector'): lib/methods/barlow.ts. */
  projector?: ProjectorConfig;
  /** Barlow Twins loss (barlow, dino-twins): lib/methods/barlow.ts. */
  barlow?: BarlowConfig;
  /** DINO (dino, dino-twins): lib/methods/dino.ts. */
  dino?: DinoConfig;
  /** The DINO-Twins combination (dino-twins): lib/methods/dinoTwins.ts. */
  twins?: TwinsConfig;
  /** Batch-norm running-statistics momentum (PyTorch convention). */
  bnMomentum: number;
  /** Write a checkpoint every N steps (and at the end of each epoch). Cadence only: not part of the run's identity. */
  checkpointEvery: number;
  /** Read losses back and log every N steps. Cadence only: not part of the run's identity. */
  logEvery: number;
}

/** Knobs that change only when things are read or written, never what is trained: left out of a run's identity (lib/train/runName.ts). */
export const CADENCE_KEYS = ['checkpointEvery', 'logEvery'] as const satisfies readonly (keyof PretrainConfig)[];

export type DeepPartial<T> = {
  [K in keyof T]?: NonNullable<T[K]> extends object ? DeepPartial<NonNullable<T[K]>> : T[K];
};
/** A config layer: any subset of the keys (a budget, a notebook's overrides); a backbone is given whole. */
export type ConfigLayer = DeepPartial<Omit<PretrainConfig, 'backbone'>> & { backbone?: BackboneConfig };

/** The common knobs, every key present. */
type CommonConfig = Omit<
  Required<PretrainConfig>,
  'method' | 'optimizer' | 'augment' | 'projector' | 'barlow' | 'dino' | 'twins'
> & {
  optimizer: Required<OptimizerConfig>;
  augment: Required<AugmentConfig>;
};

/** The merged config before `resolveConfig` keeps what the run reads: the method, every common knob and every registered section, all keys present. */
export type FullConfig = CommonConfig & { method: string } & { [section: string]: unknown };

/** Every common knob's default, once. Sections and per-method rows: the methods' files. */
export const CONFIG_DEFAULTS: Readonly<CommonConfig> = deepFreeze({
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
  augment: AUGMENT_DEFAULTS,
  bnMomentum: BN_MOMENTUM,
  checkpointEvery: 200,
  logEvery: 10,
});

type Layer = Record<string, unknown>;

/** `over` merged into `base`; a key `base` lacks is a ConfigError (the backbone is replaced whole). */
function merge<T>(base: T, over: unknown, path: string): T {
  if (over === undefined) return base;
  if (!isObj(base) || !isObj(over)) return over as T;
  const out: Layer = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const at = path ? `${path}.${k}` : k;
    if (!(k in base)) throw new ConfigError(`unknown config key "${at}"`);
    out[k] = at === 'backbone' ? (isObj(v) ? { ...v } : v) : merge((base as Layer)[k], v, at);
  }
  return out as T;
}

function pick<T extends object>(o: T, keys: readonly (keyof T)[]): Partial<T> {
  const out: Partial<T> = {};
  for (const k of keys) out[k] = o[k];
  return out;
}

/** Where a config of `def` starts: the common defaults, every registered section (one another method reads is "unread" for it, not "unknown"), then its row. */
function defaultsFor(def: MethodDefinition): FullConfig {
  const base: Layer = { method: def.name, ...CONFIG_DEFAULTS };
  for (const s of configSections()) base[s.key] = s.defaults;
  return merge(base as FullConfig, def.defaults, '');
}

/** The augment keys `def` reads in a run with augment section `a`. */
function augmentRead(def: MethodDefinition, a: Required<AugmentConfig>): (keyof AugmentConfig)[] {
  const unread = def.augment.unread?.(a) ?? {};
  return def.augment.read.filter((k) => !(k in unread));
}

/** The keys a run with full config `c` reads: everything else is dropped from the resolved config. */
function keepRead(c: FullConfig, def: MethodDefinition): PretrainConfig {
  const out: Layer = {
    method: c.method,
    backbone: c.backbone,
    seed: c.seed,
    epochs: c.epochs,
    batchSize: c.batchSize,
    lr: c.lr,
    minLr: c.minLr,
    warmupEpochs: c.warmupEpochs,
    weightDecay: c.weightDecay,
    weightDecayEnd: c.weightDecayEnd,
    optimizer: pick(c.optimizer, OPTIMIZER_READS[c.optimizer.kind]),
    augment: pick(c.augment, augmentRead(def, c.augment)),
    bnMomentum: c.bnMomentum,
    checkpointEvery: c.checkpointEvery,
    logEvery: c.logEvery,
  };
  const skipped = def.unreadSections?.(c) ?? {};
  for (const s of configSections()) {
    if (!def.sections.includes(s) || s.key in skipped) continue;
    const v = c[s.key] as Required<object>;
    const unread = s.unread?.(v) ?? {};
    out[s.key] = Object.fromEntries(Object.entries(v).filter(([k]) => !(k in unread)));
  }
  return out as unknown as PretrainConfig;
}

/** Leaf paths of a config layer ("dino.head.out"); the backbone counts as one leaf. */
export function leafPaths(o: Layer, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    const at = prefix ? `${prefix}.${k}` : k;
    if (isObj(v) && at !== 'backbone') out.push(...leafPaths(v, at));
    else out.push(at);
  }
  return out;
}

/** Whether `o` has the (dotted) path. */
export function hasPath(o: unknown, path: string): boolean {
  let cur: unknown = o;
  for (const k of path.split('.')) {
    if (!isObj(cur) || !(k in cur)) return false;
    cur = cur[k];
  }
  return true;
}

function sectionOwners(key: string): string {
  const owners = registeredMethods()
    .filter((m) => m.sections.some((s) => s.key === key))
    .map((m) => `"${m.name}"`);
  return `${owners.length === 1 ? 'method' : 'methods'} ${owners.join(', ')}`;
}

/**
 * Why method `def` never reads `path`, whatever the rest of the config (a section it has none of, an
 * augment key its views never use), or null when some config of it reads the path.
 */
export function neverRead(def: MethodDefinition, path: string): string | null {
  const [top, sub] = path.split('.');
  if (top === 'augment')
    return def.augment.read.includes(sub as keyof AugmentConfig)
      ? null
      : (def.augment.never ?? `method "${def.name}" does not read it`);
  const section = configSections().find((s) => s.key === top);
  if (section && !def.sections.includes(section))
    return `method "${def.name}" has no ${section.title}; it belongs to ${sectionOwners(top)}`;
  return null;
}

/** Why a run of `def` with full config `c` ignores `path` (for the error message). */
function whyUnread(c: FullConfig, def: MethodDefinition, path: string): string {
  const never = neverRead(def, path);
  if (never) return never;
  const [top, sub] = path.split('.');
  if (top === 'optimizer') return `optimizer.kind "${c.optimizer.kind}" does not use it`;
  if (top === 'augment')
    return def.augment.unread?.(c.augment)[sub as keyof AugmentConfig] ?? 'the run does not read it';
  const section = configSections().find((s) => s.key === top);
  if (section)
    return (
      def.unreadSections?.(c)[top] ??
      (section.unread?.(c[top] as Required<object>) as Record<string, string> | undefined)?.[sub] ??
      'the run does not read it'
    );
  return 'the run does not read it';
}

/** The common knobs' checks (each method's section checks its own). */
function validateCommon(c: FullConfig): void {
  check(posInt(c.epochs), `epochs must be a positive integer, got ${String(c.epochs)}`);
  check(
    posInt(c.batchSize) && c.batchSize >= 2,
    `batchSize must be an integer >= 2 (batch statistics need two samples), got ${String(c.batchSize)}`,
  );
  check(Number.isInteger(c.seed), `seed must be an integer, got ${String(c.seed)}`);
  for (const k of ['lr', 'minLr', 'weightDecay', 'weightDecayEnd', 'warmupEpochs', 'bnMomentum'] as const)
    check(nonNeg(c[k]), `${k} must be a finite number >= 0, got ${String(c[k])}`);
  check(c.lr > 0, `lr must be > 0, got ${c.lr}`);
  check(c.warmupEpochs <= c.epochs, `warmupEpochs (${c.warmupEpochs}) must not exceed epochs (${c.epochs})`);
  const o = c.optimizer;
  check(OPTIMIZER_KINDS.includes(o.kind), `optimizer.kind "${o.kind}" is not one of ${OPTIMIZER_KINDS.join(', ')}`);
  check(
    nonNeg(o.clipGradNorm),
    `optimizer.clipGradNorm must be >= 0 (0 turns clipping off), got ${String(o.clipGradNorm)}`,
  );
  for (const k of ['beta1', 'beta2', 'momentum'] as const)
    check(nonNeg(o[k]) && o[k] < 1, `optimizer.${k} must be in [0, 1), got ${String(o[k])}`);
  check(positive(o.eps) && positive(o.larsEta), 'optimizer.eps and optimizer.larsEta must be > 0');
  check(posInt(c.checkpointEvery) && posInt(c.logEvery), 'checkpointEvery and logEvery must be positive integers');
  const b = c.backbone;
  check(
    isObj(b) && (b.kind === 'resnet' || b.kind === 'vit'),
    `backbone.kind must be "resnet" or "vit", got ${JSON.stringify(isObj(b) ? b.kind : b)}`,
  );
  if (b.kind === 'resnet') {
    check(b.depth === 18 || b.depth === 50, `backbone.depth must be 18 or 50, got ${String(b.depth)}`);
    check(posInt(b.width), `backbone.width must be a positive integer, got ${String(b.width)}`);
  }
  // Build (not initialise) the backbone now, so an unknown ViT preset or option fails before any compute.
  let patch = 1;
  try {
    const built = buildBackbone(b as BackboneSpec);
    if (b.kind === 'vit')
      patch = Number(
        (built.spec as { patch?: number }).patch ?? VIT_PRESETS[b.preset as keyof typeof VIT_PRESETS].patch,
      );
  } catch (e) {
    throw new ConfigError(`backbone: ${(e as Error).message}`);
  }
  const a = c.augment;
  check(
    posInt(a.globalSize) && a.globalSize >= 8,
    `augment.globalSize must be an integer >= 8, got ${String(a.globalSize)}`,
  );
  check(Number.isInteger(a.nLocal) && a.nLocal >= 0, `augment.nLocal must be an integer >= 0, got ${String(a.nLocal)}`);
  check(posInt(a.localSize), `augment.localSize must be a positive integer, got ${String(a.localSize)}`);
  check(
    nonNeg(a.jitterStrength),
    `augment.jitterStrength must be a finite number >= 0, got ${String(a.jitterStrength)}`,
  );
  check(typeof a.blur === 'boolean', `augment.blur must be true or false, got ${JSON.stringify(a.blur)}`);
  if (b.kind === 'vit') {
    for (const k of ['globalSize', 'localSize'] as const)
      check(a[k] % patch === 0, `augment.${k} (${a[k]}) must be a multiple of the ViT patch size ${patch}`);
  }
}

/**
 * The resolved config for `overrides.method`: defaults, the method's row, then `opts.budget` (one
 * layer or several, in order; keys the method does not read are dropped), then `overrides` (a key
 * the run would not read is a ConfigError naming it and saying why). Validated; holds exactly the
 * keys the run reads. A resolved config resolves to itself.
 */
export function resolveConfig(
  overrides: ConfigLayer & { method: Method },
  opts: { budget?: ConfigLayer | ConfigLayer[] } = {},
): PretrainConfig {
  check(isObj(overrides), 'config must be an object');
  const def = methodDefinition(overrides.method);
  let full = defaultsFor(def);
  for (const layer of [opts.budget ?? []].flat()) full = merge(full, { ...layer, method: def.name }, '');
  full = merge(full, overrides, '');
  validateCommon(full);
  for (const s of def.sections) s.validate(full[s.key] as Required<object>);
  const resolved = keepRead(full, def);
  const ignored = leafPaths(overrides as Layer).filter((p) => !hasPath(resolved, p));
  if (ignored.length > 0) {
    throw new ConfigError(
      ignored
        .map((p) => `config key "${p}" has no effect in this run: ${whyUnread(full, def, p)}; remove it`)
        .join('; '),
    );
  }
  return resolved;
}

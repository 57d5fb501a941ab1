/**
 * A sweep as data: a budget, methods, overrides for every run, named variants (a list of override
 * sets), a grid of config keys and seeds. `expandSweep` turns it into named runs whose configs come
 * from `experimentConfig` (the budget applied leniently, the overrides strictly), whose data is the
 * budget's split of the given source (`budgetDataIdentity`, split seed 0 as `loadExperimentData`), and
 * whose folders are `runName(config, data)` under `runsDir(budget)` unless the spec says otherwise, so a sweep's run and
 * the same run started from a notebook or `npm run pretrain` share one folder, one record and one
 * checkpoint: a finished run is never redone, and results merge by run record.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import {
  ablationBudget,
  Budget,
  BudgetName,
  BUDGETS,
  BUDGETS_NAMES,
  budgetDataIdentity,
  experimentConfig,
} from '../config/budget';
import { ConfigError, ConfigLayer, Method, METHODS, PretrainConfig } from '../config/config';
import type { DataIdentity, SourceIdentity } from '../data/dataIdentity';
import { configHash, runIdentity, runName, runsDir } from '../train/runName';

/** Thrown for a spec that cannot expand; the message names the spec, the field or run, and what to do. */
export class SweepError extends Error {
  override name = 'SweepError';
}

/** Slurm settings of a sweep (the command line's flags win over them). */
export interface SlurmOptions {
  /** Array tasks running at once: the array's `%N` throttle. Default: no throttle. */
  maxRunning?: number;
  /** `--partition`. Default: the cluster's default partition. */
  partition?: string;
  /** `--time` limit per task (Slurm formats: "30", "01:00:00", "1-00:00:00"). Default: the partition's. */
  time?: string;
  /** GPUs per task (`--gres=gpu:N`). Default: none. */
  gpusPerTask?: number;
  /** `--cpus-per-task`. Default: the cluster's (usually 1). */
  cpusPerTask?: number;
  /** `--mem` per task ("8G"). Default: the cluster's. */
  mem?: string;
  /** Further `sbatch` flags, one per entry ("--account=ml", "--qos=short"), written into the script as they are. */
  sbatchArgs?: string[];
  /** Shell lines each task runs before training ("module load nodejs/20"). */
  setup?: string[];
}

/** A named override set: every run of the sweep takes one variant. */
export interface SweepVariant {
  /** Short label, used in run labels and in `{variant}` of the folder template (letters, digits, . _ - + =). */
  label: string;
  /** Config overrides of this variant (applied after the spec's `base`). */
  overrides?: ConfigLayer;
  /** Methods this variant applies to (default: all of the spec's methods), e.g. `dino.*` keys only for dino and dino-twins. */
  methods?: Method[];
}

export interface SweepSpec {
  /** The sweep's name: its folder runs/<budget>/sweeps/<name>/ (job script, logs, job ids) and its Slurm job name. */
  name: string;
  /** smoke | cpu | gpu: the data subset and config layer the notebooks use for this budget. */
  budget: BudgetName;
  /** Use the ablation notebook's shortened budget (`ablationBudget`), as notebook 07 does. Default false. */
  ablationBudget?: boolean;
  /** Methods to run. */
  methods: Method[];
  /** Overrides for every run, applied after the budget (strictly: a key a method does not read is an error). */
  base?: ConfigLayer;
  /** Named override sets; each run takes one. Default: a single variant "base" without overrides. */
  variants?: SweepVariant[];
  /** Config key (dotted, "dino.teacherTemp") -> values: every combination is a run. */
  grid?: Record<string, unknown[]>;
  /** Seeds: every run once per seed. Default: the config's seed. */
  seeds?: number[];
  /**
   * The run folder under runsDir(budget), a template of {runName} {method} {variant} {seed} {hash}
   * and {<grid key>}; it must contain {hash} or {runName} (both hash the config and the data), so a
   * changed config or other data is a new folder.
   * Default "{runName}", as the notebooks and `npm run pretrain` name runs.
   */
  folder?: string;
  /** After pretraining, the frozen linear probe and kNN on the test set (the results table's test columns). Default false. */
  probe?: boolean;
  /** Slurm settings for `--engine slurm`. */
  slurm?: SlurmOptions;
}

/** One run of an expanded sweep. */
export interface SweepRun {
  /** Position in the plan: the Slurm array index of its task. */
  index: number;
  /** Run folder relative to runsDir(budget) (the run's key in a sweep). */
  rel: string;
  /** Absolute run folder. */
  dir: string;
  /** The folder's last component: the run record's id. */
  id: string;
  method: Method;
  variant: string;
  /** Grid values of this run, by key. */
  grid: Record<string, unknown>;
  seed: number;
  /** One line for tables: method, variant, grid values, seed. */
  label: string;
  config: PretrainConfig;
  /** The data it trains on: the budget's split of the sweep's source. */
  data: DataIdentity;
  /** Hash of its identity (config without cadence, and data): `{hash}` in folder templates. */
  hash: string;
}

/** An expanded sweep: its runs, where they go, and notes on what expansion merged. */
export interface SweepPlan {
  spec: SweepSpec;
  budget: Budget;
  /** runsDir(budget): where the run folders are. */
  runsRoot: string;
  /** The training data of every run (the budget's split of the source the sweep was expanded for). */
  data: DataIdentity;
  /** runs/<budget>/sweeps/<name>/: the job script, logs and job ledger. */
  sweepDir: string;
  runs: SweepRun[];
  /** Runs that expanded to the same config and folder, listed once (one line each). */
  notes: string[];
}

const SPEC_KEYS = [
  'name',
  'budget',
  'ablationBudget',
  'methods',
  'base',
  'variants',
  'grid',
  'seeds',
  'folder',
  'probe',
  'slurm',
];
const SLURM_KEYS = ['maxRunning', 'partition', 'time', 'gpusPerTask', 'cpusPerTask', 'mem', 'sbatchArgs', 'setup'];
const VARIANT_KEYS = ['label', 'overrides', 'methods'];
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._=+-]*$/;
const FIXED_TOKENS = ['runName', 'method', 'variant', 'seed', 'hash'];

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A spec from parsed JSON (or a notebook's object literal), checked field by field; `source` names it in errors. */
export function parseSweepSpec(value: unknown, source = 'sweep spec'): SweepSpec {
  const fail = (msg: string): never => {
    throw new SweepError(`${source}: ${msg}`);
  };
  if (!isObj(value)) fail(`expected a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
  const v = value as Record<string, unknown>;
  const unknownKeys = Object.keys(v).filter((k) => !SPEC_KEYS.includes(k));
  if (unknownKeys.length)
    fail(`unknown field(s) ${unknownKeys.map((k) => `"${k}"`).join(', ')}; a spec has ${SPEC_KEYS.join(', ')}`);
  if (typeof v.name !== 'string' || !NAME_RE.test(v.name))
    fail(`"name" must be letters, digits, . _ - (it names a folder and a Slurm job), got ${JSON.stringify(v.name)}`);
  if (!(BUDGETS_NAMES as readonly unknown[]).includes(v.budget))
    fail(`"budget" must be one of ${BUDGETS_NAMES.join(', ')}, got ${JSON.stringify(v.budget)}`);
  if (v.ablationBudget !== undefined && typeof v.ablationBudget !== 'boolean')
    fail(`"ablationBudget" must be true or false`);
  if (!Array.isArray(v.methods) || v.methods.length === 0)
    fail(`"methods" must be a non-empty list of ${METHODS.join(', ')}`);
  const methods = v.methods as unknown[];
  for (const m of methods)
    if (!(METHODS as readonly unknown[]).includes(m))
      fail(`"methods": ${JSON.stringify(m)} is not one of ${METHODS.join(', ')}`);
  if (new Set(methods).size !== methods.length) fail(`"methods" lists a method twice`);
  if (v.base !== undefined && !isObj(v.base)) fail(`"base" must be an object of config overrides`);
  if (isObj(v.base) && 'method' in v.base) fail(`"base" must not set "method"; list methods in "methods"`);
  if (isObj(v.base) && 'seed' in v.base && v.seeds !== undefined)
    fail(`give the seed either in "base" or as "seeds", not both`);
  if (v.variants !== undefined) {
    if (!Array.isArray(v.variants) || v.variants.length === 0)
      fail(`"variants" must be a non-empty list of {label, overrides, methods?}`);
    const labels = new Set<string>();
    (v.variants as unknown[]).forEach((x, i) => {
      if (!isObj(x)) fail(`variants[${i}] must be an object {label, overrides, methods?}`);
      const vx = x as Record<string, unknown>;
      const bad = Object.keys(vx).filter((k) => !VARIANT_KEYS.includes(k));
      if (bad.length)
        fail(`variants[${i}]: unknown field(s) ${bad.join(', ')}; a variant has ${VARIANT_KEYS.join(', ')}`);
      if (typeof vx.label !== 'string' || !LABEL_RE.test(vx.label))
        fail(
          `variants[${i}].label must be letters, digits, . _ - + = (it can name folders), got ${JSON.stringify(vx.label)}`,
        );
      if (labels.has(vx.label as string)) fail(`variants: label "${String(vx.label)}" appears twice`);
      labels.add(vx.label as string);
      if (vx.overrides !== undefined && !isObj(vx.overrides))
        fail(`variants[${i}] ("${String(vx.label)}").overrides must be an object of config overrides`);
      if (isObj(vx.overrides) && ('method' in vx.overrides || 'seed' in vx.overrides))
        fail(
          `variants[${i}] ("${String(vx.label)}"): set methods with "methods" and seeds with "seeds", not in overrides`,
        );
      if (vx.methods !== undefined) {
        if (!Array.isArray(vx.methods) || vx.methods.length === 0)
          fail(`variants[${i}] ("${String(vx.label)}").methods must be a non-empty list`);
        for (const m of vx.methods as unknown[])
          if (!methods.includes(m))
            fail(
              `variants[${i}] ("${String(vx.label)}").methods: ${JSON.stringify(m)} is not one of the spec's methods (${methods.join(', ')})`,
            );
      }
    });
  }
  if (v.grid !== undefined) {
    if (!isObj(v.grid)) fail(`"grid" must be an object: config key -> list of values`);
    for (const [k, vals] of Object.entries(v.grid as Record<string, unknown>)) {
      if (k === 'method' || k === 'seed') fail(`grid key "${k}": list ${k}s in "${k}s"`);
      if (k === 'backbone' || k.startsWith('backbone.')) {
        if (k !== 'backbone')
          fail(`grid key "${k}": a backbone is given whole; grid over "backbone" with whole backbone objects`);
      }
      if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/.test(k))
        fail(`grid key "${k}" is not a dotted config key such as "dino.teacherTemp"`);
      if (!Array.isArray(vals) || vals.length === 0) fail(`grid["${k}"] must be a non-empty list of values`);
    }
  }
  if (v.seeds !== undefined) {
    if (!Array.isArray(v.seeds) || v.seeds.length === 0 || !v.seeds.every((s) => Number.isInteger(s)))
      fail(`"seeds" must be a non-empty list of integers, got ${JSON.stringify(v.seeds)}`);
    if (new Set(v.seeds as number[]).size !== (v.seeds as number[]).length) fail(`"seeds" lists a seed twice`);
  }
  if (v.folder !== undefined)
    checkFolderTemplate(v.folder, Object.keys((v.grid as Record<string, unknown>) ?? {}), fail);
  if (v.probe !== undefined && typeof v.probe !== 'boolean') fail(`"probe" must be true or false`);
  if (v.slurm !== undefined) checkSlurmOptions(v.slurm, `${source}: "slurm"`);
  return v as unknown as SweepSpec;
}

function checkFolderTemplate(t: unknown, gridKeys: string[], fail: (m: string) => never): void {
  if (typeof t !== 'string' || t.length === 0)
    fail(`"folder" must be a template string such as "{runName}" or "ablations/{method}-no-{variant}-{hash}"`);
  const s = t as string;
  if (path.isAbsolute(s) || s.split('/').some((p) => p === '..' || p === '.' || p === ''))
    fail(`"folder" must be a relative path inside the budget's runs folder without "." or ".." parts, got "${s}"`);
  for (const m of s.matchAll(/\{([^}]*)\}/g)) {
    if (!FIXED_TOKENS.includes(m[1]) && !gridKeys.includes(m[1]))
      fail(`"folder": unknown placeholder {${m[1]}}; use ${FIXED_TOKENS.map((x) => `{${x}}`).join(' ')} or a grid key`);
  }
  if (!s.includes('{hash}') && !s.includes('{runName}'))
    fail(
      `"folder" must contain {hash} or {runName}: without the hash of config and data a changed config would reuse (and skip as finished) another config's run`,
    );
  if (/[^A-Za-z0-9._=+{}\/-]/.test(s.replace(/\{[^}]*\}/g, '')))
    fail(`"folder" may hold only letters, digits, . _ - + = and /, got "${s}"`);
}

/** Checks Slurm options (from a spec or the command line); `where` prefixes messages. */
export function checkSlurmOptions(o: unknown, where = 'slurm options'): SlurmOptions {
  const fail = (msg: string): never => {
    throw new SweepError(`${where}: ${msg}`);
  };
  if (!isObj(o)) fail('must be an object');
  const x = o as Record<string, unknown>;
  const bad = Object.keys(x).filter((k) => !SLURM_KEYS.includes(k));
  if (bad.length) fail(`unknown field(s) ${bad.join(', ')}; known: ${SLURM_KEYS.join(', ')}`);
  const posInt = (k: string) => {
    if (x[k] !== undefined && !(Number.isInteger(x[k]) && (x[k] as number) > 0))
      fail(`${k} must be a positive integer, got ${JSON.stringify(x[k])}`);
  };
  posInt('maxRunning');
  posInt('gpusPerTask');
  posInt('cpusPerTask');
  for (const k of ['partition', 'time', 'mem']) {
    if (x[k] !== undefined && (typeof x[k] !== 'string' || !/^[A-Za-z0-9_.:,+-]+$/.test(x[k] as string)))
      fail(`${k} must be a plain string (letters, digits, _ . : , + -), got ${JSON.stringify(x[k])}`);
  }
  for (const k of ['sbatchArgs', 'setup']) {
    if (
      x[k] !== undefined &&
      (!Array.isArray(x[k]) || !(x[k] as unknown[]).every((a) => typeof a === 'string' && !a.includes('\n')))
    )
      fail(`${k} must be a list of one-line strings`);
  }
  for (const a of (x.sbatchArgs as string[] | undefined) ?? [])
    if (!a.startsWith('-'))
      fail(`sbatchArgs: "${a}" is not an sbatch flag (flags start with "-", e.g. "--account=ml")`);
  return x as SlurmOptions;
}

/** Reads and checks a spec file (JSON). */
export function loadSweepSpec(file: string): SweepSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new SweepError(`cannot read sweep spec ${file}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new SweepError(`sweep spec ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseSweepSpec(value, `sweep spec ${file}`);
}

/** The budget a spec's runs train under (with the ablation shortening when asked for). */
export function sweepBudget(spec: SweepSpec): Budget {
  const b = BUDGETS[spec.budget];
  return spec.ablationBudget ? ablationBudget(b) : b;
}

/** Plain objects merged key by key; anything else (and the backbone) replaced whole. */
function mergeLayers(a: Record<string, unknown>, b: Record<string, unknown>, at = ''): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const p = at ? `${at}.${k}` : k;
    out[k] = isObj(v) && isObj(out[k]) && p !== 'backbone' ? mergeLayers(out[k] as Record<string, unknown>, v, p) : v;
  }
  return out;
}

/** `{a: {b: value}}` for the dotted key "a.b". */
function layerAt(key: string, value: unknown): Record<string, unknown> {
  const parts = key.split('.');
  let out: unknown = value;
  for (let i = parts.length - 1; i >= 0; i--) out = { [parts[i]]: out };
  return out as Record<string, unknown>;
}

function product(keys: string[], grid: Record<string, unknown[]>): Array<Record<string, unknown>> {
  let out: Array<Record<string, unknown>> = [{}];
  for (const k of keys) out = out.flatMap((p) => grid[k].map((v) => ({ ...p, [k]: v })));
  return out;
}

/** A grid value as it appears in labels and folder names. */
function showValue(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

function folderPart(v: unknown): string {
  return showValue(v).replace(/[^A-Za-z0-9._=+-]+/g, '_');
}

/**
 * Every run of the spec on data from `source` (the loaded data's `identity`, or CIFAR10_SOURCE for the
 * real CIFAR-10), in order methods x variants x grid x seeds (that order is the Slurm array index).
 * Each config is `experimentConfig(method, budget, base + variant + grid point + seed)`; an override a
 * method does not read is an error naming the run. Two runs that resolve to the same config and
 * folder are one run (listed once, with a note); two configs in one folder are an error.
 */
export function expandSweep(specIn: SweepSpec | unknown, source: SourceIdentity): SweepPlan {
  const spec = parseSweepSpec(
    specIn,
    isObj(specIn) && typeof specIn.name === 'string' ? `sweep "${specIn.name}"` : 'sweep spec',
  );
  const budget = sweepBudget(spec);
  const runsRoot = runsDir(budget);
  const data = budgetDataIdentity(source, budget);
  const variants: SweepVariant[] = spec.variants ?? [{ label: 'base', overrides: {} }];
  const gridKeys = Object.keys(spec.grid ?? {});
  const points = product(gridKeys, spec.grid ?? {});
  const seeds: Array<number | undefined> = spec.seeds ?? [undefined];
  const template = spec.folder ?? '{runName}';
  const runs: SweepRun[] = [];
  const notes: string[] = [];
  const byFolder = new Map<string, SweepRun>();
  for (const method of spec.methods) {
    for (const variant of variants) {
      if (variant.methods && !variant.methods.includes(method)) continue;
      for (const point of points) {
        for (const seed of seeds) {
          let layer: Record<string, unknown> = mergeLayers({}, (spec.base ?? {}) as Record<string, unknown>);
          layer = mergeLayers(layer, (variant.overrides ?? {}) as Record<string, unknown>);
          for (const k of gridKeys) layer = mergeLayers(layer, layerAt(k, point[k]));
          if (seed !== undefined) layer.seed = seed;
          const gridText = gridKeys.map((k) => `${k}=${showValue(point[k])}`).join(' ');
          const where = [
            method,
            variants.length > 1 || variant.label !== 'base' ? `variant "${variant.label}"` : '',
            gridText,
            seed !== undefined ? `seed ${seed}` : '',
          ]
            .filter(Boolean)
            .join(', ');
          let config: PretrainConfig;
          try {
            config = experimentConfig(method, budget, layer as ConfigLayer);
          } catch (e) {
            if (!(e instanceof ConfigError)) throw e;
            throw new SweepError(
              `sweep "${spec.name}", run ${where}: ${e.message}. Give a key only to the methods that read it (a variant's "methods", or a separate sweep).`,
            );
          }
          const hash = configHash(runIdentity(config, data));
          const tokens: Record<string, string> = {
            runName: runName(config, data),
            method,
            variant: variant.label,
            seed: String(config.seed),
            hash,
          };
          for (const k of gridKeys) tokens[k] = folderPart(point[k]);
          const rel = template.replace(/\{([^}]*)\}/g, (_, t: string) => tokens[t]);
          const label = [method, variant.label !== 'base' ? variant.label : '', gridText, `s${config.seed}`]
            .filter(Boolean)
            .join(' ');
          const prev = byFolder.get(rel);
          if (prev) {
            if (prev.hash !== hash || JSON.stringify(prev.config) !== JSON.stringify(config)) {
              throw new SweepError(
                `sweep "${spec.name}": runs "${prev.label}" and "${label}" have different configs but the same folder "${rel}"; put {hash} in "folder"`,
              );
            }
            notes.push(`"${label}" resolves to the same config as "${prev.label}" (${rel}): one run`);
            continue;
          }
          const run: SweepRun = {
            index: runs.length,
            rel,
            dir: path.join(runsRoot, rel),
            id: path.basename(rel),
            method,
            variant: variant.label,
            grid: { ...point },
            seed: config.seed,
            label,
            config,
            data,
            hash,
          };
          byFolder.set(rel, run);
          runs.push(run);
        }
      }
    }
  }
  return { spec, budget, runsRoot, data, sweepDir: path.join(runsRoot, 'sweeps', spec.name), runs, notes };
}

/** Finds a run of the plan by its folder (relative, as in job scripts, or absolute). */
export function findRun(plan: SweepPlan, rel: string): SweepRun {
  const want = path.isAbsolute(rel) ? path.relative(plan.runsRoot, rel) : rel;
  const run = plan.runs.find((r) => r.rel === want);
  if (!run) {
    throw new SweepError(
      `run "${rel}" is not in sweep "${plan.spec.name}" as it expands now (${plan.runs.length} runs: ${plan.runs
        .slice(0, 3)
        .map((r) => r.rel)
        .join(', ')}${plan.runs.length > 3 ? ', ...' : ''}); ` +
        `the spec or the code's config defaults changed since the job was written: re-submit the sweep`,
    );
  }
  return run;
}

/** Short stable hash of a spec's JSON: names its frozen copy in the sweep folder. */
export function specHash(spec: SweepSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 8);
}

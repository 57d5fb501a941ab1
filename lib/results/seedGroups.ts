/**
 * Rows of the results table: finished runs that differ only in their training seed, grouped, with
 * the mean and sample standard deviation of each metric over the seeds. "Same run but the seed" is
 * a hash of the run's config with `seed` removed and keys sorted (older records list the same keys
 * in another order), so a changed knob, epoch count or backbone is a row of its own.
 */
import * as path from 'path';
import { RunRecord, listRunRecords } from '../train/runRecord';
import { configHash } from '../train/runName';
import { resultRows } from './report';
import { summarize, type Summary } from './stats/describe';
import type { BarDatum } from '../viz/specs';

/** The metrics summarised over seeds (fields of ResultRow). */
export type SeedMetric = 'linearTest' | 'knnTest' | 'knnVal';

/** One row of the table: the runs of one config over several seeds. */
export interface SeedGroup {
  /** Unique name of the row: the method, " ViT" for a ViT backbone, and the config hash when a method and backbone have several configs. */
  label: string;
  method: string;
  /** Record kind ('pretrain' or 'baseline'). */
  kind: string;
  /** Human name of the backbone ('ResNet-18 (width 16)', 'ViT tiny4'). */
  backbone: string;
  /** The config's backbone kind ('resnet', 'vit'; '?' when the record has none). */
  backboneKind: string;
  /** Hash of the config without its seed (see configKey). */
  config: string;
  epochs: number;
  /** Number of seeds (runs kept). */
  n: number;
  /** The seeds, ascending. */
  seeds: number[];
  /** The run ids, in seed order. */
  runs: string[];
  /** Runs left out because a later record of the same config has the same seed (e.g. a baseline's old folder). */
  duplicates: string[];
  /** Linear probe top-1 % on the test set, over the seeds that have it. */
  linearTest: Summary;
  /** kNN top-1 % on the test set. */
  knnTest: Summary;
  /** kNN top-1 % on the validation split at the last epoch (monitor). */
  knnVal: Summary;
}

function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, sortedKeys(o[k])]),
    );
  }
  return v;
}

/** Hash of a run config without its `seed`, independent of key order: equal for runs that differ only in the seed. */
export function configKey(config: Readonly<Record<string, unknown>>): string {
  const rest: Record<string, unknown> = { ...config };
  delete rest.seed;
  return configHash(sortedKeys(rest));
}

/** Row name of a method on a backbone kind, shared with the original project's rows: 'dino', 'dino-twins ViT'. */
export function rowLabel(method: string, backboneKind: string): string {
  return backboneKind === 'vit' ? `${method} ViT` : method;
}

/**
 * Whether a record file is a main run of the budget: its folder sits directly in the runs root
 * (runs/<budget>/<run>/record.json). Ablations (runs/<budget>/ablations/...) and anything under
 * sweeps/ are nested one level deeper and belong to their own tables.
 */
export function isMainRunFile(file: string, runsRoot: string): boolean {
  const rel = path.relative(path.resolve(runsRoot), path.resolve(file));
  const parts = rel.split(path.sep);
  return (
    parts.length === 2 &&
    parts[1] === 'record.json' &&
    parts[0] !== '..' &&
    parts[0] !== 'ablations' &&
    parts[0] !== 'sweeps'
  );
}

/** The main runs' records of a runs root (see isMainRunFile), oldest first. */
export function mainRunRecords(runsRoot: string): RunRecord[] {
  return listRunRecords(runsRoot)
    .filter((e) => isMainRunFile(e.file, runsRoot))
    .map((e) => e.record);
}

const METHOD_ORDER = ['barlow', 'dino', 'dino-twins', 'supervised', 'random-init'];

function seedOf(rec: RunRecord): number {
  const s = rec.config.seed;
  return typeof s === 'number' ? s : rec.seed;
}

/**
 * Groups the finished ('done') records into table rows: same method, backbone and config but the
 * seed. Within a row one run per seed is kept, the most recently updated. Rows are ordered by
 * backbone, then barlow, dino, dino-twins, supervised, random-init (others after), then by config.
 */
export function seedGroups(records: readonly RunRecord[]): SeedGroup[] {
  const done = records.filter((r) => r.status === 'done');
  const rows = resultRows(done);
  const byKey = new Map<string, Array<{ rec: RunRecord; row: (typeof rows)[number] }>>();
  done.forEach((rec, i) => {
    const key = `${rec.method}\u0000${configKey(rec.config)}`;
    const list = byKey.get(key) ?? [];
    list.push({ rec, row: rows[i] });
    byKey.set(key, list);
  });
  const groups: SeedGroup[] = [];
  for (const list of byKey.values()) {
    const bySeed = new Map<number, (typeof list)[number]>();
    const duplicates: string[] = [];
    for (const e of [...list].sort((a, b) => b.rec.updatedAt.localeCompare(a.rec.updatedAt))) {
      if (bySeed.has(seedOf(e.rec))) duplicates.push(e.rec.id);
      else bySeed.set(seedOf(e.rec), e);
    }
    const kept = [...bySeed.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e);
    const first = kept[0];
    const metric = (m: SeedMetric) => summarize(kept.map((e) => e.row[m]).filter((v): v is number => v !== null));
    const bb = (first.rec.config as { backbone?: { kind?: string } }).backbone;
    groups.push({
      label: '',
      method: first.rec.method,
      kind: first.rec.kind,
      backbone: first.row.backbone,
      backboneKind: bb?.kind ?? '?',
      config: configKey(first.rec.config),
      epochs: first.row.epochs,
      n: kept.length,
      seeds: kept.map((e) => seedOf(e.rec)),
      runs: kept.map((e) => e.rec.id),
      duplicates: duplicates.sort(),
      linearTest: metric('linearTest'),
      knnTest: metric('knnTest'),
      knnVal: metric('knnVal'),
    });
  }
  const rank = (m: string) => (METHOD_ORDER.includes(m) ? METHOD_ORDER.indexOf(m) : METHOD_ORDER.length);
  groups.sort(
    (a, b) =>
      a.backbone.localeCompare(b.backbone) ||
      rank(a.method) - rank(b.method) ||
      a.method.localeCompare(b.method) ||
      b.n - a.n ||
      a.config.localeCompare(b.config),
  );
  const shared = new Map<string, number>();
  for (const g of groups)
    shared.set(rowLabel(g.method, g.backboneKind), (shared.get(rowLabel(g.method, g.backboneKind)) ?? 0) + 1);
  for (const g of groups) {
    const base = rowLabel(g.method, g.backboneKind);
    g.label = (shared.get(base) ?? 0) > 1 ? `${base} [${g.config}]` : base;
  }
  return groups;
}

/** Bars of a metric: the mean over seeds, ± one sample std as the whisker, each seed as a point. */
export function seedBars(groups: readonly SeedGroup[], metric: SeedMetric, group?: string): BarDatum[] {
  return groups
    .filter((g) => g[metric].mean !== null)
    .map((g) => ({
      label: g.label,
      value: g[metric].mean as number,
      ...(group !== undefined ? { group } : {}),
      ...(g[metric].std !== null ? { error: g[metric].std as number } : {}),
      points: g[metric].values,
    }));
}

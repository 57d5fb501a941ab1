/**
 * A run's identity and name. The identity is everything that changes what a run trains: its resolved
 * config (lib/config/config.ts: exactly the keys the run reads) without the knobs that only change when
 * things are read or written (CADENCE_KEYS), and its data (lib/data/dataIdentity.ts: source, checksum,
 * subset, split). The folder name is the method, backbone and seed, then a hash of the identity: a
 * changed knob or other data is a new folder, a changed log or checkpoint interval is the same run.
 * Resuming or reloading a folder compares the identity field by field (`assertSameRun`). The
 * notebooks, the CLI and the sweeps name runs with these functions.
 */
import { createHash } from 'crypto';
import * as path from 'path';
import { CADENCE_KEYS, PretrainConfig } from '../config/config';
import { dataIdentityOf, DataIdentity } from '../data/dataIdentity';
import { repoRoot } from '../data/index';

/** Short stable hash of a JSON value (sha256 of its JSON, 8 hex digits). */
export function configHash(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 8);
}

/** What a run trains: its config without the cadence knobs, and its data. */
export interface RunIdentity {
  config: Record<string, unknown>;
  data: DataIdentity;
}

/** The identity of a run of `config` on `data`. */
export function runIdentity(config: PretrainConfig, data: DataIdentity): RunIdentity {
  const c: Record<string, unknown> = { ...config };
  for (const k of CADENCE_KEYS) delete c[k];
  return { config: c, data: dataIdentityOf(data) };
}

/** Default run folder name: method, backbone, seed and the identity's hash, e.g. `dino-r18w16-s0-1a2b3c4d`. */
export function runName(config: PretrainConfig, data: DataIdentity): string {
  const b = config.backbone;
  const bb = b.kind === 'resnet' ? `r${b.depth}w${b.width}` : `vit-${String(b.preset)}`;
  return `${config.method}-${bb}-s${config.seed}-${configHash(runIdentity(config, data))}`;
}

/** Root folder of the run records of a budget (or a CLI label): runs/<name>/, or $DINOTWINS_RUNS/<name>/. */
export function runsDir(budget: string | { name: string }): string {
  const name = typeof budget === 'string' ? budget : budget.name;
  return process.env.DINOTWINS_RUNS
    ? path.resolve(process.env.DINOTWINS_RUNS, name)
    : path.join(repoRoot(), 'runs', name);
}

/** The folder of the run of `config` on `data` under `runsDir(budget)`. */
export function runDirFor(config: PretrainConfig, budget: string | { name: string }, data: DataIdentity): string {
  return path.join(runsDir(budget), runName(config, data));
}

/** One field on which two identities differ (`config.dino.teacherTemp`, `data.perClass`); a value absent on one side is undefined there. */
export interface IdentityDifference {
  field: string;
  recorded: unknown;
  now: unknown;
}

function leaves(v: unknown, at: string, out: Map<string, unknown>): Map<string, unknown> {
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0) {
    for (const [k, x] of Object.entries(v)) leaves(x, `${at}.${k}`, out);
  } else {
    out.set(at, v);
  }
  return out;
}

/**
 * The fields on which a recorded run (a run record's or checkpoint's config and data identity) and
 * `now` differ. A record without a data identity (written before runs had one) differs in `data`.
 */
export function identityDifferences(
  recorded: { config: unknown; data?: DataIdentity | null },
  now: RunIdentity,
): IdentityDifference[] {
  const cfg: Record<string, unknown> = { ...(recorded.config as Record<string, unknown>) };
  for (const k of CADENCE_KEYS) delete cfg[k];
  const a = leaves(cfg, 'config', new Map());
  const b = leaves(now.config, 'config', new Map());
  if (recorded.data) {
    leaves(dataIdentityOf(recorded.data), 'data', a);
    leaves(now.data, 'data', b);
  } else {
    a.set('data', undefined);
    b.set('data', now.data);
  }
  const out: IdentityDifference[] = [];
  for (const field of new Set([...a.keys(), ...b.keys()])) {
    if (JSON.stringify(a.get(field)) !== JSON.stringify(b.get(field)))
      out.push({ field, recorded: a.get(field), now: b.get(field) });
  }
  return out;
}

/** A folder's record or checkpoint belongs to another run than the one asked for. */
export class RunIdentityError extends Error {
  override name = 'RunIdentityError';
}

const show = (v: unknown): string => (v === undefined ? '(none)' : JSON.stringify(v));

/**
 * Throws a RunIdentityError when `recorded` (in `what`, e.g. the run record of a folder) is another run
 * than `now`, naming each differing field with its recorded and its new value.
 */
export function assertSameRun(
  what: string,
  recorded: { config: unknown; data?: DataIdentity | null },
  now: RunIdentity,
): void {
  const diff = identityDifferences(recorded, now);
  if (diff.length === 0) return;
  const lines = diff.map((d) => `${d.field}: recorded ${show(d.recorded)}, now ${show(d.now)}`);
  const old = !recorded.data
    ? ' (it was written before runs recorded their data, so it cannot be resumed; it stays readable as history)'
    : '';
  throw new RunIdentityError(
    `${what} is another run than this one${old}: ${lines.join('; ')}. ` +
      'Use a new run folder (the default folder name changes with these), or run with the recorded values to resume it.',
  );
}

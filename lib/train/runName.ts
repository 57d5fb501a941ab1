/**
 * A run's identity: its folder name is the method, backbone and seed, then a hash of the resolved
 * config. The resolved config holds exactly what the run reads (lib/config.ts), so a changed knob
 * that the method reads means a new folder, and a change it does not read leaves the name alone.
 * The notebooks and the CLI name runs with this one function.
 */
import { createHash } from 'crypto';
import * as path from 'path';
import { PretrainConfig } from '../config';
import { repoRoot } from '../data/index';

/** Short stable hash of a config (sha256 of its JSON, 8 hex digits). */
export function configHash(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 8);
}

/** Default run folder name: method, backbone, seed and the config hash, e.g. `dino-r18w16-s0-1a2b3c4d`. */
export function runName(config: PretrainConfig): string {
  const b = config.backbone;
  const bb = b.kind === 'resnet' ? `r${b.depth}w${b.width}` : `vit-${String(b.preset)}`;
  return `${config.method}-${bb}-s${config.seed}-${configHash(config)}`;
}

/** Root folder of the run records of a budget (or a CLI label): runs/<name>/, or $DINOTWINS_RUNS/<name>/. */
export function runsDir(budget: string | { name: string }): string {
  const name = typeof budget === 'string' ? budget : budget.name;
  return process.env.DINOTWINS_RUNS ? path.resolve(process.env.DINOTWINS_RUNS, name) : path.join(repoRoot(), 'runs', name);
}

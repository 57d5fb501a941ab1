/**
 * The library's layers, checked from the import statements: config and schedules, losses and
 * methods sit below the trainer and the evaluation, and nothing above lib/kernels names a backend's
 * kernel module (methods and the trainer ask `backendCapabilities()` instead).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const LIB = path.join(__dirname, '..', 'lib');

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The lib/-relative paths `file` imports at run time (relative imports only, resolved; `import type` is erased, so it is left out). */
function importsOf(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?from\s+'(\.[^']+)'/gm))
    out.push(path.relative(LIB, path.resolve(path.dirname(file), m[1])));
  return out;
}

/**
 * lib/'s folders from the bottom floor up: a file imports (at run time) only from its own folder or a
 * lower one. config sits above methods because it composes the registered methods' config sections;
 * protocol is what the notebooks and the CLI share (data for a budget, pretraining with monitors,
 * baselines, probes, embeddings of runs).
 */
const FLOORS = [
  'util',
  'kernels',
  'backend',
  'data',
  'viz',
  'augment',
  'nn',
  'models',
  'losses',
  'methods',
  'config',
  'train',
  'eval',
  'io',
  'protocol',
  'results',
  'sweep',
  'notebook',
];

test('every folder of lib/ imports only from its own floor or lower ones; nothing but index.ts at the root', () => {
  const bad: string[] = [];
  for (const f of tsFiles(LIB)) {
    const rel = path.relative(LIB, f);
    const from = rel.split(path.sep)[0];
    if (rel === 'index.ts') continue;
    assert.ok(FLOORS.includes(from), `${rel}: folder ${from} is not one of the floors`);
    for (const imp of importsOf(f)) {
      const to = imp.split(path.sep)[0];
      if (FLOORS.indexOf(to) > FLOORS.indexOf(from))
        bad.push(`${rel} (${from}) imports ${imp} (${to}, a higher floor)`);
    }
  }
  assert.deepEqual(bad, []);
  assert.deepEqual(
    fs.readdirSync(LIB).filter((e) => e.endsWith('.ts')),
    ['index.ts'],
  );
});

/**
 * Two files share a name only by one of two conventions: a method's loss and the method itself
 * (losses/dino.ts, methods/dino.ts), and the same kernel for several backends (kernels/<backend>/).
 */
function parallelNames(paths: string[]): boolean {
  if (paths.every((p) => /^kernels\/[^/]+\/[^/]+$/.test(p))) return true;
  return (
    paths.length === 2 && paths.some((p) => p.startsWith('losses/')) && paths.some((p) => p.startsWith('methods/'))
  );
}

test('no two lib/ files share a name (index.ts and the two parallel conventions aside): a name says where it lives', () => {
  const seen = new Map<string, string[]>();
  for (const f of tsFiles(LIB)) {
    const base = path.basename(f);
    if (base !== 'index.ts')
      seen.set(base, [...(seen.get(base) ?? []), path.relative(LIB, f).split(path.sep).join('/')]);
  }
  assert.deepEqual(
    [...seen.values()].filter((v) => v.length > 1 && !parallelNames(v)),
    [],
  );
});

test('outside lib/kernels and lib/backend, nothing imports a backend kernel module except the public index', () => {
  const bad: string[] = [];
  for (const f of tsFiles(LIB)) {
    const rel = path.relative(LIB, f);
    if (rel.startsWith('kernels/') || rel.startsWith('backend/') || rel === 'index.ts') continue;
    for (const imp of importsOf(f)) if (/^kernels\/(webgpu|wasm|native)\//.test(imp)) bad.push(`${rel} imports ${imp}`);
  }
  assert.deepEqual(bad, []);
});

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
  for (const m of src.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?from\s+'(\.[^']+)'/gm)) out.push(path.relative(LIB, path.resolve(path.dirname(file), m[1])));
  return out;
}

test('config, schedules, losses and methods do not import the trainer, the evaluation or a backend', () => {
  const low = [path.join(LIB, 'config.ts'), path.join(LIB, 'schedules.ts'), ...tsFiles(path.join(LIB, 'losses')), ...tsFiles(path.join(LIB, 'methods'))];
  const bad: string[] = [];
  for (const f of low) {
    for (const imp of importsOf(f)) if (/^(train|eval|viz)\/|^kernels\/(webgpu|wasm)\/|^(experiment|budget|backend)$/.test(imp)) bad.push(`${path.relative(LIB, f)} imports ${imp}`);
  }
  assert.deepEqual(bad, []);
  assert.ok(low.length > 8, `checked ${low.length} files`);
});

test('outside lib/kernels and lib/backend.ts, nothing imports a backend kernel module except the public index', () => {
  const bad: string[] = [];
  for (const f of tsFiles(LIB)) {
    const rel = path.relative(LIB, f);
    if (rel.startsWith('kernels/') || rel === 'backend.ts' || rel === 'index.ts') continue;
    for (const imp of importsOf(f)) if (/^kernels\/(webgpu|wasm)\//.test(imp)) bad.push(`${rel} imports ${imp}`);
  }
  assert.deepEqual(bad, []);
});

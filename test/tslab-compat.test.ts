/**
 * The notebooks import lib/ through tslab, which compiles with its own fixed options (not our
 * strict tsconfig: no strictNullChecks, declaration emit on, ESNext modules with Node10
 * resolution) and whose module loader cannot import a folder. Both broke notebooks before; these
 * checks catch it in the unit tests instead of the slower notebook run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

const root = path.join(__dirname, '..');
const libDir = path.join(root, 'lib');

/** tslab 1.0.22's compiler options (node_modules/tslab/dist/converter.js), minus emit. */
const TSLAB_OPTIONS: ts.CompilerOptions = {
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  esModuleInterop: true,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.d.ts'],
  declaration: true,
  emitDeclarationOnly: true,
  experimentalDecorators: true,
  resolveJsonModule: true,
  skipLibCheck: true,
  types: ['node'],
};

function libFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...libFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

test("lib/index.ts compiles under tslab's compiler options (what the notebooks see)", () => {
  const host = ts.createCompilerHost(TSLAB_OPTIONS);
  // Declarations are generated in memory only.
  host.writeFile = () => undefined;
  const program = ts.createProgram([path.join(libDir, 'index.ts')], TSLAB_OPTIONS, host);
  const diags = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
  const text = diags.map(
    (d) =>
      ts.flattenDiagnosticMessageText(d.messageText, '\n') +
      (d.file ? ` (${path.relative(root, d.file.fileName)})` : ''),
  );
  assert.deepEqual(text, []);
});

test('no relative import in lib/ names a folder (tslab cannot load folder imports)', () => {
  const bad: string[] = [];
  for (const f of libFiles(libDir)) {
    const src = fs.readFileSync(f, 'utf8');
    for (const m of src.matchAll(/(?:from|import|require\()\s*['"](\.{1,2}\/[^'"]*)['"]/g)) {
      const target = path.resolve(path.dirname(f), m[1]);
      if (fs.existsSync(target) && fs.statSync(target).isDirectory()) bad.push(`${path.relative(root, f)}: '${m[1]}'`);
    }
  }
  assert.deepEqual(bad, [], 'import "./x/index" instead of "./x"');
});

/**
 * The code of the committed notebooks, read with TypeScript's parser: what a reader would trip over.
 *  - A cell whose last statement is a bare expression prints that value (tslab console.logs it): a
 *    chart, table or explorer result then shows a stray `[embedding explorer: ..., shown]` line under
 *    its output (issue 25, d). Such calls are assigned to a const instead.
 *  - A namespace import the notebook never uses (`import * as tf`) only costs start-up time and
 *    suggests logic that should live in lib/ (issue 25, g).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import ts from 'typescript';

const DIR = path.join(__dirname, '..', 'notebooks');
const NOTEBOOKS = fs
  .readdirSync(DIR)
  .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
  .sort();

function codeCells(file: string): Array<{ id: string; source: string }> {
  const nb = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as {
    cells: Array<{ cell_type: string; id: string; source: string | string[] }>;
  };
  return nb.cells.filter((c) => c.cell_type === 'code').map((c) => ({ id: c.id, source: [c.source].flat().join('') }));
}

/** The call a statement's expression makes, under any `await` and parentheses (e.g. `dt.viz.table`), or ''. */
function callee(e: ts.Expression): string {
  while (ts.isAwaitExpression(e) || ts.isParenthesizedExpression(e)) e = e.expression;
  return ts.isCallExpression(e) ? e.expression.getText() : '';
}

/** Library calls that return nothing: fine as a cell's last statement. */
const VOID_CALLS = new Set(['dt.assertNoAsyncErrors', 'dt.reportTensors']);

/** Cells that end on a bare expression whose value tslab prints: a library call that returns a value. */
export function strayValueCells(cells: ReadonlyArray<{ id: string; source: string }>): string[] {
  const out: string[] = [];
  for (const c of cells) {
    const sf = ts.createSourceFile(`${c.id}.ts`, c.source, ts.ScriptTarget.ES2022, true);
    const last = sf.statements[sf.statements.length - 1];
    if (!last || !ts.isExpressionStatement(last)) continue;
    const name = callee(last.expression);
    if (/^dt\./.test(name) && !VOID_CALLS.has(name))
      out.push(`${c.id}: ends with ${name}(...), whose result prints as a stray line: assign it to a const`);
  }
  return out;
}

/** `import * as X` names that no cell uses. */
export function unusedNamespaceImports(cells: ReadonlyArray<{ id: string; source: string }>): string[] {
  const all = cells.map((c) => c.source).join('\n');
  const out: string[] = [];
  for (const m of all.matchAll(/^import \* as (\w+) from '([^']+)';?$/gm)) {
    const uses = all
      .split('\n')
      .filter((line) => !line.startsWith('import ') && new RegExp(`\\b${m[1]}\\.`).test(line));
    if (uses.length === 0) out.push(`import * as ${m[1]} from '${m[2]}' is never used`);
  }
  return out;
}

test('the rules catch what they are for', () => {
  const cells = [
    {
      id: 'a',
      source:
        "import * as tf from '@tensorflow/tfjs';\nimport * as dt from './lib/index';\nconst x = dt.budgetFromEnv();",
    },
    { id: 'b', source: 'await dt.viz.embeddingExplorer(panels, sample);' },
    { id: 'c', source: 'const explorer = await dt.viz.embeddingExplorer(panels, sample);' },
    { id: 'd', source: 'for (const e of es) dt.viz.table(e);\nconsole.log(1);' },
    { id: 'e', source: 'await dt.runSweep(plan, { engine: ENGINE });' },
    { id: 'f', source: 'dt.assertNoAsyncErrors();\ndt.reportTensors(NOTEBOOK);' },
  ];
  assert.deepEqual(strayValueCells(cells), [
    'b: ends with dt.viz.embeddingExplorer(...), whose result prints as a stray line: assign it to a const',
    'e: ends with dt.runSweep(...), whose result prints as a stray line: assign it to a const',
  ]);
  assert.deepEqual(unusedNamespaceImports(cells), ["import * as tf from '@tensorflow/tfjs' is never used"]);
});

test('no notebook cell ends on a display call whose result would print a stray line', () => {
  const bad = NOTEBOOKS.flatMap((f) => strayValueCells(codeCells(f)).map((p) => `${f} ${p}`));
  assert.deepEqual(bad, []);
  assert.equal(NOTEBOOKS.length, 10);
});

test('every namespace a notebook imports is used (no `import * as tf` left over)', () => {
  const bad = NOTEBOOKS.flatMap((f) => unusedNamespaceImports(codeCells(f)).map((p) => `${f}: ${p}`));
  assert.deepEqual(bad, []);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cellsWithOutputs, outputProblems, stripOutputs, STRIP_COMMAND } from '../lib/util/notebookFiles';

const NOTEBOOKS = path.join(__dirname, '..', 'notebooks');
const committed = fs
  .readdirSync(NOTEBOOKS)
  .filter((f) => f.endsWith('.ipynb'))
  .sort()
  .map((f) => path.join('notebooks', f));

test('committed notebooks carry no outputs (strip them with npm run strip-notebooks)', () => {
  assert.ok(committed.length > 0, 'no notebooks found');
  const problems = outputProblems(committed.map((f) => path.join(__dirname, '..', f))).map((p) =>
    p.split(`${path.join(__dirname, '..')}/`).join(''),
  );
  assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
});

test("a notebook saved with outputs is named with the strip command, and stripping keeps Jupyter's layout", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-nb-'));
  const clean = fs.readFileSync(path.join(__dirname, '..', committed[0]), 'utf8');
  const file = path.join(dir, 'x.ipynb');
  const nb = JSON.parse(clean) as {
    cells: Array<{ cell_type: string; outputs?: unknown[]; execution_count?: number | null }>;
  };
  const k = nb.cells.findIndex((c) => c.cell_type === 'code');
  nb.cells[k].outputs = [{ output_type: 'stream', name: 'stdout', text: 'hello\n' }];
  nb.cells[k].execution_count = 3;
  fs.writeFileSync(file, JSON.stringify(nb, null, 1) + '\n');
  assert.deepEqual(cellsWithOutputs(file), [k]);
  const [line] = outputProblems([file]);
  assert.ok(line.includes(file) && line.includes(STRIP_COMMAND) && line.includes(`cells ${k}`), line);
  assert.equal(stripOutputs(file), 1);
  assert.equal(fs.readFileSync(file, 'utf8'), clean, 'stripped file equals the clean original byte for byte');
  assert.equal(stripOutputs(file), 0);
  fs.rmSync(dir, { recursive: true });
});

/**
 * Output hygiene of committed notebooks (fastbook / nbdev practice): notebooks are committed with
 * outputs stripped, so diffs show code and prose only. Saving from the Jupyter UI writes outputs
 * back; `npm test` fails on them, naming the notebook and the strip command.
 */
import * as fs from 'fs';
import { writeFileAtomic } from './atomic';

/** The command that strips outputs (printed in failures). */
export const STRIP_COMMAND = 'npm run strip-notebooks';

interface Cell {
  cell_type: string;
  outputs?: unknown[];
  execution_count?: number | null;
}

interface Notebook {
  cells?: Cell[];
}

function readNotebook(file: string): Notebook {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook;
  } catch (e) {
    throw new Error(`${file} is not a readable notebook: ${(e as Error).message}`);
  }
}

/** Indices of the code cells of `file` that carry outputs or an execution count. */
export function cellsWithOutputs(file: string): number[] {
  const nb = readNotebook(file);
  const out: number[] = [];
  (nb.cells ?? []).forEach((c, i) => {
    if (c.cell_type === 'code' && ((c.outputs?.length ?? 0) > 0 || (c.execution_count ?? null) !== null)) out.push(i);
  });
  return out;
}

/** One line per notebook that carries outputs (empty when all are clean). */
export function outputProblems(files: readonly string[]): string[] {
  const lines: string[] = [];
  for (const f of files) {
    const cells = cellsWithOutputs(f);
    if (cells.length > 0)
      lines.push(
        `${f} carries outputs in ${cells.length} cell(s) (cells ${cells.join(', ')}); strip them before committing: ${STRIP_COMMAND} (or npx tsx bin/strip-notebooks.ts ${f})`,
      );
  }
  return lines;
}

/**
 * Clears outputs and execution counts of `file` in place (atomic write, the same JSON layout as
 * Jupyter: one-space indent, key order kept). Returns how many cells changed.
 */
export function stripOutputs(file: string): number {
  const cells = cellsWithOutputs(file);
  if (cells.length === 0) return 0;
  const nb = readNotebook(file);
  for (const i of cells) {
    const c = nb.cells![i];
    c.outputs = [];
    c.execution_count = null;
  }
  writeFileAtomic(file, JSON.stringify(nb, null, 1) + '\n');
  return cells.length;
}

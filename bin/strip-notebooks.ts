/**
 * Strips outputs and execution counts from notebooks before a commit:
 *   npm run strip-notebooks                 # every notebooks/*.ipynb
 *   npx tsx bin/strip-notebooks.ts FILE...  # the given notebooks
 *   npx tsx bin/strip-notebooks.ts --check  # exit 1 and name each notebook that carries outputs
 */
import * as fs from 'fs';
import * as path from 'path';
import { outputProblems, stripOutputs } from '../lib/util/notebookFiles';

const args = process.argv.slice(2);
const check = args.includes('--check');
let files = args.filter((a) => a !== '--check');
if (files.length === 0) {
  const dir = path.join(__dirname, '..', 'notebooks');
  files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ipynb'))
    .sort()
    .map((f) => path.relative(process.cwd(), path.join(dir, f)));
}
if (check) {
  const problems = outputProblems(files);
  for (const p of problems) console.error(p);
  process.exit(problems.length > 0 ? 1 : 0);
}
for (const f of files) {
  const n = stripOutputs(f);
  console.log(n > 0 ? `${f}: stripped ${n} cell(s)` : `${f}: clean`);
}

/**
 * Copies a budget's run records into results/<budget>/ (without checkpoints) and writes the results
 * table as Markdown with the machine and the date, so committed numbers trace to their records.
 *   npx tsx bin/collect-results.ts --budget cpu
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { BUDGETS, BudgetName, BUDGETS_NAMES } from '../lib/budget';
import { runsDir } from '../lib/train/runName';
import { listRunRecords } from '../lib/train/runRecord';
import { resultRows, ORIGINAL_RESULTS } from '../lib/report';
import { repoRoot } from '../lib/data/index';
import { writeFileAtomic } from '../lib/util/atomic';

const { values } = parseArgs({ options: { budget: { type: 'string' } }, strict: true });
const name = values.budget ?? 'cpu';
if (!(BUDGETS_NAMES as readonly string[]).includes(name)) throw new Error(`--budget "${name}" is not one of ${BUDGETS_NAMES.join(', ')}`);
const budget = BUDGETS[name as BudgetName];
const out = path.join(repoRoot(), 'results', budget.name);
const recs = listRunRecords(runsDir(budget)).filter((r) => r.record.status === 'done');
if (recs.length === 0) throw new Error(`no finished runs in ${runsDir(budget)}`);
fs.mkdirSync(path.join(out, 'runs'), { recursive: true });
for (const { file, record } of recs) writeFileAtomic(path.join(out, 'runs', `${record.id}.json`), fs.readFileSync(file));
const rows = resultRows(recs.map((r) => r.record));
const fmt = (v: number | null) => (v === null ? '—' : v.toFixed(2));
const cpu = os.cpus();
const lines = [
  `# Results: \`${budget.name}\` budget`,
  '',
  `Machine: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}. Written ${new Date().toISOString().slice(0, 10)}.`,
  `Data: ${String(rows[0].data)}. Protocol: ${String((recs[0].record.data as { split?: string }).split ?? '')}.`,
  '',
  'Every number below comes from the run record in `runs/` (same file name as the run), written by the training and probe code; kNN val is the last epoch of the monitor on the validation split, the test columns are evaluated once at the end (frozen encoder, inference mode).',
  '',
  '| method | backbone | epochs | kNN val % | kNN test % | linear val % | linear test % | minutes | backend | run |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.sort((a, b) => (b.linearTest ?? -1) - (a.linearTest ?? -1)).map((r) => `| ${r.method} | ${r.backbone} | ${r.epochs} | ${fmt(r.knnVal)} | ${fmt(r.knnTest)} | ${fmt(r.linearVal)} | ${fmt(r.linearTest)} | ${r.minutes} | ${r.backend} | ${r.run} |`),
  '',
  'The original project (ArthurZucker/DeepLearningProject), linear probe top-1 % on CIFAR-10:',
  '',
  '| method | backbone | top-1 % |',
  '|---|---|---|',
  ...ORIGINAL_RESULTS.map((r) => `| ${r.method} | ${r.backbone} | ${r.top1} |`),
  '',
];
writeFileAtomic(path.join(out, 'results.md'), lines.join('\n'));
console.log(`wrote ${recs.length} records and results.md to ${out}`);

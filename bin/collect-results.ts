/**
 * Copies a budget's run records into results/<budget>/ (without checkpoints) and writes the results
 * as Markdown with the machine and the date, so committed numbers trace to their records: each
 * method as mean ± std over its seeds beside the original project's table, which differences are
 * beyond seed noise (Welch's t-test), and the per-run table. Main runs only (not ablations/, sweeps/).
 *   npx tsx bin/collect-results.ts --budget cpu
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { BUDGETS, BudgetName, BUDGETS_NAMES } from '../lib/config/budget';
import { runsDir } from '../lib/train/runName';
import { listRunRecords } from '../lib/train/runRecord';
import { resultRows } from '../lib/results/report';
import { isMainRunFile, mainRunRecords, seedGroups } from '../lib/results/seedGroups';
import { compareSeedGroups, seedNoiseNote } from '../lib/results/seedCompare';
import { comparisonRows, formatMeanStd, oursVsOriginalRows, seedGroupRunsRows } from '../lib/results/resultsTable';
import { markdownTable } from '../lib/viz/table';
import { repoRoot } from '../lib/data/index';
import { writeFileAtomic } from '../lib/util/atomic';
import { expandSweep, SweepPlan } from '../lib/sweep/spec';
import { sweepResults } from '../lib/sweep/records';
import { ablationCells, ablationSweepSpec } from '../lib/sweep/ablations';
import { fullAblationDisplayRows, fullAblationSweepSpec, fullAblationTable } from '../lib/sweep/fullAblations';
import { CIFAR10_SOURCE, SourceIdentity } from '../lib/data/dataIdentity';

const { values } = parseArgs({ options: { budget: { type: 'string' } }, strict: true });
const name = values.budget ?? 'cpu';
if (!(BUDGETS_NAMES as readonly string[]).includes(name))
  throw new Error(`--budget "${name}" is not one of ${BUDGETS_NAMES.join(', ')}`);
const budget = BUDGETS[name as BudgetName];
const out = path.join(repoRoot(), 'results', budget.name);
const root = runsDir(budget);
const recs = listRunRecords(root).filter((r) => r.record.status === 'done' && isMainRunFile(r.file, root));
if (recs.length === 0) throw new Error(`no finished runs in ${runsDir(budget)}`);
fs.mkdirSync(path.join(out, 'runs'), { recursive: true });
for (const { file, record } of recs)
  writeFileAtomic(path.join(out, 'runs', `${record.id}.json`), fs.readFileSync(file));
const rows = resultRows(recs.map((r) => r.record));
const groups = seedGroups(recs.map((r) => r.record));
const linear = compareSeedGroups(groups, { metric: 'linearTest' });
const knn = compareSeedGroups(groups, { metric: 'knnTest' });
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
  '## Ours beside the original project',
  '',
  `Each row of ours is one config over its training seeds: mean ± sample std (n - 1); \`config\` is the hash of the config without the seed. The original project (ArthurZucker/DeepLearningProject) reports one linear-probe top-1 % on CIFAR-10 per method, with ResNet-50 / ViT-T/4 and its own protocol, so compare the ordering of methods more than the absolute values.`,
  '',
  markdownTable(oursVsOriginalRows(groups, budget.name)),
  '',
  'Seeds and runs of each row:',
  '',
  markdownTable(seedGroupRunsRows(groups)),
  '',
  '## Which differences are beyond seed noise',
  '',
  `Welch's t-test between every two rows on the same backbone; \`higher\` has the higher mean, \`detectable\` is the smallest difference these spreads and seed counts could call beyond noise. ${seedNoiseNote([...linear, ...knn])}`,
  '',
  markdownTable(comparisonRows([...linear, ...knn].filter((c) => c.verdict !== 'not testable'))),
  '',
  '## Every run',
  '',
  '| method | backbone | epochs | kNN val % | kNN test % | linear val % | linear test % | minutes | backend | run |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows
    .sort((a, b) => (b.linearTest ?? -1) - (a.linearTest ?? -1))
    .map(
      (r) =>
        `| ${r.method} | ${r.backbone} | ${r.epochs} | ${fmt(r.knnVal)} | ${fmt(r.knnTest)} | ${fmt(r.linearVal)} | ${fmt(r.linearTest)} | ${r.minutes} | ${r.backend} | ${r.run} |`,
    ),
  '',
];
writeFileAtomic(path.join(out, 'results.md'), lines.join('\n'));
console.log(`wrote ${recs.length} records and results.md to ${out}`);
collectAblations();
collectFullAblations();

/** Notebook 07's grid: its finished records to results/<budget>/ablations/, and ablations.md with a row per run and per cell. */
function collectAblations(): void {
  const abRoot = path.join(root, 'ablations');
  const found = fs.existsSync(abRoot) ? listRunRecords(abRoot).filter((r) => r.record.status === 'done') : [];
  if (found.length === 0) return;
  const seeds = seedsOf(found);
  const plan = expandSweep(ablationSweepSpec(budget.name, { seeds }), sourceOf(found));
  const stray = copyPlanRecords(found, plan, 'ablations');
  const runRows = sweepResults(plan);
  const cells = ablationCells(plan, runRows);
  const n = (v: number | null, d: number) => (v === null ? '—' : v.toFixed(d));
  const md = [
    `# Ablations: \`${budget.name}\` budget (notebook 07)`,
    '',
    `The grid of \`ablationSweepSpec\` (\`lib/sweep/ablations.ts\`) on the ablation budget (\`ablationBudget\` in \`lib/config/budget.ts\`), seeds ${seeds.join(', ')}. Written ${new Date().toISOString().slice(0, 10)} by \`bin/collect-results.ts\` from the records in \`ablations/\`. Monitors are the mean of the last logged steps (feature std, teacher entropy, KL) and the last epoch's kNN on the validation split.${stray.length ? ` Records not in this grid (left out): ${stray.join(', ')}.` : ''}`,
    '',
    '## Per cell (mean ± std over seeds)',
    '',
    markdownTable(
      cells.map((c) => ({
        method: c.method,
        cell: c.variant,
        seeds: `${c.done}/${c.planned}`,
        'kNN val %': formatMeanStd(c.knnVal, 1),
        'feature std': formatMeanStd(c.featStd, 3),
        'teacher entropy': formatMeanStd(c.teacherEntropy, 2),
        'log K': c.logK.toFixed(2),
        'teacher-student KL': formatMeanStd(c.teacherStudentKL, 2),
        'effective rank': formatMeanStd(c.effectiveRank, 1),
        collapse: c.collapse || '—',
      })),
    ),
    '',
    '## Every run',
    '',
    markdownTable(
      runRows.map((r) => ({
        method: r.method,
        cell: r.variant,
        seed: r.seed,
        status: r.status,
        'kNN val %': n(r.knnVal, 1),
        'feature std': n(r.featStd, 4),
        'teacher entropy': n(r.teacherEntropy, 3),
        'teacher-student KL': n(r.teacherStudentKL, 3),
        'effective rank': n(r.effectiveRank, 1),
        minutes: n(r.minutes, 1),
        run: r.run,
      })),
    ),
    '',
  ];
  writeFileAtomic(path.join(out, 'ablations.md'), md.join('\n'));
  console.log(`wrote ${found.length - stray.length} ablation records and ablations.md to ${out}`);
}

/** Notebook 07's full-length cells: their finished records to results/<budget>/ablations-full/, and ablations-full.md beside the main runs. */
function collectFullAblations(): void {
  const dir = path.join(root, 'sweeps', 'ablations-full');
  const found = fs.existsSync(dir)
    ? listRunRecords(dir).filter((r) => r.record.status === 'done' && r.record.results.linearProbe)
    : [];
  if (found.length === 0) return;
  const seeds = seedsOf(found);
  const plan = expandSweep(fullAblationSweepSpec(budget.name, { seeds }), sourceOf(found));
  const stray = copyPlanRecords(found, plan, 'ablations-full');
  const rows = fullAblationTable(budget.name, plan, mainRunRecords(root));
  const md = [
    `# Ablations at the full schedule: \`${budget.name}\` budget (notebook 07)`,
    '',
    `The cells of \`fullAblationSweepSpec\` (\`lib/sweep/fullAblations.ts\`), seeds ${seeds.join(', ')}: the budget's own setting with one DINO switch off, trained as long as the main runs and probed like them. Each is compared with its method's main runs (\`recipe\`, records in \`runs/\`): Δ = cell − recipe, with Welch's p over seeds. Written ${new Date().toISOString().slice(0, 10)} by \`bin/collect-results.ts\` from the records in \`ablations-full/\`; monitors are the mean of the last logged steps (feature std, teacher entropy, KL) and the last epoch's effective rank.${stray.length ? ` Records not in this grid (left out): ${stray.join(', ')}.` : ''}`,
    '',
    markdownTable(fullAblationDisplayRows(rows)),
    '',
    'Runs of each row:',
    '',
    markdownTable(rows.map((r) => ({ method: r.method, cell: r.cell, runs: r.runs.join(', ') || '—' }))),
    '',
  ];
  writeFileAtomic(path.join(out, 'ablations-full.md'), md.join('\n'));
  console.log(`wrote ${found.length - stray.length} full-length ablation records and ablations-full.md to ${out}`);
}

type FoundRecord = ReturnType<typeof listRunRecords>[number];

/**
 * The data source the records trained on (every record that names one must name the same), for
 * expanding their grid; records written before runs recorded their data trained on the real CIFAR-10.
 */
function sourceOf(found: readonly FoundRecord[]): SourceIdentity {
  const named = [
    ...new Set(
      found
        .map((r) => r.record.dataIdentity)
        .filter((d) => d !== undefined)
        .map((d) => JSON.stringify({ source: d!.source, checksum: d!.checksum })),
    ),
  ];
  if (named.length > 1)
    throw new Error(
      `the records in ${root} trained on ${named.length} different data sources (${named.join(', ')}); collect one at a time`,
    );
  return named.length === 1 ? (JSON.parse(named[0]) as SourceIdentity) : CIFAR10_SOURCE;
}

function seedsOf(found: readonly FoundRecord[]): number[] {
  return [...new Set(found.map((r) => r.record.seed))].sort((a, b) => a - b);
}

/** Copies the records that belong to `plan` into results/<budget>/<subdir>/; returns the ids of those that do not. */
function copyPlanRecords(found: readonly FoundRecord[], plan: SweepPlan, subdir: string): string[] {
  const planned = new Set(plan.runs.map((r) => r.id));
  fs.mkdirSync(path.join(out, subdir), { recursive: true });
  for (const { file, record } of found)
    if (planned.has(record.id)) writeFileAtomic(path.join(out, subdir, `${record.id}.json`), fs.readFileSync(file));
  return found.filter((r) => !planned.has(r.record.id)).map((r) => r.record.id);
}

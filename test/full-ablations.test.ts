/**
 * Full-length ablations (lib/sweep/fullAblations.ts): each cell is the budget's own setting with
 * exactly one DINO switch off, trained and probed like the main runs, and the comparison table puts
 * it beside its method's main runs with Welch's t-test against them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

process.env.DINOTWINS_RUNS = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-full-ablations-'));

import { BUDGETS, BudgetName, experimentConfig } from '../lib/config/budget';
import { Method } from '../lib/config/config';
import {
  FULL_ABLATION_CELLS,
  fullAblationDisplayRows,
  fullAblationSweepSpec,
  fullAblationTable,
} from '../lib/sweep/fullAblations';
import { ABLATION_LABELS } from '../lib/sweep/ablations';
import { expandSweep } from '../lib/sweep/spec';
import { CIFAR10_SOURCE } from '../lib/data/dataIdentity';
import { isMainRunFile, mainRunRecords } from '../lib/results/seedGroups';
import { runName, runsDir } from '../lib/train/runName';
import { RunRecord, writeRunRecord } from '../lib/train/runRecord';
import { welchTTest } from '../lib/results/stats/welch';

test('every full-length cell is the budget setting with exactly its switch off, probed, outside the main runs', () => {
  for (const b of ['smoke', 'cpu', 'gpu'] as BudgetName[]) {
    const plan = expandSweep(fullAblationSweepSpec(b, { seeds: [0, 1] }), CIFAR10_SOURCE);
    // Exactly the cells of FULL_ABLATION_CELLS, each once per seed.
    const want = Object.entries(FULL_ABLATION_CELLS).flatMap(([m, sw]) =>
      sw!.flatMap((s) => [0, 1].map((seed) => `${m}/${ABLATION_LABELS[s]}/${seed}`)),
    );
    assert.deepEqual(plan.runs.map((r) => `${r.method}/${r.variant}/${r.seed}`).sort(), want.sort());
    {
      assert.equal(plan.spec.probe, true);
      assert.notEqual(plan.spec.ablationBudget, true, 'the full schedule, not the ablation budget');
      for (const run of plan.runs) {
        const own = experimentConfig(run.method, BUDGETS[b], { seed: run.seed });
        const sw = (FULL_ABLATION_CELLS[run.method] ?? []).find((s) => ABLATION_LABELS[s] === run.variant);
        assert.ok(sw, `${b} ${run.variant}`);
        assert.equal(own.dino!.ablations[sw], true, `${b}: ${sw} is on in the budget setting`);
        assert.equal(run.config.dino!.ablations[sw], false);
        const { dino: dc, ...rest } = run.config;
        const { dino: dOwn, ...restOwn } = own;
        assert.deepEqual(rest, restOwn, `${b} ${run.label}: same schedule, data, backbone, optimizer`);
        assert.deepEqual({ ...dc!.ablations, [sw]: true }, dOwn!.ablations);
        assert.deepEqual(dc!.head, dOwn!.head);
        assert.equal(isMainRunFile(path.join(run.dir, 'record.json'), runsDir(b)), false, 'not a main-table row');
      }
    }
  }
  const only = expandSweep(
    fullAblationSweepSpec('cpu', { cells: { dino: ['centering'], 'dino-twins': ['centering', 'emaTeacher'] } }),
    CIFAR10_SOURCE,
  );
  assert.deepEqual(only.runs.map((r) => `${r.method}/${r.variant}`).sort(), [
    'dino-twins/no-centering',
    'dino-twins/no-ema',
    'dino/no-centering',
  ]);
  assert.throws(() => fullAblationSweepSpec('cpu', { cells: { dino: [] } }), /no cells for dino/);
});

/** A finished, probed record with a teacher entropy over its last steps. */
function record(
  id: string,
  method: Method,
  seed: number,
  linear: number,
  knn: number,
  entropy: number,
  config: unknown,
): RunRecord {
  return {
    format: 'dinotwins-run/1',
    id,
    kind: 'pretrain',
    status: 'done',
    method,
    budget: 'smoke',
    config: config as Record<string, unknown>,
    backend: null,
    git: { commit: null, dirty: null },
    seed,
    data: { source: 'fixture' },
    startedAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T01:00:00Z',
    seconds: 60,
    step: 16,
    totalSteps: 16,
    epochs: [{ epoch: 1, means: {}, extra: { knnTop1: knn, effectiveRank: 10 + seed }, seconds: 1, lr: 0 }],
    steps: [{ step: 15, loss: 1, featStd: 0.2, teacherEntropy: entropy, teacherStudentKL: 0.5 }],
    results: { linearProbe: { testTop1: linear, valTop1: linear }, knnTest: { top1: knn } },
    checkpoint: null,
    resumedFrom: [],
  } as unknown as RunRecord;
}

test('the table puts each cell beside its main runs, with Welch against them; other main runs stay out', () => {
  const root = runsDir('smoke');
  const plan = expandSweep(fullAblationSweepSpec('smoke', { seeds: [0, 1] }), CIFAR10_SOURCE);
  const write = (dir: string, r: RunRecord) => {
    fs.mkdirSync(dir, { recursive: true });
    writeRunRecord(path.join(dir, 'record.json'), r);
  };
  const recipeLinear = { 'dino-twins': [40, 42, 41], dino: [36, 35, 37] } as Record<string, number[]>;
  for (const method of ['dino-twins', 'dino'] as Method[]) {
    recipeLinear[method].forEach((v, seed) => {
      const cfg = experimentConfig(method, BUDGETS.smoke, { seed });
      // Seed 2's record predates data identities (as the committed results): matched on its config.
      const data = seed === 2 ? undefined : plan.data;
      write(path.join(root, runName(cfg, plan.data)), {
        ...record(runName(cfg, plan.data), method, seed, v, v - 3, 4.5, cfg),
        ...(data ? { dataIdentity: data } : {}),
      });
    });
  }
  // A main run at another setting (an lr override) is not the recipe; nor is one on another subset.
  const other = experimentConfig('dino', BUDGETS.smoke, { seed: 0, lr: 5e-3 });
  write(path.join(root, runName(other, plan.data)), {
    ...record(runName(other, plan.data), 'dino', 0, 99, 99, 4.5, other),
    dataIdentity: plan.data,
  });
  const subset = { ...plan.data, perClass: 20 };
  const same = experimentConfig('dino', BUDGETS.smoke, { seed: 1 });
  write(path.join(root, runName(same, subset)), {
    ...record(runName(same, subset), 'dino', 1, 98, 98, 4.5, same),
    dataIdentity: subset,
  });
  // Cells: DINO-Twins without sharpening two seeds; without centering only seed 0 finished; DINO without sharpening two seeds, one collapsed.
  const logK = Math.log(experimentConfig('dino', BUDGETS.smoke).dino!.head.out);
  const cellValues: Record<string, Array<[number, number]>> = {
    'dino-twins/no-sharpening': [
      [39, 5.4],
      [40, 5.3],
    ],
    'dino-twins/no-centering': [[30, 0.1]],
    'dino/no-sharpening': [
      [31, logK],
      [33, 5.0],
    ],
  };
  for (const run of plan.runs) {
    const vals = cellValues[`${run.method}/${run.variant}`];
    const v = vals?.[run.seed];
    if (v) write(run.dir, record(run.id, run.method, run.seed, v[0], v[0] - 3, v[1], run.config));
  }
  const rows = fullAblationTable('smoke', plan, mainRunRecords(root));
  assert.deepEqual(
    rows.map((r) => `${r.method}/${r.cell}`),
    [
      'dino-twins/recipe',
      'dino-twins/no-sharpening',
      'dino-twins/no-centering',
      'dino-twins/no-ema',
      'dino/recipe',
      'dino/no-sharpening',
    ],
  );
  const [dtRecipe, dtNoSharp, dtNoCenter, dtNoEma, dinoRecipe, dinoNoSharp] = rows;
  assert.deepEqual(dtNoEma.seeds, [], 'a cell with no finished run is a row without values');
  assert.deepEqual(dtRecipe.linearTest.values, [40, 42, 41]);
  assert.deepEqual(
    dinoRecipe.linearTest.values,
    [36, 35, 37],
    "the lr-override run and the other subset's run are not in the recipe row",
  );
  assert.equal(dtRecipe.linearVsRecipe, null);
  assert.deepEqual(dtNoSharp.seeds, [0, 1]);
  assert.deepEqual(dtNoSharp.linearVsRecipe, welchTTest([39, 40], [40, 42, 41]));
  assert.deepEqual(dtNoSharp.knnVsRecipe, welchTTest([36, 37], [37, 39, 38]));
  assert.deepEqual(dtNoCenter.seeds, [0]);
  assert.equal(dtNoCenter.linearVsRecipe, null, 'one seed: no test');
  assert.equal(dtNoCenter.collapse, 'one prototype 1/1 seeds');
  assert.equal(dinoNoSharp.collapse, 'uniform teacher 1/2 seeds');
  assert.ok(Math.abs(dinoNoSharp.linearTest.mean! - 32) < 1e-12);
  assert.deepEqual(dinoNoSharp.effectiveRank.values, [10, 11]);
});

test('display rows: differences signed with their p, blanks where there is no test', () => {
  const s = (values: number[]) => ({
    n: values.length,
    values,
    mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : null,
    std: values.length > 1 ? 1 : null,
  });
  const base = {
    method: 'dino' as Method,
    seeds: [0, 1],
    runs: ['a', 'b'],
    featStd: s([0.1, 0.1]),
    teacherEntropy: s([5, 5]),
    teacherStudentKL: s([]),
    effectiveRank: s([30, 32]),
    logK: Math.log(1024),
    collapse: '',
  };
  const w = welchTTest([30, 31], [36, 35, 37]);
  const [recipe, cell] = fullAblationDisplayRows([
    { ...base, cell: 'recipe', linearTest: s([36, 35, 37]), knnTest: s([33]), linearVsRecipe: null, knnVsRecipe: null },
    {
      ...base,
      cell: 'no-sharpening',
      linearTest: s([30, 31]),
      knnTest: s([]),
      linearVsRecipe: w,
      knnVsRecipe: null,
      collapse: 'uniform teacher 1/2 seeds',
    },
  ]);
  assert.equal(recipe['Δ linear vs recipe'], '—');
  assert.equal(recipe['kNN test %'], '33.00 ± —');
  assert.equal(cell['linear test %'], '30.50 ± 1.00');
  assert.equal(cell['Δ linear vs recipe'], `-5.50 (p ${w.p.toFixed(2)})`);
  assert.equal(cell['kNN test %'], '—');
  assert.equal(cell['teacher-student KL'], '—');
  assert.equal(cell.collapse, 'uniform teacher 1/2 seeds');
  assert.equal(cell['log K'], '6.93');
});

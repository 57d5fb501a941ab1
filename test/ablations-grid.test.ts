/**
 * The ablation grid (lib/sweep/ablations.ts): each cell switches exactly one DINO component off
 * relative to 'all', 'all' has DINO's teacher-temperature warm-up back, 'recipe' is the budget's own
 * DINO setting, and the per-cell summary folds seeds without mixing cells.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ablationBudget, BUDGETS, BudgetName, experimentConfig } from '../lib/config/budget';
import {
  ablationCells,
  ablationSweepSpec,
  collapseOf,
  ABLATION_LABELS,
  ABLATION_SWITCHES,
} from '../lib/sweep/ablations';
import { expandSweep } from '../lib/sweep/spec';
import { CIFAR10_SOURCE } from '../lib/data/dataIdentity';
import { SweepResultRow } from '../lib/sweep/records';
import { DINO_DEFAULTS, dinoTemps } from '../lib/methods/dino';

const DINO_TEACHER_TEMP = DINO_DEFAULTS.teacherTemp;

const ON = { centering: true, teacherTempWarmup: true, sharpening: true, emaTeacher: true };

test('every cell differs from "all" in exactly its own switch, for both methods and every budget', () => {
  for (const b of ['smoke', 'cpu', 'gpu'] as BudgetName[]) {
    const plan = expandSweep(ablationSweepSpec(b), CIFAR10_SOURCE);
    for (const method of ['dino', 'dino-twins'] as const) {
      const runs = plan.runs.filter((r) => r.method === method);
      const all = runs.find((r) => r.variant === 'all')!;
      assert.deepEqual(all.config.dino!.ablations, ON);
      assert.equal(all.config.dino!.teacherTemp, DINO_TEACHER_TEMP);
      for (const s of ABLATION_SWITCHES) {
        const cell = runs.find((r) => r.variant === ABLATION_LABELS[s])!;
        assert.deepEqual(cell.config.dino!.ablations, { ...ON, [s]: false }, `${b} ${method} ${s}`);
        // Everything outside DINO's part is the same as in 'all' (same data, schedule, head, lr).
        const { dino: _d, ...rest } = cell.config;
        const { dino: _a, ...restAll } = all.config;
        assert.deepEqual(rest, restAll);
        assert.deepEqual(cell.config.dino!.head, all.config.dino!.head);
      }
    }
  }
});

test("'all' has DINO's per-epoch warm-up, 'no-warmup' is at 0.07 from the first step, 'recipe' only where it trains differently", () => {
  const at = (b: BudgetName, v: string, epoch: number) => {
    const plan = expandSweep(ablationSweepSpec(b), CIFAR10_SOURCE);
    const run = plan.runs.find((r) => r.method === 'dino' && r.variant === v);
    assert.ok(run, `${b}: no cell ${v}`);
    return dinoTemps(run.config.dino!, epoch).teacherTemp;
  };
  // smoke: two epochs, a one-epoch warm-up: 0.04 in the first, 0.07 after (DINO's linspace over W epochs, then constant).
  assert.equal(at('smoke', 'all', 0), 0.04);
  assert.equal(at('smoke', 'all', 1), DINO_TEACHER_TEMP);
  assert.equal(at('smoke', 'no-warmup', 0), DINO_TEACHER_TEMP);
  assert.equal(at('smoke', 'recipe', 0), 0.04);
  assert.equal(at('smoke', 'recipe', 1), 0.04);
  const smokeDino = expandSweep(ablationSweepSpec('smoke'), CIFAR10_SOURCE).runs.find(
    (r) => r.method === 'dino' && r.variant === 'recipe',
  )!;
  assert.deepEqual(smokeDino.config, experimentConfig('dino', ablationBudget(BUDGETS.smoke)));
  assert.equal(at('smoke', 'no-sharpening', 0), smokeDino.config.dino!.studentTemp);
  // cpu: one epoch, so 'all' never leaves 0.04 and trains exactly as the recipe does: no 'recipe' cell.
  assert.equal(at('cpu', 'all', 0), 0.04);
  assert.equal(at('cpu', 'no-warmup', 0), DINO_TEACHER_TEMP);
  for (const b of ['cpu', 'gpu'] as BudgetName[])
    assert.ok(!expandSweep(ablationSweepSpec(b), CIFAR10_SOURCE).runs.some((r) => r.variant === 'recipe'), b);
});

test('collapse flags a uniform teacher and a one-prototype teacher, not one in between', () => {
  const logK = Math.log(1024);
  assert.equal(collapseOf(6.92, logK), 'uniform teacher');
  assert.equal(collapseOf(0.3, logK), 'one prototype');
  assert.equal(collapseOf(5.2, logK), '');
  assert.equal(collapseOf(null, logK), '');
});

test('cells fold the finished seeds of one method and variant only', () => {
  const plan = expandSweep(ablationSweepSpec('smoke', { seeds: [0, 1] }), CIFAR10_SOURCE);
  const rows: SweepResultRow[] = plan.runs.map((r) => ({
    run: r.rel,
    method: r.method,
    variant: r.variant,
    grid: '',
    seed: r.seed,
    // seed 1 of 'no-ema' has not finished: it must not count.
    status: r.variant === 'no-ema' && r.seed === 1 ? 'running' : 'done',
    steps: '',
    knnVal: (r.variant === 'all' ? 30 : 20) + r.seed * 2 + (r.method === 'dino' ? 0 : 100),
    linearTest: null,
    knnTest: null,
    featStd: 0.05,
    teacherEntropy:
      r.variant === 'no-centering'
        ? 0.1
        : r.variant === 'no-ema' && r.seed === 0
          ? 6.92
          : r.variant === 'no-warmup' && r.seed === 1
            ? 0.2
            : 5,
    teacherStudentKL: 1,
    effectiveRank: 10,
    minutes: 1,
  }));
  const cells = ablationCells(plan, rows);
  assert.equal(cells.length, 12);
  const c = (m: string, v: string) => cells.find((x) => x.method === m && x.variant === v)!;
  assert.equal(c('dino', 'all').knnVal.mean, 31);
  assert.equal(c('dino-twins', 'all').knnVal.mean, 131);
  assert.ok(Math.abs(c('dino', 'all').knnVal.std! - Math.SQRT2) < 1e-12);
  assert.deepEqual(
    [
      c('dino', 'no-ema').done,
      c('dino', 'no-ema').planned,
      c('dino', 'no-ema').knnVal.mean,
      c('dino', 'no-ema').knnVal.std,
    ],
    [1, 2, 20, null],
  );
  assert.deepEqual(c('dino', 'all').knnVal.values, [30, 32]);
  assert.equal(c('dino', 'no-centering').collapse, 'one prototype 2/2 seeds');
  // Counted per run: a mean entropy (2.6 here) would hide the seed that collapsed.
  assert.equal(c('dino', 'no-warmup').collapse, 'one prototype 1/2 seeds');
  assert.equal(c('dino', 'no-ema').collapse, 'uniform teacher 1/1 seeds');
  assert.equal(c('dino', 'all').collapse, '');
});

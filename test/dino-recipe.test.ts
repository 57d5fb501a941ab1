/**
 * The DINO recipe check (lib/sweep/dinoRecipe.ts): the budget's DINO with main_dino.py's EMA
 * schedule, its teacher-temperature warm-up, or both put back, and nothing else changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

process.env.DINOTWINS_RUNS = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-dino-recipe-'));

import { BUDGETS, BudgetName, experimentConfig } from '../lib/config/budget';
import { expandSweep } from '../lib/sweep/spec';
import { CIFAR10_SOURCE } from '../lib/data/dataIdentity';
import { DINO_WARMUP_FRACTION, dinoRecipeSweepSpec } from '../lib/sweep/dinoRecipe';
import { configDifferences as differences } from './helpers';

test("the DINO recipe check: the budget's DINO with DINO's published EMA, its warm-up, or both, and nothing else", () => {
  for (const b of ['smoke', 'cpu'] as BudgetName[]) {
    const plan = expandSweep(dinoRecipeSweepSpec(b, { seeds: [0, 1] }), CIFAR10_SOURCE);
    assert.deepEqual(
      [...new Set(plan.runs.map((r) => r.variant))],
      ['published-ema', 'published-warmup', 'published-both'],
    );
    for (const run of plan.runs) {
      const own = experimentConfig('dino', BUDGETS[b], { seed: run.seed });
      const d = differences(own, run.config);
      const ema = ['dino.emaMomentum', 'dino.emaMomentumEnd'];
      const warm = [
        'dino.ablations.teacherTempWarmup',
        'dino.teacherTemp',
        'dino.warmupTeacherTemp',
        'dino.warmupTeacherTempEpochs',
      ];
      const want =
        run.variant === 'published-ema' ? ema : run.variant === 'published-warmup' ? warm : [...ema, ...warm];
      assert.deepEqual(d, want.sort(), `${b} ${run.label}`);
      if (run.variant !== 'published-ema') {
        assert.equal(
          run.config.dino!.warmupTeacherTempEpochs,
          Math.max(1, Math.round(DINO_WARMUP_FRACTION * own.epochs)),
        );
        assert.equal(run.config.dino!.teacherTemp, 0.07);
      }
      if (run.variant !== 'published-warmup')
        assert.deepEqual([run.config.dino!.emaMomentum, run.config.dino!.emaMomentumEnd], [0.996, 1]);
    }
  }
});

/**
 * The Barlow Twins control (lib/sweep/barlowControl.ts): each cell is Barlow Twins' own setting with
 * some of DINO-Twins' augmentation, weight decay and clipping, and nothing else; the table compares
 * every cell with Barlow Twins' and DINO-Twins' main runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

process.env.DINOTWINS_RUNS = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-barlow-control-'));

import { BUDGETS, BudgetName, experimentConfig } from '../lib/config/budget';
import { Method, PretrainConfig } from '../lib/config/config';
import {
  CONTROL_FACTORS,
  CONTROL_LABELS,
  barlowControlSweepSpecs,
  barlowControlTable,
} from '../lib/sweep/barlowControl';
import { expandSweep } from '../lib/sweep/spec';
import { CIFAR10_SOURCE } from '../lib/data/dataIdentity';
import { isMainRunFile, mainRunRecords } from '../lib/results/seedGroups';
import { runName, runsDir } from '../lib/train/runName';
import { RunRecord, writeRunRecord } from '../lib/train/runRecord';
import { welchTTest } from '../lib/results/stats/welch';
import { configDifferences as differences } from './helpers';

const FACTOR_KEYS: Record<(typeof CONTROL_FACTORS)[number], string[]> = {
  augment: ['augment.blur', 'augment.jitterStrength'],
  weightDecay: ['weightDecay', 'weightDecayEnd'],
  clip: ['optimizer.clipGradNorm'],
};

test("each control cell is Barlow Twins with DINO-Twins' value of exactly its factors, probed, outside the main runs", () => {
  for (const b of ['smoke', 'cpu'] as BudgetName[]) {
    const [all, single] = barlowControlSweepSpecs(b, { seeds: [0, 1, 2], factorSeeds: [0, 1] }).map((s) =>
      expandSweep(s, CIFAR10_SOURCE),
    );
    assert.deepEqual(
      all.runs.map((r) => `${r.variant}/${r.seed}`),
      ['twins-all/0', 'twins-all/1', 'twins-all/2'],
    );
    assert.deepEqual(
      single.runs.map((r) => `${r.variant}/${r.seed}`).sort(),
      CONTROL_FACTORS.flatMap((f) => [0, 1].map((s) => `${CONTROL_LABELS[f]}/${s}`)).sort(),
    );
    const twins = experimentConfig('dino-twins', BUDGETS[b]);
    for (const run of [...all.runs, ...single.runs]) {
      assert.equal(run.method, 'barlow');
      const own = experimentConfig('barlow', BUDGETS[b], { seed: run.seed });
      const factors =
        run.variant === 'twins-all'
          ? CONTROL_FACTORS
          : CONTROL_FACTORS.filter((f) => CONTROL_LABELS[f] === run.variant);
      const want = factors.flatMap((f) => FACTOR_KEYS[f]).filter((k) => differences(own, twins).includes(k));
      assert.deepEqual(differences(own, run.config), want.sort(), `${b} ${run.label}`);
      for (const k of want) {
        const get = (c: PretrainConfig) => k.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], c);
        assert.deepEqual(get(run.config), get(twins), `${b} ${run.label}: ${k} is DINO-Twins' value`);
      }
      assert.equal(isMainRunFile(path.join(run.dir, 'record.json'), runsDir(b)), false, 'not a main-table row');
    }
    assert.equal(all.spec.probe, true);
  }
  // In the cpu budget every factor really differs, so no cell is a copy of Barlow Twins' main runs.
  const own = experimentConfig('barlow', BUDGETS.cpu);
  for (const keys of Object.values(FACTOR_KEYS))
    assert.ok(
      keys.some((k) => differences(own, experimentConfig('dino-twins', BUDGETS.cpu)).includes(k)),
      keys.join(),
    );
});

function record(
  id: string,
  method: Method,
  seed: number,
  linear: number,
  knn: number,
  config: PretrainConfig,
  data: unknown,
): RunRecord {
  return {
    format: 'dinotwins-run/1',
    id,
    kind: 'pretrain',
    status: 'done',
    method,
    budget: 'smoke',
    config: config as unknown as Record<string, unknown>,
    backend: null,
    git: { commit: null, dirty: null },
    seed,
    data: { source: 'fixture' },
    dataIdentity: data,
    startedAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T01:00:00Z',
    seconds: 60,
    step: 16,
    totalSteps: 16,
    epochs: [{ epoch: 1, means: {}, extra: { knnTop1: knn, effectiveRank: 10 }, seconds: 1, lr: 0 }],
    steps: [{ step: 15, loss: 1, featStd: 0.2 }],
    results: { linearProbe: { testTop1: linear, valTop1: linear }, knnTest: { top1: knn } },
    checkpoint: null,
    resumedFrom: [],
  } as unknown as RunRecord;
}

test("the control table: Barlow Twins' runs, each cell, DINO-Twins' runs, Welch against both", () => {
  const root = runsDir('smoke');
  const plans = barlowControlSweepSpecs('smoke', { seeds: [0, 1] }).map((s) => expandSweep(s, CIFAR10_SOURCE));
  const write = (dir: string, r: RunRecord) => {
    fs.mkdirSync(dir, { recursive: true });
    writeRunRecord(path.join(dir, 'record.json'), r);
  };
  const main: Record<string, number[]> = { barlow: [30, 31, 32], 'dino-twins': [34, 35, 36] };
  for (const [method, knns] of Object.entries(main)) {
    knns.forEach((knn, seed) => {
      const cfg = experimentConfig(method as Method, BUDGETS.smoke, { seed });
      write(
        path.join(root, runName(cfg, plans[0].data)),
        record(runName(cfg, plans[0].data), method as Method, seed, knn + 3, knn, cfg, plans[0].data),
      );
    });
  }
  const cellKnn: Record<string, number[]> = {
    'twins-all': [35, 34],
    'twins-augment': [34, 36],
    'twins-weight-decay': [30, 31],
    'twins-clip': [31],
  };
  for (const plan of plans) {
    for (const run of plan.runs) {
      const knn = cellKnn[run.variant]?.[run.seed];
      if (knn !== undefined) write(run.dir, record(run.id, 'barlow', run.seed, knn + 3, knn, run.config, plan.data));
    }
  }
  const rows = barlowControlTable('smoke', plans, mainRunRecords(root));
  assert.deepEqual(
    rows.map((r) => `${r.method}/${r.cell}`),
    [
      'barlow/recipe',
      'barlow/twins-all',
      'barlow/twins-augment',
      'barlow/twins-weight-decay',
      'barlow/twins-clip',
      'dino-twins/recipe',
    ],
  );
  const [barlow, all, aug, , clip, twins] = rows;
  assert.deepEqual(barlow.knnTest.values, [30, 31, 32]);
  assert.deepEqual(twins.knnTest.values, [34, 35, 36]);
  assert.deepEqual(all.knnVsRecipe, welchTTest([35, 34], [30, 31, 32]));
  assert.deepEqual(all.knnVsTwins, welchTTest([35, 34], [34, 35, 36]));
  assert.deepEqual(aug.linearVsTwins, welchTTest([37, 39], [37, 38, 39]));
  assert.equal(clip.knnVsTwins, null, 'one seed: no test');
  assert.equal(twins.knnVsTwins, null);
});

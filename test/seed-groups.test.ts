/**
 * Rows of the results table over seeds (lib/results/seedGroups.ts), the pairwise seed-noise comparisons
 * (lib/results/seedCompare.ts), the table beside the original project's (lib/results/resultsTable.ts) and the bar
 * chart with error bars and seed points.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { RunRecord } from '../lib/train/runRecord';
import { configKey, isMainRunFile, mainRunRecords, seedBars, seedGroups } from '../lib/results/seedGroups';
import { compareSeedGroups, seedNoiseNote } from '../lib/results/seedCompare';
import {
  comparisonRows,
  formatMeanStd,
  oursVsOriginalBars,
  oursVsOriginalRows,
  seedGroupRunsRows,
} from '../lib/results/resultsTable';
import { knnCurves, resultRows, selectRuns } from '../lib/results/report';
import { summarize } from '../lib/results/stats/describe';
import { welchTTest } from '../lib/results/stats/welch';
import { barChartSpec, markdownTable, renderSvg } from '../lib/viz/index';

const RESNET = { kind: 'resnet', depth: 18, width: 16 };
const VIT = { kind: 'vit', preset: 'tiny4' };

/** A finished run record with the given linear / kNN test top-1 and last kNN val. */
function rec(
  id: string,
  method: string,
  seed: number,
  linear: number | null,
  knn: number,
  extra: Record<string, unknown> = {},
  over: Partial<RunRecord> = {},
): RunRecord {
  return {
    format: 'dinotwins-run/1',
    id,
    kind: method === 'random-init' || method === 'supervised' ? 'baseline' : 'pretrain',
    status: 'done',
    method,
    budget: 'cpu',
    config: { method, backbone: RESNET, seed, epochs: 3, batchSize: 128, ...extra },
    backend: null,
    git: { commit: null, dirty: null },
    seed,
    data: { source: 'fixture' },
    startedAt: `2026-01-01T00:0${seed}:00Z`,
    updatedAt: `2026-01-01T01:0${seed}:00Z`,
    seconds: 60,
    step: 10,
    totalSteps: 10,
    epochs: [{ epoch: 0, means: {}, extra: { knnTop1: knn - 1 }, seconds: 1, lr: 0 }],
    steps: [],
    results: {
      ...(linear === null ? {} : { linearProbe: { testTop1: linear, valTop1: linear } }),
      knnTest: { top1: knn },
    },
    checkpoint: null,
    resumedFrom: [],
    ...over,
  };
}

const DINO = [38.53, 34.45, 35.43];
const BARLOW = [36.1, 37.0, 38.1];
const RANDOM = [31.69, 31.2, 32.05];

function table(): RunRecord[] {
  return [
    ...DINO.map((v, s) => rec(`dino-s${s}`, 'dino', s, v, v - 2, { lr: 1e-3 })),
    ...BARLOW.map((v, s) => rec(`barlow-s${s}`, 'barlow', s, v, v - 3, { lr: 1e-3 })),
    ...RANDOM.map((v, s) => rec(`random-init-s${s}`, 'random-init', s, v, v - 3)),
  ];
}

test('configKey ignores the seed and the key order, and sees every other difference', () => {
  const a = { method: 'dino', seed: 0, lr: 1e-3, backbone: { kind: 'resnet', depth: 18, width: 16 } };
  assert.equal(
    configKey(a),
    configKey({ backbone: { width: 16, depth: 18, kind: 'resnet' }, lr: 1e-3, seed: 7, method: 'dino' }),
  );
  assert.notEqual(configKey(a), configKey({ ...a, lr: 2e-3 }));
  assert.notEqual(configKey(a), configKey({ ...a, backbone: { ...a.backbone, width: 32 } }));
});

test('seed groups: one row per config over its seeds, with mean and sample std', () => {
  const groups = seedGroups(table());
  assert.deepEqual(
    groups.map((g) => g.label),
    ['barlow', 'dino', 'random-init'],
  );
  const dino = groups[1];
  assert.equal(dino.n, 3);
  assert.deepEqual(dino.seeds, [0, 1, 2]);
  assert.deepEqual(dino.runs, ['dino-s0', 'dino-s1', 'dino-s2']);
  assert.deepEqual(dino.linearTest, summarize(DINO));
  assert.equal(formatMeanStd(dino.linearTest), '36.14 ± 2.13');
  assert.deepEqual(
    dino.knnTest.values,
    DINO.map((v) => v - 2),
  );
  assert.deepEqual(
    dino.knnVal.values,
    DINO.map((v) => v - 3),
  );
  assert.equal(dino.backbone, 'ResNet-18 (width 16)');
  assert.equal(dino.backboneKind, 'resnet');
});

test('seed groups: a different config, epoch count or backbone is its own row; one seed has no std', () => {
  const recs = [
    ...table(),
    rec('dino-lr2-s0', 'dino', 0, 30, 28, { lr: 2e-3 }),
    rec('dino-long-s0', 'dino', 0, 40, 38, { lr: 1e-3, epochs: 10 }),
    rec('dino-vit-s0', 'dino-twins', 0, 33, 30, { backbone: VIT }),
  ];
  const groups = seedGroups(recs);
  const dinos = groups.filter((g) => g.method === 'dino');
  assert.equal(dinos.length, 3);
  assert.deepEqual(dinos.map((g) => g.n).sort(), [1, 1, 3]);
  for (const g of dinos) assert.match(g.label, /^dino \[[0-9a-f]{8}\]$/, 'labels tell configs apart');
  assert.equal(new Set(groups.map((g) => g.label)).size, groups.length);
  const one = dinos.find((g) => g.runs[0] === 'dino-lr2-s0')!;
  assert.equal(one.linearTest.std, null);
  assert.equal(formatMeanStd(one.linearTest), '30.00 ± —');
  const vit = groups.find((g) => g.method === 'dino-twins')!;
  assert.equal(vit.label, 'dino-twins ViT');
  assert.equal(vit.backboneKind, 'vit');
});

test('seed groups: unfinished runs are left out; the same seed twice keeps the newer record', () => {
  const recs = [
    ...table(),
    rec('dino-s3', 'dino', 3, null, 1, { lr: 1e-3 }, { status: 'running' }),
    // The old single-folder baseline and its per-seed successor: same config, same seed.
    rec('random-init', 'random-init', 0, 99, 99, {}, { updatedAt: '2025-01-01T00:00:00Z' }),
  ];
  const groups = seedGroups(recs);
  const dino = groups.find((g) => g.method === 'dino')!;
  assert.deepEqual(dino.seeds, [0, 1, 2]);
  const ri = groups.find((g) => g.method === 'random-init')!;
  assert.equal(ri.n, 3);
  assert.deepEqual(ri.runs, ['random-init-s0', 'random-init-s1', 'random-init-s2']);
  assert.deepEqual(ri.duplicates, ['random-init']);
  assert.deepEqual(ri.linearTest.values, RANDOM);
  assert.match(markdownTable(seedGroupRunsRows(groups)), /left out \(same seed, older\)/);
  // A run without a probe yet counts as a seed of the group but not in the linear-probe summary.
  const noProbe = seedGroups([...table(), rec('dino-s5', 'dino', 5, null, 30, { lr: 1e-3 })]).find(
    (g) => g.method === 'dino',
  )!;
  assert.equal(noProbe.n, 4);
  assert.equal(noProbe.linearTest.n, 3);
  assert.equal(noProbe.knnTest.n, 4);
});

test('main runs only: ablation and sweep folders under the runs root are not rows of the table', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dinotwins-seeds-'));
  try {
    const write = (rel: string, r: RunRecord) => {
      fs.mkdirSync(path.join(root, rel), { recursive: true });
      fs.writeFileSync(path.join(root, rel, 'record.json'), JSON.stringify(r));
    };
    table().forEach((r) => write(r.id, r));
    write('ablations/dino-no-centering-1234abcd', rec('dino-no-centering', 'dino', 0, 10, 10, { lr: 1e-3 }));
    write('sweeps/lr/dino-s0-x', rec('dino-sweep', 'dino', 0, 11, 11, { lr: 1e-3 }));
    const main = mainRunRecords(root);
    assert.deepEqual(
      main.map((r) => r.id).sort(),
      table()
        .map((r) => r.id)
        .sort(),
    );
    assert.equal(seedGroups(main).find((g) => g.method === 'dino')!.n, 3);
    assert.ok(isMainRunFile(path.join(root, 'dino-s0', 'record.json'), root));
    assert.ok(!isMainRunFile(path.join(root, 'ablations', 'x', 'record.json'), root));
    assert.ok(!isMainRunFile(path.join(root, 'sweeps', 'record.json'), root), 'a folder named sweeps is not a run');
    assert.ok(!isMainRunFile(path.join(root, '..', 'other', 'record.json'), root));
    assert.deepEqual(mainRunRecords(path.join(root, 'missing')), []);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('pairwise comparisons: every pair on a backbone, Welch p, the higher mean first, one-seed rows not testable', () => {
  const recs = [
    ...table(),
    rec('sup-s0', 'supervised', 0, 53.86, 50.39),
    rec('vit-s0', 'dino-twins', 0, 33, 30, { backbone: VIT }),
  ];
  const groups = seedGroups(recs);
  const cmp = compareSeedGroups(groups);
  // barlow, dino, supervised, random-init on ResNet: 6 pairs; the ViT row has no partner.
  assert.equal(cmp.length, 6);
  const dr = cmp.find((c) => c.a === 'dino' && c.b === 'random-init')!;
  const w = welchTTest(DINO, RANDOM);
  assert.equal(dr.p, w.p);
  assert.equal(dr.diff, w.diff);
  assert.equal(dr.threshold, w.threshold);
  // 4.5 points over random init, yet p = 0.062 with 3 seeds: within the noise at 0.05.
  assert.equal(dr.verdict, 'within seed noise');
  const br = cmp.find((c) => c.a === 'barlow' && c.b === 'random-init')!;
  assert.ok(br.p! < 0.05, `barlow vs random init p=${br.p}`);
  assert.equal(br.verdict, 'beyond seed noise');
  const bd = cmp.find((c) => c.a === 'barlow' && c.b === 'dino')!;
  assert.ok(bd.diff! > 0);
  assert.equal(bd.verdict, 'within seed noise');
  const sup = cmp.filter((c) => c.a === 'supervised');
  assert.equal(sup.length, 3);
  for (const c of sup) {
    assert.equal(c.verdict, 'not testable');
    assert.equal(c.p, null);
    assert.match(c.note, /supervised has 1/);
  }
  const knn = compareSeedGroups(groups, { metric: 'knnTest' });
  assert.equal(
    knn.find((c) => c.a === 'dino' && c.b === 'random-init')!.p,
    welchTTest(
      DINO.map((v) => v - 2),
      RANDOM.map((v) => v - 3),
    ).p,
  );
  const note = seedNoiseNote(cmp);
  assert.match(note, /1 of 3 testable comparisons differ beyond seed noise/);
  assert.match(note, /3 seeds per row/);
  assert.match(note, /low power/);
  assert.match(note, /Not tested, fewer than 2 seeds: supervised\.$/);
  assert.match(seedNoiseNote([]), /nothing is compared/);
  assert.match(seedNoiseNote(sup), /No comparison has 2\+ seeds/);
  const rows = comparisonRows(cmp);
  assert.equal(rows.length, 6);
  assert.equal(rows.find((r) => r.higher === 'dino (n=3)' && r.lower === 'random-init (n=3)')!.p, w.p.toFixed(4));
});

test('ours beside the original: matched by method and backbone kind, original rows without a run kept', () => {
  const groups = seedGroups([...table(), rec('vit-s0', 'dino-twins', 0, 33, 30, { backbone: VIT })]);
  const rows = oursVsOriginalRows(groups, 'cpu');
  const by = (row: string) => rows.find((r) => r.row === row)!;
  assert.equal(by('dino')['linear test % (mean ± std)'], '36.14 ± 2.13');
  assert.equal(by('dino')['original: linear test %'], '48.7');
  assert.equal(by('barlow')['original: linear test %'], '80.3');
  assert.equal(by('random-init')['original: linear test %'], '—');
  assert.equal(by('dino-twins ViT')['original: backbone'], 'ViT-T/4');
  assert.equal(by('dino-twins ViT')['original: linear test %'], '78.2');
  // DINO-Twins ResNet has no run here: the original's row stays, ours empty.
  assert.equal(by('dino-twins')['seeds (n)'], 0);
  assert.equal(by('dino')['seeds (n)'], 3);
  // The next table lists the seed values under another name: a count and a list never share a column name.
  const runs = seedGroupRunsRows(groups);
  assert.equal(runs.find((r) => r.row === 'dino')!['seed values'], '0, 1, 2');
  assert.deepEqual(
    Object.keys(rows[0]).filter((k) => Object.keys(runs[0]).includes(k)),
    ['row'],
  );
  assert.equal(by('dino-twins')['original: linear test %'], '85.3');
  assert.equal(rows.length, groups.length + 1);
  const md = markdownTable(rows);
  assert.match(md, /^\| row \| ours \(cpu\): backbone \|/);
  assert.equal(md.split('\n').length, rows.length + 2);
  assert.deepEqual(
    oursVsOriginalRows([], 'smoke').map((r) => r.row),
    ['barlow', 'dino', 'dino-twins', 'dino-twins ViT'],
  );
  assert.equal(
    markdownTable([
      { a: 'x|y', n: 1.234567 },
      { a: 'z', n: 2 },
    ]),
    '| a | n |\n|---|---:|\n| x\\|y | 1.235 |\n| z | 2 |',
  );
  assert.equal(markdownTable([]), '');
});

test('bar chart: mean bars with ±std whiskers and one point per seed, next to the original bars', async () => {
  const groups = seedGroups(table());
  const bars = seedBars(groups, 'linearTest');
  const dino = bars.find((b) => b.label === 'dino')!;
  assert.equal(dino.value, summarize(DINO).mean);
  assert.equal(dino.error, summarize(DINO).std);
  assert.deepEqual(dino.points, DINO);
  const spec = barChartSpec(oursVsOriginalBars(groups, 'cpu'), { valueTitle: 'top-1 %' }) as unknown as {
    data: { values: Array<{ label: string; group: string; lo: number; hi: number }> };
    layer: Array<{
      mark: { type: string };
      data?: { values: Array<{ label: string; value: number }> };
      encoding: Record<string, { field?: string }>;
    }>;
  };
  const rule = spec.layer.find((l) => l.mark.type === 'rule')!;
  assert.equal(rule.encoding.y.field, 'lo');
  assert.equal(rule.encoding.y2.field, 'hi');
  const d = spec.data.values.find((v) => v.label === 'dino' && v.group.startsWith('ours'))!;
  // Mean and sample std of the DINO seeds from Python's statistics.mean / statistics.stdev.
  assert.ok(
    Math.abs(d.lo - (36.13666666666667 - 2.1298200236952725)) < 1e-4 &&
      Math.abs(d.hi - (36.13666666666667 + 2.1298200236952725)) < 1e-4,
    `whisker ${d.lo}..${d.hi}`,
  );
  const orig = spec.data.values.find((v) => v.label === 'dino' && v.group.startsWith('original'))!;
  assert.equal(orig.lo, orig.hi, 'the original has no whisker');
  const pts = spec.layer.find((l) => l.mark.type === 'point')!;
  assert.deepEqual(
    pts.data!.values.filter((p) => p.label === 'dino').map((p) => p.value),
    DINO,
  );
  const svg = await renderSvg(spec as never);
  const count = (re: RegExp) => (svg.match(re) ?? []).length;
  assert.equal(count(/aria-roledescription="bar"/g), 3 + 4);
  assert.equal(count(/aria-roledescription="rule mark"/g), 3, 'one whisker per row of ours');
  assert.equal(count(/aria-roledescription="point"/g), 9, 'one point per seed');
  assert.throws(() => barChartSpec([{ label: 'a', value: 1, error: -1 }]), /half-width/);
  assert.throws(() => barChartSpec([{ label: 'a', value: 1, points: [NaN] }]), /non-finite point/);
});

test('an unfinished run is not a result: rows say status and steps trained; tables and charts leave it out unless asked', () => {
  const done = rec('barlow-s0', 'barlow', 0, 36, 33, { epochs: 50 }, { step: 400, totalSteps: 400 });
  const cut = rec(
    'dino-s0',
    'dino',
    0,
    null,
    30,
    { epochs: 50 },
    { status: 'interrupted', step: 115, totalSteps: 400 },
  );
  const running = rec('dino-s1', 'dino', 1, null, 30, {}, { status: 'running', step: 3, totalSteps: 16, epochs: [] });
  const rows = resultRows([done, cut]);
  assert.deepEqual(
    rows.map((r) => [r.run, r.status, r.steps, r.epochs]),
    [
      ['barlow-s0', 'done', '400/400', 50],
      ['dino-s0', 'interrupted', '115/400', 50],
    ],
  );
  const sel = selectRuns([done, cut, running]);
  assert.deepEqual(
    sel.shown.map((r) => r.id),
    ['barlow-s0'],
  );
  assert.deepEqual(
    sel.leftOut.map((r) => r.id),
    ['dino-s0', 'dino-s1'],
  );
  assert.equal(
    sel.note,
    '2 unfinished runs left out of the results: dino-s0 (interrupted at step 115 of 400), dino-s1 (running at step 3 of 16)',
  );
  const all = selectRuns([done, cut, running], { unfinished: true });
  assert.deepEqual([all.shown.length, all.leftOut.length, all.note], [3, 0, '']);
  assert.equal(selectRuns([done]).note, '');
  // The kNN curves: finished pretraining runs by default (a baseline has none; an unfinished run only when asked).
  assert.deepEqual(knnCurves(selectRuns([done, cut, rec('random-init-s0', 'random-init', 0, 31, 30)]).shown), [
    { name: 'barlow-s0', x: [1], y: [32] },
  ]);
  assert.deepEqual(
    knnCurves([done, cut]).map((c) => c.name),
    ['barlow-s0', 'dino-s0'],
  );
});

/**
 * Sweep specs: validation, expansion order, and run identity: a sweep's run has the folder and
 * config hash that a notebook (`experimentConfig` + `runName`, or notebook 07's ablation folders)
 * and `npm run pretrain --config` give the same run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expandSweep, findRun, loadSweepSpec, parseSweepSpec, SweepError, SweepSpec } from '../lib/sweep/spec';
import { CIFAR10_SOURCE } from '../lib/data/dataIdentity';
import { ablationOverrides, ablationSweepSpec, AblationSwitch } from '../lib/sweep/ablations';
import { ablationBudget, budgetDataIdentity, BUDGETS, experimentConfig } from '../lib/config/budget';
import { configHash, runIdentity, runName, runsDir } from '../lib/train/runName';
import { cliBudget, cliRunDir, parseCli } from '../lib/train/cli';
import { Method } from '../lib/config/config';

process.env.DINOTWINS_RUNS = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-sweep-spec-'));

const spec = (over: Partial<SweepSpec> = {}): SweepSpec => ({
  name: 'unit',
  budget: 'smoke',
  methods: ['barlow', 'dino-twins'],
  ...over,
});

test('expansion: methods x variants (restricted by methods) x grid x seeds, in that order; indices are positions', () => {
  const plan = expandSweep(
    spec({
      variants: [
        { label: 'base' },
        { label: 'no-center', methods: ['dino-twins'], overrides: { dino: { ablations: { centering: false } } } },
      ],
      grid: { lr: [0.001, 0.002] },
      seeds: [0, 1],
    }),
    CIFAR10_SOURCE,
  );
  // barlow: 1 variant x 2 lr x 2 seeds; dino-twins: 2 variants x 2 x 2.
  assert.equal(plan.runs.length, 4 + 8);
  assert.deepEqual(
    plan.runs.map((r) => r.index),
    [...Array(12).keys()],
  );
  assert.deepEqual(
    plan.runs.slice(0, 4).map((r) => r.label),
    ['barlow lr=0.001 s0', 'barlow lr=0.001 s1', 'barlow lr=0.002 s0', 'barlow lr=0.002 s1'],
  );
  assert.deepEqual(
    plan.runs.slice(8).map((r) => r.label),
    [
      'dino-twins no-center lr=0.001 s0',
      'dino-twins no-center lr=0.001 s1',
      'dino-twins no-center lr=0.002 s0',
      'dino-twins no-center lr=0.002 s1',
    ],
  );
  for (const r of plan.runs) {
    assert.equal(r.config.lr, r.grid.lr);
    assert.equal(r.config.seed, r.seed);
    if (r.variant === 'no-center') assert.equal(r.config.dino?.ablations.centering, false);
  }
  assert.equal(new Set(plan.runs.map((r) => r.rel)).size, 12);
  assert.equal(plan.runsRoot, runsDir('smoke'));
  assert.equal(plan.sweepDir, path.join(runsDir('smoke'), 'sweeps', 'unit'));
});

test('a sweep run has the folder and hash of the same run from a notebook and from npm run pretrain', () => {
  const plan = expandSweep(
    spec({ base: { epochs: 1, checkpointEvery: 2 }, seeds: [0, 3], grid: { 'barlow.lambda': [0.005, 0.01] } }),
    CIFAR10_SOURCE,
  );
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-sweep-cli-'));
  // The smoke budget's split of the real CIFAR-10, as loadExperimentData(BUDGETS.smoke) gives it.
  const data = budgetDataIdentity(CIFAR10_SOURCE, BUDGETS.smoke);
  assert.deepEqual(plan.data, data);
  for (const r of plan.runs) {
    // Notebook: experimentConfig(method, budget, overrides), folder runsDir(budget)/runName(config, data).
    const nb = experimentConfig(r.method, BUDGETS.smoke, {
      epochs: 1,
      checkpointEvery: 2,
      seed: r.seed,
      barlow: { lambda: r.grid['barlow.lambda'] as number },
    });
    assert.deepEqual(r.config, nb);
    assert.deepEqual(r.data, data);
    assert.equal(r.hash, configHash(runIdentity(nb, data)));
    assert.equal(r.rel, runName(nb, data));
    assert.equal(r.dir, path.join(runsDir(BUDGETS.smoke), runName(nb, data)));
    // CLI: the resolved config as --config, labelled with the budget, on the same subset.
    const file = path.join(tmp, `${r.index}.json`);
    fs.writeFileSync(file, JSON.stringify(r.config));
    const o = parseCli([
      '--method',
      r.method,
      '--config',
      file,
      '--budget',
      'smoke',
      '--per-class',
      String(BUDGETS.smoke.trainPerClass),
    ]);
    assert.equal(cliRunDir(o, budgetDataIdentity(CIFAR10_SOURCE, cliBudget(o))), r.dir);
  }
});

test("notebook 07's grid (ablationSweepSpec) lands in the ablation folders with the configs it names", () => {
  for (const budgetName of ['smoke', 'cpu'] as const) {
    const plan = expandSweep(ablationSweepSpec(budgetName, { seeds: [0, 1] }), CIFAR10_SOURCE);
    // cpu's one-epoch runs never leave the warm-up's 0.04, so 'all' is the recipe there and 'recipe' is not a cell.
    const cells = [
      'all',
      'no-centering',
      'no-warmup',
      'no-sharpening',
      'no-ema',
      ...(budgetName === 'smoke' ? ['recipe'] : []),
    ];
    assert.equal(plan.runs.length, 2 * cells.length * 2);
    const ab = ablationBudget(BUDGETS[budgetName]);
    assert.deepEqual(plan.budget, ab);
    let i = 0;
    for (const method of ['dino', 'dino-twins'] as Method[]) {
      for (const cell of cells) {
        for (const seed of [0, 1]) {
          const off = {
            'no-centering': 'centering',
            'no-warmup': 'teacherTempWarmup',
            'no-sharpening': 'sharpening',
            'no-ema': 'emaTeacher',
          }[cell];
          const overrides =
            cell === 'recipe' ? { seed } : { ...ablationOverrides((off ?? 'all') as AblationSwitch | 'all'), seed };
          const config = experimentConfig(method, ab, overrides);
          const run = plan.runs[i++];
          assert.deepEqual(run.config, config);
          // The hash of config and data: the ablation budget's subset of the source (notebook 07 trains on abData).
          const hash = configHash(runIdentity(config, budgetDataIdentity(CIFAR10_SOURCE, ab)));
          assert.equal(run.dir, `${runsDir(BUDGETS[budgetName])}/ablations/${method}-${cell}-${hash}`);
          assert.equal(run.id, `${method}-${cell}-${hash}`);
        }
      }
    }
  }
});

test('an override a method does not read is an error naming the run; restricting the variant fixes it', () => {
  const bad = spec({ variants: [{ label: 'hot', overrides: { dino: { teacherTemp: 0.05 } } }] });
  assert.throws(
    () => expandSweep(bad, CIFAR10_SOURCE),
    (e: Error) => {
      assert.ok(e instanceof SweepError);
      assert.match(
        e.message,
        /sweep "unit", run barlow, variant "hot": config key "dino\.teacherTemp" has no effect in this run: method "barlow" has no DINO part/,
      );
      assert.match(e.message, /a variant's "methods"/);
      return true;
    },
  );
  const ok = expandSweep(
    spec({ variants: [{ label: 'hot', methods: ['dino-twins'], overrides: { dino: { teacherTemp: 0.05 } } }] }),
    CIFAR10_SOURCE,
  );
  assert.deepEqual(
    ok.runs.map((r) => r.method),
    ['dino-twins'],
  );
  // A grid key only some methods read is an error too.
  assert.throws(
    () => expandSweep(spec({ grid: { 'twins.beta': [0.001] } }), CIFAR10_SOURCE),
    /run barlow, twins\.beta=0\.001: config key "twins\.beta"/,
  );
});

test('runs that resolve to one config and folder are one run, with a note', () => {
  // barlow's default lr is 1e-3: the variant changes nothing the run reads.
  const plan = expandSweep(
    spec({ methods: ['barlow'], variants: [{ label: 'a' }, { label: 'b', overrides: { lr: 1e-3 } }] }),
    CIFAR10_SOURCE,
  );
  assert.equal(plan.runs.length, 1);
  assert.equal(plan.notes.length, 1);
  assert.match(plan.notes[0], /"barlow b s0" resolves to the same config as "barlow a s0"/);
  // With {variant} in the folder they are two folders (as notebook 07 names its runs).
  assert.equal(
    expandSweep(
      spec({
        methods: ['barlow'],
        folder: '{variant}-{hash}',
        variants: [{ label: 'a' }, { label: 'b', overrides: { lr: 1e-3 } }],
      }),
      CIFAR10_SOURCE,
    ).runs.length,
    2,
  );
});

test('folder templates: placeholders, grid keys, and the hash that keeps configs apart', () => {
  const plan = expandSweep(
    spec({
      methods: ['dino'],
      grid: { 'dino.teacherTemp': [0.04, 0.07] },
      folder: 'tt/{method}-t{dino.teacherTemp}-s{seed}-{hash}',
    }),
    CIFAR10_SOURCE,
  );
  assert.deepEqual(
    plan.runs.map((r) => r.rel),
    plan.runs.map((r) => `tt/dino-t${r.grid['dino.teacherTemp']}-s0-${r.hash}`),
  );
  assert.throws(() => parseSweepSpec(spec({ folder: '{method}-{seed}' })), /must contain \{hash\} or \{runName\}/);
  assert.throws(() => parseSweepSpec(spec({ folder: '{method}-{lr}-{hash}' })), /unknown placeholder \{lr\}/);
  assert.throws(() => parseSweepSpec(spec({ folder: '../{hash}' })), /relative path inside the budget's runs folder/);
  assert.throws(() => parseSweepSpec(spec({ folder: 'a b/{hash}' })), /only letters, digits/);
});

test('spec validation names the field and says what is expected', () => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /expected a JSON object, got an array/],
    [{ ...spec(), epochs: 3 }, /unknown field\(s\) "epochs"; a spec has name, budget/],
    [spec({ name: 'a/b' }), /"name" must be letters, digits/],
    [spec({ budget: 'tpu' as never }), /"budget" must be one of smoke, cpu, gpu, got "tpu"/],
    [spec({ methods: [] }), /"methods" must be a non-empty list/],
    [spec({ methods: ['simclr' as Method] }), /"methods": "simclr" is not one of barlow, dino, dino-twins/],
    [spec({ methods: ['dino', 'dino'] }), /lists a method twice/],
    [spec({ base: { seed: 1 }, seeds: [0] }), /either in "base" or as "seeds"/],
    [spec({ seeds: [0, 0] }), /lists a seed twice/],
    [spec({ seeds: [0.5] }), /"seeds" must be a non-empty list of integers/],
    [spec({ grid: { seed: [1, 2] } }), /grid key "seed": list seeds in "seeds"/],
    [spec({ grid: { 'backbone.width': [8] } }), /a backbone is given whole/],
    [spec({ grid: { lr: [] } }), /grid\["lr"\] must be a non-empty list/],
    [spec({ variants: [{ label: 'x' }, { label: 'x' }] }), /label "x" appears twice/],
    [spec({ variants: [{ label: 'x', methods: ['dino'] }] }), /"dino" is not one of the spec's methods/],
    [spec({ variants: [{ label: 'x', overrides: { seed: 2 } }] }), /set methods with "methods" and seeds with "seeds"/],
    [spec({ slurm: { maxRunning: 0 } }), /"slurm": maxRunning must be a positive integer/],
    [spec({ slurm: { sbatchArgs: ['account=ml'] } }), /"account=ml" is not an sbatch flag/],
    [spec({ slurm: { partition: 'gpu; rm -rf /' } }), /partition must be a plain string/],
    [spec({ slurm: { nodes: 2 } as never }), /unknown field\(s\) nodes/],
  ];
  for (const [value, re] of cases)
    assert.throws(
      () => parseSweepSpec(value, 'spec.json'),
      (e: Error) => e instanceof SweepError && /^spec\.json: /.test(e.message) && re.test(e.message),
      `${JSON.stringify(value)} -> ${re}`,
    );
});

test('spec files: JSON errors name the file; findRun explains a run the spec no longer has', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-sweep-file-'));
  const f = path.join(dir, 's.json');
  fs.writeFileSync(f, '{"name": "x",');
  assert.throws(() => loadSweepSpec(f), new RegExp(`sweep spec ${f} is not valid JSON`));
  assert.throws(() => loadSweepSpec(path.join(dir, 'missing.json')), /cannot read sweep spec .*missing\.json/);
  fs.writeFileSync(f, JSON.stringify(spec({ methods: ['barlow'] })));
  const plan = expandSweep(loadSweepSpec(f), CIFAR10_SOURCE);
  assert.equal(findRun(plan, plan.runs[0].rel), plan.runs[0]);
  assert.equal(findRun(plan, plan.runs[0].dir), plan.runs[0]);
  assert.throws(
    () => findRun(plan, 'barlow-r18w4-s0-00000000'),
    /is not in sweep "unit" as it expands now .* re-submit the sweep/,
  );
});

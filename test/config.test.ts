import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, ConfigError, CONFIG_DEFAULTS, PretrainConfig } from '../lib/config/config';
import {
  ablationBudget,
  Budget,
  BudgetError,
  budgetDataIdentity,
  BUDGETS,
  checkBudget,
  experimentConfig,
} from '../lib/config/budget';
import { CIFAR10_SOURCE } from '../lib/data/dataIdentity';
import { BARLOW_SECTION, barlowMethod } from '../lib/methods/barlow';
import { DINO_DEFAULTS, dinoMethod } from '../lib/methods/dino';
import { dinoTwinsMethod } from '../lib/methods/dinoTwins';
import { configSections } from '../lib/methods/registry';
import { configHash, runIdentity, runName } from '../lib/train/runName';
import { cliBudget, cliRunDir, parseCli } from '../lib/train/cli';

/** Leaf paths of a config ("dino.head.out"; the backbone is one leaf). */
function leaves(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => {
    const at = prefix ? `${prefix}.${k}` : k;
    return typeof v === 'object' && v !== null && at !== 'backbone' ? leaves(v, at) : [at];
  });
}

test("defaults come from the one table (common knobs) or the method's section, then the method row, then the caller", () => {
  const c = resolveConfig({ method: 'dino', epochs: 3, dino: { teacherTemp: 0.05 } });
  assert.equal(c.epochs, 3);
  assert.equal(c.dino!.teacherTemp, 0.05);
  assert.equal(c.dino!.studentTemp, DINO_DEFAULTS.studentTemp);
  assert.equal(c.lr, dinoMethod.defaults.lr, 'the method row beats the base table');
  assert.notEqual(c.lr, CONFIG_DEFAULTS.lr);
  assert.equal(c.optimizer.clipGradNorm, dinoMethod.defaults.optimizer!.clipGradNorm);
  assert.equal(c.bnMomentum, CONFIG_DEFAULTS.bnMomentum);
  // One λ knob, with a per-method default: the paper's for Barlow Twins, the DINO-Twins project's for DINO-Twins.
  assert.equal(resolveConfig({ method: 'barlow' }).barlow!.lambda, BARLOW_SECTION.defaults.lambda);
  assert.equal(resolveConfig({ method: 'dino-twins' }).barlow!.lambda, dinoTwinsMethod.defaults.barlow!.lambda);
  assert.notEqual(BARLOW_SECTION.defaults.lambda, dinoTwinsMethod.defaults.barlow!.lambda);
  assert.ok(
    Object.isFrozen(CONFIG_DEFAULTS) &&
      Object.isFrozen(DINO_DEFAULTS.head) &&
      Object.isFrozen(dinoMethod.defaults) &&
      Object.isFrozen(barlowMethod),
  );
});

test('a resolved config holds exactly the keys its run reads', () => {
  const barlow = resolveConfig({ method: 'barlow' });
  assert.equal(barlow.dino, undefined);
  assert.equal(barlow.twins, undefined);
  assert.deepEqual(
    Object.keys(barlow.augment).sort(),
    ['blur', 'globalSize', 'jitterStrength'],
    'Barlow Twins has no local crops',
  );
  assert.ok(barlow.projector && barlow.barlow);
  const dino = resolveConfig({ method: 'dino' });
  assert.equal(dino.projector, undefined);
  assert.equal(dino.barlow, undefined);
  assert.equal(dino.augment.nLocal, CONFIG_DEFAULTS.augment.nLocal);
  const head = resolveConfig({ method: 'dino-twins', twins: { target: 'head' } });
  assert.equal(head.projector, undefined, 'the Barlow term on the head outputs needs no projector');
  const sgd = resolveConfig({ method: 'barlow', optimizer: { kind: 'sgd' } });
  assert.deepEqual(Object.keys(sgd.optimizer).sort(), ['clipGradNorm', 'kind', 'momentum']);
  const noWarm = resolveConfig({ method: 'dino', dino: { ablations: { teacherTempWarmup: false } } }).dino!;
  assert.ok(
    noWarm.teacherTemp !== undefined &&
      noWarm.warmupTeacherTemp === undefined &&
      noWarm.warmupTeacherTempEpochs === undefined,
  );
  const noSharp = resolveConfig({ method: 'dino', dino: { ablations: { sharpening: false } } }).dino!;
  assert.equal(noSharp.teacherTemp, undefined, 'without sharpening the teacher uses the student temperature');
  const noCenter = resolveConfig({ method: 'dino', dino: { ablations: { centering: false } } }).dino!;
  assert.equal(noCenter.centerMomentum, undefined);
  const noEma = resolveConfig({ method: 'dino', dino: { ablations: { emaTeacher: false } } }).dino!;
  assert.ok(noEma.emaMomentum === undefined && noEma.emaMomentumEnd === undefined);
  // Resolving is idempotent: a record's config resolves to itself (so a run record can be re-run).
  for (const c of [barlow, dino, head, sgd, resolveConfig({ method: 'dino', augment: { nLocal: 0 } })]) {
    assert.deepEqual(resolveConfig(c as PretrainConfig & { method: PretrainConfig['method'] }), c);
  }
});

test('a key the run would ignore is a ConfigError naming it and why', () => {
  const bad: Array<[unknown, RegExp]> = [
    [
      { method: 'barlow', dino: { teacherTemp: 0.05 } },
      /"dino.teacherTemp" has no effect in this run: method "barlow" has no DINO part/,
    ],
    [
      { method: 'barlow', augment: { nLocal: 2 } },
      /"augment.nLocal" has no effect .*Barlow Twins trains on two global views only/,
    ],
    [
      { method: 'dino', projector: { hidden: 64 } },
      /"projector.hidden" has no effect .*method "dino" has no Barlow projector/,
    ],
    [
      { method: 'dino', barlow: { lambda: 0.01 } },
      /"barlow.lambda" has no effect .*method "dino" has no Barlow Twins term/,
    ],
    [
      { method: 'barlow', twins: { beta: 1 } },
      /"twins.beta" has no effect .*method "barlow" has no DINO-Twins combination; it belongs to method "dino-twins"/,
    ],
    [{ method: 'barlow', dino: { studentTemp: 0.2 } }, /it belongs to methods "dino", "dino-twins"/],
    [
      { method: 'dino-twins', twins: { target: 'head' }, projector: { out: 64 } },
      /"projector.out" has no effect .*twins.target is "head"/,
    ],
    [
      { method: 'dino', dino: { centerMomentum: 0.8, ablations: { centering: false } } },
      /"dino.centerMomentum" has no effect .*centering is false/,
    ],
    [
      { method: 'dino', dino: { emaMomentum: 0.99, ablations: { emaTeacher: false } } },
      /"dino.emaMomentum" has no effect .*emaTeacher is false/,
    ],
    [
      { method: 'dino', dino: { warmupTeacherTemp: 0.03, ablations: { teacherTempWarmup: false } } },
      /"dino.warmupTeacherTemp" has no effect .*teacherTempWarmup is false/,
    ],
    [
      { method: 'dino', dino: { teacherTemp: 0.05, ablations: { sharpening: false } } },
      /"dino.teacherTemp" has no effect .*sharpening is false/,
    ],
    [
      { method: 'dino', augment: { nLocal: 0, localSize: 8 } },
      /"augment.localSize" has no effect .*augment.nLocal is 0/,
    ],
    [
      { method: 'barlow', optimizer: { kind: 'sgd', beta1: 0.8 } },
      /"optimizer.beta1" has no effect .*optimizer.kind "sgd" does not use it/,
    ],
  ];
  for (const [cfg, re] of bad)
    assert.throws(
      () => resolveConfig(cfg as never),
      (e: unknown) => e instanceof ConfigError && re.test((e as Error).message),
      JSON.stringify(cfg),
    );
});

test('a budget overrides only what applies to the method', () => {
  const cpu = BUDGETS.cpu;
  assert.ok(BUDGETS.gpu.pretrain.augment?.nLocal && cpu.pretrain.dino, 'the budgets set multi-crop and DINO knobs');
  const barlow = experimentConfig('barlow', BUDGETS.gpu);
  assert.equal(barlow.augment.nLocal, undefined, "the budget's nLocal is not in a Barlow Twins run");
  assert.equal(barlow.dino, undefined);
  assert.deepEqual(experimentConfig('barlow', cpu).projector, cpu.pretrain.projector);
  const dino = experimentConfig('dino', BUDGETS.gpu);
  assert.equal(dino.augment.nLocal, BUDGETS.gpu.pretrain.augment!.nLocal);
  assert.equal(dino.dino!.head.out, BUDGETS.gpu.pretrain.dino!.head!.out);
  assert.equal(dino.dino!.head.nlayers, DINO_DEFAULTS.head.nlayers, 'what the budget leaves out keeps its default');
  // The budget's teacher-temperature warm-up is dropped, not an error, when the ablation removes the warm-up.
  const ab = experimentConfig('dino', cpu, { dino: { ablations: { teacherTempWarmup: false } } });
  assert.equal(ab.dino!.warmupTeacherTempEpochs, undefined);
  // The caller's overrides stay strict.
  assert.throws(
    () => experimentConfig('barlow', cpu, { dino: { studentTemp: 0.2 } }),
    /"dino.studentTemp" has no effect/,
  );
});

test("the short-budget DINO recipe applies to DINO and DINO-Twins alike; gpu keeps DINO's published settings", () => {
  for (const name of ['smoke', 'cpu'] as const) {
    const b = BUDGETS[name];
    const dino = experimentConfig('dino', b);
    const twins = experimentConfig('dino-twins', b);
    assert.deepEqual(dino.dino, twins.dino, `${name}: the same DINO part`);
    for (const k of ['lr', 'weightDecay', 'weightDecayEnd', 'optimizer', 'augment', 'epochs', 'batchSize'] as const)
      assert.deepEqual(dino[k], twins[k], `${name}: ${k}`);
    assert.deepEqual(
      [
        dino.dino!.head.useBn,
        dino.dino!.teacherTemp,
        dino.dino!.emaMomentum,
        dino.dino!.emaMomentumEnd,
        dino.lr,
        dino.augment.nLocal,
      ],
      [true, 0.04, 0.99, 0.99, 1e-3, 0],
    );
    // Barlow Twins keeps its own augmentation and rate.
    const barlow = experimentConfig('barlow', b);
    assert.deepEqual(
      [barlow.augment.blur, barlow.augment.jitterStrength, barlow.lr],
      [true, 1, barlowMethod.defaults.lr ?? CONFIG_DEFAULTS.lr],
    );
  }
  const gpu = experimentConfig('dino', BUDGETS.gpu);
  assert.deepEqual(
    [
      gpu.dino!.head.useBn,
      gpu.dino!.teacherTemp,
      gpu.dino!.warmupTeacherTemp,
      gpu.dino!.emaMomentum,
      gpu.dino!.emaMomentumEnd,
      gpu.dino!.freezeLastLayerEpochs,
      gpu.lr,
    ],
    [
      DINO_DEFAULTS.head.useBn,
      DINO_DEFAULTS.teacherTemp,
      DINO_DEFAULTS.warmupTeacherTemp,
      DINO_DEFAULTS.emaMomentum,
      1,
      1,
      dinoMethod.defaults.lr,
    ],
  );
  // A notebook can still ask for DINO's published settings on the cpu budget.
  assert.equal(experimentConfig('dino', BUDGETS.cpu, { dino: { head: { useBn: false } } }).dino!.head.useBn, false);
});

test('run identity: the hash covers what the method reads and the data, and nothing else', () => {
  const cpu = BUDGETS.cpu;
  const data = budgetDataIdentity(CIFAR10_SOURCE, cpu);
  const barlow = experimentConfig('barlow', cpu);
  // A DINO field changed in the budget (as a new default would be) leaves a Barlow run's name alone...
  const dinoChanged = {
    ...cpu,
    pretrain: { ...cpu.pretrain, dino: { ...cpu.pretrain.dino, studentTemp: 0.2, head: { out: 2048 } } },
  };
  assert.equal(runName(experimentConfig('barlow', dinoChanged), data), runName(barlow, data));
  // ...and renames the DINO runs.
  assert.notEqual(runName(experimentConfig('dino', dinoChanged), data), runName(experimentConfig('dino', cpu), data));
  // A knob Barlow Twins reads renames it; a cadence knob does not.
  assert.notEqual(
    configHash(runIdentity(experimentConfig('barlow', cpu, { barlow: { lambda: 0.01 } }), data)),
    configHash(runIdentity(barlow, data)),
  );
  assert.equal(
    runName(experimentConfig('barlow', cpu, { logEvery: 1, checkpointEvery: 7 }), data),
    runName(barlow, data),
  );
  // Other data renames it: the subset, the validation split, the split seed, the source's content.
  for (const other of [
    { perClass: 500 },
    { valPerClass: 50 },
    { splitSeed: 1 },
    { checksum: '0123456789abcdef' },
    { source: 'cifar10-fixture' },
  ]) {
    assert.notEqual(runName(barlow, { ...data, ...other }), runName(barlow, data), JSON.stringify(other));
  }
  assert.notEqual(
    runName(barlow, budgetDataIdentity(CIFAR10_SOURCE, ablationBudget(cpu))),
    runName(barlow, data),
    "the ablation budget's half-size subset",
  );
  assert.match(runName(barlow, data), /^barlow-r18w16-s0-[0-9a-f]{8}$/);
});

test('the CLI names runs as the notebooks do: a changed flag or subset is a new folder, the same flags the same folder', () => {
  const dirOf = (o: ReturnType<typeof parseCli>) => cliRunDir(o, budgetDataIdentity(CIFAR10_SOURCE, cliBudget(o)));
  const args = [
    '--method',
    'dino-twins',
    '--backbone',
    'resnet18',
    '--width',
    '16',
    '--epochs',
    '2',
    '--batch',
    '64',
    '--seed',
    '3',
  ];
  const a = parseCli(args);
  assert.equal(a.config.method, 'dino-twins');
  assert.deepEqual(a.config.backbone, { kind: 'resnet', depth: 18, width: 16 });
  assert.equal(a.config.batchSize, 64);
  assert.equal(a.runDir, undefined, 'named once the data is known');
  assert.ok(
    dirOf(a).endsWith(`/runs/custom/${runName(a.config, budgetDataIdentity(CIFAR10_SOURCE, cliBudget(a)))}`),
    dirOf(a),
  );
  assert.equal(dirOf(parseCli(args)), dirOf(a));
  assert.notEqual(
    dirOf(parseCli([...args, '--lr', '1e-3'])),
    dirOf(a),
    'a changed --lr gets its own folder instead of a "different config" error',
  );
  // --per-class changes the training images: another run, another folder (it went into the budget only, and shared the folder).
  const p10 = parseCli([...args, '--per-class', '10']);
  const p20 = parseCli([...args, '--per-class', '20']);
  assert.deepEqual(p10.config, p20.config);
  assert.notEqual(dirOf(p10), dirOf(p20));
  assert.equal(cliBudget(p10).trainPerClass, 10);
  assert.equal(a.resume, true);
  const explicit = parseCli(['--method', 'barlow', '--run-dir', '/tmp/x']);
  assert.equal(cliRunDir(explicit, budgetDataIdentity(CIFAR10_SOURCE, cliBudget(explicit))), '/tmp/x');
});

test('bad configs are ConfigErrors naming the field', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ method: 'simclr' }, /method "simclr" is not one of barlow, dino, dino-twins/],
    [{ method: 'dino', epochs: 0 }, /epochs must be a positive integer, got 0/],
    [{ method: 'dino', batchSize: 1 }, /batchSize must be an integer >= 2/],
    [{ method: 'dino', lr: -1 }, /lr must be a finite number >= 0, got -1/],
    [{ method: 'dino', backbone: { kind: 'resnet', depth: 34, width: 64 } }, /backbone.depth must be 18 or 50, got 34/],
    [{ method: 'dino', backbone: { kind: 'mlp' } }, /backbone.kind must be "resnet" or "vit"/],
    [{ method: 'dino', dino: { teacherTemp: 0 } }, /dino.teacherTemp must be > 0/],
    [{ method: 'dino', dino: { tempo: 1 } }, /unknown config key "dino.tempo"/],
    [{ method: 'barlow', barlowLambda: 0.005 }, /unknown config key "barlowLambda"/],
    [{ method: 'dino', optimizer: { kind: 'rmsprop' } }, /optimizer.kind "rmsprop" is not one of/],
    [{ method: 'dino', optimizer: { weightDecay: 0.1 } }, /unknown config key "optimizer.weightDecay"/],
    [{ method: 'dino-twins', twins: { target: 'both' } }, /twins.target must be "projector" or "head"/],
    [{ method: 'dino', dino: { emaMomentumEnd: 1.5 } }, /dino.emaMomentumEnd must be in \[0, 1\], got 1.5/],
    [{ method: 'dino', dino: { ablations: { centering: 'no' } } }, /dino.ablations.centering must be true or false/],
    [
      { method: 'barlow', augment: { jitterStrength: -1 } },
      /augment.jitterStrength must be a finite number >= 0, got -1/,
    ],
    [{ method: 'dino', warmupEpochs: 5, epochs: 2 }, /warmupEpochs \(5\) must not exceed epochs \(2\)/],
    [
      { method: 'dino', backbone: { kind: 'vit', preset: 'huge' } },
      /backbone: buildBackbone: unknown vit preset "huge"/,
    ],
    [{ method: 'dino', backbone: { kind: 'vit', preset: 'tiny4', heads2: 3 } }, /unknown vit option "heads2"/],
    [
      { method: 'dino', backbone: { kind: 'vit', preset: 'tiny4' }, augment: { localSize: 14 } },
      /augment.localSize \(14\) must be a multiple of the ViT patch size 4/,
    ],
  ];
  for (const [cfg, re] of bad)
    assert.throws(
      () => resolveConfig(cfg as never),
      (e: unknown) => e instanceof ConfigError && re.test((e as Error).message),
      JSON.stringify(cfg),
    );
});

test('the CLI rejects bad options before any compute', () => {
  assert.throws(() => parseCli([]), /--method is required/);
  assert.throws(() => parseCli(['--method', 'dino', '--epochs', 'ten']), /--epochs must be a number, got "ten"/);
  assert.throws(
    () => parseCli(['--method', 'dino', '--bogus', '1']),
    (e: unknown) => e instanceof ConfigError && /Unknown option '--bogus'/.test((e as Error).message),
  );
  assert.throws(
    () => parseCli(['--method', 'dino', '--backbone', 'resnet34']),
    /--backbone "resnet34" is not one of resnet18, resnet50, vit-tiny4, vit-tiny4-seed/,
  );
  assert.throws(() => parseCli(['--method', 'barlow', '--local-crops', '2']), /"augment.nLocal" has no effect/);
});

test("every key of every method's resolved config is one that CONFIG_DEFAULTS or a method's config section defines", () => {
  const known = new Set([
    'method',
    ...leaves(CONFIG_DEFAULTS),
    ...configSections().flatMap((s) => leaves(s.defaults, s.key)),
  ]);
  for (const m of ['barlow', 'dino', 'dino-twins'] as const) {
    for (const p of leaves(resolveConfig({ method: m }))) assert.ok(known.has(p), `${m}: ${p}`);
  }
});

test('a budget key that no run reads is a BudgetError naming it; one read only under a switch is not', () => {
  for (const b of Object.values(BUDGETS)) {
    checkBudget(b);
    checkBudget(ablationBudget(b));
  }
  const cpu = BUDGETS.cpu;
  // Barlow Twins never reads nLocal, and DINO's cpu recipe sets it: the budget's value reaches no run.
  const dead: Budget = { ...cpu, pretrain: { ...cpu.pretrain, augment: { nLocal: 2 } } };
  assert.throws(
    () => experimentConfig('barlow', dead),
    (e: unknown) =>
      e instanceof BudgetError &&
      /budget "cpu": no run reads pretrain\.augment\.nLocal \(Barlow Twins trains on two global views only; "dino" takes it from its cpu recipe; "dino-twins" takes it from its cpu recipe\); remove it/.test(
        (e as Error).message,
      ),
  );
  // On gpu (no DINO recipe) the same key is DINO's number of local crops.
  assert.equal(experimentConfig('dino', BUDGETS.gpu).augment.nLocal, BUDGETS.gpu.pretrain.augment!.nLocal);
  // The warm-up's length is unread under the cpu recipe (no warm-up), but the ablation grid turns the warm-up on.
  assert.equal(experimentConfig('dino', cpu).dino!.warmupTeacherTempEpochs, undefined);
  assert.equal(
    experimentConfig('dino', cpu, { dino: { ablations: { teacherTempWarmup: true } } }).dino!.warmupTeacherTempEpochs,
    cpu.pretrain.dino!.warmupTeacherTempEpochs,
  );
  // An unknown key stays an unknown key.
  assert.throws(
    () => experimentConfig('dino', { ...cpu, pretrain: { ...cpu.pretrain, dino: { tempo: 1 } } as never }),
    /unknown config key "dino.tempo"/,
  );
});

test('one default per knob: naming the default gives the same run', () => {
  const plain = parseCli(['--method', 'barlow']);
  const named = parseCli(['--method', 'barlow', '--backbone', 'resnet18']);
  assert.deepEqual(named.config, plain.config);
  assert.deepEqual(named.config.backbone, CONFIG_DEFAULTS.backbone);
  const data = budgetDataIdentity(CIFAR10_SOURCE, cliBudget(plain));
  assert.equal(cliRunDir(named, data), cliRunDir(plain, data));
  assert.deepEqual(parseCli(['--method', 'barlow', '--width', '32']).config.backbone, {
    kind: 'resnet',
    depth: 18,
    width: 32,
  });
});

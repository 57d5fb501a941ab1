import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, ConfigError, METHOD_DEFAULTS } from '../lib/train/config';
import { parseCli } from '../lib/train/cli';

test('defaults are filled per method and overrides win', () => {
  const c = resolveConfig({ method: 'dino', epochs: 3, dino: { teacherTemp: 0.05 } });
  assert.equal(c.epochs, 3);
  assert.equal(c.dino.teacherTemp, 0.05);
  assert.equal(c.dino.studentTemp, 0.1);
  assert.equal(c.dino.warmupTeacherTemp, 0.04);
  assert.equal(c.dino.warmupTeacherTempEpochs, 30);
  assert.equal(c.dino.centerMomentum, 0.9);
  assert.equal(c.twins.beta, 0.0025);
  assert.equal(c.twins.lambda, 0.005);
  assert.equal(c.barlowLambda, 0.0051);
  assert.equal(c.optimizer.clipGradNorm, (METHOD_DEFAULTS.dino.optimizer as { clipGradNorm: number }).clipGradNorm);
  assert.equal(resolveConfig({ method: 'barlow' }).augment.nLocal, 0);
  assert.ok(Object.isFrozen(METHOD_DEFAULTS));
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
    [{ method: 'dino', optimizer: { kind: 'rmsprop' } }, /optimizer.kind "rmsprop" is not one of/],
    [{ method: 'dino-twins', twins: { target: 'both' } }, /twins.target must be "projector" or "head"/],
    [{ method: 'dino', warmupEpochs: 5, epochs: 2 }, /warmupEpochs \(5\) must not exceed epochs \(2\)/],
    [{ method: 'dino', backbone: { kind: 'vit', preset: 'huge' } }, /backbone: buildBackbone: unknown vit preset "huge"/],
    [{ method: 'dino', backbone: { kind: 'vit', preset: 'tiny4', heads2: 3 } }, /unknown vit option "heads2"/],
    [{ method: 'dino', backbone: { kind: 'vit', preset: 'tiny4' }, augment: { localSize: 14 } }, /augment.localSize \(14\) must be a multiple of the ViT patch size 4/],
  ];
  for (const [cfg, re] of bad) assert.throws(() => resolveConfig(cfg as never), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), JSON.stringify(cfg));
});

test('the CLI rejects bad options before any compute', () => {
  assert.throws(() => parseCli([]), /--method is required/);
  assert.throws(() => parseCli(['--method', 'dino', '--epochs', 'ten']), /--epochs must be a number, got "ten"/);
  assert.throws(() => parseCli(['--method', 'dino', '--bogus', '1']), (e: unknown) => e instanceof ConfigError && /Unknown option '--bogus'/.test((e as Error).message));
  assert.throws(() => parseCli(['--method', 'dino', '--backbone', 'resnet34']), /--backbone "resnet34" is not one of resnet18, resnet50, vit-tiny4, vit-tiny4-seed/);
  const o = parseCli(['--method', 'dino-twins', '--backbone', 'resnet18', '--width', '16', '--epochs', '2', '--batch', '64', '--seed', '3']);
  assert.equal(o.config.method, 'dino-twins');
  assert.deepEqual(o.config.backbone, { kind: 'resnet', depth: 18, width: 16 });
  assert.equal(o.config.batchSize, 64);
  assert.equal(o.runDir, 'runs/custom/dino-twins-resnet18w16-s3');
  assert.equal(o.resume, true);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cosineSchedule,
  emaMomentumSchedule,
  linearWarmup,
  stepSchedule,
  warmupCosineSchedule,
} from '../lib/methods/schedules';
import { dinoTemps, finalDinoTemps } from '../lib/methods/dino';
import { resolveConfig } from '../lib/config/config';
import { assertClose, loadRefs } from './reference/refs';

const S = loadRefs().schedules;

test('cosineSchedule matches DINO utils.cosine_scheduler at every step, and clamps to end', () => {
  const r = S.cosine;
  const got = r.values.map((_: number, s: number) => cosineSchedule(r.start, r.end, s, r.total));
  assertClose(got, r.values, 1e-12, 'cosine');
  assert.equal(cosineSchedule(r.start, r.end, 0, r.total), r.start);
  assert.equal(cosineSchedule(r.start, r.end, r.total, r.total), r.end);
  assert.equal(cosineSchedule(r.start, r.end, r.total + 5, r.total), r.end);
  assertClose(cosineSchedule(1, 0, 5, 10), 0.5, 1e-12, 'half way');
});

test('emaMomentumSchedule is DINO momentum_schedule (cosine from base to 1), or constant with end = base', () => {
  const r = S.ema;
  const got = r.values.map((_: number, s: number) => emaMomentumSchedule(r.base, 1, s, r.total));
  assertClose(got, r.values, 1e-12, 'ema momentum');
  assert.equal(emaMomentumSchedule(0.99, 1, 10, 10), 1);
  for (const s of [0, 3, 9, 10])
    assert.equal(emaMomentumSchedule(0.99, 0.99, s, 10), 0.99, 'end = base is a constant momentum');
  assert.throws(() => emaMomentumSchedule(1.5, 1, 0, 10), /base must be in \[0, 1\], got 1.5/);
  assert.throws(() => emaMomentumSchedule(0.9, 1.5, 0, 10), /end must be in \[0, 1\], got 1.5/);
});

test('stepSchedule: the common values of a step (epoch, run length, learning rate, weight decay)', () => {
  const c = resolveConfig({
    method: 'barlow',
    epochs: 4,
    warmupEpochs: 1,
    lr: 0.5,
    minLr: 0.01,
    weightDecay: 0.1,
    weightDecayEnd: 0.3,
  });
  const s = stepSchedule(c, 15, 10);
  assert.deepEqual([s.step, s.epoch, s.totalSteps], [15, 1, 40]);
  assert.equal(s.lr, warmupCosineSchedule(0.5, 0.01, 15, 10, 40));
  assert.equal(s.weightDecay, cosineSchedule(0.1, 0.3, 15, 40));
  assert.deepEqual(
    Object.keys(s).sort(),
    ['epoch', 'lr', 'step', 'totalSteps', 'weightDecay'],
    'a method schedules its own knobs (lib/methods/dino.ts)',
  );
});

test('dinoTemps: the ablation switches act on the teacher temperature', () => {
  const base = {
    method: 'dino' as const,
    epochs: 4,
    warmupEpochs: 1,
    dino: { studentTemp: 0.1, teacherTemp: 0.07, warmupTeacherTemp: 0.04, warmupTeacherTempEpochs: 3 },
  };
  const full = resolveConfig(base).dino!;
  // Epoch 1 is half way through DINO's np.linspace(0.04, 0.07, 3) warm-up.
  assertClose(dinoTemps(full, 1).teacherTemp, 0.055, 1e-12, 'warm-up epoch 1');
  assert.equal(dinoTemps(full, 1).studentTemp, 0.1);
  const noWarm = resolveConfig({
    ...base,
    dino: {
      ...base.dino,
      warmupTeacherTemp: undefined,
      warmupTeacherTempEpochs: undefined,
      ablations: { teacherTempWarmup: false },
    },
  }).dino!;
  assert.equal(dinoTemps(noWarm, 0).teacherTemp, 0.07, 'no warm-up: the final temperature from step 0');
  const noSharp = resolveConfig({
    method: 'dino',
    epochs: 4,
    dino: { studentTemp: 0.2, ablations: { sharpening: false } },
  }).dino!;
  for (const epoch of [0, 1, 3])
    assert.equal(dinoTemps(noSharp, epoch).teacherTemp, 0.2, 'no sharpening: the student temperature');
});

test('warmupCosineSchedule: base*(step+1)/warmup, then cosine over the remaining steps', () => {
  const r = S.warmup_cosine;
  const got = r.values.map((_: number, s: number) => warmupCosineSchedule(r.base, r.final, s, r.warmup, r.total));
  assertClose(got, r.values, 1e-12, 'warmup cosine');
  // The last warm-up step reaches base, and so does the first cosine step.
  assertClose(warmupCosineSchedule(0.5, 0, 11, 12, 70), 0.5, 1e-12, 'end of warm-up');
  assertClose(warmupCosineSchedule(0.5, 0, 12, 12, 70), 0.5, 1e-12, 'start of cosine');
  assert.equal(warmupCosineSchedule(0.5, 0.001, 70, 12, 70), 0.001);
  // No warm-up is the plain cosine; warm-up over the whole run never decays.
  for (const s of [0, 7, 33, 69])
    assert.equal(warmupCosineSchedule(0.5, 0.01, s, 0, 70), cosineSchedule(0.5, 0.01, s, 70));
  assertClose(warmupCosineSchedule(0.5, 0.01, 69, 70, 70), 0.5, 1e-12, 'warm-up = total');
});

test('linearWarmup is DINO teacher_temp_schedule: np.linspace(start, end, warmup) per epoch, then end', () => {
  const r = S.teacher_temp;
  const got = r.values.map((_: number, e: number) => linearWarmup(r.start, r.end, e, r.warmup_epochs));
  assertClose(got, r.values, 1e-12, 'teacher temperature');
  assert.equal(linearWarmup(0.04, 0.07, 0, 30), 0.04);
  assertClose(linearWarmup(0.04, 0.07, 29, 30), 0.07, 1e-12, 'last warm-up epoch reaches end');
  assert.equal(linearWarmup(0.04, 0.07, 0, 0), 0.07);
  assert.equal(linearWarmup(0.04, 0.07, 0, 1), 0.04, 'np.linspace(a, b, 1) = [a]');
  assert.equal(linearWarmup(0.04, 0.07, 1, 1), 0.07);
  assert.ok(linearWarmup(0.04, 0.07, 29.5, 30) <= 0.07, 'fractional epochs are capped at end');
});

test('schedule errors: non-finite inputs, totalSteps <= 0, warmupSteps > totalSteps, negative steps', () => {
  assert.throws(() => cosineSchedule(NaN, 0, 1, 10), /start must be a finite number, got NaN/);
  assert.throws(() => cosineSchedule(1, 0, Infinity, 10), /step must be a finite number/);
  assert.throws(() => cosineSchedule(1, 0, 1, 0), /totalSteps must be > 0, got 0/);
  assert.throws(() => cosineSchedule(1, 0, -1, 10), /step must be >= 0, got -1/);
  assert.throws(() => warmupCosineSchedule(1, 0, 1, 11, 10), /warmupSteps must be in \[0, totalSteps = 10\], got 11/);
  assert.throws(() => warmupCosineSchedule(1, 0, 1, 1, -3), /totalSteps must be > 0/);
  assert.throws(() => warmupCosineSchedule(1, 0, 1, NaN, 10), /warmupSteps must be a finite number/);
  assert.throws(() => linearWarmup(0.04, 0.07, 1, -1), /warmupEpochs must be >= 0/);
  assert.throws(() => linearWarmup(0.04, 0.07, NaN, 30), /epoch must be a finite number/);
  assert.throws(() => emaMomentumSchedule(0.996, 1, 1, 0), /totalSteps must be > 0/);
});

test("finalDinoTemps: the last epoch's temperatures after the ablation switches", () => {
  const base = {
    method: 'dino' as const,
    epochs: 3,
    dino: { teacherTemp: 0.07, warmupTeacherTemp: 0.04, warmupTeacherTempEpochs: 2, studentTemp: 0.1 },
  };
  assert.deepEqual(finalDinoTemps(resolveConfig(base)), { teacherTemp: 0.07, studentTemp: 0.1 });
  // A warm-up longer than the run ends where it got to, not at teacherTemp.
  const long = resolveConfig({ ...base, dino: { ...base.dino, warmupTeacherTempEpochs: 5 } });
  assert.ok(Math.abs(finalDinoTemps(long).teacherTemp - (0.04 + (0.03 * 2) / 4)) < 1e-12);
  // Without sharpening the teacher uses the student's temperature (the config has no teacherTemp then).
  const flat = resolveConfig({ method: 'dino', dino: { ablations: { sharpening: false }, studentTemp: 0.2 } });
  assert.equal(flat.dino!.teacherTemp, undefined);
  assert.deepEqual(finalDinoTemps(flat), { teacherTemp: 0.2, studentTemp: 0.2 });
  assert.throws(() => finalDinoTemps(resolveConfig({ method: 'barlow' })), /method "barlow" has no DINO part/);
});

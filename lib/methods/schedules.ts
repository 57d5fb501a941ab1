/**
 * Schedules as pure functions of the step (or epoch): learning rate, weight decay, EMA momentum, teacher temperature.
 * Conventions follow facebookresearch/dino utils.cosine_scheduler (cosine over step/total, no "−1"), lightly's
 * CosineWarmupScheduler for the warm-up (base·(step+1)/warmup), and main_dino.py's teacher-temperature warm-up
 * (np.linspace per epoch). Steps count from 0; a step at or past the end returns the final value.
 * `stepSchedule` gives the common scheduled values of one training step from the config (learning rate, weight
 * decay); a method schedules its own knobs from the step and epoch (DINO's temperatures and EMA momentum: lib/methods/dino.ts).
 */
import type { PretrainConfig } from '../config/config';

function finite(fn: string, named: Record<string, number>): void {
  for (const [k, v] of Object.entries(named)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${fn}: ${k} must be a finite number, got ${v}`);
  }
}

function checkStep(fn: string, step: number, name = 'step'): void {
  if (step < 0) throw new Error(`${fn}: ${name} must be >= 0, got ${step}`);
}

/** end + ½(start − end)(1 + cos(π·step/total)); step ≥ total gives end. */
export function cosineSchedule(start: number, end: number, step: number, totalSteps: number): number {
  finite('cosineSchedule', { start, end, step, totalSteps });
  checkStep('cosineSchedule', step);
  if (totalSteps <= 0) throw new Error(`cosineSchedule: totalSteps must be > 0, got ${totalSteps}`);
  if (step >= totalSteps) return end;
  return end + 0.5 * (start - end) * (1 + Math.cos((Math.PI * step) / totalSteps));
}

/**
 * Linear warm-up base·(step+1)/warmup for step < warmup, then the cosine from base to final over the remaining
 * total − warmup steps (step ≥ total gives final). warmupSteps = 0 is the plain cosine.
 */
export function warmupCosineSchedule(
  base: number,
  final: number,
  step: number,
  warmupSteps: number,
  totalSteps: number,
): number {
  finite('warmupCosineSchedule', { base, final, step, warmupSteps, totalSteps });
  checkStep('warmupCosineSchedule', step);
  if (totalSteps <= 0) throw new Error(`warmupCosineSchedule: totalSteps must be > 0, got ${totalSteps}`);
  if (warmupSteps < 0 || warmupSteps > totalSteps)
    throw new Error(`warmupCosineSchedule: warmupSteps must be in [0, totalSteps = ${totalSteps}], got ${warmupSteps}`);
  if (step >= totalSteps) return final;
  if (step < warmupSteps) return (base * (step + 1)) / warmupSteps;
  return cosineSchedule(base, final, step - warmupSteps, totalSteps - warmupSteps);
}

/**
 * DINO's teacher-temperature warm-up, exactly np.linspace(start, end, warmupEpochs)[epoch] for epoch < warmupEpochs
 * and end afterwards: start + (end − start)·epoch/(warmupEpochs − 1), so the last warm-up epoch already reaches end
 * (and with warmupEpochs = 1, linspace's single value is start: epoch 0 gives start). warmupEpochs = 0 gives end.
 * Integer epochs (DINO updates per epoch); fractional epochs are interpolated on the same line, capped at end.
 */
export function linearWarmup(start: number, end: number, epoch: number, warmupEpochs: number): number {
  finite('linearWarmup', { start, end, epoch, warmupEpochs });
  checkStep('linearWarmup', epoch, 'epoch');
  if (warmupEpochs < 0) throw new Error(`linearWarmup: warmupEpochs must be >= 0, got ${warmupEpochs}`);
  if (epoch >= warmupEpochs) return end;
  if (warmupEpochs <= 1) return start;
  return start + (end - start) * Math.min(epoch / (warmupEpochs - 1), 1);
}

/** Teacher EMA momentum: cosine from base to end over the run (DINO's momentum_schedule has end = 1; end = base is constant). */
export function emaMomentumSchedule(base: number, end: number, step: number, totalSteps: number): number {
  finite('emaMomentumSchedule', { base, end, step, totalSteps });
  if (base < 0 || base > 1) throw new Error(`emaMomentumSchedule: base must be in [0, 1], got ${base}`);
  if (end < 0 || end > 1) throw new Error(`emaMomentumSchedule: end must be in [0, 1], got ${end}`);
  return cosineSchedule(base, end, step, totalSteps);
}

/** The common scheduled values of one training step: a pure function of (config, step). */
export interface StepSchedule {
  step: number;
  epoch: number;
  /** Steps of the whole run (epochs x steps per epoch): the end of every cosine schedule. */
  totalSteps: number;
  lr: number;
  weightDecay: number;
}

export function stepSchedule(cfg: PretrainConfig, step: number, stepsPerEpoch: number): StepSchedule {
  const totalSteps = cfg.epochs * stepsPerEpoch;
  const epoch = Math.floor(step / stepsPerEpoch);
  const warmupSteps = Math.min(Math.round(cfg.warmupEpochs * stepsPerEpoch), totalSteps);
  const lr = warmupCosineSchedule(cfg.lr, cfg.minLr, step, warmupSteps, totalSteps);
  const weightDecay = cosineSchedule(cfg.weightDecay, cfg.weightDecayEnd, step, totalSteps);
  return { step, epoch, totalSteps, lr, weightDecay };
}

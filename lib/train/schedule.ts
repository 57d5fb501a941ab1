/** The per-step schedule of a pretraining run: a pure function of (config, step). */
import { PretrainConfig } from './config';
import { StepSchedule } from '../methods/step';
import { cosineSchedule, warmupCosineSchedule, linearWarmup } from '../schedules';

export function stepSchedule(cfg: PretrainConfig, step: number, stepsPerEpoch: number): StepSchedule {
  const total = cfg.epochs * stepsPerEpoch;
  const epoch = Math.floor(step / stepsPerEpoch);
  const warmupSteps = Math.min(Math.round(cfg.warmupEpochs * stepsPerEpoch), total);
  const lr = warmupSteps > 0 ? warmupCosineSchedule(cfg.lr, cfg.minLr, step, warmupSteps, total) : cosineSchedule(cfg.lr, cfg.minLr, step, total);
  const weightDecay = cosineSchedule(cfg.weightDecay, cfg.weightDecayEnd, step, total);
  const d = cfg.dino;
  const emaMomentum = cosineSchedule(d.emaMomentum, 1, step, total);
  let teacherTemp = d.ablations.teacherTempWarmup ? linearWarmup(d.warmupTeacherTemp, d.teacherTemp, epoch, d.warmupTeacherTempEpochs) : d.teacherTemp;
  if (!d.ablations.sharpening) teacherTemp = d.studentTemp;
  return { step, epoch, lr, weightDecay, emaMomentum, teacherTemp, studentTemp: d.studentTemp };
}

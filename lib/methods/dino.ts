/**
 * DINO step (Caron et al. 2021, facebookresearch/dino main_dino.py): the teacher sees the 2
 * global views, the student all views; cross-entropy between centred, sharpened teacher
 * probabilities and student probabilities over pairs of different views; the last head layer
 * frozen in the first epochs; EMA teacher and center updated after the optimizer step. The four
 * ablation switches (config `dino.ablations`) act here and in lib/schedules.ts (temperatures).
 */
import * as tf from '@tensorflow/tfjs';
import { dinoLoss, updateCenter } from '../losses/dino';
import { embeddingStdTensor, teacherEntropyTensor, teacherStudentKLTensor } from '../losses/monitors';
import { emaUpdateStore } from '../ema';
import { ForwardContext, stopGradient } from '../nn/layers';
import { section } from '../config';
import { DinoStepSchedule, StepSchedule } from '../schedules';
import { MethodStep } from './step';
import { PREFIX, SslModel } from './model';
import { backboneFeatures, headOverViews } from './views';

/** The step's DINO schedule (temperatures, EMA momentum): present for every DINO-family config. */
export function dinoSchedule(s: StepSchedule): DinoStepSchedule {
  if (!s.dino) throw new Error(`step ${s.step}: the schedule has no DINO values (the config has no dino section)`);
  return s.dino;
}

/** Student head outputs for all views [V, B, K] and backbone features per view. */
export function studentDino(m: SslModel, views: tf.Tensor4D[], ctx: ForwardContext): { out: tf.Tensor3D; feats: tf.Tensor2D[] } {
  const feats = backboneFeatures(m, m.student, views, ctx, 'joint');
  return { out: headOverViews(m.student, m.head!, PREFIX.head, feats, ctx, 'joint'), feats };
}

/** Teacher outputs on the two global views [2, B, K]; without an EMA teacher, the student with stop-gradient. */
export function teacherDino(m: SslModel, views: tf.Tensor4D[]): tf.Tensor3D {
  return tf.tidy(() => {
    const ps = m.teacher ?? m.student;
    // Without an EMA teacher the student's running statistics are updated by its own pass only.
    const ctx: ForwardContext = { training: true, bnMomentum: m.cfg.bnMomentum, updateStats: m.teacher !== undefined };
    const feats = backboneFeatures(m, ps, views.slice(0, 2), ctx, 'joint');
    return stopGradient(headOverViews(ps, m.head!, PREFIX.head, feats, ctx, 'joint'));
  });
}

/** Cheap in-graph monitors on global view 0 (teacher) vs view 1 (student): teacher entropy and KL, in nats. */
export function dinoMonitors(student: tf.Tensor3D, teacher: tf.Tensor3D, center: tf.Tensor1D, d: DinoStepSchedule): Record<string, tf.Scalar> {
  const t0 = tf.squeeze(tf.slice(teacher, [0, 0, 0], [1, -1, -1]), [0]); // [B, K]
  const s1 = tf.squeeze(tf.slice(student, [1, 0, 0], [1, -1, -1]), [0]); // [B, K]
  return {
    teacherEntropy: teacherEntropyTensor(t0, center, d.teacherTemp),
    teacherStudentKL: teacherStudentKLTensor(t0, s1, center, d),
  };
}

/** DINO's last layer stays fixed during its first `freezeLastLayerEpochs` epochs (main_dino.py cancel_gradients_last_layer). */
export function dinoFrozen(m: SslModel, s: StepSchedule): ReadonlySet<string> | undefined {
  return s.epoch < section(m.cfg, 'dino').freezeLastLayerEpochs ? m.lastLayerNames : undefined;
}

/** After the optimizer step: the EMA teacher and the center. */
export function afterDinoStep(m: SslModel, teacher: tf.Tensor3D | undefined, s: StepSchedule): void {
  const d = section(m.cfg, 'dino');
  if (m.teacher) emaUpdateStore(m.teacher, m.student, dinoSchedule(s).emaMomentum!, m.emaNames);
  if (teacher && d.ablations.centering) {
    const c = m.center!;
    tf.tidy(() => c.assign(updateCenter(c as tf.Tensor1D, teacher, d.centerMomentum!)));
  }
}

export const dinoStep: MethodStep = {
  teacherOutputs: teacherDino,
  loss(m, views, teacher, s) {
    if (views.length < 2) throw new Error(`DINO needs at least 2 (global) views, got ${views.length}`);
    const d = dinoSchedule(s);
    const ctx = { training: true, bnMomentum: m.cfg.bnMomentum };
    const { out, feats } = studentDino(m, views, ctx);
    // Without centering the center is never updated (afterDinoStep): it stays 0.
    const center = m.center as tf.Tensor1D;
    const total = dinoLoss(out, teacher!, center, d);
    return { total, parts: { dino: total, featStd: embeddingStdTensor(feats[0]), ...dinoMonitors(out, teacher!, center, d) } };
  },
  frozen: dinoFrozen,
  afterStep: afterDinoStep,
};

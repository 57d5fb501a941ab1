/**
 * DINO step (Caron et al. 2021, facebookresearch/dino main_dino.py): the teacher sees the 2
 * global views, the student all views; cross-entropy between centred, sharpened teacher
 * probabilities and student probabilities over pairs of different views; EMA teacher and center
 * updated after the optimizer step. Ablation switches follow the config.
 */
import * as tf from '@tensorflow/tfjs';
import { dinoLoss, updateCenter } from '../losses/index';
import { emaUpdateStore } from '../ema';
import { ForwardContext, stopGradient } from '../nn/layers';
import { MethodStep, StepSchedule } from './step';
import { embeddingStdTensor, teacherEntropyTensor, teacherStudentKLTensor } from '../eval/monitors';
import { PREFIX, SslModel } from './model';
import { backboneFeatures, headOverViews } from './views';

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

/** The center in use: zeros when centering is ablated. */
export function activeCenter(m: SslModel): tf.Tensor1D {
  return m.cfg.dino.ablations.centering ? (m.center! as tf.Tensor1D) : tf.zerosLike(m.center!) as tf.Tensor1D;
}

/** Cheap in-graph monitors on global view 0 (teacher) vs view 1 (student): teacher entropy and KL, in nats. */
export function dinoMonitors(student: tf.Tensor3D, teacher: tf.Tensor3D, center: tf.Tensor1D, s: StepSchedule): Record<string, tf.Scalar> {
  const t0 = tf.squeeze(tf.slice(teacher, [0, 0, 0], [1, -1, -1]), [0]); // [B, K]
  const s1 = tf.squeeze(tf.slice(student, [1, 0, 0], [1, -1, -1]), [0]); // [B, K]
  return {
    teacherEntropy: teacherEntropyTensor(t0, center, s.teacherTemp),
    teacherStudentKL: teacherStudentKLTensor(t0, s1, center, { teacherTemp: s.teacherTemp, studentTemp: s.studentTemp }),
  };
}

export function afterDinoStep(m: SslModel, teacher: tf.Tensor3D | undefined, s: StepSchedule): void {
  if (m.teacher) emaUpdateStore(m.teacher, m.student, s.emaMomentum, m.emaNames);
  if (teacher && m.cfg.dino.ablations.centering) {
    const c = m.center!;
    tf.tidy(() => c.assign(updateCenter(c as tf.Tensor1D, teacher, m.cfg.dino.centerMomentum)));
  }
}

export const dinoStep: MethodStep = {
  teacherOutputs: teacherDino,
  loss(m, views, teacher, s) {
    if (views.length < 2) throw new Error(`DINO needs at least 2 (global) views, got ${views.length}`);
    const ctx = { training: true, bnMomentum: m.cfg.bnMomentum };
    const { out, feats } = studentDino(m, views, ctx);
    const center = activeCenter(m);
    const total = dinoLoss(out, teacher!, center, { studentTemp: s.studentTemp, teacherTemp: s.teacherTemp });
    return { total, parts: { dino: total, featStd: embeddingStdTensor(feats[0]), ...dinoMonitors(out, teacher!, center, s) } };
  },
  afterStep: afterDinoStep,
};

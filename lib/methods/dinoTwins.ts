/**
 * DINO-Twins step (the original project, ArthurZucker/DeepLearningProject): the DINO step with
 * `dinoTwinsLoss` = DINO loss + β · the mean Barlow Twins loss over ordered pairs of views, computed
 * on a separate projector over the student backbone features (twins.target 'projector', as the
 * original) or on the DINO head outputs ('head'). Both terms are logged separately.
 */
import * as tf from '@tensorflow/tfjs';
import { dinoTwinsLoss } from '../losses/dinoTwins';
import { embeddingStdTensor } from '../losses/monitors';
import { section } from '../config';
import { MethodStep } from './step';
import { PREFIX } from './model';
import { afterDinoStep, dinoFrozen, dinoMonitors, dinoSchedule, studentDino, teacherDino } from './dino';
import { headOverViews, perViewGrouping } from './views';

export const dinoTwinsStep: MethodStep = {
  teacherOutputs: teacherDino,
  loss(m, views, teacher, s) {
    if (views.length < 2) throw new Error(`DINO-Twins needs at least 2 (global) views, got ${views.length}`);
    const d = dinoSchedule(s);
    const twins = section(m.cfg, 'twins');
    const ctx = { training: true, bnMomentum: m.cfg.bnMomentum };
    const { out, feats } = studentDino(m, views, ctx);
    const center = m.center as tf.Tensor1D; // 0 throughout without centering
    const p = twins.target === 'projector'
      ? headOverViews(m.student, m.projector!, PREFIX.projector, feats, ctx, perViewGrouping()) // [V, B, D]
      : out;
    const { total, dino, barlow } = dinoTwinsLoss(out, teacher!, center, p, { ...d, lambda: section(m.cfg, 'barlow').lambda, beta: twins.beta });
    return { total, parts: { dino, barlow, featStd: embeddingStdTensor(feats[0]), ...dinoMonitors(out, teacher!, center, d) } };
  },
  frozen: dinoFrozen,
  afterStep: afterDinoStep,
};

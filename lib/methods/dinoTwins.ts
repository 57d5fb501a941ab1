/**
 * DINO-Twins step (the original project, ArthurZucker/DeepLearningProject): the DINO loss plus
 * beta times the mean Barlow Twins loss over ordered pairs of views, computed on a separate
 * projector over the student backbone features (target 'projector', as the original), or on the
 * DINO head outputs (target 'head'). Both terms are logged separately.
 */
import * as tf from '@tensorflow/tfjs';
import { dinoLoss, barlowPairMean } from '../losses/index';
import { MethodStep } from './step';
import { PREFIX } from './model';
import { activeCenter, afterDinoStep, dinoMonitors, studentDino, teacherDino } from './dino';
import { headOverViews, perViewGrouping } from './views';
import { embeddingStdTensor } from '../eval/monitors';

export const dinoTwinsStep: MethodStep = {
  teacherOutputs: teacherDino,
  loss(m, views, teacher, s) {
    if (views.length < 2) throw new Error(`DINO-Twins needs at least 2 (global) views, got ${views.length}`);
    const ctx = { training: true, bnMomentum: m.cfg.bnMomentum };
    const { out, feats } = studentDino(m, views, ctx);
    const center = activeCenter(m);
    const dino = dinoLoss(out, teacher!, center, { studentTemp: s.studentTemp, teacherTemp: s.teacherTemp });
    const p = m.cfg.twins.target === 'projector'
      ? headOverViews(m.student, m.projector!, PREFIX.projector, feats, ctx, perViewGrouping()) // [V, B, D]
      : out;
    const barlow = barlowPairMean(p, m.cfg.twins.lambda);
    const total = tf.add(dino, tf.mul(barlow, m.cfg.twins.beta)) as tf.Scalar;
    return { total, parts: { dino, barlow, featStd: embeddingStdTensor(feats[0]), ...dinoMonitors(out, teacher!, center, s) } };
  },
  afterStep: afterDinoStep,
};

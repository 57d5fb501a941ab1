/**
 * Barlow Twins step (Zbontar et al. 2021, facebookresearch/barlowtwins main.py): two views, each
 * through backbone and projector with its own batch-norm statistics (as the reference's two
 * passes; on WebGPU one pass over both views with per-view statistics, `perViewGrouping`), loss = barlowTwinsLoss(z1, z2, lambda).
 */
import * as tf from '@tensorflow/tfjs';
import { barlowLossFromParts, crossCorrelationParts } from '../losses/index';
import { MethodStep } from './step';
import { PREFIX } from './model';
import { backboneFeatures, headOverViews, perViewGrouping } from './views';
import { embeddingStdTensor } from '../eval/monitors';

export const barlowStep: MethodStep = {
  loss(m, views, _teacher, _s) {
    if (views.length !== 2) throw new Error(`Barlow Twins needs exactly 2 views, got ${views.length}`);
    const ctx = { training: true, bnMomentum: m.cfg.bnMomentum };
    const feats = backboneFeatures(m, m.student, views, ctx, perViewGrouping()); // 2 x [B, F]
    const z = headOverViews(m.student, m.projector!, PREFIX.projector, feats, ctx, perViewGrouping()); // [2, B, D]
    const [z1, z2] = tf.unstack(z) as tf.Tensor2D[];
    // C once, for the loss and the monitors (mean diagonal, mean off-diagonal entry).
    const { c, diag: cDiag } = crossCorrelationParts(z1, z2);
    const total = barlowLossFromParts(c, cDiag, m.cfg.barlowLambda);
    const d = c.shape[0];
    const diag = tf.div(tf.sum(cDiag), d) as tf.Scalar;
    const off = tf.div(tf.sub(tf.sum(c), tf.sum(cDiag)), d * (d - 1)) as tf.Scalar;
    return { total, parts: { barlow: total, ccDiag: diag, ccOffDiag: off, featStd: embeddingStdTensor(feats[0]) } };
  },
};

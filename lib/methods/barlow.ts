/**
 * Barlow Twins step (Zbontar et al. 2021, facebookresearch/barlowtwins main.py): two views, each
 * through backbone and projector with its own batch-norm statistics (as the reference's two
 * passes; here one pass over both views with per-view statistics), loss = barlowTwinsLoss(z1, z2, lambda).
 */
import * as tf from '@tensorflow/tfjs';
import { barlowTwinsLoss, crossCorrelation, diagonals } from '../losses/index';
import { MethodStep } from './step';
import { PREFIX } from './model';
import { backboneFeatures, headOverViews } from './views';
import { embeddingStdTensor } from '../eval/monitors';

export const barlowStep: MethodStep = {
  loss(m, views, _teacher, _s) {
    if (views.length !== 2) throw new Error(`Barlow Twins needs exactly 2 views, got ${views.length}`);
    const ctx = { training: true, bnMomentum: m.cfg.bnMomentum };
    const feats = backboneFeatures(m, m.student, views, ctx, 'perView'); // 2 x [B, F], one pass
    const z = headOverViews(m.student, m.projector!, PREFIX.projector, feats, ctx, 'perView'); // [2, B, D]
    const [z1, z2] = tf.unstack(z) as tf.Tensor2D[];
    const total = barlowTwinsLoss(z1, z2, m.cfg.barlowLambda);
    const c = crossCorrelation(z1, z2);
    const d = c.shape[0];
    const diag = tf.div(tf.sum(diagonals(c)), d) as tf.Scalar;
    const off = tf.div(tf.sub(tf.sum(c), tf.mul(diag, d)), d * (d - 1)) as tf.Scalar;
    return { total, parts: { barlow: total, ccDiag: diag, ccOffDiag: off, featStd: embeddingStdTensor(feats[0]) } };
  },
};

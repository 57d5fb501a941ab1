/**
 * Barlow Twins step (Zbontar et al. 2021, facebookresearch/barlowtwins main.py): two views, each
 * through backbone and projector with its own batch-norm statistics (as the reference's two
 * passes; one pass with per-view statistics where the backend makes that cheap, `perViewGrouping`),
 * loss = Σᵢ(1 − Cᵢᵢ)² + λ·Σ_{i≠j} Cᵢⱼ² with λ = config barlow.lambda.
 */
import * as tf from '@tensorflow/tfjs';
import { barlowLossFromParts, crossCorrelationParts } from '../losses/barlow';
import { crossCorrelationSummary, embeddingStdTensor } from '../losses/monitors';
import { section } from '../config';
import { MethodStep } from './step';
import { PREFIX } from './model';
import { backboneFeatures, headOverViews, perViewGrouping } from './views';

export const barlowStep: MethodStep = {
  loss(m, views) {
    if (views.length !== 2) throw new Error(`Barlow Twins needs exactly 2 views, got ${views.length}`);
    const ctx = { training: true, bnMomentum: m.cfg.bnMomentum };
    const feats = backboneFeatures(m, m.student, views, ctx, perViewGrouping()); // 2 x [B, F]
    const z = headOverViews(m.student, m.projector!, PREFIX.projector, feats, ctx, perViewGrouping()); // [2, B, D]
    const [z1, z2] = tf.unstack(z) as tf.Tensor2D[];
    // C once, for the loss and the monitors.
    const { c, diag } = crossCorrelationParts(z1, z2);
    const total = barlowLossFromParts(c, diag, section(m.cfg, 'barlow').lambda);
    const cc = crossCorrelationSummary(c, diag);
    return { total, parts: { barlow: total, ccDiag: cc.diagMean, ccOffDiag: cc.offDiagMean, ccOffDiagAbs: cc.offDiagAbsMean, featStd: embeddingStdTensor(feats[0]) } };
  },
};

/**
 * Barlow Twins (Zbontar et al. 2021, facebookresearch/barlowtwins main.py), the whole method: its
 * config sections (`projector`, `barlow`), defaults, views and step. Two views, each through backbone
 * and projector with its own batch-norm statistics (as the reference's two passes; one pass with
 * per-view statistics where the backend makes that cheap, `perViewGrouping`), loss
 * Σᵢ(1 − Cᵢᵢ)² + λ·Σ_{i≠j} Cᵢⱼ² with λ = config `barlow.lambda`.
 */
import * as tf from '@tensorflow/tfjs';
import { barlowLossFromParts, crossCorrelationParts } from '../losses/barlow';
import { crossCorrelationSummary, embeddingStdTensor } from '../losses/stepMonitors';
import { augmentViewOptions, barlowViews } from '../augment/presets';
import { barlowProjector, BarlowProjectorOptions } from '../models/heads';
import { Head } from '../nn/module';
import { deriveSeed } from '../util/rng';
import { check, deepFreeze, nonNeg, posInt } from '../util/check';
import { ConfigSection, MethodDefinition, ModelBase, PREFIX, sectionOf } from './method';
import { MethodStep } from './stepContract';
import { backboneFeatures, headOverViews, perViewGrouping } from './viewPasses';

/** The Barlow projector's widths (documented in lib/models/heads.ts). */
export type ProjectorConfig = BarlowProjectorOptions;

export interface BarlowConfig {
  /** Off-diagonal weight λ of the Barlow Twins loss (the paper: 0.0051 for its 8192-d projector; the DINO-Twins project: 0.005). */
  lambda: number;
}

/** The Barlow projector: Barlow Twins' own, and DINO-Twins' with twins.target 'projector'. */
export const PROJECTOR_SECTION = deepFreeze<ConfigSection<ProjectorConfig>>({
  key: 'projector',
  title: 'Barlow projector',
  defaults: { hidden: 2048, out: 2048, layers: 3 },
  validate(p) {
    check(
      posInt(p.hidden) && posInt(p.out) && posInt(p.layers),
      'projector.hidden, .out and .layers must be positive integers',
    );
  },
});

/** The Barlow Twins loss's knob, read by Barlow Twins and DINO-Twins. */
export const BARLOW_SECTION = deepFreeze<ConfigSection<BarlowConfig>>({
  key: 'barlow',
  title: 'Barlow Twins term',
  defaults: { lambda: 0.0051 },
  validate(b) {
    check(nonNeg(b.lambda), `barlow.lambda must be a finite number >= 0, got ${String(b.lambda)}`);
  },
});

/** The projector on the student backbone's features, initialised in the student (`projector.*`). */
export function addProjector(base: ModelBase, o: ProjectorConfig): Head {
  const projector = barlowProjector(base.backbone.featureDim, o);
  projector.init(base.student, deriveSeed(base.seed, 2), PREFIX.projector);
  return projector;
}

/** The Barlow Twins step's knobs, taken from the config once when the model is built. */
export interface BarlowStepOptions {
  /** Off-diagonal weight λ (config `barlow.lambda`). */
  lambda: number;
  /** Batch-norm running-statistics momentum (config `bnMomentum`). */
  bnMomentum: number;
}

/** The Barlow Twins step over the student's backbone and `projector`. */
export function barlowStep(base: ModelBase, projector: Head, o: BarlowStepOptions): MethodStep {
  return {
    loss(views) {
      if (views.length !== 2) throw new Error(`Barlow Twins needs exactly 2 views, got ${views.length}`);
      const ctx = { training: true, bnMomentum: o.bnMomentum };
      const feats = backboneFeatures(base.backbone, base.student, views, ctx, perViewGrouping()); // 2 x [B, F]
      const z = headOverViews(base.student, projector, PREFIX.projector, feats, ctx, perViewGrouping()); // [2, B, D]
      const [z1, z2] = tf.unstack(z) as tf.Tensor2D[];
      // C once, for the loss and the monitors.
      const { c, diag } = crossCorrelationParts(z1, z2);
      const total = barlowLossFromParts(c, diag, o.lambda);
      const cc = crossCorrelationSummary(c, diag);
      return {
        total,
        parts: {
          barlow: total,
          ccDiag: cc.diagMean,
          ccOffDiag: cc.offDiagMean,
          ccOffDiagAbs: cc.offDiagAbsMean,
          featStd: embeddingStdTensor(feats[0]),
        },
      };
    },
  };
}

/** Barlow Twins' registry entry: AdamW at small batch (no LARS), weight decay 1e-4. */
export const barlowMethod: MethodDefinition<'barlow'> = deepFreeze({
  name: 'barlow',
  sections: [PROJECTOR_SECTION, BARLOW_SECTION],
  defaults: { weightDecay: 1e-4, weightDecayEnd: 1e-4 },
  augment: { read: ['globalSize', 'jitterStrength', 'blur'], never: 'Barlow Twins trains on two global views only' },
  views: (a) => barlowViews({ size: a.globalSize, ...augmentViewOptions(a) }),
  recipe: {},
  build(cfg, base) {
    const projector = addProjector(base, sectionOf<ProjectorConfig>(cfg, 'projector'));
    return {
      projector,
      step: barlowStep(base, projector, {
        lambda: sectionOf<BarlowConfig>(cfg, 'barlow').lambda,
        bnMomentum: cfg.bnMomentum,
      }),
    };
  },
});

/**
 * DINO-Twins (the original project, ArthurZucker/DeepLearningProject), the whole method: DINO's
 * section, recipe, views and step pieces (lib/methods/dino.ts), Barlow Twins' λ and projector
 * (lib/methods/barlow.ts), and its own `twins` section. The loss is `dinoTwinsLoss` = DINO loss +
 * β · the mean Barlow Twins loss over ordered pairs of views, computed on a separate projector over
 * the student backbone features (twins.target 'projector', as the original) or on the DINO head
 * outputs ('head'). Both terms are logged separately.
 */
import { dinoTwinsLoss } from '../losses/dinoTwins';
import { embeddingStdTensor } from '../losses/stepMonitors';
import { Head } from '../nn/module';
import { check, deepFreeze, nonNeg } from '../util/check';
import { ConfigSection, MethodDefinition, ModelBase, PREFIX, sectionOf } from './method';
import { MethodStep } from './stepContract';
import { addDinoParts, DINO_SECTION, DinoConfig, DinoCore, dinoCore, dinoMethod } from './dino';
import { addProjector, BARLOW_SECTION, BarlowConfig, PROJECTOR_SECTION, ProjectorConfig } from './barlow';
import { headOverViews, perViewGrouping } from './viewPasses';

export interface TwinsConfig {
  /** Weight β of the Barlow term in the DINO-Twins total (the original project: 0.0025). */
  beta: number;
  /** Where the Barlow term applies: a separate projector on the student backbone features (the original), or the DINO head outputs. */
  target: 'projector' | 'head';
}

export const TWINS_SECTION = deepFreeze<ConfigSection<TwinsConfig>>({
  key: 'twins',
  title: 'DINO-Twins combination',
  defaults: { beta: 0.0025, target: 'projector' },
  validate(t) {
    check(
      t.target === 'projector' || t.target === 'head',
      `twins.target must be "projector" or "head", got ${String(t.target)}`,
    );
    check(nonNeg(t.beta), `twins.beta must be a finite number >= 0, got ${String(t.beta)}`);
  },
});

/** The DINO-Twins step's own knobs, taken from the config once when the model is built. */
export interface TwinsStepOptions {
  /** β (config `twins.beta`). */
  beta: number;
  /** λ of the Barlow term (config `barlow.lambda`). */
  lambda: number;
  bnMomentum: number;
}

/** The DINO-Twins step: DINO's pieces, plus the Barlow term on `projector` (or, without one, on the DINO head outputs). */
export function dinoTwinsStep(
  base: ModelBase,
  core: DinoCore,
  projector: Head | undefined,
  o: TwinsStepOptions,
): MethodStep {
  return {
    teacherOutputs: core.teacherOutputs,
    loss(views, teacher, s) {
      if (views.length < 2) throw new Error(`DINO-Twins needs at least 2 (global) views, got ${views.length}`);
      const t = core.temps(s);
      const { out, feats } = core.student(views);
      const ctx = { training: true, bnMomentum: o.bnMomentum };
      const p = projector
        ? headOverViews(base.student, projector, PREFIX.projector, feats, ctx, perViewGrouping())
        : out; // [V, B, D]
      const { total, dino, barlow } = dinoTwinsLoss(out, teacher!, core.center, p, {
        ...t,
        lambda: o.lambda,
        beta: o.beta,
      });
      return {
        total,
        parts: { dino, barlow, featStd: embeddingStdTensor(feats[0]), ...core.monitors(out, teacher!, t) },
      };
    },
    frozen: core.frozen,
    afterStep: core.afterStep,
  };
}

/** DINO-Twins' registry entry: as DINO, with the original project's λ = 0.005 for its Barlow term. */
export const dinoTwinsMethod: MethodDefinition<'dino-twins'> = deepFreeze({
  name: 'dino-twins',
  sections: [DINO_SECTION, BARLOW_SECTION, PROJECTOR_SECTION, TWINS_SECTION],
  defaults: { ...dinoMethod.defaults, barlow: { lambda: 0.005 } },
  unreadSections: (full): Record<string, string> =>
    (full.twins as TwinsConfig).target === 'head'
      ? { projector: 'twins.target is "head" (the Barlow term uses the DINO head outputs)' }
      : {},
  augment: dinoMethod.augment,
  views: dinoMethod.views,
  recipe: dinoMethod.recipe,
  build(cfg, base) {
    const twins = sectionOf<TwinsConfig>(cfg, 'twins');
    // The projector first (as the parameter order of the original), then DINO's head and teacher.
    const projector =
      twins.target === 'projector' ? addProjector(base, sectionOf<ProjectorConfig>(cfg, 'projector')) : undefined;
    const d = sectionOf<DinoConfig>(cfg, 'dino');
    const parts = addDinoParts(base, d);
    const step = dinoTwinsStep(base, dinoCore(base, parts, d, cfg.bnMomentum), projector, {
      beta: twins.beta,
      lambda: sectionOf<BarlowConfig>(cfg, 'barlow').lambda,
      bnMomentum: cfg.bnMomentum,
    });
    return { ...parts, projector, step };
  },
});

/**
 * Builds the trainable state of one self-supervised run (SslModel, lib/methods/method.ts) from a
 * resolved config: the backbone in the student's parameters, then whatever the config's method adds
 * (its registry entry's `build`: heads, teacher, center, and its step). The same config restores a
 * checkpoint into the same names and shapes.
 */
import { ParamStore } from '../nn/params';
import { buildBackbone } from '../models/index';
import type { PretrainConfig } from '../config/config';
import { deriveSeed } from '../util/rng';
import { PREFIX, SslModel } from './method';
import { methodDefinition } from './registry';

export { PREFIX };
export type { SslModel };

export function buildSslModel(cfg: PretrainConfig): SslModel {
  const def = methodDefinition(cfg.method);
  const backbone = buildBackbone(cfg.backbone);
  const student = new ParamStore('student');
  try {
    backbone.init(student, deriveSeed(cfg.seed, 1), PREFIX.backbone);
    const parts = def.build(cfg, { backbone, student, seed: cfg.seed });
    return {
      method: def.name,
      backbone,
      student,
      projector: parts.projector,
      head: parts.head,
      teacher: parts.teacher,
      center: parts.center,
      emaNames: parts.emaNames ?? [],
      lastLayerNames: parts.lastLayerNames ?? new Set(),
      views: def.views(cfg.augment),
      step: parts.step,
      dispose() {
        student.dispose();
        parts.teacher?.dispose();
        parts.center?.dispose();
      },
    };
  } catch (e) {
    student.dispose();
    throw e;
  }
}

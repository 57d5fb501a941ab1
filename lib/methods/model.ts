/**
 * The trainable state of one self-supervised run: a student (backbone + heads), an optional
 * teacher (DINO's EMA copy of backbone + head) and the DINO center. Built from the config, so a
 * checkpoint with the same config restores into the same names and shapes.
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params';
import { Backbone, Head } from '../nn/module';
import { buildBackbone, barlowProjector, dinoHead, lastLayerParamNames } from '../models/index';
import { PretrainConfig, section } from '../config';
import { deriveSeed } from '../rng';

export interface SslModel {
  readonly cfg: PretrainConfig;
  readonly backbone: Backbone;
  /** Barlow projector on backbone features (barlow; dino-twins with target 'projector'). */
  readonly projector?: Head;
  /** DINO head (dino, dino-twins). */
  readonly head?: Head;
  /** Student parameters: `backbone.*`, `projector.*`, `head.*`. */
  readonly student: ParamStore;
  /** Teacher parameters (`backbone.*`, `head.*`), frozen; EMA of the student. Absent without an EMA teacher. */
  readonly teacher?: ParamStore;
  /** DINO center [K]. */
  readonly center?: tf.Variable;
  /** Student parameters the teacher mirrors (EMA targets): trainable `backbone.*` and `head.*`. */
  readonly emaNames: readonly string[];
  /** Names of the DINO last-layer parameters (frozen during the first epochs). */
  readonly lastLayerNames: ReadonlySet<string>;
  dispose(): void;
}

export const PREFIX = { backbone: 'backbone.', projector: 'projector.', head: 'head.' } as const;

export function buildSslModel(cfg: PretrainConfig): SslModel {
  const backbone = buildBackbone(cfg.backbone);
  const student = new ParamStore('student');
  backbone.init(student, deriveSeed(cfg.seed, 1), PREFIX.backbone);
  // The resolved config has a section exactly where the method reads it (lib/config.ts).
  let projector: Head | undefined;
  if (cfg.projector) {
    projector = barlowProjector(backbone.featureDim, cfg.projector);
    projector.init(student, deriveSeed(cfg.seed, 2), PREFIX.projector);
  }
  let head: Head | undefined;
  let teacher: ParamStore | undefined;
  let center: tf.Variable | undefined;
  let lastLayerNames = new Set<string>();
  if (cfg.method !== 'barlow') {
    const d = section(cfg, 'dino');
    head = dinoHead(backbone.featureDim, d.head);
    head.init(student, deriveSeed(cfg.seed, 3), PREFIX.head);
    lastLayerNames = new Set(lastLayerParamNames(PREFIX.head).filter((n) => student.has(n)));
    if (d.ablations.emaTeacher) {
      // The teacher starts as an exact copy of the student's backbone and head (DINO), and is never trained.
      teacher = new ParamStore('teacher');
      for (const n of student.names()) {
        if (n.startsWith(PREFIX.projector)) continue;
        const info = student.infoOf(n);
        teacher.add(n, student.get(n).clone(), info.kind, false);
      }
    }
    center = tf.tidy(() => tf.variable(tf.zeros([d.head.out]), false));
  }
  const emaNames = teacher ? student.trainableNames().filter((n) => teacher!.has(n)) : [];
  return {
    cfg, backbone, projector, head, student, teacher, center, lastLayerNames, emaNames,
    dispose() {
      student.dispose();
      teacher?.dispose();
      center?.dispose();
    },
  };
}

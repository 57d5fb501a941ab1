/**
 * What a method is: one registry entry (lib/methods/registry.ts) that declares all the library needs
 * from it: its config sections (defaults, which keys a run reads, validation), its row of defaults,
 * the augment keys it reads and the views it trains on, its per-budget recipe, and `build`, which
 * adds its networks and state beside the student backbone and returns the step over them. Nothing
 * outside the method's own file names it: config, budgets, model, trainer and views ask the entry.
 */
import type * as tf from '@tensorflow/tfjs';
import type { AugmentConfig } from '../augment/presets';
import type { ViewsConfig } from '../augment/pipeline';
import type { BudgetName } from '../config/budget';
import type { ConfigLayer, FullConfig, PretrainConfig } from '../config/config';
import type { ParamStore } from '../nn/params';
import type { Backbone, Head } from '../nn/module';
import type { MethodStep } from './stepContract';

/** Parameter-name prefixes of the student (and the teacher). */
export const PREFIX = { backbone: 'backbone.', projector: 'projector.', head: 'head.' } as const;

/** A config section (`barlow`, `dino`, `projector`): its defaults, what a run reads of it, and its checks. */
export interface ConfigSection<T extends object = object> {
  /** Its key in the config. */
  readonly key: string;
  /** What it configures, for messages: `method "barlow" has no DINO part`. */
  readonly title: string;
  /** Every key's default, once. */
  readonly defaults: Readonly<Required<T>>;
  /** Throws a ConfigError naming the key of a bad value. */
  validate(v: Required<T>): void;
  /** The keys a run leaves unread because of the section's own switches, each with the reason. Default: none. */
  unread?(v: Required<T>): Partial<Record<keyof T & string, string>>;
}

/** What `build` starts from: the student's backbone, already initialised in the student's parameters. */
export interface ModelBase {
  backbone: Backbone;
  student: ParamStore;
  /** The run's seed (heads derive their initialisation from it). */
  seed: number;
}

/** What a method adds to the model. */
export interface MethodParts {
  /** Barlow Twins' projector on backbone features (in the student, `projector.*`). */
  projector?: Head;
  /** DINO's head (in the student, `head.*`). */
  head?: Head;
  /** An EMA teacher: frozen parameters the step updates after each optimizer step. */
  teacher?: ParamStore;
  /** DINO's center [K]. */
  center?: tf.Variable;
  /** Student parameters the teacher mirrors (EMA targets). Default none. */
  emaNames?: readonly string[];
  /** DINO's last-layer parameters (frozen in the first epochs). Default none. */
  lastLayerNames?: ReadonlySet<string>;
  /** The step over these parts, with the method's knobs taken from the config once, here. */
  step: MethodStep;
}

/** A method's registry entry. */
export interface MethodDefinition<N extends string = string> {
  /** Its name in configs, records and run folders. */
  readonly name: N;
  /** The config sections it reads (a shared one by reference: DINO-Twins lists DINO's and Barlow Twins'). */
  readonly sections: readonly ConfigSection[];
  /** Its row of defaults over the common knobs and its sections' (lib/config/config.ts resolves them in that order). */
  readonly defaults: ConfigLayer;
  /** Sections of `sections` that this run leaves unread (key -> why), from the merged config. Default: none. */
  unreadSections?(full: FullConfig): Record<string, string>;
  /** The augment keys it may read: `read`; why it never reads the others: `never`; those a run leaves unread, with why: `unread`. */
  readonly augment: {
    readonly read: readonly (keyof AugmentConfig)[];
    readonly never?: string;
    unread?(a: Required<AugmentConfig>): Partial<Record<keyof AugmentConfig, string>>;
  };
  /** The views it trains on (lib/augment/presets.ts). */
  views(a: AugmentConfig): ViewsConfig;
  /** Its settings per budget, applied after the budget's shared layer (lib/config/budget.ts); a budget not named adds nothing. */
  readonly recipe: Readonly<Partial<Record<BudgetName, ConfigLayer>>>;
  /** Adds its networks and state beside `base` (initialised, seeded from `base.seed`) and returns its step. */
  build(cfg: PretrainConfig, base: ModelBase): MethodParts;
}

/**
 * The trainable state of one run: the student (backbone and the method's heads), an optional teacher
 * and center, the views it trains on and its step. Built by `buildSslModel` (lib/methods/model.ts).
 */
export interface SslModel {
  /** The method's name. */
  readonly method: string;
  readonly backbone: Backbone;
  /** Barlow projector on backbone features (barlow; dino-twins with twins.target 'projector'). */
  readonly projector?: Head;
  /** DINO head (dino, dino-twins). */
  readonly head?: Head;
  /** Student parameters: `backbone.*`, `projector.*`, `head.*`. */
  readonly student: ParamStore;
  /** Teacher parameters (`backbone.*`, `head.*`), frozen; EMA of the student. Absent without an EMA teacher. */
  readonly teacher?: ParamStore;
  /** DINO center [K]. */
  readonly center?: tf.Variable;
  /** Student parameters the teacher mirrors (EMA targets). */
  readonly emaNames: readonly string[];
  /** Parameters the method freezes in its first epochs (DINO's last layer). */
  readonly lastLayerNames: ReadonlySet<string>;
  /** The views the run trains on (from the config's augment section). */
  readonly views: ViewsConfig;
  /** The method's step (lib/train/trainStep.ts runs it). */
  readonly step: MethodStep;
  dispose(): void;
}

/** The section `key` of a resolved config, which the method `cfg.method` reads (resolveConfig guarantees it). */
export function sectionOf<T>(cfg: PretrainConfig, key: string): T {
  const v = (cfg as unknown as Record<string, unknown>)[key];
  if (v === undefined)
    throw new Error(
      `method "${cfg.method}" needs the config section "${key}", which this config lacks (resolve it with resolveConfig)`,
    );
  return v as T;
}

/**
 * Named view recipes. `barlow` follows the BYOL / Barlow Twins asymmetric pair (Barlow Twins
 * `Transform` in facebookresearch/barlowtwins main.py); `dino` follows facebookresearch/dino
 * `DataAugmentationDINO` (2 global + N local crops). Adapted to 32x32 CIFAR-10:
 * - blur uses a 3x3 kernel (ImageNet recipes blur 224px crops with ~23px kernels, i.e. ~10% of the
 *   side; 3 is ~10% of 32), sigma in [0.1, 2.0]: at sigma 2 it is close to a 3x3 box blur;
 * - DINO's scales are kept: global (0.4, 1), local (0.05, 0.4); locals are 16x16 (half the side,
 *   as 96/224 in DINO is ~0.43) and globals keep the native 32x32.
 */
import { BlurSpec, DEFAULT_RATIO, IDENTITY_VIEW, JitterSpec, ViewSpec, ViewsConfig } from './pipeline';

/**
 * The run config's augment section (lib/config/config.ts `augment`): the knobs a method's views read.
 * Each method says which it reads (its registry entry, lib/methods).
 */
export interface AugmentConfig {
  /** Size of the global views. */
  globalSize: number;
  /** Number of local views (the multi-crop methods: DINO, DINO-Twins). */
  nLocal?: number;
  /** Size of the local views (multi-crop, with nLocal > 0). */
  localSize?: number;
  /** Multiplier on the colour jitter's brightness, contrast, saturation and hue (1: BYOL/DINO's 0.4, 0.4, 0.2, 0.1). */
  jitterStrength: number;
  /** Gaussian blur on (the recipes' probabilities per view) or off entirely. */
  blur: boolean;
}

/**
 * Every augment knob's default, once: globals at CIFAR's native 32x32, 4 locals of 16x16 (half the
 * side, as 96/224 in DINO is ~0.43; DINO uses 8 locals on ImageNet, 4 keeps CIFAR steps affordable),
 * full-strength jitter, blur on. The presets below take their sizes and counts from here.
 */
export const AUGMENT_DEFAULTS: Readonly<Required<AugmentConfig>> = Object.freeze({
  globalSize: 32,
  nLocal: 4,
  localSize: 16,
  jitterStrength: 1,
  blur: true,
});

/** BYOL / Barlow Twins / DINO colour jitter: ColorJitter(0.4, 0.4, 0.2, 0.1) with p = 0.8, random order. */
export const DEFAULT_JITTER: Readonly<JitterSpec> = Object.freeze({
  p: 0.8,
  brightness: 0.4,
  contrast: 0.4,
  saturation: 0.2,
  hue: 0.1,
  randomOrder: true,
});

/** Options of the Barlow Twins pair. */
export interface BarlowViewsOptions {
  /** Output size of both views. Default AUGMENT_DEFAULTS.globalSize. */
  size: number;
  /** RandomResizedCrop scale. Default (0.08, 1), torchvision's default, as Barlow Twins. */
  scale: readonly [number, number];
  /** Blur kernel size (odd); 0 turns blur off entirely. Default 3 (see the file comment). */
  blurKernel: number;
  /** Blur sigma range. Default (0.1, 2.0). */
  blurSigma: readonly [number, number];
  /** Colour jitter. Default DEFAULT_JITTER. */
  jitter: JitterSpec;
  /** Greyscale probability. Default 0.2. */
  grayscaleP: number;
}

export const BARLOW_VIEWS_DEFAULTS: Readonly<BarlowViewsOptions> = Object.freeze({
  size: AUGMENT_DEFAULTS.globalSize,
  scale: [0.08, 1] as const,
  blurKernel: 3,
  blurSigma: [0.1, 2.0] as const,
  jitter: DEFAULT_JITTER,
  grayscaleP: 0.2,
});

/** Options of DINO's multi-crop. */
export interface DinoViewsOptions {
  /** Number of local views. Default AUGMENT_DEFAULTS.nLocal. */
  nLocal: number;
  /** Global view size. Default AUGMENT_DEFAULTS.globalSize. */
  globalSize: number;
  /** Local view size. Default AUGMENT_DEFAULTS.localSize. */
  localSize: number;
  /** Global crop scale. Default (0.4, 1), DINO's default. */
  globalScale: readonly [number, number];
  /** Local crop scale. Default (0.05, 0.4), DINO's default. */
  localScale: readonly [number, number];
  /** Blur kernel size (odd); 0 turns blur off. Default 3. */
  blurKernel: number;
  /** Blur sigma range. Default (0.1, 2.0). */
  blurSigma: readonly [number, number];
  /** Colour jitter. Default DEFAULT_JITTER. */
  jitter: JitterSpec;
  /** Greyscale probability. Default 0.2. */
  grayscaleP: number;
}

export const DINO_VIEWS_DEFAULTS: Readonly<DinoViewsOptions> = Object.freeze({
  nLocal: AUGMENT_DEFAULTS.nLocal,
  globalSize: AUGMENT_DEFAULTS.globalSize,
  localSize: AUGMENT_DEFAULTS.localSize,
  globalScale: [0.4, 1] as const,
  localScale: [0.05, 0.4] as const,
  blurKernel: 3,
  blurSigma: [0.1, 2.0] as const,
  jitter: DEFAULT_JITTER,
  grayscaleP: 0.2,
});

function blur(p: number, kernelSize: number, sigma: readonly [number, number]): BlurSpec | null {
  return kernelSize > 0 && p > 0 ? { p, sigma, kernelSize } : null;
}

function view(
  size: number,
  scale: readonly [number, number],
  jitter: JitterSpec,
  grayscaleP: number,
  b: BlurSpec | null,
  solarizeP: number,
): ViewSpec {
  return { size, scale, ratio: DEFAULT_RATIO, antialias: true, flipP: 0.5, jitter, grayscaleP, blur: b, solarizeP };
}

/** Barlow Twins / BYOL asymmetric pair: view 1 always blurred, view 2 blurred with p 0.1 and solarised with p 0.2. */
export function barlowViews(opts: Partial<BarlowViewsOptions> = {}): ViewsConfig {
  const o = { ...BARLOW_VIEWS_DEFAULTS, ...opts };
  return {
    name: 'barlow',
    normalize: true,
    views: [
      view(o.size, o.scale, o.jitter, o.grayscaleP, blur(1.0, o.blurKernel, o.blurSigma), 0.0),
      view(o.size, o.scale, o.jitter, o.grayscaleP, blur(0.1, o.blurKernel, o.blurSigma), 0.2),
    ],
  };
}

/** DINO multi-crop: global 1 (blur p 1), global 2 (blur p 0.1, solarise p 0.2), then nLocal locals (blur p 0.5). */
export function dinoViews(opts: Partial<DinoViewsOptions> = {}): ViewsConfig {
  const o = { ...DINO_VIEWS_DEFAULTS, ...opts };
  if (!(Number.isInteger(o.nLocal) && o.nLocal >= 0))
    throw new Error(`dinoViews: nLocal must be an integer >= 0, got ${o.nLocal}`);
  const views: ViewSpec[] = [
    view(o.globalSize, o.globalScale, o.jitter, o.grayscaleP, blur(1.0, o.blurKernel, o.blurSigma), 0.0),
    view(o.globalSize, o.globalScale, o.jitter, o.grayscaleP, blur(0.1, o.blurKernel, o.blurSigma), 0.2),
  ];
  for (let i = 0; i < o.nLocal; i++)
    views.push(view(o.localSize, o.localScale, o.jitter, o.grayscaleP, blur(0.5, o.blurKernel, o.blurSigma), 0.0));
  return { name: `dino(${o.nLocal} local)`, normalize: true, views };
}

/** No augmentation: the whole image (resized to `size` if it differs), normalised. */
export function evalViews(size = 32): ViewsConfig {
  return { name: 'eval', normalize: true, views: [{ ...IDENTITY_VIEW, size }] };
}

/** The presets with their defaults. */
export const AUGMENT_PRESETS: Readonly<Record<'barlow' | 'dino' | 'eval', ViewsConfig>> = Object.freeze({
  barlow: barlowViews(),
  dino: dinoViews(),
  eval: evalViews(),
});

/** DEFAULT_JITTER with brightness, contrast, saturation and hue scaled by `strength` (1: unchanged; 0: no colour change). */
export function scaledJitter(strength: number): JitterSpec {
  if (!Number.isFinite(strength) || strength < 0)
    throw new Error(`scaledJitter: strength must be a finite number >= 0, got ${strength}`);
  const j = DEFAULT_JITTER;
  // Hue is a shift in [-0.5, 0.5] of the colour wheel: cap it there.
  return {
    ...j,
    brightness: j.brightness * strength,
    contrast: j.contrast * strength,
    saturation: j.saturation * strength,
    hue: Math.min(0.5, j.hue * strength),
  };
}

/** The jitter and blur of a run's augment section, as the view presets take them. */
export function augmentViewOptions(aug: Pick<AugmentConfig, 'jitterStrength' | 'blur'>): {
  jitter: JitterSpec;
  blurKernel: number;
} {
  return { jitter: scaledJitter(aug.jitterStrength), blurKernel: aug.blur ? BARLOW_VIEWS_DEFAULTS.blurKernel : 0 };
}

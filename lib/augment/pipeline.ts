/**
 * Seeded, batched view generation: for each view spec, the torchvision pipeline used by
 * BYOL / Barlow Twins / DINO (facebookresearch/dino `DataAugmentationDINO`):
 *   RandomResizedCrop -> RandomHorizontalFlip -> RandomApply(ColorJitter) -> RandomGrayscale
 *   -> GaussianBlur (with p) -> Solarization (with p) -> Normalize.
 * Every step is one batched op with per-image parameters; the whole step's randomness is a pure
 * function of `seed` (the trainer passes deriveSeed(runSeed, step)), so a resumed run sees the same views.
 * Differences from the PIL-based references, by design: all steps run on float images (PIL rounds
 * to uint8 after each step), and the blur is torchvision's tensor GaussianBlur with a fixed kernel size.
 */
import * as tf from '@tensorflow/tfjs';
import { ImageBatch, RawImageSize, CIFAR10_IMAGE_SIZE, batchSize, normalize, toFloatImages } from './normalize';
import { CropBox, JitterStrength, sampleCropBox, sampleJitter, opRng } from './sampleParams';
import { Interpolation, applySeparable, blurMatrices, cropMatrices, repeatMatrices } from './resample';
import { colorJitter, randomGrayscale, solarize } from './color';

/** Colour jitter settings (torchvision ColorJitter behind RandomApply). */
export interface JitterSpec extends JitterStrength {
  /** Probability of applying the jitter to an image. */
  p: number;
  /** Random order of the four operations per image, as torchvision does. Default true. */
  randomOrder: boolean;
}

/** Gaussian blur settings (torchvision GaussianBlur behind RandomApply). */
export interface BlurSpec {
  /** Probability of blurring an image. */
  p: number;
  /** Sigma is drawn uniformly from this range for each image. */
  sigma: readonly [number, number];
  /** Odd kernel size; reflect padding. 3 suits 32x32 CIFAR images (23 is the ImageNet 224px choice). */
  kernelSize: number;
}

/** One view: a crop size and the random operations applied to it. */
export interface ViewSpec {
  /** Output height and width in pixels. */
  size: number;
  /** Crop area as a fraction of the image, drawn uniformly (RandomResizedCrop scale). */
  scale: readonly [number, number];
  /** Crop aspect ratio w/h, drawn log-uniformly (RandomResizedCrop ratio). */
  ratio: readonly [number, number];
  /** Antialiased resizing (PIL and torchvision antialias=True): matters when a crop is shrunk (and, for bicubic, at the edges). */
  antialias: boolean;
  /**
   * Resampling filter. Default 'bilinear' (as asked for CIFAR); the ImageNet references (DINO, Barlow
   * Twins) use PIL bicubic, i.e. 'bicubic' with antialias. Bicubic overshoot is clamped to [0, 1], as PIL's uint8 output is.
   */
  interpolation?: Interpolation;
  /** Probability of a horizontal flip. */
  flipP: number;
  /** Colour jitter, or null for none. */
  jitter: JitterSpec | null;
  /** Probability of converting to greyscale. */
  grayscaleP: number;
  /** Gaussian blur, or null for none. */
  blur: BlurSpec | null;
  /** Probability of solarising (threshold 0.5 on [0, 1] images). */
  solarizeP: number;
}

/** A list of views to produce from each batch. */
export interface ViewsConfig {
  /** Preset or description, for logs and run records. */
  name: string;
  /** The views, in the order `makeViews` returns them (DINO: the global views first). */
  views: readonly ViewSpec[];
  /** Apply the CIFAR-10 mean/std normalisation as the last step. Default true; false gives [0, 1] images. */
  normalize: boolean;
}

/** Torchvision's RandomResizedCrop ratio range. */
export const DEFAULT_RATIO: readonly [number, number] = Object.freeze([3 / 4, 4 / 3]) as readonly [number, number];
/** Solarisation threshold on [0, 1] images (128 on uint8). */
export const SOLARIZE_THRESHOLD = 0.5;

/** A view with nothing random: the whole image, resized to `size` if needed. */
export const IDENTITY_VIEW: Readonly<ViewSpec> = Object.freeze({
  size: 32,
  scale: [1, 1] as const,
  ratio: [1, 1] as const,
  antialias: true,
  flipP: 0,
  jitter: null,
  grayscaleP: 0,
  blur: null,
  solarizeP: 0,
});

function checkRange(r: readonly [number, number], what: string, lo: number, hi: number): void {
  if (!(Array.isArray(r) && r.length === 2 && r[0] >= lo && r[1] <= hi && r[0] <= r[1])) {
    throw new Error(`${what}: expected [lo, hi] with ${lo} <= lo <= hi <= ${hi}, got ${JSON.stringify(r)}`);
  }
}

function checkP(p: number, what: string): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`${what}: probability must be in [0, 1], got ${p}`);
}

/** Throws a message naming the bad field of a view spec. */
export function validateView(v: ViewSpec, where = 'view'): void {
  if (!(Number.isInteger(v.size) && v.size >= 1))
    throw new Error(`${where}.size must be a positive integer, got ${v.size}`);
  checkRange(v.scale, `${where}.scale`, 0, Infinity);
  if (!(v.scale[1] > 0)) throw new Error(`${where}.scale must allow a positive area, got ${JSON.stringify(v.scale)}`);
  checkRange(v.ratio, `${where}.ratio`, 1e-6, Infinity);
  if (v.interpolation !== undefined && v.interpolation !== 'bilinear' && v.interpolation !== 'bicubic') {
    throw new Error(`${where}.interpolation must be 'bilinear' or 'bicubic', got ${JSON.stringify(v.interpolation)}`);
  }
  checkP(v.flipP, `${where}.flipP`);
  checkP(v.grayscaleP, `${where}.grayscaleP`);
  checkP(v.solarizeP, `${where}.solarizeP`);
  if (v.jitter) {
    checkP(v.jitter.p, `${where}.jitter.p`);
    for (const k of ['brightness', 'contrast', 'saturation'] as const) {
      if (!(v.jitter[k] >= 0)) throw new Error(`${where}.jitter.${k} must be >= 0, got ${v.jitter[k]}`);
    }
    if (!(v.jitter.hue >= 0 && v.jitter.hue <= 0.5))
      throw new Error(`${where}.jitter.hue must be in [0, 0.5], got ${v.jitter.hue}`);
  }
  if (v.blur) {
    checkP(v.blur.p, `${where}.blur.p`);
    checkRange(v.blur.sigma, `${where}.blur.sigma`, 1e-6, Infinity);
    if (!(Number.isInteger(v.blur.kernelSize) && v.blur.kernelSize % 2 === 1 && (v.blur.kernelSize - 1) / 2 < v.size)) {
      throw new Error(
        `${where}.blur.kernelSize must be an odd integer with (k-1)/2 < size ${v.size}, got ${v.blur.kernelSize}`,
      );
    }
  }
}

/** The random parameters of one view for a batch (exported for inspection and tests). */
export interface ViewParams {
  boxes: CropBox[];
  flips: boolean[];
  jitter: ReturnType<typeof sampleJitter>[] | null;
  gray: boolean[];
  /** Blur sigma per image, 0 where not blurred. */
  sigmas: number[];
  /** Solarisation threshold per image, Infinity where not solarised. */
  thresholds: number[];
}

/** Draws the parameters of view `viewIndex` for images 0..n-1 (pure function of its arguments). */
export function sampleViewParams(
  spec: ViewSpec,
  n: number,
  height: number,
  width: number,
  seed: number,
  viewIndex: number,
): ViewParams {
  const p: ViewParams = { boxes: [], flips: [], jitter: spec.jitter ? [] : null, gray: [], sigmas: [], thresholds: [] };
  for (let i = 0; i < n; i++) {
    p.boxes.push(sampleCropBox(opRng(seed, viewIndex, i, 'crop'), height, width, spec.scale, spec.ratio));
    p.flips.push(opRng(seed, viewIndex, i, 'flip').next() < spec.flipP);
    if (spec.jitter)
      p.jitter!.push(
        sampleJitter(opRng(seed, viewIndex, i, 'jitter'), spec.jitter.p, spec.jitter, spec.jitter.randomOrder),
      );
    p.gray.push(opRng(seed, viewIndex, i, 'grayscale').next() < spec.grayscaleP);
    const br = opRng(seed, viewIndex, i, 'blur');
    const blurOn = br.next() < (spec.blur?.p ?? 0);
    const sigma = spec.blur ? br.uniform(spec.blur.sigma[0], spec.blur.sigma[1]) : 0;
    p.sigmas.push(blurOn ? sigma : 0);
    p.thresholds.push(opRng(seed, viewIndex, i, 'solarize').next() < spec.solarizeP ? SOLARIZE_THRESHOLD : Infinity);
  }
  return p;
}

/**
 * One view of a channel-major float batch x [3, B, H, W] in [0, 1] -> [3, B, S, S] in [0, 1]
 * (not normalised). Caller disposes.
 */
export function applyView(x: tf.Tensor4D, spec: ViewSpec, p: ViewParams): tf.Tensor4D {
  const [, b, h, w] = x.shape;
  const s = spec.size;
  return tf.tidy(() => {
    const interpolation = spec.interpolation ?? 'bilinear';
    const { ry, rx } = cropMatrices(p.boxes, p.flips, h, w, s, s, spec.antialias, interpolation);
    let y = applySeparable(
      x,
      tf.tensor3d(repeatMatrices(ry, 3), [3 * b, s, h]),
      tf.tensor3d(repeatMatrices(rx, 3), [3 * b, s, w]),
    ); // [3, B, S, S]
    if (interpolation === 'bicubic') y = tf.clipByValue(y, 0, 1);
    if (p.jitter && p.jitter.some((j) => j.apply)) y = colorJitter(y, p.jitter);
    if (p.gray.some(Boolean)) y = randomGrayscale(y, p.gray);
    if (spec.blur && p.sigmas.some((v) => v > 0)) {
      const m = tf.tensor3d(repeatMatrices(blurMatrices(p.sigmas, s, spec.blur.kernelSize), 3), [3 * b, s, s]);
      y = applySeparable(y, m, m);
    }
    if (p.thresholds.some((t) => t <= 1)) y = solarize(y, p.thresholds);
    return y;
  });
}

/**
 * The views of a batch, one float32 tensor [B, S_v, S_v, 3] per view spec, in `config.views` order,
 * normalised with the CIFAR-10 mean/std unless `config.normalize` is false.
 * Ownership: the caller disposes every returned tensor; a tensor input is not disposed.
 * Randomness is a pure function of (`seed`, view index, image index): the trainer should pass
 * `deriveSeed(runSeed, step)`.
 */
export function makeViews(
  images: ImageBatch,
  config: ViewsConfig,
  seed: number,
  size: RawImageSize = CIFAR10_IMAGE_SIZE,
): tf.Tensor4D[] {
  if (!config || !Array.isArray(config.views) || config.views.length === 0)
    throw new Error(`makeViews: config.views must be a non-empty list, got ${JSON.stringify(config?.views)}`);
  if (!Number.isFinite(seed)) throw new Error(`makeViews: seed must be a finite number, got ${seed}`);
  config.views.forEach((v, i) => validateView(v, `${config.name}.views[${i}]`));
  const n = batchSize(images, size);
  return tf.tidy(() => {
    const nhwc = toFloatImages(images, size); // [B, H, W, 3]
    const [, h, w] = nhwc.shape;
    const x = tf.transpose(nhwc, [3, 0, 1, 2]) as tf.Tensor4D; // [3, B, H, W]
    return config.views.map((spec, v) => {
      const y = tf.transpose(applyView(x, spec, sampleViewParams(spec, n, h, w, seed, v)), [1, 2, 3, 0]) as tf.Tensor4D; // [B, S, S, 3]
      return config.normalize ? normalize(y) : y;
    });
  });
}

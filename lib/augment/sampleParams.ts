/**
 * Per-image random parameters of the augmentations, drawn in JavaScript with our seeded `Rng`.
 * The sampling follows torchvision 0.14's `get_params` of RandomResizedCrop (10 attempts, then a
 * centre crop), ColorJitter (random order, factors), GaussianBlur (uniform sigma) and the
 * RandomApply / RandomGrayscale / RandomSolarize / RandomHorizontalFlip coin flips.
 *
 * Each operation of each image draws from its own stream `deriveSeed(seed, view, image, op)`, so the
 * parameters of image b do not depend on the batch size, and changing one operation's settings
 * (say, the jitter probability) does not change the crops. Every draw is made even when the
 * operation ends up not applied, for the same reason.
 */
import { Rng, deriveSeed } from '../util/rng';

/** A crop in pixels: top row, left column, height, width (torchvision's i, j, h, w). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/**
 * torchvision `RandomResizedCrop.get_params`: up to 10 attempts at a crop whose area is a
 * `scale` fraction of the image and whose aspect ratio (w/h) is log-uniform in `ratio`;
 * if none fits, a centre crop with the closest allowed ratio.
 */
export function sampleCropBox(
  rng: Rng,
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): CropBox {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  return centerCropBox(height, width, ratio);
}

/** torchvision's fallback: the largest centred crop whose ratio is clamped into `ratio`. */
export function centerCropBox(height: number, width: number, ratio: readonly [number, number]): CropBox {
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    h = Math.round(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    w = Math.round(h * Math.max(ratio[0], ratio[1]));
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** The four colour-jitter operations, indexed as in torchvision's `fn_idx`. */
export const JITTER_OPS = ['brightness', 'contrast', 'saturation', 'hue'] as const;
export type JitterOp = (typeof JITTER_OPS)[number];

/** Colour-jitter parameters of one image. */
export interface JitterParams {
  /** Whether jitter is applied at all (RandomApply with probability p). */
  apply: boolean;
  /** Order of the operations: indices into JITTER_OPS. */
  order: number[];
  /** Multiplicative factors (1 = identity) for brightness, contrast, saturation. */
  brightness: number;
  contrast: number;
  saturation: number;
  /** Hue shift in turns, in [-0.5, 0.5] (0 = identity). */
  hue: number;
}

/** Strengths as torchvision's ColorJitter(brightness, contrast, saturation, hue). */
export interface JitterStrength {
  /** Factor drawn from [max(0, 1 - b), 1 + b]. */
  brightness: number;
  /** Factor drawn from [max(0, 1 - c), 1 + c]. */
  contrast: number;
  /** Factor drawn from [max(0, 1 - s), 1 + s]. */
  saturation: number;
  /** Shift drawn from [-h, h], h <= 0.5. */
  hue: number;
}

/** torchvision `ColorJitter.get_params` behind a `RandomApply(p)` coin. */
export function sampleJitter(rng: Rng, p: number, s: JitterStrength, randomOrder: boolean): JitterParams {
  const apply = rng.next() < p;
  const order = randomOrder ? Array.from(rng.permutation(4)) : [0, 1, 2, 3];
  const factor = (v: number) => (v > 0 ? rng.uniform(Math.max(0, 1 - v), 1 + v) : 1);
  const brightness = factor(s.brightness);
  const contrast = factor(s.contrast);
  const saturation = factor(s.saturation);
  const hue = s.hue > 0 ? rng.uniform(-s.hue, s.hue) : 0;
  return { apply, order, brightness, contrast, saturation, hue };
}

/** Stream ids of the operations (part of the per-image seed). */
export const OP_STREAM = Object.freeze({ crop: 1, flip: 2, jitter: 3, grayscale: 4, blur: 5, solarize: 6 });

/** The independent random stream of one operation of one image of one view. */
export function opRng(seed: number, view: number, image: number, op: keyof typeof OP_STREAM): Rng {
  return new Rng(deriveSeed(seed, view, image, OP_STREAM[op]));
}

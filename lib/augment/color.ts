/**
 * Batched colour operations with per-image parameters on channels-first float images
 * x [B, 3, H, W] in [0, 1]. Formulas follow torchvision 0.14's tensor functional API
 * (`adjust_brightness/contrast/saturation/hue`, `rgb_to_grayscale`, `_rgb2hsv`, `solarize`):
 * each blend is clamp(f * img + (1 - f) * ref, 0, 1) with ref = 0 (brightness), the image's
 * mean grey level (contrast) or the per-pixel grey (saturation).
 * A per-image factor of 1 (or hue shift 0, or mask 0) leaves that image bit-for-bit unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import { JitterParams } from './params';

/** ITU-R 601-2 luma weights used by torchvision's rgb_to_grayscale. */
export const GRAY_WEIGHTS: readonly [number, number, number] = Object.freeze([0.2989, 0.587, 0.114]) as readonly [number, number, number];

function checkImages(x: tf.Tensor4D, n: number, what: string): void {
  if (x.rank !== 4 || x.shape[1] !== 3) throw new Error(`${what}: expected channels-first images [B, 3, H, W], got [${x.shape.join(', ')}]`);
  if (n !== x.shape[0]) throw new Error(`${what}: ${n} per-image parameters for a batch of ${x.shape[0]}`);
}

/** Per-image scalars as a [B, 1, 1, 1] tensor. */
function perImage(values: ArrayLike<number>): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

/** Grey level of each pixel: [B, 3, H, W] -> [B, 1, H, W]. */
export function grayscale(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.sum(tf.mul(x, tf.tensor4d([...GRAY_WEIGHTS], [1, 3, 1, 1])), 1, true) as tf.Tensor4D);
}

/**
 * One fused blend: image b becomes clamp(f_b * x + (1 - f_b) * ref_b, 0, 1) where ref_b is 0, its
 * mean grey (contrastSel_b = 1) or its per-pixel grey (saturationSel_b = 1).
 */
function blend(x: tf.Tensor4D, factors: number[], contrastSel: number[], saturationSel: number[]): tf.Tensor4D {
  return tf.tidy(() => {
    const f = perImage(factors);
    let ref: tf.Tensor | undefined;
    if (contrastSel.some((v) => v !== 0) || saturationSel.some((v) => v !== 0)) {
      const gray = grayscale(x); // [B, 1, H, W]
      const mean = tf.mean(gray, [1, 2, 3], true); // [B, 1, 1, 1]
      ref = tf.add(tf.mul(perImage(contrastSel), mean), tf.mul(perImage(saturationSel), gray)); // [B, 1, H, W]
    }
    const scaled = tf.mul(f, x);
    const mixed = ref ? tf.add(scaled, tf.mul(tf.sub(1, f), ref)) : scaled;
    return tf.clipByValue(mixed, 0, 1) as tf.Tensor4D;
  });
}

/** torchvision adjust_brightness with a factor per image. */
export function adjustBrightness(x: tf.Tensor4D, factors: number[]): tf.Tensor4D {
  checkImages(x, factors.length, 'adjustBrightness');
  return blend(x, factors, factors.map(() => 0), factors.map(() => 0));
}

/** torchvision adjust_contrast with a factor per image (blend with the image's mean grey). */
export function adjustContrast(x: tf.Tensor4D, factors: number[]): tf.Tensor4D {
  checkImages(x, factors.length, 'adjustContrast');
  return blend(x, factors, factors.map(() => 1), factors.map(() => 0));
}

/** torchvision adjust_saturation with a factor per image (blend with the per-pixel grey). */
export function adjustSaturation(x: tf.Tensor4D, factors: number[]): tf.Tensor4D {
  checkImages(x, factors.length, 'adjustSaturation');
  return blend(x, factors, factors.map(() => 0), factors.map(() => 1));
}

/** torchvision `_rgb2hsv`: [B, 3, H, W] RGB -> [B, 3, H, W] (h in [0, 1), s, v). */
export function rgbToHsv(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [r, g, b] = tf.split(x, 3, 1); // each [B, 1, H, W]
    const maxc = tf.max(x, 1, true);
    const minc = tf.min(x, 1, true);
    const eqc = tf.equal(maxc, minc);
    const ones = tf.onesLike(maxc);
    const cr = tf.sub(maxc, minc);
    const s = tf.div(cr, tf.where(eqc, ones, maxc));
    const crDiv = tf.where(eqc, ones, cr);
    const rc = tf.div(tf.sub(maxc, r), crDiv);
    const gc = tf.div(tf.sub(maxc, g), crDiv);
    const bc = tf.div(tf.sub(maxc, b), crDiv);
    const isR = tf.equal(maxc, r);
    const isG = tf.logicalAnd(tf.equal(maxc, g), tf.logicalNot(isR));
    const isB = tf.logicalAnd(tf.logicalNot(tf.equal(maxc, g)), tf.logicalNot(isR));
    const hr = tf.mul(tf.cast(isR, 'float32'), tf.sub(bc, gc));
    const hg = tf.mul(tf.cast(isG, 'float32'), tf.sub(tf.add(rc, 2), bc));
    const hb = tf.mul(tf.cast(isB, 'float32'), tf.sub(tf.add(gc, 4), rc));
    const h = tf.mod(tf.add(tf.div(tf.add(tf.add(hr, hg), hb), 6), 1), 1);
    return tf.concat([h, s, maxc], 1) as tf.Tensor4D;
  });
}

/**
 * HSV -> RGB, [B, 3, H, W] -> [B, 3, H, W]. Closed form of torchvision's `_hsv2rgb` sector table:
 * channel n in (5, 3, 1) for (r, g, b) is v * (1 - s * clamp(min(k, 4 - k), 0, 1)), k = (n + 6h) mod 6.
 */
export function hsvToRgb(hsv: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [h, s, v] = tf.split(hsv, 3, 1); // each [B, 1, H, W]
    const k = tf.mod(tf.add(tf.tensor4d([5, 3, 1], [1, 3, 1, 1]), tf.mul(h, 6)), 6); // [B, 3, H, W]
    const a = tf.clipByValue(tf.minimum(k, tf.sub(4, k)), 0, 1);
    return tf.clipByValue(tf.mul(v, tf.sub(1, tf.mul(s, a))), 0, 1) as tf.Tensor4D;
  });
}

/** torchvision adjust_hue with a shift (in turns, |shift| <= 0.5) per image; shift 0 leaves the image unchanged. */
export function adjustHue(x: tf.Tensor4D, shifts: number[]): tf.Tensor4D {
  checkImages(x, shifts.length, 'adjustHue');
  if (shifts.some((v) => !(Math.abs(v) <= 0.5))) throw new Error(`adjustHue: shifts must be in [-0.5, 0.5], got ${shifts.find((v) => !(Math.abs(v) <= 0.5))}`);
  if (shifts.every((v) => v === 0)) return tf.clone(x);
  return tf.tidy(() => {
    const hsv = rgbToHsv(x);
    const [h, sv] = tf.split(hsv, [1, 2], 1);
    // (h + shift) mod 1; the + 1 keeps the dividend positive so every backend's mod agrees.
    const h2 = tf.mod(tf.add(tf.add(h, perImage(shifts)), 1), 1);
    const shifted = hsvToRgb(tf.concat([h2, sv], 1) as tf.Tensor4D);
    const m = perImage(shifts.map((v) => (v !== 0 ? 1 : 0)));
    return tf.add(tf.mul(shifted, m), tf.mul(x, tf.sub(1, m))) as tf.Tensor4D;
  });
}

/**
 * torchvision ColorJitter (behind RandomApply) with per-image parameters: slot by slot, each image
 * runs the operation its own permutation puts in that slot. The three blends of a slot are fused
 * into one pass; the hue pass runs only in slots where some image needs it.
 */
export function colorJitter(x: tf.Tensor4D, params: JitterParams[]): tf.Tensor4D {
  checkImages(x, params.length, 'colorJitter');
  return tf.tidy(() => {
    let y = x;
    for (let slot = 0; slot < 4; slot++) {
      const op = params.map((p) => (p.apply ? p.order[slot] : -1));
      const factors = params.map((p, i) => (op[i] === 0 ? p.brightness : op[i] === 1 ? p.contrast : op[i] === 2 ? p.saturation : 1));
      if (factors.some((f) => f !== 1)) {
        y = blend(y, factors, op.map((o) => (o === 1 ? 1 : 0)), op.map((o) => (o === 2 ? 1 : 0)));
      }
      const shifts = params.map((p, i) => (op[i] === 3 ? p.hue : 0));
      if (shifts.some((s) => s !== 0)) y = adjustHue(y, shifts);
    }
    return y === x ? tf.clone(x) : y;
  });
}

/** RandomGrayscale: images with mask 1 become grey (replicated over the 3 channels). */
export function randomGrayscale(x: tf.Tensor4D, mask: boolean[]): tf.Tensor4D {
  checkImages(x, mask.length, 'randomGrayscale');
  if (!mask.some(Boolean)) return tf.clone(x);
  return tf.tidy(() => {
    const m = perImage(mask.map(Number));
    return tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(grayscale(x), m)) as tf.Tensor4D;
  });
}

/** torchvision solarize: pixels >= threshold become 1 - x. Use a threshold > 1 to leave an image unchanged. */
export function solarize(x: tf.Tensor4D, thresholds: number[]): tf.Tensor4D {
  checkImages(x, thresholds.length, 'solarize');
  if (thresholds.every((t) => t > 1)) return tf.clone(x);
  return tf.tidy(() => tf.where(tf.greaterEqual(x, perImage(thresholds)), tf.sub(1, x), x) as tf.Tensor4D);
}

/**
 * Batched colour operations with per-image parameters on channel-major float images
 * x [3, B, H, W] in [0, 1]. Formulas follow torchvision 0.14's tensor functional API
 * (`adjust_brightness/contrast/saturation/hue`, `rgb_to_grayscale`, `_rgb2hsv`, `_hsv2rgb`, `solarize`):
 * each blend is clamp(f * img + (1 - f) * ref, 0, 1) with ref = 0 (brightness), the image's
 * mean grey level (contrast) or the per-pixel grey (saturation).
 * A per-image factor of 1 (or hue shift 0, or mask 0) leaves that image bit-for-bit unchanged.
 *
 * Internally each channel is a [B, P] tensor (P = H * W). Channel-major layout makes taking a channel
 * a contiguous slice, and no `mod` is used (wasm runs it as a scalar loop). Where the backend's binary
 * ops are only fast for equal shapes (`BackendCapabilities.fastBroadcast`), per-image values are
 * expanded to [B, P]; elsewhere they broadcast from [B, 1].
 */
import * as tf from '@tensorflow/tfjs';
import { backendCapabilities } from '../kernels/capabilities';
import { JitterParams } from './sampleParams';

/** ITU-R 601-2 luma weights used by torchvision's rgb_to_grayscale. */
export const GRAY_WEIGHTS: readonly [number, number, number] = Object.freeze([0.2989, 0.587, 0.114]) as readonly [
  number,
  number,
  number,
];

type Rgb = [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];

function checkImages(x: tf.Tensor4D, n: number, what: string): void {
  if (x.rank !== 4 || x.shape[0] !== 3)
    throw new Error(`${what}: expected channel-major images [3, B, H, W], got [${x.shape.join(', ')}]`);
  if (n !== x.shape[1]) throw new Error(`${what}: ${n} per-image parameters for a batch of ${x.shape[1]}`);
}

/** Whether per-image values should be expanded to full size (see the file comment). */
function expandPerImage(): boolean {
  return !backendCapabilities().fastBroadcast;
}

/** Per-image scalars as [B, 1], or [B, P] on the cpu backend. */
function perImage(values: ArrayLike<number>, p: number): tf.Tensor2D {
  const b = values.length;
  if (!expandPerImage()) return tf.tensor2d(Float32Array.from(values), [b, 1]);
  const a = new Float32Array(b * p);
  for (let i = 0; i < b; i++) a.fill(values[i], i * p, (i + 1) * p);
  return tf.tensor2d(a, [b, p]);
}

/** A [B, 1] tensor expanded to [B, P] on the cpu backend (a K = 1 matMul), unchanged elsewhere. */
function expandColumn(t: tf.Tensor2D, p: number): tf.Tensor2D {
  return expandPerImage() ? tf.matMul(t, tf.ones([1, p])) : t;
}

function split(x: tf.Tensor4D): Rgb {
  const [, b, h, w] = x.shape;
  return tf.split(x, 3, 0).map((c) => tf.reshape(c, [b, h * w])) as Rgb;
}

function merge(c: Rgb, h: number, w: number): tf.Tensor4D {
  const b = c[0].shape[0];
  return tf.reshape(tf.stack(c), [3, b, h, w]);
}

/** Runs a per-channel function on x [3, B, H, W]. */
function onChannels(x: tf.Tensor4D, f: (c: Rgb, p: number) => Rgb): tf.Tensor4D {
  const [, , h, w] = x.shape;
  return tf.tidy(() => merge(f(split(x), h * w), h, w));
}

function gray2d([r, g, b]: Rgb): tf.Tensor2D {
  return tf.add(tf.add(tf.mul(r, GRAY_WEIGHTS[0]), tf.mul(g, GRAY_WEIGHTS[1])), tf.mul(b, GRAY_WEIGHTS[2]));
}

/** Grey level of each pixel: [3, B, H, W] -> [1, B, H, W]. */
export function grayscale(x: tf.Tensor4D): tf.Tensor4D {
  const [, b, h, w] = x.shape;
  return tf.tidy(() => tf.reshape(gray2d(split(x)), [1, b, h, w]));
}

/**
 * One fused blend: image b becomes clamp(f_b * x + (1 - f_b) * ref_b, 0, 1) where ref_b is 0, its
 * mean grey (contrastSel_b = 1) or its per-pixel grey (saturationSel_b = 1).
 */
function blend(c: Rgb, p: number, factors: number[], contrastSel: number[], saturationSel: number[]): Rgb {
  const f = perImage(factors, p);
  let ref: tf.Tensor2D | undefined;
  if (contrastSel.some((v) => v !== 0) || saturationSel.some((v) => v !== 0)) {
    const gray = gray2d(c); // [B, P]
    const mean = expandColumn(tf.mean(gray, 1, true), p); // [B, 1] or [B, P]
    ref = tf.mul(
      tf.sub(1, f),
      tf.add(tf.mul(perImage(contrastSel, p), mean), tf.mul(perImage(saturationSel, p), gray)),
    ) as tf.Tensor2D;
  }
  return c.map((ch) => {
    const scaled = tf.mul(f, ch);
    return tf.clipByValue(ref ? tf.add(scaled, ref) : scaled, 0, 1);
  }) as Rgb;
}

/** torchvision adjust_brightness with a factor per image. */
export function adjustBrightness(x: tf.Tensor4D, factors: number[]): tf.Tensor4D {
  checkImages(x, factors.length, 'adjustBrightness');
  return onChannels(x, (c, p) =>
    blend(
      c,
      p,
      factors,
      factors.map(() => 0),
      factors.map(() => 0),
    ),
  );
}

/** torchvision adjust_contrast with a factor per image (blend with the image's mean grey). */
export function adjustContrast(x: tf.Tensor4D, factors: number[]): tf.Tensor4D {
  checkImages(x, factors.length, 'adjustContrast');
  return onChannels(x, (c, p) =>
    blend(
      c,
      p,
      factors,
      factors.map(() => 1),
      factors.map(() => 0),
    ),
  );
}

/** torchvision adjust_saturation with a factor per image (blend with the per-pixel grey). */
export function adjustSaturation(x: tf.Tensor4D, factors: number[]): tf.Tensor4D {
  checkImages(x, factors.length, 'adjustSaturation');
  return onChannels(x, (c, p) =>
    blend(
      c,
      p,
      factors,
      factors.map(() => 0),
      factors.map(() => 1),
    ),
  );
}

/** x - floor(x): torch.fmod(x, 1) / x % 1 for the non-negative values used here (exact in float). */
function frac(x: tf.Tensor2D): tf.Tensor2D {
  return tf.sub(x, tf.floor(x));
}

/** torchvision `_rgb2hsv` on channels: (h in [0, 1), s, v). */
function rgbToHsv2d([r, g, b]: Rgb): Rgb {
  const maxc = tf.maximum(tf.maximum(r, g), b);
  const minc = tf.minimum(tf.minimum(r, g), b);
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
  // Sector formulas as torchvision: r is max -> bc - gc; else g is max -> 2 + rc - bc; else 4 + gc - rc.
  const h = tf.where(isR, tf.sub(bc, gc), tf.where(isG, tf.sub(tf.add(rc, 2), bc), tf.sub(tf.add(gc, 4), rc)));
  // torchvision multiplies by the masks; where() picks the same values. Grey pixels get 0 (rc = gc = bc = 0).
  const hue = frac(tf.add(tf.div(h, 6), 1) as tf.Tensor2D);
  return [hue, s as tf.Tensor2D, maxc as tf.Tensor2D];
}

/**
 * HSV -> RGB on channels, a closed form of torchvision's `_hsv2rgb` sector table:
 * rgb = v * (1 - s * (1 - t)) with t_r = clamp(|6h - 3| - 1), t_g = clamp(2 - |6h - 2|), t_b = clamp(2 - |6h - 4|) in [0, 1].
 */
function hsvToRgb2d([h, s, v]: Rgb): Rgb {
  const h6 = tf.mul(h, 6);
  const tr = tf.clipByValue(tf.sub(tf.abs(tf.sub(h6, 3)), 1), 0, 1);
  const tg = tf.clipByValue(tf.sub(2, tf.abs(tf.sub(h6, 2))), 0, 1);
  const tb = tf.clipByValue(tf.sub(2, tf.abs(tf.sub(h6, 4))), 0, 1);
  return [tr, tg, tb].map((t) => tf.clipByValue(tf.mul(v, tf.sub(1, tf.mul(s, tf.sub(1, t)))), 0, 1)) as Rgb;
}

/** torchvision `_rgb2hsv`: [3, B, H, W] RGB -> [3, B, H, W] (h in [0, 1), s, v). */
export function rgbToHsv(x: tf.Tensor4D): tf.Tensor4D {
  return onChannels(x, (c) => rgbToHsv2d(c));
}

function hueShift(c: Rgb, p: number, shifts: number[]): Rgb {
  const [h, s, v] = rgbToHsv2d(c);
  // (h + shift) mod 1; the + 1 keeps the value positive.
  const h2 = frac(tf.add(tf.add(h, perImage(shifts, p)), 1));
  const shifted = hsvToRgb2d([h2, s, v]);
  const m = perImage(
    shifts.map((d) => (d !== 0 ? 1 : 0)),
    p,
  );
  const keep = tf.sub(1, m);
  return shifted.map((ch, i) => tf.add(tf.mul(ch, m), tf.mul(c[i], keep))) as Rgb;
}

function checkShifts(shifts: number[]): void {
  const bad = shifts.find((v) => !(Math.abs(v) <= 0.5));
  if (bad !== undefined) throw new Error(`adjustHue: shifts must be in [-0.5, 0.5], got ${bad}`);
}

/** torchvision adjust_hue with a shift (in turns, |shift| <= 0.5) per image; shift 0 leaves the image unchanged. */
export function adjustHue(x: tf.Tensor4D, shifts: number[]): tf.Tensor4D {
  checkImages(x, shifts.length, 'adjustHue');
  checkShifts(shifts);
  if (shifts.every((v) => v === 0)) return tf.clone(x);
  return onChannels(x, (c, p) => hueShift(c, p, shifts));
}

/**
 * torchvision ColorJitter (behind RandomApply) with per-image parameters: slot by slot, each image
 * runs the operation its own permutation puts in that slot. The three blends of a slot are fused
 * into one pass; the hue pass runs only in slots where some image needs it.
 */
export function colorJitter(x: tf.Tensor4D, params: JitterParams[]): tf.Tensor4D {
  checkImages(x, params.length, 'colorJitter');
  checkShifts(params.map((q) => q.hue));
  return onChannels(x, (c0, p) => {
    let c = c0;
    for (let slot = 0; slot < 4; slot++) {
      const op = params.map((q) => (q.apply ? q.order[slot] : -1));
      const factors = params.map((q, i) =>
        op[i] === 0 ? q.brightness : op[i] === 1 ? q.contrast : op[i] === 2 ? q.saturation : 1,
      );
      if (factors.some((f) => f !== 1))
        c = blend(
          c,
          p,
          factors,
          op.map((o) => (o === 1 ? 1 : 0)),
          op.map((o) => (o === 2 ? 1 : 0)),
        );
      const shifts = params.map((q, i) => (op[i] === 3 ? q.hue : 0));
      if (shifts.some((s) => s !== 0)) c = hueShift(c, p, shifts);
    }
    return c;
  });
}

/** RandomGrayscale: images with mask 1 become grey (replicated over the 3 channels). */
export function randomGrayscale(x: tf.Tensor4D, mask: boolean[]): tf.Tensor4D {
  checkImages(x, mask.length, 'randomGrayscale');
  if (!mask.some(Boolean)) return tf.clone(x);
  return onChannels(x, (c, p) => {
    const m = perImage(mask.map(Number), p);
    const keep = tf.sub(1, m);
    const gm = tf.mul(gray2d(c), m);
    return c.map((ch) => tf.add(tf.mul(ch, keep), gm)) as Rgb;
  });
}

/**
 * torchvision solarize: pixels >= threshold become 1 - x. Use a threshold > 1 to leave an image unchanged;
 * the images that are solarised share one threshold.
 */
export function solarize(x: tf.Tensor4D, thresholds: number[]): tf.Tensor4D {
  checkImages(x, thresholds.length, 'solarize');
  if (thresholds.every((t) => t > 1)) return tf.clone(x);
  const t = thresholds.find((v) => v <= 1);
  if (thresholds.some((v) => v <= 1 && v !== t))
    throw new Error(`solarize: one threshold <= 1 per batch (others > 1 to skip), got ${JSON.stringify(thresholds)}`);
  return onChannels(x, (c, p) => {
    // A scalar comparison (broadcast comparisons are slow on wasm and cpu), then a per-image 0/1 mix (exact).
    const m = perImage(
      thresholds.map((v) => (v <= 1 ? 1 : 0)),
      p,
    );
    const keep = tf.sub(1, m);
    return c.map((ch) =>
      tf.add(tf.mul(tf.where(tf.greaterEqual(ch, t!), tf.sub(1, ch), ch), m), tf.mul(ch, keep)),
    ) as Rgb;
  });
}

/**
 * Resampling as per-image matrices: a resized crop (with optional horizontal flip) and a Gaussian
 * blur are both separable linear maps, out = Ry . X . Rx^T for each image and channel, so a whole
 * batch with different crops / sigmas per image is two batched matMuls on any backend.
 *
 * Weights follow PyTorch exactly: `F.interpolate(mode='bilinear' | 'bicubic', align_corners=False)`
 * (with `antialias=True` the filters widened by the downscale factor, as PIL and
 * `torchvision.transforms.functional.resized_crop(..., antialias=True)`), and torchvision's
 * tensor `gaussian_blur` (kernel from linspace(-(k-1)/2, (k-1)/2), reflect padding).
 * The matrices are built in JavaScript: O(B * S * H) numbers, never a per-pixel loop.
 */
import * as tf from '@tensorflow/tfjs';
import { CropBox } from './sampleParams';

/** Resampling filter of a resized crop. */
export type Interpolation = 'bilinear' | 'bicubic';

/** PyTorch's cubic convolution coefficient for |x| < 1 and 1 <= |x| < 2 (Keys, parameter a). */
function cubic(x: number, a: number): number {
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/**
 * Writes the [outSize, inSize] matrix (row-major, at `offset`) that resizes the segment
 * [start, start + len) of an axis of length inSize to outSize samples at half-pixel centres
 * (align_corners=False). `flip` reverses the output order (a horizontal flip after the crop).
 * - bilinear: `upsample_bilinear2d` (source index clamped at 0, neighbour clamped at the edge);
 *   with antialias, PyTorch's `_upsample_bilinear2d_aa` / PIL: a triangle filter widened by the
 *   downscale factor and renormalised (identical to plain bilinear when enlarging).
 * - bicubic: `upsample_bicubic2d` (Keys a = -0.75, indices clamped at the edges); with antialias,
 *   `_upsample_bicubic2d_aa` / PIL (a = -0.5, widened when shrinking, renormalised at the edges).
 */
export function fillResizeMatrix(
  m: Float32Array,
  offset: number,
  outSize: number,
  inSize: number,
  start: number,
  len: number,
  antialias: boolean,
  flip: boolean,
  interpolation: Interpolation = 'bilinear',
): void {
  if (!(len >= 1 && start >= 0 && start + len <= inSize)) {
    throw new Error(`resize: segment [${start}, ${start + len}) does not fit in an axis of ${inSize}`);
  }
  if (interpolation !== 'bilinear' && interpolation !== 'bicubic')
    throw new Error(`resize: interpolation must be 'bilinear' or 'bicubic', got ${String(interpolation)}`);
  const scale = len / outSize;
  const cubicAa = interpolation === 'bicubic';
  for (let k = 0; k < outSize; k++) {
    const row = offset + (flip ? outSize - 1 - k : k) * inSize;
    for (let j = 0; j < inSize; j++) m[row + j] = 0;
    if (antialias && (scale > 1 || cubicAa)) {
      // Separable antialiased filter (PIL's ImagingResample, PyTorch's *_aa kernels), renormalised.
      const halfTaps = cubicAa ? 2 : 1;
      const support = halfTaps * Math.max(scale, 1);
      const inv = scale >= 1 ? 1 / scale : 1;
      const filter = (x: number) => (cubicAa ? cubic(x, -0.5) : Math.max(0, 1 - Math.abs(x)));
      const center = scale * (k + 0.5);
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xmax = Math.min(Math.trunc(center + support + 0.5), len);
      let total = 0;
      for (let j = xmin; j < xmax; j++) total += filter((j - center + 0.5) * inv);
      for (let j = xmin; j < xmax; j++)
        m[row + start + j] += total !== 0 ? filter((j - center + 0.5) * inv) / total : 0;
    } else if (interpolation === 'bicubic') {
      // upsample_bicubic2d, align_corners=False: unclamped source position, taps clamped to the segment.
      const src = scale * (k + 0.5) - 0.5;
      const i0 = Math.floor(src);
      const t = src - i0;
      const w = [cubic(t + 1, -0.75), cubic(t, -0.75), cubic(1 - t, -0.75), cubic(2 - t, -0.75)];
      for (let tap = 0; tap < 4; tap++) {
        const j = Math.min(Math.max(i0 - 1 + tap, 0), len - 1);
        m[row + start + j] += w[tap];
      }
    } else {
      // upsample_bilinear2d, align_corners=False: source index clamped at 0, neighbour at the edge.
      const src = Math.max(scale * (k + 0.5) - 0.5, 0);
      const i0 = Math.trunc(src);
      const i1 = i0 < len - 1 ? i0 + 1 : i0;
      const l1 = src - i0;
      m[row + start + i0] += 1 - l1;
      m[row + start + i1] += l1;
    }
  }
}

/** torchvision `_get_gaussian_kernel1d`: normalised exp(-x^2 / (2 sigma^2)) on x = -(k-1)/2 .. (k-1)/2. */
export function gaussianKernel1d(kernelSize: number, sigma: number): Float64Array {
  if (!(Number.isInteger(kernelSize) && kernelSize >= 1 && kernelSize % 2 === 1))
    throw new Error(`gaussian blur: kernelSize must be a positive odd integer, got ${kernelSize}`);
  if (!(sigma > 0)) throw new Error(`gaussian blur: sigma must be > 0, got ${sigma}`);
  const half = (kernelSize - 1) / 2;
  const k = new Float64Array(kernelSize);
  let sum = 0;
  for (let t = 0; t < kernelSize; t++) {
    const x = t - half;
    k[t] = Math.exp(-0.5 * (x / sigma) * (x / sigma));
    sum += k[t];
  }
  for (let t = 0; t < kernelSize; t++) k[t] /= sum;
  return k;
}

/**
 * Writes the [size, size] matrix of a 1-D Gaussian blur with reflect padding (torch 'reflect':
 * index -1 -> 1, size -> size - 2). sigma <= 0 writes the identity (blur not applied).
 */
export function fillBlurMatrix(m: Float32Array, offset: number, size: number, kernelSize: number, sigma: number): void {
  const half = (kernelSize - 1) / 2;
  if (half >= size)
    throw new Error(`gaussian blur: kernelSize ${kernelSize} needs images larger than ${half} pixels (got ${size})`);
  for (let i = 0; i < size * size; i++) m[offset + i] = 0;
  if (!(sigma > 0)) {
    for (let i = 0; i < size; i++) m[offset + i * size + i] = 1;
    return;
  }
  const k = gaussianKernel1d(kernelSize, sigma);
  for (let i = 0; i < size; i++) {
    for (let t = 0; t < kernelSize; t++) {
      let j = i + t - half;
      if (j < 0) j = -j;
      if (j > size - 1) j = 2 * (size - 1) - j;
      m[offset + i * size + j] += k[t];
    }
  }
}

/** Row and column resize matrices of a batch of crops: ry [B, outH, inH], rx [B, outW, inW]. */
export function cropMatrices(
  boxes: readonly CropBox[],
  flips: readonly boolean[],
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  antialias: boolean,
  interpolation: Interpolation = 'bilinear',
): { ry: Float32Array; rx: Float32Array } {
  const b = boxes.length;
  const ry = new Float32Array(b * outH * inH);
  const rx = new Float32Array(b * outW * inW);
  for (let i = 0; i < b; i++) {
    const c = boxes[i];
    fillResizeMatrix(ry, i * outH * inH, outH, inH, c.top, c.height, antialias, false, interpolation);
    fillResizeMatrix(rx, i * outW * inW, outW, inW, c.left, c.width, antialias, flips[i], interpolation);
  }
  return { ry, rx };
}

/** Blur matrices of a batch [B, size, size] (identity where sigma <= 0). */
export function blurMatrices(sigmas: readonly number[], size: number, kernelSize: number): Float32Array {
  const m = new Float32Array(sigmas.length * size * size);
  for (let i = 0; i < sigmas.length; i++) fillBlurMatrix(m, i * size * size, size, kernelSize, sigmas[i]);
  return m;
}

/** Repeats a stack of matrices `times` times: [B, ...] -> [times * B, ...] (cheaper in JS than `tf.tile` on wasm). */
export function repeatMatrices(m: Float32Array, times: number): Float32Array {
  const out = new Float32Array(m.length * times);
  for (let t = 0; t < times; t++) out.set(m, t * m.length);
  return out;
}

/**
 * Applies per-image separable maps to a channel-major batch: x [C, B, H, W], ry [B, S1, H] or
 * [C*B, S1, H], rx [B, S2, W] or [C*B, S2, W] -> [C, B, S1, S2]. Two batched matMuls over C*B matrices.
 * Matrices given per image are tiled over C rather than broadcast: tfjs 4.22's matMul flattens
 * multi-axis batch dimensions before broadcasting, so [1, B, S, H] x [C, B, H, W] silently pairs the
 * wrong matrices. Pass them pre-tiled (`repeatMatrices`) to skip the device-side tile.
 */
export function applySeparable(x: tf.Tensor4D, ry: tf.Tensor3D, rx: tf.Tensor3D): tf.Tensor4D {
  const [c, b, h, w] = x.shape;
  const okBatch = (m: tf.Tensor3D) => m.shape[0] === b || m.shape[0] === c * b;
  if (!okBatch(ry) || !okBatch(rx) || ry.shape[2] !== h || rx.shape[2] !== w) {
    throw new Error(
      `applySeparable: x [${x.shape}] (channel-major [C, B, H, W]) needs ry [${b} or ${c * b}, S1, ${h}] and rx [${b} or ${c * b}, S2, ${w}], got ry [${ry.shape}], rx [${rx.shape}]`,
    );
  }
  const s1 = ry.shape[1];
  const s2 = rx.shape[1];
  return tf.tidy(() => {
    const perChannel = (m: tf.Tensor3D, rows: number, cols: number) =>
      m.shape[0] === c * b
        ? m
        : (tf.reshape(tf.tile(tf.expandDims(m, 0), [c, 1, 1, 1]), [c * b, rows, cols]) as tf.Tensor3D); // [C*B, rows, cols]
    const xs = tf.reshape(x, [c * b, h, w]) as tf.Tensor3D; // [C*B, H, W]
    const rowsOut = tf.matMul(perChannel(ry, s1, h), xs); // [C*B, S1, W]
    const out = tf.matMul(rowsOut, perChannel(rx, s2, w), false, true); // [C*B, S1, S2]
    return tf.reshape(out, [c, b, s1, s2]) as tf.Tensor4D;
  });
}

/**
 * Gradients of `Sum` and `Mean` that keep the broadcast on the device.
 *
 * tfjs-core 4.22 computes both as `dy * ones(x.shape)` (Mean then divides by the reduced size),
 * where `ones` fills a typed array of x's full size in JavaScript and uploads it. On WebGPU that
 * is a CPU fill, a fresh mapped GPU buffer and a copy for every batch-norm statistic in the
 * backward pass: on an H100 it took about 5.4 s of a 6.6 s ResNet-18 Barlow Twins step at batch
 * 256 (a Node CPU profile of bench/gpu.ts: `makeOnesTypedArray`, `createBuffer`, `uploadToGPU`),
 * while the GPU itself was busy for about 1 s.
 *
 * Ours build the same tensor with the backend's `Fill` kernel (a GPU program on WebGPU, native on
 * wasm): Sum as `dy * fill(1)`, Mean as `dy / fill(n)` (no scalar upload either), whose values
 * are bit-identical to the stock `dy * ones` and `(dy * ones) / n`. Gradients are global in tfjs (not per backend): this
 * applies to every backend, which all gain or stay equal.
 */
import * as tf from '@tensorflow/tfjs';

/** dy reshaped so it broadcasts against x (reduced axes kept as size 1). */
function expandDy(dy: tf.Tensor, x: tf.Tensor, axis: unknown): tf.Tensor {
  const shape = x.shape.slice();
  for (const a of tf.util.parseAxisParam(axis as number | number[], x.shape)) shape[a] = 1;
  return tf.reshape(dy, shape);
}

export const sumGradConfig: tf.GradConfig = {
  kernelName: 'Sum',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const d = Array.isArray(dy) ? dy[0] : dy;
    return { x: () => tf.mul(expandDy(d, x, attrs.axis), tf.fill(x.shape, 1, 'float32')) };
  },
};

export const meanGradConfig: tf.GradConfig = {
  kernelName: 'Mean',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const d = Array.isArray(dy) ? dy[0] : dy;
    const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
    const n = axes.reduce((p, a) => p * x.shape[a], 1);
    // dy / fill(n) broadcasts dy and divides in one kernel; the values equal the stock (dy * 1) / n.
    return { x: () => tf.div(expandDy(d, x, attrs.axis), tf.fill(x.shape, n, 'float32')) };
  },
};

let done = false;

/** Registers our Sum/Mean gradients (once; later calls do nothing). */
export function registerGradients(): string[] {
  if (!done) {
    tf.registerGradient(sumGradConfig);
    tf.registerGradient(meanGradConfig);
    done = true;
  }
  return ['Sum', 'Mean'];
}

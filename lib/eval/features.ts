/**
 * Frozen-encoder feature extraction: the backbone runs in inference mode (batch norm uses its
 * running statistics, no statistics are updated), one pass over the images, batched, with an
 * optional progress callback. Returns features in host memory [n, F].
 */
import * as tf from '@tensorflow/tfjs';
import { Backbone } from '../nn/module';
import { ParamStore } from '../nn/params';
import { evalImages, CIFAR10_IMAGE_SIZE, type RawImageSize } from '../augment/index';
import { InterruptedError, openInterruptScope } from '../train/interrupt';

export interface ExtractOptions {
  /** Images per forward pass. Default 256. */
  batchSize?: number;
  /** Parameter-name prefix of the backbone in `ps`. Default 'backbone.'. */
  prefix?: string;
  /** Called after each batch with (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Height and width of the images. Default 32 x 32 (CIFAR-10); image folders give theirs (`imageSizeOf(split)`). */
  size?: RawImageSize;
}

/** The image size of a split (lib/data splits carry height and width; CIFAR-10's may leave them out: 32). */
export function imageSizeOf(set: { height?: number; width?: number }): RawImageSize {
  return { height: set.height ?? CIFAR10_IMAGE_SIZE.height, width: set.width ?? CIFAR10_IMAGE_SIZE.width };
}

/** images: uint8 NHWC [n, height, width, 3] (`opts.size`, default 32 x 32). Returns a Float32Array [n * featureDim]. */
export async function extractFeatures(
  backbone: Backbone,
  ps: ParamStore,
  images: Uint8Array,
  n: number,
  opts: ExtractOptions = {},
): Promise<Float32Array> {
  const size = opts.size ?? CIFAR10_IMAGE_SIZE;
  const per = size.height * size.width * 3;
  if (images.length !== n * per)
    throw new Error(
      `extractFeatures: expected ${n} images of ${size.height}x${size.width}x3 (${n * per} bytes), got ${images.length}`,
    );
  const bs = opts.batchSize ?? 256;
  const prefix = opts.prefix ?? 'backbone.';
  const out = new Float32Array(n * backbone.featureDim);
  // An interrupt (Ctrl-C, Kernel > Interrupt) stops the extraction between batches.
  const stop = openInterruptScope('feature extraction');
  try {
    for (let i = 0; i < n; i += bs) {
      if (await stop.poll())
        throw new InterruptedError(`feature extraction interrupted after ${i} of ${n} images; nothing was kept`);
      const m = Math.min(bs, n - i);
      const f = tf.tidy(() =>
        backbone.forward(ps, evalImages(images.subarray(i * per, (i + m) * per), size), { training: false }, prefix),
      );
      out.set((await f.data()) as Float32Array, i * backbone.featureDim);
      f.dispose();
      opts.onProgress?.(i + m, n);
    }
  } finally {
    stop.close();
  }
  return out;
}

/**
 * Image batches as float tensors, and the CIFAR-10 per-channel normalisation applied as the last
 * step of every view (and to evaluation images, which get no other augmentation).
 * Constants as in solo-learn / the common CIFAR-10 recipes (torchvision `Normalize(mean, std)`).
 */
import * as tf from '@tensorflow/tfjs';

/** CIFAR-10 per-channel mean (R, G, B) of images in [0, 1]. */
export const CIFAR10_MEAN: readonly [number, number, number] = Object.freeze([0.4914, 0.4822, 0.4465]) as readonly [
  number,
  number,
  number,
];
/** CIFAR-10 per-channel standard deviation (R, G, B) of images in [0, 1]. */
export const CIFAR10_STD: readonly [number, number, number] = Object.freeze([0.247, 0.2435, 0.2616]) as readonly [
  number,
  number,
  number,
];

/** A batch of RGB images: raw uint8 NHWC bytes (as the data layer yields them) or a float tensor in [0, 1]. */
export type ImageBatch = Uint8Array | tf.Tensor4D;

/** Height and width of the images in a raw uint8 batch. */
export interface RawImageSize {
  /** Image height in pixels. Default 32 (CIFAR-10). */
  height: number;
  /** Image width in pixels. Default 32 (CIFAR-10). */
  width: number;
}

export const CIFAR10_IMAGE_SIZE: Readonly<RawImageSize> = Object.freeze({ height: 32, width: 32 });

/** Number of images in a batch, checking that a raw batch is a whole number of H x W x 3 images. */
export function batchSize(images: ImageBatch, size: RawImageSize = CIFAR10_IMAGE_SIZE): number {
  if (images instanceof Uint8Array) {
    const per = size.height * size.width * 3;
    if (images.length === 0 || images.length % per !== 0) {
      throw new Error(
        `images: a Uint8Array of ${images.length} bytes is not a whole number of ${size.height}x${size.width}x3 images`,
      );
    }
    return images.length / per;
  }
  if (!(images instanceof tf.Tensor) || images.rank !== 4 || images.shape[3] !== 3) {
    const shape = images instanceof tf.Tensor ? `[${images.shape.join(', ')}]` : typeof images;
    throw new Error(`images: expected a Uint8Array or a tf.Tensor4D [B, H, W, 3] in [0, 1], got ${shape}`);
  }
  return images.shape[0];
}

/**
 * Images as float32 NHWC in [0, 1]: a uint8 batch is divided by 255; a float tensor is returned as a
 * new tensor (cast to float32), so the caller always owns the result and disposes it.
 */
export function toFloatImages(images: ImageBatch, size: RawImageSize = CIFAR10_IMAGE_SIZE): tf.Tensor4D {
  const b = batchSize(images, size);
  return tf.tidy(() => {
    if (images instanceof Uint8Array) {
      const x = tf.tensor4d(Int32Array.from(images), [b, size.height, size.width, 3], 'int32'); // [B, H, W, 3]
      return tf.div(tf.cast(x, 'float32'), 255) as tf.Tensor4D;
    }
    return tf.cast(images, 'float32').clone() as tf.Tensor4D;
  });
}

/** (x - mean) / std per channel; x is [..., 3] in [0, 1]. */
export function normalize<T extends tf.Tensor>(
  x: T,
  mean: readonly number[] = CIFAR10_MEAN,
  std: readonly number[] = CIFAR10_STD,
): T {
  if (x.shape[x.rank - 1] !== 3 || mean.length !== 3 || std.length !== 3) {
    throw new Error(`normalize: expected [..., 3] images and 3-element mean/std, got shape [${x.shape.join(', ')}]`);
  }
  return tf.tidy(() => tf.div(tf.sub(x, tf.tensor1d(mean as number[])), tf.tensor1d(std as number[]))) as T;
}

/** Evaluation input: float [B, H, W, 3], normalised, no augmentation. Caller disposes. */
export function evalImages(images: ImageBatch, size: RawImageSize = CIFAR10_IMAGE_SIZE): tf.Tensor4D {
  return tf.tidy(() => normalize(toFloatImages(images, size)));
}

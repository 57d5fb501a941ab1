/**
 * The CIFAR-10 binary format (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images";
 * layout as documented at https://www.cs.toronto.edu/~kriz/cifar.html, "binary version").
 *
 * Each record is 3,073 bytes: one label byte (0-9), then 1,024 red, 1,024 green and 1,024 blue bytes,
 * each plane row-major 32x32. We store images interleaved (NHWC) as the rest of dinotwins expects.
 */
import { DataError } from './errors';

export const IMAGE_SIZE = 32;
export const CHANNELS = 3;
/** Bytes of one image: 32 * 32 * 3. */
export const PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE * CHANNELS;
/** One label byte followed by the planar pixels. */
export const RECORD_BYTES = 1 + PIXELS_PER_IMAGE;
export const NUM_CLASSES = 10;
/** Records in each official batch file. */
export const OFFICIAL_RECORDS_PER_BATCH = 10_000;

/** The folder inside the official tarball. */
export const BATCHES_DIR = 'cifar-10-batches-bin';
export const TRAIN_FILES = Object.freeze([
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
] as const);
export const TEST_FILE = 'test_batch.bin';
export const BATCH_FILES = Object.freeze([...TRAIN_FILES, TEST_FILE] as const);
export type BatchFile = (typeof BATCH_FILES)[number];
export const META_FILE = 'batches.meta.txt';

/** The official download (binary version). */
export const OFFICIAL_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
/** File name of the tarball in the cache. */
export const TARBALL_NAME = 'cifar-10-binary.tar.gz';

/** Official per-file MD5s of the binary batches (identical in every public copy we checked). */
export const OFFICIAL_MD5: Readonly<Record<BatchFile, string>> = Object.freeze({
  'data_batch_1.bin': '5dd7e06a14cb22eb9f671a540d1b7c25',
  'data_batch_2.bin': '5ea93a67294ea407fff1d09f752e9692',
  'data_batch_3.bin': '942cd6a4bcdd0dd3c604fbe906cb4421',
  'data_batch_4.bin': 'ae636b3ba5c66a11e91e8cb52e771fcb',
  'data_batch_5.bin': '53f37980c15c3d472c316c40844f3f0d',
  'test_batch.bin': '803d5f7f4d78ea53de84dbe85f74fb6d',
});
/** Official size of each batch file: 10,000 records of 3,073 bytes. */
export const OFFICIAL_BATCH_BYTES = OFFICIAL_RECORDS_PER_BATCH * RECORD_BYTES;

/**
 * A set of labelled images. `images` is NHWC uint8 [n, height, width, 3] (32 x 32 for CIFAR-10);
 * `labels` [n] in 0..numClasses-1 (0..9 for CIFAR-10).
 */
export interface Split {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  /** Image height and width in pixels. Default IMAGE_SIZE (32), CIFAR-10; image folders set them. */
  height?: number;
  width?: number;
  /** How many classes the labels range over. Default NUM_CLASSES (10), CIFAR-10; image folders set it. */
  numClasses?: number;
}

/** Bytes of one image of `split`: height * width * 3 (3,072 for CIFAR-10). */
export function imageBytes(split: Pick<Split, 'height' | 'width'>): number {
  return (split.height ?? IMAGE_SIZE) * (split.width ?? IMAGE_SIZE) * CHANNELS;
}

/**
 * Converts `n` planar records of `buf` (starting at byte 0) into `images` / `labels` at row `row0`.
 * Throws a DataError naming `file` and the record on a label byte > 9.
 */
export function decodeRecords(buf: Uint8Array, n: number, into: Split, row0: number, file: string): void {
  if (buf.length < n * RECORD_BYTES) {
    throw new DataError('size', `${file}: ${buf.length} bytes cannot hold ${n} records of ${RECORD_BYTES} bytes`, {
      file,
      expected: `${n * RECORD_BYTES}`,
      actual: `${buf.length}`,
    });
  }
  if (row0 + n > into.n) throw new Error(`decodeRecords: rows ${row0}..${row0 + n} exceed the split's ${into.n} rows`);
  const plane = IMAGE_SIZE * IMAGE_SIZE; // 1024
  const { images, labels } = into;
  for (let r = 0; r < n; r++) {
    const s = r * RECORD_BYTES;
    const label = buf[s];
    if (label >= NUM_CLASSES) {
      throw new DataError(
        'layout',
        `${file}: record ${r} (byte offset ${s}) has label byte ${label}, expected 0-9; the file is not in the CIFAR-10 binary layout or is corrupt`,
        {
          file,
          expected: 'label byte 0-9',
          actual: `${label}`,
        },
      );
    }
    labels[row0 + r] = label;
    const rOff = s + 1;
    const gOff = rOff + plane;
    const bOff = gOff + plane;
    let o = (row0 + r) * PIXELS_PER_IMAGE; // NHWC: pixel p of the image at o + 3p
    for (let p = 0; p < plane; p++, o += 3) {
      images[o] = buf[rOff + p];
      images[o + 1] = buf[gOff + p];
      images[o + 2] = buf[bOff + p];
    }
  }
}

/** Inverse of `decodeRecords`: one NHWC image and its label into a planar record (used by the fixture writer). */
export function encodeRecord(image: Uint8Array, label: number, out: Uint8Array, offset: number): void {
  if (image.length !== PIXELS_PER_IMAGE)
    throw new Error(`encodeRecord: image has ${image.length} bytes, expected ${PIXELS_PER_IMAGE}`);
  if (!Number.isInteger(label) || label < 0 || label > 255)
    throw new Error(`encodeRecord: label ${label} is not a byte`);
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  out[offset] = label;
  for (let p = 0; p < plane; p++) {
    out[offset + 1 + p] = image[3 * p];
    out[offset + 1 + plane + p] = image[3 * p + 1];
    out[offset + 1 + 2 * plane + p] = image[3 * p + 2];
  }
}

/** Class names from `batches.meta.txt`: one per line in label order; empty lines (the file ends with one) are ignored. */
export function parseMeta(text: string, file: string): string[] {
  const names = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (names.length !== NUM_CLASSES) {
    throw new DataError(
      'layout',
      `${file}: expected ${NUM_CLASSES} class names (one per line), found ${names.length}${names.length ? `: ${names.join(', ')}` : ''}`,
      {
        file,
        expected: `${NUM_CLASSES} names`,
        actual: `${names.length}`,
      },
    );
  }
  return names;
}

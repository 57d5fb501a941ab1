/**
 * A look at a data set before training on it: the first images of each class (one row per class,
 * captioned with the class), or the first images of an unlabelled set. Images are uint8 NHWC
 * [n, height, width, 3], as the data layer gives them (CIFAR-10, image folders).
 */
import { imageGrid, type ImageGridResult, type ImageInput } from './images';

/** Images with their size and, when they have any, labels. */
export interface GalleryImages {
  images: Uint8Array;
  n: number;
  /** Default 32 (CIFAR-10). */
  height?: number;
  width?: number;
  labels?: ArrayLike<number>;
}

export interface GalleryOptions {
  /** Class names in label order (not read without labels). */
  classNames: readonly string[];
  /** Images per class (per row); without labels, images per row. */
  perRow: number;
  /** Rows without labels. */
  rows: number;
  title: string;
  /** Integer upscaling. */
  scale: number;
  /** Display in the notebook when running in tslab. */
  display: boolean;
}

export const DEFAULT_GALLERY_OPTIONS: Readonly<Omit<GalleryOptions, 'classNames'>> = Object.freeze({
  perRow: 8,
  rows: 4,
  title: '',
  scale: 2,
  display: true,
});

/** The first `perRow` images of each class in label order (or the first `rows` x `perRow` images without labels), as one grid. */
export function gallery(set: GalleryImages, options: Partial<GalleryOptions> = {}): ImageGridResult {
  const o = { ...DEFAULT_GALLERY_OPTIONS, classNames: [] as readonly string[], ...options };
  if (!Number.isInteger(o.perRow) || o.perRow < 1 || !Number.isInteger(o.rows) || o.rows < 1)
    throw new Error(`gallery: perRow and rows must be positive integers, got ${o.perRow} and ${o.rows}`);
  const h = set.height ?? 32;
  const w = set.width ?? 32;
  const per = h * w * 3;
  if (set.images.length !== set.n * per)
    throw new Error(`gallery: ${set.images.length} bytes for ${set.n} images of ${h}x${w}x3`);
  const image = (i: number): ImageInput => ({
    data: set.images.subarray(i * per, (i + 1) * per),
    height: h,
    width: w,
    channels: 3,
  });
  const images: ImageInput[] = [];
  const captions: string[] = [];
  const labels = set.labels;
  if (labels === undefined) {
    for (let i = 0; i < Math.min(set.n, o.rows * o.perRow); i++) {
      images.push(image(i));
      captions.push(`#${i}`);
    }
  } else {
    const classes = Math.max(o.classNames.length, ...Array.from(labels, (l) => l + 1));
    for (let c = 0; c < classes; c++) {
      const rows: number[] = [];
      for (let i = 0; i < set.n && rows.length < o.perRow; i++) if (labels[i] === c) rows.push(i);
      for (const i of rows) {
        images.push(image(i));
        captions.push(o.classNames[c] ?? String(c));
      }
      // A class with fewer than perRow images: blank tiles keep one class per row.
      for (let k = rows.length; k < o.perRow && rows.length > 0; k++) {
        images.push({ data: new Uint8Array(per).fill(255), height: h, width: w, channels: 3 });
        captions.push('');
      }
    }
  }
  if (images.length === 0) throw new Error('gallery: no images to show');
  return imageGrid(images, {
    cols: o.perRow,
    labels: captions,
    title: o.title,
    scale: o.scale,
    display: o.display,
    range: [0, 255],
  });
}

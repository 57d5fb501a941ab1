/**
 * A ViT's CLS-token attention shown over its images, as in DINO's figure (Caron et al., 2021,
 * fig. 1): the images in one row, then one row per image with each head's map blended over it.
 * The maps come from lib/eval/analysis.ts `clsAttentionMaps` ([image][head] grids of patches).
 */
import { imageGrid, type ImageGridResult, type ImageInput } from './images';

/** Attention maps: per image, per head, `grid` x `grid` values. */
export interface AttentionMaps {
  maps: ReadonlyArray<ReadonlyArray<ArrayLike<number>>>;
  grid: number;
  heads: number;
}

export interface AttentionGridOptions {
  /** Integer upscaling of the images. */
  scale: number;
  /** Opacity of the maps over the images. */
  alpha: number;
  /** Vega colour scheme of the maps. */
  colormap: string;
  /** Image height and width (default 32, CIFAR-10). */
  size: number;
  /** Title of the row of images (say which split they come from). */
  imagesTitle: string;
  /** Display in the notebook when running in tslab. */
  display: boolean;
}

export const DEFAULT_ATTENTION_GRID_OPTIONS: Readonly<AttentionGridOptions> = Object.freeze({
  scale: 3,
  alpha: 0.6,
  colormap: 'inferno',
  size: 32,
  imagesTitle: 'images',
  display: true,
});

/**
 * Shows the first `att.maps.length` images of `set` (uint8 NHWC) with their classes, then each
 * head's map over each image (one row per image, captions "<class>, head <h>"; "image <i>, head <h>"
 * for a set without labels, such as an unlabelled image folder).
 */
export function attentionGrids(
  att: AttentionMaps,
  set: { images: Uint8Array; labels?: ArrayLike<number>; n: number },
  classNames: readonly string[],
  options: Partial<AttentionGridOptions> = {},
): { images: ImageGridResult; attention: ImageGridResult } {
  const o = { ...DEFAULT_ATTENTION_GRID_OPTIONS, ...options };
  const n = att.maps.length;
  const per = o.size * o.size * 3;
  if (n === 0) throw new Error('attentionGrids: no attention maps');
  if (n > set.n || set.images.length < n * per) throw new Error(`attentionGrids: ${n} maps for ${set.n} images`);
  const cells = att.grid * att.grid;
  att.maps.forEach((heads, i) => {
    if (heads.length !== att.heads)
      throw new Error(`attentionGrids: image ${i} has ${heads.length} maps, expected ${att.heads} heads`);
    heads.forEach((m, h) => {
      if (m.length !== cells)
        throw new Error(`attentionGrids: map ${i}/${h} has ${m.length} values, expected ${att.grid} x ${att.grid}`);
    });
  });
  const labels = set.labels;
  const name = (i: number) => (labels ? (classNames[labels[i]] ?? String(labels[i])) : `image ${i}`);
  const image = (i: number): ImageInput => ({
    data: set.images.subarray(i * per, (i + 1) * per),
    height: o.size,
    width: o.size,
    channels: 3,
  });
  const originals = Array.from({ length: n }, (_, i) => image(i));
  const shown = imageGrid(originals, {
    cols: n,
    scale: o.scale,
    labels: originals.map((_, i) => name(i)),
    title: o.imagesTitle,
    display: o.display,
  });
  const imgs: ImageInput[] = [];
  const overlays: Array<{ data: ArrayLike<number>; height: number; width: number }> = [];
  const captions: string[] = [];
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < att.heads; h++) {
      imgs.push(image(i));
      overlays.push({ data: att.maps[i][h], height: att.grid, width: att.grid });
      captions.push(`${name(i)}, head ${h}`);
    }
  }
  const attention = imageGrid(imgs, {
    cols: att.heads,
    scale: o.scale,
    overlays,
    overlayAlpha: o.alpha,
    colormap: o.colormap,
    labels: captions,
    title: 'CLS attention of each head (last block), one row per image',
    display: o.display,
  });
  return { images: shown, attention };
}

/** Summary statistics of a split, for checks and reports: per-class counts and per-channel mean/std in [0, 1]. */
import { NUM_CLASSES, imageBytes, type Split } from './format';

/** Rows per label 0..numClasses-1 (default: the split's numClasses, else 10). */
export function classCounts(
  split: { labels: ArrayLike<number>; n: number; numClasses?: number },
  numClasses = split.numClasses ?? NUM_CLASSES,
): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < split.n; i++) {
    const y = split.labels[i];
    if (!(y >= 0 && y < numClasses))
      throw new Error(`classCounts: label ${y} at row ${i} is outside [0, ${numClasses})`);
    counts[y]++;
  }
  return counts;
}

/**
 * Images per class in each of several splits, one row per class: `{ class, <split>: count, ... }`
 * (e.g. `classCountTable({ train, val, test }, classNames)`), for the class-balance table. A split
 * without labels (an unlabelled image folder) counts 0 in every class row and its images in one
 * last row, `(no labels)`, present only when some split has no labels.
 */
export function classCountTable(
  splits: Readonly<Record<string, { n: number; labels?: ArrayLike<number> }>>,
  classNames: readonly string[],
): Array<Record<string, string | number>> {
  const names = Object.keys(splits);
  if (names.length === 0) throw new Error('classCountTable: no splits given');
  if (names.includes('class')) throw new Error('classCountTable: a split may not be named "class" (the first column)');
  const counts = names.map((n) => {
    const labels = splits[n].labels;
    return labels ? classCounts({ labels, n: splits[n].n }, classNames.length) : null;
  });
  const rows = classNames.map((name, c) =>
    Object.fromEntries([['class', name], ...names.map((n, k) => [n, counts[k]?.[c] ?? 0])]),
  );
  if (counts.some((c) => c === null))
    rows.push(Object.fromEntries([['class', '(no labels)'], ...names.map((n, k) => [n, counts[k] ? 0 : splits[n].n])]));
  return rows;
}

export interface ChannelStats {
  /** R, G, B means of pixel/255. */
  mean: [number, number, number];
  /** R, G, B population standard deviations of pixel/255. */
  std: [number, number, number];
}

/** Per-channel mean and std over all pixels of the split (exact integer sums, so the order does not matter). */
export function channelStats(split: Pick<Split, 'images' | 'n' | 'height' | 'width'>): ChannelStats {
  if (split.images.length !== split.n * imageBytes(split))
    throw new Error(`channelStats: ${split.images.length} image bytes for n=${split.n} of ${imageBytes(split)} bytes`);
  if (split.n === 0) throw new Error('channelStats: empty split');
  // Histograms keep the sums exact and the loop cheap: 256 bins per channel.
  const hist = [new Float64Array(256), new Float64Array(256), new Float64Array(256)];
  const [h0, h1, h2] = hist;
  const px = split.images;
  for (let i = 0; i < px.length; i += 3) {
    h0[px[i]]++;
    h1[px[i + 1]]++;
    h2[px[i + 2]]++;
  }
  const count = px.length / 3;
  const mean = [0, 0, 0] as [number, number, number];
  const std = [0, 0, 0] as [number, number, number];
  hist.forEach((h, c) => {
    let s = 0;
    let s2 = 0;
    for (let v = 0; v < 256; v++) {
      s += h[v] * v;
      s2 += h[v] * v * v;
    }
    const m = s / count;
    mean[c] = m / 255;
    std[c] = Math.sqrt(Math.max(0, s2 / count - m * m)) / 255;
  });
  return { mean, std };
}

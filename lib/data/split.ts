/**
 * Deterministic, seeded subsets of a labelled split (uses lib/util/rng.ts, so a seed gives the same
 * rows on every machine and backend).
 *
 * Protocol: validation comes from the training set only (`trainValSplit`); the test split is kept
 * for the final report. Splits loaded by `loadCifar10` carry `role`, and `trainValSplit` refuses a
 * split whose role is 'test', so test images cannot leak into model selection by accident.
 */
import { Rng, deriveSeed } from '../util/rng';
import { NUM_CLASSES, imageBytes, type Split } from './format';

/** Which part of the protocol a split belongs to. */
export type SplitRole = 'train' | 'val' | 'test';

/** A split that may say where it came from. */
export interface LabelledSplit extends Split {
  /** 'train' / 'test' from the loader, 'val' from trainValSplit; subsets keep their parent's role. */
  role?: SplitRole;
}

/** A subset with the row numbers (into its parent) it was taken from, ascending. */
export interface Subset extends LabelledSplit {
  indices: Int32Array;
}

function checkSplit(split: Split, fn: string): void {
  if (!split || !(split.images instanceof Uint8Array) || !split.labels)
    throw new Error(`${fn}: expected a split {images: Uint8Array, labels, n}, got ${typeof split}`);
  const per = imageBytes(split);
  if (split.images.length !== split.n * per)
    throw new Error(`${fn}: split has ${split.images.length} image bytes for n=${split.n} (expected n*${per})`);
  if (split.labels.length !== split.n)
    throw new Error(`${fn}: split has ${split.labels.length} labels for n=${split.n}`);
}

/** The size and class count of `split`, to carry over to a subset (only the fields it sets). */
function shapeOf(split: Split): Pick<Split, 'height' | 'width' | 'numClasses'> {
  const out: Pick<Split, 'height' | 'width' | 'numClasses'> = {};
  if (split.height !== undefined) out.height = split.height;
  if (split.width !== undefined) out.width = split.width;
  if (split.numClasses !== undefined) out.numClasses = split.numClasses;
  return out;
}

/** Copies rows `indices` (any order, repeats allowed) of `split` into a new split (same image size and class count). */
export function take(split: LabelledSplit, indices: ArrayLike<number>): Subset {
  checkSplit(split, 'take');
  const n = indices.length;
  const per = imageBytes(split); // bytes of one image
  const images = new Uint8Array(n * per);
  const labels = new Uint8Array(n);
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i];
    if (!Number.isInteger(j) || j < 0 || j >= split.n)
      throw new Error(`take: index ${j} at position ${i} is outside [0, ${split.n})`);
    idx[i] = j;
    images.set(split.images.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = split.labels[j];
  }
  return { images, labels, n, indices: idx, ...shapeOf(split), ...(split.role ? { role: split.role } : {}) };
}

/** Row numbers of each class, ascending: result[c] lists the rows with label c. Default numClasses: the split's, else 10. */
export function indicesByClass(split: Split, numClasses = split.numClasses ?? NUM_CLASSES): number[][] {
  const out: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < split.n; i++) {
    const y = split.labels[i];
    if (!(y >= 0 && y < numClasses))
      throw new Error(`indicesByClass: label ${y} at row ${i} is outside [0, ${numClasses})`);
    out[y].push(i);
  }
  return out;
}

/** For each class, `count(c)` rows drawn without replacement with the class's own stream of `seed`; returns [chosen, rest] ascending. */
function drawPerClass(
  split: Split,
  count: (c: number, available: number) => number,
  seed: number,
  fn: string,
): [Int32Array, Int32Array] {
  const chosen: number[] = [];
  const rest: number[] = [];
  const byClass = indicesByClass(split);
  byClass.forEach((rows, c) => {
    const k = count(c, rows.length);
    if (k > rows.length) throw new Error(`${fn}: class ${c} has ${rows.length} rows, fewer than the ${k} asked for`);
    const perm = new Rng(deriveSeed(seed, c)).permutation(rows.length);
    for (let i = 0; i < rows.length; i++) (i < k ? chosen : rest).push(rows[perm[i]]);
  });
  const sorted = (a: number[]) => Int32Array.from(a).sort();
  return [sorted(chosen), sorted(rest)];
}

function checkSeed(seed: number, fn: string): void {
  if (!Number.isInteger(seed)) throw new Error(`${fn}: seed must be an integer, got ${seed}`);
}

/** `perClass` rows of every class (the split's numClasses, 10 by default), chosen by `seed`; rows keep the split's order. Throws if a class has fewer. */
export function balancedSubset(split: LabelledSplit, perClass: number, seed: number): Subset {
  checkSplit(split, 'balancedSubset');
  checkSeed(seed, 'balancedSubset');
  if (!Number.isInteger(perClass) || perClass < 1)
    throw new Error(`balancedSubset: perClass must be a positive integer, got ${perClass}`);
  const [chosen] = drawPerClass(split, () => perClass, deriveSeed(seed, 0x5b5e7), 'balancedSubset');
  return take(split, chosen);
}

export interface TrainValSplit {
  /** The training rows not in `val` (role 'train'). */
  train: Subset;
  /** Class-balanced validation rows (role 'val'). */
  val: Subset;
}

/**
 * Holds out a class-balanced validation set from the training split.
 * `val`: an integer >= 1 is rows per class; a number in (0, 1) is the fraction of each class
 * (rounded to the nearest row, at least one). Train and val are disjoint and together cover `train`.
 */
export function trainValSplit(train: LabelledSplit, val: number, seed: number): TrainValSplit {
  checkSplit(train, 'trainValSplit');
  checkSeed(seed, 'trainValSplit');
  if (train.role === 'test' || train.role === 'val') {
    throw new Error(
      `trainValSplit: got a split with role '${train.role}'; validation must come from the training set (the test set is for the final report only)`,
    );
  }
  const isFraction = val > 0 && val < 1;
  if (!isFraction && !(Number.isInteger(val) && val >= 1))
    throw new Error(`trainValSplit: val must be rows per class (integer >= 1) or a fraction in (0, 1), got ${val}`);
  const count = (c: number, available: number) => (isFraction ? Math.max(1, Math.round(val * available)) : val);
  const [v, t] = drawPerClass(train, count, deriveSeed(seed, 0x7a1), 'trainValSplit');
  if (t.length === 0) throw new Error(`trainValSplit: holding out ${val} per class leaves no training rows`);
  return { train: { ...take(train, t), role: 'train' }, val: { ...take(train, v), role: 'val' } };
}

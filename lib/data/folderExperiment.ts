/**
 * A loaded image folder as an experiment's data (lib/protocol/experiment.ts `loadExperimentData`): the folder's own
 * train/validation/test splits (imageFolderSplit.ts), the budget's training subset taken from its training
 * split, and the run's data identity (source 'folder', the manifest hash, the subset and the split).
 *
 * The subset: a labelled folder gives `trainPerClass` images of each class, class-balanced as for CIFAR-10
 * (capped at the smallest class's training images); an unlabelled folder gives 10 x `trainPerClass` images
 * drawn at random, as many as the budget's CIFAR-10 subset. 0 keeps every training image. Validation and test
 * are the folder's splits as loaded (the budget's CIFAR-10 split sizes do not apply).
 */
import * as path from 'path';
import { deriveSeed, Rng } from '../util/rng';
import { CHANNELS } from './format';
import { balancedSubset, indicesByClass, type Subset } from './split';
import type { DataIdentity } from './dataIdentity';
import type { ImageFolderData, LabelledImageFolder, UnlabelledImageFolderSplit } from './imageFolder';
import type { SplitRole } from './split';

/** An unlabelled folder's subset is this many times the budget's images per class (CIFAR-10's class count). */
export const UNLABELLED_SUBSET_FACTOR = 10;

/** Images without labels: uint8 NHWC [n, height, width, 3], with the folder file of each row. */
export interface UnlabelledImages {
  images: Uint8Array;
  n: number;
  height: number;
  width: number;
  role: SplitRole;
  /** Row numbers in the folder's manifest, ascending. */
  indices: Int32Array;
  files: readonly string[];
  labels?: undefined;
}

/** A labelled split of a folder: a lib/data Subset (kNN, the probe and the subsets take it), with its files. */
export type FolderSubset = Subset & { height: number; width: number; numClasses: number; files: readonly string[] };

interface SelectionBase {
  identity: DataIdentity;
  /** The subset and the splits for run records. */
  protocol: Record<string, unknown>;
}

export interface LabelledFolderSelection extends SelectionBase {
  labelled: true;
  train: FolderSubset;
  val: FolderSubset;
  test: FolderSubset;
}

export interface UnlabelledFolderSelection extends SelectionBase {
  labelled: false;
  train: UnlabelledImages;
  val: UnlabelledImages;
  test: UnlabelledImages;
}

export type FolderSelection = LabelledFolderSelection | UnlabelledFolderSelection;

function labelledSubset(
  f: LabelledImageFolder,
  trainPerClass: number,
  seed: number,
): { train: FolderSubset; perClass: number } {
  const split = f.train;
  const all: FolderSubset = { ...split, role: 'train' };
  if (trainPerClass === 0) return { train: all, perClass: 0 };
  const smallest = Math.min(...indicesByClass(split).map((rows) => rows.length));
  const perClass = Math.min(trainPerClass, smallest);
  if (perClass * f.classNames.length >= split.n) return { train: all, perClass };
  const sub = balancedSubset(split, perClass, seed);
  return {
    train: {
      ...sub,
      height: split.height,
      width: split.width,
      numClasses: split.numClasses,
      role: 'train',
      files: Array.from(sub.indices, (i) => split.files[i]),
    },
    perClass,
  };
}

/** `count` rows of `split` drawn with `seed` (all of them when it has no more), in row order. */
function randomSubset(split: UnlabelledImageFolderSplit, count: number, seed: number): UnlabelledImages {
  const base: UnlabelledImages = {
    images: split.images,
    n: split.n,
    height: split.height,
    width: split.width,
    role: 'train',
    indices: split.indices,
    files: split.files,
  };
  if (count === 0 || count >= split.n) return base;
  const rows = Int32Array.from(new Rng(seed).permutation(split.n).subarray(0, count)).sort();
  const per = split.height * split.width * CHANNELS;
  const images = new Uint8Array(count * per);
  rows.forEach((r, i) => images.set(split.images.subarray(r * per, (r + 1) * per), i * per));
  return {
    ...base,
    images,
    n: count,
    indices: Int32Array.from(rows, (r) => split.indices[r]),
    files: Array.from(rows, (r) => split.files[r]),
  };
}

/** The experiment's view of `f` with the budget's training subset (see the file comment). */
export function selectFolderData(f: ImageFolderData, trainPerClass: number): FolderSelection {
  if (!Number.isInteger(trainPerClass) || trainPerClass < 0)
    throw new Error(`selectFolderData: trainPerClass must be an integer >= 0, got ${trainPerClass}`);
  const { val, test, seed } = f.identity.split;
  const identity: DataIdentity = {
    source: 'folder',
    checksum: f.identity.manifestHash,
    perClass: trainPerClass,
    valPerClass: val,
    splitSeed: seed,
    testPerClass: test,
  };
  const describe = (n: number, per: string) => ({
    folder: f.root,
    manifestHash: f.identity.manifestHash,
    imageSize: f.imageSize,
    layout: f.layout,
    classes: f.classNames.length,
    skipped: f.skipped.length,
    trainImages: n,
    valImages: f.val.n,
    testImages: f.test.n,
    split: `the folder's own split by file (seed ${seed}): val ${val} and test ${test} per class${f.labelled ? '' : ' (unlabelled: of all images)'}; train: ${per} of the remaining ${f.train.n}`,
  });
  const subsetSeed = deriveSeed(seed, 2);
  if (f.labelled === true) {
    const { train, perClass } = labelledSubset(f, trainPerClass, subsetSeed);
    const per =
      trainPerClass === 0
        ? 'all'
        : `${perClass} per class (class-balanced${perClass < trainPerClass ? `; the smallest class has ${perClass}` : ''})`;
    return {
      labelled: true,
      train,
      val: { ...f.val, role: 'val' },
      test: { ...f.test, role: 'test' },
      identity,
      protocol: describe(train.n, per),
    };
  }
  const count = trainPerClass * UNLABELLED_SUBSET_FACTOR;
  const train = randomSubset(f.train, count, subsetSeed);
  const per =
    trainPerClass === 0 || train.n === f.train.n
      ? 'all'
      : `${train.n} drawn at random (${UNLABELLED_SUBSET_FACTOR} x ${trainPerClass}, as many as the budget's CIFAR-10 subset)`;
  const asImages = (s: UnlabelledImageFolderSplit, role: SplitRole): UnlabelledImages => ({
    images: s.images,
    n: s.n,
    height: s.height,
    width: s.width,
    role,
    indices: s.indices,
    files: s.files,
  });
  return {
    labelled: false,
    train,
    val: asImages(f.val, 'val'),
    test: asImages(f.test, 'test'),
    identity,
    protocol: describe(train.n, per),
  };
}

/** A short name for a folder's runs folder: its base name, with anything but letters, digits, '.', '_' and '-' replaced. */
export function folderRunsName(root: string): string {
  const base = path
    .basename(path.resolve(root))
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[.]+/, '');
  return base || 'folder';
}

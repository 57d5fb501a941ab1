/**
 * A real image folder to try `loadImageFolder` on (notebook 09, `scripts/example-images.ts`): a class-balanced
 * subset of Fashion-MNIST's test set (Xiao et al. 2017), 28x28 greyscale PNGs in class folders, read from
 * Debian's `dataset-fashion-mnist` package; where that package is missing, CIFAR-10's test images as 32x32 RGB
 * PNGs (from the usual CIFAR-10 sources, without downloading).
 *
 * Idempotent: a hidden `.example-folder.json` records what was written; a second call with the same request
 * and source leaves the folder alone. A different request (or the package appearing) rewrites it atomically.
 */
import * as fs from 'fs';
import * as path from 'path';
import { deriveSeed, Rng } from '../util/rng';
import { defaultDataDir, loadCifar10, type LoadCifar10Options } from './cifar10';
import { DataError } from './errors';
import { readIdxFile } from './idx';
import { balancedSubset } from './split';
import { writeImageFolder, type ImagesToWrite } from './writeImageFolder';

/** Where Debian's dataset-fashion-mnist puts the IDX files. */
export const FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_TEST_IMAGES = 't10k-images-idx3-ubyte.gz';
export const FASHION_MNIST_TEST_LABELS = 't10k-labels-idx1-ubyte.gz';
/** Fashion-MNIST's classes in label order (github.com/zalandoresearch/fashion-mnist), as folder names. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  't-shirt-top',
  'trouser',
  'pullover',
  'dress',
  'coat',
  'sandal',
  'shirt',
  'sneaker',
  'bag',
  'ankle-boot',
]);

/** The marker file (hidden, so loaders skip it). */
export const EXAMPLE_MARKER = '.example-folder.json';

export interface ExampleFolderOptions {
  /** Where to write. Default `data/example-images`. */
  out?: string;
  /** Images per class. Default 300 (3,000 in all). */
  perClass?: number;
  /** Seed of the subset. Default 0. */
  seed?: number;
  /** Folder with Fashion-MNIST's IDX files. Default FASHION_MNIST_DEBIAN_DIR; false: use CIFAR-10. */
  fashionMnistDir?: string | false;
  /** How to find CIFAR-10 for the fallback (never downloads unless `download: true` is given here). Default: the usual sources. */
  cifar10?: LoadCifar10Options;
}

export const EXAMPLE_FOLDER_DEFAULTS = Object.freeze({
  perClass: 300,
  seed: 0,
  fashionMnistDir: FASHION_MNIST_DEBIAN_DIR as string | false,
});

export type ExampleSource = 'fashion-mnist' | 'cifar10-test';

export interface ExampleFolder {
  dir: string;
  source: ExampleSource;
  images: number;
  classNames: string[];
  /** False when the folder was already there as asked. */
  written: boolean;
  /** One line for the notebook or the terminal. */
  line: string;
}

interface Marker {
  source: ExampleSource;
  perClass: number;
  seed: number;
  images: number;
  classNames: string[];
  version: 1;
}

/** Default output folder: `<repo>/data/example-images`. */
export function defaultExampleDir(): string {
  return path.join(defaultDataDir(), 'example-images');
}

/** `perClass` rows of each class, chosen by `seed`, ascending. */
function pickPerClass(labels: Uint8Array, numClasses: number, perClass: number, seed: number): number[] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((y, i) => byClass[y].push(i));
  const out: number[] = [];
  byClass.forEach((rows, c) => {
    if (rows.length < perClass)
      throw new DataError(
        'size',
        `Fashion-MNIST class ${c} has ${rows.length} test images, fewer than the ${perClass} asked for`,
        { expected: `>= ${perClass}`, actual: String(rows.length) },
      );
    const perm = new Rng(deriveSeed(seed, c)).permutation(rows.length);
    for (let i = 0; i < perClass; i++) out.push(rows[perm[i]]);
  });
  return out.sort((a, b) => a - b);
}

function fashionMnist(dir: string, perClass: number, seed: number): ImagesToWrite {
  const images = readIdxFile(path.join(dir, FASHION_MNIST_TEST_IMAGES));
  const labels = readIdxFile(path.join(dir, FASHION_MNIST_TEST_LABELS));
  const [n, h, w] = images.dims;
  if (images.dims.length !== 3 || labels.dims.length !== 1 || labels.dims[0] !== n) {
    throw new DataError(
      'layout',
      `${dir}: expected images [n, 28, 28] and labels [n], got [${images.dims}] and [${labels.dims}]`,
      { file: dir, expected: '[n, 28, 28] and [n]', actual: `[${images.dims}] and [${labels.dims}]` },
    );
  }
  const classes = FASHION_MNIST_CLASSES.length;
  if (labels.data.some((y) => y >= classes))
    throw new DataError('layout', `${dir}: a label is outside 0..${classes - 1}`, {
      file: dir,
      expected: `labels 0..${classes - 1}`,
      actual: String(Math.max(...labels.data)),
    });
  const rows = pickPerClass(labels.data, classes, perClass, seed);
  const per = h * w;
  const out = new Uint8Array(rows.length * per);
  rows.forEach((r, i) => out.set(images.data.subarray(r * per, (r + 1) * per), i * per));
  return {
    images: out,
    labels: rows.map((r) => labels.data[r]),
    n: rows.length,
    height: h,
    width: w,
    channels: 1,
    classNames: FASHION_MNIST_CLASSES,
    names: rows.map((r) => `fmnist-test-${String(r).padStart(5, '0')}`),
  };
}

async function cifar10Test(perClass: number, seed: number, opts: LoadCifar10Options): Promise<ImagesToWrite> {
  let c;
  try {
    c = await loadCifar10({ download: false, ...opts });
  } catch (e) {
    if (!(e instanceof DataError && e.code === 'source')) throw e;
    throw new DataError(
      'source',
      `no example images: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist) and CIFAR-10 was not found (${e.message})`,
      { expected: 'Fashion-MNIST or CIFAR-10', actual: 'neither' },
      { cause: e },
    );
  }
  const sub = balancedSubset(c.test, perClass, deriveSeed(seed, 0x09));
  return {
    images: sub.images,
    labels: sub.labels,
    n: sub.n,
    height: 32,
    width: 32,
    channels: 3,
    classNames: c.classNames,
    names: Array.from(sub.indices, (r) => `cifar10-test-${String(r).padStart(5, '0')}`),
  };
}

/** Writes (or finds) the example folder; see the file comment. */
export async function writeExampleFolder(opts: ExampleFolderOptions = {}): Promise<ExampleFolder> {
  const perClass = opts.perClass ?? EXAMPLE_FOLDER_DEFAULTS.perClass;
  const seed = opts.seed ?? EXAMPLE_FOLDER_DEFAULTS.seed;
  const fmDir = opts.fashionMnistDir === undefined ? EXAMPLE_FOLDER_DEFAULTS.fashionMnistDir : opts.fashionMnistDir;
  if (!Number.isInteger(perClass) || perClass < 1)
    throw new Error(`writeExampleFolder: perClass must be an integer >= 1, got ${perClass}`);
  if (!Number.isInteger(seed)) throw new Error(`writeExampleFolder: seed must be an integer, got ${seed}`);
  const dir = path.resolve(opts.out ?? defaultExampleDir());
  const source: ExampleSource =
    fmDir !== false && fs.existsSync(path.join(fmDir, FASHION_MNIST_TEST_IMAGES)) ? 'fashion-mnist' : 'cifar10-test';
  const describe = (m: Marker, written: boolean) =>
    `example images: ${dir}: ${m.images} ${m.source === 'fashion-mnist' ? `Fashion-MNIST test images (28x28 greyscale PNG, from ${fmDir})` : 'CIFAR-10 test images (32x32 RGB PNG; apt-get install dataset-fashion-mnist for Fashion-MNIST)'}, ${m.perClass} per class, seed ${m.seed}${written ? '' : ' (already there)'}`;

  const markerFile = path.join(dir, EXAMPLE_MARKER);
  if (fs.existsSync(markerFile)) {
    try {
      const m = JSON.parse(fs.readFileSync(markerFile, 'utf8')) as Marker;
      if (m.source === source && m.perClass === perClass && m.seed === seed && m.version === 1) {
        return { dir, source, images: m.images, classNames: m.classNames, written: false, line: describe(m, false) };
      }
    } catch {
      /* unreadable marker: write the folder again */
    }
  }
  const set =
    source === 'fashion-mnist'
      ? fashionMnist(fmDir as string, perClass, seed)
      : await cifar10Test(perClass, seed, opts.cifar10 ?? {});
  const marker: Marker = { source, perClass, seed, images: set.n, classNames: [...set.classNames], version: 1 };
  await writeImageFolder(dir, set, { [EXAMPLE_MARKER]: JSON.stringify(marker, null, 1) + '\n' });
  return { dir, source, images: set.n, classNames: marker.classNames, written: true, line: describe(marker, true) };
}

/**
 * `loadImageFolder`: your own images as a data set, in the form the CIFAR-10 loader gives (uint8 NHWC images,
 * uint8 labels, `Subset`s with roles), so pretraining, kNN, the linear probe, the embedding explorer and the
 * neighbour grids take it as they take CIFAR-10.
 *
 *   DIR/<class>/**.{jpg,jpeg,png,webp}  labelled, classes sorted as torchvision's ImageFolder
 *   DIR/*.{jpg,jpeg,png,webp}           unlabelled (also `labels: 'none'`: every image below DIR)
 *   DIR + a `file,label` CSV            labelled by the CSV (`csv` option)
 *
 * Images are decoded with sharp (imageDecode.ts), a few at a time, to squares of `imageSize` pixels; the result
 * is cached under `data/image-folders/` with a manifest (imageFolderCache.ts). A second load reads the cache;
 * files added, removed or modified since are found from their size and mtime, reported on one line, and only
 * they are decoded. The manifest hash (content hashes, labels, size) identifies the data in run records:
 * `identity` is the object to put there. Train/validation/test splits are seeded, by file and per class
 * (imageFolderSplit.ts). Without labels, `labelled` is false, the splits have no `labels`, and
 * `evaluationSkipped` says why kNN and the probe cannot run.
 *
 * Unreadable files: the whole folder is decoded and cached first (the manifest records the bad files), then the
 * load fails naming the first few, unless `skipBad`. A rerun with `skipBad`, or after fixing or deleting the
 * files, decodes nothing but the changed files.
 */
import * as path from 'path';
import { performance } from 'perf_hooks';
import { defaultDataDir } from './cifar10';
import { ImageFolderError, UnreadableImagesError, type BadImage } from './errors';
import { CHANNELS } from './format';
import {
  DECODE_RECIPE,
  MAX_IMAGE_SIZE,
  MIN_IMAGE_SIZE,
  decodeFiles,
  decoderVersions,
  type DecodeTask,
} from './imageDecode';
import {
  MANIFEST_FILE,
  imageFolderCacheDir,
  readCachedImages,
  readCachedManifest,
  writeImageFolderCache,
} from './imageFolderCache';
import {
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  describeChanges,
  folderChanges,
  hasChanges,
  manifestHash,
  type FolderChanges,
  type ImageFolderManifest,
  type ManifestBadFile,
  type ManifestRow,
} from './imageFolderManifest';
import {
  LABEL_SOURCES,
  describeUnsupported,
  scanImageFolder,
  type FolderLayout,
  type FolderScan,
  type LabelSource,
} from './imageFolderScan';
import { checkSplitOptions, splitFiles } from './imageFolderSplit';
import type { SplitRole } from './split';

export interface LoadImageFolderOptions {
  /** The image folder. */
  path: string;
  /** Side of the square images stored (shorter side resized to it, centre cropped). Default 32; 64 and 96 work too. */
  imageSize?: number;
  /** Where labels come from: 'auto' (class folders if there are subfolders, else unlabelled), 'folders' or 'none'. Default 'auto'. */
  labels?: LabelSource;
  /** A `file,label` CSV (paths relative to the folder) giving the labels instead of folder names. Default: none. */
  csv?: string;
  /** Validation images per class: a fraction in (0, 1), a count >= 1, or 0. Default 0.1. */
  val?: number;
  /** Test images per class, as `val`. Default 0.1. */
  test?: number;
  /** Seed of the splits. Default 0. */
  seed?: number;
  /** Skip files that cannot be decoded (listed in the manifest and the result) instead of failing. Default false. */
  skipBad?: boolean;
  /** Files decoded at once; bounds the memory held at full resolution. Default 4. */
  concurrency?: number;
  /** Read and write the cache under `dataDir`. Default true. */
  cache?: boolean;
  /** Cache root (gitignored). Default: `data/` in the repository root. */
  dataDir?: string;
  /** Where the one-line messages go (cache changes, skipped and ignored files). Default console.log; false: nowhere. */
  log?: ((line: string) => void) | false;
  /** Called after each decoded file (done, total). Default: nothing. */
  onProgress?: (done: number, total: number) => void;
}

export const IMAGE_FOLDER_DEFAULTS = Object.freeze({
  imageSize: 32,
  labels: 'auto' as LabelSource,
  val: 0.1,
  test: 0.1,
  seed: 0,
  skipBad: false,
  concurrency: 4,
  cache: true,
});

/** Bad files named in an error message; the manifest lists them all. */
export const BAD_FILES_LISTED = 5;

/** Why kNN and the linear probe are skipped on an unlabelled folder (for callers to print). */
export const UNLABELLED_EVALUATION =
  "the image folder has no labels (a flat folder, or labels 'none'): kNN and the linear probe are skipped; pretraining, the monitors, the embedding explorer and the neighbour grids work without labels";

/** What identifies the data of a run: put it in the run identity and record. Two loads with equal identities give equal splits, pixel for pixel. */
export interface ImageFolderIdentity {
  source: 'folder';
  /** The folder, absolute (informative: the hash does not depend on it). */
  path: string;
  layout: FolderLayout;
  /** The labels CSV, absolute, for the csv layout. */
  csv?: string;
  labelled: boolean;
  /** manifestHash(): decode recipe, store size, class names, each image's path, content hash and label. */
  manifestHash: string;
  /** Square store size. */
  imageSize: number;
  /** Images decoded (all splits). */
  images: number;
  /** Classes (0 when unlabelled). */
  classes: number;
  /** Files skipped as unreadable (skipBad). */
  skipped: number;
  /** How the splits were drawn. */
  split: { val: number; test: number; seed: number };
}

/** One split of a folder: uint8 NHWC [n, height, width, 3], with the file of each row. */
export interface ImageFolderSplit {
  images: Uint8Array;
  n: number;
  height: number;
  width: number;
  role: SplitRole;
  /** Row numbers in the manifest (all decoded images), ascending. */
  indices: Int32Array;
  /** Each row's path relative to the folder. */
  files: readonly string[];
}

/** A split of a labelled folder: a lib/data `Subset`, so trainValSplit, balancedSubset, kNN and the probe take it. */
export interface LabelledImageFolderSplit extends ImageFolderSplit {
  labels: Uint8Array;
  numClasses: number;
}

/** A split of an unlabelled folder: no labels. */
export interface UnlabelledImageFolderSplit extends ImageFolderSplit {
  labels?: undefined;
}

/** What the cache did on this load. */
export interface ImageFolderCacheReport {
  /** hit: read as is; decoded: no usable cache; updated: changes decoded, the rest read; off: cache disabled. */
  status: 'hit' | 'decoded' | 'updated' | 'off';
  /** Files decoded on this load. */
  decoded: number;
  /** The changes since the cache (status 'updated'). */
  changes?: FolderChanges;
  /** The cache folder (absent when off). */
  dir?: string;
}

interface ImageFolderBase {
  identity: ImageFolderIdentity;
  root: string;
  layout: FolderLayout;
  imageSize: number;
  /** Class names in label order (empty when unlabelled). */
  classNames: string[];
  /** Files skipped as unreadable (skipBad), with why. */
  skipped: readonly BadImage[];
  /** Files with unsupported extensions that were not read, per extension. */
  unsupported: Readonly<Record<string, number>>;
  /** The manifest (also in the cache as manifest.json, unless cache is off). */
  manifest: ImageFolderManifest;
  cache: ImageFolderCacheReport;
  /** One line for logs and run records. */
  line: string;
  seconds: number;
}

export interface LabelledImageFolder extends ImageFolderBase {
  labelled: true;
  train: LabelledImageFolderSplit;
  val: LabelledImageFolderSplit;
  test: LabelledImageFolderSplit;
}

export interface UnlabelledImageFolder extends ImageFolderBase {
  labelled: false;
  /** UNLABELLED_EVALUATION: why kNN and the linear probe cannot run. */
  evaluationSkipped: string;
  train: UnlabelledImageFolderSplit;
  val: UnlabelledImageFolderSplit;
  test: UnlabelledImageFolderSplit;
}

export type ImageFolderData = LabelledImageFolder | UnlabelledImageFolder;

interface Resolved {
  path: string;
  imageSize: number;
  labels: LabelSource;
  csv?: string;
  val: number;
  test: number;
  seed: number;
  skipBad: boolean;
  concurrency: number;
  cache: boolean;
  dataDir: string;
  log: (line: string) => void;
  onProgress?: (done: number, total: number) => void;
}

function resolveOptions(opts: LoadImageFolderOptions): Resolved {
  if (!opts || typeof opts.path !== 'string' || opts.path === '')
    throw new ImageFolderError('source', 'loadImageFolder: give the folder as the path option', {
      expected: 'a folder path',
      actual: String(opts?.path),
    });
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as LoadImageFolderOptions;
  const { log, ...rest } = { ...IMAGE_FOLDER_DEFAULTS, dataDir: defaultDataDir(), ...defined };
  const o: Resolved = { ...rest, log: log === false ? () => {} : (log ?? ((line: string) => console.log(line))) };
  if (!Number.isInteger(o.imageSize) || o.imageSize < MIN_IMAGE_SIZE || o.imageSize > MAX_IMAGE_SIZE) {
    throw new ImageFolderError(
      'source',
      `imageSize must be an integer in [${MIN_IMAGE_SIZE}, ${MAX_IMAGE_SIZE}], got ${o.imageSize}`,
      { expected: `an integer in [${MIN_IMAGE_SIZE}, ${MAX_IMAGE_SIZE}]`, actual: String(o.imageSize) },
    );
  }
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1)
    throw new ImageFolderError('source', `concurrency must be an integer >= 1, got ${o.concurrency}`, {
      expected: 'an integer >= 1',
      actual: String(o.concurrency),
    });
  if (!LABEL_SOURCES.includes(o.labels))
    throw new ImageFolderError(
      'labels',
      `labels must be one of ${LABEL_SOURCES.join(', ')}, got '${String(o.labels)}'`,
      { expected: LABEL_SOURCES.join(', '), actual: String(o.labels) },
    );
  checkSplitOptions({ val: o.val, test: o.test, seed: o.seed });
  return o;
}

function checkClasses(scan: FolderScan): void {
  if (!scan.labelled || scan.classNames.length >= 2) return;
  const name = scan.classNames[0];
  const where =
    scan.layout === 'csv' ? `the labels CSV ${scan.csv} names one class` : `${scan.root} has one class folder`;
  throw new ImageFolderError(
    'labels',
    `${where} ('${name}', ${scan.files.length} images): a labelled split needs at least 2 classes; ` +
      (scan.layout === 'csv'
        ? 'label the images with 2 or more classes, or drop the CSV'
        : 'put each class in its own folder') +
      ", or pass labels 'none' to pretrain on the images unlabelled (kNN and the linear probe are then skipped)",
    { file: scan.csv ?? scan.root, expected: 'at least 2 classes', actual: `1 class ('${name}')` },
  );
}

/** Reports unsupported and unlisted files on one line each. */
function reportIgnored(scan: FolderScan, log: (line: string) => void): void {
  const n = Object.values(scan.unsupported).reduce((a, b) => a + b, 0);
  if (n > 0)
    log(
      `image folder: ignored ${n} file(s) with unsupported extensions (${describeUnsupported(scan.unsupported)}) in ${scan.root}; supported: .jpg, .jpeg, .png, .webp`,
    );
  if (scan.unlisted > 0)
    log(`image folder: ${scan.unlisted} image(s) in ${scan.root} are not listed in ${scan.csv} and are left out`);
}

interface Decoded {
  manifest: ImageFolderManifest;
  images: Uint8Array;
  cache: ImageFolderCacheReport;
}

/** The rows of `scan`: from the cache where unchanged, decoded otherwise; writes the cache when anything changed. */
async function decodeWithCache(scan: FolderScan, o: Resolved): Promise<Decoded> {
  const size = o.imageSize;
  const per = size * size * CHANNELS;
  const labelKey = scan.layout === 'csv' ? `csv:${scan.csv}` : scan.layout;
  const dir = o.cache ? imageFolderCacheDir(path.resolve(o.dataDir), scan.root, labelKey, size) : undefined;

  let prev: ImageFolderManifest | undefined;
  let prevImages: Uint8Array | undefined;
  if (dir) {
    const r = readCachedManifest(dir);
    if (r.problem) o.log(`image folder: the cache cannot be used (${r.problem}); decoding ${scan.root} again`);
    prev = r.manifest;
    if (prev && (prev.imageSize !== size || prev.recipe !== DECODE_RECIPE)) {
      o.log(
        `image folder: the cache in ${dir} was written by another decoder (${prev.recipe}); decoding ${scan.root} again`,
      );
      prev = undefined;
    }
    if (prev) {
      try {
        prevImages = readCachedImages(dir, prev);
      } catch (e) {
        o.log(`image folder: ${(e as Error).message}; decoding ${scan.root} again`);
        prev = undefined;
      }
    }
  }
  const changes = prev ? folderChanges(prev, scan.files) : undefined;
  if (dir && prev && prevImages && changes && !hasChanges(changes)) {
    // The same images: a hit. Class names (a CSV's label text), ignored and unlisted files may still differ: then only the manifest is rewritten.
    const same =
      JSON.stringify([prev.classNames, prev.unsupported, prev.unlisted]) ===
      JSON.stringify([scan.classNames, scan.unsupported, scan.unlisted]);
    if (same) return { manifest: prev, images: prevImages, cache: { status: 'hit', decoded: 0, dir } };
    const next = {
      ...prev,
      classNames: scan.classNames,
      unsupported: scan.unsupported,
      unlisted: scan.unlisted,
      writtenAt: new Date().toISOString(),
    };
    next.hash = manifestHash(next);
    return {
      manifest: writeImageFolderCache(dir, next, prevImages),
      images: prevImages,
      cache: { status: 'hit', decoded: 0, dir },
    };
  }

  // Reuse unchanged rows (and unchanged known-bad files), decode the rest, each at its place in scan order.
  const prevRow = new Map<string, number>();
  const prevBad = new Map<string, ManifestBadFile>();
  if (prev) {
    prev.rows.forEach((r, i) => prevRow.set(r.path, i));
    for (const b of prev.bad) prevBad.set(b.path, b);
  }
  const files = scan.files;
  const all = new Uint8Array(files.length * per);
  const sha: (string | undefined)[] = new Array(files.length).fill(undefined);
  const reason: (string | undefined)[] = new Array(files.length).fill(undefined);
  const tasks: DecodeTask[] = [];
  const taskOf: number[] = [];
  files.forEach((f, i) => {
    const j = prevRow.get(f.path);
    const row = j === undefined ? undefined : (prev as ImageFolderManifest).rows[j];
    if (row && row.size === f.size && row.mtimeMs === f.mtimeMs && prevImages) {
      all.set(prevImages.subarray(j! * per, (j! + 1) * per), i * per);
      sha[i] = row.sha256;
      return;
    }
    const b = prevBad.get(f.path);
    if (b && b.size === f.size && b.mtimeMs === f.mtimeMs) {
      reason[i] = b.reason;
      return;
    }
    tasks.push({ file: path.join(scan.root, f.path), row: i });
    taskOf.push(i);
  });
  prevImages = undefined;
  if (changes)
    o.log(
      `image folder: ${scan.root} changed since it was cached (${describeChanges(changes)}); decoding ${tasks.length} image(s)`,
    );
  else if (tasks.length > 0)
    o.log(
      `image folder: decoding ${tasks.length} image(s) from ${scan.root} to ${size}x${size}, ${Math.min(o.concurrency, tasks.length)} at a time`,
    );
  const result = await decodeFiles(tasks, all, { size, concurrency: o.concurrency, onProgress: o.onProgress });
  result.hashes.forEach((h, t) => (sha[taskOf[t]] = h));
  for (const f of result.failed) reason[taskOf[f.task]] = f.reason;

  // Compact the decoded rows (bad files have none) in scan order.
  const rows: ManifestRow[] = [];
  const bad: ManifestBadFile[] = [];
  files.forEach((f, i) => {
    if (sha[i] === undefined) {
      bad.push({ path: f.path, size: f.size, mtimeMs: f.mtimeMs, reason: reason[i] ?? 'not decoded' });
      return;
    }
    if (rows.length !== i) all.copyWithin(rows.length * per, i * per, (i + 1) * per);
    rows.push({
      path: f.path,
      size: f.size,
      mtimeMs: f.mtimeMs,
      sha256: sha[i] as string,
      ...(f.label !== undefined ? { label: f.label } : {}),
    });
  });
  const images = rows.length === files.length ? all : all.slice(0, rows.length * per);
  const base = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    root: scan.root,
    layout: scan.layout,
    labelled: scan.labelled,
    ...(scan.csv ? { csv: scan.csv } : {}),
    classNames: scan.classNames,
    imageSize: size,
    recipe: DECODE_RECIPE,
    decoder: await decoderVersions(),
    hash: '',
    rows,
    bad,
    unsupported: scan.unsupported,
    unlisted: scan.unlisted,
    writtenAt: new Date().toISOString(),
  } satisfies Omit<ImageFolderManifest, 'imagesFile' | 'imagesBytes'>;
  base.hash = manifestHash(base);
  const manifest = dir
    ? writeImageFolderCache(dir, base, images)
    : { ...base, imagesFile: '', imagesBytes: images.length };
  const status = !dir ? 'off' : changes ? 'updated' : 'decoded';
  return {
    manifest,
    images,
    cache: { status, decoded: tasks.length, ...(changes ? { changes } : {}), ...(dir ? { dir } : {}) },
  };
}

function badError(m: ImageFolderManifest, dir: string | undefined): UnreadableImagesError {
  const list = m.bad.slice(0, BAD_FILES_LISTED).map((b) => ({ path: b.path, reason: b.reason }));
  const total = m.bad.length + m.rows.length;
  const named = list.map((b) => `${b.path} (${b.reason})`).join('; ');
  return new UnreadableImagesError(
    `${m.bad.length} of ${total} image(s) in ${m.root} cannot be decoded: ${named}${m.bad.length > list.length ? `; ... (${m.bad.length - list.length} more${dir ? `, all listed in ${path.join(dir, MANIFEST_FILE)}` : ''})` : ''}. ` +
      'Fix or delete them, or pass skipBad (--skip-bad) to skip them (they are then recorded in the manifest)',
    list,
    {
      file: path.join(m.root, m.bad[0].path),
      expected: 'JPEG, PNG or WebP images',
      actual: `${m.bad.length} unreadable`,
    },
  );
}

function takeRows(
  images: Uint8Array,
  m: ImageFolderManifest,
  idx: Int32Array,
  role: SplitRole,
): LabelledImageFolderSplit | UnlabelledImageFolderSplit {
  const size = m.imageSize;
  const per = size * size * CHANNELS;
  const out = new Uint8Array(idx.length * per);
  idx.forEach((r, i) => out.set(images.subarray(r * per, (r + 1) * per), i * per));
  const base: ImageFolderSplit = {
    images: out,
    n: idx.length,
    height: size,
    width: size,
    role,
    indices: idx,
    files: Array.from(idx, (r) => m.rows[r].path),
  };
  if (!m.labelled) return base;
  return { ...base, labels: Uint8Array.from(idx, (r) => m.rows[r].label as number), numClasses: m.classNames.length };
}

/** Loads an image folder (see the file comment). Throws ImageFolderError / UnreadableImagesError naming what was found. */
export async function loadImageFolder(opts: LoadImageFolderOptions): Promise<ImageFolderData> {
  const t0 = performance.now();
  const o = resolveOptions(opts);
  const scan = scanImageFolder(o.path, { labels: o.labels, ...(o.csv !== undefined ? { csv: o.csv } : {}) });
  checkClasses(scan);
  reportIgnored(scan, o.log);
  const { manifest: m, images, cache } = await decodeWithCache(scan, o);
  if (m.bad.length > 0 && !o.skipBad) throw badError(m, cache.dir);
  if (m.rows.length === 0) {
    throw new ImageFolderError(
      'unreadable',
      `none of the ${m.bad.length} image(s) in ${m.root} can be decoded (first: ${m.bad[0].path}: ${m.bad[0].reason})`,
      { file: m.root, expected: 'at least one readable image', actual: '0' },
    );
  }
  if (m.bad.length > 0) {
    const where = cache.dir ? ` (all listed in ${path.join(cache.dir, MANIFEST_FILE)})` : '';
    o.log(
      `image folder: skipped ${m.bad.length} unreadable image(s)${where}: ${m.bad
        .slice(0, BAD_FILES_LISTED)
        .map((b) => `${b.path} (${b.reason})`)
        .join('; ')}${m.bad.length > BAD_FILES_LISTED ? '; ...' : ''}`,
    );
  }
  const split = splitFiles(m.rows, { val: o.val, test: o.test, seed: o.seed }, m.classNames);
  const train = takeRows(images, m, split.train, 'train');
  const val = takeRows(images, m, split.val, 'val');
  const test = takeRows(images, m, split.test, 'test');
  const identity: ImageFolderIdentity = {
    source: 'folder',
    path: m.root,
    layout: m.layout,
    ...(m.csv ? { csv: m.csv } : {}),
    labelled: m.labelled,
    manifestHash: m.hash,
    imageSize: m.imageSize,
    images: m.rows.length,
    classes: m.classNames.length,
    skipped: m.bad.length,
    split: { val: o.val, test: o.test, seed: o.seed },
  };
  const seconds = (performance.now() - t0) / 1000;
  const layout =
    m.layout === 'classes'
      ? `${m.classNames.length} class folders`
      : m.layout === 'csv'
        ? `${m.classNames.length} classes from ${path.basename(m.csv ?? '')}`
        : 'unlabelled';
  const cached = {
    hit: 'from the cache',
    decoded: `decoded ${cache.decoded}`,
    updated: `cache updated (${cache.decoded} decoded)`,
    off: `decoded ${cache.decoded}, cache off`,
  }[cache.status];
  const line =
    `image folder: ${m.root} (${layout}); ${m.rows.length} images at ${m.imageSize}x${m.imageSize}, ${cached}` +
    `${m.bad.length ? `, ${m.bad.length} skipped` : ''}; train ${train.n} / val ${val.n} / test ${test.n} (seed ${o.seed}); manifest ${m.hash}; ${seconds.toFixed(2)} s`;
  const common = {
    identity,
    root: m.root,
    layout: m.layout,
    imageSize: m.imageSize,
    classNames: m.classNames,
    skipped: m.bad.map((b) => ({ path: b.path, reason: b.reason })),
    unsupported: m.unsupported,
    manifest: m,
    cache,
    line,
    seconds,
  };
  if (m.labelled) {
    return {
      ...common,
      labelled: true,
      train: train as LabelledImageFolderSplit,
      val: val as LabelledImageFolderSplit,
      test: test as LabelledImageFolderSplit,
    };
  }
  return {
    ...common,
    labelled: false,
    evaluationSkipped: UNLABELLED_EVALUATION,
    train: train as UnlabelledImageFolderSplit,
    val: val as UnlabelledImageFolderSplit,
    test: test as UnlabelledImageFolderSplit,
  };
}

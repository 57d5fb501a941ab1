/**
 * `loadCifar10`: finds CIFAR-10 (binary version, Krizhevsky 2009), verifies it and returns NHWC uint8 splits.
 *
 * Sources, first match wins:
 *   1. a path from the `path` option or the DINOTWINS_CIFAR10 environment variable: a `.tar.gz`
 *      (unpacked into the cache), a `cifar-10-batches-bin/` folder or its parent (read in place);
 *   2. the cache: `data/cifar-10-batches-bin/` (then a `data/cifar-10-binary.tar.gz` left by a download);
 *   3. `../shared/data/cifar-10-binary.tar.gz` next to the repository (where this project's machines keep it);
 *   4. the official URL, downloaded into `data/` with a progress line on stderr.
 * Every batch file is checked (size, MD5, label bytes, class names) on every load before use.
 * A user tarball is unpacked only when the cache is empty; an existing cache is verified and used instead
 * (with the official MD5s that means identical data; with checksums 'none' the cache is trusted as is).
 */
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { extractToCache } from './cache';
import { downloadFile } from './download';
import { DataError } from './errors';
import {
  BATCHES_DIR,
  META_FILE,
  OFFICIAL_URL,
  PIXELS_PER_IMAGE,
  TARBALL_NAME,
  TEST_FILE,
  TRAIN_FILES,
  decodeRecords,
} from './format';
import type { LabelledSplit } from './split';
import { cifar10Checksum, type SourceIdentity } from './dataIdentity';
import { describeChecksums, readVerifiedFolder, type ChecksumSpec, type VerifiedFolder } from './verify';

/** Environment variable naming a CIFAR-10 tarball or folder. */
export const CIFAR10_ENV = 'DINOTWINS_CIFAR10';

export interface LoadCifar10Options {
  /** A `.tar.gz`, a `cifar-10-batches-bin/` folder, or the folder holding it. Default: $DINOTWINS_CIFAR10, else the other sources. */
  path?: string;
  /** Cache root (gitignored). Default: `data/` in the repository root. */
  dataDir?: string;
  /** Convenience tarball tried after the user path and the cache, before downloading; false skips it. Default: `<repo>/../shared/data/cifar-10-binary.tar.gz`. */
  sharedTarball?: string | false;
  /** Where to download from when nothing else is there. Default: the official URL. */
  url?: string;
  /** Whether downloading is allowed. Default true. */
  download?: boolean;
  /** How batch files are verified: 'official' (default; real data), 'none' or a map (generated fixtures only). */
  checksums?: ChecksumSpec;
  /** Download progress: true = stderr (default), false = silent, or a stream. */
  progress?: boolean | NodeJS.WritableStream;
  /** Environment read for DINOTWINS_CIFAR10. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

export const LOAD_CIFAR10_DEFAULTS = Object.freeze({
  url: OFFICIAL_URL,
  download: true,
  checksums: 'official' as ChecksumSpec,
  progress: true as boolean | NodeJS.WritableStream,
});

/** Where the data came from. */
export interface Cifar10Source {
  /**
   * folder/tarball: given by the user; cache: data/cifar-10-batches-bin; cache-tarball, shared-tarball, download:
   * unpacked into the cache; fixture: the synthetic stand-in (loadCifar10OrFixture only).
   */
  kind: 'folder' | 'tarball' | 'cache' | 'cache-tarball' | 'shared-tarball' | 'download' | 'fixture';
  /** For user paths: 'option' or the environment variable. */
  via?: 'option' | typeof CIFAR10_ENV;
  /** The folder, tarball or URL that was used. */
  location: string;
  /** The `cifar-10-batches-bin` folder the records were read from. */
  folder: string;
  /** Whether this load unpacked a tarball into the cache. */
  extracted: boolean;
  /** How the files were verified. */
  verification: string;
  /** One line for logs and run records. */
  line: string;
}

export interface Cifar10 {
  /** 50,000 training images (the five data batches in order), role 'train'. Take validation from here (trainValSplit). */
  train: LabelledSplit;
  /** 10,000 test images, role 'test': for the final report only, never for model selection. */
  test: LabelledSplit;
  /** Names of labels 0..9 from batches.meta.txt. */
  classNames: string[];
  source: Cifar10Source;
  /** What the data is, for run identities: 'cifar10' and a digest of the batch files' MD5s (the fixture: 'cifar10-fixture'). */
  identity: SourceIdentity;
  /** Seconds spent locating, verifying (and if needed unpacking) and decoding. */
  seconds: number;
}

/** The repository root: the nearest folder above this file with the dinotwins package.json (else the working directory). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'dinotwins') return dir;
      } catch {
        /* not ours */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/** Default cache root: `<repo>/data`. */
export function defaultDataDir(): string {
  return path.join(repoRoot(), 'data');
}

/** Default convenience tarball: `<repo>/../shared/data/cifar-10-binary.tar.gz`. */
export function defaultSharedTarball(): string {
  return path.join(repoRoot(), '..', 'shared', 'data', TARBALL_NAME);
}

/** A user folder: the batches folder itself or its parent. */
function resolveUserFolder(p: string, via: string): string {
  if (fs.existsSync(path.join(p, TRAIN_FILES[0])) || fs.existsSync(path.join(p, META_FILE))) return p;
  const inner = path.join(p, BATCHES_DIR);
  if (fs.existsSync(inner) && fs.statSync(inner).isDirectory()) return inner;
  throw new DataError(
    'source',
    `${p} (from ${via}) holds neither the CIFAR-10 batch files nor a ${BATCHES_DIR}/ folder; give the folder with ${TRAIN_FILES[0]} or its parent, or a ${TARBALL_NAME}`,
    {
      file: p,
      expected: `${BATCHES_DIR}/ or ${TRAIN_FILES[0]}`,
      actual: fs.readdirSync(p).slice(0, 10).join(', ') || 'an empty folder',
    },
  );
}

/** Decodes the verified batch files into the two splits. */
function decode(v: VerifiedFolder): { train: LabelledSplit; test: LabelledSplit } {
  const nTrain = TRAIN_FILES.reduce((s, f) => s + v.records[f], 0);
  const nTest = v.records[TEST_FILE];
  const train: LabelledSplit = {
    images: new Uint8Array(nTrain * PIXELS_PER_IMAGE),
    labels: new Uint8Array(nTrain),
    n: nTrain,
    role: 'train',
  };
  const test: LabelledSplit = {
    images: new Uint8Array(nTest * PIXELS_PER_IMAGE),
    labels: new Uint8Array(nTest),
    n: nTest,
    role: 'test',
  };
  let row = 0;
  for (const f of TRAIN_FILES) {
    decodeRecords(v.buffers[f], v.records[f], train, row, path.join(v.folder, f));
    row += v.records[f];
  }
  decodeRecords(v.buffers[TEST_FILE], nTest, test, 0, path.join(v.folder, TEST_FILE));
  return { train, test };
}

/**
 * Loads CIFAR-10 from the best available source (see the file comment), verified.
 * Throws a DataError that names the file, the expected and actual value and what to do.
 */
export async function loadCifar10(opts: LoadCifar10Options = {}): Promise<Cifar10> {
  const t0 = performance.now();
  const o = { ...LOAD_CIFAR10_DEFAULTS, ...stripUndefined(opts) };
  const env = opts.env ?? process.env;
  const dataDir = path.resolve(opts.dataDir ?? defaultDataDir());
  const cacheFolder = path.join(dataDir, BATCHES_DIR);
  const cacheTarball = path.join(dataDir, TARBALL_NAME);
  const shared = opts.sharedTarball === undefined ? defaultSharedTarball() : opts.sharedTarball;
  const spec = o.checksums;
  const verification = describeChecksums(spec);
  const cacheRemedy = `Delete ${cacheFolder} and re-run (it is unpacked again from a tarball or downloaded), or point ${CIFAR10_ENV} at a good copy`;

  let kind: Cifar10Source['kind'];
  let via: Cifar10Source['via'];
  let location: string;
  let verified: VerifiedFolder;
  let extracted = false;

  const envValue = env[CIFAR10_ENV]?.trim();
  const userPath = opts.path ?? (envValue ? envValue : undefined);
  const tried: string[] = [];

  const fromTarball = async (tarball: string): Promise<VerifiedFolder> => {
    if (fs.existsSync(cacheFolder)) return readVerifiedFolder(cacheFolder, spec, cacheRemedy);
    extracted = true;
    return extractToCache(tarball, dataDir, spec);
  };

  if (userPath !== undefined) {
    via = opts.path !== undefined ? 'option' : CIFAR10_ENV;
    const from = via === 'option' ? 'the path option' : `$${CIFAR10_ENV}`;
    location = path.resolve(userPath);
    if (!fs.existsSync(location)) {
      throw new DataError(
        'source',
        `${location} (from ${from}) does not exist; give a ${TARBALL_NAME}, a ${BATCHES_DIR}/ folder or its parent${via === CIFAR10_ENV ? `, or unset ${CIFAR10_ENV} to use the cache or the download` : ''}`,
        {
          file: location,
          expected: 'a tarball or folder',
          actual: 'nothing',
        },
      );
    }
    if (fs.statSync(location).isDirectory()) {
      kind = 'folder';
      const folder = resolveUserFolder(location, from);
      verified = await readVerifiedFolder(
        folder,
        spec,
        `Replace ${folder} with a good copy${via === CIFAR10_ENV ? `, or unset ${CIFAR10_ENV} to use the cache or the download` : ''}`,
      );
    } else {
      kind = 'tarball';
      verified = await fromTarball(location);
    }
  } else if (fs.existsSync(cacheFolder)) {
    kind = 'cache';
    location = cacheFolder;
    verified = await readVerifiedFolder(cacheFolder, spec, cacheRemedy);
  } else if (fs.existsSync(cacheTarball)) {
    kind = 'cache-tarball';
    location = cacheTarball;
    verified = await fromTarball(cacheTarball);
  } else if (shared !== false && fs.existsSync(shared)) {
    tried.push(cacheFolder, cacheTarball);
    kind = 'shared-tarball';
    location = path.resolve(shared);
    verified = await fromTarball(location);
  } else {
    tried.push(cacheFolder, cacheTarball);
    if (shared !== false) tried.push(shared);
    if (!o.download) {
      throw new DataError(
        'source',
        `CIFAR-10 not found (looked at ${tried.join(', ')}) and downloading is switched off; set ${CIFAR10_ENV} to a ${TARBALL_NAME} or ${BATCHES_DIR}/ folder, or allow the download`,
        {
          file: dataDir,
          expected: `${BATCHES_DIR}/ or ${TARBALL_NAME}`,
          actual: 'nothing',
        },
      );
    }
    kind = 'download';
    location = o.url;
    await downloadFile(o.url, cacheTarball, { progress: o.progress });
    try {
      verified = await fromTarball(cacheTarball);
    } catch (e) {
      // A download that does not unpack or verify is not kept: the next run downloads again.
      fs.rmSync(cacheTarball, { force: true });
      throw e;
    }
  }

  const { train, test } = decode(verified);
  const seconds = (performance.now() - t0) / 1000;
  const what: Record<Cifar10Source['kind'], string> = {
    folder: 'folder',
    tarball: 'tarball',
    cache: 'cache',
    'cache-tarball': 'cached tarball',
    'shared-tarball': 'shared tarball',
    download: 'download',
    fixture: 'fixture',
  };
  const line =
    `cifar10: ${what[kind]} ${location}` +
    (via ? ` (from ${via === 'option' ? 'option path' : `$${CIFAR10_ENV}`})` : '') +
    (verified.folder !== location ? `, read from ${verified.folder}${extracted ? ' (unpacked now)' : ''}` : '') +
    `; ${train.n} train + ${test.n} test; ${verification}; ${seconds.toFixed(2)} s`;
  return {
    train,
    test,
    classNames: verified.classNames,
    source: { kind, via, location, folder: verified.folder, extracted, verification, line },
    identity: { source: 'cifar10', checksum: cifar10Checksum(verified.md5) },
    seconds,
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

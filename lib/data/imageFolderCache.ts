/**
 * The decoded-image cache under `data/image-folders/` (gitignored): per folder, label source and store size, a
 * folder holding `manifest.json` and the pixel array `images-<key>.u8` (uint8 NHWC, rows in manifest order).
 *
 * Writes are atomic (lib/util/atomic.ts) and ordered: the pixel file first, under a name derived from its
 * content, then the manifest that names it. A reader therefore only ever sees a manifest whose pixel file is
 * complete; pixel files no manifest names, and temp files of dead processes, are removed after a write.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic';
import { pidAlive } from './cache';
import { ImageFolderError } from './errors';
import { CHANNELS } from './format';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type ImageFolderManifest } from './imageFolderManifest';

/** Subfolder of the data folder that holds image-folder caches. */
export const IMAGE_FOLDER_CACHE = 'image-folders';
export const MANIFEST_FILE = 'manifest.json';

const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/**
 * The cache folder of one (folder, label source, store size): `<dataDir>/image-folders/<name>-<hash>/<size>px`.
 * `labelKey` tells label sources apart ('classes', 'flat' or 'csv:<absolute csv path>').
 */
export function imageFolderCacheDir(dataDir: string, root: string, labelKey: string, imageSize: number): string {
  const name =
    path
      .basename(root)
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .slice(0, 40) || 'folder';
  return path.join(
    dataDir,
    IMAGE_FOLDER_CACHE,
    `${name}-${sha(`${root}\0${labelKey}`).slice(0, 10)}`,
    `${imageSize}px`,
  );
}

/** Bytes of the pixel array of `rows` images of `imageSize`. */
export function pixelBytes(rows: number, imageSize: number): number {
  return rows * imageSize * imageSize * CHANNELS;
}

/** The cached manifest, undefined when there is none, or why it cannot be used (then the folder is decoded again). */
export function readCachedManifest(dir: string): { manifest?: ImageFolderManifest; problem?: string } {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return { problem: `cannot read ${file}: ${(e as Error).message}` };
  }
  let m: ImageFolderManifest;
  try {
    m = JSON.parse(text) as ImageFolderManifest;
  } catch (e) {
    return { problem: `${file} is not valid JSON (${(e as Error).message})` };
  }
  if (
    m?.format !== MANIFEST_FORMAT ||
    m.version !== MANIFEST_VERSION ||
    !Array.isArray(m.rows) ||
    !Array.isArray(m.bad)
  ) {
    return { problem: `${file} is not a version-${MANIFEST_VERSION} ${MANIFEST_FORMAT} manifest` };
  }
  return { manifest: m };
}

/** The pixel array a manifest names, checked against its size; throws ImageFolderError('cache') when it is missing or has another size. */
export function readCachedImages(dir: string, m: ImageFolderManifest): Uint8Array {
  const file = path.join(dir, m.imagesFile);
  const expected = pixelBytes(m.rows.length, m.imageSize);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const actual = fs.fstatSync(fd).size;
    if (actual !== expected || m.imagesBytes !== expected) {
      throw new ImageFolderError(
        'cache',
        `the cached images ${file} have ${actual} bytes, expected ${expected} (${m.rows.length} images of ${m.imageSize}x${m.imageSize}x3)`,
        { file, expected: `${expected}`, actual: `${actual}` },
      );
    }
    // Read in chunks: fs.readFileSync refuses files over 2 GiB (50,000 images at 96 px are 1.4 GB).
    const out = new Uint8Array(expected);
    for (let off = 0; off < expected;) {
      const n = fs.readSync(fd, out, off, Math.min(READ_CHUNK, expected - off), off);
      if (n === 0)
        throw new ImageFolderError('cache', `the cached images ${file} ended at byte ${off} of ${expected}`, {
          file,
          expected: `${expected}`,
          actual: `${off}`,
        });
      off += n;
    }
    return out;
  } catch (e) {
    if (e instanceof ImageFolderError) throw e;
    throw new ImageFolderError(
      'cache',
      `cannot read the cached images ${file}: ${(e as Error).message}`,
      { file, expected: `${expected} bytes`, actual: (e as NodeJS.ErrnoException).code ?? 'unreadable' },
      { cause: e },
    );
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const READ_CHUNK = 1 << 30;

/** Writes the pixel array, then the manifest naming it (both atomically), then removes what no manifest names. Returns the manifest written. */
export function writeImageFolderCache(
  dir: string,
  m: Omit<ImageFolderManifest, 'imagesFile' | 'imagesBytes'>,
  images: Uint8Array,
): ImageFolderManifest {
  const expected = pixelBytes(m.rows.length, m.imageSize);
  if (images.length !== expected)
    throw new Error(
      `writeImageFolderCache: ${images.length} bytes for ${m.rows.length} images of ${m.imageSize}px (expected ${expected})`,
    );
  const key = sha(
    JSON.stringify([m.imageSize, m.recipe, m.rows.map((r) => [r.path, r.size, r.mtimeMs, r.sha256])]),
  ).slice(0, 16);
  const full: ImageFolderManifest = { ...m, imagesFile: `images-${key}.u8`, imagesBytes: expected };
  try {
    fs.mkdirSync(dir, { recursive: true });
    // The name is a function of the rows, their files' sizes and mtimes and the store size: an existing file of the right length holds these pixels.
    const imagesPath = path.join(dir, full.imagesFile);
    if (!fs.existsSync(imagesPath) || fs.statSync(imagesPath).size !== expected) writeFileAtomic(imagesPath, images);
    writeJsonAtomic(path.join(dir, MANIFEST_FILE), full);
  } catch (e) {
    throw new ImageFolderError(
      'cache',
      `cannot write the image cache in ${dir}: ${(e as Error).message}; free space or pass cache: false`,
      { file: dir, expected: 'a writable folder', actual: (e as NodeJS.ErrnoException).code ?? 'error' },
      { cause: e },
    );
  }
  cleanCacheDir(dir, full.imagesFile);
  return full;
}

/** Removes pixel files other than `keep` and temp files (`*.tmp-<pid>-*`) of processes that are gone. */
export function cleanCacheDir(dir: string, keep: string): string[] {
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const tmp = /\.tmp-(\d+)-\d+$/.exec(name);
    const stale = tmp ? !pidAlive(Number(tmp[1])) : /^images-[0-9a-f]+\.u8$/.test(name) && name !== keep;
    if (!stale) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

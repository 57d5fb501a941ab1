/**
 * The manifest of a decoded image folder: one row per decoded image (relative path, size, mtime, content hash,
 * label), the files that could not be decoded, and the store size. Pure functions: the manifest hash (the data's
 * identity for run records) and the difference between a manifest and the folder as it is now.
 */
import * as crypto from 'crypto';
import type { FolderFile, FolderLayout } from './imageFolderScan';

export const MANIFEST_FORMAT = 'dinotwins-image-folder';
export const MANIFEST_VERSION = 1;

/** One decoded image: row i of the cached array. */
export interface ManifestRow {
  path: string;
  size: number;
  mtimeMs: number;
  /** SHA-256 of the file's bytes (32 hex digits). */
  sha256: string;
  label?: number;
}

/** A file that could not be decoded (it has no row). */
export interface ManifestBadFile {
  path: string;
  size: number;
  mtimeMs: number;
  reason: string;
}

export interface ImageFolderManifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  /** The folder, absolute, when the cache was written. */
  root: string;
  layout: FolderLayout;
  labelled: boolean;
  /** The labels CSV, for the csv layout. */
  csv?: string;
  classNames: string[];
  /** Square store size of the rows. */
  imageSize: number;
  /** DECODE_RECIPE of the decoder that wrote the rows. */
  recipe: string;
  decoder: { sharp: string; libvips: string };
  /** See manifestHash. */
  hash: string;
  /** Decoded images, in row order. */
  rows: ManifestRow[];
  /** Files that failed to decode, with why (skipped with skipBad; an error otherwise). */
  bad: ManifestBadFile[];
  /** Files with unsupported extensions, per extension (not decoded). */
  unsupported: Record<string, number>;
  /** CSV layout: images not listed in the CSV (left out). */
  unlisted: number;
  /** File name of the pixel array (uint8 NHWC [rows, imageSize, imageSize, 3]) beside the manifest, and its bytes. */
  imagesFile: string;
  imagesBytes: number;
  writtenAt: string;
}

/**
 * The data's identity: SHA-256 (16 hex digits) over what the pixel arrays and labels are a function of: the decode
 * recipe, the store size, the class names and each row's path, content hash and label. Not the folder's location,
 * mtimes or the files that were skipped, so a copied folder (or one whose files were only touched) keeps its hash.
 */
export function manifestHash(m: Pick<ImageFolderManifest, 'recipe' | 'imageSize' | 'classNames' | 'rows'>): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ recipe: m.recipe, imageSize: m.imageSize, classNames: m.classNames }));
  for (const r of m.rows) h.update(`\n${JSON.stringify([r.path, r.sha256, r.label ?? null])}`);
  return h.digest('hex').slice(0, 16);
}

/** How the folder differs from a manifest (paths, each list sorted as the rows are). */
export interface FolderChanges {
  added: string[];
  removed: string[];
  /** Size or mtime changed. */
  modified: string[];
  /** Same file, other label (a CSV edit). */
  relabelled: string[];
}

type Known = { size: number; mtimeMs: number; label?: number };

/** Compares the scanned files with the manifest's rows and bad files. */
export function folderChanges(
  m: Pick<ImageFolderManifest, 'rows' | 'bad'>,
  files: readonly FolderFile[],
): FolderChanges {
  const known = new Map<string, Known>();
  for (const r of m.rows) known.set(r.path, r);
  for (const b of m.bad) known.set(b.path, b);
  const c: FolderChanges = { added: [], removed: [], modified: [], relabelled: [] };
  const seen = new Set<string>();
  for (const f of files) {
    seen.add(f.path);
    const k = known.get(f.path);
    if (!k) c.added.push(f.path);
    else if (k.size !== f.size || k.mtimeMs !== f.mtimeMs) c.modified.push(f.path);
    else if ('sha256' in k && k.label !== f.label) c.relabelled.push(f.path);
  }
  for (const p of known.keys()) if (!seen.has(p)) c.removed.push(p);
  return c;
}

export function hasChanges(c: FolderChanges): boolean {
  return c.added.length + c.removed.length + c.modified.length + c.relabelled.length > 0;
}

/** "2 added (a.png, b.png), 1 removed (c.jpg)": the changes on one line, naming at most `show` files per kind. */
export function describeChanges(c: FolderChanges, show = 3): string {
  const part = (what: string, list: string[]) =>
    list.length ? `${list.length} ${what} (${list.slice(0, show).join(', ')}${list.length > show ? ', ...' : ''})` : '';
  return (
    [part('added', c.added), part('removed', c.removed), part('modified', c.modified), part('relabelled', c.relabelled)]
      .filter(Boolean)
      .join(', ') || 'no changes'
  );
}

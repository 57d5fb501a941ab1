/**
 * Lists the images of an image folder and where their labels come from, without decoding anything:
 *   - class folders `DIR/<class>/**` (labels from the folder names, as torchvision's ImageFolder:
 *     classes sorted, each class's files walked recursively in sorted order);
 *   - a flat folder `DIR/*` (unlabelled), or with `labels: 'none'` every image anywhere below DIR;
 *   - a CSV of `file,label` (paths relative to DIR; see labelsCsv.ts).
 * Supported extensions are IMAGE_EXTENSIONS (any case); other files are counted per extension, so the
 * caller can report them. Entries whose name starts with '.' (.DS_Store, .ipynb_checkpoints) are skipped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ImageFolderError } from './errors';
import { readLabelsCsv } from './labelsCsv';
import { compareCodePoints } from './codePoints';

/** File extensions decoded as images (compared in lower case). */
export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze(['.jpg', '.jpeg', '.png', '.webp']);

/** Labels for 256 classes at most: they are stored as uint8, like CIFAR-10's. */
export const MAX_CLASSES = 256;

/** How labels are found. 'auto': class folders when DIR has subfolders, else a flat unlabelled folder; 'folders': class folders required; 'none': every image below DIR, unlabelled. */
export type LabelSource = 'auto' | 'folders' | 'none';
export const LABEL_SOURCES: readonly LabelSource[] = Object.freeze(['auto', 'folders', 'none'] as LabelSource[]);

/** The layout that was found: class folders, a flat (or recursive, unlabelled) folder, or a labels CSV. */
export type FolderLayout = 'classes' | 'flat' | 'csv';

/** One image file. */
export interface FolderFile {
  /** Path relative to the folder, '/'-separated. */
  path: string;
  /** Bytes on disk. */
  size: number;
  /** Last modification time (ms since the epoch, as fs.Stats.mtimeMs). */
  mtimeMs: number;
  /** Class index into classNames; absent when unlabelled. */
  label?: number;
}

export interface FolderScan {
  /** The folder, absolute. */
  root: string;
  layout: FolderLayout;
  labelled: boolean;
  /** Class names in label order (empty when unlabelled). */
  classNames: string[];
  /** The images, in row order: by label, then folder, then file name (torchvision's ImageFolder order). */
  files: FolderFile[];
  /** Files with other extensions, per lower-case extension ('' for none). */
  unsupported: Record<string, number>;
  /** CSV layout: images in the folder that the CSV does not list (left out). */
  unlisted: number;
  /** The labels CSV (absolute), for the csv layout. */
  csv?: string;
}

export interface ScanOptions {
  labels: LabelSource;
  /** A `file,label` CSV (absolute or relative to the working directory); labels then come from it. */
  csv?: string;
}

/** Lower-case extension with the dot ('' when there is none). */
export function extensionOf(name: string): string {
  return path.extname(name).toLowerCase();
}

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extensionOf(name));
}

/** "12 .txt, 1 .gif": counts of unsupported extensions, most frequent first. */
export function describeUnsupported(unsupported: Readonly<Record<string, number>>): string {
  return Object.entries(unsupported)
    .sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]))
    .map(([ext, n]) => `${n} ${ext || '(no extension)'}`)
    .join(', ');
}

interface Walked {
  /** Supported images with their stats. */
  images: FolderFile[];
  unsupported: Record<string, number>;
  /** All non-hidden files seen. */
  files: number;
}

/** Every non-hidden file below `dir` (symlinks followed, each real folder once), `rel` being dir's path relative to the root. */
function walk(root: string, rel: string, into: Walked, skip: ReadonlySet<string>, seen = new Set<string>()): void {
  const abs = rel ? path.join(root, rel) : root;
  const real = fs.realpathSync(abs);
  if (seen.has(real)) return; // a link back up the tree
  seen.add(real);
  for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const relPath = rel ? `${rel}/${e.name}` : e.name;
    const full = path.join(abs, e.name);
    let isDir = e.isDirectory();
    let st: fs.Stats | undefined;
    if (e.isSymbolicLink()) {
      try {
        st = fs.statSync(full);
      } catch {
        continue; // a dangling link is not a file
      }
      isDir = st.isDirectory();
    }
    if (isDir) {
      walk(root, relPath, into, skip, seen);
      continue;
    }
    if (skip.has(full)) continue;
    into.files++;
    if (!isImageFile(e.name)) {
      const ext = extensionOf(e.name);
      into.unsupported[ext] = (into.unsupported[ext] ?? 0) + 1;
      continue;
    }
    st ??= fs.statSync(full);
    into.images.push({ path: relPath, size: st.size, mtimeMs: st.mtimeMs });
  }
}

/** Row order: label, then folder, then file name, each by code point (what sorted(os.walk()) gives in torchvision). */
function sortRows(files: FolderFile[]): FolderFile[] {
  const key = files.map((f, i) => {
    const slash = f.path.lastIndexOf('/');
    return { i, label: f.label ?? 0, dir: slash < 0 ? '' : f.path.slice(0, slash), name: f.path.slice(slash + 1) };
  });
  key.sort((a, b) => a.label - b.label || compareCodePoints(a.dir, b.dir) || compareCodePoints(a.name, b.name));
  return key.map((k) => files[k.i]);
}

function listFolder(root: string): { dirs: string[]; files: string[] } {
  const dirs: string[] = [];
  const files: string[] = [];
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      try {
        isDir = fs.statSync(path.join(root, e.name)).isDirectory();
      } catch {
        continue;
      }
    }
    (isDir ? dirs : files).push(e.name);
  }
  return { dirs: dirs.sort(compareCodePoints), files: files.sort(compareCodePoints) };
}

function checkFound(root: string, w: Walked, what: string): void {
  if (w.files === 0) {
    const { dirs } = listFolder(root);
    const found = dirs.length
      ? `${dirs.length} folder(s) (${dirs.slice(0, 5).join(', ')}${dirs.length > 5 ? ', ...' : ''}) but no files`
      : 'nothing (hidden entries are ignored)';
    throw new ImageFolderError('empty', `image folder ${root} is empty: found ${found}${what}`, {
      file: root,
      expected: `image files (${IMAGE_EXTENSIONS.join(', ')})`,
      actual: found,
    });
  }
  if (w.images.length === 0) {
    const found = describeUnsupported(w.unsupported);
    throw new ImageFolderError(
      'unsupported',
      `image folder ${root} holds no supported images: found ${w.files} file(s) (${found}); supported extensions: ${IMAGE_EXTENSIONS.join(', ')}${what}`,
      {
        file: root,
        expected: IMAGE_EXTENSIONS.join(', '),
        actual: found,
      },
    );
  }
}

function classFolders(root: string, dirs: string[], topFiles: string[], labels: LabelSource): FolderScan {
  const topImages = topFiles.filter(isImageFile);
  if (topImages.length > 0) {
    throw new ImageFolderError(
      'layout',
      `image folder ${root} mixes layouts: ${topImages.length} image(s) at the top level (${topImages.slice(0, 3).join(', ')}${topImages.length > 3 ? ', ...' : ''}) beside ${dirs.length} class folder(s) (${dirs.slice(0, 5).join(', ')}${dirs.length > 5 ? ', ...' : ''}); move the top-level images into class folders, or pass labels 'none' to use every image unlabelled`,
      {
        file: root,
        expected: labels === 'folders' ? 'class folders only' : 'class folders or a flat folder',
        actual: `${topImages.length} top-level images and ${dirs.length} folders`,
      },
    );
  }
  if (dirs.length > MAX_CLASSES) {
    throw new ImageFolderError(
      'labels',
      `image folder ${root} has ${dirs.length} class folders; at most ${MAX_CLASSES} classes are supported (labels are uint8)`,
      { file: root, expected: `<= ${MAX_CLASSES} classes`, actual: `${dirs.length}` },
    );
  }
  const w: Walked = { images: [], unsupported: {}, files: topFiles.length };
  for (const f of topFiles) {
    const ext = extensionOf(f);
    w.unsupported[ext] = (w.unsupported[ext] ?? 0) + 1;
  }
  const empty: string[] = [];
  const seen = new Set([fs.realpathSync(root)]); // shared: a link back to the root or into another class is not walked twice
  dirs.forEach((d, label) => {
    const before = w.images.length;
    walk(root, d, w, new Set(), seen);
    for (let i = before; i < w.images.length; i++) w.images[i].label = label;
    if (w.images.length === before) empty.push(d);
  });
  checkFound(root, w, ` in ${dirs.length} class folder(s)`);
  if (empty.length > 0) {
    throw new ImageFolderError(
      'labels',
      `image folder ${root}: class folder(s) ${empty.map((d) => `'${d}'`).join(', ')} hold no supported images (every class needs at least one); remove or fill them, or pass labels 'none' to use the images unlabelled`,
      {
        file: path.join(root, empty[0]),
        expected: 'at least one image per class folder',
        actual: `${empty.length} empty class folder(s)`,
      },
    );
  }
  return {
    root,
    layout: 'classes',
    labelled: true,
    classNames: dirs,
    files: sortRows(w.images),
    unsupported: w.unsupported,
    unlisted: 0,
  };
}

/** Lists the folder's images and labels (see the file comment). Throws an ImageFolderError that says what was found. */
export function scanImageFolder(folder: string, opts: ScanOptions): FolderScan {
  const root = path.resolve(folder);
  if (!LABEL_SOURCES.includes(opts.labels))
    throw new ImageFolderError(
      'labels',
      `labels must be one of ${LABEL_SOURCES.join(', ')}, got '${String(opts.labels)}'`,
      { expected: LABEL_SOURCES.join(', '), actual: String(opts.labels) },
    );
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch {
    throw new ImageFolderError('source', `image folder ${root} does not exist`, {
      file: root,
      expected: 'a folder of images',
      actual: 'nothing',
    });
  }
  if (!st.isDirectory())
    throw new ImageFolderError('source', `${root} is a file, not a folder of images`, {
      file: root,
      expected: 'a folder',
      actual: 'a file',
    });

  if (opts.csv !== undefined) {
    if (opts.labels === 'none')
      throw new ImageFolderError(
        'labels',
        `labels 'none' and a labels CSV (${opts.csv}) contradict each other; drop one`,
        { file: opts.csv, expected: 'one label source', actual: "labels 'none' and a CSV" },
      );
    const csv = path.resolve(opts.csv);
    const w: Walked = { images: [], unsupported: {}, files: 0 };
    walk(root, '', w, new Set([csv]));
    checkFound(root, w, '');
    const table = readLabelsCsv(csv);
    const onDisk = new Map(w.images.map((f) => [f.path, f]));
    const missing = table.rows.filter((r) => !onDisk.has(r.file));
    if (missing.length > 0) {
      const unsupportedListed = missing.filter((r) => !isImageFile(r.file));
      const list = missing
        .slice(0, 5)
        .map((r) => `${r.file} (line ${r.line})`)
        .join(', ');
      throw new ImageFolderError(
        'csv',
        `${csv} lists ${missing.length} file(s) that are not supported images in ${root}: ${list}${missing.length > 5 ? ', ...' : ''}` +
          (unsupportedListed.length
            ? `; supported extensions: ${IMAGE_EXTENSIONS.join(', ')}`
            : '; paths are relative to the image folder'),
        { file: csv, expected: `images under ${root}`, actual: `${missing.length} missing` },
      );
    }
    if (table.classNames.length > MAX_CLASSES) {
      throw new ImageFolderError(
        'labels',
        `${csv} names ${table.classNames.length} classes; at most ${MAX_CLASSES} are supported (labels are uint8)`,
        { file: csv, expected: `<= ${MAX_CLASSES} classes`, actual: `${table.classNames.length}` },
      );
    }
    const files = table.rows.map((r) => ({ ...(onDisk.get(r.file) as FolderFile), label: r.label }));
    return {
      root,
      layout: 'csv',
      labelled: true,
      classNames: table.classNames,
      files: sortRows(files),
      unsupported: w.unsupported,
      unlisted: w.images.length - files.length,
      csv,
    };
  }

  const { dirs, files: topFiles } = listFolder(root);
  if (opts.labels === 'none' || dirs.length === 0) {
    if (opts.labels === 'folders') {
      const found = topFiles.length ? `${topFiles.length} file(s) at the top level and no subfolders` : 'nothing';
      throw new ImageFolderError(
        'labels',
        `labels 'folders' needs class folders (${root}/<class>/...), found ${found}; pass labels 'auto' or 'none' to use a flat folder unlabelled`,
        { file: root, expected: 'class folders', actual: found },
      );
    }
    const w: Walked = { images: [], unsupported: {}, files: 0 };
    walk(root, '', w, new Set());
    checkFound(root, w, '');
    return {
      root,
      layout: 'flat',
      labelled: false,
      classNames: [],
      files: sortRows(w.images),
      unsupported: w.unsupported,
      unlisted: 0,
    };
  }
  return classFolders(root, dirs, topFiles, opts.labels);
}

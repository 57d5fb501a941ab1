/**
 * What an experiment trains on, as a notebook's `DATA` key (`setupNotebook(NAME, { data: DATA })`) or the CLI's
 * `--data`: 'cifar10' (the default), or an image folder, given as its path or as the folder options of
 * `loadImageFolder` (lib/data/imageFolder.ts). Checked before anything is loaded; a relative path is taken from
 * `base` (the repository root for notebooks, the working directory for the CLI), and `~/` from the home folder.
 */
import * as os from 'os';
import * as path from 'path';
import { ImageFolderError } from './errors';
import type { LoadImageFolderOptions } from './imageFolder';

/** The DATA value that names CIFAR-10. */
export const CIFAR10_DATA = 'cifar10';

/** An image folder with the options that change what is loaded (see LoadImageFolderOptions for each). */
export type ImageFolderSpec = Pick<
  LoadImageFolderOptions,
  'path' | 'imageSize' | 'labels' | 'csv' | 'val' | 'test' | 'seed' | 'skipBad' | 'concurrency' | 'dataDir'
>;

/** 'cifar10', a folder path, or a folder with options. */
export type DataSpec = string | ImageFolderSpec;

export type ResolvedDataSpec = { kind: 'cifar10' } | { kind: 'folder'; folder: ImageFolderSpec };

const FOLDER_KEYS: readonly (keyof ImageFolderSpec)[] = [
  'path',
  'imageSize',
  'labels',
  'csv',
  'val',
  'test',
  'seed',
  'skipBad',
  'concurrency',
  'dataDir',
];

function absolute(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(base, p);
}

/** `spec` checked and resolved (undefined: CIFAR-10). Throws an ImageFolderError('source') naming what is wrong. */
export function resolveDataSpec(spec: DataSpec | undefined, base: string = process.cwd()): ResolvedDataSpec {
  const what = `DATA must be '${CIFAR10_DATA}', a folder path, or { path, imageSize?, labels?, csv?, val?, test?, seed?, skipBad? }`;
  if (spec === undefined || (typeof spec === 'string' && spec.trim().toLowerCase() === CIFAR10_DATA))
    return { kind: 'cifar10' };
  if (typeof spec === 'string') {
    if (spec.trim() === '')
      throw new ImageFolderError('source', `${what}, got an empty string`, { expected: what, actual: "''" });
    return { kind: 'folder', folder: { path: absolute(spec, base) } };
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec))
    throw new ImageFolderError('source', `${what}, got ${JSON.stringify(spec)}`, {
      expected: what,
      actual: JSON.stringify(spec),
    });
  const unknown = Object.keys(spec).filter((k) => !(FOLDER_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new ImageFolderError(
      'source',
      `DATA: unknown option(s) ${unknown.join(', ')}; an image folder takes ${FOLDER_KEYS.join(', ')}`,
      { expected: FOLDER_KEYS.join(', '), actual: unknown.join(', ') },
    );
  if (typeof spec.path !== 'string' || spec.path.trim() === '')
    throw new ImageFolderError('source', `${what}: the folder's path is missing`, {
      expected: 'path: a folder',
      actual: JSON.stringify(spec.path),
    });
  const folder: ImageFolderSpec = { ...spec, path: absolute(spec.path, base) };
  if (spec.csv !== undefined) folder.csv = absolute(spec.csv, base);
  return { kind: 'folder', folder };
}

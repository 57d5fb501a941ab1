/**
 * The error types of the data layer: every failure names the file, what was expected, what was found and what to do.
 * `DataError` is the base; image folders (lib/data/imageFolder.ts) throw its subclasses `ImageFolderError` and
 * `UnreadableImagesError`, so `instanceof DataError` catches every data problem.
 */
import { inspect } from 'util';

/** What went wrong, for programs that want to react (tests, a CLI that offers to re-download). */
export type DataErrorCode =
  | 'source' // a given path does not exist or holds no CIFAR-10
  | 'missing' // a required file is absent
  | 'size' // a file has the wrong size (truncated or padded)
  | 'checksum' // a file's MD5 differs from the expected one
  | 'layout' // bad content: label byte > 9, unreadable meta file, wrong folder structure
  | 'extract' // the tarball could not be unpacked
  | 'download' // the download failed or was cut short
  // Image folders:
  | 'empty' // the folder holds no files at all
  | 'unsupported' // files, but none with a supported image extension
  | 'unreadable' // image files that cannot be read or decoded (corrupt, truncated, no permission)
  | 'labels' // labels unusable for a labelled split: one class, an empty class, over 256 classes, a bad CSV label
  | 'csv' // the labels CSV cannot be parsed or names files that are not there
  | 'split' // too few images for the asked train/validation/test split
  | 'cache'; // a cache entry that cannot be read (it is rebuilt) or written

export interface DataErrorDetails {
  /** The file or folder concerned. */
  file?: string;
  /** What was expected there (checksum, size, ...), as printed. */
  expected?: string;
  /** What was found. */
  actual?: string;
}

export class DataError extends Error {
  override name = 'DataError';
  readonly code: DataErrorCode;
  readonly file?: string;
  readonly expected?: string;
  readonly actual?: string;

  constructor(code: DataErrorCode, message: string, details: DataErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.file = details.file;
    this.expected = details.expected;
    this.actual = details.actual;
  }

  /** One line when printed (a notebook cell shows what is wrong with the data, not the loader's stack). */
  [inspect.custom](): string {
    return `${this.name}: ${this.message}`;
  }
}

/** A problem with an image folder (see DataErrorCode for `code`). */
export class ImageFolderError extends DataError {
  override name = 'ImageFolderError';
}

/** One file that could not be read or decoded, and why. */
export interface BadImage {
  /** Path relative to the image folder. */
  path: string;
  /** The reader's or decoder's message. */
  reason: string;
}

/** Images that cannot be decoded; `bad` lists the first few found (the load stopped there). Pass `skipBad` to skip them instead. */
export class UnreadableImagesError extends ImageFolderError {
  override name = 'UnreadableImagesError';
  readonly bad: readonly BadImage[];

  constructor(message: string, bad: readonly BadImage[], details: DataErrorDetails = {}) {
    super('unreadable', message, details);
    this.bad = bad;
  }
}

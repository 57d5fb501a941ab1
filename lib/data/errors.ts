/** The one error type of the data layer: every failure names the file, what was expected, what was found and what to do. */

/** What went wrong, for programs that want to react (tests, a CLI that offers to re-download). */
export type DataErrorCode =
  | 'source' // a given path does not exist or holds no CIFAR-10
  | 'missing' // a required file is absent
  | 'size' // a file has the wrong size (truncated or padded)
  | 'checksum' // a file's MD5 differs from the expected one
  | 'layout' // bad content: label byte > 9, unreadable meta file, wrong folder structure
  | 'extract' // the tarball could not be unpacked
  | 'download'; // the download failed or was cut short

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
}

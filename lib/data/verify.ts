/**
 * Checks a `cifar-10-batches-bin/` folder before anything reads its pixels: every batch file is
 * present, has the expected size (10,000 records x 3,073 bytes for the official data) and MD5,
 * and `batches.meta.txt` names 10 classes. Each failure is a DataError naming file, expected, actual
 * and the remedy the caller passes in (it depends on where the folder came from).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DataError } from './errors';
import {
  BATCH_FILES,
  META_FILE,
  OFFICIAL_BATCH_BYTES,
  OFFICIAL_MD5,
  RECORD_BYTES,
  parseMeta,
  type BatchFile,
} from './format';

/** Expected size and/or MD5 of one batch file. */
export interface FileCheck {
  /** Lower-case hex MD5; omitted: not checked. */
  md5?: string;
  /** Exact size in bytes; omitted: any positive multiple of 3,073. */
  bytes?: number;
}

/**
 * How batch files are verified. `'official'`: the published CIFAR-10 MD5s and sizes (the only
 * choice for real data). `'none'`: only the record layout (meant for generated test fixtures).
 * A map: per-file MD5 (string) or {md5, bytes}, e.g. the one a fixture writer returns; it must
 * name all six batch files.
 */
export type ChecksumSpec = 'official' | 'none' | Readonly<Record<string, string | FileCheck>>;

/** The six batch files read into memory, verified, with the class names. */
export interface VerifiedFolder {
  folder: string;
  buffers: Record<BatchFile, Buffer>;
  classNames: string[];
  /** Records per batch file. */
  records: Record<BatchFile, number>;
  /** Each batch file's MD5 (lower-case hex), checked or not: the data's identity (lib/data/dataIdentity.ts). */
  md5: Record<BatchFile, string>;
}

export function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

/** The check for `file` under `spec`; throws when a map lacks the file. */
export function fileCheck(spec: ChecksumSpec, file: BatchFile): FileCheck {
  if (spec === 'official') return { md5: OFFICIAL_MD5[file], bytes: OFFICIAL_BATCH_BYTES };
  if (spec === 'none') return {};
  if (typeof spec !== 'object' || spec === null)
    throw new Error(`checksums: expected 'official', 'none' or a map of file -> md5, got ${String(spec)}`);
  const v = spec[file];
  if (v === undefined)
    throw new Error(
      `checksums: the map has no entry for ${file} (it names ${Object.keys(spec).join(', ') || 'nothing'}); give all of ${BATCH_FILES.join(', ')}`,
    );
  const c = typeof v === 'string' ? { md5: v } : v;
  if (c.md5 !== undefined && !/^[0-9a-f]{32}$/i.test(c.md5))
    throw new Error(`checksums: ${file} has md5 "${c.md5}", expected 32 hex digits`);
  return { md5: c.md5?.toLowerCase(), bytes: c.bytes };
}

/** Describes a checksum spec for reports. */
export function describeChecksums(spec: ChecksumSpec): string {
  return spec === 'official'
    ? 'official MD5s'
    : spec === 'none'
      ? 'no checksums (layout only)'
      : 'caller-supplied MD5s';
}

/**
 * Verifies `folder` (a `cifar-10-batches-bin/` folder) against `spec` and returns its batch files in memory.
 * `remedy` is appended to every error message ("delete X and re-run, ...").
 */
export async function readVerifiedFolder(folder: string, spec: ChecksumSpec, remedy: string): Promise<VerifiedFolder> {
  const fail = (
    code: ConstructorParameters<typeof DataError>[0],
    msg: string,
    d: ConstructorParameters<typeof DataError>[2],
  ) => new DataError(code, `${msg}. ${remedy}`, d);

  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
    throw fail('missing', `CIFAR-10 folder ${folder} does not exist`, {
      file: folder,
      expected: 'a folder',
      actual: 'nothing',
    });
  }
  const metaPath = path.join(folder, META_FILE);
  if (!fs.existsSync(metaPath)) {
    throw fail('missing', `${metaPath} is missing (the class names file of the CIFAR-10 binary layout)`, {
      file: metaPath,
      expected: META_FILE,
      actual: 'missing',
    });
  }
  let classNames: string[];
  try {
    classNames = parseMeta(fs.readFileSync(metaPath, 'utf8'), metaPath);
  } catch (e) {
    if (e instanceof DataError) throw fail(e.code, e.message, e);
    throw e;
  }

  // Cheap checks first (presence and size of all files), then the reads and MD5s.
  const records = {} as Record<BatchFile, number>;
  for (const f of BATCH_FILES) {
    const p = path.join(folder, f);
    if (!fs.existsSync(p)) {
      const present = fs.readdirSync(folder).join(', ') || 'nothing';
      throw fail('missing', `${p} is missing (${folder} holds: ${present})`, {
        file: p,
        expected: f,
        actual: 'missing',
      });
    }
    const size = fs.statSync(p).size;
    const check = fileCheck(spec, f);
    if (check.bytes !== undefined && size !== check.bytes) {
      const what = size < check.bytes ? 'truncated' : 'too large';
      throw fail(
        'size',
        `${p} is ${what}: expected ${check.bytes} bytes (${check.bytes / RECORD_BYTES} records of ${RECORD_BYTES}), found ${size}`,
        {
          file: p,
          expected: `${check.bytes} bytes`,
          actual: `${size} bytes`,
        },
      );
    }
    if (size === 0 || size % RECORD_BYTES !== 0) {
      throw fail(
        'size',
        `${p} has ${size} bytes, not a positive multiple of the ${RECORD_BYTES}-byte record: truncated or not CIFAR-10 binary`,
        {
          file: p,
          expected: `a positive multiple of ${RECORD_BYTES} bytes`,
          actual: `${size} bytes`,
        },
      );
    }
    records[f] = size / RECORD_BYTES;
  }

  const buffers = {} as Record<BatchFile, Buffer>;
  const md5s = {} as Record<BatchFile, string>;
  for (const f of BATCH_FILES) {
    const p = path.join(folder, f);
    const buf = await fs.promises.readFile(p);
    const { md5 } = fileCheck(spec, f);
    const actual = md5Hex(buf);
    md5s[f] = actual;
    if (md5 !== undefined) {
      if (actual !== md5) {
        throw fail(
          'checksum',
          `${p} has MD5 ${actual}, expected ${md5}: the file is corrupt or not the ${spec === 'official' ? 'official CIFAR-10' : 'expected'} data`,
          {
            file: p,
            expected: md5,
            actual,
          },
        );
      }
    }
    buffers[f] = buf;
  }
  return { folder, buffers, classNames, records, md5: md5s };
}

/**
 * The IDX format of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/, "file formats"):
 * two zero bytes, a type byte (0x08: unsigned byte), the number of dimensions, each dimension as a big-endian
 * int32, then the data row-major. Files may be gzip-compressed (`.gz`, as Debian's dataset-fashion-mnist ships them).
 */
import * as fs from 'fs';
import { gunzipSync } from 'zlib';
import { DataError } from './errors';

/** An unsigned-byte IDX array. */
export interface IdxArray {
  /** Dimensions, e.g. [10000, 28, 28] for images or [10000] for labels. */
  dims: number[];
  data: Uint8Array;
}

/** Parses IDX bytes (unsigned-byte type only); `file` names the source in errors. */
export function parseIdx(buf: Uint8Array, file: string): IdxArray {
  const bad = (what: string, expected: string, actual: string) =>
    new DataError('layout', `${file}: ${what}; not an unsigned-byte IDX file`, { file, expected, actual });
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0)
    throw bad(
      'no IDX magic (two zero bytes)',
      '00 00 08 <ndims>',
      Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' '),
    );
  if (buf[2] !== 0x08)
    throw bad(`element type 0x${buf[2].toString(16)}`, '0x08 (unsigned byte)', `0x${buf[2].toString(16)}`);
  const nd = buf[3];
  const header = 4 + 4 * nd;
  if (nd < 1 || buf.length < header)
    throw bad(`${nd} dimensions in a ${buf.length}-byte file`, 'at least one dimension', String(nd));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims = Array.from({ length: nd }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== header + count)
    throw new DataError(
      'size',
      `${file}: dimensions ${dims.join('x')} need ${header + count} bytes, the file has ${buf.length}`,
      { file, expected: String(header + count), actual: String(buf.length) },
    );
  return { dims, data: buf.subarray(header) };
}

/** Reads an IDX file, gunzipping it when it starts with the gzip magic. */
export function readIdxFile(file: string): IdxArray {
  let buf: Buffer = fs.readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new DataError(
        'extract',
        `${file}: cannot gunzip (${(e as Error).message})`,
        { file, expected: 'a gzip-compressed IDX file', actual: (e as Error).message },
        { cause: e },
      );
    }
  }
  return parseIdx(buf, file);
}

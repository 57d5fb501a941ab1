/**
 * The safetensors file format (huggingface/safetensors, README "Format"), read and written exactly:
 *   8 bytes   N, the header length, unsigned 64-bit little-endian;
 *   N bytes   a UTF-8 JSON object, starting with '{' and possibly padded with spaces:
 *             {"__metadata__": {string: string}, NAME: {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]}, ...};
 *   the rest  the byte buffer: each tensor's values, row-major, little-endian, at [BEGIN, END) counted
 *             from the start of the buffer. The tensors cover the buffer exactly: no overlaps, no holes.
 * Every violation is a SafetensorsError that names the file, the tensor and what was wrong.
 */
import * as fs from 'fs';
import { endianness } from 'os';
import { writeFileAtomic } from '../util/atomic';

/** The byte-sized dtypes of the format, with their sizes in bytes. */
export const SAFETENSORS_DTYPES = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const);

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

/** One tensor: its dtype, shape and raw little-endian bytes (length = elements x dtype size). */
export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

/** A decoded file: tensors in file order (by offset) and the free-form string metadata. */
export interface SafetensorsContents {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** Largest header accepted (the reference implementation's limit: 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = endianness() === 'LE';

function isDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPES, d);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && (s as number) >= 0)) {
    throw new SafetensorsError(
      `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`,
    );
  }
  return shape as number[];
}

/** A float32 tensor from values in host order. */
export function f32Tensor(shape: readonly number[], values: Float32Array): SafeTensor {
  if (values.length !== numel(shape))
    throw new SafetensorsError(`f32Tensor: ${values.length} values for shape [${shape.join(', ')}]`);
  const data = new Uint8Array(values.length * 4);
  if (LITTLE_ENDIAN) data.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  else {
    const dv = new DataView(data.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i], true);
  }
  return { dtype: 'F32', shape: shape.slice(), data };
}

/** A signed 64-bit integer tensor (PyTorch's int64 / torch.long). */
export function i64Tensor(shape: readonly number[], values: readonly (number | bigint)[]): SafeTensor {
  if (values.length !== numel(shape))
    throw new SafetensorsError(`i64Tensor: ${values.length} values for shape [${shape.join(', ')}]`);
  const data = new Uint8Array(values.length * 8);
  const dv = new DataView(data.buffer);
  values.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
  return { dtype: 'I64', shape: shape.slice(), data };
}

/** f16 bits -> number (IEEE 754 binary16). */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * The values of a floating-point tensor as float32 (F32 as is; F64, F16 and BF16 converted).
 * Any other dtype is an error naming the tensor: weights must be floating point.
 */
export function toFloat32(t: SafeTensor, name = 'tensor'): Float32Array {
  const n = numel(t.shape);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Float32Array(n);
  switch (t.dtype) {
    case 'F32':
      // A copy into a fresh buffer: t.data may be a view at any byte offset (Buffer.slice would not copy).
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(t.data);
      else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return out;
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        tmp.setUint32(0, dv.getUint16(i * 2, true) << 16);
        out[i] = tmp.getFloat32(0);
      }
      return out;
    }
    default:
      throw new SafetensorsError(
        `${name} has dtype ${t.dtype}; expected a floating-point dtype (F32, F64, F16 or BF16)`,
      );
  }
}

/** The values of an integer tensor as bigints (I64, I32, I16, I8, U8, U16, U32, U64). */
export function toBigInts(t: SafeTensor, name = 'tensor'): bigint[] {
  const n = numel(t.shape);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const read: Partial<Record<SafetensorsDtype, (i: number) => bigint>> = {
    I64: (i) => dv.getBigInt64(i * 8, true),
    U64: (i) => dv.getBigUint64(i * 8, true),
    I32: (i) => BigInt(dv.getInt32(i * 4, true)),
    U32: (i) => BigInt(dv.getUint32(i * 4, true)),
    I16: (i) => BigInt(dv.getInt16(i * 2, true)),
    U16: (i) => BigInt(dv.getUint16(i * 2, true)),
    I8: (i) => BigInt(dv.getInt8(i)),
    U8: (i) => BigInt(dv.getUint8(i)),
  };
  const r = read[t.dtype];
  if (!r) throw new SafetensorsError(`${name} has dtype ${t.dtype}; expected an integer dtype`);
  return Array.from({ length: n }, (_, i) => r(i));
}

/**
 * Encodes tensors (in the given order within each alignment class: 8-byte dtypes first, then 4, 2, 1,
 * so each tensor starts at a multiple of its element size) and string metadata as a safetensors file.
 * The header is padded with spaces so the buffer starts at a multiple of 8 bytes, as the reference writer does.
 */
export function encodeSafetensors(
  tensors: Iterable<[string, SafeTensor]>,
  metadata: Record<string, string> = {},
): Buffer {
  const list = [...tensors];
  const seen = new Set<string>();
  for (const [name, t] of list) {
    if (!name || name === '__metadata__')
      throw new SafetensorsError(`encodeSafetensors: invalid tensor name ${JSON.stringify(name)}`);
    if (seen.has(name)) throw new SafetensorsError(`encodeSafetensors: tensor "${name}" given twice`);
    seen.add(name);
    if (!isDtype(t.dtype))
      throw new SafetensorsError(
        `encodeSafetensors: ${name} has unknown dtype ${JSON.stringify(t.dtype)} (known: ${Object.keys(SAFETENSORS_DTYPES).join(', ')})`,
      );
    checkShape(t.shape, `encodeSafetensors: ${name}`);
    const want = numel(t.shape) * SAFETENSORS_DTYPES[t.dtype];
    if (t.data.length !== want)
      throw new SafetensorsError(
        `encodeSafetensors: ${name} has ${t.data.length} bytes, ${t.dtype} [${t.shape.join(', ')}] needs ${want}`,
      );
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string')
      throw new SafetensorsError(`encodeSafetensors: metadata "${k}" must be a string, got ${typeof v}`);
  }
  const ordered = list
    .map((e, i) => ({ e, i }))
    .sort((a, b) => SAFETENSORS_DTYPES[b.e[1].dtype] - SAFETENSORS_DTYPES[a.e[1].dtype] || a.i - b.i)
    .map((x) => x.e);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of ordered) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let pos = 8 + json.length;
  for (const [, t] of ordered) {
    out.set(t.data, pos);
    pos += t.data.length;
  }
  return out;
}

interface RawEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Decodes a safetensors file held in memory. `source` names it in errors. Tensor data are views
 * into `buf` (no copy).
 */
export function decodeSafetensors(buf: Uint8Array, source = 'safetensors data'): SafetensorsContents {
  const fail: (msg: string) => never = (msg) => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (buf.length < 8)
    fail(`truncated: ${buf.length} bytes, but a safetensors file starts with an 8-byte header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES))
    fail(`header length ${n64} bytes is over the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  const n = Number(n64);
  if (8 + n > buf.length)
    fail(`truncated: the header is ${n} bytes but only ${buf.length - 8} bytes follow the length field`);
  const headerBytes = buf.subarray(8, 8 + n);
  if (n === 0 || headerBytes[0] !== 0x7b)
    fail(
      `the header must be a JSON object starting with '{' (got ${n === 0 ? 'an empty header' : `byte 0x${headerBytes[0].toString(16)}`})`,
    );
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(`the header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const data = buf.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const entries: RawEntry[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('__metadata__ must be an object of strings');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') fail(`__metadata__["${k}"] must be a string, got ${JSON.stringify(s)}`);
        metadata[k] = s as string;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (e === null || typeof e !== 'object')
      fail(`tensor "${name}": expected {dtype, shape, data_offsets}, got ${JSON.stringify(v)}`);
    if (!isDtype(e.dtype))
      fail(
        `tensor "${name}" has unknown dtype ${JSON.stringify(e.dtype)} (safetensors dtypes: ${Object.keys(SAFETENSORS_DTYPES).join(', ')})`,
      );
    const shape = checkShape(e.shape, `${source}: tensor "${name}"`);
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((x) => Number.isSafeInteger(x) && (x as number) >= 0) ||
      off[0] > off[1]
    ) {
      fail(`tensor "${name}": data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    const dtype = e.dtype as SafetensorsDtype;
    const want = numel(shape) * SAFETENSORS_DTYPES[dtype];
    if (end - begin !== want)
      fail(
        `tensor "${name}": data_offsets [${begin}, ${end}) hold ${end - begin} bytes, but ${dtype} [${shape.join(', ')}] needs ${want}`,
      );
    entries.push({ name, dtype, shape, begin, end });
  }
  const last = entries.reduce<RawEntry | null>((m, e) => (m === null || e.end > m.end ? e : m), null);
  if (last && last.end > data.length) {
    fail(
      `truncated: tensor "${last.name}" ends at byte ${last.end} of the data, but only ${data.length} bytes follow the header`,
    );
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: RawEntry | null = null;
  for (const e of entries) {
    if (e.begin < pos)
      fail(
        `overlapping data_offsets: "${prev!.name}" [${prev!.begin}, ${prev!.end}) and "${e.name}" [${e.begin}, ${e.end})`,
      );
    if (e.begin > pos) fail(`a hole in the data: bytes [${pos}, ${e.begin}) before "${e.name}" belong to no tensor`);
    pos = e.end;
    prev = e;
  }
  if (pos !== data.length)
    fail(`${data.length - pos} bytes after the last tensor belong to no tensor (the data must be covered exactly)`);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: data.subarray(e.begin, e.end) });
  return { tensors, metadata };
}

/** Reads and decodes a .safetensors file; errors name the file. */
export function readSafetensors(file: string): SafetensorsContents {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new SafetensorsError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return decodeSafetensors(buf, file);
}

/** Encodes and writes a .safetensors file atomically (temp file + rename). Returns its size in bytes. */
export function writeSafetensors(
  file: string,
  tensors: Iterable<[string, SafeTensor]>,
  metadata: Record<string, string> = {},
): number {
  const buf = encodeSafetensors(tensors, metadata);
  writeFileAtomic(file, buf);
  return buf.length;
}

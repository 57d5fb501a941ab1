/**
 * Checkpoint files: one binary file per checkpoint, written atomically (temp file + rename), with
 * a SHA-256 of the payload so a truncated or corrupted file is a clear error, never a silent
 * partial load.
 *
 * Layout: "DTCKPT01" | uint32 LE header length | JSON header | float32 payload.
 * The header lists each tensor group (student, teacher, optimizer slots, center, ...) with
 * name, shape, offset, plus free-form metadata (step, RNG state, config).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import { writeFileAtomic } from '../util/atomic';

const MAGIC = 'DTCKPT01';

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export interface StoredTensor {
  shape: number[];
  values: Float32Array;
}

/** Tensors by group then by name, e.g. groups.student.get('conv1.weight'). */
export type TensorGroups = Record<string, Map<string, StoredTensor>>;

export interface CheckpointContents<M> {
  meta: M;
  groups: TensorGroups;
}

interface HeaderEntry {
  group: string;
  name: string;
  shape: number[];
  offset: number; // in float32 elements
  length: number;
}

interface Header<M> {
  format: typeof MAGIC;
  meta: M;
  entries: HeaderEntry[];
  payloadBytes: number;
  sha256: string;
}

export function saveCheckpoint<M>(file: string, contents: CheckpointContents<M>): void {
  const entries: HeaderEntry[] = [];
  let total = 0;
  for (const [group, m] of Object.entries(contents.groups)) {
    for (const [name, t] of m) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (n !== t.values.length)
        throw new CheckpointError(
          `saveCheckpoint: ${group}/${name} has ${t.values.length} values for shape [${t.shape}]`,
        );
      entries.push({ group, name, shape: t.shape, offset: total, length: n });
      total += n;
    }
  }
  const payload = new Float32Array(total);
  for (const e of entries) payload.set(contents.groups[e.group].get(e.name)!.values, e.offset);
  const bytes = new Uint8Array(payload.buffer);
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  const header: Header<M> = { format: MAGIC, meta: contents.meta, entries, payloadBytes: bytes.length, sha256 };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const lenBuf = Buffer.alloc(4);
  lenBuf.writeUInt32LE(headerBytes.length, 0);
  writeFileAtomic(
    file,
    Buffer.concat([
      Buffer.from(MAGIC, 'ascii'),
      lenBuf,
      headerBytes,
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    ]),
  );
}

export function loadCheckpoint<M>(file: string): CheckpointContents<M> {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new CheckpointError(`cannot read checkpoint ${file}: ${(e as Error).message}`);
  }
  const hint = 'The file is damaged; delete it to start over, or resume from an older checkpoint.';
  if (buf.length < 12 || buf.subarray(0, 8).toString('ascii') !== MAGIC)
    throw new CheckpointError(`${file} is not a dinotwins checkpoint (bad magic bytes). ${hint}`);
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.length)
    throw new CheckpointError(`${file} is truncated: header says ${hlen} bytes, file has ${buf.length - 12}. ${hint}`);
  let header: Header<M>;
  try {
    header = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8')) as Header<M>;
  } catch (e) {
    throw new CheckpointError(`${file} has a corrupt header (${(e as Error).message}). ${hint}`);
  }
  const payload = buf.subarray(12 + hlen);
  if (payload.length !== header.payloadBytes)
    throw new CheckpointError(
      `${file} is truncated: payload is ${payload.length} bytes, expected ${header.payloadBytes}. ${hint}`,
    );
  const sha = crypto.createHash('sha256').update(payload).digest('hex');
  if (sha !== header.sha256)
    throw new CheckpointError(`${file} is corrupt: payload sha256 ${sha}, expected ${header.sha256}. ${hint}`);
  const aligned = new Float32Array(payload.length / 4);
  new Uint8Array(aligned.buffer).set(payload);
  const groups: TensorGroups = {};
  for (const e of header.entries) {
    (groups[e.group] ??= new Map()).set(e.name, {
      shape: e.shape,
      values: aligned.slice(e.offset, e.offset + e.length),
    });
  }
  return { meta: header.meta, groups };
}

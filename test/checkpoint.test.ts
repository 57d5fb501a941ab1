import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { saveCheckpoint, loadCheckpoint, CheckpointError } from '../lib/train/checkpoint';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dt-ckpt-'));
}

const contents = () => ({
  meta: { step: 12, note: 'x' },
  groups: {
    student: new Map([
      ['w', { shape: [2, 3], values: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
      ['b', { shape: [3], values: Float32Array.from([0.5, -1, 7]) }],
    ]),
    center: new Map([['center', { shape: [2], values: Float32Array.from([9, 8]) }]]),
  },
});

test('checkpoint round trip keeps values, shapes and metadata, and leaves no temp files', () => {
  const dir = tmpdir();
  const f = path.join(dir, 'a.ckpt');
  saveCheckpoint(f, contents());
  const back = loadCheckpoint<{ step: number }>(f);
  assert.equal(back.meta.step, 12);
  assert.deepEqual(Array.from(back.groups.student.get('w')!.values), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(back.groups.student.get('w')!.shape, [2, 3]);
  assert.deepEqual(Array.from(back.groups.center.get('center')!.values), [9, 8]);
  assert.deepEqual(fs.readdirSync(dir), ['a.ckpt']);
});

test('a corrupted checkpoint is a clear error naming the file and the checksums', () => {
  const f = path.join(tmpdir(), 'c.ckpt');
  saveCheckpoint(f, contents());
  const buf = fs.readFileSync(f);
  buf[buf.length - 3] ^= 0xff;
  fs.writeFileSync(f, buf);
  assert.throws(
    () => loadCheckpoint(f),
    (e: unknown) =>
      e instanceof CheckpointError &&
      /c\.ckpt is corrupt: payload sha256 [0-9a-f]{64}, expected [0-9a-f]{64}/.test((e as Error).message),
  );
});

test('a truncated checkpoint is a clear error', () => {
  const f = path.join(tmpdir(), 't.ckpt');
  saveCheckpoint(f, contents());
  const buf = fs.readFileSync(f);
  fs.writeFileSync(f, buf.subarray(0, buf.length - 5));
  assert.throws(() => loadCheckpoint(f), /t\.ckpt is truncated: payload is \d+ bytes, expected \d+/);
  fs.writeFileSync(f, buf.subarray(0, 20));
  assert.throws(() => loadCheckpoint(f), /truncated/);
});

test('a file that is not a checkpoint is rejected by its magic bytes', () => {
  const f = path.join(tmpdir(), 'n.ckpt');
  fs.writeFileSync(f, 'hello world, not a checkpoint');
  assert.throws(() => loadCheckpoint(f), /not a dinotwins checkpoint/);
  assert.throws(() => loadCheckpoint(path.join(tmpdir(), 'missing.ckpt')), /cannot read checkpoint/);
});

test('overwriting is atomic: the old checkpoint survives a failed write', () => {
  const dir = tmpdir();
  const f = path.join(dir, 'o.ckpt');
  saveCheckpoint(f, contents());
  const bad = contents();
  bad.groups.student.set('w', { shape: [5, 5], values: new Float32Array(3) });
  assert.throws(() => saveCheckpoint(f, bad), /has 3 values for shape \[5,5\]/);
  assert.equal(loadCheckpoint<{ step: number }>(f).meta.step, 12);
  assert.deepEqual(fs.readdirSync(dir), ['o.ckpt']);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  encodeSafetensors,
  decodeSafetensors,
  readSafetensors,
  writeSafetensors,
  f32Tensor,
  i64Tensor,
  toFloat32,
  toBigInts,
  SafetensorsError,
  SafeTensor,
} from '../lib/io/safetensors';

/** A file assembled by hand from the spec: u64 LE header length, JSON header, raw data. */
function handMade(header: object | string, data: number[] | Uint8Array, lengthOverride?: number): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(lengthOverride ?? json.length));
  return Buffer.concat([len, json, Buffer.from(data)]);
}

const f32le = (...v: number[]): number[] => [...new Uint8Array(new Float32Array(v).buffer)];

test('encode writes the exact bytes of the spec: header length, padded JSON header, little-endian data', () => {
  const buf = encodeSafetensors([['w', f32Tensor([2], new Float32Array([1, -2]))]], { format: 'pt' });
  const json = '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  const expected = handMade(json + ' '.repeat(pad), [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]); // 1.0f, -2.0f little-endian
  assert.deepEqual([...buf], [...expected]);
  assert.equal((8 + json.length + pad) % 8, 0, 'the data start is 8-byte aligned');
});

test('round trip of every kind of tensor and the metadata; 8-byte dtypes first so each tensor is aligned', () => {
  const u8: SafeTensor = { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 255]) };
  const f64: SafeTensor = {
    dtype: 'F64',
    shape: [2, 1],
    data: new Uint8Array(new Float64Array([Math.PI, -1e300]).buffer),
  };
  const empty: SafeTensor = { dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) };
  const list: Array<[string, SafeTensor]> = [
    ['a.weight', f32Tensor([2, 3], new Float32Array([1, 2, 3, 4, 5, 6]))],
    ['bytes', u8],
    ['count', i64Tensor([], [123456789012345n])],
    ['double', f64],
    ['empty', empty],
  ];
  const back = decodeSafetensors(encodeSafetensors(list, { note: 'hé', format: 'pt' }));
  assert.deepEqual(back.metadata, { note: 'hé', format: 'pt' });
  assert.deepEqual([...back.tensors.keys()], ['count', 'double', 'a.weight', 'empty', 'bytes']);
  for (const [name, t] of list) {
    const got = back.tensors.get(name)!;
    assert.equal(got.dtype, t.dtype, name);
    assert.deepEqual(got.shape, t.shape, name);
    assert.deepEqual([...got.data], [...t.data], name);
    const offset = got.data.byteOffset - back.tensors.get('count')!.data.byteOffset;
    assert.equal(
      offset %
        Math.max(
          1,
          got.data.length /
            Math.max(
              1,
              got.shape.reduce((a, b) => a * b, 1),
            ),
        ),
      0,
      `${name} aligned`,
    );
  }
  assert.deepEqual([...toFloat32(back.tensors.get('a.weight')!)], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...toFloat32(back.tensors.get('double')!)], [Math.fround(Math.PI), -Infinity]);
  assert.deepEqual(toBigInts(back.tensors.get('count')!), [123456789012345n]);
});

test('reads a hand-made file with unsorted offsets, no metadata and a space-padded header', () => {
  const header = {
    b: { dtype: 'I64', shape: [], data_offsets: [4, 12] },
    a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
  };
  const i64 = [...new Uint8Array(new BigInt64Array([-5n]).buffer)];
  const back = decodeSafetensors(handMade(JSON.stringify(header) + '   ', [...f32le(0.5), ...i64]));
  assert.deepEqual(back.metadata, {});
  assert.deepEqual([...toFloat32(back.tensors.get('a')!)], [0.5]);
  assert.deepEqual(toBigInts(back.tensors.get('b')!), [-5n]);
});

test('half-precision and bfloat16 values convert to float32 exactly', () => {
  const h = (bits: number[]): SafeTensor => ({
    dtype: 'F16',
    shape: [bits.length],
    data: new Uint8Array(new Uint16Array(bits).buffer),
  });
  assert.deepEqual(
    [...toFloat32(h([0x3c00, 0xc000, 0x7bff, 0x0001, 0x0000, 0x7c00]))],
    [1, -2, 65504, 2 ** -24, 0, Infinity],
  );
  assert.ok(Number.isNaN(toFloat32(h([0x7e00]))[0]));
  const bf: SafeTensor = {
    dtype: 'BF16',
    shape: [3],
    data: new Uint8Array(new Uint16Array([0x3f80, 0xc040, 0x4049]).buffer),
  };
  assert.deepEqual([...toFloat32(bf)], [1, -3, 3.140625]);
  assert.throws(
    () => toFloat32(i64Tensor([1], [1]), 'bn1.num_batches_tracked'),
    /bn1.num_batches_tracked has dtype I64; expected a floating-point dtype/,
  );
});

test('bad files are errors that say what is wrong', () => {
  const good = encodeSafetensors([['x', f32Tensor([4], new Float32Array([1, 2, 3, 4]))]]);
  const header = (x: object) => ({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ...x });
  const cases: Array<[string, Buffer, RegExp]> = [
    [
      'shorter than the length field',
      good.subarray(0, 5),
      /truncated: 5 bytes, but a safetensors file starts with an 8-byte header length/,
    ],
    ['cut inside the header', good.subarray(0, 20), /truncated: the header is \d+ bytes but only 12 bytes follow/],
    [
      'cut inside the data',
      good.subarray(0, good.length - 3),
      /truncated: tensor "x" ends at byte 16 of the data, but only 13 bytes follow the header/,
    ],
    [
      'huge header length',
      handMade('{}', [], 2 ** 40),
      /header length 1099511627776 bytes is over the 100000000-byte limit/,
    ],
    ['header not JSON', handMade('{"x": ', []), /header is not valid UTF-8 JSON/],
    ['header not an object', handMade('[1, 2]', []), /must be a JSON object starting with '\{'/],
    [
      'overlapping offsets',
      handMade(header({ y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }), f32le(1, 2, 3)),
      /overlapping data_offsets: "x" \[0, 8\) and "y" \[4, 12\)/,
    ],
    [
      'a hole',
      handMade(header({ y: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }), f32le(1, 2, 3, 4)),
      /a hole in the data: bytes \[8, 12\) before "y"/,
    ],
    ['trailing bytes', handMade(header({}), f32le(1, 2, 3)), /4 bytes after the last tensor belong to no tensor/],
    [
      'unknown dtype',
      handMade({ x: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, f32le(1)),
      /tensor "x" has unknown dtype "F33"/,
    ],
    [
      'size does not match dtype and shape',
      handMade({ x: { dtype: 'F64', shape: [2], data_offsets: [0, 8] } }, f32le(1, 2)),
      /data_offsets \[0, 8\) hold 8 bytes, but F64 \[2\] needs 16/,
    ],
    [
      'bad shape',
      handMade({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32le(1)),
      /shape must be an array of non-negative integers, got \[-1\]/,
    ],
    [
      'reversed offsets',
      handMade({ x: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, f32le(1)),
      /data_offsets must be \[begin, end\] with 0 <= begin <= end, got \[4,0\]/,
    ],
    [
      'metadata not strings',
      handMade({ __metadata__: { epochs: 3 } }, []),
      /__metadata__\["epochs"\] must be a string, got 3/,
    ],
  ];
  for (const [what, buf, re] of cases) {
    assert.throws(
      () => decodeSafetensors(buf, 'w.safetensors'),
      (e: Error) => e instanceof SafetensorsError && e.message.startsWith('w.safetensors: ') && re.test(e.message),
      what,
    );
  }
});

test('encoding refuses what it cannot write faithfully', () => {
  const t = f32Tensor([1], new Float32Array([1]));
  assert.throws(
    () =>
      encodeSafetensors([
        ['a', t],
        ['a', t],
      ]),
    /tensor "a" given twice/,
  );
  assert.throws(() => encodeSafetensors([['a', { ...t, shape: [2] }]]), /a has 4 bytes, F32 \[2\] needs 8/);
  assert.throws(() => encodeSafetensors([['__metadata__', t]]), /invalid tensor name/);
  assert.throws(() => encodeSafetensors([['a', t]], { n: 1 as unknown as string }), /metadata "n" must be a string/);
  assert.throws(() => f32Tensor([3], new Float32Array(2)), /2 values for shape \[3\]/);
});

test('writeSafetensors is atomic: no temporary file left, and readSafetensors names the file in errors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-'));
  try {
    const file = path.join(dir, 'w.safetensors');
    const bytes = writeSafetensors(file, [['x', f32Tensor([2], new Float32Array([3, 4]))]]);
    assert.equal(fs.statSync(file).size, bytes);
    assert.deepEqual(fs.readdirSync(dir), ['w.safetensors']);
    assert.deepEqual([...toFloat32(readSafetensors(file).tensors.get('x')!)], [3, 4]);
    fs.truncateSync(file, bytes - 1);
    assert.throws(
      () => readSafetensors(file),
      new RegExp(`^SafetensorsError: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: truncated`),
    );
    assert.throws(() => readSafetensors(path.join(dir, 'none.safetensors')), /cannot read .*none.safetensors/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

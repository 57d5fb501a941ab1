/**
 * Contiguous Slice and Concat on WebGPU run as buffer copies (lib/kernels/webgpu/copy.ts): values
 * against cpu, which cases copy and which go to the stock dispatch, every element written (the
 * output buffers come from a pool filled with NaN first), and sources disposed before the
 * command buffer is submitted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { randn, useWebgpu } from './helpers';
import { registerWebgpuKernels } from '../lib/kernels/webgpu';
import { WebgpuBackendLike, gpuFill } from '../lib/kernels/webgpu/program';

/**
 * Runs `f` and returns its result's values, the shader keys of the programs it dispatched and how
 * many buffer copies it recorded.
 */
async function run(f: () => tf.Tensor): Promise<{ values: number[]; keys: string[]; copies: number }> {
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...r: unknown[]) => unknown };
  const enc = (
    globalThis as unknown as { GPUCommandEncoder: { prototype: { copyBufferToBuffer: (...a: unknown[]) => unknown } } }
  ).GPUCommandEncoder.prototype;
  const orig = be.runWebGPUProgram;
  const origCopy = enc.copyBufferToBuffer;
  const keys: string[] = [];
  let copies = 0;
  be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...r: unknown[]) {
    keys.push(p.shaderKey);
    return orig.call(this, p, ...r);
  };
  enc.copyBufferToBuffer = function (this: unknown, ...a: unknown[]) {
    copies++;
    return origCopy.apply(this, a);
  };
  let out: tf.Tensor;
  try {
    out = f();
  } finally {
    be.runWebGPUProgram = orig;
    enc.copyBufferToBuffer = origCopy;
  }
  const values = Array.from(await out.data());
  out.dispose();
  return { values, keys, copies };
}

type Ran = { keys: string[]; copies: number };
const ran = (r: Ran): string => `ran ${r.keys.join(' ') || 'nothing'}, ${r.copies} copies`;

/** The copy path: `n` buffer copies and no dispatch. */
function expectCopies(r: Ran, label: string, n: number): void {
  assert.ok(r.keys.length === 0 && r.copies === n, `${label}: ${n} copies, no dispatch (${ran(r)})`);
}

/** The stock path: the stock `program` ran, and `copies` buffer copies (0 unless other ops copy). */
function expectStock(r: Ran, label: string, program: string, copies = 0): void {
  assert.ok(
    r.keys.some((k) => k.startsWith(program)) && r.copies === copies,
    `${label}: the stock ${program} program and ${copies} copies (${ran(r)})`,
  );
}

async function onCpu(f: () => tf.Tensor): Promise<number[]> {
  await tf.setBackend('cpu');
  const t = f();
  const v = Array.from(await t.data());
  t.dispose();
  await tf.setBackend('webgpu');
  return v;
}

/** Fills the pool with NaN buffers of `n` floats, so the next outputs of that size start as NaN. */
function poisonPool(n: number, count = 4): void {
  const be = tf.backend() as unknown as WebgpuBackendLike;
  const ts = Array.from({ length: count }, () => gpuFill(be, [n], NaN));
  for (const t of ts) be.disposeData(t.dataId);
}

// tfjs-webgpu computes ops on the CPU for inputs under 1,000 elements that live there, so every
// source here is larger and made on the GPU.
const x4v = randn(3 * 8 * 10 * 16, 1);

const SLICES: Array<{
  name: string;
  shape: number[];
  begin: number[];
  size: number[];
  copy: boolean;
  dtype?: 'int32';
}> = [
  { name: '1-D middle', shape: [3840], begin: [17], size: [1101], copy: true },
  {
    name: 'leading axis of 4-D (a view of a batch)',
    shape: [3, 8, 10, 16],
    begin: [1, 0, 0, 0],
    size: [2, 8, 10, 16],
    copy: true,
  },
  { name: 'one row of 2-D', shape: [64, 60], begin: [5, 3], size: [1, 50], copy: true },
  {
    name: 'single index then partial axis',
    shape: [3, 8, 10, 16],
    begin: [2, 1, 0, 0],
    size: [1, 2, 10, 16],
    copy: true,
  },
  { name: 'int32 1-D', shape: [3840], begin: [4], size: [2000], copy: true, dtype: 'int32' },
  { name: 'columns of 2-D (not contiguous)', shape: [64, 60], begin: [0, 3], size: [64, 20], copy: false },
  {
    name: 'inner axis of 4-D (not contiguous)',
    shape: [3, 8, 10, 16],
    begin: [0, 0, 0, 2],
    size: [3, 8, 10, 3],
    copy: false,
  },
];

test('contiguous slices are buffer copies, the rest stock dispatches; values match cpu and every element is written', async (t) => {
  if (!(await useWebgpu(t))) return;
  registerWebgpuKernels();
  for (const c of SLICES) {
    const make = (): tf.Tensor =>
      c.dtype === 'int32'
        ? tf.tensor(
            Int32Array.from(x4v, (v) => Math.round(100 * v)),
            c.shape,
            'int32',
          )
        : tf.tensor(x4v, c.shape);
    const want = await onCpu(() => tf.tidy(() => tf.slice(make(), c.begin, c.size)));
    const x = make();
    // A dispatch first, so the source is GPU data of the command buffer being recorded.
    const y = tf.tidy(() => tf.mul(x, c.dtype === 'int32' ? tf.scalar(1, 'int32') : 1));
    poisonPool(c.size.reduce((a, b) => a * b));
    const got = await run(() => tf.slice(y, c.begin, c.size));
    assert.deepEqual(got.values, want, `${c.name}: values`);
    if (c.copy) expectCopies(got, c.name, 1);
    else expectStock(got, c.name, 'slice');
    tf.dispose([x, y]);
  }
});

test('splits into contiguous parts are buffer copies (as the flat optimizer splits its parameter vector), the rest stock', async (t) => {
  if (!(await useWebgpu(t))) return;
  registerWebgpuKernels();
  const v = randn(6000, 400);
  const cases: Array<{ name: string; shape: number[]; sizes: number[]; axis: number; copies: number }> = [
    { name: '1-D into parts, one empty', shape: [6000], sizes: [1000, 0, 2500, 2500], axis: 0, copies: 3 },
    { name: 'axis 1 of [1, n]', shape: [1, 6000], sizes: [3000, 3000], axis: 1, copies: 2 },
    { name: 'axis 1 of [2, n] (not contiguous)', shape: [2, 3000], sizes: [1000, 2000], axis: 1, copies: 0 },
  ];
  for (const c of cases) {
    const want = await onCpu(() =>
      tf.tidy(() => tf.concat(tf.split(tf.tensor(v, c.shape), c.sizes, c.axis).map((p) => tf.reshape(p, [-1])))),
    );
    const x = tf.tidy(() => tf.mul(tf.tensor(v, c.shape), 1));
    let shapes: number[][] = [];
    const got = await run(() =>
      tf.tidy(() => {
        const parts = tf.split(x, c.sizes, c.axis);
        shapes = parts.map((p) => p.shape);
        return tf.concat(parts.map((p) => tf.reshape(p, [-1])));
      }),
    );
    assert.deepEqual(
      shapes.map((s) => s[c.axis]),
      c.sizes,
      `${c.name}: part shapes`,
    );
    assert.deepEqual(got.values, want, `${c.name}: values`);
    // The concat that joins the parts for the check copies each non-empty part too.
    if (c.copies) expectCopies(got, `${c.name} (split and concat)`, 2 * c.copies);
    else expectStock(got, `${c.name} (split; the concat copies)`, 'slice', c.sizes.length);
    x.dispose();
  }
});

test('concatenations whose leading axes have size 1 are buffer copies; sources may be disposed before the submit', async (t) => {
  if (!(await useWebgpu(t))) return;
  registerWebgpuKernels();
  // 23 flat parts (more than any dispatch can bind at once), one of them empty: what the flat
  // optimizer does with the gradients.
  const sizes = Array.from({ length: 23 }, (_, i) => (i === 7 ? 0 : 1001 + ((i * 37) % 50)));
  const parts = sizes.map((n, i) => randn(n, 100 + i));
  const want = await onCpu(() => tf.tidy(() => tf.concat(parts.map((p) => tf.tensor1d(p)))));
  // The parts are GPU data from an earlier, already submitted command buffer (the read-back
  // submits). They are freed right after the concat is recorded, and new data of the same sizes
  // is uploaded: uploads are written to the queue ahead of the command buffer still being
  // recorded, so a part's buffer handed back to the pool before the submit would be overwritten
  // with 7s before the copy reads it.
  const srcs = parts.map((p) => tf.mul(tf.tensor1d(p), 1));
  await srcs[0].data();
  poisonPool(sizes.reduce((a, b) => a + b));
  const sevens: tf.Tensor[] = [];
  const got = await run(() => {
    const out = tf.concat(srcs);
    tf.dispose(srcs);
    // Uploads of each size, kept alive, so that the free buffers of that size are taken. They are
    // consumed by a sum (an output of another size): a program's output takes its buffer from the
    // pool before its inputs are uploaded, and an output is written in command order, after the copy.
    for (const n of sizes) {
      for (let k = 0; n > 0 && k < 3; k++) {
        const t7 = tf.tensor1d(new Float32Array(n).fill(7));
        sevens.push(t7, tf.sum(t7));
      }
    }
    return out;
  });
  tf.dispose(sevens);
  assert.deepEqual(got.values, want, 'flat concat values');
  assert.ok(
    got.keys.every((k) => !k.startsWith('concat')) && got.copies === 22,
    `flat concat: 22 copies, no concat program (ran ${got.keys.join(' ')}, ${got.copies} copies)`,
  );

  // Along axis 0 of 4-D (the two Barlow views in one batch), and along axis 1 of [1, n].
  const a = randn(2 * 8 * 8 * 16, 200);
  const b = randn(3 * 8 * 8 * 16, 201);
  const cases: Array<{ name: string; shapes: [number[], number[]]; axis: number; copy: boolean }> = [
    {
      name: 'axis 0 of 4-D',
      shapes: [
        [2, 8, 8, 16],
        [3, 8, 8, 16],
      ],
      axis: 0,
      copy: true,
    },
    {
      name: 'axis 1 of [1, n]',
      shapes: [
        [1, 2048],
        [1, 3072],
      ],
      axis: 1,
      copy: true,
    },
    {
      name: 'axis 1 of [2, n] (not contiguous)',
      shapes: [
        [2, 1024],
        [2, 1536],
      ],
      axis: 1,
      copy: false,
    },
  ];
  for (const c of cases) {
    const w = await onCpu(() =>
      tf.tidy(() => tf.concat([tf.tensor(a, c.shapes[0]), tf.tensor(b, c.shapes[1])], c.axis)),
    );
    const ta = tf.tensor(a, c.shapes[0]);
    const tb = tf.tensor(b, c.shapes[1]);
    const g = await run(() => tf.concat([ta, tb], c.axis));
    assert.deepEqual(g.values, w, `${c.name}: values`);
    if (c.copy) expectCopies(g, c.name, 2);
    else expectStock(g, c.name, 'concat');
    tf.dispose([ta, tb]);
  }
});

test('gradients through copied slices and concatenations match cpu', async (t) => {
  if (!(await useWebgpu(t))) return;
  registerWebgpuKernels();
  const xv = randn(6400, 300);
  const f = (x: tf.Tensor): tf.Scalar => {
    const parts = [tf.slice(x, [0], [1000]), tf.slice(x, [1000], [3000]), tf.slice(x, [4000], [2400])];
    const y = tf.concat([tf.mul(parts[2], 3), tf.square(parts[0]), parts[1]]);
    return tf.sum(tf.mul(y, tf.range(0, 6400, 1, 'float32')));
  };
  const want = await onCpu(() => tf.grad(f)(tf.tensor1d(xv)));
  const x = tf.tensor1d(xv);
  const g = tf.grad(f)(x);
  const got = Array.from(await g.data());
  for (let i = 0; i < want.length; i++)
    assert.ok(
      Math.abs(got[i] - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i])),
      `element ${i}: ${got[i]} vs ${want[i]}`,
    );
  tf.dispose([x, g]);
});

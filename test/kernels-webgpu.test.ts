/**
 * Our WebGPU kernels against the `cpu` backend, on fresh random inputs: convolution forward and both
 * gradients (implicit GEMM, with and without split-K, 4x4 and 8x8 register tiles), Sum/Mean over
 * leading axes, outputs poisoned with NaN first so an element a kernel forgets to write shows up,
 * and a few SGD steps of a tiny conv net whose loss trajectory must match cpu.
 *
 * Needs a WebGPU adapter; on a CPU-only machine run `eval "$(scripts/setup-lavapipe.sh)"` first
 * (lavapipe). Without one every test is skipped with the reason.
 *
 * Error measure: max |ours - cpu| / max |cpu| over the whole output (float32 sums in a different
 * order legitimately differ elementwise near zero), required < 1e-4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { randn, useWebgpu } from './helpers';
import { Rng } from '../lib/util/rng';
import {
  registerWebgpuKernels,
  unregisterWebgpuKernels,
  activeWebgpuKernels,
  leadingReduction,
} from '../lib/kernels/webgpu';
import { conv2dFilterGrad, conv2dForward, conv2dInputGrad, inputGradPhases } from '../lib/kernels/webgpu/conv2d';
import { planGemm, GEMM_DEFAULTS, GemmOptions, autoBlock, resolveTiles } from '../lib/kernels/webgpu/gemm';
import { sumRows } from '../lib/kernels/webgpu/reduce_rows';
import {
  USE_UNIFORMS,
  WebgpuBackendLike,
  gpuFill,
  setPoisonTemporaries,
  wgslProgram,
} from '../lib/kernels/webgpu/program';

const TOL = 1e-4;

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length, 'length');
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    assert.ok(Number.isFinite(got[i]), `element ${i} is ${got[i]} (unwritten or NaN)`);
    maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  return maxDiff / Math.max(maxRef, 1e-30);
}

/** Runs `f` on the cpu backend and returns its output values. */
async function onCpu(f: () => tf.Tensor): Promise<Float32Array> {
  await tf.setBackend('cpu');
  const t = f();
  const v = (await t.data()) as Float32Array;
  t.dispose();
  await tf.setBackend('webgpu');
  return v;
}

async function read(info: tf.TensorInfo): Promise<Float32Array> {
  const t = tf.engine().makeTensorFromTensorInfo(info);
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

interface ConvCase {
  x: [number, number, number, number];
  f: [number, number, number, number];
  stride: number;
  pad: 'same' | 'valid' | number;
}

const CASES: ConvCase[] = [
  { x: [2, 8, 8, 3], f: [3, 3, 3, 16], stride: 1, pad: 'same' }, // stem
  { x: [2, 8, 8, 16], f: [3, 3, 16, 16], stride: 2, pad: 'same' }, // down-sampling 3x3
  { x: [1, 7, 7, 16], f: [1, 1, 16, 64], stride: 2, pad: 'valid' }, // 1x1 shortcut, odd size
  { x: [4, 6, 6, 64], f: [3, 3, 64, 64], stride: 1, pad: 1 }, // 64 channels, explicit pad, batch 4
  { x: [3, 5, 5, 8], f: [3, 3, 8, 24], stride: 2, pad: 'valid' }, // no padding, ragged tiles
];

function caseName(c: ConvCase): string {
  return `x${c.x.join('x')} f${c.f.join('x')} s${c.stride} p${c.pad}`;
}

function convInfo(c: ConvCase) {
  return tf.backend_util.computeConv2DInfo(c.x, c.f, c.stride, 1, c.pad);
}

async function cpuConv(c: ConvCase, xv: Float32Array, wv: Float32Array, dyv: Float32Array) {
  const info = convInfo(c);
  const attrs = {
    strides: c.stride,
    pad: c.pad,
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap;
  const fwd = await onCpu(() => tf.conv2d(tf.tensor4d(xv, c.x), tf.tensor4d(wv, c.f), c.stride, c.pad));
  const dx = await onCpu(
    () =>
      tf
        .engine()
        .runKernel(
          'Conv2DBackpropInput',
          { dy: tf.tensor4d(dyv, info.outShape), filter: tf.tensor4d(wv, c.f) },
          { ...attrs, inputShape: c.x },
        ) as tf.Tensor,
  );
  const dw = await onCpu(
    () =>
      tf
        .engine()
        .runKernel(
          'Conv2DBackpropFilter',
          { x: tf.tensor4d(xv, c.x), dy: tf.tensor4d(dyv, info.outShape) },
          { ...attrs, filterShape: c.f },
        ) as tf.Tensor,
  );
  return { fwd, dx, dw, info, attrs };
}

test('conv2d forward, input and filter gradients match cpu through the registered kernels', async (t) => {
  if (!(await useWebgpu(t))) return;
  registerWebgpuKernels();
  try {
    assert.deepEqual(activeWebgpuKernels().sort(), [
      'AddN',
      'BatchMatMul',
      'Concat',
      'Conv2D',
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'DinotwinsAdamFlat',
      'DinotwinsAxpby',
      'DinotwinsBatchNorm',
      'DinotwinsBatchNormGrad',
      'DinotwinsBatchNormRunning',
      'DinotwinsGelu',
      'DinotwinsGeluGrad',
      'DinotwinsLayerNorm',
      'DinotwinsLayerNormGrad',
      'Mean',
      'Slice',
      'SplitV',
      'Sum',
      '_FusedMatMul',
    ]);
    for (const [i, c] of CASES.entries()) {
      const info = convInfo(c);
      const xv = randn(
        info.inShape.reduce((a, b) => a * b),
        100 + i,
      );
      const wv = randn(
        c.f.reduce((a, b) => a * b),
        200 + i,
      );
      const dyv = randn(
        info.outShape.reduce((a, b) => a * b),
        300 + i,
      );
      const ref = await cpuConv(c, xv, wv, dyv);
      const before = tf.memory().numTensors;
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, c.f);
      const dy = tf.tensor4d(dyv, info.outShape);
      const y = tf.conv2d(x, w, c.stride, c.pad);
      const dx = tf
        .engine()
        .runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...ref.attrs, inputShape: c.x }) as tf.Tensor;
      const dw = tf
        .engine()
        .runKernel('Conv2DBackpropFilter', { x, dy }, { ...ref.attrs, filterShape: c.f }) as tf.Tensor;
      assert.deepEqual(y.shape, info.outShape, `${caseName(c)} forward shape`);
      assert.deepEqual(dx.shape, c.x, `${caseName(c)} dx shape`);
      assert.deepEqual(dw.shape, c.f, `${caseName(c)} dw shape`);
      const ey = relErr((await y.data()) as Float32Array, ref.fwd);
      const edx = relErr((await dx.data()) as Float32Array, ref.dx);
      const edw = relErr((await dw.data()) as Float32Array, ref.dw);
      assert.ok(ey < TOL, `${caseName(c)} forward rel err ${ey}`);
      assert.ok(edx < TOL, `${caseName(c)} input grad rel err ${edx}`);
      assert.ok(edw < TOL, `${caseName(c)} filter grad rel err ${edw}`);
      tf.dispose([x, w, dy, y, dx, dw]);
      assert.equal(tf.memory().numTensors, before, `${caseName(c)} leaked tensors`);
    }
  } finally {
    unregisterWebgpuKernels();
  }
});

test('every output element is written: NaN-poisoned outputs and temporaries, split-K, 8x8 tiles, both layouts, prefetch, vec4 loads', async (t) => {
  if (!(await useWebgpu(t))) return;
  const backend = tf.backend() as unknown as WebgpuBackendLike;
  const variants: Array<{ name: string; opts: Partial<GemmOptions> }> = [
    { name: '4x4 one split', opts: { forceSplits: 1 } },
    { name: '4x4 three splits', opts: { forceSplits: 3 } },
    { name: '8x8 auto splits', opts: { tm: 8, tn: 8, minKPerSplit: 16 } },
    { name: '8x4 one split', opts: { tm: 8, tn: 4, forceSplits: 1 } },
    { name: '4x8 two splits', opts: { tm: 4, tn: 8, forceSplits: 2 } },
    { name: 'auto tiles', opts: { tm: 0, tn: 0 } },
    { name: 'blocked 4x4 one split', opts: { layout: 'blocked', forceSplits: 1 } },
    { name: 'blocked 8x8 three splits', opts: { layout: 'blocked', tm: 8, tn: 8, forceSplits: 3 } },
    { name: 'blocked 8x4 auto splits', opts: { layout: 'blocked', tm: 8, tn: 4, minKPerSplit: 16 } },
    { name: 'prefetch 4x4 three splits', opts: { prefetch: true, forceSplits: 3 } },
    {
      name: 'prefetch blocked 8x8 one split',
      opts: { prefetch: true, layout: 'blocked', tm: 8, tn: 8, forceSplits: 1 },
    },
    {
      name: 'prefetch blocked 4x8 auto splits',
      opts: { prefetch: true, layout: 'blocked', tm: 4, tn: 8, minKPerSplit: 16 },
    },
    { name: 'vec4 4x4 three splits', opts: { vec4: true, forceSplits: 3 } },
    { name: 'vec4 8x4 prefetch one split', opts: { vec4: true, tm: 8, tn: 4, prefetch: true, forceSplits: 1 } },
    { name: 'vec4 blocked 4x8 auto splits', opts: { vec4: true, layout: 'blocked', tm: 4, tn: 8, minKPerSplit: 16 } },
    {
      name: 'vec4 blocked 8x8 prefetch two splits',
      opts: { vec4: true, layout: 'blocked', tm: 8, tn: 8, prefetch: true, forceSplits: 2 },
    },
  ];
  setPoisonTemporaries(true);
  try {
    // CASES[2]: 1x1 stride 2, where three of four input pixels get no tap (zero fill, then one phase GEMM).
    for (const [i, c] of [CASES[1], CASES[2], CASES[3], CASES[4]].entries()) {
      const info = convInfo(c);
      const xv = randn(
        info.inShape.reduce((a, b) => a * b),
        400 + i,
      );
      const wv = randn(
        c.f.reduce((a, b) => a * b),
        500 + i,
      );
      const dyv = randn(
        info.outShape.reduce((a, b) => a * b),
        600 + i,
      );
      const ref = await cpuConv(c, xv, wv, dyv);
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, c.f);
      const dy = tf.tensor4d(dyv, info.outShape);
      for (const v of variants) {
        const label = `${caseName(c)} ${v.name}`;
        const fwd = await read(conv2dForward(backend, x, w, info, v.opts, gpuFill(backend, info.outShape, NaN)));
        const dx = await read(conv2dInputGrad(backend, dy, w, info, v.opts, gpuFill(backend, info.inShape, NaN)));
        const dw = await read(conv2dFilterGrad(backend, x, dy, info, v.opts, gpuFill(backend, info.filterShape, NaN)));
        assert.ok(relErr(fwd, ref.fwd) < TOL, `${label} forward`);
        assert.ok(relErr(dx, ref.dx) < TOL, `${label} input grad`);
        assert.ok(relErr(dw, ref.dw) < TOL, `${label} filter grad`);
      }
      tf.dispose([x, w, dy]);
    }
  } finally {
    setPoisonTemporaries(false);
  }
});

test('vec4 loads run where the channel counts allow them, and match cpu there and in the scalar fallback', async (t) => {
  if (!(await useWebgpu(t))) return;
  const backend = tf.backend() as unknown as WebgpuBackendLike;
  // Which operands load vec4 (shader key suffix after the layout letters: va / vb / vab), per pass.
  const cases: Array<{ c: ConvCase; fwd: string; dx: string; dw: string }> = [
    // stem: 3 input channels, so x is read by scalars, the filter (16 outputs) and dy by vec4s
    { c: CASES[0], fwd: 'vb', dx: 'vab', dw: 'vb' },
    { c: CASES[3], fwd: 'vab', dx: 'vab', dw: 'vab' },
    // 8 -> 24 channels, stride 2: the input gradient runs as stride phases, each vec4 on both sides
    { c: CASES[4], fwd: 'vab', dx: 'vab', dw: 'vab' },
    // 4 input, 6 output channels: only x loads vec4 (forward and filter gradient); the input gradient none
    { c: { x: [2, 5, 5, 4], f: [3, 3, 4, 6], stride: 1, pad: 'same' }, fwd: 'va', dx: '', dw: 'va' },
  ];
  const keys: string[] = [];
  const be = backend as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...r: unknown[]) => unknown };
  const orig = be.runWebGPUProgram;
  be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...r: unknown[]) {
    if (p.shaderKey.startsWith('dtGemm_')) keys.push(p.shaderKey);
    return orig.call(this, p, ...r);
  };
  setPoisonTemporaries(true);
  try {
    for (const [i, k] of cases.entries()) {
      const info = convInfo(k.c);
      const xv = randn(
        info.inShape.reduce((a, b) => a * b),
        700 + i,
      );
      const wv = randn(
        k.c.f.reduce((a, b) => a * b),
        800 + i,
      );
      const dyv = randn(
        info.outShape.reduce((a, b) => a * b),
        900 + i,
      );
      const ref = await cpuConv(k.c, xv, wv, dyv);
      const x = tf.tensor4d(xv, k.c.x);
      const w = tf.tensor4d(wv, k.c.f);
      const dy = tf.tensor4d(dyv, info.outShape);
      const opts: Partial<GemmOptions> = { vec4: true, layout: 'blocked', forceSplits: 2 };
      const suffix = (): string => {
        const got = keys.splice(0).map((key) => /_4x4b(v[ab]*)?_/.exec(key)?.[1] ?? '');
        assert.ok(got.length > 0 && got.every((g) => g === got[0]), `one vec4 choice per pass: ${got.join(',')}`);
        return got[0];
      };
      const label = caseName(k.c);
      assert.ok(
        relErr(await read(conv2dForward(backend, x, w, info, opts, gpuFill(backend, info.outShape, NaN))), ref.fwd) <
          TOL,
        `${label} forward`,
      );
      assert.equal(suffix(), k.fwd, `${label} forward vec4 operands`);
      assert.ok(
        relErr(await read(conv2dInputGrad(backend, dy, w, info, opts, gpuFill(backend, info.inShape, NaN))), ref.dx) <
          TOL,
        `${label} input grad`,
      );
      assert.equal(suffix(), k.dx, `${label} input grad vec4 operands`);
      assert.ok(
        relErr(
          await read(conv2dFilterGrad(backend, x, dy, info, opts, gpuFill(backend, info.filterShape, NaN))),
          ref.dw,
        ) < TOL,
        `${label} filter grad`,
      );
      assert.equal(suffix(), k.dw, `${label} filter grad vec4 operands`);
      tf.dispose([x, w, dy]);
    }
  } finally {
    be.runWebGPUProgram = orig;
    setPoisonTemporaries(false);
  }
});

test('wgslProgram checks a shader key once and builds the code only when asked (not at every dispatch)', () => {
  let built = 0;
  const make = (key: string, code: string) =>
    wgslProgram({
      shaderKey: key,
      outputShape: [4],
      variableNames: ['X'],
      workgroupSize: [4, 1, 1],
      dispatch: [1, 1, 1],
      getUserCode: () => {
        built++;
        return code;
      },
    });
  const ok = `fn main() {\n ${USE_UNIFORMS} result[0] = X[0]; }`;
  const key = `dtTestProgram_${Date.now()}`;
  const p = make(key, ok);
  assert.equal(built, 1, 'checked once when the key is new');
  make(key, ok);
  make(key, ok);
  assert.equal(built, 1, 'not built again for a known key');
  assert.match(p.getUserCode(), /_ = X\[0\];/, 'the phony read of every input is added');
  assert.throws(() => make(`${key}_bad`, 'fn main() { result[0] = X[0]; }'), /must contain USE_UNIFORMS/);
  assert.throws(() => make(`${key}_nomain`, `fn other() { ${USE_UNIFORMS} }`), /must define `fn main\(\) \{`/);
});

test('stride phases of the input gradient cover every input pixel once and every tap once', () => {
  const shapes: Array<{
    x: [number, number, number, number];
    f: [number, number, number, number];
    s: number;
    pad: 'same' | 'valid' | number;
  }> = [
    { x: [1, 8, 8, 1], f: [3, 3, 1, 1], s: 2, pad: 'same' },
    { x: [1, 7, 9, 1], f: [3, 3, 1, 1], s: 2, pad: 1 },
    { x: [1, 7, 7, 1], f: [1, 1, 1, 1], s: 2, pad: 'valid' },
    { x: [1, 5, 5, 1], f: [3, 3, 1, 1], s: 2, pad: 'valid' },
    { x: [1, 11, 10, 1], f: [5, 5, 1, 1], s: 3, pad: 2 },
    { x: [1, 6, 6, 1], f: [2, 2, 1, 1], s: 2, pad: 'valid' },
  ];
  for (const sh of shapes) {
    const c = tf.backend_util.computeConv2DInfo(sh.x, sh.f, sh.s, 1, sh.pad);
    const phases = inputGradPhases(c);
    assert.equal(phases.length, sh.s * sh.s);
    const seen = new Uint8Array(c.inHeight * c.inWidth);
    let taps = 0;
    for (const p of phases) {
      taps += p.nKh * p.nKw;
      for (let a = 0; a < p.Hp; a++) {
        for (let b = 0; b < p.Wp; b++) {
          const h = c.strideHeight * (p.q0h + a) + p.ph - c.padInfo.top;
          const w = c.strideWidth * (p.q0w + b) + p.pw - c.padInfo.left;
          assert.ok(
            h >= 0 && h < c.inHeight && w >= 0 && w < c.inWidth,
            `${JSON.stringify(sh)}: pixel (${h}, ${w}) outside`,
          );
          seen[h * c.inWidth + w]++;
        }
      }
    }
    assert.ok(
      seen.every((n) => n === 1),
      `${JSON.stringify(sh)}: every pixel in exactly one phase`,
    );
    assert.equal(taps, c.filterHeight * c.filterWidth, `${JSON.stringify(sh)}: taps split across phases`);
  }
});

test('a NaN-poisoned output with no kernel run reads back as NaN (the poison check can fail)', async (t) => {
  if (!(await useWebgpu(t))) return;
  const backend = tf.backend() as unknown as WebgpuBackendLike;
  const v = await read(gpuFill(backend, [3, 700], NaN));
  assert.equal(v.length, 2100);
  assert.ok(v.every((e) => Number.isNaN(e)));
  assert.throws(() => relErr(v, new Float32Array(2100)), /unwritten or NaN/);
});

test('auto tile choice: 128-wide tiles only for long extents that waste at most 1/8', () => {
  assert.equal(autoBlock(262144), 8);
  assert.equal(autoBlock(576), 8); // 5 tiles of 128 = 640: 11 % waste
  assert.equal(autoBlock(512), 8);
  assert.equal(autoBlock(660), 4); // 6 tiles of 128 = 768: 16 % waste
  assert.equal(autoBlock(640), 8); // exactly 5 tiles
  assert.equal(autoBlock(256), 4);
  assert.equal(autoBlock(64), 4);
  assert.deepEqual(
    [
      resolveTiles(262144, 64, { ...GEMM_DEFAULTS, tm: 0, tn: 0 }).tm,
      resolveTiles(262144, 64, { ...GEMM_DEFAULTS, tm: 0, tn: 0 }).tn,
    ],
    [8, 4],
  );
  assert.equal(resolveTiles(262144, 64, { ...GEMM_DEFAULTS, tm: 4, tn: 0 }).tm, 4);
  // planGemm resolves auto tiles too: M = 576 with 128-row tiles is 5 tiles.
  assert.equal(planGemm(576, 64, 262144, { ...GEMM_DEFAULTS, tm: 0, tn: 0 }).tilesM, 5);
});

test('split-K planning fills the GPU for the filter gradient and covers K exactly', () => {
  // ResNet-18 first stage at batch 256: dw is [3*3*64, 64], K = 256*32*32.
  const p = planGemm(576, 64, 262144, GEMM_DEFAULTS);
  assert.equal(p.tilesM * p.tilesN, 9);
  assert.ok(p.splits * 9 >= GEMM_DEFAULTS.targetWorkgroups, `splits ${p.splits}`);
  assert.ok(p.kPerSplit % 16 === 0 && (p.splits - 1) * p.kPerSplit < 262144 && p.splits * p.kPerSplit >= 262144);
  // A big forward GEMM is not split.
  assert.equal(planGemm(262144, 64, 576, GEMM_DEFAULTS).splits, 1);
  // forceSplits is honoured and clipped to what K allows.
  assert.equal(planGemm(64, 64, 40, { ...GEMM_DEFAULTS, forceSplits: 10 }).splits, 3);
});

test('Sum and Mean over leading axes match cpu (one and two passes, keepDims, fallback axes)', async (t) => {
  if (!(await useWebgpu(t))) return;
  assert.deepEqual(leadingReduction([4, 8, 8, 16], [2, 0, 1]), { R: 256, C: 16, k: 3 });
  assert.equal(leadingReduction([4, 8], [1]), undefined);
  assert.equal(leadingReduction([4, 8], [0, 1]), undefined);
  registerWebgpuKernels();
  const backend = tf.backend() as unknown as WebgpuBackendLike;
  try {
    const cases: Array<{ shape: number[]; axis: number[]; keepDims: boolean }> = [
      { shape: [4, 8, 8, 16], axis: [0, 1, 2], keepDims: false }, // BN statistics, NHWC
      { shape: [33, 70], axis: [0], keepDims: true }, // C not a multiple of 64
      { shape: [3000, 5], axis: [0], keepDims: false }, // two passes
      { shape: [6, 40, 3], axis: [1], keepDims: false }, // not leading: stock kernel
    ];
    for (const [i, c] of cases.entries()) {
      const n = c.shape.reduce((a, b) => a * b);
      const xv = randn(n, 700 + i);
      for (const op of ['sum', 'mean'] as const) {
        const want = await onCpu(() => tf[op](tf.tensor(xv, c.shape), c.axis, c.keepDims));
        const before = tf.memory().numTensors;
        const x = tf.tensor(xv, c.shape);
        const y = tf[op](x, c.axis, c.keepDims);
        const e = relErr((await y.data()) as Float32Array, want);
        assert.ok(e < TOL, `${op} ${c.shape} axis ${c.axis} rel err ${e}`);
        tf.dispose([x, y]);
        assert.equal(tf.memory().numTensors, before);
      }
    }
    // The direct runner with poisoned output and temporaries, forcing several passes.
    setPoisonTemporaries(true);
    const xv = randn(5000 * 7, 800);
    const x = tf.tensor2d(xv, [5000, 7]);
    const got = await read(
      sumRows(backend, x, 5000, 7, 0.5, [7], gpuFill(backend, [7], NaN), { targetGroups: 8, minRowsPerGroup: 16 }),
    );
    const want = await onCpu(() => tf.mul(tf.sum(tf.tensor2d(xv, [5000, 7]), 0), 0.5));
    assert.ok(relErr(got, want) < TOL);
    x.dispose();
    // More column blocks than one dispatch dimension allows (lowered from 65,535 to 3 here):
    // 1,000 columns = 16 blocks of 64, so each workgroup loops over up to 6 blocks.
    const wv = randn(300 * 1000, 801);
    const w = tf.tensor2d(wv, [300, 1000]);
    const gotW = await read(
      sumRows(backend, w, 300, 1000, 1, [1000], gpuFill(backend, [1000], NaN), {
        targetGroups: 4,
        minRowsPerGroup: 16,
        maxGroupsX: 3,
      }),
    );
    const wantW = await onCpu(() => tf.sum(tf.tensor2d(wv, [300, 1000]), 0));
    assert.ok(relErr(gotW, wantW) < TOL, 'column blocks folded into 3 workgroups');
    w.dispose();
  } finally {
    setPoisonTemporaries(false);
    unregisterWebgpuKernels();
  }
});

test('AddN over more inputs than the device binds at once (a gradient norm over many parameters)', async (t) => {
  if (!(await useWebgpu(t))) return;
  const vals = Array.from({ length: 20 }, (_, i) => randn(1200, 1000 + i));
  const want = await onCpu(() => tf.addN(vals.map((v) => tf.tensor1d(v))));
  registerWebgpuKernels();
  try {
    const before = tf.memory().numTensors;
    const xs = vals.map((v) => tf.tensor1d(v));
    const y = tf.addN(xs);
    const e = relErr((await y.data()) as Float32Array, want);
    assert.ok(e < TOL, `addN rel err ${e}`);
    tf.dispose([...xs, y]);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    unregisterWebgpuKernels();
  }
});

/** Tiny conv net: conv3x3 -> BN (moments) -> relu -> conv3x3/2 -> relu -> global mean -> linear. */
function tinyNet(vars: Record<string, tf.Variable>, x: tf.Tensor4D): tf.Tensor2D {
  let h: tf.Tensor4D = tf.conv2d(x, vars.c1 as tf.Tensor4D, 1, 'same');
  const m = tf.moments(h, [0, 1, 2]);
  h = tf.relu(tf.mul(tf.sub(h, m.mean), tf.rsqrt(tf.add(m.variance, 1e-5)))) as tf.Tensor4D;
  h = tf.relu(tf.conv2d(h, vars.c2 as tf.Tensor4D, 2, 'same'));
  const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D; // [B, C]
  return tf.matMul(pooled, vars.fc as tf.Tensor2D);
}

async function trajectory(backendName: string, steps: number): Promise<number[]> {
  await tf.setBackend(backendName);
  const r = new Rng(42);
  const v = (name: string, shape: number[], std: number) => {
    const init = tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => std * r.normal()),
      shape,
    );
    const variable = tf.variable(init, true, `tinyNet.${name}`);
    init.dispose();
    return variable;
  };
  const vars: Record<string, tf.Variable> = {
    c1: v('c1', [3, 3, 3, 8], 0.3),
    c2: v('c2', [3, 3, 8, 16], 0.15),
    fc: v('fc', [16, 4], 0.3),
  };
  const byName = new Map(Object.values(vars).map((x) => [x.name, x]));
  const x = tf.tensor4d(randn(4 * 8 * 8 * 3, 900), [4, 8, 8, 3]);
  const target = tf.tensor2d(randn(16, 901), [4, 4]);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(tinyNet(vars, x), target))) as tf.Scalar);
    losses.push((await value.data())[0]);
    tf.tidy(() => {
      for (const [name, g] of Object.entries(grads)) {
        const p = byName.get(name)!;
        p.assign(tf.sub(p, tf.mul(g, 0.5)));
      }
    });
    tf.dispose([value, ...Object.values(grads)]);
  }
  tf.dispose([x, target, ...Object.values(vars)]);
  return losses;
}

test('a tiny conv net trains with the same loss trajectory as cpu and leaks nothing', async (t) => {
  if (!(await useWebgpu(t))) return;
  const want = await trajectory('cpu', 4);
  assert.ok(want[3] < want[0], `cpu loss should fall: ${want}`);
  // The default GEMM, and the variant with every option on (8x8 blocked, prefetch, vec4 loads).
  for (const gemm of [{}, { tm: 8, tn: 8, layout: 'blocked', prefetch: true, vec4: true }] as Array<
    Partial<GemmOptions>
  >) {
    registerWebgpuKernels({ gemm: { ...GEMM_DEFAULTS, ...gemm } });
    try {
      const before = tf.memory().numTensors;
      const got = await trajectory('webgpu', 4);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked by training steps');
      for (let i = 0; i < want.length; i++) {
        assert.ok(
          Math.abs(got[i] - want[i]) <= 1e-4 * Math.abs(want[i]) + 1e-6,
          `gemm ${JSON.stringify(gemm)} step ${i}: webgpu ${got[i]} vs cpu ${want[i]}`,
        );
      }
    } finally {
      unregisterWebgpuKernels();
    }
  }
});

test('axpby (the fused EMA update) matches cpu, with a and b changing between calls', async (t) => {
  if (!(await useWebgpu(t))) return;
  registerWebgpuKernels();
  // 3 sizes: one workgroup, ragged, and more elements than one grid-stride pass covers (8192 x 256).
  for (const [i, n] of [7, 1000, 2_200_000].entries()) {
    const xv = randn(n, 700 + i);
    const yv = randn(n, 800 + i);
    for (const [a, b] of [
      [0.996, 0.004],
      [0.5, -2],
    ]) {
      const want = await onCpu(() => tf.add(tf.mul(tf.tensor1d(xv), a), tf.mul(tf.tensor1d(yv), b)));
      await tf.setBackend('webgpu');
      const got = tf.tidy(
        () =>
          tf.engine().runKernel('DinotwinsAxpby', { x: tf.tensor1d(xv), y: tf.tensor1d(yv) }, { a, b }) as tf.Tensor,
      );
      const e = relErr((await got.data()) as Float32Array, want);
      got.dispose();
      assert.ok(e < 1e-6, `n=${n} a=${a} b=${b}: relative error ${e}`);
    }
  }
  assert.throws(
    () => tf.engine().runKernel('DinotwinsAxpby', { x: tf.zeros([3]), y: tf.zeros([4]) }, { a: 1, b: 1 }),
    /shapes differ/,
  );
});

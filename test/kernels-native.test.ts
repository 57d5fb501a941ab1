/**
 * The native (oneDNN) kernels under the wasm backend (lib/kernels/native, native/src) against
 * tfjs' `cpu` backend: forward and gradients of every convolution shape our models use, products,
 * the fused normalisations and the Adam step; the fallback for what they do not handle; bits that
 * do not depend on how many threads ran the parts; a resumed run equal to an uninterrupted one;
 * nothing leaked. Skipped, saying why, where the addon is not built (DINOTWINS_NATIVE=1 makes
 * that an error instead, as CI sets it).
 */
import { test, TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '../lib/kernels/wasm';
import { registerKernelsFor } from '../lib/kernels';
import { nativeStatus } from '../lib/kernels/native/index';
import { NativeError, nativeMode, nativeThreads } from '../lib/kernels/native/addon';
import { batchNormTrain } from '../lib/nn/batchnorm';
import { layerNorm, gelu } from '../lib/nn/layers';
import { ParamStore } from '../lib/nn/params';
import { Optimizer, optimizerConfig } from '../lib/train/optimizers';
import { pretrain } from '../lib/train/trainer';
import { resolveConfig, Method } from '../lib/config/config';
import { readRunRecord } from '../lib/train/runRecord';
import { generateFixtureSplit } from '../lib/data/index';
import { relErr, TINY_RUN } from './helpers';

registerKernelsFor('wasm');
const status = nativeStatus();

/** Skips `t` (with the reason) where the native kernels are not in use. */
function native(t: TestContext): boolean {
  if (!status.ok || status.kernels.length === 0) {
    t.skip(`native kernels not in use: ${status.reason ?? 'not registered'}`);
    return false;
  }
  return true;
}

/** Deterministic pseudo-random tensor (the same on every backend). */
function rand(shape: number[], seed: number, scale = 1, offset = 0): tf.Tensor {
  const n = shape.reduce((p, q) => p * q, 1);
  const v = new Float32Array(n);
  let s = (seed * 2654435761) % 4294967296;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) % 4294967296;
    v[i] = offset + scale * ((s / 4294967296) * 2 - 1);
  }
  return tf.tensor(v, shape);
}

async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = tf.tidy(f);
  const vals = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  return vals;
}

/** Element by element the same value (NaN equals NaN; 0 and -0 differ), naming the first difference. */
function sameValues(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]}, cpu gives ${b[i]}`);
  }
}

/** Runs f on cpu and on wasm (native kernels), compares every output, checks wasm leaked nothing. */
async function agree(name: string, f: () => tf.Tensor[], tol = 1e-5): Promise<void> {
  const a = await on('cpu', f);
  await tf.setBackend('wasm');
  const before = tf.memory().numTensors;
  const b = await on('wasm', f);
  assert.equal(tf.memory().numTensors, before, `${name}: tensors leaked on wasm`);
  a.forEach((x, i) => {
    const e = relErr(x, b[i]);
    assert.ok(e <= tol, `${name}: output ${i} differs from cpu by ${e.toExponential(2)} (tolerance ${tol})`);
  });
}

test('DINOTWINS_NATIVE and DINOTWINS_NATIVE_THREADS are validated', () => {
  assert.equal(nativeMode({}), 'auto');
  assert.equal(nativeMode({ DINOTWINS_NATIVE: '0' }), 'off');
  assert.equal(nativeMode({ DINOTWINS_NATIVE: 'on' }), 'on');
  assert.throws(
    () => nativeMode({ DINOTWINS_NATIVE: 'maybe' }),
    (e: unknown) => e instanceof NativeError && /DINOTWINS_NATIVE="maybe" is not valid/.test((e as Error).message),
  );
  assert.equal(nativeThreads({ DINOTWINS_NATIVE_THREADS: '3' }), 3);
  assert.ok(nativeThreads({}) >= 1);
  for (const bad of ['0', '1.5', 'two', '65'])
    assert.throws(() => nativeThreads({ DINOTWINS_NATIVE_THREADS: bad }), /must be an integer from 1 to 64/);
});

test("the load monitor: other processes' cores from /proc counters, serial above 0.5, parallel again below 0.3", async () => {
  const { LoadMonitor, foreignCores, readLoadSample } = await import('../lib/kernels/native/loadMonitor');
  // 2 cores, 100 jiffies each per interval: busy 150 of 200, of which this process 50 -> others use 1 core.
  assert.equal(foreignCores({ busy: 0, total: 0, own: 0 }, { busy: 150, total: 200, own: 50 }, 2), 1);
  assert.equal(
    foreignCores({ busy: 0, total: 0, own: 0 }, { busy: 60, total: 200, own: 80 }, 2),
    0,
    'never below 0 (our time counted late)',
  );
  let t = 0;
  const samples = [0, 0.1, 0.6, 0.4, 0.2, 0.45, 0.7].map((others) => ({ busy: 0, total: 0, own: 0, others }));
  let i = 0;
  let acc = { busy: 0, total: 0, own: 0 };
  const read = () => {
    const o = samples[Math.min(i++, samples.length - 1)].others;
    acc = { busy: acc.busy + 100 * o + 100, total: acc.total + 200, own: acc.own + 100 }; // we use 1 core, others o cores
    return { ...acc };
  };
  const m = new LoadMonitor(2, { intervalMs: 10 }, read, 0);
  const states = samples.slice(1).map(() => m.shouldRunSerial((t += 10)));
  assert.deepEqual(states, [false, true, true, false, false, true], 'hysteresis between 0.3 and 0.5 cores');
  assert.equal(m.shouldRunSerial(t + 5), true, 'no new sample within the interval');
  if (process.platform === 'linux') assert.ok(readLoadSample(), '/proc is readable here');
});

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];
/** Every convolution of the ResNet-18 and ViT we train, at odd batch sizes (parts of unequal size). */
const CONV_CASES: Array<{
  what: string;
  n: number;
  h: number;
  ci: number;
  co: number;
  k: number;
  s: number;
  pad: Pad;
}> = [
  { what: 'ResNet stem', n: 3, h: 32, ci: 3, co: 16, k: 3, s: 1, pad: 'same' },
  { what: '3x3 stride 1', n: 5, h: 32, ci: 16, co: 16, k: 3, s: 1, pad: 'same' },
  {
    what: '3x3 stride 2 (PyTorch padding 1)',
    n: 3,
    h: 32,
    ci: 16,
    co: 32,
    k: 3,
    s: 2,
    pad: [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ],
  },
  { what: '1x1 stride-2 downsample', n: 3, h: 16, ci: 32, co: 64, k: 1, s: 2, pad: 'valid' },
  { what: '3x3 at 4x4', n: 7, h: 4, ci: 128, co: 128, k: 3, s: 1, pad: 'same' },
  { what: 'ViT patch embedding 4x4 stride 4', n: 3, h: 32, ci: 3, co: 192, k: 4, s: 4, pad: 'valid' },
  { what: 'batch of one', n: 1, h: 8, ci: 8, co: 8, k: 3, s: 1, pad: 'same' },
  // oneDNN 2.6.3's own strided 1x1 kernels overran their scratchpad here (heap corruption); we subsample.
  {
    what: '1x1 stride-2 downsample, 4 channels, 64x64 (width-4 ResNet on 64-px images)',
    n: 9,
    h: 64,
    ci: 4,
    co: 8,
    k: 1,
    s: 2,
    pad: 'valid',
  },
  { what: '1x1 stride 3 on an odd size', n: 3, h: 11, ci: 5, co: 7, k: 1, s: 3, pad: 'valid' },
];

for (const c of CONV_CASES) {
  test(`conv2d forward and gradients match cpu to 1e-5: ${c.what}, x [${c.n},${c.h},${c.h},${c.ci}], ${c.k}x${c.k}x${c.co}, stride ${c.s}`, async (t) => {
    if (!native(t)) return;
    await agree(c.what, () => {
      const x = rand([c.n, c.h, c.h, c.ci], 1) as tf.Tensor4D;
      const w = rand([c.k, c.k, c.ci, c.co], 2, 0.3) as tf.Tensor4D;
      const y = tf.conv2d(x, w, c.s, c.pad);
      const g = rand(y.shape, 3);
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), g)),
      )([x, w]);
      return [y, gx, gw];
    });
  });
}

test('conv2d forward and gradients match cpu on 40 seeded random small shapes (channels 1-20, kernels 1-5, strides 1-3, any padding)', async (t) => {
  if (!native(t)) return;
  let seed = 12345;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 40; i++) {
    const k = 1 + next(5);
    const s = 1 + next(3);
    const h = k + next(12);
    const w = k + next(12);
    const [n, ci, co] = [1 + next(5), 1 + next(20), 1 + next(20)];
    const pads: Pad[] = [
      'same',
      'valid',
      [
        [0, 0],
        [next(k), next(k)],
        [next(k), next(k)],
        [0, 0],
      ],
    ];
    const pad = pads[next(3)];
    await agree(
      `random shape ${i}: x [${n},${h},${w},${ci}], ${k}x${k}x${co}, stride ${s}, pad ${JSON.stringify(pad)}`,
      () => {
        const x = rand([n, h, w, ci], 10 + i) as tf.Tensor4D;
        const f = rand([k, k, ci, co], 100 + i, 0.3) as tf.Tensor4D;
        const y = tf.conv2d(x, f, s, pad);
        const g = rand(y.shape, 200 + i);
        const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad), g)),
        )([x, f]);
        return [y, gx, gf];
      },
    );
  }
});

test('fused conv2d with bias and ReLU (inference convBn, the ViT patch embedding) matches cpu', async (t) => {
  if (!native(t)) return;
  for (const activation of ['linear', 'relu'] as const) {
    await agree(`fused conv ${activation}`, () => {
      const x = rand([3, 16, 16, 8], 4) as tf.Tensor4D;
      const w = rand([3, 3, 8, 12], 5, 0.3) as tf.Tensor4D;
      const bias = rand([12], 6) as tf.Tensor1D;
      return [tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', bias, activation })];
    });
  }
});

test('matMul: transposes, batches, a broadcast batch of one, bias and ReLU match cpu; other broadcasts fall back', async (t) => {
  if (!native(t)) return;
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    await agree(`matMul ${ta}/${tb}`, () => {
      const a = rand(ta ? [33, 7] : [7, 33], 1);
      const b = rand(tb ? [9, 33] : [33, 9], 2);
      return [tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb)];
    });
    await agree(`batched matMul ${ta}/${tb}`, () => {
      const a = rand(ta ? [4, 6, 5] : [4, 5, 6], 3);
      const b = rand(tb ? [4, 3, 6] : [4, 6, 3], 4);
      const b1 = rand(tb ? [1, 3, 6] : [1, 6, 3], 5);
      return [
        tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, ta, tb),
        tf.matMul(a as tf.Tensor3D, b1 as tf.Tensor3D, ta, tb),
      ];
    });
  }
  await agree('projector-sized matMul and its gradients', () => {
    const x = rand([64, 512], 6);
    const w = rand([512, 256], 7, 0.05);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.square(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D))),
    )([x, w]);
    return [gx, gw];
  });
  for (const activation of ['linear', 'relu'] as const) {
    await agree(`fused matMul ${activation}`, () => {
      const a = rand([13, 40], 8);
      const b = rand([40, 11], 9);
      return [tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias: rand([11], 10), activation })];
    });
  }
  // General batch broadcasting: the kernel registered before (the fallback) computes it.
  await agree('broadcast batch axes (fallback)', () => [
    tf.matMul(rand([2, 1, 3, 4], 11) as tf.Tensor4D, rand([1, 3, 4, 5], 12) as tf.Tensor4D),
  ]);
});

test("element-wise ops with every broadcast (full, per row, per column, one value) give cpu's exact bits; sums agree", async (t) => {
  if (!native(t)) return;
  const n = [3, 128, 129]; // above NATIVE_ELEMENTWISE_MIN
  const f = (): tf.Tensor[] => {
    // NaN and infinities in both operands: Maximum/Minimum/comparisons/clip must treat them as cpu does.
    const special = tf.tensor([NaN, Infinity, -Infinity, 0, -0, 1], [6]);
    const a = tf.concat([tf.reshape(rand(n, 1), [-1]), special]);
    const b = tf.concat([tf.reshape(rand(n, 2, 1, 0.2), [-1]), tf.reverse(special)]);
    const flat = [3 * 128 * 129 + 6];
    const row = rand([3, 1, 1], 3);
    const col = rand([129], 4);
    const x = rand(n, 5);
    const s = tf.scalar(0.37);
    const outs: tf.Tensor[] = [];
    for (const op of [tf.add, tf.sub, tf.mul, tf.div, tf.maximum, tf.minimum]) {
      outs.push(op(a, b), op(x, row), op(row, x), op(x, col), op(col, x), op(s, x), op(x, s));
    }
    for (const op of [tf.equal, tf.notEqual, tf.greater, tf.greaterEqual, tf.less, tf.lessEqual]) {
      outs.push(tf.cast(op(a, b), 'float32'), tf.cast(op(x, row), 'float32'), tf.cast(op(x, s), 'float32'));
    }
    const p = tf.greater(x, 0);
    const q = tf.less(x, tf.reshape(col, [1, 1, 129]));
    outs.push(
      tf.cast(tf.logicalAnd(p, q), 'float32'),
      tf.cast(tf.logicalOr(p, q), 'float32'),
      tf.cast(tf.logicalNot(p), 'float32'),
    );
    outs.push(
      tf.abs(a),
      tf.floor(a),
      tf.ceil(a),
      tf.neg(a),
      tf.sqrt(tf.abs(a)),
      tf.clipByValue(a, -0.25, 0.5),
      tf.square(a),
    );
    outs.push(tf.where(tf.greater(a, b), a, b), tf.reshape(a, flat));
    return outs;
  };
  const x = await on('cpu', f);
  const y = await on('wasm', f);
  x.forEach((v, i) => sameValues(y[i], v, `output ${i}`));
  await agree('full sum', () => [tf.sum(rand([3, 300, 129], 3)), tf.sum(rand([300, 129], 4), [0, 1], true)], 1e-6);
});

test('Transpose (float32 and int32, the ViT qkv split) and Sum over leading axes match cpu exactly or to 1e-6', async (t) => {
  if (!native(t)) return;
  const f = (): tf.Tensor[] => {
    const x = rand([8, 65, 3, 6, 32], 1);
    return [
      tf.transpose(x, [2, 0, 3, 1, 4]),
      tf.transpose(rand([300, 129], 2)),
      tf.transpose(rand([4, 50, 7, 40], 3), [3, 1, 0, 2]),
      tf.cast(tf.transpose(tf.cast(tf.mul(x, 100), 'int32'), [4, 3, 2, 1, 0]), 'float32'),
    ];
  };
  const a = await on('cpu', f);
  const b = await on('wasm', f);
  a.forEach((v, i) => sameValues(b[i], v, `transpose ${i}`));
  await agree(
    'leading-axes sums',
    () => [tf.sum(rand([64, 65, 200], 4), [0, 1]), tf.sum(rand([4160, 96], 5), 0, true)],
    1e-6,
  );
});

/** Batch norm through lib/nn's op: composed from tfjs ops on cpu, the fused native kernels on wasm. */
function bnCase(groups: number, relu: boolean, residual: boolean, affine: boolean): () => tf.Tensor[] {
  return () => {
    const x = rand([4, 6, 6, 16], 1, 2, 0.5);
    const gamma = affine ? rand([16], 2, 0.5, 1) : undefined;
    const beta = affine ? rand([16], 3, 0.5) : undefined;
    const res = residual ? rand([4, 6, 6, 16], 4) : undefined;
    const dy = rand([4, 6, 6, 16], 5);
    const ins = [x, ...(affine ? [gamma!, beta!] : []), ...(res ? [res] : [])];
    const f = (...ts: tf.Tensor[]): tf.Tensor =>
      tf.sum(
        tf.mul(
          batchNormTrain(
            ts[0],
            affine ? ts[1] : undefined,
            affine ? ts[2] : undefined,
            relu,
            undefined,
            groups,
            res ? ts[ts.length - 1] : undefined,
          ),
          dy,
        ),
      );
    const y = batchNormTrain(x, gamma, beta, relu, undefined, groups, res);
    return [y, ...tf.grads(f)(ins)];
  };
}

test('fused batch norm (groups, ReLU, residual, affine or not) matches the composed ops on cpu', async (t) => {
  if (!native(t)) return;
  for (const groups of [1, 2]) {
    for (const [relu, residual, affine] of [
      [false, false, true],
      [true, false, true],
      [true, true, true],
      [false, false, false],
    ]) {
      await agree(
        `bn groups ${groups} relu ${relu} residual ${residual} affine ${affine}`,
        bnCase(groups, relu, residual, affine),
        1e-5,
      );
    }
  }
});

test('fused layer norm and GELU match the composed ops on cpu', async (t) => {
  if (!native(t)) return;
  const ps = new ParamStore();
  ps.addValues('ln.weight', [24], randn24(1, 1), 'norm');
  ps.addValues('ln.bias', [24], randn24(2, 0), 'norm');
  await agree('layer norm', () => {
    const x = rand([5, 9, 24], 3, 2, 0.3);
    const dy = rand([5, 9, 24], 4);
    // The parameters are the store's own variables, so their gradients flow through layerNorm.
    const g = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(layerNorm(ps, 'ln', a), dy)))([
      x,
      ps.get('ln.weight'),
      ps.get('ln.bias'),
    ]);
    return [layerNorm(ps, 'ln', x), ...g];
  });
  await agree('gelu', () => {
    const x = rand([7, 300], 5, 4);
    const dy = rand([7, 300], 6);
    return [gelu(x), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(gelu(a), dy)))(x)];
  });
  ps.dispose();
});

function randn24(seed: number, offset: number): Float32Array {
  return (rand([24], seed, 0.3, offset).dataSync() as Float32Array).slice();
}

test('the fused Adam/AdamW step (one pass for p, m, v) matches the tfjs-op update on cpu', async (t) => {
  if (!native(t)) return;
  for (const kind of ['adam', 'adamw'] as const) {
    const run = async (backend: string): Promise<Float32Array[]> => {
      await tf.setBackend(backend);
      const ps = new ParamStore();
      ps.addValues('a.weight', [40, 30], rand([40, 30], 1).dataSync() as Float32Array, 'weight');
      ps.addValues('a.bias', [30], rand([30], 2).dataSync() as Float32Array, 'bias');
      ps.addValues('b.weight', [30, 5], rand([30, 5], 3).dataSync() as Float32Array, 'weight');
      const opt = new Optimizer(optimizerConfig(kind, { clipGradNorm: 0.5 }));
      for (let s = 0; s < 4; s++) {
        const grads = new Map<string, tf.Tensor>(ps.names().map((n, i) => [n, rand(ps.get(n).shape, 10 * s + i)]));
        const gn = opt.apply(ps, grads, 0.01, { weightDecay: 0.05, frozen: s < 2 ? new Set(['b.weight']) : undefined });
        tf.dispose([gn, ...grads.values()]);
      }
      const out = ps.names().map((n) => (ps.get(n).dataSync() as Float32Array).slice());
      opt.dispose();
      ps.dispose();
      return out;
    };
    const a = await run('cpu');
    const b = await run('wasm');
    a.forEach((x, i) =>
      assert.ok(relErr(x, b[i]) <= 1e-5, `${kind}: parameter ${i} differs by ${relErr(x, b[i]).toExponential(2)}`),
    );
  }
});

test('the bits do not depend on how many threads ran the parts (pool against the calling thread alone)', async (t) => {
  if (!native(t)) return;
  const addon = status.addon!;
  const f = (): tf.Tensor[] => {
    const x = rand([9, 16, 16, 16], 1) as tf.Tensor4D;
    const w = rand([3, 3, 16, 16], 2, 0.3) as tf.Tensor4D;
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))),
    )([x, w]);
    return [gx, gw, ...bnCase(2, true, true, true)(), tf.sum(rand([400, 300], 3))];
  };
  const parallel = await on('wasm', f);
  addon.setSerial(true);
  try {
    const serial = await on('wasm', f);
    parallel.forEach((v, i) => assert.deepEqual(serial[i], v, `output ${i}`));
  } finally {
    addon.setSerial(false);
  }
});

test('kernels stay correct after the wasm heap grows (views are taken after every allocation)', async (t) => {
  if (!native(t)) return;
  await tf.setBackend('wasm');
  const heap = (): number =>
    (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
  const before = heap();
  const big = tf.zeros([Math.ceil((before * 1.5) / 4)]); // forces growth
  assert.ok(heap() > before, 'the heap grew');
  await agree('conv after growth', () => [
    tf.conv2d(rand([2, 8, 8, 4], 1) as tf.Tensor4D, rand([3, 3, 4, 4], 2) as tf.Tensor4D, 1, 'same'),
  ]);
  big.dispose();
});

const data = generateFixtureSplit(40, 5);

test('a run resumed from its checkpoint reproduces the uninterrupted run bit for bit on the native path', async (t) => {
  if (!native(t)) return;
  await tf.setBackend('wasm');
  const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'dt-native-'));
  const losses = (dir: string) => readRunRecord(path.join(dir, 'record.json')).steps.map((s) => [s.step, s.loss]);
  for (const method of ['barlow', 'dino-twins'] as Method[]) {
    const c = resolveConfig({ method }, { budget: TINY_RUN });
    const full = tmp();
    const a = await pretrain({ config: c, data, runDir: full });
    const cut = tmp();
    (await pretrain({ config: c, data, runDir: cut, stopAfterSteps: 7 })).model.dispose();
    const b = await pretrain({ config: c, data, runDir: cut });
    assert.deepEqual(b.record.resumedFrom, [6]);
    assert.deepEqual(losses(cut), losses(full), `${method}: per-step losses after resume`);
    const [x, y] = [await a.model.student.snapshot(), await b.model.student.snapshot()];
    for (let i = 0; i < x.length; i++) assert.deepEqual(Array.from(x[i].values), Array.from(y[i].values), x[i].name);
    a.model.dispose();
    b.model.dispose();
  }
});

test('no tensors and no wasm heap leak per training step on the native path', async (t) => {
  if (!native(t)) return;
  await tf.setBackend('wasm');
  const heap = (): number =>
    (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
  const { barlowBench, benchModel } = await import('../bench/common');
  const b = barlowBench({ ...benchModel('r18w16p512'), projector: 256 }, 16);
  // The allocator settles within a few steps (alone: the heap grows once, at step 4; after other tests in
  // this process, once more a few steps later), then stays: a leak would keep growing it.
  for (let i = 0; i < 6; i++) b.step();
  const tensors = tf.memory().numTensors;
  for (let i = 0; i < 10; i++) b.step();
  const bytes = heap();
  for (let i = 0; i < 10; i++) b.step();
  assert.equal(tf.memory().numTensors, tensors, 'tensor count after 20 more steps');
  assert.equal(heap(), bytes, 'wasm heap size over the last 10 of them');
  b.dispose();
});

test('DINOTWINS_NATIVE=0 gives the wasm kernels, and the backend report says so', (t) => {
  if (!native(t)) return;
  const script = `
    const { selectBackend } = require('./lib/backend/select');
    const tf = require('@tensorflow/tfjs');
    selectBackend({ force: 'wasm', print: false }).then((r) => {
      console.log(JSON.stringify({ line: r.line, native: r.details.native, batchNorm: !!tf.getKernel('DinotwinsBatchNorm', 'wasm') }));
    });`;
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: path.join(__dirname, '..'),
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { line: string; native: boolean; batchNorm: boolean };
  };
  const off = run({ DINOTWINS_NATIVE: '0' });
  assert.equal(off.native, false);
  assert.equal(off.batchNorm, false, 'no native fused kernels registered');
  assert.match(off.line, /^backend: wasm \(native kernels off: off \(DINOTWINS_NATIVE=0\)\)/);
  const on1 = run({ DINOTWINS_NATIVE: '1', DINOTWINS_NATIVE_THREADS: '3' });
  assert.equal(on1.native, true);
  assert.match(on1.line, /^backend: wasm \+ oneDNN kernels \(3 threads, oneDNN \d+\.\d+\.\d+\)/);
});

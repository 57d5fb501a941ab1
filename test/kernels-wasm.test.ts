import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '../lib/kernels/wasm';
import { registerKernelsFor } from '../lib/kernels';
import { registerWasmKernels } from '../lib/kernels/wasm';
import { FILTER_GRAD_FORCE, IM2COL_LIMIT } from '../lib/kernels/wasm/conv2dBackpropFilter';
import { relErr } from './helpers';

/** Runs `f` on `backend` and returns its outputs as plain arrays (inputs are made inside f from seeds). */
async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  await tf.ready();
  const out = tf.tidy(f);
  const vals = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  return vals;
}

/** Deterministic pseudo-random tensor (the same on every backend). */
function rand(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((p, q) => p * q, 1);
  const v = new Float32Array(n);
  let s = (seed * 2654435761) % 4294967296;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) % 4294967296;
    v[i] = (s / 4294967296) * 2 - 1;
  }
  return tf.tensor(v, shape);
}

async function agree(name: string, f: () => tf.Tensor[], tol = 1e-4): Promise<void> {
  const a = await on('cpu', f);
  const before = (await tf.setBackend('wasm'), tf.memory().numTensors);
  const b = await on('wasm', f);
  assert.equal(tf.memory().numTensors, before, `${name}: tensors leaked on wasm`);
  a.forEach((x, i) => {
    const e = relErr(x, b[i]);
    assert.ok(e <= tol, `${name}: output ${i} differs from cpu by ${e.toExponential(2)} (tolerance ${tol})`);
  });
}

test('the registrar registers our kernels for wasm, including every training kernel', async () => {
  const names = registerKernelsFor('wasm');
  for (const k of [
    'Conv2DBackpropFilter',
    'Conv2DBackpropInput',
    'UnsortedSegmentSum',
    'BatchMatMul',
    'MaxPoolGrad',
    'DepthwiseConv2dNativeBackpropInput',
    'DepthwiseConv2dNativeBackpropFilter',
  ]) {
    assert.ok(names.includes(k), `${k} is ours`);
    assert.ok(tf.getKernel(k, 'wasm'), `${k} registered`);
  }
  assert.deepEqual(registerWasmKernels().sort(), [...names].sort(), 're-registering is idempotent');
  assert.ok(await tf.setBackend('wasm'));
});

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];
const CONV_CASES: Array<{ n: number; h: number; w: number; ci: number; co: number; k: number; s: number; pad: Pad }> = [
  { n: 2, h: 8, w: 8, ci: 3, co: 16, k: 3, s: 1, pad: 'same' },
  { n: 2, h: 9, w: 7, ci: 5, co: 6, k: 3, s: 2, pad: 'same' },
  { n: 2, h: 8, w: 8, ci: 16, co: 32, k: 3, s: 2, pad: 'same' },
  { n: 1, h: 8, w: 8, ci: 16, co: 32, k: 1, s: 2, pad: 'valid' },
  { n: 2, h: 6, w: 6, ci: 64, co: 64, k: 3, s: 1, pad: 'same' },
  { n: 2, h: 6, w: 6, ci: 32, co: 64, k: 1, s: 1, pad: 'valid' },
  { n: 2, h: 10, w: 10, ci: 3, co: 7, k: 3, s: 2, pad: 'valid' },
  {
    n: 2,
    h: 8,
    w: 8,
    ci: 4,
    co: 4,
    k: 3,
    s: 1,
    pad: [
      [0, 0],
      [1, 2],
      [2, 0],
      [0, 0],
    ],
  },
  {
    n: 1,
    h: 11,
    w: 11,
    ci: 3,
    co: 8,
    k: 5,
    s: 2,
    pad: [
      [0, 0],
      [2, 2],
      [2, 2],
      [0, 0],
    ],
  },
  { n: 2, h: 7, w: 7, ci: 8, co: 8, k: 3, s: 3, pad: 'same' },
  // Stride 1 with an output as large as the input: the shifted-plane im2col (im2colTSame).
  { n: 3, h: 7, w: 9, ci: 3, co: 5, k: 5, s: 1, pad: 'same' },
  {
    n: 2,
    h: 6,
    w: 5,
    ci: 4,
    co: 3,
    k: 3,
    s: 1,
    pad: [
      [0, 0],
      [2, 0],
      [0, 2],
      [0, 0],
    ],
  },
  { n: 2, h: 3, w: 3, ci: 2, co: 2, k: 5, s: 1, pad: 'same' },
];

for (const c of CONV_CASES) {
  test(`conv2d gradients match cpu: x [${c.n},${c.h},${c.w},${c.ci}], ${c.k}x${c.k}x${c.co}, stride ${c.s}, pad ${JSON.stringify(c.pad)}`, async () => {
    await agree('conv2d grads', () => {
      const x = rand([c.n, c.h, c.w, c.ci], 1) as tf.Tensor4D;
      const w = rand([c.k, c.k, c.ci, c.co], 2) as tf.Tensor4D;
      const y = tf.conv2d(x, w, c.s, c.pad);
      const g = rand(y.shape, 3);
      const dx = tf.conv2dTranspose(g as tf.Tensor4D, w, x.shape, c.s, c.pad as 'same' | 'valid');
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), g)),
      )([x, w]);
      return [y, gx, gw, dx];
    });
  });
}

test('the im2col filter gradient split into chunks of images matches cpu', async () => {
  const old = IM2COL_LIMIT.maxFloats;
  IM2COL_LIMIT.maxFloats = 2000; // 3x3x8 taps x 4x4 outputs = 1152 floats per image: one image per chunk
  try {
    await agree('chunked filter grad', () => {
      const x = rand([3, 8, 8, 8], 60) as tf.Tensor4D;
      const g = rand([3, 4, 4, 5], 61);
      return tf.grads((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, w as tf.Tensor4D, 2, 'same'), g)))([
        rand([3, 3, 8, 5], 62),
      ]);
    });
  } finally {
    IM2COL_LIMIT.maxFloats = old;
  }
});

test('the stride-1 im2col split into chunks of images, and the convolution form, match cpu', async () => {
  const old = IM2COL_LIMIT.maxFloats;
  const f = (): tf.Tensor[] => {
    const x = rand([3, 6, 7, 4], 63) as tf.Tensor4D;
    const g = rand([3, 6, 7, 5], 64);
    return tf.grads((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, w as tf.Tensor4D, 1, 'same'), g)))([
      rand([3, 3, 4, 5], 65),
    ]);
  };
  try {
    IM2COL_LIMIT.maxFloats = 2000; // 3x3x4 taps x 6x7 outputs = 1512 floats per image: one image per chunk
    await agree('chunked stride-1 filter grad', f);
    IM2COL_LIMIT.maxFloats = old;
    FILTER_GRAD_FORCE.method = 'conv';
    await agree('convolution-form filter grad', f);
  } finally {
    IM2COL_LIMIT.maxFloats = old;
    FILTER_GRAD_FORCE.method = undefined;
  }
});

test('Sum and Mean over leading or consecutive middle axes (JavaScript) and other axes (stock) match cpu, keepDims, int32', async () => {
  await agree('reductions', () => {
    const x4 = rand([6, 5, 4, 3], 70);
    const x2 = rand([40, 7], 71);
    const wide = rand([3, 50], 72); // fewer rows than columns: stock path
    const xi = tf.cast(tf.mul(rand([6, 4], 73), 10), 'int32');
    const g3 = rand([3, 40, 7], 74); // [groups, rows, C]: batch norm with statistics per view
    return [
      tf.sum(x4, [0, 1, 2]),
      tf.mean(x4, [0, 1, 2]),
      tf.sum(x4, [1, 0]),
      tf.mean(x4, [0, 1, 2], true),
      tf.sum(x4, 0, true),
      tf.sum(x4, [1, 2]),
      tf.mean(x4, -1),
      tf.sum(x4),
      tf.sum(x2, 0),
      tf.mean(x2, 0),
      tf.sum(wide, 0),
      tf.mean(wide, 0),
      tf.cast(tf.sum(xi, 0), 'float32'),
      tf.mean(g3, 1, true),
      tf.sum(g3, 1),
      tf.mean(x4, [1, 2], true),
      tf.sum(x4, [2, 1]),
    ];
  });
});

test('per-channel broadcasting Multiply/Add/Sub/RealDiv (widened rows) match cpu, either operand order', async () => {
  await agree('channel broadcast', () => {
    const x = rand([8, 6, 4, 3], 80);
    const v = tf.add(rand([3], 81), 2);
    const v4 = tf.reshape(v, [1, 1, 1, 3]);
    const odd = rand([7, 5], 82); // 7 rows: cannot be widened
    const w = tf.add(rand([5], 83), 2);
    const m = rand([64, 32], 84);
    const u = tf.add(rand([32], 85), 2);
    return [
      tf.mul(x, v),
      tf.add(x, v4),
      tf.sub(x, v),
      tf.div(x, v),
      tf.sub(v, x),
      tf.div(v4, x),
      tf.mul(v, x),
      tf.sub(odd, w),
      tf.div(w, odd),
      tf.mul(m, u),
      tf.sub(u, m),
      tf.mul(v, v),
      tf.add(x, x),
      tf.mul(x, 3),
    ];
  });
});

test('batched and transposed matMul match cpu (XNNPACK and stock paths)', async () => {
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    await agree(`matMul ${ta} ${tb}`, () => {
      const a = rand(ta ? [70, 33] : [33, 70], 4);
      const b = rand(tb ? [50, 70] : [70, 50], 5);
      const a3 = rand(ta ? [6, 40, 64] : [6, 64, 40], 6);
      const b3 = rand(tb ? [6, 96, 40] : [6, 40, 96], 7);
      const a4 = rand(ta ? [2, 3, 20, 9] : [2, 3, 9, 20], 8);
      const bBroadcast = rand(tb ? [1, 11, 20] : [1, 20, 11], 9);
      const aBig = rand(ta ? [4, 48, 64] : [4, 64, 48], 10);
      const bBig = rand(tb ? [1, 64, 48] : [1, 48, 64], 11);
      return [
        tf.matMul(aBig, bBig, ta, tb),
        tf.matMul(
          bBig
            .reshape(tb ? [64, 48] : [48, 64])
            .expandDims(0)
            .tile([1, 1, 1]),
          aBig,
          !tb,
          !ta,
        ),
        tf.matMul(a, b, ta, tb),
        tf.matMul(a3, b3, ta, tb),
        tf.matMul(
          tf.reshape(a4, [6, a4.shape[2] as number, a4.shape[3] as number]),
          tf.tile(bBroadcast, [6, 1, 1]),
          ta,
          tb,
        ),
        tf.matMul(
          a4,
          tf.reshape(bBroadcast, [1, 1, bBroadcast.shape[1] as number, bBroadcast.shape[2] as number]),
          ta,
          tb,
        ),
      ];
    });
  }
});

test('Slice, SplitV and Unpack (read in place) match cpu for ranks 1-5, contiguous or strided, float32/int32/bool', async () => {
  const f = (): tf.Tensor[] => {
    const x = rand([4, 5, 6, 7, 3], 7);
    const xi = tf.cast(tf.mul(x, 10), 'int32');
    const xb = tf.greater(x, 0);
    const outs: tf.Tensor[] = [
      tf.slice(x, [1, 0, 0, 0, 0], [2, 5, 6, 7, 3]),
      tf.slice(x, [0, 1, 2, 3, 1], [4, 3, 2, 4, 2]),
      tf.slice(tf.reshape(x, [-1]), [17], [400]),
      tf.slice(x, [3, 4, 5, 6, 2], [1, 1, 1, 1, 1]),
      tf.slice(x, [0, 0, 0, 0, 0], [4, 0, 6, 7, 3]),
      ...tf.split(x, [1, 3, 2], 2),
      ...tf.split(tf.reshape(x, [-1]), [100, 2420]),
      ...tf.split(x, 2, 0),
      ...tf.unstack(x, 2),
      ...tf.unstack(tf.reshape(x, [4, 210, 3]), 0),
      tf.cast(tf.slice(xi, [1, 1, 1, 1, 0], [2, 2, 2, 2, 3]), 'float32'),
      ...tf.split(xi, [2, 2], 0).map((p) => tf.cast(p, 'float32')),
      ...tf.unstack(xi, 4).map((p) => tf.cast(p, 'float32')),
      tf.cast(tf.slice(xb, [0, 2, 0, 0, 0], [4, 2, 6, 7, 3]), 'float32'),
    ];
    return outs;
  };
  await agree('slices', f, 0);
});

test('gather gradient (UnsortedSegmentSum) matches cpu', async () => {
  await agree('gather grad', () => {
    const x = rand([7, 5], 10);
    const idx = tf.tensor1d([0, 3, 3, 6, 1, 0, 3], 'int32');
    const g = rand([7, 5], 11);
    const [gx] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(tf.gather(a, idx), g)))([x]);
    const seg = tf.unsortedSegmentSum(rand([6, 4, 2], 12), tf.tensor1d([2, -1, 0, 2, 9, 1], 'int32'), 4);
    return [gx, seg];
  });
});

test('max-pool gradient matches cpu (stock wasm one is wrong)', async () => {
  for (const [k, s, pad] of [
    [2, 2, 'valid'],
    [3, 2, 'same'],
    [3, 1, 'same'],
  ] as const) {
    await agree(`maxPool ${k} ${s} ${pad}`, () => {
      const x = rand([2, 7, 7, 3], 13) as tf.Tensor4D;
      const y = tf.maxPool(x, k, s, pad);
      const g = rand(y.shape, 14);
      const [gx] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, k, s, pad), g)))([x]);
      return [y, gx];
    });
  }
});

test('depthwise conv gradients match cpu (multiplier 1 and 2, stride 1 and 2)', async () => {
  for (const [m, s, pad] of [
    [1, 1, 'same'],
    [2, 2, 'same'],
    [1, 2, 'valid'],
  ] as const) {
    await agree(`depthwise ${m} ${s} ${pad}`, () => {
      const x = rand([2, 7, 6, 3], 15) as tf.Tensor4D;
      const w = rand([3, 3, 3, m], 16) as tf.Tensor4D;
      const y = tf.depthwiseConv2d(x, w, s, pad);
      const g = rand(y.shape, 17);
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad), g)),
      )([x, w]);
      return [y, gx, gw];
    });
  }
});

test('gradients of a small conv + batch-norm + GELU + dense + softmax net match cpu', async () => {
  // wasm sums in float32 sequentially, cpu in a different order; batch-norm gradients subtract
  // nearly equal sums, so they may differ by ~1e-3 relative: the tolerance here is 2e-3.
  await agree(
    'train step',
    () => {
      const x = rand([4, 8, 8, 3], 20) as tf.Tensor4D;
      const w1 = rand([3, 3, 3, 8], 21) as tf.Tensor4D;
      const w2 = rand([3, 3, 8, 16], 22) as tf.Tensor4D;
      const gamma = tf.add(rand([16], 23), 1.5);
      const wd = rand([16, 10], 24);
      const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => {
        let h: tf.Tensor = tf.relu(tf.conv2d(x, a as tf.Tensor4D, 1, 'same'));
        h = tf.conv2d(h as tf.Tensor4D, b as tf.Tensor4D, 2, 'same');
        const { mean, variance } = tf.moments(h, [0, 1, 2]);
        h = tf.mul(tf.mul(tf.sub(h, mean), tf.rsqrt(tf.add(variance, 1e-5))), c);
        h = tf.mul(tf.mul(h, 0.5), tf.add(1, tf.erf(tf.mul(h, Math.SQRT1_2))));
        const logits = tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, d as tf.Tensor2D);
        return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.softmax(tf.mul(logits, 2))), -1)));
      };
      const { value, grads } = tf.valueAndGrads(loss)([w1, w2, gamma, wd]);
      return [value, ...grads];
    },
    2e-3,
  );
});

test('Identity and same-dtype Cast share storage on wasm, and the values outlive the source', async () => {
  await tf.setBackend('wasm');
  const n0 = tf.memory().numTensors;
  const a = tf.tensor2d([
    [1, 2],
    [3, 4],
  ]);
  const b = tf.clone(a);
  const c = tf.cast(a, 'float32');
  const d = tf.cast(tf.tensor1d([1, 0, 2], 'int32'), 'bool');
  const e = tf.cast(tf.tensor1d([1.7, -2.2]), 'int32');
  a.dispose();
  assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(d.dataSync()), [1, 0, 1]);
  assert.equal(d.dtype, 'bool');
  assert.deepEqual(Array.from(e.dataSync()), [1, -2]);
  b.dispose();
  assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3, 4]);
  tf.dispose([c, d, e]);
  assert.ok(tf.memory().numTensors <= n0 + 2, 'only the two int32 temporaries of the casts may remain');
});

test('Transpose (JavaScript) matches cpu for ranks 1-6, size-1 axes and int32/bool', async () => {
  const cases: Array<[number[], number[]]> = [
    [[7], [0]],
    [
      [5, 3],
      [1, 0],
    ],
    [
      [2, 3, 4],
      [2, 0, 1],
    ],
    [
      [2, 3, 4],
      [0, 2, 1],
    ],
    [
      [3, 1, 4, 2],
      [3, 2, 1, 0],
    ],
    [
      [2, 65, 3, 6, 4],
      [2, 0, 3, 1, 4],
    ],
    [
      [2, 3, 1, 2, 3, 2],
      [5, 1, 4, 0, 3, 2],
    ],
    [
      [40, 70],
      [1, 0],
    ],
    [
      [1, 1, 5],
      [2, 0, 1],
    ],
  ];
  for (const [shape, perm] of cases) {
    await agree(
      `transpose [${shape}] by [${perm}]`,
      () => {
        const x = rand(shape, 30);
        return [tf.transpose(x, perm), tf.cast(tf.transpose(tf.cast(tf.mul(x, 100), 'int32'), perm), 'float32')];
      },
      0,
    );
  }
  await tf.setBackend('wasm');
  const b = tf.transpose(
    tf.tensor2d(
      [
        [true, false, true],
        [false, false, true],
      ],
      [2, 3],
      'bool',
    ),
  );
  assert.equal(b.dtype, 'bool');
  assert.deepEqual(Array.from(b.dataSync()), [1, 0, 0, 0, 1, 1]);
  b.dispose();
});

test('gradients of the Barlow Twins and DINO losses and a small ViT block match cpu', async () => {
  const { barlowTwinsLoss } = await import('../lib/losses/barlow');
  const { dinoLoss } = await import('../lib/losses/dino');
  // Both losses standardise or softmax over small batches: float32 summation order matters, 1e-3.
  await agree(
    'loss grads',
    () => {
      const z1 = rand([16, 24], 40) as tf.Tensor2D;
      const z2 = tf.add(tf.mul(z1, 0.5), rand([16, 24], 41)) as tf.Tensor2D;
      const s = rand([4, 8, 32], 42) as tf.Tensor3D;
      const t = tf.mul(rand([2, 8, 32], 43), 3) as tf.Tensor3D;
      const center = tf.mul(rand([32], 44), 0.1) as tf.Tensor1D;
      const gb = tf.grads((a: tf.Tensor, b: tf.Tensor) => barlowTwinsLoss(a as tf.Tensor2D, b as tf.Tensor2D, 0.0051))([
        z1,
        z2,
      ]);
      const gd = tf.grads((a: tf.Tensor) =>
        dinoLoss(a as tf.Tensor3D, t, center, { studentTemp: 0.1, teacherTemp: 0.04 }),
      )([s]);
      // Attention: softmax(q k^T / sqrt(d)) v over [B, heads, T, d] with batched matMuls.
      const q = rand([2, 3, 17, 8], 45);
      const kk = rand([2, 3, 17, 8], 46);
      const v = rand([2, 3, 17, 8], 47);
      const ga = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.square(tf.matMul(tf.softmax(tf.mul(tf.matMul(a, b, false, true), 8 ** -0.5)), c))),
      )([q, kk, v]);
      return [...gb, ...gd, ...ga];
    },
    1e-3,
  );
});

/** Properties of the batched, seeded augmentation pipeline (lib/augment). References: augment-reference.test.ts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../lib/util/rng';
import {
  AUGMENT_PRESETS,
  DEFAULT_JITTER,
  CIFAR10_MEAN,
  CIFAR10_STD,
  IDENTITY_VIEW,
  ViewSpec,
  ViewsConfig,
  augmentGrid,
  barlowViews,
  centerCropBox,
  dinoViews,
  evalImages,
  makeViews,
  normalize,
  sampleCropBox,
  sampleViewParams,
  toFloatImages,
} from '../lib/augment';
import { viewsForMethod } from '../lib/methods/registry';

/** A deterministic, non-symmetric uint8 batch [n, 32, 32, 3]. */
function images(n: number, seed = 7): Uint8Array {
  const r = new Rng(seed);
  const a = new Uint8Array(n * 32 * 32 * 3);
  for (let i = 0; i < a.length; i++) a[i] = r.int(256);
  return a;
}

function raw(view: Partial<ViewSpec>): ViewsConfig {
  return { name: 'test', normalize: false, views: [{ ...IDENTITY_VIEW, ...view }] };
}

async function values(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('normalisation constants and helpers', async () => {
  await tf.setBackend('cpu');
  assert.deepEqual([...CIFAR10_MEAN], [0.4914, 0.4822, 0.4465]);
  assert.deepEqual([...CIFAR10_STD], [0.247, 0.2435, 0.2616]);
  assert.ok(Object.isFrozen(CIFAR10_MEAN) && Object.isFrozen(CIFAR10_STD));
  const before = tf.memory().numTensors;
  const img = new Uint8Array([0, 128, 255, 255, 0, 64]); // two pixels of a 1x2 image
  const x = toFloatImages(img, { height: 1, width: 2 });
  assert.deepEqual(x.shape, [1, 1, 2, 3]);
  const e = evalImages(img, { height: 1, width: 2 });
  const want = [0, 128, 255, 255, 0, 64].map((v, i) => (v / 255 - CIFAR10_MEAN[i % 3]) / CIFAR10_STD[i % 3]);
  assert.ok(maxAbsDiff(await values(e), want) < 1e-5);
  const n = normalize(x);
  assert.ok(maxAbsDiff(await values(n), want) < 1e-5);
  tf.dispose([x, e, n]);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => toFloatImages(new Uint8Array(100)), /not a whole number of 32x32x3 images/);
});

test('presets: shapes, value ranges, no leaks', async () => {
  await tf.setBackend('cpu');
  const img = images(6);
  const before = tf.memory().numTensors;
  const want: Record<string, number[]> = { barlow: [32, 32], dino: [32, 32, 16, 16, 16, 16], eval: [32] };
  for (const name of ['barlow', 'dino', 'eval'] as const) {
    const views = makeViews(img, AUGMENT_PRESETS[name], 3);
    assert.deepEqual(
      views.map((v) => v.shape[1]),
      want[name],
      name,
    );
    for (const v of views) {
      assert.equal(v.dtype, 'float32');
      assert.deepEqual([v.shape[0], v.shape[3], v.shape[1]], [6, 3, v.shape[2]]);
      const d = await values(v);
      for (let i = 0; i < d.length; i++) {
        const c = i % 3;
        const lo = (0 - CIFAR10_MEAN[c]) / CIFAR10_STD[c] - 1e-5;
        const hi = (1 - CIFAR10_MEAN[c]) / CIFAR10_STD[c] + 1e-5;
        assert.ok(d[i] >= lo && d[i] <= hi, `${name}: value ${d[i]} outside the normalised [0, 1] range`);
      }
    }
    tf.dispose(views);
  }
  // Un-normalised views stay in [0, 1].
  const rawViews = makeViews(img, { ...AUGMENT_PRESETS.dino, normalize: false }, 4);
  for (const v of rawViews) {
    const d = await values(v);
    assert.ok(d.every((x) => x >= 0 && x <= 1));
  }
  tf.dispose(rawViews);
  assert.equal(tf.memory().numTensors, before, 'leaked tensors');
});

test('a tensor input is accepted and not disposed; results equal the uint8 path', async () => {
  await tf.setBackend('cpu');
  const img = images(3);
  const t = tf.tidy(() =>
    tf.div(tf.tensor4d(Int32Array.from(img), [3, 32, 32, 3], 'int32').toFloat(), 255),
  ) as tf.Tensor4D;
  const a = makeViews(img, AUGMENT_PRESETS.barlow, 11);
  const b = makeViews(t, AUGMENT_PRESETS.barlow, 11);
  assert.equal(t.isDisposed, false);
  for (let i = 0; i < a.length; i++) assert.ok(maxAbsDiff(await values(a[i]), await values(b[i])) < 1e-6);
  tf.dispose([...a, ...b, t]);
});

test('determinism: same seed, same views; another seed, other views; image b independent of batch size', async () => {
  await tf.setBackend('cpu');
  const img = images(8);
  const cfg = AUGMENT_PRESETS.dino;
  const a = makeViews(img, cfg, 42);
  const b = makeViews(img, cfg, 42);
  const c = makeViews(img, cfg, 43);
  const small = makeViews(img.subarray(0, 4 * 32 * 32 * 3), cfg, 42);
  for (let v = 0; v < a.length; v++) {
    const [da, db, dc] = [await values(a[v]), await values(b[v]), await values(c[v])];
    assert.equal(maxAbsDiff(da, db), 0, `view ${v} not reproducible`);
    assert.ok(maxAbsDiff(da, dc) > 0.5, `view ${v} identical across seeds`);
    const ds = await values(small[v]);
    assert.equal(
      maxAbsDiff(da.subarray(0, ds.length), ds),
      0,
      `view ${v}: the first 4 images change with the batch size`,
    );
  }
  // The two global views differ from each other (independent draws per view).
  assert.ok(maxAbsDiff(await values(a[0]), await values(a[1])) > 0.5);
  tf.dispose([...a, ...b, ...c, ...small]);
});

test('crop with scale (1, 1) and ratio (1, 1) is the identity; at another size it is a resize of the whole image', async () => {
  await tf.setBackend('cpu');
  const img = images(2);
  const x = toFloatImages(img);
  const [y] = makeViews(img, raw({}), 5);
  assert.equal(maxAbsDiff(await values(y), await values(x)), 0);
  for (const antialias of [false, true]) {
    const [yc] = makeViews(img, raw({ interpolation: 'bicubic', antialias }), 5);
    assert.ok(maxAbsDiff(await values(yc), await values(x)) < 1e-6, `bicubic identity, antialias ${antialias}`);
    yc.dispose();
  }
  // Bicubic enlargement overshoots; the view is clamped to [0, 1] as PIL's uint8 output is.
  const [up] = makeViews(img, raw({ interpolation: 'bicubic', scale: [0.1, 0.2] }), 5);
  assert.ok((await values(up)).every((v) => v >= 0 && v <= 1));
  up.dispose();
  assert.throws(
    () => makeViews(img, raw({ interpolation: 'nearest' as 'bilinear' }), 5),
    /interpolation must be 'bilinear' or 'bicubic'/,
  );
  const [z] = makeViews(img, raw({ size: 16 }), 5);
  const want = tf.image.resizeBilinear(x, [16, 16], false, true); // half-pixel centres; 2x downscale
  // With antialias off, a 2x bilinear downscale at half-pixel centres averages 2x2 blocks, as resizeBilinear does.
  const [zNoAa] = makeViews(img, raw({ size: 16, antialias: false }), 5);
  assert.ok(maxAbsDiff(await values(zNoAa), await values(want)) < 1e-6);
  // With antialias, 2x downscale is the PIL triangle filter: weights 1/8, 3/8, 3/8, 1/8 per axis (smoother, same mean).
  const mean = async (t: tf.Tensor) => {
    const m = tf.mean(t);
    const v = (await values(m))[0];
    m.dispose();
    return v;
  };
  assert.ok(Math.abs((await mean(z)) - (await mean(x))) < 0.01);
  tf.dispose([x, y, z, want, zNoAa]);
});

test('flip p = 1 reverses the columns, p = 0 does not', async () => {
  await tf.setBackend('cpu');
  const img = images(3);
  const x = toFloatImages(img);
  const rev = tf.reverse(x, 2);
  const [f] = makeViews(img, raw({ flipP: 1 }), 9);
  assert.equal(maxAbsDiff(await values(f), await values(rev)), 0);
  const [g] = makeViews(img, raw({ flipP: 0 }), 9);
  assert.equal(maxAbsDiff(await values(g), await values(x)), 0);
  // p = 0.5 flips some images of a batch of 32 and not others.
  const img32 = images(32);
  const x32 = toFloatImages(img32);
  const [h] = makeViews(img32, raw({ flipP: 0.5 }), 9);
  const per = 32 * 32 * 3;
  const dh = await values(h);
  const dx = await values(x32);
  let flipped = 0;
  for (let b = 0; b < 32; b++)
    if (maxAbsDiff(dh.subarray(b * per, (b + 1) * per), dx.subarray(b * per, (b + 1) * per)) > 0) flipped++;
  assert.ok(flipped > 4 && flipped < 28, `flipped ${flipped} of 32`);
  tf.dispose([x, rev, f, g, x32, h]);
});

test('grayscale p = 1 gives equal channels; solarize p = 1 inverts values >= 0.5', async () => {
  await tf.setBackend('cpu');
  const img = images(2);
  const [gr] = makeViews(img, raw({ grayscaleP: 1 }), 1);
  const d = await values(gr);
  for (let i = 0; i < d.length; i += 3)
    assert.ok(d[i] === d[i + 1] && d[i] === d[i + 2], `pixel ${i / 3}: ${d[i]}, ${d[i + 1]}, ${d[i + 2]}`);
  const xt = toFloatImages(img);
  const x = await values(xt);
  xt.dispose();
  const [so] = makeViews(img, raw({ solarizeP: 1 }), 1);
  const s = await values(so);
  let inverted = 0;
  for (let i = 0; i < s.length; i++) {
    const want = x[i] >= 0.5 ? 1 - x[i] : x[i];
    assert.ok(Math.abs(s[i] - want) < 1e-7);
    if (x[i] >= 0.5) inverted++;
  }
  assert.ok(inverted > s.length / 4);
  tf.dispose([gr, so]);
});

test('jitter and blur change images only where applied', async () => {
  await tf.setBackend('cpu');
  const img = images(4);
  const x = toFloatImages(img);
  const jit = { p: 1, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1, randomOrder: true };
  const [off] = makeViews(img, raw({ jitter: { ...jit, p: 0 }, blur: { p: 0, sigma: [0.1, 2], kernelSize: 3 } }), 2);
  assert.equal(maxAbsDiff(await values(off), await values(x)), 0);
  const [on] = makeViews(img, raw({ jitter: jit }), 2);
  const [bl] = makeViews(img, raw({ blur: { p: 1, sigma: [1, 2], kernelSize: 3 } }), 2);
  assert.ok(maxAbsDiff(await values(on), await values(x)) > 0.05);
  assert.ok(maxAbsDiff(await values(bl), await values(x)) > 0.05);
  // Blur preserves the mean of each image up to reflect padding and reduces the total variation.
  const tv = (t: tf.Tensor4D) =>
    tf.tidy(() =>
      tf.sum(tf.abs(tf.sub(tf.slice(t, [0, 1, 0, 0], [-1, -1, -1, -1]), tf.slice(t, [0, 0, 0, 0], [-1, 31, -1, -1])))),
    );
  const [tb, tx] = [tv(bl), tv(x)];
  const [tvB, tvX] = [await values(tb), await values(tx)];
  tf.dispose([tb, tx]);
  assert.ok(tvB[0] < 0.7 * tvX[0], `blur did not smooth: ${tvB[0]} vs ${tvX[0]}`);
  tf.dispose([x, off, on, bl]);
});

test('crop sampling follows torchvision: in bounds, area and ratio in range, centre fallback', () => {
  const r = new Rng(3);
  for (let i = 0; i < 500; i++) {
    const c = sampleCropBox(r, 32, 32, [0.08, 1], [3 / 4, 4 / 3]);
    assert.ok(
      c.top >= 0 && c.left >= 0 && c.top + c.height <= 32 && c.left + c.width <= 32 && c.height >= 1 && c.width >= 1,
      JSON.stringify(c),
    );
    // Rounding w and h to integers moves area and ratio a little off the continuous ranges.
    const area = (c.height * c.width) / 1024;
    assert.ok(area >= 0.08 * 0.75 && area <= 1, `area ${area}`);
    assert.ok(c.width / c.height >= 0.75 * 0.8 && c.width / c.height <= (4 / 3) * 1.25, `ratio ${c.width / c.height}`);
  }
  // Impossible scale: every attempt fails, so the centre crop with the closest allowed ratio.
  assert.deepEqual(sampleCropBox(new Rng(1), 32, 32, [2, 3], [3 / 4, 4 / 3]), {
    top: 0,
    left: 0,
    height: 32,
    width: 32,
  });
  assert.deepEqual(centerCropBox(32, 20, [3 / 4, 4 / 3]), { top: 2, left: 0, height: 27, width: 20 });
  assert.deepEqual(centerCropBox(10, 30, [3 / 4, 4 / 3]), { top: 0, left: 8, height: 10, width: 13 });
  // Local crops (0.05, 0.4) are smaller than global crops (0.4, 1) on average.
  const dino = dinoViews({ nLocal: 1 });
  const g = sampleViewParams(dino.views[0], 200, 32, 32, 1, 0).boxes;
  const l = sampleViewParams(dino.views[2], 200, 32, 32, 1, 2).boxes;
  const meanArea = (bs: { height: number; width: number }[]) =>
    bs.reduce((s, b) => s + b.height * b.width, 0) / bs.length / 1024;
  assert.ok(meanArea(g) > 0.6 && meanArea(g) < 0.8, `global mean area ${meanArea(g)}`);
  assert.ok(meanArea(l) > 0.15 && meanArea(l) < 0.3, `local mean area ${meanArea(l)}`);
});

test('preset probabilities are drawn per image as configured', () => {
  const [v1, v2] = barlowViews().views;
  const p1 = sampleViewParams(v1, 2000, 32, 32, 5, 0);
  const p2 = sampleViewParams(v2, 2000, 32, 32, 5, 1);
  const frac = (a: boolean[]) => a.filter(Boolean).length / a.length;
  assert.equal(frac(p1.sigmas.map((s) => s > 0)), 1);
  assert.ok(Math.abs(frac(p2.sigmas.map((s) => s > 0)) - 0.1) < 0.03);
  assert.equal(frac(p1.thresholds.map((t) => t <= 1)), 0);
  assert.ok(Math.abs(frac(p2.thresholds.map((t) => t <= 1)) - 0.2) < 0.03);
  assert.ok(Math.abs(frac(p1.gray) - 0.2) < 0.03);
  assert.ok(Math.abs(frac(p1.flips) - 0.5) < 0.04);
  assert.ok(Math.abs(frac(p1.jitter!.map((j) => j.apply)) - 0.8) < 0.03);
  for (const j of p1.jitter!) {
    assert.ok(j.brightness >= 0.6 && j.brightness <= 1.4 && j.contrast >= 0.6 && j.contrast <= 1.4);
    assert.ok(j.saturation >= 0.8 && j.saturation <= 1.2 && Math.abs(j.hue) <= 0.1);
    assert.deepEqual([...j.order].sort(), [0, 1, 2, 3]);
  }
  assert.ok(p1.sigmas.every((s) => s >= 0.1 && s <= 2));
  // Changing one op's probability leaves the other ops' draws unchanged.
  const p1b = sampleViewParams({ ...v1, grayscaleP: 0.9 }, 2000, 32, 32, 5, 0);
  assert.deepEqual(p1b.boxes, p1.boxes);
  assert.deepEqual(p1b.jitter, p1.jitter);
});

test('method mapping and validation errors name the bad field', async () => {
  await tf.setBackend('cpu');
  const aug = { globalSize: 32, nLocal: 6, localSize: 16, jitterStrength: 1, blur: true };
  assert.equal(viewsForMethod('barlow', { globalSize: 32, jitterStrength: 1, blur: true }).views.length, 2);
  const d = viewsForMethod('dino-twins', aug);
  assert.deepEqual(
    d.views.map((v) => v.size),
    [32, 32, 16, 16, 16, 16, 16, 16],
  );
  assert.deepEqual(
    d.views.map((v) => v.blur?.p ?? 0),
    [1, 0.1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    "DINO's blur probabilities per view",
  );
  assert.deepEqual(d.views[0].jitter, DEFAULT_JITTER);
  // The recipe knobs: blur off entirely, jitter at half strength.
  const mild = viewsForMethod('dino', { ...aug, jitterStrength: 0.5, blur: false });
  assert.ok(
    mild.views.every((v) => v.blur === null),
    'blur: false removes every blur',
  );
  const j = mild.views[0].jitter!;
  assert.deepEqual([j.brightness, j.contrast, j.saturation, j.hue], [0.2, 0.2, 0.1, 0.05]);
  assert.equal(j.p, DEFAULT_JITTER.p, 'strength scales the magnitudes, not the probability');
  assert.throws(
    () => viewsForMethod('dino', { ...aug, jitterStrength: -1 }),
    /strength must be a finite number >= 0, got -1/,
  );
  assert.throws(
    () => viewsForMethod('dino', { globalSize: 32, nLocal: 2, jitterStrength: 1, blur: true }),
    /2 local views need augment.localSize/,
  );
  assert.throws(() => viewsForMethod('simclr', aug), /method "simclr" is not one of barlow, dino, dino-twins/);
  const img = images(1);
  assert.throws(
    () => makeViews(img, raw({ flipP: 1.5 }), 0),
    /test\.views\[0\]\.flipP: probability must be in \[0, 1\], got 1.5/,
  );
  assert.throws(
    () => makeViews(img, raw({ blur: { p: 1, sigma: [0.1, 2], kernelSize: 4 } }), 0),
    /blur\.kernelSize must be an odd integer/,
  );
  assert.throws(() => makeViews(img, raw({ scale: [0.5, 0.2] }), 0), /scale: expected \[lo, hi\]/);
  assert.throws(() => makeViews(img, { name: 'x', normalize: true, views: [] }, 0), /non-empty list/);
});

test('augmentGrid lays out originals and views without leaking', async () => {
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  const img = images(5);
  const g = await augmentGrid(img, dinoViews({ nLocal: 2 }), 1, { nImages: 3, repeats: 2, gap: 1 });
  assert.deepEqual([g.rows, g.cols, g.cell], [3, 1 + 2 * 4, 32]);
  assert.equal(g.height, 3 * 32 + 4);
  assert.equal(g.width, 9 * 32 + 10);
  assert.equal(g.rgb.length, g.height * g.width * 3);
  // The first cell is the original image, byte for byte.
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 32; x++)
      for (let k = 0; k < 3; k++) {
        assert.equal(g.rgb[((1 + y) * g.width + 1 + x) * 3 + k], img[(y * 32 + x) * 3 + k]);
      }
  assert.equal(tf.memory().numTensors, before);
});

test('wasm backend: same views as cpu', async () => {
  require('@tensorflow/tfjs-backend-wasm');
  const img = images(4);
  await tf.setBackend('cpu');
  const cpu = makeViews(img, AUGMENT_PRESETS.dino, 8);
  const cpuData = await Promise.all(cpu.map(values));
  tf.dispose(cpu);
  assert.ok(await tf.setBackend('wasm'), 'wasm backend did not initialise');
  const before = tf.memory().numTensors;
  const wasm = makeViews(img, AUGMENT_PRESETS.dino, 8);
  for (let v = 0; v < wasm.length; v++) {
    // Same formulas; float32 summation order differs between the backends' matMuls.
    assert.ok(maxAbsDiff(await values(wasm[v]), cpuData[v]) < 1e-4, `view ${v}`);
  }
  tf.dispose(wasm);
  assert.equal(tf.memory().numTensors, before);
  await tf.setBackend('cpu');
});

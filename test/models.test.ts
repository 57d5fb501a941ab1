import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../lib/nn/params';
import { close, images, loadTorch } from './reference/torchWeights';
import { Backbone, Head } from '../lib/nn/module';
import {
  buildBackbone,
  countParams,
  resnet,
  vit,
  VIT_PRESETS,
  bicubicMatrix,
  mlpHead,
  barlowProjector,
  dinoHead,
  lastLayerParamNames,
} from '../lib/models';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ref = any;
/** DINOHead's and the Barlow Twins projector's shapes in test/reference/models_ref.py (its constructors' defaults). */
const HEAD = { out: 4096, hidden: 2048, bottleneck: 256, nlayers: 3, useBn: false, normLastLayer: true };
const PROJ = { hidden: 2048, out: 2048, layers: 3 };
/** A small DINO head. */
const small = (o: Partial<typeof HEAD> = {}) => ({ ...HEAD, out: 9, hidden: 8, bottleneck: 4, ...o });
const REF: Ref = JSON.parse(fs.readFileSync(path.join(__dirname, 'reference', 'models_ref.json'), 'utf8'));

function outWeights(shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, (_, j) => Math.cos(0.5 * j)),
    shape,
  );
}

/** Gradient of sum(f(ps) * cos-weights) with respect to one named parameter. */
function gradOf(ps: ParamStore, name: string, f: () => tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const y = f();
      return tf.sum(tf.mul(y, outWeights(y.shape))) as tf.Scalar;
    }, [ps.get(name)]);
    return grads[ps.get(name).name];
  });
}

test('parameter counts of the real models match the PyTorch definitions', async () => {
  await tf.setBackend('cpu');
  const c = REF.counts;
  assert.equal(c.resnet18_w64, 11168832, 'the reference itself: ResNet-18-CIFAR without fc');
  const before = tf.memory().numTensors;
  assert.equal(countParams(buildBackbone({ kind: 'resnet', depth: 18, width: 64 })), c.resnet18_w64);
  assert.equal(countParams(buildBackbone({ kind: 'resnet', depth: 18, width: 16 })), c.resnet18_w16);
  assert.equal(countParams(buildBackbone({ kind: 'resnet', depth: 50 })), c.resnet50_w64);
  assert.equal(countParams(buildBackbone({ kind: 'resnet', depth: 50, width: 16 })), c.resnet50_w16);
  assert.equal(countParams(buildBackbone({ kind: 'vit', preset: 'tiny4-seed' })), c.vit_tiny4_seed);
  assert.equal(countParams(buildBackbone({ kind: 'vit', preset: 'tiny4' })), c.vit_tiny4);
  assert.equal(countParams(dinoHead(512, HEAD)), c.dino_head_512_default);
  assert.equal(countParams(dinoHead(512, { ...HEAD, normLastLayer: false })), c.dino_head_512_default_g_trainable);
  assert.equal(countParams(dinoHead(192, { ...HEAD, useBn: true })), c.dino_head_192_bn);
  assert.equal(countParams(barlowProjector(512, PROJ)), c.barlow_projector_512_default);
  assert.equal(tf.memory().numTensors, before, 'countParams disposes its scratch store');
  assert.equal(buildBackbone({ kind: 'resnet', depth: 18 }).featureDim, 512);
  assert.equal(buildBackbone({ kind: 'resnet', depth: 50, width: 16 }).featureDim, 512);
  assert.equal(buildBackbone({ kind: 'vit', preset: 'tiny4' }).featureDim, 192);
});

for (const key of ['resnet18', 'resnet50'] as const) {
  test(`${key} forward (eval, train), running statistics and a gradient match PyTorch`, async () => {
    await tf.setBackend('cpu');
    const R = REF[key];
    const net = resnet({ depth: R.depth, width: R.width });
    const ps = new ParamStore(key);
    net.init(ps, 1, 'backbone.');
    loadTorch(ps, R.params, 'backbone.');
    const x = images(R.input[0], R.input[1], R.input[2]);
    const before = tf.memory().numTensors;
    const evalOut = tf.tidy(() => net.forward(ps, x, { training: false }, 'backbone.'));
    assert.deepEqual(evalOut.shape, [R.input[0], net.featureDim]);
    close(await evalOut.data(), R.eval_out, 1e-4, `${key} eval`);
    const g = gradOf(ps, 'backbone.conv1.weight', () => net.forward(ps, x, { training: true }, 'backbone.'));
    close(await g.data(), R.grad_conv1, 1e-3, `${key} d/d conv1.weight (train mode)`);
    for (const [name, values] of Object.entries(R.stats_after_train)) {
      close(
        await ps.get(`backbone.${name}`).data(),
        values as number[],
        1e-4,
        `${key} ${name} after one train forward`,
      );
    }
    const trainOut = tf.tidy(() => net.forward(ps, x, { training: true, updateStats: false }, 'backbone.'));
    close(await trainOut.data(), R.train_out, 1e-4, `${key} train`);
    tf.dispose([evalOut, g, trainOut]);
    assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
    x.dispose();
    ps.dispose();
  });
}

test('ViT forward, last-block attention and position-embedding gradient match PyTorch (16x16, and 8x8 / 12x12 / 8x12 with interpolation)', async () => {
  await tf.setBackend('cpu');
  const V = REF.vit;
  const net = vit(V.config);
  const ps = new ParamStore('vit');
  net.init(ps, 3);
  loadTorch(ps, V.params);
  for (const run of V.runs) {
    const x = images(2, run.size[0], run.size[1]);
    const before = tf.memory().numTensors;
    const attn: tf.Tensor4D[] = [];
    const y = tf.tidy(() => net.forward(ps, x, { training: true, attention: attn }));
    assert.equal(attn.length, V.config.depth, 'one attention map per block');
    assert.deepEqual(attn[attn.length - 1].shape, run.attn_shape);
    close(await y.data(), run.out, 1e-4, `vit ${run.size} out`);
    close(await attn[attn.length - 1].data(), run.attn_last, 1e-4, `vit ${run.size} attention`);
    const g = gradOf(ps, 'pos_embed', () => net.forward(ps, x, { training: true }));
    close(await g.data(), run.grad_pos_embed, 1e-3, `vit ${run.size} d/d pos_embed`);
    tf.dispose([y, g, ...attn]);
    assert.equal(tf.memory().numTensors, before, 'no leaked tensors (attention maps disposed by the caller)');
    x.dispose();
  }
  ps.dispose();
});

test('bicubicMatrix reproduces F.interpolate(bicubic, align_corners=False, scale_factor)', () => {
  for (const c of REF.bicubic)
    close(Array.from(bicubicMatrix(c.in, c.out, c.scale)), c.matrix, 1e-9, `bicubic ${c.in}->${c.out}`);
});

test('DINO head (weight-normalised last layer, with and without BN, 1 or 3 layers) matches DINOHead', async () => {
  await tf.setBackend('cpu');
  for (const D of REF.dino_head) {
    const c = D.config;
    const head = dinoHead(c.inDim, {
      out: c.out,
      hidden: c.hidden,
      bottleneck: c.bottleneck,
      nlayers: c.nlayers,
      useBn: c.useBn,
      normLastLayer: true,
    });
    const ps = new ParamStore('dino');
    head.init(ps, 5, 'head.');
    loadTorch(ps, D.params, 'head.');
    const x = tf.tensor2d(D.input, [D.input.length / c.inDim, c.inDim]);
    const before = tf.memory().numTensors;
    const what = `dino head bn=${c.useBn} nlayers=${c.nlayers} train=${D.train}`;
    const y = tf.tidy(() => head.forward(ps, x, { training: D.train, updateStats: false }, 'head.'));
    assert.deepEqual(y.shape, [x.shape[0], c.out]);
    close(await y.data(), D.out, 1e-4, what);
    const g = gradOf(ps, 'head.last_layer.weight_v', () =>
      head.forward(ps, x, { training: D.train, updateStats: false }, 'head.'),
    );
    close(await g.data(), D.grad_weight_v, 1e-3, `${what} d/d weight_v`);
    tf.dispose([y, g]);
    assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
    x.dispose();
    ps.dispose();
  }
});

test('Barlow Twins projector matches the official projector (train and eval mode, running stats)', async () => {
  await tf.setBackend('cpu');
  for (const B of REF.barlow) {
    const c = B.config;
    const head = barlowProjector(c.inDim, { hidden: c.hidden, out: c.out, layers: c.layers });
    const ps = new ParamStore('proj');
    head.init(ps, 6);
    loadTorch(ps, B.params);
    const x = tf.tensor2d(B.input, [B.input.length / c.inDim, c.inDim]);
    const y = tf.tidy(() => head.forward(ps, x, { training: B.train }));
    close(await y.data(), B.out, 1e-4, `projector train=${B.train}`);
    close(await ps.get('1.running_mean').data(), B.running_mean_after, 1e-4, `projector running_mean train=${B.train}`);
    close(await ps.get('1.running_var').data(), B.running_var_after, 1e-4, `projector running_var train=${B.train}`);
    tf.dispose([x, y]);
    ps.dispose();
  }
});

test('batch norm in inference mode uses running statistics: an image gives the same features alone or in a batch of 8', async () => {
  await tf.setBackend('cpu');
  const net = resnet({ depth: 18, width: 4 });
  const ps = new ParamStore('bn');
  net.init(ps, 7);
  const x = tf.tidy(() => tf.add(tf.mul(images(8, 16, 16), 0.8), 0.3) as tf.Tensor4D); // [8, 16, 16, 3]
  // A few training-mode passes move the running statistics away from (0, 1).
  for (let i = 0; i < 3; i++) tf.tidy(() => net.forward(ps, x, { training: true }));
  const rm = await ps.get('bn1.running_mean').data();
  assert.ok(Math.max(...Array.from(rm, Math.abs)) > 1e-3, 'running mean was updated by training-mode forwards');
  const snap = await ps.snapshot();
  const batch = tf.tidy(() => net.forward(ps, x, { training: false }));
  const third = tf.tidy(() => net.forward(ps, tf.slice(x, [2, 0, 0, 0], [1, 16, 16, 3]), { training: false }));
  close(
    await third.data(),
    Array.from((await batch.data()).subarray(2 * net.featureDim, 3 * net.featureDim)),
    1e-5,
    'image 2 alone vs in the batch',
  );
  const after = await ps.snapshot();
  assert.deepEqual(
    after.map((s) => Array.from(s.values)),
    snap.map((s) => Array.from(s.values)),
    'inference mode changes no parameter or buffer',
  );
  // In training mode the same image's features do depend on the batch.
  const trainBatch = tf.tidy(() => net.forward(ps, x, { training: true, updateStats: false }));
  const trainPair = tf.tidy(() =>
    net.forward(ps, tf.slice(x, [2, 0, 0, 0], [2, 16, 16, 3]), { training: true, updateStats: false }),
  );
  const a = (await trainBatch.data()).subarray(2 * net.featureDim, 3 * net.featureDim);
  const b = (await trainPair.data()).subarray(0, net.featureDim);
  assert.ok(
    a.some((v, i) => Math.abs(v - b[i]) > 1e-4),
    'training mode uses batch statistics',
  );
  tf.dispose([x, batch, third, trainBatch, trainPair]);
  ps.dispose();
});

test('training-mode batch norm updates running stats as PyTorch (momentum 0.1, unbiased variance)', async () => {
  await tf.setBackend('cpu');
  // A projector with a known input: after one pass, running_mean = 0.9*0 + 0.1*mean(h), running_var = 0.9 + 0.1*var_unbiased(h).
  const head = mlpHead(3, [{ out: 2, bn: true, bias: true }]);
  const ps = new ParamStore('bnstat');
  head.init(ps, 8);
  const x = tf.tensor2d([
    [1, 2, 3],
    [0, -1, 4],
    [2, 2, -1],
    [0.5, 0, 0],
  ]);
  const h = (await tf
    .tidy(() => tf.add(tf.matMul(x, ps.get('0.weight') as tf.Tensor2D), ps.get('0.bias')))
    .array()) as number[][];
  tf.tidy(() => head.forward(ps, x, { training: true }));
  for (let j = 0; j < 2; j++) {
    const col = h.map((r) => r[j]);
    const mean = col.reduce((s, v) => s + v, 0) / col.length;
    const varU = col.reduce((s, v) => s + (v - mean) ** 2, 0) / (col.length - 1);
    close([(await ps.get('1.running_mean').data())[j]], [0.1 * mean], 1e-5, `running_mean[${j}]`);
    close([(await ps.get('1.running_var').data())[j]], [0.9 + 0.1 * varU], 1e-5, `running_var[${j}]`);
  }
  const kept = Array.from(await ps.get('1.running_var').data());
  tf.tidy(() => head.forward(ps, x, { training: true, bnMomentum: 0 }));
  assert.deepEqual(Array.from(await ps.get('1.running_var').data()), kept, 'momentum 0 keeps the statistics');
  x.dispose();
  ps.dispose();
});

interface Case {
  name: string;
  net: Backbone;
  size: number;
}
const SMALL_BACKBONES: Case[] = [
  { name: 'resnet18 w4', net: buildBackbone({ kind: 'resnet', depth: 18, width: 4 }), size: 16 },
  { name: 'resnet50 w2', net: buildBackbone({ kind: 'resnet', depth: 50, width: 2 }), size: 16 },
  {
    name: 'vit tiny',
    net: buildBackbone({ kind: 'vit', preset: 'tiny4-seed', dim: 16, depth: 2, heads: 2, mlpDim: 32 }),
    size: 32,
  },
];

test('backbones: shapes, no leaks over a forward and a gradient step, every trainable parameter gets a gradient', async () => {
  await tf.setBackend('cpu');
  for (const c of SMALL_BACKBONES) {
    const ps = new ParamStore(c.name);
    c.net.init(ps, 11, 'backbone.');
    const x = images(2, c.size, c.size);
    const before = tf.memory().numTensors;
    const y = tf.tidy(() => c.net.forward(ps, x, { training: true }, 'backbone.'));
    assert.deepEqual(y.shape, [2, c.net.featureDim], c.name);
    y.dispose();
    const names = ps.trainableNames();
    const vars = names.map((n) => ps.get(n));
    const norms = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.mean(tf.square(c.net.forward(ps, x, { training: true }, 'backbone.'))) as tf.Scalar,
        vars,
      );
      value.dispose();
      // One SGD step, then the per-parameter gradient norms.
      for (const v of vars) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.01)));
      return tf.stack(vars.map((v) => tf.norm(grads[v.name])));
    });
    const n = await norms.data();
    norms.dispose();
    const zero = names.filter((_, i) => !(n[i] > 0));
    assert.deepEqual(zero, [], `${c.name}: parameters without gradient`);
    assert.equal(tf.memory().numTensors, before, `${c.name}: no leaked tensors`);
    x.dispose();
    ps.dispose();
  }
});

test('ViT interpolates position embeddings for smaller crops and rejects sizes that are not patch multiples', async () => {
  await tf.setBackend('cpu');
  const net = vit({ ...VIT_PRESETS['tiny4-seed'], dim: 8, depth: 1, heads: 2, mlpDim: 8 });
  const ps = new ParamStore('vit-small');
  net.init(ps, 12);
  const attn: tf.Tensor4D[] = [];
  const y = tf.tidy(() => net.forward(ps, images(3, 16, 16), { training: false, attention: attn }));
  assert.deepEqual(y.shape, [3, 8]);
  assert.deepEqual(attn[0].shape, [3, 2, 17, 17], 'local crop: 4x4 patches + CLS');
  const rowSums = await tf.tidy(() => tf.sum(attn[0], -1)).data();
  for (const s of rowSums) assert.ok(Math.abs(s - 1) < 1e-5, 'attention rows sum to 1');
  tf.dispose([y, ...attn]);
  const bad = images(1, 18, 18);
  assert.throws(() => net.forward(ps, bad, { training: false }), /18x18 is not a multiple of the patch size 4/);
  bad.dispose();
  ps.dispose();
});

test('heads: shapes, no leaks, DINO last layer g = 1 and frozen, lastLayerParamNames', async () => {
  await tf.setBackend('cpu');
  const heads: Array<[Head, number]> = [
    [mlpHead(6, [{ out: 5, bn: true, act: 'relu' }, { out: 4, act: 'gelu', bias: false }, { out: 3 }]), 3],
    [barlowProjector(6, { hidden: 8, out: 7, layers: 3 }), 7],
    [barlowProjector(6, { hidden: 8, out: 7, layers: 1 }), 7],
    [dinoHead(6, small()), 9],
    [dinoHead(6, small({ nlayers: 2, useBn: true, normLastLayer: false })), 9],
  ];
  for (const [head, outDim] of heads) {
    assert.equal(head.outDim, outDim);
    const ps = new ParamStore(head.kind);
    head.init(ps, 13, 'h.');
    const x = tf.tidy(() => tf.randomNormal([4, 6], 0, 1, 'float32', 1)) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const y = tf.tidy(() => head.forward(ps, x, { training: true }, 'h.'));
    assert.deepEqual(y.shape, [4, outDim], head.kind);
    y.dispose();
    const vars = ps.trainableNames().map((n) => ps.get(n));
    const { value, grads } = tf.variableGrads(
      () => tf.sum(head.forward(ps, x, { training: true }, 'h.')) as tf.Scalar,
      vars,
    );
    assert.equal(Object.keys(grads).length, vars.length, `${head.kind}: a gradient per trainable parameter`);
    tf.dispose([value, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before, `${head.kind}: no leaked tensors`);
    assert.throws(
      () => head.forward(ps, tf.zeros([4, 5]) as tf.Tensor2D, { training: true }, 'h.'),
      /expected \[B, 6\], got \[4,5\]/,
    );
    x.dispose();
    ps.dispose();
  }
  const ps = new ParamStore('dino-init');
  const h = dinoHead(6, small());
  h.init(ps, 14, 'head.');
  assert.deepEqual(
    lastLayerParamNames('head.').filter((n) => ps.has(n)),
    ['head.last_layer.weight_g', 'head.last_layer.weight_v'],
  );
  assert.deepEqual(Array.from(await ps.get('head.last_layer.weight_g').data()), new Array(9).fill(1));
  assert.equal(ps.infoOf('head.last_layer.weight_g').trainable, false, 'normLastLayer fixes g');
  assert.deepEqual(
    Array.from(await ps.get('head.mlp.0.bias').data()),
    new Array(8).fill(0),
    'DINO MLP biases start at zero',
  );
  assert.deepEqual(ps.names(), [
    'head.mlp.0.weight',
    'head.mlp.0.bias',
    'head.mlp.2.weight',
    'head.mlp.2.bias',
    'head.mlp.4.weight',
    'head.mlp.4.bias',
    'head.last_layer.weight_v',
    'head.last_layer.weight_g',
  ]);
  ps.dispose();
  assert.ok(Object.isFrozen(VIT_PRESETS));
});

test('same seed gives the same weights; a different seed different ones', async () => {
  await tf.setBackend('cpu');
  const nets: Array<Backbone | Head> = [
    buildBackbone({ kind: 'resnet', depth: 18, width: 4 }),
    buildBackbone({ kind: 'vit', preset: 'tiny4-seed', depth: 1 }),
    dinoHead(16, { ...HEAD, out: 32, hidden: 8, bottleneck: 4 }),
  ];
  for (const net of nets) {
    const a = new ParamStore('a');
    const b = new ParamStore('b');
    const c = new ParamStore('c');
    net.init(a, 42);
    net.init(b, 42);
    net.init(c, 43);
    const sa = await a.snapshot();
    const sb = await b.snapshot();
    const sc = await c.snapshot();
    assert.deepEqual(
      sb.map((s) => Array.from(s.values)),
      sa.map((s) => Array.from(s.values)),
      `${net.kind}: same seed`,
    );
    const w = sa.findIndex((s) => s.kind === 'weight');
    assert.notDeepEqual(Array.from(sc[w].values), Array.from(sa[w].values), `${net.kind}: different seed`);
    [a, b, c].forEach((p) => p.dispose());
  }
  // Initialisation statistics: kaiming fan_out for ResNet convs, trunc normal 0.02 for ViT linears.
  const ps = new ParamStore('stats');
  buildBackbone({ kind: 'resnet', depth: 18, width: 16 }).init(ps, 1);
  const w = (await ps.get('layer3.0.conv2.weight').data()) as Float32Array; // [3, 3, 64, 64], std sqrt(2 / (64*9))
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  assert.ok(Math.abs(std / Math.sqrt(2 / (64 * 9)) - 1) < 0.03, `kaiming std ${std}`);
  ps.dispose();
  const pv = new ParamStore('vstats');
  buildBackbone({ kind: 'vit', preset: 'tiny4-seed', depth: 1 }).init(pv, 1);
  const q = (await pv.get('blocks.0.attn.qkv.weight').data()) as Float32Array;
  const qstd = Math.sqrt(q.reduce((s, v) => s + v * v, 0) / q.length);
  assert.ok(Math.abs(qstd / (0.02 * 0.8796) - 1) < 0.03, `trunc normal std ${qstd}`);
  assert.ok(
    q.every((v) => Math.abs(v) <= 0.04 + 1e-7),
    'truncated at 2 std',
  );
  pv.dispose();
});

test('buildBackbone: specs round-trip, clear errors for bad specs', () => {
  const spec = { kind: 'vit' as const, preset: 'tiny4', depth: 6 };
  const b = buildBackbone(JSON.parse(JSON.stringify(spec)));
  assert.deepEqual(b.spec, spec);
  assert.equal(countParams(b) < REF.counts.vit_tiny4, true, 'override applied');
  assert.throws(() => buildBackbone({ kind: 'vgg' } as never), /unknown backbone kind "vgg"/);
  assert.throws(
    () => buildBackbone({ kind: 'vit', preset: 'huge' }),
    /unknown vit preset "huge" \(known: tiny4-seed, tiny4\)/,
  );
  assert.throws(() => buildBackbone({ kind: 'vit', preset: 'tiny4', heads: 5 }), /dim 192 is not divisible by heads 5/);
  assert.throws(
    () => buildBackbone({ kind: 'vit', preset: 'tiny4', dropout: 0.1 } as never),
    /unknown vit option "dropout"/,
  );
  assert.throws(() => buildBackbone({ kind: 'resnet', depth: 34 } as never), /depth must be 18 or 50, got 34/);
  assert.throws(
    () => buildBackbone({ kind: 'resnet', depth: 18, width: 0 }),
    /width must be a positive integer, got 0/,
  );
  assert.throws(
    () => buildBackbone({ kind: 'resnet', depth: 18, width: 2.5 }),
    /width must be a positive integer, got 2.5/,
  );
  assert.throws(
    () => buildBackbone({ kind: 'resnet', depth: 18, widht: 8 } as never),
    /unknown resnet option\(s\) widht/,
  );
  assert.throws(() => mlpHead(4, []), /blocks must not be empty/);
  assert.throws(() => dinoHead(4, small({ bottleneck: 0 })), /bottleneck must be a positive integer, got 0/);
  assert.throws(() => barlowProjector(4, { ...PROJ, layers: 0 }), /layers must be a positive integer, got 0/);
});

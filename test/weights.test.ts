import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../lib/nn/params';
import { buildBackbone, barlowProjector, dinoHead, BackboneSpec } from '../lib/models/index';
import { Backbone } from '../lib/nn/module';
import { exportWeights, importWeights, loadRunEncoder, WEIGHTS_METADATA } from '../lib/io/weights';
import { compareWithFile, exportAndCheck } from '../lib/io/exportCheck';
import { markdownTable } from '../lib/viz/table';
import {
  readSafetensors,
  writeSafetensors,
  encodeSafetensors,
  f32Tensor,
  toFloat32,
  SafeTensor,
} from '../lib/io/safetensors';
import { permute, toTorchLayout, fromTorchLayout, inferResnetSpec } from '../lib/io/torchLayout';
import { saveCheckpoint, StoredTensor } from '../lib/train/checkpoint';
import { writeRunRecord, RunRecord } from '../lib/train/runRecord';
import { randn, randomiseParams as randomise } from './helpers';

const REF = JSON.parse(fs.readFileSync(path.join(__dirname, 'reference', 'models_ref.json'), 'utf8')) as {
  resnet18: { depth: number; width: number; params: Array<{ name: string; shape: number[] }> };
  resnet50: { depth: number; width: number; params: Array<{ name: string; shape: number[] }> };
};

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'weights-'));
}

/** A backbone whose every parameter, running statistics included, holds seeded random values (not the init's 0/1). */
function randomNet(spec: BackboneSpec, seed: number): { backbone: Backbone; params: ParamStore } {
  const backbone = buildBackbone(spec);
  const params = new ParamStore('test');
  backbone.init(params, seed, 'backbone.');
  randomise(params, seed);
  return { backbone, params };
}

function features(net: { backbone: Backbone; params: ParamStore }, x: tf.Tensor4D): Float32Array {
  return tf.tidy(
    () => net.backbone.forward(net.params, x, { training: false }, 'backbone.').dataSync() as Float32Array,
  );
}

test('permute agrees with tf.transpose, and the layout conversions are inverse', () => {
  const shape = [3, 2, 4, 5];
  const v = randn(120, 1);
  for (const perm of [
    [3, 2, 0, 1],
    [2, 3, 1, 0],
    [0, 1, 2, 3],
    [1, 0, 3, 2],
  ]) {
    const want = tf.tidy(() => tf.transpose(tf.tensor(v, shape), perm).dataSync());
    const got = permute(v, shape, perm);
    assert.deepEqual(
      got.shape,
      perm.map((p) => shape[p]),
    );
    assert.deepEqual([...got.values], [...want]);
  }
  const conv = toTorchLayout('layer1.0.conv1.weight', { shape: [3, 3, 4, 8], values: randn(288, 2) });
  assert.deepEqual(conv.shape, [8, 4, 3, 3]);
  // OIHW element [o, i, y, x] is HWIO element [y, x, i, o].
  const hwio = randn(288, 2);
  assert.equal(conv.values[((5 * 4 + 2) * 3 + 1) * 3 + 0], hwio[((1 * 3 + 0) * 4 + 2) * 8 + 5]);
  const cases: Array<[string, number[]]> = [
    ['c.weight', [3, 3, 2, 4]],
    ['l.weight', [6, 5]],
    ['last_layer.weight_v', [4, 7]],
    ['last_layer.weight_g', [7]],
    ['bn.running_var', [4]],
    ['pos_embed', [1, 5, 4]],
  ];
  for (const [name, shape] of cases) {
    const p = {
      shape: [...shape],
      values: randn(
        shape.reduce((a, b) => a * b, 1),
        3,
      ),
    };
    const t = toTorchLayout(name, p);
    const back = fromTorchLayout(name, t, shape);
    assert.deepEqual(back.shape, shape, name);
    assert.deepEqual([...back.values], [...p.values], name);
  }
  assert.deepEqual(toTorchLayout('l.weight', { shape: [6, 5], values: randn(30, 1) }).shape, [5, 6]);
  assert.deepEqual(toTorchLayout('last_layer.weight_g', { shape: [7], values: randn(7, 1) }).shape, [7, 1]);
  assert.throws(
    () => fromTorchLayout('conv1.weight', { shape: [8, 3, 3, 3], values: randn(216, 1) }, [3, 3, 3, 4]),
    /conv1.weight has shape \[8, 3, 3, 3\] but this model needs \[4, 3, 3, 3\] \(PyTorch layout: \[out, in, kh, kw\]\)/,
  );
});

test('an exported ResNet-18 holds exactly the state_dict of the PyTorch reference (names, OIHW shapes, num_batches_tracked), and reads back bit for bit', async () => {
  const dir = tmpDir();
  const before = tf.memory().numTensors;
  const net = randomNet({ kind: 'resnet', depth: 18, width: 4 }, 1);
  try {
    const file = path.join(dir, 'r18.safetensors');
    const s = await exportWeights(net, file);
    const { tensors, metadata } = readSafetensors(file);
    // The names and shapes test/reference/models_ref.py read from torch's state_dict(), plus one int64 counter per batch norm.
    const ref = REF.resnet18.params;
    const nbt = ref
      .filter((p) => p.name.endsWith('.running_mean'))
      .map((p) => p.name.replace('running_mean', 'num_batches_tracked'));
    assert.deepEqual([...tensors.keys()].sort(), [...ref.map((p) => p.name), ...nbt].sort());
    for (const p of ref) assert.deepEqual(tensors.get(p.name)!.shape, p.shape, p.name);
    for (const n of nbt) assert.deepEqual([tensors.get(n)!.dtype, tensors.get(n)!.shape], ['I64', []], n);
    assert.equal(metadata.format, 'pt');
    assert.deepEqual(JSON.parse(metadata[WEIGHTS_METADATA.backbone]), { kind: 'resnet', depth: 18, width: 4 });
    assert.equal(metadata[WEIGHTS_METADATA.prefix], '');
    assert.match(metadata[WEIGHTS_METADATA.input], /mean \[0.4914, 0.4822, 0.4465\].*NCHW/);
    assert.equal(s.tensors, tensors.size);
    assert.equal(s.bytes, fs.statSync(file).size);
    // conv1.weight in the file is our HWIO tensor transposed to OIHW.
    const ours = net.params.get('backbone.conv1.weight');
    const want = tf.tidy(() => tf.transpose(ours, [3, 2, 0, 1]).dataSync());
    assert.deepEqual([...toFloat32(tensors.get('conv1.weight')!)], [...want]);

    const back = importWeights(file);
    try {
      assert.deepEqual(back.spec, { kind: 'resnet', depth: 18, width: 4 });
      assert.deepEqual(back.params.names(), net.params.names());
      for (const n of net.params.names())
        assert.deepEqual([...back.params.get(n).dataSync()], [...net.params.get(n).dataSync()], n);
      assert.equal(back.params.infoOf('backbone.bn1.running_mean').kind, 'buffer');
      assert.equal(back.params.infoOf('backbone.bn1.running_mean').trainable, false);
      const x = tf.tidy(() => tf.tensor4d(randn(2 * 32 * 32 * 3, 9), [2, 32, 32, 3]));
      assert.deepEqual([...features(back, x)], [...features(net, x)]);
      x.dispose();
      assert.equal(back.heads.size, 0);
    } finally {
      back.params.dispose();
    }
  } finally {
    net.params.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
});

test('a file without dinotwins metadata (as PyTorch saves it) is read by inferring depth and width; ResNet-50 too', async () => {
  const dir = tmpDir();
  const net = randomNet({ kind: 'resnet', depth: 50, width: 2 }, 2);
  try {
    const file = path.join(dir, 'r50.safetensors');
    await exportWeights(net, file);
    const { tensors } = readSafetensors(file);
    for (const p of REF.resnet50.params) assert.deepEqual(tensors.get(p.name)?.shape, p.shape, p.name); // same names and shapes as torch
    const bare = path.join(dir, 'bare.safetensors');
    writeSafetensors(bare, tensors); // no __metadata__
    const back = importWeights(bare);
    try {
      assert.deepEqual(back.spec, { kind: 'resnet', depth: 50, width: 2 });
      assert.deepEqual(back.metadata, {});
      for (const n of net.params.names())
        assert.deepEqual([...back.params.get(n).dataSync()], [...net.params.get(n).dataSync()], n);
    } finally {
      back.params.dispose();
    }
  } finally {
    net.params.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const shapes = (extra: Record<string, number[]>) =>
    new Map<string, number[]>([
      ['conv1.weight', [4, 3, 3, 3]],
      ['layer1.0.conv1.weight', [4, 4, 3, 3]],
      ['layer1.1.conv1.weight', [4, 4, 3, 3]],
      ['layer2.0.conv1.weight', [8, 4, 3, 3]],
      ['layer2.1.conv1.weight', [8, 8, 3, 3]],
      ['layer3.0.x', [1]],
      ['layer3.1.x', [1]],
      ['layer4.0.x', [1]],
      ['layer4.1.x', [1]],
      ...Object.entries(extra),
    ]);
  assert.deepEqual(inferResnetSpec(shapes({})), { kind: 'resnet', depth: 18, width: 4 });
  assert.throws(
    () => inferResnetSpec(shapes({ 'conv1.weight': [64, 3, 7, 7] })),
    /7x7, torchvision's ImageNet stem; dinotwins' ResNet has the CIFAR stem/,
  );
  assert.throws(() => inferResnetSpec(shapes({ 'layer3.2.x': [1] })), /BasicBlock stages of \[2, 2, 3, 2\] blocks/);
  assert.throws(
    () => inferResnetSpec(new Map([['encoder.conv1.weight', [4, 3, 3, 3]]])),
    /no "conv1.weight".*prefix option/,
  );
});

test('bad files and mismatched networks are errors naming the tensors', async () => {
  const dir = tmpDir();
  const before = tf.memory().numTensors;
  const net = randomNet({ kind: 'resnet', depth: 18, width: 4 }, 3);
  try {
    const file = path.join(dir, 'r18.safetensors');
    await exportWeights(net, file);
    const { tensors, metadata } = readSafetensors(file);
    const variant = (name: string, edit: (t: Map<string, SafeTensor>, m: Record<string, string>) => void): string => {
      const t = new Map(tensors);
      const m = { ...metadata };
      edit(t, m);
      const f = path.join(dir, `${name}.safetensors`);
      fs.writeFileSync(f, encodeSafetensors(t, m));
      return f;
    };
    const fc = variant('fc', (t) => {
      t.set('fc.weight', f32Tensor([10, 32], new Float32Array(320)));
      t.set('fc.bias', f32Tensor([10], new Float32Array(10)));
    });
    assert.throws(
      () => importWeights(fc),
      /2 tensor\(s\) that this ResNet-18 \(width 4\) does not have: fc.weight, fc.bias \(a classifier head: drop "fc.\*"/,
    );
    const missing = variant('missing', (t) => {
      t.delete('layer3.1.bn2.running_var');
    });
    assert.throws(
      () => importWeights(missing),
      /1 parameter\(s\) of this ResNet-18 \(width 4\) are missing from the file: layer3.1.bn2.running_var/,
    );
    const shape = variant('shape', (t) => {
      t.set('layer1.0.conv2.weight', f32Tensor([4, 4, 1, 9], new Float32Array(144)));
    });
    assert.throws(
      () => importWeights(shape),
      /wrong shape: layer1.0.conv2.weight has shape \[4, 4, 1, 9\] but this model needs \[4, 4, 3, 3\]/,
    );
    const dtype = variant('dtype', (t) => {
      t.set('bn1.weight', { dtype: 'I32', shape: [4], data: new Uint8Array(16) });
    });
    assert.throws(() => importWeights(dtype), /wrong dtype: bn1.weight has dtype I32; expected a floating-point dtype/);
    const counter = variant('counter', (t) => {
      t.set('bn1.num_batches_tracked', f32Tensor([], new Float32Array(1)));
    });
    assert.throws(() => importWeights(counter), /bn1.num_batches_tracked has dtype F32; expected an integer dtype/);
    // Another network than the metadata says: the first shape that differs is named.
    assert.throws(
      () => importWeights(file, { backbone: { kind: 'resnet', depth: 18, width: 8 } }),
      /wrong shape: conv1.weight has shape \[4, 3, 3, 3\] but this model needs \[8, 3, 3, 3\]/,
    );
    // A state_dict saved from a wrapper module: the names carry a prefix.
    const wrapped = variant('wrapped', (t, m) => {
      for (const [k, v] of [...t]) {
        t.delete(k);
        t.set(`encoder.${k}`, v);
      }
      delete m[WEIGHTS_METADATA.prefix];
      delete m[WEIGHTS_METADATA.backbone];
    });
    assert.throws(() => importWeights(wrapped), /no "conv1.weight"/);
    const viaPrefix = importWeights(wrapped, { prefix: 'encoder.' });
    viaPrefix.params.dispose();
    const wrappedMeta = variant('wrapped-meta', (t, m) => {
      for (const [k, v] of [...t]) {
        t.delete(k);
        t.set(`encoder.${k}`, v);
      }
      delete m[WEIGHTS_METADATA.prefix];
    });
    assert.throws(
      () => importWeights(wrappedMeta),
      /120 tensor\(s\) that this ResNet-18 \(width 4\) does not have: encoder\..*\(120 in all\) \(if the encoder is under "encoder.", pass prefix: "encoder."\)/,
    );
    await assert.rejects(exportWeights(net, ''), /no output file given/);
    await assert.rejects(
      exportWeights(net, path.join(dir, 'x.safetensors'), { network: 'teacher' }),
      /network "teacher" needs a run or a pretraining model/,
    );
    await assert.rejects(
      exportWeights(net, path.join(dir, 'x.safetensors'), { heads: true }),
      /heads were asked for, but this network has none/,
    );
  } finally {
    net.params.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(tf.memory().numTensors, before, 'failed imports leak no tensors');
});

test('heads: projector and DINO head under our module names, in PyTorch layouts, and back', async () => {
  const dir = tmpDir();
  const backbone = buildBackbone({ kind: 'resnet', depth: 18, width: 4 });
  const student = new ParamStore('student');
  backbone.init(student, 1, 'backbone.');
  barlowProjector(32, { hidden: 12, out: 10, layers: 3 }).init(student, 2, 'projector.');
  dinoHead(32, { out: 9, hidden: 8, bottleneck: 6, nlayers: 3, useBn: false, normLastLayer: true }).init(
    student,
    3,
    'head.',
  );
  randomise(student, 4);
  try {
    const file = path.join(dir, 'model.safetensors');
    await exportWeights({ backbone, student }, file, { heads: true });
    const { tensors, metadata } = readSafetensors(file);
    assert.equal(metadata[WEIGHTS_METADATA.prefix], 'backbone.');
    assert.deepEqual(tensors.get('backbone.conv1.weight')!.shape, [4, 3, 3, 3]);
    // nn.Sequential(Linear(32, 12, bias=False), BatchNorm1d(12), ReLU, Linear(12, 12), BN, ReLU, Linear(12, 10)).
    assert.deepEqual(tensors.get('projector.0.weight')!.shape, [12, 32]);
    assert.deepEqual(tensors.get('projector.1.running_var')!.shape, [12]);
    assert.equal(tensors.get('projector.1.num_batches_tracked')!.dtype, 'I64');
    assert.deepEqual(tensors.get('projector.6.weight')!.shape, [10, 12]);
    // DINOHead: mlp = Sequential(Linear(32, 8), GELU, Linear(8, 8), GELU, Linear(8, 6)); weight_norm(Linear(6, 9, bias=False)).
    assert.deepEqual(tensors.get('head.mlp.0.weight')!.shape, [8, 32]);
    assert.deepEqual(tensors.get('head.mlp.4.bias')!.shape, [6]);
    assert.deepEqual(tensors.get('head.last_layer.weight_v')!.shape, [9, 6]);
    assert.deepEqual(tensors.get('head.last_layer.weight_g')!.shape, [9, 1]);
    const back = importWeights(file);
    try {
      assert.deepEqual(
        [...back.heads.keys()].sort(),
        student
          .names()
          .filter((n) => !n.startsWith('backbone.'))
          .sort(),
      );
      for (const [n, t] of back.heads) {
        assert.deepEqual(t.shape, student.get(n).shape, n);
        assert.deepEqual([...t.values], [...student.get(n).dataSync()], n);
      }
      for (const n of back.params.names())
        assert.deepEqual([...back.params.get(n).dataSync()], [...student.get(n).dataSync()], n);
    } finally {
      back.params.dispose();
    }
  } finally {
    student.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a run folder exports its student or its EMA teacher from the checkpoint, and says which run', async () => {
  const dir = tmpDir();
  const runDir = path.join(dir, 'dino-run');
  const net = randomNet({ kind: 'resnet', depth: 18, width: 4 }, 5);
  const teacher = randomNet({ kind: 'resnet', depth: 18, width: 4 }, 6);
  try {
    const group = async (ps: ParamStore) =>
      new Map<string, StoredTensor>((await ps.snapshot()).map((s) => [s.name, { shape: s.shape, values: s.values }]));
    fs.mkdirSync(runDir);
    const ckpt = path.join(runDir, 'checkpoint.ckpt');
    saveCheckpoint(ckpt, {
      meta: {},
      groups: {
        student: await group(net.params),
        teacher: await group(teacher.params),
        optimizer: new Map([['m', { shape: [1], values: new Float32Array(1) }]]),
      },
    });
    const record: RunRecord = {
      format: 'dinotwins-run/1',
      id: 'dino-run',
      kind: 'pretrain',
      status: 'done',
      method: 'dino',
      budget: 'custom',
      config: { method: 'dino', backbone: { kind: 'resnet', depth: 18, width: 4 } },
      backend: null,
      git: { commit: null, dirty: null },
      seed: 0,
      data: {},
      startedAt: '',
      updatedAt: '',
      seconds: 0,
      step: 8,
      totalSteps: 8,
      epochs: [],
      steps: [],
      results: {},
      checkpoint: '/moved/elsewhere/checkpoint.ckpt',
      resumedFrom: [],
    };
    writeRunRecord(path.join(runDir, 'record.json'), record);
    for (const network of ['student', 'teacher'] as const) {
      const file = path.join(dir, `${network}.safetensors`);
      const s = await exportWeights(runDir, file, { network });
      assert.equal(s.metadata[WEIGHTS_METADATA.run], 'dino-run');
      assert.equal(s.metadata[WEIGHTS_METADATA.network], network);
      assert.equal(s.metadata[WEIGHTS_METADATA.status], 'done, step 8 of 8');
      const back = importWeights(file);
      const src = network === 'student' ? net : teacher;
      for (const n of src.params.names())
        assert.deepEqual([...back.params.get(n).dataSync()], [...src.params.get(n).dataSync()], `${network} ${n}`);
      back.params.dispose();
    }
    await assert.rejects(exportWeights(path.join(dir, 'nope'), path.join(dir, 'x.safetensors')), /no run record/);
  } finally {
    net.params.dispose();
    teacher.params.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("exportAndCheck: the file read back gives the run's own features; a file of another encoder is caught", async () => {
  const dir = tmpDir();
  const runDir = path.join(dir, 'barlow-run');
  const net = randomNet({ kind: 'resnet', depth: 18, width: 4 }, 7);
  const other = randomNet({ kind: 'resnet', depth: 18, width: 4 }, 8);
  try {
    fs.mkdirSync(runDir);
    const snap = new Map<string, StoredTensor>(
      (await net.params.snapshot()).map((s) => [s.name, { shape: s.shape, values: s.values }]),
    );
    saveCheckpoint(path.join(runDir, 'checkpoint.ckpt'), { meta: {}, groups: { student: snap } });
    const record: RunRecord = {
      format: 'dinotwins-run/1',
      id: 'barlow-run',
      kind: 'pretrain',
      status: 'done',
      method: 'barlow',
      budget: 'custom',
      config: { method: 'barlow', backbone: { kind: 'resnet', depth: 18, width: 4 } },
      backend: null,
      git: { commit: null, dirty: null },
      seed: 0,
      data: {},
      startedAt: '',
      updatedAt: '',
      seconds: 0,
      step: 8,
      totalSteps: 8,
      epochs: [],
      steps: [],
      results: {},
      checkpoint: path.join(runDir, 'checkpoint.ckpt'),
      resumedFrom: [],
    };
    writeRunRecord(path.join(runDir, 'record.json'), record);
    const images = Uint8Array.from({ length: 5 * 3072 }, (_, i) => (i * 37) % 256);
    const before = tf.memory().numTensors;
    const file = path.join(dir, 'exports', 'barlow-run.safetensors');
    const check = await exportAndCheck(runDir, file, { images, n: 5 }, { images: 3 });
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
    assert.equal(check.maxDiff, 0);
    assert.equal(check.values, 3 * buildBackbone({ kind: 'resnet', depth: 18, width: 4 }).featureDim);
    assert.equal(check.count, check.summary.tensors);
    assert.deepEqual(
      check.tensors.map((t) => t.name),
      [
        'conv1.weight',
        'bn1.running_var',
        'bn1.num_batches_tracked',
        'layer2.0.conv1.weight',
        'layer2.0.downsample.0.weight',
      ],
    );
    assert.deepEqual(check.tensors[0], {
      name: 'conv1.weight',
      dtype: 'F32',
      'shape in the file (PyTorch)': '[4, 3, 3, 3]',
      'shape here (tfjs)': '[3, 3, 3, 4]',
    });
    assert.equal(check.tensors[2]['shape here (tfjs)'], '(not a parameter: read and ignored)');
    assert.equal(check.tensors[2].dtype, 'I64');
    assert.match(
      markdownTable(check.tensors),
      /^\| name \| dtype \| shape in the file \(PyTorch\) \| shape here \(tfjs\) \|\n/,
      'the rows are a table as they are',
    );
    assert.match(
      check.line,
      /^wrote .*barlow-run\.safetensors: \d+ tensors, .*\(max \|difference\| 0 over \d+ values of 3 images/,
    );
    // The run's own encoder, loaded from its checkpoint, is the network that was saved.
    const own = loadRunEncoder(runDir);
    for (const n of net.params.names())
      assert.deepEqual([...own.params.get(n).dataSync()], [...net.params.get(n).dataSync()], n);
    own.params.dispose();
    await assert.rejects(
      compareWithFile(file, other, images, 2),
      /does not reproduce the encoder: features differ by up to [0-9.e-]+ over \d+ values of 2 images/,
    );
    assert.equal(tf.memory().numTensors, before);
    await assert.rejects(exportAndCheck(runDir, file, { images, n: 0 }), /need at least one image/);
  } finally {
    net.params.dispose();
    other.params.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

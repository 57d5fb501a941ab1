/**
 * Weights that open in PyTorch: our exports load with load_state_dict(strict=True) into the reference
 * networks of test/reference/models_ref.py and give the same eval-mode outputs; state_dicts saved by
 * PyTorch load into ours and give the same features. The PyTorch side is test/reference/export_check.py
 * (its own safetensors reader and writer). Needs Debian's python3-torch for /usr/bin/python3: installed
 * here with apt-get when running as root (DINOTWINS_NO_INSTALL=1 stops that), otherwise skipped with
 * the reason.
 */
import { test, TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../lib/nn/params';
import { Backbone } from '../lib/nn/module';
import { buildBackbone, barlowProjector, dinoHead, BackboneSpec, VIT_PRESETS } from '../lib/models/index';
import { exportWeights, importWeights } from '../lib/io/weights';
import { writeSafetensors, readSafetensors, f32Tensor, toFloat32 } from '../lib/io/safetensors';
import { randn, randomiseParams as randomise } from './helpers';

const PY = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'reference', 'export_check.py');
/** The bar: features equal to 1e-5 in eval mode. */
const TOL = 1e-5;

function torchMissing(): string {
  const probe = () => spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (!fs.existsSync(PY)) return `${PY} not found`;
  if (probe().status === 0) return '';
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (root && fs.existsSync('/usr/bin/apt-get') && !process.env.DINOTWINS_NO_INSTALL) {
    console.log(
      "export-torch: PyTorch is missing; installing Debian's python3-torch (DINOTWINS_NO_INSTALL=1 skips this)",
    );
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-torch'], {
        env,
        encoding: 'utf8',
        timeout: 1_200_000,
      });
    if (install().status !== 0) {
      spawnSync('apt-get', ['update'], { env, encoding: 'utf8', timeout: 600_000 });
      install();
    }
    if (probe().status === 0) return '';
  }
  return `PyTorch is not importable by ${PY}: ${probe().stderr.trim().split('\n').pop()} (install Debian's python3-torch)`;
}

let missing: string | undefined;
function needTorch(t: TestContext): boolean {
  missing ??= torchMissing();
  if (missing) {
    console.log(`SKIPPED export-torch: ${missing}`);
    t.skip(missing);
    return false;
  }
  return true;
}

function python(args: string[]): string {
  const r = spawnSync(PY, [SCRIPT, ...args], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `export_check.py ${args[0]} failed:\n${r.stderr}`);
  return r.stdout;
}

interface Case {
  name: string;
  spec: BackboneSpec;
  /** What export_check.py builds (a ViT's preset resolved). */
  network: Record<string, unknown>;
  size: number;
  heads: boolean;
}

const VIT_SMALL = { imageSize: 16, patch: 4, dim: 16, depth: 2, heads: 2, mlpDim: 24 };
const CASES: Case[] = [
  {
    name: 'r18w4',
    spec: { kind: 'resnet', depth: 18, width: 4 },
    network: { kind: 'resnet', depth: 18, width: 4 },
    size: 32,
    heads: false,
  },
  {
    name: 'r50w2',
    spec: { kind: 'resnet', depth: 50, width: 2 },
    network: { kind: 'resnet', depth: 50, width: 2 },
    size: 32,
    heads: false,
  },
  {
    name: 'vit',
    spec: { kind: 'vit', preset: 'tiny4', ...VIT_SMALL },
    network: { kind: 'vit', ...VIT_PRESETS.tiny4, ...VIT_SMALL },
    size: 16,
    heads: false,
  },
  {
    name: 'r18w4-heads',
    spec: { kind: 'resnet', depth: 18, width: 4 },
    size: 32,
    heads: true,
    network: {
      kind: 'resnet',
      depth: 18,
      width: 4,
      projector: { in: 32, hidden: 24, out: 20, layers: 3 },
      head: { in: 32, out: 30, hidden: 16, bottleneck: 8, nlayers: 3, useBn: true },
    },
  },
];

/** Our network for a case, with every parameter random (running statistics included), its inputs and its eval-mode outputs. */
function ourCase(
  c: Case,
  seed: number,
): { student: ParamStore; backbone: Backbone; io: Map<string, ReturnType<typeof f32Tensor>> } {
  const backbone = buildBackbone(c.spec);
  const student = new ParamStore('export');
  backbone.init(student, seed, 'backbone.');
  const net = c.network as {
    projector?: { in: number; hidden: number; out: number; layers: number };
    head?: { in: number; out: number; hidden: number; bottleneck: number; nlayers: number; useBn: boolean };
  };
  const projector =
    net.projector &&
    barlowProjector(net.projector.in, {
      hidden: net.projector.hidden,
      out: net.projector.out,
      layers: net.projector.layers,
    });
  const head =
    net.head &&
    dinoHead(net.head.in, {
      out: net.head.out,
      hidden: net.head.hidden,
      bottleneck: net.head.bottleneck,
      nlayers: net.head.nlayers,
      useBn: net.head.useBn,
      normLastLayer: true,
    });
  projector?.init(student, seed + 1, 'projector.');
  head?.init(student, seed + 2, 'head.');
  randomise(student, seed);
  const b = 3;
  const x = randn(b * c.size * c.size * 3, seed + 9);
  const io = new Map<string, ReturnType<typeof f32Tensor>>([['x', f32Tensor([b, c.size, c.size, 3], x)]]);
  tf.tidy(() => {
    const f = backbone.forward(student, tf.tensor4d(x, [b, c.size, c.size, 3]), { training: false }, 'backbone.');
    io.set('features', f32Tensor(f.shape, f.dataSync() as Float32Array));
    if (projector)
      io.set(
        'projector_out',
        f32Tensor(
          [b, net.projector!.out],
          projector.forward(student, f, { training: false }, 'projector.').dataSync() as Float32Array,
        ),
      );
    if (head)
      io.set(
        'head_out',
        f32Tensor(
          [b, net.head!.out],
          head.forward(student, f, { training: false }, 'head.').dataSync() as Float32Array,
        ),
      );
  });
  return { student, backbone, io };
}

test('our exports load into the PyTorch reference networks (strict) and give the same eval outputs to 1e-5', async (t) => {
  if (!needTorch(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'export-torch-'));
  try {
    const args: string[] = ['check'];
    for (const [k, c] of CASES.entries()) {
      const { student, backbone, io } = ourCase(c, 10 + k);
      const w = path.join(dir, `${c.name}.safetensors`);
      await exportWeights({ backbone, student }, w, { heads: c.heads });
      student.dispose();
      const ioFile = path.join(dir, `${c.name}-io.safetensors`);
      writeSafetensors(ioFile, io, { network: JSON.stringify(c.network) });
      args.push(w, ioFile);
    }
    const lines = python(args)
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as Record<string, { max_abs: number; max_ref: number; n: number }> & { weights: string },
      );
    assert.equal(lines.length, CASES.length);
    for (const r of lines) {
      for (const key of ['features', 'projector', 'head'].filter((k) => k in r)) {
        const d = r[key];
        const f32 = r[`${key}_torch_f32`];
        console.log(
          `${r.weights} ${key}: max |ours - torch float64| = ${d.max_abs.toExponential(2)} over ${d.n} values (max |value| ${d.max_ref.toFixed(3)}); torch float32 itself: ${f32.max_abs.toExponential(2)}`,
        );
        assert.ok(d.max_abs <= TOL, `${r.weights} ${key}: max difference ${d.max_abs} > ${TOL}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('state_dicts saved by PyTorch load into our ResNet (depth and width inferred) and give the same features to 1e-5', async (t) => {
  if (!needTorch(t)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-export-'));
  const before = tf.memory().numTensors;
  try {
    const names = JSON.parse(python(['save', dir])) as string[];
    assert.deepEqual(names, ['torch-r18w8', 'torch-r50w2']);
    for (const name of names) {
      const imported = importWeights(path.join(dir, `${name}.safetensors`));
      try {
        const { tensors, metadata } = readSafetensors(path.join(dir, `${name}-io.safetensors`));
        assert.deepEqual(imported.spec, JSON.parse(metadata.network));
        const xt = tensors.get('x')!;
        const want = toFloat32(tensors.get('features')!);
        const got = tf.tidy(() =>
          imported.backbone
            .forward(
              imported.params,
              tf.tensor4d(toFloat32(xt), xt.shape as [number, number, number, number]),
              { training: false },
              'backbone.',
            )
            .dataSync(),
        );
        let maxAbs = 0;
        let maxRef = 0;
        for (let i = 0; i < want.length; i++) {
          maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]));
          maxRef = Math.max(maxRef, Math.abs(want[i]));
        }
        assert.equal(got.length, want.length);
        console.log(
          `${name} (saved by PyTorch): max |ours - torch float64| = ${maxAbs.toExponential(2)} over ${want.length} values (max |value| ${maxRef.toFixed(3)})`,
        );
        assert.ok(maxAbs <= TOL, `${name}: max difference ${maxAbs} > ${TOL}`);
      } finally {
        imported.params.dispose();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
});

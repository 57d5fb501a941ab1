/**
 * GPU benchmark on tfjs' `webgpu` backend: whole training steps (Barlow Twins on ResNet-18 + 3-layer
 * 2048 projector, DINO-Twins with 2 global + local crops, Barlow Twins on ViT-T/4) and the dominant
 * kernels at the CIFAR ResNet-18 shapes (3x3 conv forward / input grad / filter grad, BN moments),
 * each with the stock tfjs kernels and with ours (lib/kernels/webgpu), in the same process.
 *
 * Steps follow lib/train/trainer.ts (teacher outputs, variableGrads of the method loss, optimizer
 * apply, EMA/center update) on fixed random views, so augmentation is not timed. Timing: after
 * warm-up, R repeats of S steps (or I kernel calls) with one tiny read-back at the end of each
 * repeat; reported time is the median over repeats of (repeat time / S).
 *
 *   npx tsx bench/gpu.ts [--what steps,kernels] [--modes stock,ours] [--batch 256] [--width 64]
 *                        [--steps barlow-r18,dinotwins-r18,barlow-vit] [--kernel-batch 256]
 *                        [--repeats 5] [--per-repeat 3] [--warmup 2] [--iters 10] [--out file.json] [--quick]
 * `--quick` shrinks everything for a correctness smoke run on lavapipe.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { ensureWebgpu } from '../lib/kernels/webgpu/setup';
import { registerWebgpuKernels, unregisterWebgpuKernels, WEBGPU_KERNELS_ENV } from '../lib/kernels/webgpu';
import { convCosts } from '../lib/kernels/webgpu/conv2d';
import { reduceRowsCost } from '../lib/kernels/webgpu/reduce_rows';
import { buildSslModel, METHOD_STEPS } from '../lib/methods';
import { resolveConfig, Method, BackboneConfig } from '../lib/train/config';
import { stepSchedule } from '../lib/train/schedule';
import { Optimizer } from '../lib/train/optimizers';

type Mode = 'stock' | 'ours';

interface Args {
  what: string[];
  modes: Mode[];
  batch: number;
  width: number;
  steps: string[];
  kernelBatch: number;
  kernelShapes: Array<[number, number]>; // [spatial, channels]
  repeats: number;
  perRepeat: number;
  warmup: number;
  iters: number;
  nLocal: number;
  vitPreset: string;
  out?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    what: ['steps', 'kernels'], modes: ['stock', 'ours'], batch: 256, width: 64,
    steps: ['barlow-r18', 'dinotwins-r18', 'barlow-vit'], kernelBatch: 256,
    kernelShapes: [[32, 64], [16, 128], [8, 256], [4, 512]], repeats: 5, perRepeat: 3, warmup: 2, iters: 10,
    nLocal: 4, vitPreset: 'tiny4',
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    const int = (): number => {
      const s = v();
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${k} needs a positive integer, got "${s}"`);
      return n;
    };
    switch (k) {
      case '--what': a.what = v().split(','); break;
      case '--modes': a.modes = v().split(',') as Mode[]; break;
      case '--batch': a.batch = int(); break;
      case '--width': a.width = int(); break;
      case '--steps': a.steps = v().split(','); break;
      case '--kernel-batch': a.kernelBatch = int(); break;
      case '--repeats': a.repeats = int(); break;
      case '--per-repeat': a.perRepeat = int(); break;
      case '--warmup': a.warmup = int(); break;
      case '--iters': a.iters = int(); break;
      case '--local': a.nLocal = int(); break;
      case '--vit': a.vitPreset = v(); break;
      case '--out': a.out = v(); break;
      case '--quick':
        Object.assign(a, { batch: 2, width: 8, kernelBatch: 2, kernelShapes: [[8, 16], [4, 32]], repeats: 2, perRepeat: 1, warmup: 1, iters: 2, nLocal: 2, vitPreset: 'tiny4-seed' });
        break;
      default: throw new Error(`unknown option ${k}`);
    }
  }
  for (const m of a.modes) if (m !== 'stock' && m !== 'ours') throw new Error(`--modes: "${m}" is not stock or ours`);
  for (const w of a.what) if (w !== 'steps' && w !== 'kernels') throw new Error(`--what: "${w}" is not steps or kernels`);
  if (process.env[WEBGPU_KERNELS_ENV] === 'stock') a.modes = a.modes.filter((m) => m === 'stock');
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

/** Waits for all queued GPU work by reading one element of `t`. */
async function sync(t: tf.Tensor): Promise<number> {
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
  const v = (await one.data())[0];
  one.dispose();
  return v;
}

function gpuBytes(): { used: number; allocated: number } {
  const m = tf.memory() as unknown as { numBytesInGPU?: number; numBytesInGPUAllocated?: number; numBytesAllocatedInGPU?: number };
  return { used: m.numBytesInGPU ?? 0, allocated: m.numBytesAllocatedInGPU ?? m.numBytesInGPUAllocated ?? 0 };
}

function setMode(mode: Mode): void {
  if (mode === 'ours') registerWebgpuKernels();
  else unregisterWebgpuKernels();
}

interface StepResult { name: string; mode: Mode; batch: number; viewsPerStep: number; msPerStep: number; viewsPerSec: number; peakGpuBytes: number; loss: number; repeats: number[] }

function stepConfig(name: string, a: Args): { method: Method; backbone: BackboneConfig; nLocal: number } {
  const r18: BackboneConfig = { kind: 'resnet', depth: 18, width: a.width };
  switch (name) {
    case 'barlow-r18': return { method: 'barlow', backbone: r18, nLocal: 0 };
    case 'dinotwins-r18': return { method: 'dino-twins', backbone: r18, nLocal: a.nLocal };
    case 'barlow-vit': return { method: 'barlow', backbone: { kind: 'vit', preset: a.vitPreset }, nLocal: 0 };
    default: throw new Error(`unknown step "${name}"; known: barlow-r18, dinotwins-r18, barlow-vit`);
  }
}

async function benchStep(name: string, mode: Mode, a: Args): Promise<StepResult> {
  setMode(mode);
  const sc = stepConfig(name, a);
  const cfg = resolveConfig({ method: sc.method, backbone: sc.backbone, batchSize: a.batch, epochs: 100, augment: { nLocal: sc.nLocal } });
  const model = buildSslModel(cfg);
  const method = METHOD_STEPS[cfg.method];
  const opt = new Optimizer(cfg.optimizer);
  const trainable = model.student.trainableNames().map((n) => model.student.get(n));
  const byVarName = new Map(model.student.trainableNames().map((n) => [model.student.get(n).name, n]));
  const views: tf.Tensor4D[] = [];
  for (let v = 0; v < 2; v++) views.push(tf.randomNormal([a.batch, cfg.augment.globalSize, cfg.augment.globalSize, 3], 0, 1, 'float32', 10 + v));
  for (let v = 0; v < sc.nLocal; v++) views.push(tf.randomNormal([a.batch, cfg.augment.localSize, cfg.augment.localSize, 3], 0, 1, 'float32', 20 + v));
  let step = 0;
  let last: tf.Scalar | undefined;
  const runOne = (): void => {
    const s = stepSchedule(cfg, step++, 1000);
    const teacherOut = method.teacherOutputs?.(model, views);
    const { value, grads } = tf.variableGrads(() => method.loss(model, views, teacherOut, s).total, trainable);
    const named = new Map<string, tf.Tensor>();
    for (const [vn, g] of Object.entries(grads)) named.set(byVarName.get(vn)!, g);
    const gradNorm = opt.apply(model.student, named, s.lr, { weightDecay: s.weightDecay });
    method.afterStep?.(model, teacherOut, s);
    tf.dispose([...Object.values(grads), gradNorm]);
    teacherOut?.dispose();
    last?.dispose();
    last = value;
  };
  let peak = 0;
  for (let i = 0; i < a.warmup; i++) runOne();
  await sync(last!);
  const per: number[] = [];
  for (let r = 0; r < a.repeats; r++) {
    const t0 = performance.now();
    for (let i = 0; i < a.perRepeat; i++) runOne();
    await sync(last!);
    per.push((performance.now() - t0) / a.perRepeat);
    peak = Math.max(peak, gpuBytes().allocated);
  }
  const loss = (await last!.data())[0];
  last!.dispose();
  tf.dispose(views);
  model.dispose();
  const viewsPerStep = a.batch * views.length;
  const ms = median(per);
  return { name, mode, batch: a.batch, viewsPerStep, msPerStep: ms, viewsPerSec: (viewsPerStep * 1000) / ms, peakGpuBytes: peak, loss, repeats: per };
}

interface KernelResult { op: string; shape: string; mode: Mode; ms: number; tflops?: number; gbps?: number; flops: number; bytes: number }

async function timeOp(f: () => tf.Tensor, a: Args): Promise<number> {
  let out = f();
  await sync(out);
  out.dispose();
  const per: number[] = [];
  for (let r = 0; r < a.repeats; r++) {
    const t0 = performance.now();
    for (let i = 0; i < a.iters; i++) {
      out = f();
      if (i < a.iters - 1) out.dispose();
    }
    await sync(out);
    out.dispose();
    per.push((performance.now() - t0) / a.iters);
  }
  return median(per);
}

async function benchKernels(mode: Mode, a: Args): Promise<KernelResult[]> {
  setMode(mode);
  const res: KernelResult[] = [];
  const B = a.kernelBatch;
  for (const [S, C] of a.kernelShapes) {
    const shape = `${B}x${S}x${S}x${C}`;
    const x = tf.randomNormal([B, S, S, C], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, C, C], 0, 0.05, 'float32', 2) as tf.Tensor4D;
    const dy = tf.randomNormal([B, S, S, C], 0, 1, 'float32', 3) as tf.Tensor4D;
    const info = tf.backend_util.computeConv2DInfo([B, S, S, C], [3, 3, C, C], 1, 1, 'same');
    const cost = convCosts(info);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
    const ops: Array<[string, () => tf.Tensor, { flops: number; bytes: number }]> = [
      ['conv3x3 forward', () => tf.conv2d(x, w, 1, 'same'), cost.forward],
      ['conv3x3 input grad', () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: [B, S, S, C] }) as tf.Tensor, cost.inputGrad],
      ['conv3x3 filter grad', () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: [3, 3, C, C] }) as tf.Tensor, cost.filterGrad],
      ['BN moments', () => tf.tidy(() => { const m = tf.moments(x, [0, 1, 2]); return tf.add(m.mean, m.variance); }), { flops: 3 * B * S * S * C, bytes: 3 * reduceRowsCost(B * S * S, C).bytes + 4 * B * S * S * C }],
      ['BN moments+normalise', () => tf.tidy(() => { const m = tf.moments(x, [0, 1, 2]); return tf.mul(tf.sub(x, m.mean), tf.rsqrt(tf.add(m.variance, 1e-5))); }), { flops: 6 * B * S * S * C, bytes: 4 * 6 * B * S * S * C }],
    ];
    for (const [op, f, c] of ops) {
      const ms = await timeOp(f, a);
      res.push({ op, shape, mode, ms, flops: c.flops, bytes: c.bytes, tflops: c.flops / (ms * 1e9), gbps: c.bytes / (ms * 1e6) });
      console.log(`  ${mode.padEnd(5)} ${op.padEnd(22)} ${shape.padEnd(14)} ${ms.toFixed(3).padStart(9)} ms  ${(c.flops / (ms * 1e9)).toFixed(2).padStart(7)} TFLOP/s  ${(c.bytes / (ms * 1e6)).toFixed(1).padStart(8)} GB/s`);
    }
    tf.dispose([x, w, dy]);
  }
  return res;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const avail = await ensureWebgpu();
  if (!avail.ok) throw new Error(avail.reason);
  if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') failed");
  await tf.ready();
  const errors: string[] = [];
  const device = (tf.backend() as unknown as { device?: { addEventListener?: (n: string, f: (e: { error?: { message?: string } }) => void) => void } }).device;
  device?.addEventListener?.('uncapturederror', (e) => errors.push(e.error?.message ?? 'unknown GPU error'));
  console.log(`adapter: ${avail.adapter}`);
  const report: Record<string, unknown> = { adapter: avail.adapter, node: process.version, date: new Date().toISOString(), args: a, steps: [], kernels: [] };
  if (a.what.includes('kernels')) {
    console.log('kernels (median ms per call):');
    for (const mode of a.modes) (report.kernels as KernelResult[]).push(...(await benchKernels(mode, a)));
  }
  if (a.what.includes('steps')) {
    console.log('training steps:');
    for (const name of a.steps) {
      for (const mode of a.modes) {
        let r: StepResult;
        try {
          r = await benchStep(name, mode, a);
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          console.log(`  ${mode.padEnd(5)} ${name.padEnd(14)} FAILED: ${msg}`);
          (report.steps as unknown[]).push({ name, mode, error: msg });
          continue;
        }
        (report.steps as StepResult[]).push(r);
        console.log(`  ${mode.padEnd(5)} ${name.padEnd(14)} batch ${r.batch}: ${r.msPerStep.toFixed(1)} ms/step, ${r.viewsPerSec.toFixed(1)} views/s, peak GPU ${(r.peakGpuBytes / 2 ** 20).toFixed(0)} MiB, loss ${r.loss.toFixed(4)}`);
        if (!Number.isFinite(r.loss)) console.log('  WARNING: loss is not finite (GPU out of memory? see gpuErrors)');
      }
    }
  }
  report.gpuErrors = errors.slice(0, 20);
  report.gpuErrorCount = errors.length;
  if (errors.length) console.log(`GPU errors: ${errors.length} (first: ${errors[0]})`);
  if (a.out) fs.writeFileSync(a.out, JSON.stringify(report, null, 1));
  unregisterWebgpuKernels();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});

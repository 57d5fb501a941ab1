/**
 * Shared pieces of the training-step benchmarks: the benchmarked models, one Barlow Twins
 * training step (backbone + projector on two views, barlowTwinsLoss, Adam), and timing with
 * warm-up and medians. Follows the Barlow Twins step of facebookresearch/barlowtwins main.py
 * (each view through backbone and projector separately).
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../lib/nn/params';
import { ForwardContext } from '../lib/nn/layers';
import { Backbone, Head } from '../lib/nn/module';
import { resnet } from '../lib/models/resnet';
import { vit, VIT_PRESETS } from '../lib/models/vit';
import { barlowProjector } from '../lib/models/heads';
import { barlowTwinsLoss } from '../lib/losses/barlow';

/** One benchmarked model: a backbone spec plus the projector widths. */
export interface BenchModel {
  /** Short id used on the command line and in tables. */
  id: string;
  /** Human-readable description. */
  label: string;
  /** Backbone builder input (also what torch_cpu.py builds). */
  backbone: { kind: 'resnet18'; width: number } | { kind: 'vit'; preset: 'tiny4-seed' };
  /** Projector hidden and output width (3 Linear layers). */
  projector: number;
}

export const BENCH_MODELS: readonly BenchModel[] = Object.freeze([
  { id: 'r18w16', label: 'ResNet-18 width 16 + projector 2048', backbone: { kind: 'resnet18', width: 16 }, projector: 2048 },
  { id: 'r18w16p512', label: 'ResNet-18 width 16 + projector 512', backbone: { kind: 'resnet18', width: 16 }, projector: 512 },
  { id: 'r18w32', label: 'ResNet-18 width 32 + projector 2048', backbone: { kind: 'resnet18', width: 32 }, projector: 2048 },
  { id: 'r18w32p512', label: 'ResNet-18 width 32 + projector 512', backbone: { kind: 'resnet18', width: 32 }, projector: 512 },
  { id: 'r18w64', label: 'ResNet-18 (width 64) + projector 2048', backbone: { kind: 'resnet18', width: 64 }, projector: 2048 },
  { id: 'vitt4', label: 'ViT tiny4-seed (dim 192, depth 4) + projector 2048', backbone: { kind: 'vit', preset: 'tiny4-seed' }, projector: 2048 },
]);

export function benchModel(id: string): BenchModel {
  const m = BENCH_MODELS.find((x) => x.id === id);
  if (!m) throw new Error(`unknown bench model '${id}'; known: ${BENCH_MODELS.map((x) => x.id).join(', ')}`);
  return m;
}

function buildBackbone(m: BenchModel): Backbone {
  return m.backbone.kind === 'resnet18' ? resnet({ depth: 18, width: m.backbone.width }) : vit(VIT_PRESETS[m.backbone.preset]);
}

/** A ready-to-run Barlow Twins training step on the current backend. */
export interface BarlowBench {
  /** Runs one step (forward, backward, Adam update) and waits for it to finish; returns the loss. */
  step(): number;
  /** Number of trainable parameters (backbone + projector). */
  params: number;
  dispose(): void;
}

/** Builds model, projector, optimizer and two fixed random views of [batch, 32, 32, 3]. */
export function barlowBench(m: BenchModel, batch: number, seed = 0): BarlowBench {
  const backbone = buildBackbone(m);
  const head: Head = barlowProjector(backbone.featureDim, { hidden: m.projector, out: m.projector, layers: 3 });
  const ps = new ParamStore('bench');
  backbone.init(ps, seed, 'backbone.');
  head.init(ps, seed + 1, 'head.');
  const vars = ps.trainableNames().map((n) => ps.get(n));
  const opt = tf.train.adam(1e-3);
  const views = [tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', seed + 2), tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', seed + 3)] as tf.Tensor4D[];
  const ctx: ForwardContext = { training: true };
  const lossFn = (): tf.Scalar => {
    const z = views.map((v) => head.forward(ps, backbone.forward(ps, v, ctx, 'backbone.'), ctx, 'head.'));
    return barlowTwinsLoss(z[0], z[1]);
  };
  return {
    params: ps.numParams(),
    step() {
      const loss = opt.minimize(lossFn, true, vars) as tf.Scalar;
      const v = loss.dataSync()[0];
      loss.dispose();
      return v;
    },
    dispose() {
      tf.dispose(views);
      opt.dispose();
      ps.dispose();
    },
  };
}

/** Median of a list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

/** Timing of repeated steps: wall and process-CPU milliseconds per step (medians). */
export interface StepTiming {
  wallMs: number;
  cpuMs: number;
  steps: number;
}

/** Runs `warmup` untimed steps, then `steps` timed ones (stopping early after `maxMs`). */
export function timeSteps(step: () => unknown, warmup: number, steps: number, maxMs = Infinity): StepTiming {
  for (let i = 0; i < warmup; i++) step();
  const wall: number[] = [];
  const cpu: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    step();
    wall.push(performance.now() - w0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    if (performance.now() - t0 > maxMs) break;
  }
  return { wallMs: median(wall), cpuMs: median(cpu), steps: wall.length };
}

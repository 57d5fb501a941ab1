/**
 * Shared pieces of the training-step benchmarks: the benchmarked models, the library's Barlow Twins
 * training step (lib/train/trainStep.ts: backbone + projector on two views, the Barlow Twins loss,
 * AdamW; exactly what `pretrain` runs, augmentation aside), and timing with warm-up and medians.
 */
import * as tf from '@tensorflow/tfjs';
import { BackboneConfig, resolveConfig } from '../lib/config/config';
import { buildSslModel } from '../lib/methods/model';
import { Optimizer } from '../lib/train/optimizers';
import { makeTrainStep } from '../lib/train/trainStep';
import { stepSchedule } from '../lib/methods/schedules';

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
  {
    id: 'r18w16',
    label: 'ResNet-18 width 16 + projector 2048',
    backbone: { kind: 'resnet18', width: 16 },
    projector: 2048,
  },
  {
    id: 'r18w16p512',
    label: 'ResNet-18 width 16 + projector 512',
    backbone: { kind: 'resnet18', width: 16 },
    projector: 512,
  },
  {
    id: 'r18w32',
    label: 'ResNet-18 width 32 + projector 2048',
    backbone: { kind: 'resnet18', width: 32 },
    projector: 2048,
  },
  {
    id: 'r18w32p512',
    label: 'ResNet-18 width 32 + projector 512',
    backbone: { kind: 'resnet18', width: 32 },
    projector: 512,
  },
  {
    id: 'r18w64',
    label: 'ResNet-18 (width 64) + projector 2048',
    backbone: { kind: 'resnet18', width: 64 },
    projector: 2048,
  },
  {
    id: 'vitt4',
    label: 'ViT tiny4-seed (dim 192, depth 4) + projector 2048',
    backbone: { kind: 'vit', preset: 'tiny4-seed' },
    projector: 2048,
  },
]);

export function benchModel(id: string): BenchModel {
  const m = BENCH_MODELS.find((x) => x.id === id);
  if (!m) throw new Error(`unknown bench model '${id}'; known: ${BENCH_MODELS.map((x) => x.id).join(', ')}`);
  return m;
}

function backboneConfig(m: BenchModel): BackboneConfig {
  return m.backbone.kind === 'resnet18'
    ? { kind: 'resnet', depth: 18, width: m.backbone.width }
    : { kind: 'vit', preset: m.backbone.preset };
}

/** A ready-to-run Barlow Twins training step on the current backend. */
export interface BarlowBench {
  /** Runs one step (forward, backward, AdamW update) and waits for it to finish; returns the loss. */
  step(): number;
  /** Number of trainable parameters (backbone + projector). */
  params: number;
  dispose(): void;
}

/** Builds the Barlow Twins model for `m`, its optimizer and two fixed random views of [batch, 32, 32, 3]. */
export function barlowBench(m: BenchModel, batch: number, seed = 0): BarlowBench {
  const cfg = resolveConfig({
    method: 'barlow',
    backbone: backboneConfig(m),
    batchSize: batch,
    seed,
    epochs: 1000,
    projector: { hidden: m.projector, out: m.projector, layers: 3 },
  });
  const model = buildSslModel(cfg);
  const opt = new Optimizer(cfg.optimizer);
  const trainStep = makeTrainStep(model, opt);
  const views = [
    tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', seed + 2),
    tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', seed + 3),
  ] as tf.Tensor4D[];
  let i = 0;
  return {
    params: model.student.numParams(),
    step() {
      const out = trainStep(views, stepSchedule(cfg, i++, 1));
      const v = out.loss.dataSync()[0];
      tf.dispose([out.loss, out.gradNorm, ...Object.values(out.parts)]);
      return v;
    },
    dispose() {
      tf.dispose(views);
      opt.dispose();
      model.dispose();
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

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
 *                        [--what profile --profile barlow-r18] [--dawn disable-dawn-features=timestamp_quantization]
 *                        [--flag WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=128] [--proj 2048] [--head 4096,2048]
 *                        [--kernel-opts '{"fusedOps":false,"writeBufferUploads":false}']
 *                        [--what dispatches]     (GPU programs per step, by program)
 *                        [--what memory]         (tfjs pool bytes, most bytes in use at once, bytes kept
 *                                                 between steps; no timing, works on the null device)
 *                        [--what clocks]         (GPU time of a conv after an idle GPU vs behind a burst)
 *                        [--dawn backend=null]   (Dawn's null device: no GPU work, 512 MiB; counts
 *                                                 dispatches and the CPU cost of issuing them)
 * Modes: `stock`, `ours`, or `ours` with `:`-separated GEMM choices: `TMxTN` (register block 4, 8 or
 * auto, e.g. ours:8x4, ours:auto), `blocked` (vec4 thread layout), `prefetch` (register prefetch of
 * the next K step), `vec4` (operands loaded from global memory 4 values at a time), `tuned` (each conv GEMM of the step timed with every variant first and the
 * fastest kept, and direct vs Winograd chosen per 3x3 stride-1 pass: lib/kernels/webgpu/tune.ts),
 * `winograd` (3x3 stride-1 conv forward and input gradient
 * by Winograd F(2x2, 3x3): lib/kernels/webgpu/winograd.ts; the kernel table's TFLOP/s for those
 * passes count the direct convolution's flops), e.g. `ours:8x8:blocked:prefetch`, `ours:tuned:winograd`.
 * The report (--out) is rewritten after every result, so a run stopped by a time limit keeps its numbers.
 * `--quick` shrinks everything for a correctness smoke run on lavapipe.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { ensureWebgpu } from '../lib/kernels/webgpu/setup';
import {
  registerWebgpuKernels,
  unregisterWebgpuKernels,
  WEBGPU_KERNELS_ENV,
  WEBGPU_KERNEL_DEFAULTS,
  WebgpuKernelOptions,
} from '../lib/kernels/webgpu';
import { GEMM_DEFAULTS } from '../lib/kernels/webgpu/gemm';
import { clearTuning, tuneGemms, TuneRow } from '../lib/kernels/webgpu/tune';
import { convCosts } from '../lib/kernels/webgpu/conv2d';
import { reduceRowsCost } from '../lib/kernels/webgpu/reduce_rows';
import { buildSslModel } from '../lib/methods';
import { makeTrainStep } from '../lib/train/trainStep';
import { resolveConfig, Method, BackboneConfig } from '../lib/config/config';
import { stepSchedule } from '../lib/methods/schedules';
import { Optimizer } from '../lib/train/optimizers';
import { batchNormTrain } from '../lib/nn/batchnorm';
import { trimGpuPool, trackPeakGpuUse } from '../lib/kernels/webgpu/pool';

/**
 * `stock`, or `ours` with optional `:`-separated tokens: a GEMM register block `TMxTN` (TM, TN in
 * 4, 8, auto; `auto` alone = autoxauto), `blocked` (the vec4 'blocked' thread layout) and
 * `prefetch` (register prefetch of the next K step), `vec4` (vec4 operand loads), `tuned`, `winograd`,
 * e.g. `ours:8x8:blocked:prefetch:vec4` (lib/kernels/webgpu/gemm.ts).
 */
type Mode = string;

interface ParsedMode {
  ours: boolean;
  tm?: number;
  tn?: number;
  blocked?: boolean;
  prefetch?: boolean;
  vec4?: boolean;
  tuned?: boolean;
  winograd?: boolean;
}

function parseMode(m: string): ParsedMode {
  if (m === 'stock') return { ours: false };
  const [head, ...tokens] = m.split(':');
  const bad = (): Error =>
    new Error(
      `--modes: "${m}" is not stock or ours[:TMxTN][:blocked][:prefetch][:vec4][:tuned][:winograd] (TM, TN in 4, 8, auto)`,
    );
  if (head !== 'ours') throw bad();
  const r: ParsedMode = { ours: true };
  const v = (x: string): number => (x === 'auto' ? 0 : Number(x));
  for (const t of tokens) {
    const tile = /^(4|8|auto)x(4|8|auto)$/.exec(t);
    if (tile && r.tm === undefined) [r.tm, r.tn] = [v(tile[1]), v(tile[2])];
    else if (t === 'auto' && r.tm === undefined) [r.tm, r.tn] = [0, 0];
    else if (t === 'blocked' && !r.blocked) r.blocked = true;
    else if (t === 'prefetch' && !r.prefetch) r.prefetch = true;
    else if (t === 'vec4' && !r.vec4) r.vec4 = true;
    else if (t === 'tuned' && !r.tuned) r.tuned = true;
    else if (t === 'winograd' && !r.winograd) r.winograd = true;
    else throw bad();
  }
  return r;
}

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
  /** Barlow projector width (hidden and output); 2048 as the method's default. */
  proj: number;
  /** DINO head output and hidden width (bottleneck 256 or less); 4096 / 2048 as the defaults. */
  headOut: number;
  headHidden: number;
  /** Options for our kernels in the `ours` modes (e.g. {"fusedOps": false} to time an older version). */
  kernelOpts: Partial<WebgpuKernelOptions>;
  out?: string;
  /** Profile one step of each of these (per-kernel GPU time from timestamp queries) after the timed steps. */
  profile: string[];
  /** Flags for Dawn's `create` (e.g. `disable-dawn-features=timestamp_quantization`). */
  dawn: string[];
  /** tfjs environment flags set before running (e.g. WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=128). */
  flags: Array<[string, number | boolean]>;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    what: ['steps', 'kernels'],
    modes: ['stock', 'ours'],
    batch: 256,
    width: 64,
    steps: ['barlow-r18', 'dinotwins-r18', 'barlow-vit'],
    kernelBatch: 256,
    kernelShapes: [
      [32, 64],
      [16, 128],
      [8, 256],
      [4, 512],
    ],
    repeats: 5,
    perRepeat: 3,
    warmup: 2,
    iters: 10,
    nLocal: 4,
    vitPreset: 'tiny4',
    proj: 2048,
    headOut: 4096,
    headHidden: 2048,
    kernelOpts: {},
    profile: [],
    dawn: [],
    flags: [],
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
      case '--what':
        a.what = v().split(',');
        break;
      case '--modes':
        a.modes = v().split(',') as Mode[];
        break;
      case '--batch':
        a.batch = int();
        break;
      case '--width':
        a.width = int();
        break;
      case '--steps':
        a.steps = v().split(',');
        break;
      case '--kernel-batch':
        a.kernelBatch = int();
        break;
      case '--repeats':
        a.repeats = int();
        break;
      case '--per-repeat':
        a.perRepeat = int();
        break;
      case '--warmup':
        a.warmup = int();
        break;
      case '--iters':
        a.iters = int();
        break;
      case '--local':
        a.nLocal = int();
        break;
      case '--vit':
        a.vitPreset = v();
        break;
      case '--proj':
        a.proj = int();
        break;
      case '--head': {
        const m = /^(\d+),(\d+)$/.exec(v());
        if (!m) throw new Error('--head takes OUT,HIDDEN (e.g. 4096,2048)');
        a.headOut = Number(m[1]);
        a.headHidden = Number(m[2]);
        break;
      }
      case '--kernel-opts': {
        const j = JSON.parse(v()) as Record<string, unknown>;
        for (const key of Object.keys(j))
          if (!(key in WEBGPU_KERNEL_DEFAULTS))
            throw new Error(
              `--kernel-opts: unknown option "${key}"; known: ${Object.keys(WEBGPU_KERNEL_DEFAULTS).join(', ')}`,
            );
        a.kernelOpts = j as Partial<WebgpuKernelOptions>;
        break;
      }
      case '--out':
        a.out = v();
        break;
      case '--profile':
        a.profile = v().split(',').filter(Boolean);
        break;
      case '--dawn':
        a.dawn.push(v());
        break;
      case '--flag': {
        const m = /^([A-Z0-9_]+)=(.+)$/.exec(v());
        if (!m) throw new Error('--flag takes NAME=VALUE');
        a.flags.push([m[1], m[2] === 'true' ? true : m[2] === 'false' ? false : Number(m[2])]);
        break;
      }
      case '--quick':
        Object.assign(a, {
          batch: 2,
          width: 8,
          kernelBatch: 2,
          kernelShapes: [
            [8, 16],
            [4, 32],
          ],
          repeats: 2,
          perRepeat: 1,
          warmup: 1,
          iters: 2,
          nLocal: 2,
          vitPreset: 'tiny4-seed',
        });
        break;
      default:
        throw new Error(`unknown option ${k}`);
    }
  }
  for (const m of a.modes) parseMode(m);
  for (const w of a.what)
    if (!['steps', 'kernels', 'profile', 'micro', 'dispatches', 'memory', 'clocks'].includes(w))
      throw new Error(`--what: "${w}" is not steps, kernels, profile, micro, dispatches, memory or clocks`);
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
  const m = tf.memory() as unknown as {
    numBytesInGPU?: number;
    numBytesInGPUAllocated?: number;
    numBytesAllocatedInGPU?: number;
  };
  return { used: m.numBytesInGPU ?? 0, allocated: m.numBytesAllocatedInGPU ?? m.numBytesInGPUAllocated ?? 0 };
}

let kernelOpts: Partial<WebgpuKernelOptions> = {};

function setMode(mode: Mode): void {
  const m = parseMode(mode);
  clearTuning(); // a tuned mode's choices must not carry into the next mode
  if (!m.ours) {
    unregisterWebgpuKernels();
    return;
  }
  const gemm = { ...GEMM_DEFAULTS, ...kernelOpts.gemm };
  if (m.blocked) gemm.layout = 'blocked';
  if (m.prefetch) gemm.prefetch = true;
  if (m.vec4) gemm.vec4 = true;
  if (m.tm !== undefined) [gemm.tm, gemm.tn] = [m.tm, m.tn ?? 0];
  registerWebgpuKernels({ ...kernelOpts, gemm, ...(m.winograd ? { winograd: true } : {}) });
}

/** Writes the report after every result (temp file + rename), so a run cut off by its time limit keeps what it measured. */
function saveReport(a: Args, report: Record<string, unknown>): void {
  if (!a.out) return;
  fs.writeFileSync(`${a.out}.tmp`, JSON.stringify(report, null, 1));
  fs.renameSync(`${a.out}.tmp`, a.out);
}

interface StepResult {
  name: string;
  mode: Mode;
  batch: number;
  viewsPerStep: number;
  msPerStep: number;
  viewsPerSec: number;
  loss: number;
  repeats: number[];
  /** Bytes tfjs' buffer pool allocated for this step (model, optimizer state and the pool it grew), counted from a trimmed pool. */
  peakGpuBytes: number;
  /** Most bytes in use at once during the timed steps (what an allocator without exact-size pooling would need at least). */
  peakLiveBytes: number;
  /** Median time to issue one step from JavaScript (before the read-back wait): near msPerStep means CPU-bound dispatch. */
  enqueueMsPerStep: number;
  /** Seconds from model build to the end of warm-up (shader compilation included). */
  warmupSeconds: number;
  /** `:tuned` modes: what the tuner measured per conv GEMM (ms by candidate, the choice) and how long tuning took. */
  tuning?: { seconds: number; rows: TuneRow[] };
  /** Per step, in the timed repeats: GPU programs run, queue submits, GPU buffers created (pool misses). */
  dispatchesPerStep: number;
  submitsPerStep: number;
  buffersCreatedPerStep: number;
}

/** Counts of work the backend hands to Dawn (installed by `countBackendCalls`). */
const calls = { dispatches: 0, submits: 0, buffers: 0 };

/**
 * Wraps the webgpu backend's `runWebGPUProgram` and its device's `createBuffer` / `queue.submit`
 * with counters: the CPU cost of a step on WebGPU grows with these (H100: ~0.18 ms per dispatch).
 */
function countBackendCalls(): void {
  type Fn = (...args: unknown[]) => unknown;
  const wrap = (o: Record<string, unknown>, name: string, key: keyof typeof calls): void => {
    const f = o[name] as Fn;
    o[name] = function (this: unknown, ...args: unknown[]) {
      calls[key]++;
      return f.apply(this, args);
    };
  };
  const be = tf.backend() as unknown as Record<string, unknown> & {
    device: Record<string, unknown> & { queue: Record<string, unknown> };
  };
  wrap(be, 'runWebGPUProgram', 'dispatches');
  wrap(be.device, 'createBuffer', 'buffers');
  wrap(be.device.queue, 'submit', 'submits');
}

function stepConfig(name: string, a: Args): { method: Method; backbone: BackboneConfig; nLocal: number } {
  const r18: BackboneConfig = { kind: 'resnet', depth: 18, width: a.width };
  switch (name) {
    case 'barlow-r18':
      return { method: 'barlow', backbone: r18, nLocal: 0 };
    case 'dinotwins-r18':
      return { method: 'dino-twins', backbone: r18, nLocal: a.nLocal };
    case 'barlow-vit':
      return { method: 'barlow', backbone: { kind: 'vit', preset: a.vitPreset }, nLocal: 0 };
    default:
      throw new Error(`unknown step "${name}"; known: barlow-r18, dinotwins-r18, barlow-vit`);
  }
}

interface StepRunner {
  runOne: () => void;
  last: () => tf.Scalar | undefined;
  views: number;
  dispose: () => void;
}

function makeStep(name: string, a: Args): StepRunner {
  const sc = stepConfig(name, a);
  const cfg = resolveConfig({
    method: sc.method,
    backbone: sc.backbone,
    batchSize: a.batch,
    epochs: 100,
    augment: { nLocal: sc.nLocal },
    projector: { hidden: a.proj, out: a.proj, layers: 3 },
    dino: { head: { out: a.headOut, hidden: a.headHidden, bottleneck: Math.min(256, a.headHidden) } },
  });
  const model = buildSslModel(cfg);
  const opt = new Optimizer(cfg.optimizer);
  const trainStep = makeTrainStep(model, opt);
  const views: tf.Tensor4D[] = [];
  for (let v = 0; v < 2; v++)
    views.push(tf.randomNormal([a.batch, cfg.augment.globalSize, cfg.augment.globalSize, 3], 0, 1, 'float32', 10 + v));
  for (let v = 0; v < sc.nLocal; v++)
    views.push(tf.randomNormal([a.batch, cfg.augment.localSize!, cfg.augment.localSize!, 3], 0, 1, 'float32', 20 + v));
  let step = 0;
  let last: tf.Scalar | undefined;
  const runOne = (): void => {
    // 1000 steps per epoch: the bench stays in epoch 0, so DINO's last layer stays frozen as in a real first epoch.
    const out = trainStep(views, stepSchedule(cfg, step++, 1000));
    tf.dispose([out.gradNorm, ...Object.values(out.parts)]);
    last?.dispose();
    last = out.loss;
  };
  return {
    runOne,
    last: () => last,
    views: views.length,
    dispose: () => {
      last?.dispose();
      last = undefined;
      tf.dispose(views);
      model.dispose();
    },
  };
}

/**
 * Builds step `name` in `mode` from a trimmed pool (the pool never frees: without a trim, a step
 * measured after another would count the other's pool) and runs `f` with the pool's bytes before
 * the build, the time the build started and a tracker of the most bytes in use at once; disposes
 * the step after.
 */
async function withStep<T>(
  name: string,
  mode: Mode,
  a: Args,
  f: (st: StepRunner, base: number, built: number, live: { peak: () => number }) => Promise<T>,
): Promise<T> {
  setMode(mode);
  trimGpuPool();
  const base = gpuBytes().allocated;
  const built = performance.now();
  const st = makeStep(name, a);
  const live = trackPeakGpuUse();
  try {
    return await f(st, base, built, live);
  } finally {
    live.stop();
    st.dispose();
  }
}

/**
 * One step's timing. `tuneProgress` gets the tuner's rows so far after each one (a `:tuned` mode
 * on a lent GPU can run into its phase's time limit while tuning; the report keeps what it measured).
 */
async function benchStep(
  name: string,
  mode: Mode,
  a: Args,
  tuneProgress?: (rows: TuneRow[]) => void,
): Promise<StepResult> {
  return withStep(name, mode, a, async (st, base, tw, live) => {
    let peak = 0;
    let tuning: StepResult['tuning'];
    if (parseMode(mode).tuned) {
      const t0 = performance.now();
      const sofar: TuneRow[] = [];
      const onRow = (r: TuneRow): void => {
        sofar.push(r);
        const ms = (label: string): string => (Number.isFinite(r.ms[label]) ? r.ms[label].toFixed(3) : '-');
        const base4 = r.key.startsWith('conv ') ? 'direct 4x4' : '4x4';
        console.log(
          `    tuned ${r.key} (M ${r.M}, N ${r.N}, K ${r.K}): ${r.chosen} ${ms(r.chosen)} ms, ${base4} ${ms(base4)} ms`,
        );
        tuneProgress?.(sofar);
      };
      const rows = await tuneGemms(() => st.runOne(), { iters: a.iters, onRow });
      tuning = { seconds: (performance.now() - t0) / 1000, rows };
      printTuning(rows, tuning.seconds);
    }
    for (let i = 0; i < a.warmup; i++) st.runOne();
    await sync(st.last()!);
    // Tuning (its own figure) is not warm-up; the tuned mode's loss is one step further on (tuning runs one).
    const warmupSeconds = (performance.now() - tw) / 1000 - (tuning?.seconds ?? 0);
    const per: number[] = [];
    const enq: number[] = [];
    const before = { ...calls };
    for (let r = 0; r < a.repeats; r++) {
      const t0 = performance.now();
      for (let i = 0; i < a.perRepeat; i++) st.runOne();
      enq.push((performance.now() - t0) / a.perRepeat);
      await sync(st.last()!);
      per.push((performance.now() - t0) / a.perRepeat);
      peak = Math.max(peak, gpuBytes().allocated - base);
    }
    const nSteps = a.repeats * a.perRepeat;
    const perStep = (k: keyof typeof calls): number => (calls[k] - before[k]) / nSteps;
    const counted = {
      dispatchesPerStep: perStep('dispatches'),
      submitsPerStep: perStep('submits'),
      buffersCreatedPerStep: perStep('buffers'),
    };
    const loss = (await st.last()!.data())[0];
    const viewsPerStep = a.batch * st.views;
    const ms = median(per);
    return {
      name,
      mode,
      batch: a.batch,
      viewsPerStep,
      msPerStep: ms,
      viewsPerSec: (viewsPerStep * 1000) / ms,
      peakGpuBytes: peak,
      peakLiveBytes: live.peak() - base,
      loss,
      repeats: per,
      enqueueMsPerStep: median(enq),
      warmupSeconds,
      ...counted,
      tuning,
    };
  });
}

/** The tuner's choices: how often each candidate won, and the summed ms of the default vs the chosen. */
function printTuning(rows: TuneRow[], seconds: number): void {
  const summary = (rs: TuneRow[], defaultLabel: string): string => {
    const byChoice = new Map<string, number>();
    let chosenMs = 0;
    let defaultMs = 0;
    for (const r of rs) {
      byChoice.set(r.chosen, (byChoice.get(r.chosen) ?? 0) + 1);
      chosenMs += r.ms[r.chosen] ?? NaN;
      defaultMs += r.ms[defaultLabel] ?? NaN;
    }
    return `${[...byChoice].map(([k, n]) => `${k} x${n}`).join(', ')}; one run of each: ${defaultMs.toFixed(2)} ms with ${defaultLabel}, ${chosenMs.toFixed(2)} ms as chosen`;
  };
  const passes = rows.filter((r) => r.key.startsWith('conv '));
  const gemms = rows.filter((r) => !r.key.startsWith('conv '));
  console.log(`  tuned in ${seconds.toFixed(1)} s: ${gemms.length} conv GEMMs: ${summary(gemms, '4x4')}`);
  if (passes.length)
    console.log(
      `    and ${passes.length} 3x3 stride-1 conv passes, direct GEMM or Winograd: ${summary(passes, 'direct 4x4')}`,
    );
}

interface MemoryResult {
  name: string;
  mode: Mode;
  batch: number;
  poolBytes: number;
  peakLiveBytes: number;
  persistentBytes: number;
  readBack: string;
}

/**
 * GPU memory of a step, without timing: from a trimmed pool, builds the model, runs warm-up + 2
 * steps and reports the bytes tfjs' pool allocated, the most bytes in use at once, and what stays
 * in use between steps (parameters, optimizer and EMA state, the inputs). These are tfjs'
 * bookkeeping, the same on any adapter: on Dawn's null device (512 MiB) allocations past its
 * memory fail and nothing runs, but the pool counts them the same, so batch-256 figures can be
 * taken without a GPU (the read-back then fails; `readBack` says so).
 */
async function benchMemory(name: string, mode: Mode, a: Args): Promise<MemoryResult> {
  return withStep(name, mode, a, async (st, base, _built, live) => {
    for (let i = 0; i < a.warmup + 2; i++) st.runOne();
    let readBack = 'ok';
    try {
      await sync(st.last()!);
    } catch (e) {
      readBack = `failed (${e instanceof Error ? e.name || e.message : String(e)})`;
    }
    return {
      name,
      mode,
      batch: a.batch,
      poolBytes: gpuBytes().allocated - base,
      peakLiveBytes: live.peak() - base,
      persistentBytes: gpuBytes().used - base,
      readBack,
    };
  });
}

/**
 * GPU programs one step dispatches, counted by program (the shader key's name part: `dtBnPart`,
 * `binary`, `matMulPacked`, ...), after warm-up. Works on any adapter, Dawn's null device included:
 * it is how the dispatch count of a step was brought down (RESULTS-GPU.md, "Work issued per step").
 */
async function dispatchBreakdown(
  name: string,
  mode: Mode,
  a: Args,
): Promise<{ name: string; mode: Mode; total: number; rows: Array<{ program: string; count: number }> }> {
  setMode(mode);
  const st = makeStep(name, a);
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...r: unknown[]) => unknown };
  const orig = be.runWebGPUProgram;
  const counts = new Map<string, number>();
  try {
    for (let i = 0; i < Math.max(1, a.warmup); i++) st.runOne();
    await sync(st.last()!);
    be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...r: unknown[]) {
      const key = String(p.shaderKey).split('_')[0].replace(/\d.*$/, '');
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return orig.call(this, p, ...r);
    };
    st.runOne();
  } finally {
    be.runWebGPUProgram = orig;
  }
  await sync(st.last()!);
  st.dispose();
  const rows = [...counts.entries()].map(([program, count]) => ({ program, count })).sort((x, y) => y.count - x.count);
  return { name, mode, total: rows.reduce((t, r) => t + r.count, 0), rows };
}

interface ProfileRow {
  kernel: string;
  calls: number;
  gpuMs: number;
  share: number;
  example: string;
}

/**
 * One step under `tf.profile`: GPU time per tfjs kernel from the backend's timestamp queries
 * (each program in its own compute pass, so the step is slower than unprofiled), summed by
 * kernel name, plus the unprofiled wall time for comparison.
 */
async function profileStep(name: string, mode: Mode, a: Args): Promise<Record<string, unknown>> {
  setMode(mode);
  const st = makeStep(name, a);
  try {
    for (let i = 0; i < Math.max(1, a.warmup); i++) st.runOne();
    await sync(st.last()!);
    const t0 = performance.now();
    const info = await tf.profile(() => {
      st.runOne();
    });
    await sync(st.last()!);
    const wallMs = performance.now() - t0;
    const by = new Map<string, ProfileRow>();
    let total = 0;
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      total += ms;
      const r = by.get(k.name) ?? { kernel: k.name, calls: 0, gpuMs: 0, share: 0, example: '' };
      r.calls++;
      r.gpuMs += ms;
      if (!r.example) r.example = `${JSON.stringify(k.inputShapes)} -> ${JSON.stringify(k.outputShapes)}`;
      by.set(k.name, r);
    }
    const rows = [...by.values()].sort((x, y) => y.gpuMs - x.gpuMs);
    for (const r of rows) r.share = total > 0 ? r.gpuMs / total : 0;
    const top = info.kernels
      .map((k, i) => ({
        i,
        kernel: k.name,
        ms: typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0,
        shapes: `${JSON.stringify(k.inputShapes)} -> ${JSON.stringify(k.outputShapes)}`,
      }))
      .sort((x, y) => y.ms - x.ms)
      .slice(0, 40);
    return {
      name,
      mode,
      batch: a.batch,
      kernels: info.kernels.length,
      gpuMsTotal: total,
      profiledWallMs: wallMs,
      rows,
      top,
    };
  } finally {
    st.dispose();
  }
}

interface KernelResult {
  op: string;
  shape: string;
  mode: Mode;
  ms: number;
  tflops?: number;
  gbps?: number;
  flops: number;
  bytes: number;
}

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

interface ClockResult {
  op: string;
  shape: string;
  mode: Mode;
  backToBackMs: number;
  afterIdleGpuMs: number[];
  afterBurstGpuMs: number[];
}

/**
 * Does a kernel run slower on a GPU that was idle just before? The per-kernel profile of a step
 * (call 4) put the same 3x3 convolutions at 2.4-2.9x the kernel bench's time (e.g. the 4x4x512
 * input gradient: 4.67 ms in the step, 1.64 ms back to back); under `tf.profile` the GPU idles
 * between kernels, which may keep its clocks low. For a few conv passes: back-to-back wall time
 * per call (as `--what kernels`), and the GPU time of one call from timestamp queries, (a) after
 * 200 ms of idle GPU and (b) queued right behind a burst of ~30 calls, `repeats` times each.
 */
async function benchClocks(mode: Mode, a: Args): Promise<ClockResult[]> {
  setMode(mode);
  const out: ClockResult[] = [];
  const B = a.kernelBatch;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const gpuMsOf = async (f: () => tf.Tensor): Promise<number> => {
    let y: tf.Tensor | undefined;
    const info = await tf.profile(() => {
      y = f();
    });
    await sync(y!);
    y!.dispose();
    const ms = info.kernels.map((k) => (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : NaN));
    return ms.reduce((x, v) => x + v, 0);
  };
  for (const [S, C] of a.kernelShapes.filter(([S]) => S <= 16)) {
    const shape = `${B}x${S}x${S}x${C}`;
    const w = tf.randomNormal([3, 3, C, C], 0, 0.05, 'float32', 2) as tf.Tensor4D;
    const x = tf.randomNormal([B, S, S, C], 0, 1, 'float32', 1) as tf.Tensor4D;
    const dy = tf.randomNormal([B, S, S, C], 0, 1, 'float32', 3) as tf.Tensor4D;
    const attrs = {
      strides: 1,
      pad: 'same',
      dataFormat: 'NHWC',
      dimRoundingMode: undefined,
    } as unknown as tf.NamedAttrMap;
    const ops: Array<[string, () => tf.Tensor]> = [
      ['conv3x3 forward', () => tf.conv2d(x, w, 1, 'same')],
      [
        'conv3x3 input grad',
        () =>
          tf
            .engine()
            .runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: [B, S, S, C] }) as tf.Tensor,
      ],
    ];
    for (const [op, f] of ops) {
      const backToBackMs = await timeOp(f, a);
      const idle: number[] = [];
      const busy: number[] = [];
      for (let r = 0; r < a.repeats; r++) {
        await sleep(200);
        idle.push(await gpuMsOf(f));
        for (let i = 0; i < 30; i++) f().dispose();
        busy.push(await gpuMsOf(f));
      }
      out.push({ op, shape, mode, backToBackMs, afterIdleGpuMs: idle, afterBurstGpuMs: busy });
      console.log(
        `  ${mode.padEnd(10)} ${op.padEnd(20)} ${shape.padEnd(14)} back to back ${backToBackMs.toFixed(3)} ms/call; GPU time of one call after 200 ms idle ${median(idle).toFixed(3)} ms, behind a burst ${median(busy).toFixed(3)} ms (medians of ${a.repeats})`,
      );
    }
    tf.dispose([w, x, dy]);
  }
  return out;
}

/** `n` chained adds of `one` to `x` (each a separate op and GPU dispatch). */
function addChain(x: tf.Tensor, one: tf.Tensor, n: number): tf.Tensor {
  return tf.tidy(() => {
    let y = x;
    for (let i = 0; i < n; i++) y = tf.add(y, one);
    return y;
  });
}

/**
 * Does the cost of issuing an op grow with the tensor size? Chains of 50 adds at three sizes:
 * time to issue (JavaScript returns) and total (after the read-back), per op.
 */
async function benchMicro(): Promise<Array<{ elements: number; issueMsPerOp: number; totalMsPerOp: number }>> {
  const rows = [];
  for (const n of [4096, 1 << 20, 1 << 24]) {
    const x0 = tf.randomNormal([n], 0, 1, 'float32', 6);
    const one = tf.onesLike(x0);
    const w = addChain(x0, one, 50);
    await sync(w);
    w.dispose();
    const issue: number[] = [];
    const total: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      const y = addChain(x0, one, 50);
      issue.push((performance.now() - t0) / 50);
      await sync(y);
      total.push((performance.now() - t0) / 50);
      y.dispose();
    }
    tf.dispose([x0, one]);
    const row = { elements: n, issueMsPerOp: median(issue), totalMsPerOp: median(total) };
    rows.push(row);
    console.log(
      `micro: add chain on ${n} floats: issue ${row.issueMsPerOp.toFixed(4)} ms/op, total ${row.totalMsPerOp.toFixed(4)} ms/op`,
    );
  }
  return rows;
}

async function benchKernels(mode: Mode, a: Args): Promise<KernelResult[]> {
  setMode(mode);
  const res: KernelResult[] = [];
  if (mode === 'stock') {
    // Fixed cost of one small op (engine + backend bookkeeping, bind group, uniforms, submit): a
    // chain of 200 adds on 4,096 floats (above the CPU hand-off threshold), per op. A training step
    // issues thousands of ops, so this times the op count is a floor for the step.
    const n = 200;
    const x0 = tf.randomNormal([4096], 0, 1, 'float32', 5);
    const one = tf.onesLike(x0);
    const ms = await timeOp(() => addChain(x0, one, n), a);
    tf.dispose([x0, one]);
    res.push({ op: 'small add (per op)', shape: '4096', mode, ms: ms / n, flops: 4096, bytes: 3 * 4 * 4096 });
    console.log(
      `  ${mode.padEnd(10)} ${'small add (per op)'.padEnd(22)} ${'4096'.padEnd(14)} ${(ms / n).toFixed(4).padStart(9)} ms  (chain of ${n})`,
    );
  }
  const B = a.kernelBatch;
  for (const [S, C] of a.kernelShapes) {
    const shape = `${B}x${S}x${S}x${C}`;
    const x = tf.randomNormal([B, S, S, C], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, C, C], 0, 0.05, 'float32', 2) as tf.Tensor4D;
    const dy = tf.randomNormal([B, S, S, C], 0, 1, 'float32', 3) as tf.Tensor4D;
    const info = tf.backend_util.computeConv2DInfo([B, S, S, C], [3, 3, C, C], 1, 1, 'same');
    const cost = convCosts(info);
    const attrs = {
      strides: 1,
      pad: 'same',
      dataFormat: 'NHWC',
      dimRoundingMode: undefined,
    } as unknown as tf.NamedAttrMap;
    const disposeAfter: tf.Tensor[] = [];
    const ops: Array<[string, () => tf.Tensor, { flops: number; bytes: number }]> = [
      ['conv3x3 forward', () => tf.conv2d(x, w, 1, 'same'), cost.forward],
      [
        'conv3x3 input grad',
        () =>
          tf
            .engine()
            .runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: [B, S, S, C] }) as tf.Tensor,
        cost.inputGrad,
      ],
      [
        'conv3x3 filter grad',
        () =>
          tf
            .engine()
            .runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: [3, 3, C, C] }) as tf.Tensor,
        cost.filterGrad,
      ],
      [
        'BN moments',
        () =>
          tf.tidy(() => {
            const m = tf.moments(x, [0, 1, 2]);
            return tf.add(m.mean, m.variance);
          }),
        { flops: 3 * B * S * S * C, bytes: 3 * reduceRowsCost(B * S * S, C).bytes + 4 * B * S * S * C },
      ],
      [
        'BN moments+normalise',
        () =>
          tf.tidy(() => {
            const m = tf.moments(x, [0, 1, 2]);
            return tf.mul(tf.sub(x, m.mean), tf.rsqrt(tf.add(m.variance, 1e-5)));
          }),
        { flops: 6 * B * S * S * C, bytes: 4 * 6 * B * S * S * C },
      ],
    ];
    if (S <= 16 && C % 2 === 0) {
      // The ResNet down-sampling conv into this stage: [B, 2S, 2S, C/2] -> [B, S, S, C], 3x3, stride 2, pad 1
      // (ours: one GEMM per stride phase).
      const inShape: [number, number, number, number] = [B, 2 * S, 2 * S, C / 2];
      const pad: tf.backend_util.ExplicitPadding = [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ];
      const w2 = tf.randomNormal([3, 3, C / 2, C], 0, 0.05, 'float32', 4) as tf.Tensor4D;
      const cost2 = convCosts(tf.backend_util.computeConv2DInfo(inShape, [3, 3, C / 2, C], 2, 1, pad));
      const attrs2 = { strides: 2, pad, dataFormat: 'NHWC', dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
      ops.push([
        'conv3x3/2 input grad',
        () =>
          tf
            .engine()
            .runKernel('Conv2DBackpropInput', { dy, filter: w2 }, { ...attrs2, inputShape: inShape }) as tf.Tensor,
        cost2.inputGrad,
      ]);
      disposeAfter.push(w2);
    }
    // Training batch norm + ReLU, forward and backward (ours: the fused kernels; stock: composed ops).
    const gamma = tf.ones([C]);
    const beta = tf.zeros([C]);
    disposeAfter.push(gamma, beta);
    const bnGrad = tf.grads((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.mul(batchNormTrain(xi, g, b, true), dy));
    ops.push([
      'BN+ReLU train fwd+bwd',
      () => tf.tidy(() => tf.addN(bnGrad([x, gamma, beta]).map((t) => tf.sum(t)))),
      { flops: 20 * B * S * S * C, bytes: 4 * 8 * B * S * S * C },
    ]);
    for (const [op, f, c] of ops) {
      const ms = await timeOp(f, a);
      res.push({
        op,
        shape,
        mode,
        ms,
        flops: c.flops,
        bytes: c.bytes,
        tflops: c.flops / (ms * 1e9),
        gbps: c.bytes / (ms * 1e6),
      });
      console.log(
        `  ${mode.padEnd(10)} ${op.padEnd(22)} ${shape.padEnd(14)} ${ms.toFixed(3).padStart(9)} ms  ${(c.flops / (ms * 1e9)).toFixed(2).padStart(7)} TFLOP/s  ${(c.bytes / (ms * 1e6)).toFixed(1).padStart(8)} GB/s`,
      );
    }
    tf.dispose([x, w, dy, ...disposeAfter]);
  }
  return res;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const avail = await ensureWebgpu(a.dawn);
  if (!avail.ok) throw new Error(avail.reason);
  if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') failed");
  await tf.ready();
  for (const [k, v] of a.flags) tf.env().set(k, v);
  countBackendCalls();
  kernelOpts = a.kernelOpts;
  const errors: string[] = [];
  const device = (
    tf.backend() as unknown as {
      device?: { addEventListener?: (n: string, f: (e: { error?: { message?: string } }) => void) => void };
    }
  ).device;
  device?.addEventListener?.('uncapturederror', (e) => errors.push(e.error?.message ?? 'unknown GPU error'));
  console.log(`adapter: ${avail.adapter}`);
  const report: Record<string, unknown> = {
    adapter: avail.adapter,
    node: process.version,
    date: new Date().toISOString(),
    args: a,
    steps: [],
    kernels: [],
    profiles: [],
  };
  if (a.what.includes('kernels')) {
    console.log('kernels (median ms per call):');
    for (const mode of a.modes) {
      (report.kernels as KernelResult[]).push(...(await benchKernels(mode, a)));
      saveReport(a, report);
    }
  }
  if (a.what.includes('steps')) {
    console.log('training steps:');
    for (const name of a.steps) {
      for (const mode of a.modes) {
        let r: StepResult;
        try {
          r = await benchStep(name, mode, a, (rows) => {
            report.tuningSoFar = { name, mode, rows };
            saveReport(a, report);
          });
          delete report.tuningSoFar;
        } catch (e) {
          const msg = e instanceof Error ? e.message || String(e.stack) : String(e);
          console.log(`  ${mode.padEnd(10)} ${name.padEnd(14)} FAILED: ${msg}`);
          (report.steps as unknown[]).push({ name, mode, error: msg });
          saveReport(a, report);
          continue;
        }
        (report.steps as StepResult[]).push(r);
        saveReport(a, report);
        console.log(
          `  ${mode.padEnd(10)} ${name.padEnd(14)} batch ${r.batch}: ${r.msPerStep.toFixed(1)} ms/step (issue ${r.enqueueMsPerStep.toFixed(1)} ms), ${r.viewsPerSec.toFixed(1)} views/s, peak GPU ${(r.peakGpuBytes / 2 ** 20).toFixed(0)} MiB (in use at once ${(r.peakLiveBytes / 2 ** 20).toFixed(0)}), loss ${r.loss.toFixed(4)}, warm-up ${r.warmupSeconds.toFixed(1)} s; per step ${r.dispatchesPerStep.toFixed(0)} dispatches, ${r.submitsPerStep.toFixed(0)} submits, ${r.buffersCreatedPerStep.toFixed(1)} buffers created`,
        );
        if (!Number.isFinite(r.loss)) console.log('  WARNING: loss is not finite (GPU out of memory? see gpuErrors)');
      }
    }
  }
  if (a.what.includes('clocks')) {
    console.log('kernel time after an idle GPU vs behind other work:');
    const out: ClockResult[] = [];
    for (const mode of a.modes) {
      out.push(...(await benchClocks(mode, a)));
      report.clocks = out;
      saveReport(a, report);
    }
  }
  if (a.what.includes('memory')) {
    const out: unknown[] = [];
    console.log('GPU memory (tfjs pool bookkeeping, MiB):');
    for (const name of a.steps) {
      for (const mode of a.modes) {
        try {
          const m = await benchMemory(name, mode, a);
          out.push(m);
          const mib = (b: number): string => (b / 2 ** 20).toFixed(0).padStart(7);
          console.log(
            `  ${mode.padEnd(10)} ${name.padEnd(14)} batch ${m.batch}: pool ${mib(m.poolBytes)}, in use at once ${mib(m.peakLiveBytes)}, kept between steps ${mib(m.persistentBytes)}; read-back ${m.readBack}`,
          );
        } catch (e) {
          const msg = e instanceof Error ? e.message || String(e.stack) : String(e);
          console.log(`  ${mode.padEnd(10)} ${name.padEnd(14)} FAILED: ${msg}`);
          out.push({ name, mode, error: msg });
        }
        report.memory = out;
        saveReport(a, report);
      }
    }
  }
  if (a.what.includes('dispatches')) {
    const out: unknown[] = [];
    for (const name of a.steps) {
      for (const mode of a.modes) {
        const d = await dispatchBreakdown(name, mode, a);
        out.push(d);
        console.log(`dispatches ${mode} ${name}: ${d.total} per step`);
        for (const r of d.rows.slice(0, 25)) console.log(`  ${String(r.count).padStart(5)}  ${r.program}`);
      }
    }
    report.dispatches = out;
    saveReport(a, report);
  }
  if (a.what.includes('micro')) {
    report.micro = await benchMicro();
    saveReport(a, report);
  }
  if (a.what.includes('profile')) {
    for (const name of a.profile) {
      for (const mode of a.modes) {
        try {
          const p = await profileStep(name, mode, a);
          (report.profiles as unknown[]).push(p);
          saveReport(a, report);
          console.log(
            `profile ${mode} ${name}: ${p.kernels} kernels, GPU ${(p.gpuMsTotal as number).toFixed(1)} ms summed, profiled wall ${(p.profiledWallMs as number).toFixed(1)} ms`,
          );
          for (const r of (p.rows as ProfileRow[]).slice(0, 25)) {
            console.log(
              `  ${r.kernel.padEnd(24)} ${String(r.calls).padStart(5)} calls ${r.gpuMs.toFixed(2).padStart(9)} ms ${(100 * r.share).toFixed(1).padStart(5)} %  e.g. ${r.example.slice(0, 90)}`,
            );
          }
          console.log('  slowest single kernels:');
          for (const r of (p.top as Array<{ i: number; kernel: string; ms: number; shapes: string }>).slice(0, 15)) {
            console.log(
              `    #${String(r.i).padStart(5)} ${r.kernel.padEnd(22)} ${r.ms.toFixed(3).padStart(9)} ms  ${r.shapes.slice(0, 100)}`,
            );
          }
        } catch (e) {
          const msg = e instanceof Error ? e.message || String(e.stack) : String(e);
          console.log(`profile ${mode} ${name} FAILED: ${msg}`);
          (report.profiles as unknown[]).push({ name, mode, error: msg });
          saveReport(a, report);
        }
      }
    }
  }
  report.gpuErrors = errors.slice(0, 20);
  report.gpuErrorCount = errors.length;
  if (errors.length) console.log(`GPU errors: ${errors.length} (first: ${errors[0]})`);
  saveReport(a, report);
  unregisterWebgpuKernels();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});

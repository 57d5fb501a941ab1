/**
 * Measured choice of GEMM variant per convolution pass (what `torch.backends.cudnn.benchmark` does
 * for cuDNN): run a workload once (e.g. one training step) while recording every GEMM our conv
 * kernels issue, then time each candidate variant on each distinct GEMM, on inputs of the recorded
 * shapes filled with a constant (the time does not depend on the values), and keep the fastest for
 * the rest of the process (`setTunedGemm`; `runGemm` applies it unless `useTuned` is off).
 *
 * Why: which register block, thread layout and prefetch win depends on the shape (the H100 runs
 * put 128-wide tiles ahead for 32x32x64 forward and behind at 16x16x128) and on the card; a step
 * has ~40 distinct conv GEMMs (stride phases, 1x1 shortcuts, the stem) and one table by hand does
 * not fit them all. Every candidate computes the same values (each passes the same checks,
 * test/kernels-webgpu.test.ts), so tuning changes speed only.
 *
 * Timing: wall time of `iters` back-to-back runs after a warm-up run (which also compiles the
 * shader), waiting for the queue to drain before and after (`onSubmittedWorkDone`), so a
 * candidate is charged its GPU time and issue time alike.
 */
import * as tf from '@tensorflow/tfjs';
import { GEMM_DEFAULTS, GemmOptions, GemmSpec, clearGemmTuning, runGemm, setGemmRecorder, setTunedGemm } from './gemm';
import { conv2dForwardSpec, conv2dInputGradSpec } from './conv2d';
import { WebgpuBackendLike } from './program';
import { ConvPass, clearWinogradChoices, convPassKey, setConvRecorder, setWinogradChoice, winogradConv, winogradForward, winogradGemmSpec, winogradInputGrad } from './winograd';

/** Forgets every measured choice, GEMM variants and conv algorithms alike (back to the registered options). */
export function clearTuning(): void {
  clearGemmTuning();
  clearWinogradChoices();
}

/** A named candidate. */
export interface GemmCandidate { label: string; opts: Partial<GemmOptions> }

/** The variants tried by default: both layouts, 4x4 and 8x8 blocks, with and without prefetch. */
export const GEMM_CANDIDATES: readonly GemmCandidate[] = Object.freeze([
  { label: '4x4', opts: { tm: 4, tn: 4, layout: 'strided', prefetch: false } },
  { label: '8x8', opts: { tm: 8, tn: 8, layout: 'strided', prefetch: false } },
  { label: '4x4:blocked', opts: { tm: 4, tn: 4, layout: 'blocked', prefetch: false } },
  { label: '8x8:blocked', opts: { tm: 8, tn: 8, layout: 'blocked', prefetch: false } },
  { label: '4x4:blocked:prefetch', opts: { tm: 4, tn: 4, layout: 'blocked', prefetch: true } },
  { label: '8x8:blocked:prefetch', opts: { tm: 8, tn: 8, layout: 'blocked', prefetch: true } },
]);

export interface TuneOptions {
  candidates: readonly GemmCandidate[];
  /** Timed runs per candidate and GEMM (after one warm-up run). */
  iters: number;
  /** Options under the candidates (split-K targets etc.); `useTuned` is forced off while timing. */
  base: Partial<GemmOptions>;
  /**
   * Also choose, per 3x3 stride-1 conv pass the workload ran, between the direct GEMM and Winograd
   * (winograd.ts), each with its fastest candidate.
   */
  algorithms: boolean;
  /** Replaces the timing (tests): ms per run of `run`, given the candidate and GEMM. */
  time?: (run: () => void, c: GemmCandidate, spec: GemmSpec) => Promise<number>;
}

/** What the tuner measured for one GEMM. */
export interface TuneRow {
  key: string;
  M: number; N: number; K: number;
  /** ms per run, by candidate label (NaN where the candidate failed, e.g. a dispatch past the device's limits). */
  ms: Record<string, number>;
  chosen: string;
}

interface BackendInternals {
  device: { queue: { onSubmittedWorkDone(): Promise<void> } };
  commandEncoder: unknown;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** Submits what tfjs has recorded and waits until the GPU has finished all of it. */
export async function gpuFinish(): Promise<void> {
  const be = tf.backend() as unknown as BackendInternals;
  if (be.commandEncoder) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
  await be.device.queue.onSubmittedWorkDone();
}

async function wallTime(run: () => void, iters: number): Promise<number> {
  run();
  await gpuFinish();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) run();
  await gpuFinish();
  return (performance.now() - t0) / iters;
}

/**
 * Runs `workload` once, recording the GEMMs of our conv kernels; times every candidate on each
 * distinct one and keeps the fastest (`setTunedGemm`). Returns what was measured, one row per GEMM.
 * Needs the webgpu backend with our kernels registered.
 */
export async function tuneGemms(workload: () => void | Promise<void>, options: Partial<TuneOptions> = {}): Promise<TuneRow[]> {
  if (tf.getBackend() !== 'webgpu') throw new Error(`tuneGemms: the active backend is ${tf.getBackend()}, not webgpu`);
  const o: TuneOptions = { candidates: GEMM_CANDIDATES, iters: 10, base: {}, algorithms: true, ...options };
  if (o.candidates.length === 0) throw new Error('tuneGemms: no candidates');
  if (!Number.isInteger(o.iters) || o.iters < 1) throw new Error(`tuneGemms: iters must be a positive integer, got ${o.iters}`);
  const seen = new Map<string, { spec: GemmSpec; shapes: number[][]; outShape: number[] }>();
  setGemmRecorder((spec, inputs, outShape) => {
    if (!seen.has(spec.key)) seen.set(spec.key, { spec, shapes: inputs.map((t) => [...t.shape]), outShape: [...outShape] });
  });
  const passes = new Map<string, { pass: ConvPass; info: tf.backend_util.Conv2DInfo; shapes: number[][] }>();
  setConvRecorder((pass, info, inputs) => {
    const k = convPassKey(pass, info);
    if (!passes.has(k)) passes.set(k, { pass, info, shapes: inputs.map((t) => [...t.shape]) });
  });
  try {
    await workload();
  } finally {
    setGemmRecorder(undefined);
    setConvRecorder(undefined);
  }
  await gpuFinish();
  const backend = tf.backend() as unknown as WebgpuBackendLike;
  const rows: TuneRow[] = [];
  for (const { spec, shapes, outShape } of seen.values()) {
    // GEMM time does not depend on the values, and a GPU fill costs nothing on the CPU (random
    // inputs of a batch-512 step would take the JavaScript RNG seconds per GEMM).
    const inputs = shapes.map((s) => tf.fill(s, 0.01, 'float32'));
    const ms: Record<string, number> = {};
    try {
      for (const c of o.candidates) {
        const opts = { ...GEMM_DEFAULTS, ...o.base, ...c.opts, useTuned: false };
        const run = (): void => {
          const r = runGemm(backend, spec, inputs, outShape, opts);
          backend.disposeData(r.dataId);
        };
        try {
          ms[c.label] = o.time ? await o.time(run, c, spec) : await wallTime(run, o.iters);
        } catch {
          ms[c.label] = NaN; // e.g. a tile grid past the dispatch limit: not a choice
        }
      }
    } finally {
      tf.dispose(inputs);
    }
    const best = o.candidates.filter((c) => Number.isFinite(ms[c.label])).sort((a, b) => ms[a.label] - ms[b.label])[0];
    if (best) setTunedGemm(spec.key, best.opts);
    rows.push({ key: spec.key, M: spec.M, N: spec.N, K: spec.K, ms, chosen: best?.label ?? 'none (every candidate failed)' });
  }
  if (o.algorithms) for (const p of passes.values()) rows.push(await tuneAlgorithm(backend, p, o));
  return rows;
}

/**
 * Direct GEMM or Winograd for one conv pass: every candidate of each on inputs of the recorded
 * shapes; keeps the faster algorithm (`setWinogradChoice`) and, for each algorithm, its fastest
 * candidate (`setTunedGemm`).
 */
async function tuneAlgorithm(
  backend: WebgpuBackendLike, rec: { pass: ConvPass; info: tf.backend_util.Conv2DInfo; shapes: number[][] }, o: TuneOptions,
): Promise<TuneRow> {
  const { pass, info } = rec;
  const direct = pass === 'fwd' ? conv2dForwardSpec(info) : conv2dInputGradSpec(info);
  const outShape = pass === 'fwd' ? info.outShape : info.inShape;
  const problem = pass === 'fwd' ? winogradForward(info) : winogradInputGrad(info);
  const wino = winogradGemmSpec(problem);
  const inputs = rec.shapes.map((s) => tf.fill(s, 0.01, 'float32'));
  const ms: Record<string, number> = {};
  const best: Record<'direct' | 'winograd', { c: GemmCandidate; ms: number } | undefined> = { direct: undefined, winograd: undefined };
  try {
    for (const algo of ['direct', 'winograd'] as const) {
      for (const c of o.candidates) {
        const opts = { ...GEMM_DEFAULTS, ...o.base, ...c.opts, useTuned: false };
        const run = (): void => {
          const r = algo === 'direct' ? runGemm(backend, direct, inputs, outShape, opts) : winogradConv(backend, inputs[0], inputs[1], problem, opts);
          backend.disposeData(r.dataId);
        };
        const label = `${algo} ${c.label}`;
        try {
          ms[label] = o.time ? await o.time(run, c, algo === 'direct' ? direct : wino) : await wallTime(run, o.iters);
        } catch {
          ms[label] = NaN;
        }
        const b = best[algo];
        if (Number.isFinite(ms[label]) && (!b || ms[label] < b.ms)) best[algo] = { c, ms: ms[label] };
      }
    }
  } finally {
    tf.dispose(inputs);
  }
  if (best.direct) setTunedGemm(direct.key, best.direct.c.opts);
  if (best.winograd) setTunedGemm(wino.key, best.winograd.c.opts);
  const useWino = best.winograd !== undefined && (best.direct === undefined || best.winograd.ms < best.direct.ms);
  if (best.direct || best.winograd) setWinogradChoice(convPassKey(pass, info), useWino);
  const chosen = useWino ? `winograd ${best.winograd!.c.label}` : best.direct ? `direct ${best.direct.c.label}` : 'none (every candidate failed)';
  return { key: `conv ${convPassKey(pass, info)}`, M: direct.M, N: direct.N, K: direct.K, ms, chosen };
}

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
import { submitRecordedWork } from './pool';
import { WebgpuBackendLike } from './program';
import {
  ConvPass,
  clearWinogradChoices,
  convPassKey,
  setConvRecorder,
  setWinogradChoice,
  winogradConv,
  winogradForward,
  winogradGemmSpec,
  winogradInputGrad,
} from './winograd';

/** Forgets every measured choice, GEMM variants and conv algorithms alike (back to the registered options). */
export function clearTuning(): void {
  clearGemmTuning();
  clearWinogradChoices();
}

/** A named candidate. */
export interface GemmCandidate {
  label: string;
  opts: Partial<GemmOptions>;
}

/** The variants tried by default: both layouts, 4x4 and 8x8 blocks, with and without prefetch, scalar and vec4 loads. */
export const GEMM_CANDIDATES: readonly GemmCandidate[] = Object.freeze([
  { label: '4x4', opts: { tm: 4, tn: 4, layout: 'strided', prefetch: false, vec4: false } },
  { label: '8x8', opts: { tm: 8, tn: 8, layout: 'strided', prefetch: false, vec4: false } },
  { label: '4x4:blocked', opts: { tm: 4, tn: 4, layout: 'blocked', prefetch: false, vec4: false } },
  { label: '8x8:blocked', opts: { tm: 8, tn: 8, layout: 'blocked', prefetch: false, vec4: false } },
  { label: '4x4:blocked:prefetch', opts: { tm: 4, tn: 4, layout: 'blocked', prefetch: true, vec4: false } },
  { label: '8x8:blocked:prefetch', opts: { tm: 8, tn: 8, layout: 'blocked', prefetch: true, vec4: false } },
  { label: '4x4:vec4', opts: { tm: 4, tn: 4, layout: 'strided', prefetch: false, vec4: true } },
  { label: '4x4:blocked:vec4', opts: { tm: 4, tn: 4, layout: 'blocked', prefetch: false, vec4: true } },
  { label: '8x8:blocked:vec4', opts: { tm: 8, tn: 8, layout: 'blocked', prefetch: false, vec4: true } },
  { label: '8x8:blocked:prefetch:vec4', opts: { tm: 8, tn: 8, layout: 'blocked', prefetch: true, vec4: true } },
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
  /** Called with each row as soon as it is measured (a benchmark cut off by its time limit keeps those). */
  onRow?: (row: TuneRow) => void;
}

/** What the tuner measured for one GEMM. */
export interface TuneRow {
  key: string;
  M: number;
  N: number;
  K: number;
  /** ms per run, by candidate label (NaN where the candidate failed, e.g. a dispatch past the device's limits). */
  ms: Record<string, number>;
  chosen: string;
}

/** Submits what tfjs has recorded and waits until the GPU has finished all of it. */
export async function gpuFinish(): Promise<void> {
  submitRecordedWork();
  await (
    tf.backend() as unknown as { device: { queue: { onSubmittedWorkDone(): Promise<void> } } }
  ).device.queue.onSubmittedWorkDone();
}

const NONE = 'none (every candidate failed)';

/**
 * Inputs of the recorded shapes. GEMM time does not depend on the values, and a GPU fill costs
 * nothing on the CPU (random inputs of a batch-512 step would take the JavaScript RNG seconds per GEMM).
 */
function filled(shapes: number[][]): tf.Tensor[] {
  return shapes.map((s) => tf.fill(s, 0.01, 'float32'));
}

/**
 * Times `run` (which returns its output, freed here) with every candidate's options; ms by
 * `prefix + label`, NaN where the candidate failed (e.g. a tile grid past the dispatch limit: not a
 * choice), and the fastest.
 */
async function timeCandidates(
  backend: WebgpuBackendLike,
  o: TuneOptions,
  spec: GemmSpec,
  prefix: string,
  run: (opts: GemmOptions) => tf.TensorInfo,
): Promise<{ ms: Record<string, number>; best?: { c: GemmCandidate; ms: number } }> {
  const ms: Record<string, number> = {};
  let best: { c: GemmCandidate; ms: number } | undefined;
  for (const c of o.candidates) {
    const opts: GemmOptions = { ...GEMM_DEFAULTS, ...o.base, ...c.opts, useTuned: false };
    const once = (): void => void backend.disposeData(run(opts).dataId);
    const label = prefix + c.label;
    try {
      ms[label] = o.time ? await o.time(once, c, spec) : await wallTime(once, o.iters);
    } catch {
      ms[label] = NaN;
    }
    if (Number.isFinite(ms[label]) && (!best || ms[label] < best.ms)) best = { c, ms: ms[label] };
  }
  return { ms, best };
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
export async function tuneGemms(
  workload: () => void | Promise<void>,
  options: Partial<TuneOptions> = {},
): Promise<TuneRow[]> {
  if (tf.getBackend() !== 'webgpu') throw new Error(`tuneGemms: the active backend is ${tf.getBackend()}, not webgpu`);
  const o: TuneOptions = { candidates: GEMM_CANDIDATES, iters: 10, base: {}, algorithms: true, ...options };
  if (o.candidates.length === 0) throw new Error('tuneGemms: no candidates');
  if (!Number.isInteger(o.iters) || o.iters < 1)
    throw new Error(`tuneGemms: iters must be a positive integer, got ${o.iters}`);
  const seen = new Map<string, { spec: GemmSpec; shapes: number[][]; outShape: number[] }>();
  setGemmRecorder((spec, inputs, outShape) => {
    if (!seen.has(spec.key))
      seen.set(spec.key, { spec, shapes: inputs.map((t) => [...t.shape]), outShape: [...outShape] });
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
  const add = (r: TuneRow): void => {
    rows.push(r);
    o.onRow?.(r);
  };
  for (const { spec, shapes, outShape } of seen.values()) {
    const inputs = filled(shapes);
    try {
      const { ms, best } = await timeCandidates(backend, o, spec, '', (opts) =>
        runGemm(backend, spec, inputs, outShape, opts),
      );
      if (best) setTunedGemm(spec.key, best.c.opts);
      add({ key: spec.key, M: spec.M, N: spec.N, K: spec.K, ms, chosen: best?.c.label ?? NONE });
    } finally {
      tf.dispose(inputs);
    }
  }
  if (o.algorithms) for (const p of passes.values()) add(await tuneAlgorithm(backend, p, o));
  return rows;
}

/**
 * Direct GEMM or Winograd for one conv pass: every candidate of each on inputs of the recorded
 * shapes; keeps the faster algorithm (`setWinogradChoice`) and, for each algorithm, its fastest
 * candidate (`setTunedGemm`).
 */
async function tuneAlgorithm(
  backend: WebgpuBackendLike,
  rec: { pass: ConvPass; info: tf.backend_util.Conv2DInfo; shapes: number[][] },
  o: TuneOptions,
): Promise<TuneRow> {
  const { pass, info } = rec;
  const direct = pass === 'fwd' ? conv2dForwardSpec(info) : conv2dInputGradSpec(info);
  const outShape = pass === 'fwd' ? info.outShape : info.inShape;
  const problem = pass === 'fwd' ? winogradForward(info) : winogradInputGrad(info);
  const wino = winogradGemmSpec(problem);
  const inputs = filled(rec.shapes);
  try {
    const d = await timeCandidates(backend, o, direct, 'direct ', (opts) =>
      runGemm(backend, direct, inputs, outShape, opts),
    );
    const w = await timeCandidates(backend, o, wino, 'winograd ', (opts) =>
      winogradConv(backend, inputs[0], inputs[1], problem, opts),
    );
    if (d.best) setTunedGemm(direct.key, d.best.c.opts);
    if (w.best) setTunedGemm(wino.key, w.best.c.opts);
    const useWino = w.best !== undefined && (d.best === undefined || w.best.ms < d.best.ms);
    if (d.best || w.best) setWinogradChoice(convPassKey(pass, info), useWino);
    const chosen = useWino ? `winograd ${w.best!.c.label}` : d.best ? `direct ${d.best.c.label}` : NONE;
    return {
      key: `conv ${convPassKey(pass, info)}`,
      M: direct.M,
      N: direct.N,
      K: direct.K,
      ms: { ...d.ms, ...w.ms },
      chosen,
    };
  } finally {
    tf.dispose(inputs);
  }
}

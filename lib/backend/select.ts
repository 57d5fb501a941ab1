/**
 * Picks the fastest TensorFlow.js backend that loads *and can train* on this machine.
 *
 * Order: tensorflow-gpu (tfjs-node-gpu, CUDA) -> webgpu (Dawn, only with an adapter)
 *        -> tensorflow-cpu (tfjs-node) -> wasm (only if it has every training kernel) -> cpu.
 * `DINOTWINS_BACKEND=<id>` forces one candidate; a bad value is an error listing the valid ones.
 * The returned report (and its one-line form) goes into every run record.
 */
import * as tf from '@tensorflow/tfjs';
import { ensureWebgpu } from '../kernels/webgpu/setup';
import { watchDeviceErrors } from './deviceErrors';
import { registerKernelsFor } from '../kernels/index';
import { useWasmThreads, wasmThreadsCount } from '../kernels/wasm/threads';
import { nativeLine, nativeStatus } from '../kernels/native/index';
import { NativeError } from '../kernels/native/addon';
// Our kernels add their registrars on import; they register only when their backend is activated.
import '../kernels/wasm/index';
import '../kernels/webgpu/index';

export const BACKEND_IDS = ['tensorflow-gpu', 'webgpu', 'tensorflow-cpu', 'wasm', 'cpu'] as const;
export type BackendId = (typeof BACKEND_IDS)[number];

export const BACKEND_ENV = 'DINOTWINS_BACKEND';

export interface SkippedBackend {
  id: BackendId;
  reason: string;
}

export interface BackendReport {
  /** Candidate that was chosen. */
  chosen: BackendId;
  /** Name tfjs knows it by (`tensorflow`, `webgpu`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Why it was forced, if it was. */
  forcedBy?: string;
  /** Each earlier candidate and why it was not used. */
  skipped: SkippedBackend[];
  /** Free-form facts about the chosen backend (adapter, threads, our kernels). */
  details: Record<string, string | number | boolean | string[]>;
  /** The one-line summary that `selectBackend` prints. */
  line: string;
}

/** Error for an unknown `DINOTWINS_BACKEND` value or a forced backend that fails to load. */
export class BackendError extends Error {
  override name = 'BackendError';
}

/** Shortens an underlying error to one line for the report. */
export function shortError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const first = msg.split('\n').find((l) => l.trim().length > 0) ?? msg;
  return first.length > 160 ? `${first.slice(0, 157)}...` : first;
}

/** Parses a backend id from the environment (or any string); throws listing the valid ids. */
export function parseBackendId(value: string, source = BACKEND_ENV): BackendId {
  const v = value.trim().toLowerCase();
  if ((BACKEND_IDS as readonly string[]).includes(v)) return v as BackendId;
  throw new BackendError(`${source}="${value}" is not a backend; valid values: ${BACKEND_IDS.join(', ')}`);
}

/** Outcome of trying one backend (a plain interface: tslab compiles without strictNullChecks, so no union narrowing). */
interface Attempt {
  ok: boolean;
  /** Said after the id in the report line (e.g. the native kernels wasm runs). */
  label?: string;
  details?: BackendReport['details'];
  reason?: string;
}

async function tryTfjsNode(
  pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node',
  wantGpu: boolean,
): Promise<Attempt> {
  try {
    require(pkg);
  } catch (e) {
    const code = (e as { code?: string }).code;
    return {
      ok: false,
      reason: code === 'MODULE_NOT_FOUND' ? `${pkg} is not installed (${shortError(e)})` : shortError(e),
    };
  }
  if (!(await tf.setBackend('tensorflow')))
    return { ok: false, reason: `${pkg} loaded but tf.setBackend('tensorflow') failed` };
  const usingGpu = Boolean((tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice);
  if (wantGpu && !usingGpu)
    return { ok: false, reason: `${pkg} loaded but TensorFlow found no CUDA device (needs CUDA 11.2 + cuDNN 8.1)` };
  return { ok: true, details: { package: pkg, gpu: usingGpu } };
}

/** Adapters that are CPU emulations of a GPU: far slower than wasm for training (lavapipe: ~3 vs ~35 img/s). */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software/i;

async function tryWebgpu(forced: boolean): Promise<Attempt> {
  // Dawn's navigator.gpu must exist before tfjs-backend-webgpu is required: ensureWebgpu does both.
  const avail = (await ensureWebgpu()) as { ok: boolean; adapter?: string; reason?: string };
  if (!avail.ok) return { ok: false, reason: avail.reason };
  if (!forced && SOFTWARE_ADAPTER.test(avail.adapter ?? '')) {
    return {
      ok: false,
      reason: `only a software adapter (${(avail.adapter ?? '').split('|').pop()?.trim()}), slower than wasm; force it with ${BACKEND_ENV}=webgpu`,
    };
  }
  try {
    registerKernelsFor('webgpu');
    if (!(await tf.setBackend('webgpu'))) return { ok: false, reason: "tf.setBackend('webgpu') failed" };
    watchDeviceErrors();
    return { ok: true, details: { adapter: avail.adapter ?? 'unknown' } };
  } catch (e) {
    return { ok: false, reason: shortError(e) };
  }
}

/**
 * Training kernels stock tfjs-backend-wasm 4.22 lacks or gets wrong (MaxPoolGrad gives wrong values):
 * wasm counts as "can train" only when our module registered all of them (lib/kernels/wasm).
 */
export const WASM_TRAINING_KERNELS = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'UnsortedSegmentSum',
  'MaxPoolGrad',
  'BatchMatMul',
];

/** DINOTWINS_WASM_THREADS=N loads the threaded wasm build with N threads (default: the single-thread build, faster on a busy machine). */
export const WASM_THREADS_ENV = 'DINOTWINS_WASM_THREADS';

async function tryWasm(): Promise<Attempt> {
  try {
    const ours = registerKernelsFor('wasm');
    const missing = WASM_TRAINING_KERNELS.filter((k) => !ours.includes(k) || tf.getKernel(k, 'wasm') === undefined);
    if (missing.length > 0)
      return { ok: false, reason: `cannot train: our kernels ${missing.join(', ')} are not registered for wasm` };
    const threadsEnv = process.env[WASM_THREADS_ENV];
    if (threadsEnv !== undefined && threadsEnv.trim() !== '') {
      const n = Number(threadsEnv);
      if (!Number.isInteger(n) || n < 1 || n > 8)
        throw new BackendError(`${WASM_THREADS_ENV}="${threadsEnv}" must be an integer from 1 to 8`);
      if (n > 1) useWasmThreads({ threads: n });
    }
    if (!(await tf.setBackend('wasm'))) return { ok: false, reason: "tf.setBackend('wasm') failed" };
    await tf.ready();
    const nat = nativeStatus();
    const native = nat.ok && nat.kernels.length > 0;
    return {
      ok: true,
      label: native ? `+ ${nativeLine()}` : `(${nativeLine()})`,
      details: {
        simd: true,
        threads: wasmThreadsCount(),
        ourKernels: ours,
        native,
        nativeLine: nativeLine(),
        ...(native ? { nativeThreads: nat.threads ?? 1, onednn: nat.onednn ?? 'unknown' } : {}),
      },
    };
  } catch (e) {
    if (e instanceof BackendError || e instanceof NativeError) throw e;
    return { ok: false, reason: shortError(e) };
  }
}

async function tryCpu(): Promise<Attempt> {
  if (!(await tf.setBackend('cpu'))) return { ok: false, reason: "tf.setBackend('cpu') failed" };
  return { ok: true, details: {} };
}

const ATTEMPTS: Record<BackendId, (forced: boolean) => Promise<Attempt>> = {
  'tensorflow-gpu': () => tryTfjsNode('@tensorflow/tfjs-node-gpu', true),
  webgpu: (forced) => tryWebgpu(forced),
  'tensorflow-cpu': () => tryTfjsNode('@tensorflow/tfjs-node', false),
  wasm: tryWasm,
  cpu: tryCpu,
};

let current: BackendReport | undefined;

export interface SelectBackendOptions {
  /** Force one backend (overrides the environment variable). */
  force?: BackendId | string;
  /** Print the one-line report (default true). */
  print?: boolean;
  /** Re-run the selection even if one was already made in this process. */
  reselect?: boolean;
}

/**
 * Chooses and activates a backend, returning the report. Idempotent per process
 * (re-running a notebook cell returns the same report) unless `reselect` is set.
 */
export async function selectBackend(opts: SelectBackendOptions = {}): Promise<BackendReport> {
  const envValue = process.env[BACKEND_ENV];
  const forcedRaw = opts.force ?? (envValue && envValue.trim() !== '' ? envValue : undefined);
  const forced =
    forcedRaw === undefined ? undefined : parseBackendId(forcedRaw, opts.force !== undefined ? 'force' : BACKEND_ENV);
  if (current && !opts.reselect && (forced === undefined || forced === current.chosen)) {
    if (opts.print !== false) console.log(current.line);
    return current;
  }
  const skipped: SkippedBackend[] = [];
  const order: readonly BackendId[] = forced ? [forced] : BACKEND_IDS;
  for (const id of order) {
    const r = await ATTEMPTS[id](forced !== undefined);
    if (r.ok) {
      const why = skipped.map((s) => `${s.id}: ${s.reason}`).join('; ');
      const forcedBy = forced ? (opts.force !== undefined ? 'option force' : `${BACKEND_ENV}=${forced}`) : undefined;
      const line =
        `backend: ${id}${r.label ? ` ${r.label}` : ''} (tfjs '${tf.getBackend()}')` +
        (forcedBy ? `, forced by ${forcedBy}` : '') +
        (why ? `; skipped ${why}` : '');
      current = { chosen: id, tfBackend: tf.getBackend(), forcedBy, skipped, details: r.details ?? {}, line };
      if (opts.print !== false) console.log(line);
      return current;
    }
    if (forced) throw new BackendError(`${BACKEND_ENV}=${forced}, but ${forced} cannot be used: ${r.reason}`);
    skipped.push({ id, reason: r.reason ?? 'unknown' });
  }
  throw new BackendError(`no backend could be used: ${skipped.map((s) => `${s.id}: ${s.reason}`).join('; ')}`);
}

/** The report of the last selection, if any. */
export function currentBackend(): BackendReport | undefined {
  return current;
}

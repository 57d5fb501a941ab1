/**
 * Loads the optional native addon (native/: oneDNN kernels over the wasm heap, built by
 * scripts/setup-native.sh) and says in one line why it is not used when it is not. Nothing here
 * is required: without the addon the wasm backend runs its own kernels.
 *
 *   DINOTWINS_NATIVE          unset or 'auto': use the addon when it loads; '0'/'off': never (the
 *                             forced fallback); '1'/'on': required (an error names why it cannot load)
 *   DINOTWINS_NATIVE_THREADS  parts per kernel call = threads of the addon's pool (1-64); default
 *                             NATIVE_DEFAULTS.threads(). Results depend on it (how sums are split),
 *                             never on load: the same value gives the same bits.
 *   DINOTWINS_NATIVE_ADAPTIVE '0': the pool runs the parts even beside busy processes (for measuring
 *                             that; default: they run on the calling thread alone then, loadMonitor.ts)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The addon's functions (native/src/addon.cc documents each argument list). */
export interface NativeAddon {
  init(threads: number): void;
  info(): { onednn: string; threads: number; partsOnWorkers: number; lastImpl: string };
  /** Runs every part of every call on the calling thread (tests: the bits must not change). */
  setSerial(serial: boolean): void;
  conv2dForward(
    dims: Int32Array,
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    relu: boolean,
  ): boolean;
  conv2dBackwardData(dims: Int32Array, dy: Float32Array, w: Float32Array, dx: Float32Array): boolean;
  conv2dBackwardWeights(dims: Int32Array, x: Float32Array, dy: Float32Array, dw: Float32Array): boolean;
  matmul(
    batchA: number,
    batchB: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
    a: Float32Array,
    b: Float32Array,
    bias: Float32Array | null,
    c: Float32Array,
    relu: boolean,
  ): boolean;
  bnForward(
    r: number,
    c: number,
    groups: number,
    eps: number,
    relu: boolean,
    x: Float32Array,
    gamma: Float32Array | null,
    beta: Float32Array | null,
    residual: Float32Array | null,
    y: Float32Array,
    stats: Float32Array,
  ): void;
  bnBackward(
    r: number,
    c: number,
    groups: number,
    eps: number,
    relu: boolean,
    dy: Float32Array,
    x: Float32Array,
    stats: Float32Array,
    gamma: Float32Array | null,
    beta: Float32Array | null,
    residual: Float32Array | null,
    dx: Float32Array,
    dgamma: Float32Array | null,
    dbeta: Float32Array | null,
    dresidual: Float32Array | null,
  ): void;
  lnForward(
    r: number,
    c: number,
    eps: number,
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
  ): void;
  lnBackward(
    r: number,
    c: number,
    eps: number,
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
  ): void;
  geluForward(n: number, x: Float32Array, y: Float32Array): void;
  geluBackward(n: number, dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  axpby(n: number, a: number, b: number, x: Float32Array, y: Float32Array, out: Float32Array): void;
  adamFlat(
    n: number,
    hyper: Float64Array,
    decoupled: boolean,
    g: Float32Array,
    scale: Float32Array,
    p: Float32Array,
    m: Float32Array,
    v: Float32Array,
    decay: Uint8Array,
    active: Uint8Array | null,
    pOut: Float32Array | null,
    mOut: Float32Array | null,
    vOut: Float32Array | null,
  ): void;
  /**
   * out = a op b over an output seen as [rows, cols]; each operand's mode (0 full, 1 one value per row,
   * 2 one per column, 3 one value). Ops (native/src/ops.h): 0-5 add sub mul div max min (float32 out),
   * 6-11 eq ne gt ge lt le (bool out), 12-13 and or (bool operands).
   */
  binaryBcast(
    op: number,
    a: Float32Array | Uint8Array,
    aMode: number,
    b: Float32Array | Uint8Array,
    bMode: number,
    rows: number,
    cols: number,
    out: Float32Array | Uint8Array,
  ): void;
  /** Ops: 0 abs, 1 floor, 2 ceil, 3 neg, 4 sqrt, 5 clip to [p0, p1] (float32); 6 logical not (bool). */
  unary(op: number, x: Float32Array | Uint8Array, out: Float32Array | Uint8Array, p0: number, p1: number): void;
  /** out = cond ? a : b; a and b full (mode 0) or one value (mode 3). */
  select(cond: Uint8Array, a: Float32Array, aMode: number, b: Float32Array, bMode: number, out: Float32Array): void;
  square(x: Float32Array, out: Float32Array): void;
  /** The sum of every element (accumulated in double). */
  sumAll(x: Float32Array): number;
  /** out = x transposed, 4-byte elements; shape and perm reduced (lib/kernels/wasm/heap.ts reducePermutation). */
  transpose(x: Float32Array | Int32Array, out: Float32Array | Int32Array, shape: Float64Array, perm: Int32Array): void;
  /** out[j] = sum over i of x[i, j] for x [r, c] (accumulated in double). */
  sumRows(x: Float32Array, r: number, c: number, out: Float32Array): void;
}

export const NATIVE_ENV = 'DINOTWINS_NATIVE';
export const NATIVE_THREADS_ENV = 'DINOTWINS_NATIVE_THREADS';
export const NATIVE_ADAPTIVE_ENV = 'DINOTWINS_NATIVE_ADAPTIVE';

/** Whether the parts go serial beside busy processes (DINOTWINS_NATIVE_ADAPTIVE, default on); a bad value is an error. */
export function nativeAdaptive(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env[NATIVE_ADAPTIVE_ENV] ?? '').trim().toLowerCase();
  if (v === '' || v === '1' || v === 'on') return true;
  if (v === '0' || v === 'off') return false;
  throw new NativeError(`${NATIVE_ADAPTIVE_ENV}="${env[NATIVE_ADAPTIVE_ENV]}" is not valid; use 1 (default) or 0`);
}

export const NATIVE_DEFAULTS = Object.freeze({
  /**
   * Default threads (= parts per call): every core, at most 8. Measured on a 2-core machine
   * (bench/RESULTS.md, "Native threads"): 2 threads are 1.5x faster than 1 on an idle machine;
   * beside busy processes the parts run on the calling thread alone (loadMonitor.ts), where a
   * second thread would lose to one.
   */
  threads: (): number => Math.max(1, Math.min(8, os.cpus().length)),
  /** Where the addon is built (from the repository root). */
  file: path.join('native', 'build', 'Release', 'dinotwins_native.node'),
  /** One line the build script writes when it could not build the addon (from the repository root). */
  whyNotFile: path.join('native', 'build', 'why-not.txt'),
});

/** What loading the addon gave. */
export interface NativeStatus {
  /** The addon is loaded and initialised. */
  ok: boolean;
  addon?: NativeAddon;
  /** Why it is not used (one line), when it is not. */
  reason?: string;
  /** Threads (= parts per kernel call) of the pool. */
  threads?: number;
  /** oneDNN's version, e.g. '2.6.3'. */
  onednn?: string;
  /** The environment asked for it: loading failures are then errors. */
  required: boolean;
}

export class NativeError extends Error {
  override name = 'NativeError';
}

function repoRoot(): string {
  // lib/kernels/native -> the repository root. tslab loads lib/ through the notebooks/lib symlink
  // without resolving it, so resolve it here.
  return path.resolve(fs.realpathSync(__dirname), '..', '..', '..');
}

/** The DINOTWINS_NATIVE mode; a bad value is an error naming the valid ones. */
export function nativeMode(env: NodeJS.ProcessEnv = process.env): 'auto' | 'off' | 'on' {
  const v = (env[NATIVE_ENV] ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === '0' || v === 'off' || v === 'false') return 'off';
  if (v === '1' || v === 'on' || v === 'true') return 'on';
  throw new NativeError(`${NATIVE_ENV}="${env[NATIVE_ENV]}" is not valid; use auto (default), 0/off or 1/on`);
}

/** Threads from DINOTWINS_NATIVE_THREADS, else the default; a bad value is an error. */
export function nativeThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[NATIVE_THREADS_ENV];
  if (raw === undefined || raw.trim() === '') return NATIVE_DEFAULTS.threads();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new NativeError(`${NATIVE_THREADS_ENV}="${raw}" must be an integer from 1 to 64`);
  return n;
}

let status: NativeStatus | undefined;

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = msg.split('\n').find((l) => l.trim() !== '') ?? msg;
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/**
 * Loads and initialises the addon once per process (the thread count is fixed from then on).
 * Throws only when DINOTWINS_NATIVE=1 asks for it and it cannot be used, or on a bad variable.
 */
export function loadNative(): NativeStatus {
  if (status) return status;
  const mode = nativeMode();
  const required = mode === 'on';
  const fail = (reason: string): NativeStatus => {
    if (required) throw new NativeError(`${NATIVE_ENV}=1, but the native kernels cannot be used: ${reason}`);
    return (status = { ok: false, reason, required });
  };
  if (mode === 'off')
    return (status = { ok: false, reason: `off (${NATIVE_ENV}=${process.env[NATIVE_ENV]})`, required });
  const threads = nativeThreads();
  const file = path.join(repoRoot(), NATIVE_DEFAULTS.file);
  if (!fs.existsSync(file)) {
    const whyFile = path.join(repoRoot(), NATIVE_DEFAULTS.whyNotFile);
    const why = fs.existsSync(whyFile) ? fs.readFileSync(whyFile, 'utf8').trim().split('\n')[0] : 'not built';
    return fail(`${why} (${NATIVE_DEFAULTS.file} is missing; bash scripts/setup-native.sh builds it)`);
  }
  let addon: NativeAddon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    addon = require(file) as NativeAddon;
    addon.init(threads);
  } catch (e) {
    return fail(`${NATIVE_DEFAULTS.file} does not load: ${firstLine(e)}`);
  }
  const info = addon.info();
  return (status = { ok: true, addon, threads: info.threads, onednn: info.onednn, required });
}

/** The loaded addon, or undefined (never throws). */
export function nativeAddon(): NativeAddon | undefined {
  return status?.ok ? status.addon : undefined;
}

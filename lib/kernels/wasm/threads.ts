/**
 * Multi-threaded wasm in Node. tfjs-backend-wasm 4.22 never uses threads in Node: its
 * WASM_HAS_MULTITHREAD_SUPPORT flag returns false there (tfjs issue #3830) and its loader hands
 * the pthread workers Blob URLs, which Node's worker_threads cannot load. The threaded-SIMD
 * binary it ships does support Node (Emscripten pthreads over worker_threads), so this module
 * re-registers the 'wasm' backend with a factory that loads that binary with file paths:
 * the worker script is written to a temporary file, the main script is the shipped one.
 * A second quirk: the backend caps its thread pool at (logical cores / 2), i.e. 1 on a 2-core
 * machine, so the core count Emscripten reads (`os.cpus()`) is doubled while it initialises.
 * Call `useWasmThreads` before the wasm backend is first activated.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Options of `useWasmThreads`. */
export interface WasmThreadsOptions {
  /** Threads of XNNPACK's pool, the calling thread included (1-8). Default: os.cpus().length. */
  threads?: number;
  /** Backend priority passed to tf.registerBackend. Default 2 (the stock wasm priority). */
  priority?: number;
}

export const WASM_THREADS_DEFAULTS: Readonly<Required<Omit<WasmThreadsOptions, 'threads'>>> = Object.freeze({
  priority: 2,
});

interface WasmPackage {
  BackendWasm: new (module: unknown) => tf.KernelBackend;
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  tfjs?: Record<string, unknown>;
  PThread?: { terminateAllThreads?: () => void };
}

let workerFile: string | undefined;
let loadedModule: EmscriptenModule | undefined;

function wasmOutDir(): string {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
}

/** Writes the pthread worker script (shipped as a JS string) to a temporary file once. */
function workerScript(dir: string): string {
  if (workerFile && fs.existsSync(workerFile)) return workerFile;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { wasmWorkerContents } = require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  const file = path.join(os.tmpdir(), `dinotwins-tfjs-wasm-worker-${process.pid}.js`);
  // The string came from a template literal that turned "\n" escapes into newlines; undo that
  // (as tfjs does before making its Blob).
  fs.writeFileSync(file, wasmWorkerContents.replace(/\n/g, '\\n'));
  process.once('exit', () => fs.rmSync(file, { force: true }));
  workerFile = file;
  return file;
}

/**
 * Replaces the registered 'wasm' backend factory with one that loads the threaded-SIMD binary
 * with `threads` threads. Returns the thread count requested. Throws if wasm is already active
 * (re-registering would drop its tensors).
 */
export function useWasmThreads(opts: WasmThreadsOptions = {}): number {
  const threads = opts.threads ?? os.cpus().length;
  if (!Number.isInteger(threads) || threads < 1 || threads > 8)
    throw new Error(`useWasmThreads: threads must be an integer in 1..8, got ${threads}`);
  if (tf.findBackend('wasm') && tf.getBackend() === 'wasm')
    throw new Error('useWasmThreads: call it before the wasm backend is activated');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const pkg = require('@tensorflow/tfjs-backend-wasm') as WasmPackage;
  const dir = wasmOutDir();
  const mainScript = path.join(dir, 'tfjs-backend-wasm-threaded-simd.js');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const factory = require(mainScript) as (cfg: Record<string, unknown>) => Promise<EmscriptenModule>;
  const worker = workerScript(dir);
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const osm = require('os') as { cpus: typeof os.cpus };
      const realCpus = osm.cpus;
      // The backend sizes its pool as min(threads, logical cores / 2): report twice the cores.
      osm.cpus = () => {
        const c = realCpus();
        return [...c, ...c];
      };
      try {
        const module = await factory({
          locateFile: (p: string, prefix: string) =>
            p.endsWith('.worker.js')
              ? worker
              : p.endsWith('.wasm')
                ? path.join(dir, 'tfjs-backend-wasm-threaded-simd.wasm')
                : prefix + p,
          mainScriptUrlOrBlob: mainScript,
        });
        module.tfjs = {
          init: module.cwrap('init', null, []),
          initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
          getThreadsCount: module.cwrap('get_threads_count', 'number', []),
          registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
          disposeData: module.cwrap('dispose_data', null, ['number']),
          dispose: module.cwrap('dispose', null, []),
        };
        pkg.setThreadsCount(threads);
        loadedModule = module;
        return new pkg.BackendWasm(module);
      } finally {
        osm.cpus = realCpus;
      }
    },
    opts.priority ?? WASM_THREADS_DEFAULTS.priority,
  );
  return threads;
}

/** Threads the active wasm backend's pool really has (1 for the stock single-thread build). */
export function wasmThreadsCount(): number {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('@tensorflow/tfjs-backend-wasm') as WasmPackage).getThreadsCount();
}

/** Stops the pthread workers of the threaded build (they would keep Node from exiting). */
export function stopWasmThreads(): void {
  loadedModule?.PThread?.terminateAllThreads?.();
}

/**
 * CPU seconds per OS thread of this process (Linux /proc), busiest first: the evidence that a
 * second thread really computes (wall time alone can hide it on a busy machine).
 */
export function threadCpuSeconds(): Array<{ tid: number; name: string; seconds: number }> {
  const dir = '/proc/self/task';
  if (!fs.existsSync(dir)) return [];
  const hz = 100;
  const out: Array<{ tid: number; name: string; seconds: number }> = [];
  for (const t of fs.readdirSync(dir)) {
    try {
      const st = fs.readFileSync(`${dir}/${t}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const name = fs.readFileSync(`${dir}/${t}/comm`, 'utf8').trim();
      out.push({ tid: Number(t), name, seconds: (Number(f[11]) + Number(f[12])) / hz });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out.sort((a, b) => b.seconds - a.seconds);
}

/**
 * CPU training-step benchmark: tfjs `wasm` (with our kernels) and `cpu` against PyTorch on the
 * same machine. Each (backend, model, batch) runs in its own child process (clean peak memory);
 * bench/torch_cpu.py runs the same steps in PyTorch; a table with ratios is printed at the end.
 *
 *   npx tsx bench/cpu.ts [--models r18w16,r18w32,r18w64,vitt4] [--batches 32,128]
 *                        [--backends native-t1,native-t2,wasm,wasm-t2,cpu] [--steps 5] [--warmup 2] [--max-seconds 60]
 *                        [--torch-threads 1,2] [--batch32-only r18w64,vitt4] [--child-timeout 600]
 *                        [--no-torch] [--json out.json]
 *   npx tsx bench/cpu.ts --flat 1000 [--models r18w16p512] [--batches 8]   (memory-flatness run)
 *
 * The pure-JS `cpu` backend is about 100x slower: it only runs ResNet-18 width 16 at batch 32
 * (other combos are skipped unless --cpu-all), with --cpu-warmup 1 --cpu-steps 2 by default. `wasm-t2` is wasm's threaded build with 2 threads
 * (lib/kernels/wasm/threads.ts); `native-tN` is wasm with the native oneDNN kernels (lib/kernels/native)
 * on N threads, and `wasm`/`wasm-tN` then mean wasm's own kernels (DINOTWINS_NATIVE=0). Throughput counts views per second (2 views per
 * image pair); "ms/step" is the median wall time of the timed steps, "cpu ms" the median process
 * CPU time (wasm uses one thread, so on a busy machine cpu ms is the better speed measure).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BENCH_MODELS, barlowBench, benchModel, timeSteps } from './common';

interface Row {
  impl: string;
  model: string;
  batch: number;
  threads?: number;
  params?: number;
  wallMs: number;
  cpuMs: number;
  steps: number;
  viewsPerSec: number;
  peakTensorMiB?: number;
  wasmHeapMiB?: number;
  rssMaxMiB?: number;
  /** 1-minute load average when the combination started and ended. */
  load?: [number, number];
  error?: string;
}

function arg(name: string, def?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}
const has = (name: string): boolean => process.argv.includes(`--${name}`);

/**
 * Environment of a backend id: 'wasm' and 'wasm-tN' run wasm's own kernels (native off),
 * 'native-tN' the native oneDNN kernels with N threads (required: a build problem is an error).
 */
function backendEnv(id: string): Record<string, string> {
  const n = /^native-t(\d+)$/.exec(id);
  if (n) return { DINOTWINS_NATIVE: '1', DINOTWINS_NATIVE_THREADS: n[1] };
  return id.startsWith('wasm') ? { DINOTWINS_NATIVE: '0' } : {};
}

/**
 * 'wasm' (1 thread), 'wasm-t2' (threaded build, 2 threads), 'native-tN' (wasm + native kernels, N
 * threads) or 'cpu'. Returns the threads the step computes on (1 for cpu).
 */
async function useBackend(id: string): Promise<number> {
  Object.assign(process.env, backendEnv(id));
  const m = /^wasm-t(\d)$/.exec(id);
  const name = m || id.startsWith('native-') ? 'wasm' : id;
  if (m) {
    const { useWasmThreads } = await import('../lib/kernels/wasm/threads');
    useWasmThreads({ threads: Number(m[1]) });
  }
  if (name === 'wasm') {
    const { registerKernelsFor } = await import('../lib/kernels');
    await import('../lib/kernels/wasm');
    registerKernelsFor('wasm');
  }
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
  if (name !== 'wasm') return 1;
  if (id.startsWith('native-')) {
    const { nativeStatus } = await import('../lib/kernels/native/index');
    const st = nativeStatus();
    if (!st.ok || st.kernels.length === 0) throw new Error(`native kernels not in use: ${st.reason}`);
    return st.threads ?? 1;
  }
  const { wasmThreadsCount } = await import('../lib/kernels/wasm/threads');
  return wasmThreadsCount();
}

function wasmHeapMiB(): number | undefined {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  return b.wasm ? b.wasm.HEAPU8.buffer.byteLength / 2 ** 20 : undefined;
}

/** Child process: one (backend, model, batch) combo, prints one JSON row. */
async function child(): Promise<void> {
  const backend = arg('backend', 'wasm') as string;
  const model = benchModel(arg('model', 'r18w16') as string);
  const batch = Number(arg('batch', '32'));
  const threads = await useBackend(backend);
  const b = barlowBench(model, batch);
  let peak = 0;
  const step = (): void => {
    b.step();
    peak = Math.max(peak, tf.memory().numBytes);
  };
  const t = timeSteps(
    step,
    Number(arg('warmup', '2')),
    Number(arg('steps', '5')),
    Number(arg('max-seconds', '60')) * 1000,
  );
  const row: Row = {
    impl: `tfjs-${backend}`,
    model: model.id,
    batch,
    threads,
    params: b.params,
    wallMs: t.wallMs,
    cpuMs: t.cpuMs,
    steps: t.steps,
    viewsPerSec: (2 * batch * 1000) / t.wallMs,
    peakTensorMiB: peak / 2 ** 20,
    wasmHeapMiB: wasmHeapMiB(),
    rssMaxMiB: process.resourceUsage().maxRSS / 1024,
  };
  b.dispose();
  console.log(JSON.stringify(row));
  process.exit(0); // the threaded build's workers would keep the process alive
}

/** Child process: memory flatness over many steps. */
async function flat(): Promise<void> {
  const steps = Number(arg('flat'));
  const model = benchModel(arg('models', 'r18w16p512') as string);
  const batch = Number(arg('batches', '8'));
  await useBackend(arg('backends', 'wasm') as string);
  const b = barlowBench(model, batch);
  const samples: Array<{ step: number; numTensors: number; numBytes: number; wasmHeapMiB?: number; rssMiB: number }> =
    [];
  const t0 = performance.now();
  for (let i = 1; i <= steps; i++) {
    b.step();
    if (i === 10 || i % 100 === 0) {
      const m = tf.memory();
      samples.push({
        step: i,
        numTensors: m.numTensors,
        numBytes: m.numBytes,
        wasmHeapMiB: wasmHeapMiB(),
        rssMiB: process.memoryUsage().rss / 2 ** 20,
      });
      console.log(JSON.stringify(samples[samples.length - 1]));
    }
  }
  const first = samples[0];
  const flatT = samples.every((s) => s.numTensors === first.numTensors);
  const flatB = samples.every((s) => s.numBytes === first.numBytes);
  console.log(
    JSON.stringify({
      flat: {
        model: model.id,
        batch,
        steps,
        seconds: (performance.now() - t0) / 1000,
        numTensorsFlat: flatT,
        numBytesFlat: flatB,
        first,
        last: samples[samples.length - 1],
      },
    }),
  );
  b.dispose();
  if (!flatT || !flatB) process.exitCode = 1;
}

/** Runs one combination in a child process, killed after `timeoutS` seconds (a threaded build out of wasm memory can hang). */
function runChild(args: string[], timeoutS: number): Promise<Row> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', __filename, '--child', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutS * 1000);
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      clearTimeout(timer);
      const line = out
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      const why = timedOut
        ? `stopped after ${timeoutS} s`
        : `exit ${code}: ${err.split('\n').filter((l) => /Error/.test(l))[0] ?? err.slice(-300)}`;
      if (code === 0 && line) resolve(JSON.parse(line) as Row);
      else
        resolve({
          impl: 'tfjs-?',
          model: '?',
          batch: 0,
          wallMs: NaN,
          cpuMs: NaN,
          steps: 0,
          viewsPerSec: NaN,
          error: why,
        });
    });
  });
}

function fmt(x: number | undefined, d = 1): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d);
}

function table(rows: Row[]): string {
  // Ratios are against the faster PyTorch row of the same (model, batch).
  const torch = (m: string, b: number): Row | undefined =>
    rows
      .filter((r) => r.impl === 'torch' && r.model === m && r.batch === b && Number.isFinite(r.wallMs))
      .sort((x, y) => x.wallMs - y.wallMs)[0];
  const lines = [
    '| model | batch | impl | views/s | ms/step (wall) | cpu ms/step | vs best torch (wall) | vs best torch (cpu time) | peak tensors MiB | wasm heap MiB | max RSS MiB | load 1-min |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const t = torch(r.model, r.batch);
    const label = BENCH_MODELS.find((m) => m.id === r.model)?.label ?? r.model;
    const ok = t && r.impl !== 'torch' && Number.isFinite(r.wallMs);
    const ratioWall = ok ? `${(t.wallMs / r.wallMs).toFixed(2)}x` : '';
    const ratioCpu = ok ? `${(t.cpuMs / r.cpuMs).toFixed(2)}x` : '';
    const threads = (n: number | undefined): string => (n === undefined ? '' : ` (${n} thread${n > 1 ? 's' : ''})`);
    const impl = r.impl === 'torch' ? `PyTorch${threads(r.threads)}` : `${r.impl}${threads(r.threads)}`;
    lines.push(
      `| ${label} | ${r.batch} | ${impl}${r.error ? ` (${r.error})` : ''} | ${fmt(r.viewsPerSec)} | ${fmt(r.wallMs, 0)} | ${fmt(r.cpuMs, 0)} | ${ratioWall} | ${ratioCpu} | ${fmt(r.peakTensorMiB, 0)} | ${fmt(r.wasmHeapMiB, 0)} | ${fmt(r.rssMaxMiB, 0)} | ${r.load ? `${r.load[0].toFixed(2)}-${r.load[1].toFixed(2)}` : '—'} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (has('child')) return child();
  if (has('flat')) return flat();
  const models = (arg('models', 'r18w16,r18w16p512,r18w32,r18w32p512,r18w64,vitt4') as string).split(',');
  models.forEach(benchModel);
  const batches = (arg('batches', '32,128') as string).split(',').map(Number);
  const backends = (arg('backends', 'native-t1,native-t2,wasm,wasm-t2,cpu') as string).split(',');
  const common = [
    '--steps',
    arg('steps', '5') as string,
    '--warmup',
    arg('warmup', '2') as string,
    '--max-seconds',
    arg('max-seconds', '60') as string,
  ];
  const rows: Row[] = [];
  const torchThreads = (arg('torch-threads', '2') as string).split(',').map(Number);
  const batchesOf = (m: string): number[] =>
    has('batch32-only') && (arg('batch32-only') as string).split(',').includes(m)
      ? batches.filter((b) => b === 32)
      : batches;
  for (const m of models) {
    for (const b of batchesOf(m)) {
      // PyTorch and tfjs of one (model, batch) back to back, so each ratio compares rows minutes apart at most.
      if (!has('no-torch')) {
        for (const t of torchThreads) {
          const l0 = os.loadavg()[0];
          const py = spawnSync(
            '/usr/bin/python3',
            [
              path.join(__dirname, 'torch_cpu.py'),
              '--models',
              m,
              '--batches',
              String(b),
              '--threads',
              String(t),
              ...common,
            ],
            { encoding: 'utf8' },
          );
          if (py.status !== 0) console.error(`torch_cpu.py failed: ${py.stderr.slice(-500)}`);
          for (const l of py.stdout.split('\n')) {
            if (!l.startsWith('{')) continue;
            const r = { ...(JSON.parse(l) as Row), load: [l0, os.loadavg()[0]] as [number, number] };
            rows.push(r);
            console.error(JSON.stringify(r));
          }
        }
      }
      for (const be of backends) {
        if (be === 'cpu' && !has('cpu-all') && !(m === 'r18w16' && b === 32)) continue;
        const args =
          be === 'cpu'
            ? [
                '--steps',
                arg('cpu-steps', '2') as string,
                '--warmup',
                arg('cpu-warmup', '1') as string,
                '--max-seconds',
                '1',
              ]
            : common;
        const l0 = os.loadavg()[0];
        const r = await runChild(
          ['--backend', be, '--model', m, '--batch', String(b), ...args],
          Number(arg('child-timeout', '600')),
        );
        if (r.error) Object.assign(r, { impl: `tfjs-${be}`, model: m, batch: b });
        r.load = [l0, os.loadavg()[0]];
        rows.push(r);
        console.error(JSON.stringify(r));
      }
    }
  }
  const rank = (impl: string): number =>
    impl === 'torch' ? 0 : impl.startsWith('tfjs-native') ? 1 : impl.startsWith('tfjs-wasm') ? 2 : 3;
  const order = (r: Row): string =>
    `${models.indexOf(r.model)}-${String(r.batch).padStart(5, '0')}-${rank(r.impl)}-${r.impl}-${r.threads ?? 1}`;
  rows.sort((a, b) => order(a).localeCompare(order(b)));
  const out = arg('json');
  if (out) fs.writeFileSync(out, JSON.stringify(rows, null, 1));
  console.log(table(rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

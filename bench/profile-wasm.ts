/**
 * Per-kernel CPU time of one Barlow Twins training step on wasm (see README "Profiling a step"):
 * every kernel registered for wasm is wrapped with process.cpuUsage(), with a depth counter so a
 * kernel called from inside another one is counted once (in the outer kernel).
 *
 *   npx tsx bench/profile-wasm.ts [--model r18w16] [--batch 32] [--steps 3] [--threads 1] [--by-shape]
 */
import * as tf from '@tensorflow/tfjs';
import { barlowBench, benchModel } from './common';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  const threads = Number(arg('threads', '1'));
  if (threads > 1) {
    const { useWasmThreads } = await import('../lib/kernels/wasm/threads');
    useWasmThreads({ threads });
  }
  const { registerKernelsFor } = await import('../lib/kernels');
  await import('../lib/kernels/wasm');
  registerKernelsFor('wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  const stats = new Map<string, { ms: number; calls: number }>();
  let depth = 0;
  const byShape = process.argv.includes('--by-shape');
  for (const k of tf.getKernelsForBackend('wasm')) {
    const f = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel({
      ...k,
      kernelFunc: ((a: Parameters<tf.KernelFunc>[0]) => {
        if (depth > 0) return f(a);
        depth++;
        const c0 = process.cpuUsage();
        try {
          return f(a);
        } finally {
          depth--;
          const c = process.cpuUsage(c0);
          const key = byShape
            ? `${k.kernelName} ${Object.values(a.inputs)
                .filter((t) => t !== undefined)
                .map((t) => `[${(t as tf.TensorInfo).shape}]`)
                .join(' ')}`
            : k.kernelName;
          const s = stats.get(key) ?? { ms: 0, calls: 0 };
          s.ms += (c.user + c.system) / 1000;
          s.calls++;
          stats.set(key, s);
        }
      }) as tf.KernelFunc,
    });
  }
  const b = barlowBench(benchModel(arg('model', 'r18w16')), Number(arg('batch', '32')));
  b.step();
  b.step();
  stats.clear();
  const steps = Number(arg('steps', '3'));
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < steps; i++) b.step();
  const c = process.cpuUsage(c0);
  const total = (c.user + c.system) / 1000 / steps;
  const rows = [...stats.entries()].sort((x, y) => y[1].ms - x[1].ms);
  let inKernels = 0;
  for (const [name, s] of rows) {
    inKernels += s.ms / steps;
    if (s.ms / steps >= 0.5)
      console.log(
        `${name.padEnd(60)} ${(s.ms / steps).toFixed(1).padStart(8)} ms  ${String(s.calls / steps).padStart(6)} calls`,
      );
  }
  console.log(
    `in kernels ${inKernels.toFixed(0)} ms, step total cpu ${total.toFixed(0)} ms, wall ${((performance.now() - w0) / steps).toFixed(0)} ms`,
  );
  b.dispose();
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

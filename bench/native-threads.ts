/**
 * How many threads the native kernels should use: the Barlow Twins step (bench/common.ts) on wasm +
 * native kernels with 1 thread and with N threads, on an idle machine and beside 1..k busy
 * processes (each a spinning `node -e` loop, the kind of load a second training run or a test
 * suite puts on a shared machine), each in its own session. Thread counts alternate within each
 * load level, so every pair is measured minutes apart at most.
 *
 *   npx tsx bench/native-threads.ts [--model r18w16] [--batch 128] [--threads 1,2] [--loads 0,1,3] [--steps 4] [--rounds 2]
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

interface Row {
  load: number;
  threads: number;
  wallMs: number;
  cpuMs: number;
  loadavg: number;
}

function step(model: string, batch: number, threads: number, steps: number): { wallMs: number; cpuMs: number } {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(__dirname, 'cpu.ts'),
      '--child',
      '--backend',
      `native-t${threads}`,
      '--model',
      model,
      '--batch',
      String(batch),
      '--steps',
      String(steps),
      '--warmup',
      '1',
      '--max-seconds',
      '120',
    ],
    { encoding: 'utf8' },
  );
  const line = r.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`bench child failed: ${r.stderr.slice(-400)}`);
  const row = JSON.parse(line) as { wallMs: number; cpuMs: number };
  return { wallMs: row.wallMs, cpuMs: row.cpuMs };
}

async function main(): Promise<void> {
  const model = arg('model', 'r18w16');
  const batch = Number(arg('batch', '128'));
  const threads = arg('threads', `1,${Math.min(8, os.cpus().length)}`)
    .split(',')
    .map(Number);
  const loads = arg('loads', '0,1,3').split(',').map(Number);
  const steps = Number(arg('steps', '4'));
  const rounds = Number(arg('rounds', '2'));
  const rows: Row[] = [];
  for (const load of loads) {
    // Each in its own session (detached: setsid), as another user's or terminal's work is: with the
    // kernel's autogroups, CPU is shared between sessions first.
    const hogs: ChildProcess[] = Array.from({ length: load }, () =>
      spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore', detached: true }),
    );
    try {
      await new Promise((r) => setTimeout(r, load > 0 ? 3000 : 0));
      for (let k = 0; k < rounds; k++) {
        for (const t of threads) {
          const s = step(model, batch, t, steps);
          const row = { load, threads: t, ...s, loadavg: os.loadavg()[0] };
          rows.push(row);
          console.error(JSON.stringify(row));
        }
      }
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
    }
  }
  console.log(
    `| busy processes beside it | threads | ms/step (wall), each round | best | cpu ms/step | 1-min load at the end |`,
  );
  console.log('|---|---|---|---|---|---|');
  for (const load of loads) {
    for (const t of threads) {
      const rs = rows.filter((r) => r.load === load && r.threads === t);
      const best = Math.min(...rs.map((r) => r.wallMs));
      console.log(
        `| ${load} | ${t} | ${rs.map((r) => r.wallMs.toFixed(0)).join(' / ')} | ${best.toFixed(0)} | ${rs.map((r) => r.cpuMs.toFixed(0)).join(' / ')} | ${rs[rs.length - 1].loadavg.toFixed(2)} |`,
      );
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

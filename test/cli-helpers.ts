/** Helpers for tests that drive `npm run pretrain` (bin/pretrain.ts) as a child process. */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { TestContext } from 'node:test';

const ROOT = path.join(__dirname, '..');

/** Where bin/pretrain.ts finds real CIFAR-10 (it refuses the fixture), or null. */
export function cifarSource(): string | null {
  const c = [
    process.env.DINOTWINS_CIFAR10,
    path.join(ROOT, 'data/cifar-10-batches-bin'),
    path.join(ROOT, '../shared/data/cifar-10-binary.tar.gz'),
  ];
  return c.find((p) => p && fs.existsSync(p)) ?? null;
}

/** Starts `npm run pretrain` as node + tsx (no npm wrapper), returns the child and its collected output. */
export function startCli(args: string[], t: TestContext, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin/pretrain.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, DINOTWINS_BACKEND: 'cpu', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => void (child.exitCode === null && child.kill('SIGKILL'))); // a failed assertion leaves no process behind
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exit, output: () => out };
}

/** `npm run pretrain` options of a small Barlow Twins run: 100 real images, 10 steps per epoch, no probe afterwards. */
export const cliArgs = (width = 2): string[] => [
  '--method',
  'barlow',
  '--width',
  String(width),
  '--batch',
  '10',
  '--per-class',
  '10',
  '--knn-every',
  '0',
  '--probe-epochs',
  '0',
  '--budget',
  'smoke',
];

/** A --config file that keeps the CLI's steps short on the cpu backend (narrow projector, 16x16 views). */
export function cliConfig(dir: string): string {
  const file = path.join(dir, 'tiny.json');
  fs.writeFileSync(
    file,
    JSON.stringify({ projector: { hidden: 16, out: 16, layers: 2 }, augment: { globalSize: 16 }, logEvery: 1 }),
  );
  return file;
}

/** Polls `cond` every 50 ms; after `ms`, fails naming `what` and, when given, the output so far. */
export async function until(
  cond: () => boolean,
  ms: number,
  what: string,
  output: () => string = () => '',
): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${output() ? `; output so far:\n${output()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

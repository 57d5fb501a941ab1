/**
 * `npm run notebook` (scripts/notebook-server.sh) starts a Jupyter server on 127.0.0.1 that lists
 * the project's tslab kernel and can start it, as root too. Skipped, with the reason, where no
 * Jupyter is installed (scripts/setup.sh installs Debian's classic notebook).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as net from 'net';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function jupyterMissing(): string {
  for (const j of ['jupyter', '/usr/bin/jupyter'])
    if (spawnSync(j, ['--version'], { stdio: 'ignore' }).status === 0) return '';
  return 'no working jupyter (run bash scripts/setup.sh, or pip install jupyterlab)';
}

test('npm run notebook: a Jupyter server on 127.0.0.1 with the tslab kernel on its path, which it can start', async (t) => {
  const missing = jupyterMissing();
  if (missing) return t.skip(missing);
  const port = await freePort();
  const token = `test-${process.pid}`;
  const env = { ...process.env, JUPYTER_TOKEN: token, JUPYTER_PATH: '' };
  const child = spawn('bash', ['scripts/notebook-server.sh', '--no-browser', `--port=${port}`], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL'); // the server and any kernel it started
    } catch {
      // already gone
    }
  });
  const api = async (p: string, init: RequestInit = {}) => {
    const r = await fetch(`http://127.0.0.1:${port}${p}`, {
      ...init,
      headers: { Authorization: `token ${token}`, ...(init.headers ?? {}) },
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  let specs: Record<string, unknown> | null = null;
  for (let i = 0; i < 300 && specs === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (child.exitCode !== null) assert.fail(`the server exited (${child.exitCode}):\n${log}`);
    specs = await api('/api/kernelspecs').then(
      (r) => (r.status === 200 ? r.body : null),
      () => null,
    );
  }
  assert.ok(specs, `no answer on 127.0.0.1:${port} within 30 s:\n${log}`);
  assert.ok(
    'tslab' in (specs.kernelspecs as Record<string, unknown>),
    `tslab not among ${Object.keys(specs.kernelspecs as object)}`,
  );
  assert.match(log, /notebook: jupyter (lab|notebook) on 127\.0\.0\.1, notebooks in notebooks\//);
  if (!log.includes('jupyter lab'))
    assert.match(log, /JupyterLab is not installed \(pip install jupyterlab\); starting the classic Jupyter Notebook/);
  assert.doesNotMatch(log, /Debugger warning/);
  const k = await api('/api/kernels', {
    method: 'POST',
    body: JSON.stringify({ name: 'tslab' }),
    headers: { 'Content-Type': 'application/json' },
  });
  assert.equal(k.status, 201, JSON.stringify(k.body));
  assert.equal(k.body.name, 'tslab');
  const del = await fetch(`http://127.0.0.1:${port}/api/kernels/${String(k.body.id)}`, {
    method: 'DELETE',
    headers: { Authorization: `token ${token}` },
  });
  assert.equal(del.status, 204);
});

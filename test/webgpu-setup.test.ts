/**
 * Where the Vulkan loader is missing, the WebGPU probe says so without asking Dawn (which would print
 * a native "Couldn't load Vulkan" warning into every notebook and CLI run on a CPU-only Linux machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { vulkanLoaderFound } from '../lib/kernels/webgpu/setup';

test('vulkanLoaderFound looks in LD_LIBRARY_PATH', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-vk-'));
  try {
    fs.writeFileSync(path.join(dir, 'libvulkan.so.1'), '');
    assert.equal(vulkanLoaderFound({ LD_LIBRARY_PATH: `/nonexistent:${dir}` }), true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('without a Vulkan loader the probe gives the reason and Dawn prints nothing', (t) => {
  if (process.platform !== 'linux' || vulkanLoaderFound({})) {
    t.skip('this machine has a system Vulkan loader: the missing-loader path cannot be exercised here');
    return;
  }
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  const code = "require('./lib/kernels/webgpu/setup').ensureWebgpu().then((r) => console.log(JSON.stringify(r)))";
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: path.join(__dirname, '..'),
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.ok, false);
  assert.match(out.reason, /Vulkan loader \(libvulkan\.so\.1\) is not installed/);
  assert.doesNotMatch(r.stderr, /Couldn't load Vulkan/);
});

/**
 * The lent GPU machine runs the WebGPU tests from one bundle (bench/device/webgpu-checks.ts): every
 * test file that asks for a WebGPU adapter must be in it, or its kernels go untested on the card.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

test('every WebGPU test file is in the device bundle', () => {
  const dir = path.join(__dirname);
  const gpuTests = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts') && /\buseWebgpu\(/.test(fs.readFileSync(path.join(dir, f), 'utf8')))
    .map((f) => f.replace(/\.ts$/, ''));
  assert.ok(gpuTests.length >= 10, `found the WebGPU test files: ${gpuTests.join(', ')}`);
  const bundle = fs.readFileSync(path.join(dir, '..', 'bench', 'device', 'webgpu-checks.ts'), 'utf8');
  const imported = new Set([...bundle.matchAll(/^import '\.\.\/\.\.\/test\/([^']+)';$/gm)].map((m) => m[1]));
  const missing = gpuTests.filter((f) => !imported.has(f));
  assert.deepEqual(missing, [], `WebGPU test files missing from bench/device/webgpu-checks.ts: ${missing.join(', ')}`);
});

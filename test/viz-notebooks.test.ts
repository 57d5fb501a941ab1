/**
 * End to end: run a demo notebook (every chart kind, image grids, an arquero table, a
 * progress bar) through scripts/run-notebooks.py with the tslab kernel, check its HTML with
 * scripts/render-check.py, and check that a failing cell, an asynchronous error and a broken
 * chart each make the scripts exit non-zero. Needs scripts/setup-jupyter.sh to have run;
 * without it the test is skipped, or fails when CI is set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { join } from 'path';

const ROOT = join(__dirname, '..');
const PY = '/usr/bin/python3';

function missingPrerequisites(): string {
  if (!existsSync(join(ROOT, '.jupyter/share/jupyter/kernels/tslab/kernel.json')))
    return 'tslab kernel not registered in .jupyter';
  if (!existsSync('/usr/bin/chromium')) return 'chromium not installed';
  const r = spawnSync(PY, ['-c', 'import nbclient, nbconvert, nbformat'], { encoding: 'utf8' });
  return r.status === 0 ? '' : 'nbclient/nbconvert not importable by /usr/bin/python3';
}

function notebook(cells: string[]): string {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
    cells: cells.map((src, k) => ({
      id: `c${k}`,
      cell_type: 'code',
      metadata: {},
      execution_count: null,
      outputs: [],
      source: src,
    })),
  });
}

const DEMO = [
  `import { lineChart, heatmap, histogram, distribution, barChart, imageGrid, table, progress } from './lib/viz/index';
import * as aq from 'arquero';`,
  `const steps = Array.from({ length: 100 }, (_, i) => i);
await lineChart({ train: steps.map((s) => 5 * Math.exp(-s / 30) + 0.1), val: steps.map((s) => 5 * Math.exp(-s / 40) + 0.3) }, { title: 'loss', logY: true });`,
  `await heatmap(Array.from({ length: 80 }, (_, i) => Array.from({ length: 80 }, (_, j) => (i === j ? 1 : 0.3 * Math.sin(i + 2 * j)))), { title: 'C' });`,
  `await histogram({ a: steps.map(Math.sin), b: steps.map(Math.cos) }, { bins: 20 });`,
  `await distribution({ teacher: [0.7, 0.2, 0.1], student: [0.4, 0.35, 0.25] }, { sortDescending: true });`,
  `await barChart({ Barlow: 81.2, DINO: 79.5, 'DINO-Twins': 82.0 }, { title: 'kNN top-1' });`,
  `const im = (k: number) => ({ data: Uint8Array.from({ length: 8 * 8 * 3 }, (_, p) => (p * (k + 3)) % 256), height: 8, width: 8, channels: 3 });
imageGrid([im(0), im(1), im(2)], { labels: ['a', 'b', 'c'], scale: 4 });
imageGrid([im(3), im(4)], { overlays: [0, 1].map((k) => ({ data: [k, 1 - k, 0, 0], height: 2, width: 2 })) });`,
  `table(aq.table({ method: ['Barlow', 'DINO'], knn: [81.234, 79.5] }), { title: 'results' });`,
  `const bar = progress({ total: 20, label: 'train' });
for (let s = 1; s <= 20; s++) { await new Promise((r) => setTimeout(r, 10)); bar.update(s, { loss: 1 / s }); }
bar.done();`,
];

test('notebooks: demo runs, exports and renders; failing and async-failing notebooks are caught', (t) => {
  const missing = missingPrerequisites();
  if (missing) {
    if (process.env.CI) assert.fail(`${missing}: run scripts/setup-jupyter.sh`);
    t.skip(`${missing}: run scripts/setup-jupyter.sh`);
    return;
  }
  const dir = join(ROOT, 'runs', `.viz-e2e-${process.pid}`);
  const out = join(dir, 'out');
  mkdirSync(dir, { recursive: true });
  try {
    symlinkSync('../../lib', join(dir, 'lib')); // tslab's rootDir is the notebook folder
    writeFileSync(join(dir, 'demo.ipynb'), notebook(DEMO));
    writeFileSync(
      join(dir, 'sync.ipynb'),
      notebook([
        `console.log('ok');`,
        `console.error('about to fail');\nthrow new Error('boom in cell two');`,
        `console.log('never');`,
      ]),
    );
    writeFileSync(
      join(dir, 'async.ipynb'),
      notebook([
        `Promise.reject(new Error('nobody awaited me'));\nconsole.log('cell returns');`,
        `console.log('next');`,
      ]),
    );

    const run = (args: string[]) =>
      spawnSync(PY, [join(ROOT, 'scripts/run-notebooks.py'), '--out', out, ...args], { encoding: 'utf8', cwd: ROOT });
    const demo = run([join(dir, 'demo.ipynb')]);
    assert.equal(demo.status, 0, demo.stderr);
    const nb = JSON.parse(readFileSync(join(out, 'demo.ipynb'), 'utf8'));
    assert.equal(nb.cells.length, DEMO.length, 'injected cells removed');
    type Output = { data?: Record<string, unknown> };
    const outputs: Output[] = nb.cells.flatMap((c: { outputs: Output[] }) => c.outputs);
    const text = (v: unknown): string => (Array.isArray(v) ? v.join('') : String(v ?? '')); // nbformat splits lines
    assert.equal(
      outputs.filter((o) => o.data && 'application/vnd.vegalite.v5+json' in o.data && 'image/svg+xml' in o.data).length,
      5,
    );
    const bars = outputs.filter((o) => text(o.data?.['text/html']).includes('<progress'));
    assert.equal(bars.length, 1, 'progress updated in place: one output');
    assert.match(text(bars[0].data?.['text/html']), /value="20" max="20"/);

    const check = (file: string) =>
      spawnSync(PY, [join(ROOT, 'scripts/render-check.py'), file], { encoding: 'utf8', cwd: ROOT });
    const good = check(join(out, 'demo.html'));
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stderr, /charts 5\/5, images 4, tables 2\/2/);

    // Replace the first chart with an empty SVG: the render check must fail.
    const html = readFileSync(join(out, 'demo.html'), 'utf8');
    const empty = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"></svg>').toString('base64');
    const broken = html.replace(/(<img src="data:image\/svg\+xml;base64,)[^"]+/, `$1${empty}`);
    assert.notEqual(broken, html);
    mkdirSync(join(dir, 'broken'));
    writeFileSync(join(dir, 'broken', 'demo.html'), broken);
    writeFileSync(join(dir, 'broken', 'demo.ipynb'), readFileSync(join(out, 'demo.ipynb')));
    const bad = check(join(dir, 'broken', 'demo.html'));
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /SVG is \(nearly\) empty/);

    const fails = run([join(dir, 'sync.ipynb'), join(dir, 'async.ipynb')]);
    assert.equal(fails.status, 1, fails.stderr);
    assert.match(fails.stderr, /sync: cell 2 failed\. Source:[\s\S]*boom in cell two[\s\S]*about to fail/);
    assert.match(
      fails.stderr,
      /async: 1 asynchronous error\(s\)[\s\S]*unhandledRejection: Error: nobody awaited me {2}\[recorded after cell [12] started\]/,
    );
    assert.match(fails.stderr, /FAIL .*sync\.ipynb: cell 2 failed\nFAIL .*async\.ipynb: 1 asynchronous error/);
  } finally {
    if (!process.env.VIZ_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
  }
});

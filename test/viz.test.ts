import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join, sep } from 'path';
import { inflateSync } from 'zlib';
import * as aq from 'arquero';
import {
  barChart,
  barChartSpec,
  canDisplay,
  chartBundle,
  colorize,
  computeHistogram,
  decimate,
  display,
  encodePng,
  formatDuration,
  formatMetric,
  formatProgress,
  heatmapSpec,
  histogramSpec,
  imageGrid,
  lineChart,
  lineChartSpec,
  progress,
  renderSvg,
  seriesRows,
  svgDataUri,
  table,
  updateDisplay,
  VEGALITE_MIME,
  attentionGrids,
} from '../lib/viz/index';
import { unfilterScanlines } from './png-helpers';

/** Parses a PNG: checks signature and every CRC, returns IHDR fields and the inflated scanlines. */
function parsePng(buf: Buffer): { width: number; height: number; colorType: number; raw: Buffer } {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  let pos = 8;
  let ihdr: Buffer | null = null;
  const idat: Buffer[] = [];
  const types: string[] = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    const crc = buf.readUInt32BE(pos + 8 + len);
    assert.equal(crc, crc32(buf.subarray(pos + 4, pos + 8 + len)), `CRC of ${type}`);
    types.push(type);
    if (type === 'IHDR') ihdr = Buffer.from(body);
    if (type === 'IDAT') idat.push(Buffer.from(body));
    pos += 12 + len;
  }
  assert.deepEqual([types[0], types[types.length - 1]], ['IHDR', 'IEND']);
  assert.ok(ihdr);
  return {
    width: ihdr.readUInt32BE(0),
    height: ihdr.readUInt32BE(4),
    colorType: ihdr[9],
    raw: inflateSync(Buffer.concat(idat)),
  };
}

/** Independent bitwise CRC-32 (no table) for checking the encoder's table version. */
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** Pixel (r, g, b) at (x, y) of an RGB PNG (scanlines unfiltered by test/png-helpers.ts). */
function pixel(p: { width: number; height: number; raw: Buffer }, x: number, y: number): number[] {
  const { pixels } = unfilterScanlines(p.raw, p.width, p.height, 3);
  const o = (y * p.width + x) * 3;
  return [pixels[o], pixels[o + 1], pixels[o + 2]];
}

function count(s: string, needle: RegExp): number {
  return (s.match(needle) ?? []).length;
}

test('encodePng writes a valid RGB/grey/RGBA PNG that decodes back to the pixels', () => {
  const w = 5;
  const h = 3;
  const px = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 256);
  const p = parsePng(encodePng(px, w, h, 3));
  assert.deepEqual([p.width, p.height, p.colorType], [5, 3, 2]);
  assert.equal(p.raw.length, (w * 3 + 1) * h);
  assert.deepEqual(pixel(p, 4, 2), [...px.subarray((2 * w + 4) * 3, (2 * w + 4) * 3 + 3)]);
  assert.equal(parsePng(encodePng(new Uint8Array(6), 3, 2, 1)).colorType, 0);
  assert.equal(parsePng(encodePng(new Uint8Array(24), 3, 2, 4)).colorType, 6);
  assert.throws(() => encodePng(px, 4, 3, 3), /expected 36 bytes/);
  assert.throws(() => encodePng(px, 5, 3, 2), /channels must be 1, 3 or 4/);
  assert.throws(() => encodePng(px, 5, 3, 3, { bits: 0 }), /bits must be an integer in 1\.\.8/);
});

test('encodePng: adaptive filters are lossless and smaller on smooth images; bits < 8 keeps 2^bits levels', () => {
  // A smooth image with noise, like a photograph: gradients that Sub/Up/Paeth predict.
  const w = 64;
  const h = 48;
  let seed = 1;
  const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 7) - 3;
  const px = Uint8Array.from({ length: w * h * 3 }, (_, i) => {
    const p = Math.floor(i / 3);
    return Math.max(0, Math.min(255, Math.round(2 * (p % w) + 3 * Math.floor(p / w) + 40 * (i % 3)) + noise()));
  });
  const adaptive = encodePng(px, w, h, 3);
  const none = encodePng(px, w, h, 3, { filter: 'none' });
  const a = parsePng(adaptive);
  const back = unfilterScanlines(a.raw, w, h, 3);
  assert.deepEqual([...back.pixels], [...px], 'lossless');
  assert.ok(
    back.filters.some((f) => f !== 0),
    `filters used: ${[...new Set(back.filters)]}`,
  );
  assert.deepEqual(new Set(unfilterScanlines(parsePng(none).raw, w, h, 3).filters), new Set([0]));
  assert.ok(adaptive.length < 0.8 * none.length, `adaptive ${adaptive.length} bytes, none ${none.length}`);
  // RGBA and grey rows filter per pixel (bpp 4 and 1) and decode back too.
  const rgba = Uint8Array.from({ length: 7 * 5 * 4 }, (_, i) => (i * 29 + (i >> 3)) % 256);
  const pa = parsePng(encodePng(rgba, 7, 5, 4));
  assert.deepEqual([...unfilterScanlines(pa.raw, 7, 5, 4).pixels], [...rgba]);
  const grey = Uint8Array.from({ length: 9 * 4 }, (_, i) => (i * i) % 256);
  assert.deepEqual([...unfilterScanlines(parsePng(encodePng(grey, 9, 4, 1)).raw, 9, 4, 1).pixels], [...grey]);
  // 5 bits: 32 levels over 0..255 (0 and 255 exact), each value within half a step of the original.
  const all = Uint8Array.from({ length: 256 * 3 }, (_, i) => Math.floor(i / 3));
  const q = unfilterScanlines(parsePng(encodePng(all, 256, 1, 3, { bits: 5 })).raw, 256, 1, 3).pixels;
  assert.equal(new Set(q).size, 32);
  assert.deepEqual([q[0], q[q.length - 1]], [0, 255]);
  assert.ok(
    q.every((v, i) => Math.abs(v - all[i]) <= 255 / 31 / 2 + 0.5),
    'rounded to the nearest level',
  );
  assert.ok(encodePng(px, w, h, 3, { bits: 5 }).length < adaptive.length);
});

test('line chart spec -> SVG has the lines, axes and legend; non-finite and log-invalid points dropped', async () => {
  const spec = lineChartSpec({ train: [4, 2, NaN, 1], val: [5, 3, 0, 2] }, { title: 'loss curve', logY: true });
  const rows = (spec as unknown as { data: { values: { series: string; y: number }[] } }).data.values;
  assert.equal(rows.filter((r) => r.series === 'train').length, 3, 'NaN dropped');
  assert.equal(rows.filter((r) => r.series === 'val').length, 3, 'y=0 dropped on a log axis');
  const svg = await renderSvg(spec);
  assert.match(svg, /^<svg[^>]+width="\d+"/);
  assert.ok(count(svg, /<path/g) >= 4, 'paths for lines and axes');
  for (const t of ['loss curve', 'train', 'val', 'step']) assert.ok(svg.includes(`>${t}</text>`), `text ${t}`);
  assert.ok(count(svg, /aria-roledescription="line mark"/g) === 2, 'one line per series');
});

test('decimate keeps at most maxPoints, evenly strided, and always the last point', () => {
  assert.deepEqual(decimate(5, 10), [0, 1, 2, 3, 4]);
  const idx = decimate(10_001, 1000);
  assert.ok(idx.length <= 1001);
  assert.equal(idx[0], 0);
  assert.equal(idx[idx.length - 1], 10_000);
  const rows = seriesRows([{ name: 'a', y: Array.from({ length: 10_001 }, (_, i) => i) }], {
    logX: false,
    logY: false,
    maxPoints: 1000,
  });
  assert.equal(rows.length, idx.length);
  assert.throws(() => lineChartSpec([{ name: 'a', x: [1, 2], y: [1] }]), /2 x values but 1 y values/);
  assert.throws(() => lineChartSpec({}), /no series/);
});

test('heatmap crops to 64x64, colours a diverging -1..1 scale, and stays small', async () => {
  const n = 100;
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) data[i * n + j] = i === j ? 1 : i === j + 1 ? -1 : 0;
  const spec = heatmapSpec({ data, rows: n, cols: n }, { title: 'C' });
  const s = JSON.stringify(spec);
  assert.match(s, /top-left 64x64 of 100x100/);
  const uri = /data:image\/png;base64,([A-Za-z0-9+/=]+)/.exec(s);
  assert.ok(uri);
  const p = parsePng(Buffer.from(uri[1], 'base64'));
  assert.deepEqual([p.width, p.height], [64, 64]);
  const [r1, , b1] = pixel(p, 3, 3); // +1 on the diagonal: red
  const [rm, , bm] = pixel(p, 2, 3); // -1 below it: blue
  const [r0, g0, b0] = pixel(p, 10, 3); // 0: near white
  assert.ok(r1 > 100 && r1 > b1 + 50, `+1 is red, got ${r1},${b1}`);
  assert.ok(bm > 100 && bm > rm + 50, `-1 is blue, got ${rm},${bm}`);
  assert.ok(Math.min(r0, g0, b0) > 220, `0 is near white, got ${r0},${g0},${b0}`);
  const svg = await renderSvg(spec);
  assert.ok(svg.length < 40_000, `heatmap SVG is ${svg.length} bytes`);
  assert.match(svg, /<image[^>]+image-rendering: pixelated/);
  assert.ok(svg.includes('>−1.0</text>') || svg.includes('>-1.0</text>'), 'legend from -1');
  assert.throws(() => heatmapSpec([[1, 2], [3]]), /row 1 has 1 values/);
});

test('colorize maps the domain ends to the scheme ends and NaN to grey', () => {
  const rgb = colorize([0, 1, NaN], [0, 1], 'greys', false);
  assert.ok(rgb[0] > 200 && rgb[3] < 50, `greys: 0 light, 1 dark, got ${rgb[0]}, ${rgb[3]}`);
  assert.deepEqual([...rgb.subarray(6)], [221, 221, 221]);
});

test('computeHistogram counts, closes the last bin, ignores out-of-range; density integrates to 1', () => {
  const { edges, counts } = computeHistogram([0, 0.1, 0.5, 0.99, 1, 2, NaN], 2, [0, 1]);
  assert.deepEqual(edges, [0, 0.5, 1]);
  assert.deepEqual(counts, [2, 3]);
  const vals = Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
  const spec = histogramSpec({ a: vals, b: vals.slice(0, 100) }, { bins: 20, density: true });
  const rows = (spec as unknown as { data: { values: { series: string; x0: number; x1: number; y: number }[] } }).data
    .values;
  for (const name of ['a', 'b']) {
    const area = rows.filter((r) => r.series === name).reduce((acc, r) => acc + r.y * (r.x1 - r.x0), 0);
    assert.ok(Math.abs(area - 1) < 1e-4, `${name} integrates to ${area}`);
  }
  assert.throws(() => computeHistogram([1], 0, [0, 1]), /bins must be a positive integer/);
});

test('bar chart with groups and error bars renders bars, whiskers and value labels', async () => {
  const spec = barChartSpec([
    { label: 'Barlow', group: 'kNN', value: 81.25, error: 0.5 },
    { label: 'Barlow', group: 'linear', value: 84 },
    { label: 'DINO', group: 'kNN', value: 79.5 },
  ]);
  const svg = await renderSvg(spec);
  assert.equal(count(svg, /aria-roledescription="bar"/g), 3);
  assert.ok(count(svg, /aria-roledescription="rule mark"/g) >= 1, 'error whisker');
  for (const t of ['81.3', '84', '79.5', 'Barlow', 'DINO', 'kNN', 'linear'])
    assert.ok(svg.includes(`>${t}</text>`), `text ${t}`);
  assert.throws(() => barChartSpec({ a: NaN }), /non-finite/);
});

test('chart bundle carries the Vega-Lite spec and the SVG; the HTML fallback decodes to the same SVG', async () => {
  const spec = lineChartSpec({ a: [1, 2, 3] });
  const svg = await renderSvg(spec);
  const b = chartBundle(spec, svg, { alt: 'a chart' });
  assert.deepEqual(Object.keys(b).sort(), ['application/vnd.vegalite.v5+json', 'image/svg+xml', 'text/plain']);
  assert.equal(b[VEGALITE_MIME], spec);
  assert.equal(b['image/svg+xml'], svg);
  const h = chartBundle(spec, svg, { htmlFallback: true });
  const m = /<img alt="chart" src="data:image\/svg\+xml;base64,([^"]+)">/.exec(h['text/html'] as string);
  assert.ok(m);
  assert.equal(Buffer.from(m[1], 'base64').toString('utf8'), svg);
  assert.equal(svgDataUri('<svg/>'), `data:image/svg+xml;base64,${Buffer.from('<svg/>').toString('base64')}`);
});

test('outside a notebook: charts do not throw, report shown=false, and can save the SVG', async () => {
  assert.equal(canDisplay(), false);
  assert.equal(display({ 'text/plain': 'x' }), false);
  const dir = mkdtempSync(join(tmpdir(), 'viz-'));
  try {
    const file = join(dir, 'c.svg');
    const r = await lineChart({ a: [1, 2] }, { saveSvg: file });
    assert.equal(r.shown, false);
    assert.equal(readFileSync(file, 'utf8'), r.svg);
    const b = await barChart({ x: 1, y: 2 });
    assert.match(b.svg, /<svg/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => display({}), /non-empty object/);
});

/** Installs a fake tslab kernel module in the require cache; returns the captured messages and a remover. */
function fakeTslab(): {
  sent: { msg: { data: Record<string, unknown>; transient: { display_id?: string } }; update: boolean }[];
  remove: () => void;
} {
  const key = `${sep}fake${sep}node_modules${sep}tslab${sep}dist${sep}jupyter.js`;
  const sent: { msg: { data: Record<string, unknown>; transient: { display_id?: string } }; update: boolean }[] = [];
  const fake = { exports: { lastWriteDisplayData: (msg: never, update: boolean) => sent.push({ msg, update }) } };
  require.cache[key] = fake as unknown as NodeModule;
  return { sent, remove: () => delete require.cache[key] };
}

test('in tslab: one display_data with all mimes; updates address the display id', async () => {
  const k = fakeTslab();
  try {
    assert.equal(canDisplay(), true);
    const r = await lineChart({ a: [1, 2, 3] }, { title: 'in a kernel' });
    assert.equal(r.shown, true);
    assert.equal(k.sent.length, 1);
    assert.equal(k.sent[0].update, false);
    assert.ok(VEGALITE_MIME in k.sent[0].msg.data && 'image/svg+xml' in k.sent[0].msg.data);
    assert.equal(display({ 'text/plain': 'a' }, 'id1'), true);
    assert.equal(updateDisplay('id1', { 'text/plain': 'b' }), true);
    assert.deepEqual(
      k.sent.slice(1).map((s) => [s.msg.transient.display_id, s.update, s.msg.data['text/plain']]),
      [
        ['id1', false, 'a'],
        ['id1', true, 'b'],
      ],
    );
  } finally {
    k.remove();
  }
});

test('progress in tslab: shown once, then throttled in-place updates, final state on done()', () => {
  const k = fakeTslab();
  try {
    let t = 0;
    const bar = progress({ total: 100, label: 'train', now: () => t, minIntervalMs: 250 });
    for (let s = 1; s <= 100; s++) {
      t += 10; // 100 steps/s for 1 s: at most 4-5 redraws
      bar.update(s, { loss: 1 / s });
    }
    bar.done();
    assert.equal(k.sent[0].update, false);
    const id = k.sent[0].msg.transient.display_id;
    assert.ok(id);
    assert.ok(k.sent.slice(1).every((s) => s.update && s.msg.transient.display_id === id));
    assert.ok(k.sent.length >= 3 && k.sent.length <= 7, `${k.sent.length} messages`);
    const last = k.sent[k.sent.length - 1].msg.data;
    assert.match(last['text/plain'] as string, /100\/100 .* loss=0\.01$/);
    assert.match(last['text/html'] as string, /<progress value="100" max="100"/);
  } finally {
    k.remove();
  }
});

test('progress.track(): the last step is drawn however the work ends, and an interrupt says so', async () => {
  const k = fakeTslab();
  try {
    let t = 0;
    const bar = progress({ total: 400, label: 'Barlow Twins', now: () => t, minIntervalMs: 250 });
    class InterruptedError extends Error {
      override name = 'InterruptedError';
    }
    const work = (async () => {
      for (let s = 1; s <= 115; s++) {
        t += 1; // 1000 steps/s: most updates are throttled, including the last one (115)
        bar.update(s, { loss: 1 / s });
      }
      throw new InterruptedError('run x was interrupted at step 115 of 400');
    })();
    await assert.rejects(bar.track(work), /interrupted at step 115 of 400/);
    const last = k.sent[k.sent.length - 1].msg.data;
    assert.match(last['text/plain'] as string, / 115\/400 \[.*\] loss=0\.008696 \(interrupted at 115\/400\)$/);
    assert.match(last['text/html'] as string, /<progress value="115" max="400"/);
    assert.match(last['text/html'] as string, /\(interrupted at 115\/400\)/);
    const n = k.sent.length;
    bar.done();
    bar.stop('failed');
    assert.equal(k.sent.length, n, 'a finished bar draws nothing more');

    const ok = progress({ total: 3, now: () => t });
    const value = await ok.track(async () => {
      for (let s = 1; s <= 3; s++) ok.update(s);
      return 'result';
    });
    assert.equal(value, 'result');
    assert.match(k.sent[k.sent.length - 1].msg.data['text/plain'] as string, / 3\/3 \[[^\]]*\]$/, 'done: no stop note');
    const failing = progress({ total: 3, now: () => t });
    await assert.rejects(
      failing.track(async () => {
        failing.update(1);
        throw new RangeError('boom');
      }),
      /boom/,
    );
    assert.match(k.sent[k.sent.length - 1].msg.data['text/plain'] as string, /\(failed at 1\/3\)$/);
    assert.throws(() => progress({ total: 3 }).stop(''), /say why/);
  } finally {
    k.remove();
  }
});

test('progress formatting: durations, rate, ETA and metrics', () => {
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(61_000), '1:01');
  assert.equal(formatDuration(3_725_000), '1:02:05');
  assert.equal(formatDuration(NaN), '?');
  assert.equal(formatMetric(0.000123456), '1.235e-4');
  assert.equal(formatMetric(2.718281), '2.718');
  assert.equal(formatMetric(42), '42');
  const line = formatProgress(
    { step: 45, total: 100, elapsedMs: 12_000, rate: 3.714, etaMs: 14_812, metrics: { loss: 0.12345 } },
    'ep 1',
    10,
  );
  assert.equal(line, 'ep 1  45% |#####     | 45/100 [0:12<0:15, 3.71 it/s] loss=0.1235');
  assert.match(
    formatProgress({ step: 1, total: 10, elapsedMs: 5000, rate: 0.25, etaMs: 36_000, metrics: {} }),
    /4 s\/it/,
  );
});

test('progress on a terminal: \\r-rewritten throttled line, ETA from the measured rate, newline at done()', () => {
  const writes: string[] = [];
  const stream = {
    isTTY: true,
    columns: 200,
    write: (s: string) => (writes.push(s), true),
  } as unknown as NodeJS.WriteStream;
  let t = 0;
  const bar = progress({ total: 10, stream, now: () => t, mode: 'auto' });
  t = 5000; // start-up before the first update counts in the elapsed time, not in the rate
  bar.update(0);
  t += 2000;
  bar.update(4, { loss: 2 });
  const st = bar.state();
  assert.equal(st.rate, 2);
  assert.equal(st.etaMs, 3000);
  t += 100;
  bar.update(5); // throttled: 100 ms after the last draw
  bar.done();
  bar.done();
  assert.equal(writes.length, 4, writes.join('|'));
  assert.ok(writes.slice(0, 3).every((w) => w.startsWith('\r') && w.endsWith('\x1b[K')));
  assert.match(writes[1], /4\/10 \[0:07<0:03, 2 it\/s\] loss=2/);
  assert.equal(writes[3], '\n');
  assert.throws(() => progress({ total: 0 }), /total must be a positive number/);
});

test('progress in logs (non-TTY): one plain line per logIntervalMs and the final one', () => {
  const writes: string[] = [];
  const stream = { isTTY: false, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  let t = 0;
  const bar = progress({ total: 1000, stream, now: () => t, logIntervalMs: 10_000 });
  for (let s = 1; s <= 1000; s++) {
    t += 100;
    bar.update(s);
  }
  bar.done();
  // Lines at t = 0.1 s, 10.1 s, ..., 90.1 s (10), then the final one from done().
  assert.equal(writes.length, 11, `${writes.length} lines`);
  assert.match(writes[10], /1000\/1000/);
  assert.ok(writes.every((w) => w.endsWith('\n') && !w.includes('\r')));
});

test('imageGrid composes a PNG grid with gaps, labels in HTML, and overlays', () => {
  const img = (v: number) => ({ data: new Uint8Array(4 * 4 * 3).fill(v), height: 4, width: 4, channels: 3 });
  const r = imageGrid([img(10), img(200), img(90)], {
    cols: 2,
    scale: 2,
    gap: 1,
    labels: ['a', 'b<', 'c'],
    display: false,
  });
  assert.deepEqual([r.width, r.height], [2 * 8 + 1, 2 * 8 + 1]);
  const p = parsePng(r.png);
  assert.deepEqual(pixel(p, 0, 0), [10, 10, 10]);
  assert.deepEqual(pixel(p, 9, 0), [200, 200, 200]);
  assert.deepEqual(pixel(p, 8, 0), [255, 255, 255], 'gap is white');
  assert.deepEqual(pixel(p, 0, 9), [90, 90, 90]);
  const html = r.bundle['text/html'] as string;
  assert.equal(count(html, /<img src="data:image\/png;base64,/g), 3);
  assert.ok(html.includes('b&lt;'), 'labels escaped');
  // Float images in [0, 1] are scaled to bytes; an overlay changes the pixels it covers.
  const f = { data: new Float32Array(2 * 2 * 3).fill(0.5), height: 2, width: 2, channels: 3 };
  const plain = parsePng(imageGrid([f], { scale: 1, display: false }).png);
  assert.deepEqual(pixel(plain, 0, 0), [128, 128, 128]);
  const over = parsePng(
    imageGrid([f], { scale: 1, display: false, overlays: [{ data: [1, 0, 0, 0], height: 2, width: 2 }] }).png,
  );
  assert.notDeepEqual(pixel(over, 0, 0), pixel(over, 1, 1));
  assert.throws(() => imageGrid([img(1)], { labels: ['a', 'b'] }), /2 labels for 1 images/);
  assert.throws(() => imageGrid([{ data: [1, 2], height: 2, width: 2, channels: 3 }]), /image 0 has 2 values/);
});

test('table renders arquero tables and row arrays as HTML with rows, and aligned text', () => {
  const t = aq.table({ method: ['Barlow', 'DINO'], knn: [81.23456, 79.5], epochs: [200, 100] });
  const r = table(t, { title: 'results', display: false });
  assert.equal(count(r.html, /<tr>/g), 3);
  assert.ok(r.html.includes('81.23') && !r.html.includes('81.23456'), 'numbers formatted to 4 digits');
  const rows = table(
    [
      { a: 'x', b: 1.5 },
      { a: 'long text', b: 10 },
    ],
    { display: false, limit: 1 },
  );
  assert.equal(count(rows.html, /<tr>/g), 2);
  assert.equal(rows.text, 'a    b\n-  ---\nx  1.5\n... 1 more rows');
  assert.throws(() => table(42 as never), /expected an arquero table/);
});

test('lib/notebook/asyncErrors records unhandled rejections and timer exceptions (child process)', () => {
  const code = `
    const nb = require(${JSON.stringify(join(__dirname, '..', 'lib', 'notebook', 'asyncErrors.ts'))});
    nb.installAsyncErrorCollector();
    nb.installAsyncErrorCollector(); // idempotent
    Promise.reject(new Error('late rejection'));
    setTimeout(() => { throw new Error('timer throw'); }, 5);
    setTimeout(() => {
      const errs = nb.asyncErrors();
      let thrown = '';
      try { nb.assertNoAsyncErrors(); } catch (e) { thrown = e.message; }
      console.log(JSON.stringify({ errs: errs.map((e) => [e.kind, e.message]), thrown, after: nb.asyncErrors().length }));
    }, 50);`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', code], {
    encoding: 'utf8',
    cwd: join(__dirname, '..'),
  });
  const res = JSON.parse(out.trim().split('\n').pop() as string);
  assert.deepEqual(res.errs, [
    ['unhandledRejection', 'Error: late rejection'],
    ['uncaughtException', 'Error: timer throw'],
  ]);
  assert.match(res.thrown, /^2 asynchronous error\(s\)/);
  assert.equal(res.after, 0);
});

test('integer x values (epochs) get integer ticks: no 1.5 epochs between two points', async () => {
  const svg = await renderSvg(
    lineChartSpec([{ name: 'kNN', x: [1, 2], y: [12, 13] }], { xLabel: 'epoch', points: true }),
  );
  const axes = [...svg.matchAll(/<g class="mark-text role-axis-label"[^>]*>(.*?)<\/g>/gs)].map((g) =>
    [...g[1].matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]),
  );
  assert.deepEqual(axes[0], ['1', '2']);
  const steps = lineChartSpec({ loss: Array.from({ length: 500 }, (_, i) => 1 / (i + 1)) }) as {
    encoding: { x: { axis?: unknown } };
  };
  assert.deepEqual(steps.encoding.x.axis, { tickMinStep: 1, format: 'd' }, 'a long integer range asks for whole steps');
  const frac = lineChartSpec([{ name: 'a', x: [0.5, 1.5], y: [1, 2] }]) as { encoding: { x: { axis?: unknown } } };
  assert.equal(frac.encoding.x.axis, undefined);
});

test('a progress bar that was never updated draws nothing on done() (a reloaded run shows no empty bar)', () => {
  const writes: string[] = [];
  const stream = {
    isTTY: true,
    columns: 200,
    write: (s: string) => (writes.push(s), true),
  } as unknown as NodeJS.WriteStream;
  const bar = progress({ total: 16, stream, mode: 'tty' });
  bar.done();
  assert.deepEqual(writes, []);
  const k = fakeTslab();
  try {
    progress({ total: 16, label: 'Barlow Twins' }).done();
    assert.equal(k.sent.length, 0, 'no display in a notebook either');
  } finally {
    k.remove();
  }
});

test("attentionGrids: the images with their classes, then each head's map over each image", () => {
  const set = { images: Uint8Array.from({ length: 3 * 3072 }, (_, i) => (i * 5) % 256), labels: [2, 0, 1], n: 3 };
  // 2 images x 3 heads, 2 x 2 patches; head h of image i attends to patch (i + h) % 4 only.
  const maps = [0, 1].map((i) =>
    [0, 1, 2].map((h) => Float32Array.from({ length: 4 }, (_, p) => (p === (i + h) % 4 ? 1 : 0))),
  );
  const g = attentionGrids({ maps, grid: 2, heads: 3 }, set, ['cat', 'dog', 'ship'], {
    display: false,
    imagesTitle: 'validation images',
  });
  const captions = (r: { bundle: Record<string, unknown> }) =>
    [...(r.bundle['text/html'] as string).matchAll(/overflow-wrap:anywhere">([^<]*)<\/div>/g)].map((x) => x[1]);
  assert.deepEqual(captions(g.images), ['ship', 'cat']);
  assert.match(g.images.bundle['text/html'] as string, /validation images/);
  assert.deepEqual(captions(g.attention), [
    'ship, head 0',
    'ship, head 1',
    'ship, head 2',
    'cat, head 0',
    'cat, head 1',
    'cat, head 2',
  ]);
  assert.equal(g.attention.width, 3 * 96 + 2 * 2, 'one column per head, upscaled 3x');
  assert.equal(g.attention.height, 2 * 96 + 2);
  // The attended patch is brighter (inferno's top) than the others: image 0, head 0 attends to the top-left quarter.
  const p = parsePng(g.attention.png);
  const lum = (x: number, y: number) => pixel(p, x, y).reduce((a, b) => a + b, 0);
  assert.ok(lum(10, 10) > lum(80, 80) + 100, `attended ${lum(10, 10)}, other ${lum(80, 80)}`);
  // Without labels (an unlabelled image folder) the captions number the images.
  const unlabelled = attentionGrids({ maps, grid: 2, heads: 3 }, { images: set.images, n: 3 }, [], { display: false });
  assert.deepEqual(captions(unlabelled.images), ['image 0', 'image 1']);
  assert.deepEqual(captions(unlabelled.attention).slice(0, 2), ['image 0, head 0', 'image 0, head 1']);
  assert.throws(
    () => attentionGrids({ maps: [[maps[0][0]]], grid: 2, heads: 3 }, set, ['cat'], { display: false }),
    /image 0 has 1 maps, expected 3 heads/,
  );
  assert.throws(
    () =>
      attentionGrids(
        { maps: [[new Float32Array(3), new Float32Array(4), new Float32Array(4)]], grid: 2, heads: 3 },
        set,
        ['cat'],
        { display: false },
      ),
    /map 0\/0 has 3 values, expected 2 x 2/,
  );
  assert.throws(
    () => attentionGrids({ maps: [], grid: 2, heads: 3 }, set, ['cat'], { display: false }),
    /no attention maps/,
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { inflateSync } from 'zlib';
import * as tf from '@tensorflow/tfjs';
import { umapLayout } from '../lib/viz/umap';
import { nearestNeighbours } from '../lib/eval/neighbours';
import { embeddingExplorer, classColors, EmbeddingPanel, EmbeddingSample } from '../lib/viz/embeddingExplorer';
import { plotlyLibraryHtml, plotlyBootstrap, PLOTLY_PLOT_ATTRIBUTE } from '../lib/viz/plotly';
import { neighbourGrid } from '../lib/viz/neighbourGrid';
import { embedRuns, pickRuns } from '../lib/protocol/runEmbeddings';
import { buildBackbone } from '../lib/models/index';
import { ParamStore } from '../lib/nn/params';
import { saveCheckpoint, StoredTensor } from '../lib/train/checkpoint';
import { RunRecord, writeRunRecord } from '../lib/train/runRecord';
import { Rng } from '../lib/util/rng';
import { unfilterScanlines } from './png-helpers';
import { scatterPng } from '../lib/viz/scatterPng';

/** The inflated IDAT data of a PNG. */
function parseIdat(png: Buffer): Buffer {
  let idat = Buffer.alloc(0);
  for (let p = 8; p < png.length;) {
    const len = png.readUInt32BE(p);
    if (png.toString('latin1', p + 4, p + 8) === 'IDAT') idat = Buffer.concat([idat, png.subarray(p + 8, p + 8 + len)]);
    p += 12 + len;
  }
  return inflateSync(idat);
}

/** n points in `classes` well separated Gaussian clusters in `dim` dimensions (centres random unit vectors x 4, noise 1). */
function clusters(n: number, classes: number, dim: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const r = new Rng(seed);
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => r.normal()));
  for (const c of centres) {
    const s = Math.hypot(...c);
    c.forEach((v, i) => (c[i] = (4 * v) / s));
  }
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % classes;
    for (let d = 0; d < dim; d++) x[i * dim + d] = centres[labels[i]][d] + 0.6 * r.normal();
  }
  return { x, labels };
}

/** Leave-one-out k-NN (majority vote, Euclidean) accuracy of 2-D points: computed here, not with the library. */
function knn2d(xy: Float32Array, labels: Int32Array, k: number, classes: number): number {
  const n = labels.length;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const d: Array<[number, number]> = [];
    for (let j = 0; j < n; j++)
      if (j !== i) d.push([(xy[2 * i] - xy[2 * j]) ** 2 + (xy[2 * i + 1] - xy[2 * j + 1]) ** 2, labels[j]]);
    d.sort((a, b) => a[0] - b[0]);
    const votes = new Array<number>(classes).fill(0);
    for (const [, l] of d.slice(0, k)) votes[l]++;
    if (votes.indexOf(Math.max(...votes)) === labels[i]) correct++;
  }
  return correct / n;
}

test('UMAP: the same seed gives the same layout bit for bit, using no randomness but the seed; another seed another layout', async () => {
  const { x } = clusters(120, 4, 16, 1);
  const random = Math.random;
  Math.random = () => {
    throw new Error('Math.random used');
  };
  let a: Float32Array;
  let b: Float32Array;
  let c: Float32Array;
  const progress: number[] = [];
  try {
    a = await umapLayout(x, 16, { seed: 7, nEpochs: 60, onProgress: (d, t) => progress.push(d / t) });
    b = await umapLayout(x, 16, { seed: 7, nEpochs: 60 });
    c = await umapLayout(x, 16, { seed: 8, nEpochs: 60 });
  } finally {
    Math.random = random;
  }
  assert.equal(a.length, 240);
  assert.ok(a.every(Number.isFinite));
  assert.deepEqual([...a], [...b]);
  assert.notDeepEqual([...a], [...c]);
  assert.deepEqual(progress, [25 / 60, 50 / 60, 1]);
  await assert.rejects(umapLayout(new Float32Array(10), 3), /10 values are not whole rows of dim 3/);
  await assert.rejects(umapLayout(new Float32Array(4), 2), /needs at least 3 rows, got 2/);
  await assert.rejects(umapLayout(x, 16, { nNeighbors: 1 }), /nNeighbors must be an integer >= 2/);
});

test('UMAP of class-separable features: a 2-D kNN on the layout is far above chance', async () => {
  const classes = 10;
  const { x, labels } = clusters(400, classes, 32, 2);
  const xy = await umapLayout(x, 32, { seed: 0 });
  const acc = knn2d(xy, labels, 5, classes);
  console.log(`2-D 5-NN accuracy on the UMAP layout of 10 separable classes: ${(100 * acc).toFixed(1)}% (chance 10%)`);
  assert.ok(acc > 0.9, `2-D kNN accuracy ${acc}`);
  // And the control: the same points with shuffled labels are at chance.
  const shuffled = Int32Array.from(labels);
  new Rng(3).permutation(shuffled.length).forEach((p, i) => (shuffled[i] = labels[p]));
  assert.ok(knn2d(xy, shuffled, 5, classes) < 0.25);
});

test('nearestNeighbours: cosine top-k equals a brute-force float64 search, chunk by chunk', async () => {
  const r = new Rng(4);
  const dim = 6;
  const bank = Float32Array.from({ length: 50 * dim }, () => r.normal());
  const queries = Float32Array.from({ length: 13 * dim }, () => r.normal());
  const before = tf.memory().numTensors;
  const nb = await nearestNeighbours(bank, queries, dim, 5, { chunkSize: 4 });
  assert.equal(tf.memory().numTensors, before);
  const cos = (a: Float32Array, i: number, b: Float32Array, j: number): number => {
    let d = 0,
      na = 0,
      nb2 = 0;
    for (let t = 0; t < dim; t++) {
      d += a[i * dim + t] * b[j * dim + t];
      na += a[i * dim + t] ** 2;
      nb2 += b[j * dim + t] ** 2;
    }
    return d / Math.sqrt(na * nb2);
  };
  for (let q = 0; q < 13; q++) {
    const order = Array.from({ length: 50 }, (_, j) => j).sort(
      (x, y) => cos(queries, q, bank, y) - cos(queries, q, bank, x),
    );
    assert.deepEqual([...nb.indices.subarray(q * 5, q * 5 + 5)], order.slice(0, 5), `query ${q}`);
    for (let j = 0; j < 5; j++)
      assert.ok(Math.abs(nb.similarities[q * 5 + j] - cos(queries, q, bank, order[j])) < 1e-5);
  }
  await assert.rejects(nearestNeighbours(bank, queries, dim, 51), /k must be an integer in \[1, 50\]/);
});

function sampleOf(n: number, seed: number): EmbeddingSample & { labels: Int32Array } {
  const r = new Rng(seed);
  return {
    images: Uint8Array.from({ length: n * 3072 }, () => r.int(256)),
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    n,
    classNames: ['cat', 'dog', 'ship'],
  };
}

function panel(label: string, n: number, k: number, seed: number): EmbeddingPanel {
  const r = new Rng(seed);
  return {
    label,
    xy: Float32Array.from({ length: 2 * n }, () => r.normal()),
    knnPred: Int32Array.from({ length: n }, () => r.int(3)),
    neighbourLabels: Int32Array.from({ length: n * k }, () => r.int(3)),
    k,
  };
}

test('the explorer: one self-contained HTML output with the static fallback, the data and the plot script', async () => {
  const s = sampleOf(30, 5);
  const panels = [panel('barlow', 30, 4, 1), panel('random-init', 30, 4, 2)];
  const res = await embeddingExplorer(panels, s, { title: 'test <embeddings>', display: false, showNeighbours: 3 });
  assert.equal(res.shown, false);
  assert.deepEqual(Object.keys(res.bundle).sort(), ['text/html', 'text/plain']);
  assert.equal(res.bundle['text/html'], res.html);
  assert.ok(res.html.includes(`${PLOTLY_PLOT_ATTRIBUTE}="scatter"`));
  assert.ok(res.html.includes('test &lt;embeddings&gt;'), 'the title is escaped');
  // The fallback: the panels as a PNG (data-URI image) between HTML panel titles and a legend of the class names.
  const m = /<div id="[^"]+-fallback"[^>]*>([\s\S]*?)<div id="[^"]+-info"/.exec(res.html);
  assert.ok(m, 'fallback present');
  const img = /<img alt="[^"]*" src="data:image\/png;base64,([^"]+)" width="(\d+)" height="(\d+)"/.exec(m![1]);
  assert.ok(img, 'fallback image present');
  assert.ok(Buffer.from(img![1], 'base64').equals(res.png));
  assert.deepEqual([Number(img![2]), Number(img![3])], [2 * 260 + 10, 260]);
  assert.deepEqual(
    [...m![1].matchAll(/font-weight:bold">([^<]*)<\/div>/g)].map((x) => x[1]),
    ['barlow', 'random-init'],
  );
  assert.deepEqual(
    [...m![1].matchAll(/●<\/span> ([^<]*)<\/span>/g)].map((x) => x[1]),
    ['cat', 'dog', 'ship'],
  );
  // The data: every coordinate, prediction and label, and the sprite of all thumbnails.
  const script = res.html.slice(res.html.indexOf('<script'), res.html.lastIndexOf('</script>'));
  assert.equal((res.html.match(/<\/script>/g) ?? []).length, 1, 'nothing in the data ends the script early');
  const data = JSON.parse(/var D = (\{.*?\}), root =/s.exec(script)![1]) as {
    n: number;
    labels: number[];
    classes: string[];
    panels: Array<{ label: string; xy: number[]; pred: number[]; nb: number[]; k: number }>;
    sprite: string;
    cols: number;
    show: number;
    colors: string[];
  };
  assert.equal(data.n, 30);
  assert.deepEqual(data.labels, Array.from(s.labels));
  assert.deepEqual(data.colors, classColors(3));
  assert.equal(data.show, 3);
  for (const [i, p] of data.panels.entries()) {
    assert.equal(p.label, panels[i].label);
    p.xy.forEach((v, j) => assert.ok(Math.abs(v - panels[i].xy[j]) <= 5e-4));
    assert.deepEqual(p.pred, Array.from(panels[i].knnPred));
    assert.deepEqual(p.nb, Array.from(panels[i].neighbourLabels));
  }
  // The sprite decodes to the thumbnails: image 7 sits at column 7 % cols, row floor(7 / cols).
  const png = Buffer.from(data.sprite.split(',')[1], 'base64');
  const w = png.readUInt32BE(16);
  const h = png.readUInt32BE(20);
  assert.deepEqual([w, h], [data.cols * 32, Math.ceil(30 / data.cols) * 32]);
  let idat = Buffer.alloc(0);
  for (let p = 8; p < png.length;) {
    const len = png.readUInt32BE(p);
    if (png.toString('latin1', p + 4, p + 8) === 'IDAT') idat = Buffer.concat([idat, png.subarray(p + 8, p + 8 + len)]);
    p += 12 + len;
  }
  const { pixels } = unfilterScanlines(inflateSync(idat), w, h, 3);
  const px = (x: number, y: number): number[] => [...pixels.subarray((y * w + x) * 3, (y * w + x) * 3 + 3)];
  const [cx, cy] = [(7 % data.cols) * 32, Math.floor(7 / data.cols) * 32];
  // Thumbnails keep 4 bits per channel (DEFAULT_EMBEDDING_EXPLORER_OPTIONS.thumbBits): each value is the nearest of 16 levels.
  const level4 = (v: number) => Math.round((Math.round((v * 15) / 255) * 255) / 15);
  assert.deepEqual(
    px(cx + 5, cy + 9),
    [...s.images.subarray(7 * 3072 + (9 * 32 + 5) * 3, 7 * 3072 + (9 * 32 + 5) * 3 + 3)].map(level4),
  );
  assert.match(
    res.html,
    new RegExp(`${PLOTLY_PLOT_ATTRIBUTE}="scatter" data-points="60"`),
    'the points a full drawing has: 2 panels x 30 images',
  );
  // Inputs are checked.
  await assert.rejects(
    embeddingExplorer([panel('a', 29, 4, 1)], s, { display: false }),
    /panel "a" has 29 points, the sample 30 images/,
  );
  await assert.rejects(embeddingExplorer([], s, { display: false }), /no panels/);
});

test('the static panels: every point a dot of its class colour where the layout puts it; plotly is inlined with define and module shadowed', () => {
  // Two panels, 3 points: a triangle, and the same points mirrored; point 2 of the second panel alone in a corner.
  const xy = [Float32Array.from([0, 0, 10, 0, 5, 10]), Float32Array.from([10, 0, 0, 0, 5, -10])];
  const colors = classColors(3);
  const r = scatterPng(xy, [0, 1, 2], colors, { panelWidth: 100, panelHeight: 80, gap: 10, radius: 3, opacity: 1 });
  assert.deepEqual([r.width, r.height], [210, 80]);
  const p = unfilterScanlines(parseIdat(r.png), 210, 80, 3).pixels;
  const at = (x: number, y: number) => [
    ...p.subarray((Math.round(y) * 210 + Math.round(x)) * 3, (Math.round(y) * 210 + Math.round(x)) * 3 + 3),
  ];
  const hex = (c: string) => [1, 3, 5].map((k) => parseInt(c.slice(k, k + 2), 16));
  for (const m of [0, 1])
    for (let i = 0; i < 3; i++)
      assert.deepEqual(at(r.positions[m][2 * i], r.positions[m][2 * i + 1]), hex(colors[i]), `panel ${m}, point ${i}`);
  // Scaled to each panel's extent inside its padding, y up: panel 0's point 2 (y = 10, the top) sits at the top edge of the inner area.
  assert.deepEqual(
    [...r.positions[0]].map((v) => Math.round(v)),
    [8, 71, 91, 71, 50, 8],
  );
  assert.deepEqual(
    [...r.positions[1]].map((v) => Math.round(v)),
    [201, 8, 118, 8, 160, 71],
  );
  assert.deepEqual(at(30, 40), [255, 255, 255], 'white between the dots');
  assert.deepEqual(at(0, 40), [221, 221, 221], 'a light frame');
  // All points at one place: drawn in the middle, no NaN.
  const same = scatterPng([Float32Array.from([1, 1, 1, 1])], [0, 0], colors, { panelWidth: 40, panelHeight: 40 });
  assert.deepEqual(
    [...same.positions[0]].map((v) => Math.round(v)),
    [20, 20, 20, 20].map((v) => v - 0.5).map(Math.round),
  );
  assert.throws(
    () => scatterPng([Float32Array.from([0, 0])], [3], colors),
    /point 0 is in group 3, not one of the 3 colours/,
  );
  assert.throws(() => scatterPng([Float32Array.from([0, 0, 1])], [0], colors), /panel 0 has 1.5 points, expected 1/);
  assert.throws(() => scatterPng([Float32Array.from([0, 0])], [0], ['red']), /colours must be #rrggbb, got "red"/);
  assert.equal(classColors(12).length, 12);
  const lib = plotlyLibraryHtml();
  assert.ok(
    lib.length > 900_000 && lib.length < 1_500_000,
    `plotly's basic bundle is inlined (${lib.length} characters), not the 4.6 MB full one`,
  );
  assert.match(lib, /plotly\.js [\d.]+, basic bundle/);
  assert.match(lib, /if \(!window\.Plotly\) \{\n\(function \(define, module, exports\) \{\n/);
  assert.match(
    lib,
    /\}\)\.call\(window\);\n\}\nwindow\.dispatchEvent\(new Event\('dinotwins-plotly-ready'\)\);\n<\/script>$/,
  );
  assert.match(
    plotlyBootstrap('function (P) {}', 'note'),
    /if \(window\.Plotly\) \{ draw\(window\.Plotly\); return; \}/,
  );
});

test('neighbourGrid: one row per query, the query then its neighbours, other classes marked', () => {
  const queries = { images: Uint8Array.from({ length: 3 * 3072 }, (_, i) => i % 251), labels: [0, 1, 2], n: 3 };
  const bank = { images: Uint8Array.from({ length: 4 * 3072 }, (_, i) => (i * 7) % 253), labels: [0, 1, 1, 2], n: 4 };
  const indices = Int32Array.from([0, 1, 1, 2, 3, 0]); // k = 2
  const g = neighbourGrid(
    queries,
    [2, 0],
    bank,
    { indices, k: 2 },
    { classNames: ['cat', 'dog', 'ship'], display: false, title: 'r' },
  );
  assert.equal(g.width, 3 * 64 + 2 * 2);
  assert.equal(g.height, 2 * 64 + 2);
  const html = g.bundle['text/html'] as string;
  const captions = [...html.matchAll(/overflow-wrap:anywhere">([^<]*)<\/div>/g)].map((x) => x[1]);
  assert.deepEqual(captions, ['query: ship', 'ship', 'cat ✗', 'query: cat', 'cat', 'dog ✗']);
  // Thumbnails keep 4 bits per channel by default: the first (query 2) decodes to its pixels, each at the nearest of 16 levels.
  const firstPixels = (h: string) => {
    const png = Buffer.from(/src="data:image\/png;base64,([^"]+)"/.exec(h)![1], 'base64');
    let idat = Buffer.alloc(0);
    for (let p = 8; p < png.length;) {
      const len = png.readUInt32BE(p);
      if (png.toString('latin1', p + 4, p + 8) === 'IDAT')
        idat = Buffer.concat([idat, png.subarray(p + 8, p + 8 + len)]);
      p += 12 + len;
    }
    return [...unfilterScanlines(inflateSync(idat), 32, 32, 3).pixels];
  };
  const level4 = (v: number) => Math.round((Math.round((v * 15) / 255) * 255) / 15);
  const query2 = [...queries.images.subarray(2 * 3072, 3 * 3072)];
  assert.deepEqual(firstPixels(html), query2.map(level4));
  const lossless = neighbourGrid(
    queries,
    [2, 0],
    bank,
    { indices, k: 2 },
    { classNames: ['cat', 'dog', 'ship'], display: false, title: 'r', bits: 8 },
  );
  assert.deepEqual(firstPixels(lossless.bundle['text/html'] as string), query2, 'bits: 8 keeps every value');
  const one = neighbourGrid(
    queries,
    [1],
    bank,
    { indices, k: 2 },
    { classNames: ['cat', 'dog', 'ship'], display: false, show: 1 },
  );
  assert.deepEqual(
    [...(one.bundle['text/html'] as string).matchAll(/overflow-wrap:anywhere">([^<]*)<\/div>/g)].map((x) => x[1]),
    ['query: dog', 'dog'],
  );
  assert.throws(
    () => neighbourGrid(queries, [0], bank, { indices, k: 2 }, { classNames: [], display: false, show: 3 }),
    /show must be an integer in \[0, 2\]/,
  );
  assert.throws(
    () => neighbourGrid(queries, [3], bank, { indices, k: 2 }, { classNames: [], display: false }),
    /query row 3 is not in \[0, 3\)/,
  );
  assert.throws(
    () => neighbourGrid(queries, [0], bank, { indices: indices.subarray(1), k: 2 }, { classNames: [], display: false }),
    /5 neighbour indices, expected 3 queries x k \(2\)/,
  );
});

test('embedRuns: the latest finished run per method, its features, kNN, neighbours and layout; nothing leaked', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embed-'));
  const spec = { kind: 'resnet' as const, depth: 18 as const, width: 2 };
  try {
    const records: RunRecord[] = [];
    for (const [k, id] of ['old', 'new'].entries()) {
      const ps = new ParamStore('t');
      buildBackbone(spec).init(ps, k + 1, 'backbone.');
      const student = new Map<string, StoredTensor>(
        (await ps.snapshot()).map((s) => [s.name, { shape: s.shape, values: s.values }]),
      );
      ps.dispose();
      const ckpt = path.join(dir, id, 'checkpoint.ckpt');
      fs.mkdirSync(path.dirname(ckpt));
      saveCheckpoint(ckpt, { meta: {}, groups: { student } });
      const rec: RunRecord = {
        format: 'dinotwins-run/1',
        id,
        kind: 'baseline',
        status: 'done',
        method: 'random-init',
        budget: 'custom',
        config: { backbone: spec },
        backend: null,
        git: { commit: null, dirty: null },
        seed: 0,
        data: {},
        startedAt: `2026-01-0${k + 1}`,
        updatedAt: '',
        seconds: 0,
        step: 0,
        totalSteps: 0,
        epochs: [],
        steps: [],
        results: {},
        checkpoint: ckpt,
        resumedFrom: [],
      };
      writeRunRecord(path.join(dir, id, 'record.json'), rec);
      records.push(rec);
    }
    const { chosen, missing } = pickRuns(
      [...records, { ...records[0], id: 'failed', status: 'failed', startedAt: '2027' }],
      ['random-init', 'barlow'],
      spec,
    );
    assert.deepEqual(
      chosen.map((r) => r.id),
      ['new'],
    );
    assert.deepEqual(missing, ['barlow']);
    assert.deepEqual(pickRuns(records, ['random-init'], { ...spec, width: 4 }).missing, ['random-init']);
    const r = new Rng(1);
    const set = (n: number) => ({
      images: Uint8Array.from({ length: n * 3072 }, () => r.int(256)),
      labels: Int32Array.from({ length: n }, (_, i) => i % 3),
      n,
    });
    const bank = set(12);
    const sample = set(9);
    const before = tf.memory().numTensors;
    const stages = new Set<string>();
    const [e] = await embedRuns(chosen, bank, sample, {
      numClasses: 3,
      neighbours: 4,
      umap: { seed: 1, nEpochs: 20 },
      onProgress: (l) => stages.add(l),
    });
    assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
    assert.deepEqual(
      [...stages],
      ['random-init: features of the bank', 'random-init: features of the sample', 'random-init: UMAP'],
    );
    assert.equal(e.label, 'random-init');
    assert.equal(e.runId, 'new');
    assert.equal(e.dim, 16);
    assert.equal(e.xy.length, 18);
    assert.equal(e.neighbours.length, 36);
    assert.deepEqual(
      [...e.neighbourLabels],
      [...e.neighbours].map((b) => bank.labels[b]),
    );
    assert.equal(e.knnPred.length, 9);
    assert.ok(e.knnTop1 !== null && e.knnTop1 >= 0 && e.knnTop1 <= 100);
    const same = [...e.neighbourLabels].filter((l, j) => l === sample.labels[Math.floor(j / 4)]).length;
    assert.equal(e.sameClassNeighbours, (100 * same) / 36);
    await assert.rejects(
      embedRuns(chosen, bank, sample, { numClasses: 3, neighbours: 13 }),
      /neighbours must be an integer in \[1, 12\]/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

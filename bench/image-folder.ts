/**
 * Image-folder benchmark (lib/data/imageFolder.ts): decode + resize throughput and first against cached load.
 * Not a test: run it on a quiet machine and copy the table into bench/RESULTS.md.
 *
 *   npx tsx bench/image-folder.ts [--jpegs 2000] [--pngs 50000] [--size 32] [--concurrency 4] [--dir DIR] [--json out.json]
 *   npx tsx bench/image-folder.ts --jpegs 40 --pngs 200      (a quick check that it runs)
 *
 * It generates, under a temp folder (or --dir, reused when already there):
 *   - `--jpegs` 256x256 JPEGs (quality 90, smooth gradients plus noise, so files are of photo-like size);
 *   - `--pngs` CIFAR-sized 32x32 RGB PNGs;
 * in 10 class folders each, and reports for both sets:
 *   - decode + resize: decodeFiles alone (read, hash, sharp decode, resize to --size), images/s;
 *   - first load: loadImageFolder with an empty cache (scan, decode, cache write, splits), images/s;
 *   - cached load: loadImageFolder again (scan + stat, manifest, pixel file, splits), seconds.
 * Goals (issue 26): >= 1,000 images/s for 256x256 JPEG -> 32x32; a cached load of 50,000 images under 2 s.
 * Generation time is not counted. The 1-minute load average is printed before and after each row.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  IMAGE_FOLDER_DEFAULTS,
  decodeFiles,
  decoderVersions,
  loadImageFolder,
  loadSharp,
  scanImageFolder,
} from '../lib/data/index';
import { encodePng } from '../lib/viz/png';
import { Rng } from '../lib/util/rng';

interface Row {
  set: string;
  images: number;
  what: string;
  seconds: number;
  imagesPerSecond: number;
  load: [number, number];
}

const CLASSES = 10;

/** Smooth colour gradients plus noise: compresses like a photo rather than like a flat fill. */
function photoLike(w: number, h: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  const [a, b, c] = [rng.uniform(0.5, 3), rng.uniform(0.5, 3), rng.uniform(0, 6)];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      out[o] = 128 + 100 * Math.sin((a * x) / w + c) + rng.uniform(-20, 20);
      out[o + 1] = 128 + 100 * Math.cos((b * y) / h) + rng.uniform(-20, 20);
      out[o + 2] = 128 + 90 * Math.sin(((a + b) * (x + y)) / (w + h)) + rng.uniform(-20, 20);
    }
  }
  return out;
}

/** Writes `n` images into `dir/<class>/` unless a marker says they are there already. */
async function generate(dir: string, n: number, kind: 'jpeg' | 'png'): Promise<void> {
  const marker = path.join(dir, '.bench-generated');
  if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === `${kind} ${n}`) return;
  fs.rmSync(dir, { recursive: true, force: true });
  const sharp = await loadSharp();
  const rng = new Rng(n);
  for (let c = 0; c < CLASSES; c++) fs.mkdirSync(path.join(dir, `class-${c}`), { recursive: true });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const file = path.join(
      dir,
      `class-${i % CLASSES}`,
      `${String(i).padStart(6, '0')}.${kind === 'jpeg' ? 'jpg' : 'png'}`,
    );
    if (kind === 'jpeg') {
      await sharp(Buffer.from(photoLike(256, 256, rng)), { raw: { width: 256, height: 256, channels: 3 } })
        .jpeg({ quality: 90 })
        .toFile(file);
    } else {
      fs.writeFileSync(file, encodePng(photoLike(32, 32, rng), 32, 32, 3));
    }
  }
  fs.writeFileSync(marker, `${kind} ${n}`);
  console.log(
    `generated ${n} ${kind === 'jpeg' ? '256x256 JPEGs' : '32x32 PNGs'} in ${dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
}

async function measure(set: string, dir: string, size: number, concurrency: number, rows: Row[]): Promise<void> {
  const timed = async (what: string, n: number, fn: () => Promise<unknown>) => {
    const l0 = os.loadavg()[0];
    const t0 = performance.now();
    await fn();
    const seconds = (performance.now() - t0) / 1000;
    const r: Row = { set, images: n, what, seconds, imagesPerSecond: n / seconds, load: [l0, os.loadavg()[0]] };
    rows.push(r);
    console.log(
      `${set.padEnd(14)} ${what.padEnd(16)} ${String(n).padStart(7)} images ${seconds.toFixed(2).padStart(8)} s ${r.imagesPerSecond.toFixed(0).padStart(8)} img/s   load ${r.load.map((x) => x.toFixed(1)).join(' -> ')}`,
    );
  };
  const scan = scanImageFolder(dir, { labels: 'auto' });
  const tasks = scan.files.map((f, row) => ({ file: path.join(dir, f.path), row }));
  const out = new Uint8Array(tasks.length * size * size * 3);
  await timed('decode + resize', tasks.length, async () => {
    const r = await decodeFiles(tasks, out, { size, concurrency });
    if (r.failed.length) throw new Error(`${r.failed.length} files failed: ${r.failed[0].reason}`);
  });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-bench-cache-'));
  try {
    const opts = { path: dir, dataDir, imageSize: size, concurrency, log: false as const };
    await timed('first load', tasks.length, () => loadImageFolder(opts));
    await timed('cached load', tasks.length, async () => {
      const d = await loadImageFolder(opts);
      if (d.cache.status !== 'hit') throw new Error(`expected a cache hit, got ${d.cache.status}`);
    });
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      jpegs: { type: 'string', default: '2000' },
      pngs: { type: 'string', default: '50000' },
      size: { type: 'string', default: String(IMAGE_FOLDER_DEFAULTS.imageSize) },
      concurrency: { type: 'string', default: String(IMAGE_FOLDER_DEFAULTS.concurrency) },
      dir: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const int = (v: string | undefined, name: string) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new Error(`--${name} must be a non-negative integer, got '${v}'`);
    return x;
  };
  const [jpegs, pngs, size, concurrency] = [
    int(values.jpegs, 'jpegs'),
    int(values.pngs, 'pngs'),
    int(values.size, 'size'),
    int(values.concurrency, 'concurrency'),
  ];
  const root = values.dir ? path.resolve(values.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'dt-bench-images-'));
  const versions = await decoderVersions();
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `image-folder bench: ${cpu}, ${os.availableParallelism()} cores, sharp ${versions.sharp} / libvips ${versions.libvips}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, concurrency ${concurrency}, store size ${size}`,
  );
  const rows: Row[] = [];
  try {
    if (jpegs > 0) {
      const dir = path.join(root, `jpeg256-${jpegs}`);
      await generate(dir, jpegs, 'jpeg');
      await measure('jpeg 256x256', dir, size, concurrency, rows);
    }
    if (pngs > 0) {
      const dir = path.join(root, `png32-${pngs}`);
      await generate(dir, pngs, 'png');
      await measure('png 32x32', dir, size, concurrency, rows);
    }
  } finally {
    if (!values.dir) fs.rmSync(root, { recursive: true, force: true });
  }
  if (values.json)
    fs.writeFileSync(
      values.json,
      JSON.stringify({ cpu, cores: os.availableParallelism(), ...versions, concurrency, size, rows }, null, 1) + '\n',
    );
}

main().catch((e: unknown) => {
  console.error(`bench/image-folder: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});

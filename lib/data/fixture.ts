/**
 * A small synthetic CIFAR-10 look-alike in the exact binary layout (six batch files + batches.meta.txt,
 * optionally a .tar.gz), for tests and for notebooks in CI when the real data is absent.
 *
 * Images are learnable, not noise: each class has its own shape (disc, square, stripes, ...) and
 * colour pair, with per-image jitter in position, size and colour plus Gaussian pixel noise, so a
 * kNN or a short self-supervised run on the fixture should beat chance clearly.
 * Labels are exactly balanced inside every batch (recordsPerBatch / 10 per class) and shuffled.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tar from 'tar';
import { Rng, deriveSeed } from '../util/rng';
import {
  BATCHES_DIR,
  BATCH_FILES,
  IMAGE_SIZE,
  META_FILE,
  NUM_CLASSES,
  PIXELS_PER_IMAGE,
  RECORD_BYTES,
  TARBALL_NAME,
  TEST_FILE,
  TRAIN_FILES,
  encodeRecord,
  type BatchFile,
  type Split,
} from './format';
import { md5Hex, type FileCheck } from './verify';

/** The official class names, in label order. */
export const CIFAR10_CLASS_NAMES = Object.freeze([
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
]);

export interface FixtureOptions {
  /** Records in each of the six batch files; a multiple of 10. Default 100. */
  recordsPerBatch?: number;
  /** Seed for labels, jitter and noise. Default 0. */
  seed?: number;
  /** Standard deviation of the Gaussian pixel noise, in 0-255 units. Default 20. */
  noise?: number;
  /** Also write `<root>/cifar-10-binary.tar.gz` holding `cifar-10-batches-bin/`. Default false. */
  tarball?: boolean;
}

export const FIXTURE_DEFAULTS: Readonly<Required<FixtureOptions>> = Object.freeze({
  recordsPerBatch: 100,
  seed: 0,
  noise: 20,
  tarball: false,
});

/** What `writeCifar10Fixture` wrote. */
export interface Fixture {
  /** The folder given to the writer. */
  root: string;
  /** `<root>/cifar-10-batches-bin`. */
  folder: string;
  /** `<root>/cifar-10-binary.tar.gz`, when asked for. */
  tarball?: string;
  /** Size and MD5 of every batch file: pass as `checksums` to loadCifar10. */
  checksums: Record<BatchFile, FileCheck>;
  recordsPerBatch: number;
  classNames: string[];
}

// Per class: foreground and background colours (RGB).
const PALETTE: ReadonlyArray<readonly [readonly number[], readonly number[]]> = [
  [
    [235, 235, 245],
    [70, 120, 200],
  ], // airplane: light disc on blue
  [
    [200, 40, 40],
    [90, 90, 90],
  ], // automobile: red square on grey
  [
    [240, 200, 60],
    [60, 140, 70],
  ], // bird: yellow horizontal stripes on green
  [
    [200, 150, 110],
    [60, 50, 40],
  ], // cat: tan vertical stripes on dark brown
  [
    [150, 110, 70],
    [120, 170, 90],
  ], // deer: brown diagonal stripes on light green
  [
    [240, 240, 240],
    [130, 80, 50],
  ], // dog: white/brown checkerboard
  [
    [60, 200, 80],
    [30, 60, 30],
  ], // frog: green ring on dark green
  [
    [110, 60, 30],
    [200, 190, 150],
  ], // horse: brown cross on sand
  [
    [40, 40, 60],
    [60, 160, 230],
  ], // ship: dark triangle on sky blue
  [
    [230, 140, 30],
    [50, 50, 70],
  ], // truck: orange vertical gradient bar on slate
];

/** Whether pixel (x, y) is foreground for class `c`, given the image's centre (cx, cy), scale s and phase. */
function inShape(c: number, x: number, y: number, cx: number, cy: number, s: number, phase: number): boolean {
  const dx = x - cx;
  const dy = y - cy;
  const r = 9 * s;
  switch (c) {
    case 0:
      return dx * dx + dy * dy <= r * r;
    case 1:
      return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
    case 2:
      return Math.floor((y + phase) / 3) % 2 === 0;
    case 3:
      return Math.floor((x + phase) / 3) % 2 === 0;
    case 4:
      return Math.floor((x + y + phase) / 4) % 2 === 0;
    case 5:
      return (Math.floor((x + phase) / 4) + Math.floor((y + phase) / 4)) % 2 === 0;
    case 6: {
      const d = Math.sqrt(dx * dx + dy * dy);
      return d <= r && d >= r * 0.55;
    }
    case 7:
      return (Math.abs(dx) <= 2.5 * s && Math.abs(dy) <= r) || (Math.abs(dy) <= 2.5 * s && Math.abs(dx) <= r);
    case 8:
      return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= (dy + r) * 0.6;
    default:
      return Math.abs(dx) <= r * 0.5;
  }
}

/** One image of class `c` (NHWC bytes, [32, 32, 3]) drawn from `rng`. */
function drawImage(c: number, rng: Rng, noise: number, out: Uint8Array, offset: number): void {
  const [fg, bg] = PALETTE[c];
  const cx = 15.5 + rng.uniform(-4, 4);
  const cy = 15.5 + rng.uniform(-4, 4);
  const s = rng.uniform(0.75, 1.25);
  const phase = rng.int(8);
  const jit = [rng.uniform(-20, 20), rng.uniform(-20, 20), rng.uniform(-20, 20)];
  for (let y = 0; y < IMAGE_SIZE; y++) {
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const col = inShape(c, x, y, cx, cy, s, phase) ? fg : bg;
      // class 9's bar fades from top to bottom; others are flat
      const shade = c === 9 && col === fg ? 0.6 + (0.4 * y) / (IMAGE_SIZE - 1) : 1;
      const o = offset + (y * IMAGE_SIZE + x) * 3;
      for (let k = 0; k < 3; k++) {
        const v = col[k] * shade + jit[k] + noise * rng.normal();
        out[o + k] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
      }
    }
  }
}

/** One batch of `n` records (n a multiple of 10), labels exactly balanced and shuffled. */
export function generateFixtureSplit(n: number, seed: number, noise = FIXTURE_DEFAULTS.noise): Split {
  if (!Number.isInteger(n) || n < NUM_CLASSES || n % NUM_CLASSES !== 0)
    throw new Error(`generateFixtureSplit: n must be a positive multiple of ${NUM_CLASSES}, got ${n}`);
  if (!(noise >= 0)) throw new Error(`generateFixtureSplit: noise must be >= 0, got ${noise}`);
  const rng = new Rng(seed);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) labels[i] = i % NUM_CLASSES;
  rng.shuffle(labels);
  const images = new Uint8Array(n * PIXELS_PER_IMAGE);
  for (let i = 0; i < n; i++) drawImage(labels[i], rng, noise, images, i * PIXELS_PER_IMAGE);
  return { images, labels, n };
}

/** The fixture's splits in memory (what loading the written files gives): train = batches 1-5 in order, test = the test batch. */
export function generateFixture(opts: FixtureOptions = {}): { train: Split; test: Split; classNames: string[] } {
  const o = { ...FIXTURE_DEFAULTS, ...opts };
  const batches = BATCH_FILES.map((_, b) => generateFixtureSplit(o.recordsPerBatch, deriveSeed(o.seed, b), o.noise));
  const nTrain = TRAIN_FILES.length * o.recordsPerBatch;
  const train: Split = { images: new Uint8Array(nTrain * PIXELS_PER_IMAGE), labels: new Uint8Array(nTrain), n: nTrain };
  TRAIN_FILES.forEach((_, b) => {
    train.images.set(batches[b].images, b * o.recordsPerBatch * PIXELS_PER_IMAGE);
    train.labels.set(batches[b].labels, b * o.recordsPerBatch);
  });
  return { train, test: batches[BATCH_FILES.length - 1], classNames: [...CIFAR10_CLASS_NAMES] };
}

/** Encodes a split into the planar binary record layout. */
export function encodeBatch(split: Split): Uint8Array {
  const buf = new Uint8Array(split.n * RECORD_BYTES);
  for (let i = 0; i < split.n; i++)
    encodeRecord(
      split.images.subarray(i * PIXELS_PER_IMAGE, (i + 1) * PIXELS_PER_IMAGE),
      split.labels[i],
      buf,
      i * RECORD_BYTES,
    );
  return buf;
}

/**
 * Writes the fixture under `root` as `cifar-10-batches-bin/` (and optionally the tarball beside it).
 * Same seed, same bytes. Returns the MD5 map to verify it with.
 */
export async function writeCifar10Fixture(root: string, opts: FixtureOptions = {}): Promise<Fixture> {
  const o = { ...FIXTURE_DEFAULTS, ...opts };
  const { train, test, classNames } = generateFixture(o);
  const folder = path.join(root, BATCHES_DIR);
  fs.mkdirSync(folder, { recursive: true });
  const checksums = {} as Record<BatchFile, FileCheck>;
  const per = o.recordsPerBatch * PIXELS_PER_IMAGE;
  BATCH_FILES.forEach((f, b) => {
    const split: Split =
      f === TEST_FILE
        ? test
        : {
            images: train.images.subarray(b * per, (b + 1) * per),
            labels: train.labels.subarray(b * o.recordsPerBatch, (b + 1) * o.recordsPerBatch),
            n: o.recordsPerBatch,
          };
    const bytes = encodeBatch(split);
    fs.writeFileSync(path.join(folder, f), bytes);
    checksums[f] = { md5: md5Hex(bytes), bytes: bytes.length };
  });
  // Like the official file: one name per line and a trailing blank line.
  fs.writeFileSync(path.join(folder, META_FILE), classNames.join('\n') + '\n\n');
  let tarball: string | undefined;
  if (o.tarball) {
    tarball = path.join(root, TARBALL_NAME);
    await tar.c({ gzip: true, file: tarball, cwd: root, portable: true, mtime: new Date('2009-01-01T00:00:00Z') }, [
      BATCHES_DIR,
    ]);
  }
  return { root, folder, tarball, checksums, recordsPerBatch: o.recordsPerBatch, classNames };
}

/** Ways to break a written fixture, for error-path tests. */
export type FixtureDamage =
  | 'flip-byte' // one pixel byte changed: same size, MD5 differs
  | 'truncate' // the file loses its last 1,000 bytes
  | 'bad-label' // record 0's label byte set to 10 (MD5 differs too: load with checksums 'none' to reach the label check)
  | 'remove'; // the file is deleted

/** Damages `file` (a batch file or batches.meta.txt) of the fixture folder in place. */
export function damageFixture(
  folder: string,
  damage: FixtureDamage,
  file: BatchFile | typeof META_FILE = 'data_batch_2.bin',
): void {
  const p = path.join(folder, file);
  if (!fs.existsSync(p)) throw new Error(`damageFixture: ${p} does not exist`);
  const buf = fs.readFileSync(p);
  switch (damage) {
    case 'flip-byte':
      buf[Math.min(buf.length - 1, RECORD_BYTES + 100)] ^= 0xff;
      fs.writeFileSync(p, buf);
      return;
    case 'truncate':
      fs.writeFileSync(p, buf.subarray(0, Math.max(0, buf.length - 1000)));
      return;
    case 'bad-label':
      buf[0] = NUM_CLASSES;
      fs.writeFileSync(p, buf);
      return;
    case 'remove':
      fs.rmSync(p);
      return;
    default:
      throw new Error(`damageFixture: unknown damage ${String(damage)}`);
  }
}

/**
 * Writes labelled images as PNG class folders (`DIR/<class>/<name>.png`), the layout loadImageFolder reads.
 * The folder is written beside the target under a temp name and renamed into place when complete, so an
 * interrupted write never leaves a half-filled folder where a loader would find it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { pidAlive } from './cache';
import { loadSharp } from './imageDecode';

export interface ImagesToWrite {
  /** uint8 HWC rows [n, height, width, channels]. */
  images: Uint8Array;
  /** Class index of each row. */
  labels: ArrayLike<number>;
  n: number;
  height: number;
  width: number;
  /** 1 (greyscale PNGs) or 3 (RGB). */
  channels: 1 | 3;
  /** Folder name of each class (label order). */
  classNames: readonly string[];
  /** File name of each row without extension; default: the row number, zero-padded. */
  names?: readonly string[];
}

/** Files written under `dir` beside the class folders; hidden, so loaders skip them. */
export type ExtraFiles = Record<string, string>;

/** Writes `set` as `dir/<class>/<name>.png` (replacing `dir` if it exists) plus `extra` files; returns the number of images. */
export async function writeImageFolder(dir: string, set: ImagesToWrite, extra: ExtraFiles = {}): Promise<number> {
  const { n, height, width, channels } = set;
  const per = height * width * channels;
  if (set.images.length !== n * per)
    throw new Error(`writeImageFolder: ${set.images.length} bytes for ${n} images of ${height}x${width}x${channels}`);
  if (set.labels.length !== n) throw new Error(`writeImageFolder: ${set.labels.length} labels for ${n} images`);
  for (const c of set.classNames)
    if (!/^[^/\\\0]+$/.test(c) || c.startsWith('.'))
      throw new Error(`writeImageFolder: '${c}' cannot be a class folder name`);
  for (const name of Object.keys(extra))
    if (!/^\.[^/\\]+$/.test(name))
      throw new Error(`writeImageFolder: extra file '${name}' must be a hidden file name (.name), so loaders skip it`);
  const sharp = await loadSharp();
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true });
  const base = path.basename(target);
  // Temp folders of writers that died.
  for (const name of fs.readdirSync(parent)) {
    const m = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(?:tmp|old)-(\\d+)$`).exec(name);
    if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(parent, name), { recursive: true, force: true });
  }
  const tmp = path.join(parent, `${base}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    set.classNames.forEach((c) => fs.mkdirSync(path.join(tmp, c), { recursive: true }));
    const digits = String(Math.max(0, n - 1)).length;
    for (let i = 0; i < n; i++) {
      const label = set.labels[i];
      const cls = set.classNames[label];
      if (cls === undefined)
        throw new Error(`writeImageFolder: row ${i} has label ${label}, outside [0, ${set.classNames.length})`);
      const name = set.names?.[i] ?? String(i).padStart(digits, '0');
      const raw = Buffer.from(set.images.buffer, set.images.byteOffset + i * per, per);
      let img = sharp(raw, { raw: { width, height, channels } });
      if (channels === 1) img = img.toColourspace('b-w'); // a greyscale PNG, not an RGB one
      await img.png().toFile(path.join(tmp, cls, `${name}.png`));
    }
    for (const [name, text] of Object.entries(extra)) fs.writeFileSync(path.join(tmp, name), text);
    const old = path.join(parent, `${base}.old-${process.pid}`);
    if (fs.existsSync(target)) fs.renameSync(target, old);
    fs.renameSync(tmp, target);
    fs.rmSync(old, { recursive: true, force: true });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return n;
}

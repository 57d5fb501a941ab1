/**
 * Decoding image files into uint8 NHWC rows with sharp (libvips): EXIF orientation applied, greyscale
 * made RGB, alpha dropped (the stored colour is kept, as PIL's convert('RGB')), sRGB 8-bit, the shorter
 * side resized to the store size (lanczos3; JPEGs shrink on load) and the centre cropped square.
 *
 * Files are decoded `concurrency` at a time: at most that many are held in memory at full resolution,
 * whatever the folder's size. Each file's bytes are hashed (SHA-256) on the way, for the manifest.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import type { Sharp, SharpOptions } from 'sharp';
import { CHANNELS } from './format';

/** What the pixels of a row are a function of, besides the file and the size; part of the manifest hash. Bump when the pipeline changes. */
export const DECODE_RECIPE =
  'v1: EXIF orientation; alpha dropped; sRGB uint8; shorter side to size (lanczos3) + centre crop';

/** Encoded formats accepted (recognised by content, whatever the extension says). */
export const DECODED_FORMATS: readonly string[] = Object.freeze(['jpeg', 'png', 'webp']);

/** Store sizes accepted: square images of this many pixels per side. */
export const MIN_IMAGE_SIZE = 4;
export const MAX_IMAGE_SIZE = 1024;

type SharpFactory = (typeof import('sharp'))['default'];
let sharpModule: SharpFactory | undefined;

/** sharp, loaded on first use (so importing lib/data does not load libvips). */
export async function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= (await import('sharp')).default;
  return sharpModule;
}

/** sharp and libvips versions, for the manifest. */
export async function decoderVersions(): Promise<{ sharp: string; libvips: string }> {
  const s = await loadSharp();
  return { sharp: s.versions.sharp ?? 'unknown', libvips: s.versions.vips };
}

// 'error' rejects truncated and corrupt data; 'warning' would also reject files that libjpeg merely warns about
// (extraneous bytes before a marker), which PIL and browsers show fine.
const INPUT: SharpOptions = Object.freeze({ failOn: 'error', autoOrient: true });

/** SHA-256 of a file's bytes, as 32 hex digits (128 bits: plenty to tell files apart). */
export function contentHash(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 32);
}

/** The encoded format from the first bytes (JPEG FF D8 FF, PNG 89 'PNG', WebP 'RIFF'....'WEBP'), else undefined. */
export function sniffFormat(bytes: Uint8Array): 'jpeg' | 'png' | 'webp' | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47)
    return 'png';
  const ascii = (a: number, b: number) => String.fromCharCode(...bytes.subarray(a, b));
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return undefined;
}

/**
 * Decodes one encoded image (JPEG, PNG or WebP bytes, whatever the file's extension) into
 * `out[offset, offset + size*size*3)`. Throws the decoder's error for corrupt or unsupported data.
 */
export async function decodeImage(bytes: Buffer, size: number, out: Uint8Array, offset: number): Promise<void> {
  const sharp = await loadSharp();
  const format = sniffFormat(bytes);
  if (!format) {
    const other = await sharp(bytes)
      .metadata()
      .then(
        (m) => m.format,
        () => undefined,
      );
    throw new Error(
      other
        ? `the content is ${other}, not ${DECODED_FORMATS.join('/')}`
        : `unrecognised content (not ${DECODED_FORMATS.join('/')})`,
    );
  }
  let src: Sharp = sharp(bytes, INPUT);
  // JPEG has no alpha; PNG and WebP may (an alpha channel or a transparent colour).
  if (format !== 'jpeg' && (await src.metadata()).hasAlpha) {
    // sharp premultiplies by alpha while resizing, which would blacken transparent pixels: drop alpha at full size first.
    const { data, info } = await sharp(bytes, INPUT)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    src = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels as 3 } });
  }
  const { data, info } = await src
    .resize(size, size, { fit: 'cover', position: 'centre' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const bytesOut = size * size * CHANNELS;
  if (info.width !== size || info.height !== size || info.channels !== CHANNELS || data.length !== bytesOut) {
    throw new Error(
      `decoded to ${info.width}x${info.height}x${info.channels} (${data.length} bytes), expected ${size}x${size}x${CHANNELS}`,
    );
  }
  out.set(data, offset);
}

/** The first line of a decoder error; libvips sometimes gives no reason ("Unknown error"), then say what it usually means. */
function describeDecodeError(e: Error): string {
  const first = (e?.message ?? String(e)).split('\n')[0].trim();
  return !first || first === 'Unknown error'
    ? 'the decoder failed without a reason (the file is probably truncated or corrupt)'
    : first;
}

/** One file to decode into row `row` of the output. */
export interface DecodeTask {
  /** Absolute path. */
  file: string;
  row: number;
}

export interface DecodeFilesOptions {
  /** Square store size. */
  size: number;
  /** Files decoded at once. */
  concurrency: number;
  /** Called after each file (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface DecodeFilesResult {
  /** Per task: the content hash, or undefined when it failed. */
  hashes: (string | undefined)[];
  /** Failed tasks (index into tasks) and why, in task order. */
  failed: { task: number; reason: string }[];
}

/** Decodes every task into `out` (row-major [rows, size, size, 3]), `concurrency` files at a time. Failures are collected, not thrown. */
export async function decodeFiles(
  tasks: readonly DecodeTask[],
  out: Uint8Array,
  opts: DecodeFilesOptions,
): Promise<DecodeFilesResult> {
  const { size, concurrency } = opts;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new Error(`decodeFiles: concurrency must be an integer >= 1, got ${concurrency}`);
  const per = size * size * CHANNELS;
  const hashes: (string | undefined)[] = new Array(tasks.length).fill(undefined);
  const failed: { task: number; reason: string }[] = [];
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      const t = tasks[i];
      try {
        const bytes = await fs.promises.readFile(t.file);
        if (bytes.length === 0) throw new Error('the file is empty');
        await decodeImage(bytes, size, out, t.row * per);
        hashes[i] = contentHash(bytes);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        failed.push({
          task: i,
          reason: err.code && err.syscall ? `${err.code}: cannot ${err.syscall} the file` : describeDecodeError(err),
        });
      }
      done++;
      opts.onProgress?.(done, tasks.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  failed.sort((a, b) => a.task - b.task);
  return { hashes, failed };
}

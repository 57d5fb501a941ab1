/**
 * Downloads a URL to a file without ever leaving a half-written target: bytes go to
 * `<target>.<pid>.partial`, which is renamed over the target only after the whole body
 * (Content-Length bytes, when the server sends it) has arrived and been flushed.
 * Progress is one updating line on stderr (\r): bytes so far / total, percentage, MB/s.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import { Transform } from 'stream';
import { pipeline } from 'stream/promises';
import { DataError } from './errors';

export interface DownloadOptions {
  /** Where progress goes: true = process.stderr, false = nowhere, or a stream. Default true. */
  progress?: boolean | NodeJS.WritableStream;
  /** Give up when no byte arrives for this long (ms). Default 60,000. */
  idleTimeoutMs?: number;
  /** Redirects followed at most. Default 5. */
  maxRedirects?: number;
  /** Minimum time between progress redraws (ms). Default 250. */
  progressIntervalMs?: number;
}

export const DOWNLOAD_DEFAULTS: Readonly<Required<Omit<DownloadOptions, 'progress'>>> = Object.freeze({
  idleTimeoutMs: 60_000,
  maxRedirects: 5,
  progressIntervalMs: 250,
});

/** The temp name a download uses next to `target`. */
export function partialPath(target: string, pid = process.pid): string {
  return `${target}.${pid}.partial`;
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

/** Formats one progress line (exported for tests). */
export function progressLine(name: string, received: number, total: number | undefined, seconds: number): string {
  const rate = seconds > 0 ? received / 1e6 / seconds : 0;
  const pct = total ? ` (${((100 * received) / total).toFixed(0)}%)` : '';
  return `downloading ${name}: ${mb(received)}${total ? `/${mb(total)}` : ''} MB${pct} ${rate.toFixed(1)} MB/s`;
}

function get(url: string, timeoutMs: number): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : url.startsWith('http:') ? http : undefined;
    if (!mod)
      return reject(
        new DataError('download', `cannot download ${url}: only http and https URLs are supported`, { file: url }),
      );
    const req = mod.get(url, { timeout: timeoutMs }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Downloads `url` to `target` atomically. Returns the number of bytes written.
 * On any failure the partial file is removed and a DataError('download') names the URL and the reason.
 */
export async function downloadFile(url: string, target: string, opts: DownloadOptions = {}): Promise<number> {
  const o = { ...DOWNLOAD_DEFAULTS, ...opts };
  const out: NodeJS.WritableStream | undefined =
    opts.progress === false
      ? undefined
      : opts.progress === true || opts.progress === undefined
        ? process.stderr
        : opts.progress;
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = partialPath(target);
  const name = path.basename(target);
  let received = 0;
  let total: number | undefined;
  let drew = false;
  const t0 = Date.now();
  let lastDraw = 0;
  const draw = (force: boolean) => {
    if (!out) return;
    const now = Date.now();
    if (!force && now - lastDraw < o.progressIntervalMs) return;
    lastDraw = now;
    out.write(`\r${progressLine(name, received, total, (now - t0) / 1000)}\x1b[K`);
    drew = true;
  };
  try {
    let res = await get(url, o.idleTimeoutMs);
    let current = url;
    for (
      let hops = 0;
      res.statusCode !== undefined && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location;
      hops++
    ) {
      res.resume();
      if (hops >= o.maxRedirects) throw new Error(`more than ${o.maxRedirects} redirects`);
      current = new URL(res.headers.location, current).toString();
      res = await get(current, o.idleTimeoutMs);
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`HTTP ${res.statusCode} ${res.statusMessage ?? ''} from ${current}`.trim());
    }
    const len = Number(res.headers['content-length']);
    total = Number.isFinite(len) && len > 0 ? len : undefined;
    res.setTimeout(o.idleTimeoutMs, () => res.destroy(new Error(`no data for ${o.idleTimeoutMs} ms`)));
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        draw(false);
        cb(null, chunk);
      },
    });
    // pipeline rejects if the response closes early ("aborted"/ECONNRESET) or the disk write fails.
    await pipeline(res, counter, fs.createWriteStream(tmp));
    if (total !== undefined && received !== total)
      throw new Error(`connection closed after ${received} of ${total} bytes`);
    if (received === 0) throw new Error('the server sent an empty body');
    const fd = fs.openSync(tmp, 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, target);
    draw(true);
    if (out) out.write('\n');
    return received;
  } catch (e) {
    if (drew && out) out.write('\n');
    fs.rmSync(tmp, { force: true });
    if (e instanceof DataError) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new DataError(
      'download',
      `download of ${url} failed: ${why}; nothing was kept (${tmp} removed). Re-run to retry, or download it yourself and point DINOTWINS_CIFAR10 at the file`,
      {
        file: url,
        expected: total !== undefined ? `${total} bytes` : undefined,
        actual: `${received} bytes`,
      },
      { cause: e },
    );
  }
}

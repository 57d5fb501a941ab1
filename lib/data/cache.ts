/**
 * The CIFAR-10 cache under `data/`: tarballs are unpacked into a temp folder inside the cache
 * root, verified there, and only then renamed to `data/cifar-10-batches-bin` (a rename within one
 * file system is atomic), so an interrupted or failed extraction never leaves a half-written cache.
 * Temp folders and `.partial` downloads of processes that died are removed on the next load.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tar from 'tar';
import { DataError } from './errors';
import { BATCHES_DIR } from './format';
import { readVerifiedFolder, type ChecksumSpec, type VerifiedFolder } from './verify';

const TEMP_PREFIX = '.extract-';

/** Whether process `pid` is running (on this machine); temp files of dead processes are removed by their owners' successors. */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** Removes extraction temp folders and partial downloads in `cacheRoot` left by processes that are no longer running. Returns what it removed. */
export function cleanStaleTemps(cacheRoot: string): string[] {
  if (!fs.existsSync(cacheRoot)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(cacheRoot)) {
    const m = name.startsWith(TEMP_PREFIX) ? /^\.extract-(\d+)-/.exec(name) : /\.(\d+)\.partial$/.exec(name);
    if (!m) continue;
    if (pidAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(cacheRoot, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** Entries of the tarball we keep: the batches folder's files (a leading `./` is allowed). */
function wanted(entryPath: string): boolean {
  const p = entryPath.replace(/^(\.\/)+/, '');
  return p === `${BATCHES_DIR}/` || p === BATCHES_DIR || p.startsWith(`${BATCHES_DIR}/`);
}

/**
 * Unpacks `tarball` (the official `.tar.gz` layout: `cifar-10-batches-bin/...`) into
 * `cacheRoot/cifar-10-batches-bin`, verifying every batch file against `spec` before the rename.
 * Returns the verified contents (already in memory, so the caller need not read them again).
 */
export async function extractToCache(tarball: string, cacheRoot: string, spec: ChecksumSpec): Promise<VerifiedFolder> {
  const target = path.join(cacheRoot, BATCHES_DIR);
  const remedy = `Nothing was written to ${target}. The tarball ${tarball} is damaged or not CIFAR-10: delete it (if it is a download) and re-run, or point DINOTWINS_CIFAR10 at a good copy`;
  fs.mkdirSync(cacheRoot, { recursive: true });
  cleanStaleTemps(cacheRoot);
  const tmp = fs.mkdtempSync(path.join(cacheRoot, `${TEMP_PREFIX}${process.pid}-`));
  try {
    try {
      await tar.x({ file: tarball, cwd: tmp, strict: true, filter: wanted });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new DataError(
        'extract',
        `cannot unpack ${tarball}: ${why}. ${remedy}`,
        { file: tarball, expected: 'a gzip-compressed tar', actual: why },
        { cause: e },
      );
    }
    const unpacked = path.join(tmp, BATCHES_DIR);
    if (!fs.existsSync(unpacked)) {
      throw new DataError(
        'layout',
        `${tarball} has no ${BATCHES_DIR}/ folder (the official binary tarball's layout). ${remedy}`,
        {
          file: tarball,
          expected: `${BATCHES_DIR}/`,
          actual: 'absent',
        },
      );
    }
    const verified = await readVerifiedFolder(unpacked, spec, remedy);
    try {
      fs.renameSync(unpacked, target);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // Another process finished the same extraction first: its copy passed the same checks.
      if (!(code === 'ENOTEMPTY' || code === 'EEXIST') || !fs.existsSync(target)) throw e;
    }
    return { ...verified, folder: target };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

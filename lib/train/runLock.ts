/**
 * One writer per run folder. A writer (a pretraining run, a baseline, a probe writing results)
 * takes `<runDir>/run.lock` before touching the folder; a second writer, in another notebook,
 * another kernel or a CLI, fails at once with a {@link RunLockedError} naming the holder.
 *
 * The lock file holds pid, host, start time, the boot id and the process start tick (Linux), so
 * a lock left by a process that died (killed, crashed kernel, reboot) is recognised as stale even
 * if its pid was reused, and is taken over with a message. It is created complete and atomically
 * (written to a temp file, then hard-linked to its name, which fails if the name exists), released
 * on `release()` and, for whatever the process still holds, on `process.on('exit')` (including a
 * second Ctrl-C), so nothing a crash leaves behind blocks the next run.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { inspect } from 'util';

export const LOCK_FILE = 'run.lock';

/** What a lock file says about its holder. */
export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  startedAt: string;
  /** What holds it (e.g. "pretraining barlow-r18w4-s0-1234abcd"), and the command line. */
  what: string;
  command: string;
  /** Linux boot id (null elsewhere): a lock from before a reboot is stale. */
  bootId: string | null;
  /** Start time of the holder process in clock ticks since boot (Linux; null elsewhere): detects pid reuse. */
  procStart: number | null;
  /** Random token: release() removes the file only if it is still ours. */
  token: string;
}

export class RunLockedError extends Error {
  override name = 'RunLockedError';
  constructor(
    message: string,
    readonly holder: LockInfo,
  ) {
    super(message);
  }

  /** One line when printed (a notebook cell shows the message, not a stack and the holder's fields). */
  [inspect.custom](): string {
    return `${this.name}: ${this.message}`;
  }
}

/** A held lock; release it in a `finally`. */
export interface RunLock {
  readonly file: string;
  readonly info: LockInfo;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

export interface AcquireOptions {
  /** Called with the message when a stale lock is taken over. Default: console.warn. */
  onTakeover?: (message: string) => void;
}

const HELD = Symbol.for('dinotwins.runLocks');

/** Locks this process holds, by file (shared by re-imported copies of lib). */
function held(): Map<string, LockInfo> {
  const g = globalThis as unknown as Record<symbol, Map<string, LockInfo> | undefined>;
  let m = g[HELD];
  if (!m) {
    m = new Map();
    g[HELD] = m;
    process.on('exit', () => {
      for (const [file, info] of m!) removeIfOurs(file, info.token);
      m!.clear();
    });
  }
  return m;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Linux boot id, or null. */
export function bootId(): string | null {
  return readText('/proc/sys/kernel/random/boot_id');
}

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or null. */
export function processStart(pid: number): number | null {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return null;
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const v = Number(fields[19]);
  return Number.isFinite(v) ? v : null;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Why a lock is stale (its holder is gone), or null when the holder may still be running. */
function staleReason(
  info: LockInfo,
  here = { host: os.hostname(), bootId: bootId(), pid: process.pid },
): string | null {
  if (info.host !== here.host) return null; // cannot check another machine
  if (info.bootId && here.bootId && info.bootId !== here.bootId) return 'the machine has rebooted since';
  if (info.pid === here.pid)
    return [...held().values()].some((h) => h.token === info.token) ? null : 'this process no longer holds it';
  if (!pidAlive(info.pid)) return `process ${info.pid} is no longer running`;
  if (info.procStart !== null) {
    const now = processStart(info.pid);
    if (now !== null && now !== info.procStart)
      return `process ${info.pid} is no longer running (its pid now belongs to another process)`;
  }
  return null;
}

function describeHolder(info: LockInfo): string {
  const self = info.pid === process.pid && info.host === os.hostname() ? ', this process' : '';
  return `${info.what} (pid ${info.pid} on ${info.host}${self}, since ${info.startedAt}; command: ${info.command})`;
}

function parseLock(text: string | null, file: string): LockInfo | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as LockInfo;
    if (typeof v.pid === 'number' && typeof v.host === 'string') return v;
  } catch {
    // fall through: a torn or foreign file
  }
  return {
    pid: -1,
    host: '?',
    startedAt: '?',
    what: `an unreadable lock file ${file}`,
    command: '?',
    bootId: null,
    procStart: null,
    token: '',
  };
}

function removeIfOurs(file: string, token: string): void {
  const cur = parseLock(readText(file), file);
  if (cur && cur.token === token) fs.rmSync(file, { force: true });
}

/** Creates `file` with `body` only if it does not exist; true on success. */
function createExclusive(file: string, body: string): boolean {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, body);
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Takes the lock of `runDir` for `what`, creating the folder if needed. Throws
 * {@link RunLockedError} naming the holder when another live writer has it; takes over (with a
 * message) a lock whose holder is gone.
 */
export function acquireRunLock(runDir: string, what: string, opts: AcquireOptions = {}): RunLock {
  fs.mkdirSync(runDir, { recursive: true });
  const file = path.join(runDir, LOCK_FILE);
  const info: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    startedAt: new Date().toISOString(),
    what,
    command: process.argv.map((a) => path.basename(a)).join(' '),
    bootId: bootId(),
    procStart: processStart(process.pid),
    token: `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  };
  const body = JSON.stringify(info, null, 1) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(file, body)) {
      held().set(file, info);
      let released = false;
      return {
        file,
        info,
        release() {
          if (released) return;
          released = true;
          held().delete(file);
          removeIfOurs(file, info.token);
        },
      };
    }
    const text = readText(file);
    if (text === null) continue; // released meanwhile: try again
    const holder = parseLock(text, file)!;
    const reason = holder.pid === -1 ? 'it cannot be read' : staleReason(holder);
    if (reason === null) {
      throw new RunLockedError(
        `run folder ${runDir} is in use by ${describeHolder(holder)}. Only one writer per run folder: wait for it to finish or stop it ` +
          `(Ctrl-C, or Kernel > Interrupt in its notebook)${holder.host !== os.hostname() ? `; if it is gone, delete ${file}` : ''}.`,
        holder,
      );
    }
    // Stale: move it aside under a unique name, then check that what we moved is the stale lock we
    // judged (another writer may have taken it over in between; then put theirs back and retry).
    const aside = `${file}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      fs.renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    if (readText(aside) !== text) {
      try {
        fs.linkSync(aside, file);
      } catch {
        // someone else holds it now; the next attempt names them
      }
      fs.rmSync(aside, { force: true });
      continue;
    }
    fs.rmSync(aside, { force: true });
    (opts.onTakeover ?? ((m: string) => console.warn(m)))(
      `run folder ${runDir}: taking over the lock of ${describeHolder(holder)}: ${reason}.`,
    );
  }
  throw new RunLockedError(
    `run folder ${runDir}: could not take ${file} after 5 attempts (other writers keep racing for it)`,
    parseLock(readText(file), file)!,
  );
}

/** The lock file's holder, or null when the folder is not locked. */
export function readRunLock(runDir: string): LockInfo | null {
  const file = path.join(runDir, LOCK_FILE);
  return parseLock(readText(file), file);
}

/**
 * Whether other processes are using the cores, so the native kernels' parts should run on the
 * calling thread alone. Measured on a 2-core machine (bench/RESULTS.md, "Native threads"): beside
 * one busy process in another session the second thread lost 12-25 % to one thread (the kernel
 * shares CPU between sessions first, so our two threads then get one core between them and every
 * kernel call waits for the descheduled one); on an idle machine it gains 1.5x. Switching between
 * the two never changes a result: the parts and the order their sums are added in stay the same.
 *
 * The signal is the CPU time of everything else: the busy time of all cores (/proc/stat, steal
 * included: on a virtual machine other guests' time is lost to us too) minus this process's own
 * (/proc/self/stat), over the last interval, in cores. Linux only; elsewhere it reports idle.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

export interface LoadMonitorOptions {
  /** Cores other processes may use before the parts go serial (default 0.5). */
  busyAbove: number;
  /** ... and below which they go parallel again (default 0.3; the gap keeps it from flapping). */
  idleBelow: number;
  /** How often the load is sampled, in milliseconds (default 500). */
  intervalMs: number;
}

export const LOAD_MONITOR_DEFAULTS: Readonly<LoadMonitorOptions> = Object.freeze({
  busyAbove: 0.5,
  idleBelow: 0.3,
  intervalMs: 500,
});

export interface LoadSample {
  /** Jiffies of all cores: busy and total. */
  busy: number;
  total: number;
  /** This process's user + system jiffies. */
  own: number;
}

/** The current counters from /proc (undefined where there is none). */
export function readLoadSample(): LoadSample | undefined {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait, own };
  } catch {
    return undefined;
  }
}

/** Other processes' CPU use in cores between two samples. */
export function foreignCores(a: LoadSample, b: LoadSample, cores: number): number {
  const total = b.total - a.total;
  if (total <= 0) return 0;
  return Math.max(0, (b.busy - a.busy - (b.own - a.own)) / (total / cores));
}

export class LoadMonitor {
  private readonly o: LoadMonitorOptions;
  private last: LoadSample | undefined;
  private lastAt = 0;
  private serial = false;
  /** The last measurement, in cores (undefined before the second sample or where /proc is missing). */
  foreign: number | undefined;

  constructor(
    private readonly cores = os.cpus().length,
    options: Partial<LoadMonitorOptions> = {},
    private readonly read: () => LoadSample | undefined = readLoadSample,
    now = Date.now(),
  ) {
    this.o = { ...LOAD_MONITOR_DEFAULTS, ...options };
    this.last = this.read();
    this.lastAt = now;
  }

  /** Whether the parts should run serially now; re-samples at most once per interval. */
  shouldRunSerial(now = Date.now()): boolean {
    if (now - this.lastAt < this.o.intervalMs) return this.serial;
    const s = this.read();
    if (s && this.last) {
      this.foreign = foreignCores(this.last, s, this.cores);
      if (this.serial && this.foreign < this.o.idleBelow) this.serial = false;
      else if (!this.serial && this.foreign > this.o.busyAbove) this.serial = true;
    }
    this.last = s;
    this.lastAt = now;
    return this.serial;
  }
}

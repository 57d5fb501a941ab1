/**
 * Progress bar for training loops: updates in place in a tslab notebook (Jupyter display id
 * + `update_display_data`, so the saved notebook keeps only the last state), as one
 * `\r`-rewritten line on an interactive terminal, and as a periodic plain line in logs.
 * Updates are throttled; `done()` always shows the final state.
 */
import { canDisplay, display, newDisplayId, updateDisplay } from './display';
import { escapeHtml } from './render';

/** Metric values shown after the bar (e.g. `{loss: 0.123}`). */
export type Metrics = Readonly<Record<string, number | string>>;

/** Where the bar is drawn. */
export type ProgressMode = 'auto' | 'notebook' | 'tty' | 'log' | 'silent';

/** Options of {@link progress}. */
export interface ProgressOptions {
  /** Number of steps (> 0). */
  total: number;
  /** Text before the bar. */
  label: string;
  /** 'auto' = notebook in tslab, tty when the stream is a terminal, log otherwise. */
  mode: ProgressMode;
  /** Minimum milliseconds between redraws in notebook and tty modes (250 = at most 4/s). */
  minIntervalMs: number;
  /** Milliseconds between lines in log mode. */
  logIntervalMs: number;
  /** Characters of the text bar. */
  barWidth: number;
  /** Stream for tty and log modes. */
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Clock in milliseconds (injectable for tests). */
  now: () => number;
}

export const DEFAULT_PROGRESS_OPTIONS: Readonly<Omit<ProgressOptions, 'total' | 'stream' | 'now'>> = Object.freeze({
  label: '',
  mode: 'auto' as ProgressMode,
  minIntervalMs: 250,
  logIntervalMs: 10_000,
  barWidth: 24,
});

/** A snapshot of the bar. */
export interface ProgressState {
  /** Steps done. */
  step: number;
  /** Steps in all. */
  total: number;
  /** Milliseconds since the bar was created. */
  elapsedMs: number;
  /** Steps per second since the first update (NaN before two points in time). */
  rate: number;
  /** Estimated milliseconds left (NaN when unknown). */
  etaMs: number;
  /** Latest metrics. */
  metrics: Metrics;
  /** Why the bar stopped before its end ('interrupted', 'failed'); absent while running or when done. */
  stopped?: string;
}

/** `ss` -> `m:ss`, `h:mm:ss` above an hour, `?` when unknown. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

/** 4 significant digits, exponent notation for very small or large magnitudes. */
export function formatMetric(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : Number(v.toPrecision(4)).toString();
}

/** Rate with a unit that keeps it readable (it/s, or s/it below 1 it/s). */
export function formatRate(rate: number): string {
  if (!Number.isFinite(rate) || rate <= 0) return '? it/s';
  return rate >= 1
    ? `${formatMetric(Number(rate.toPrecision(3)))} it/s`
    : `${formatMetric(Number((1 / rate).toPrecision(3)))} s/it`;
}

/** One-line rendering: `label  45% |#####      | 45/100 [0:12<0:15, 3.71 it/s] loss=0.123`. */
export function formatProgress(s: ProgressState, label = '', barWidth = 24): string {
  const frac = s.total > 0 ? Math.min(1, Math.max(0, s.step / s.total)) : 0;
  const filled = Math.round(frac * barWidth);
  const bar = '#'.repeat(filled) + ' '.repeat(barWidth - filled);
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const metrics = Object.entries(s.metrics)
    .map(([k, v]) => `${k}=${formatMetric(v)}`)
    .join(' ');
  const head = label ? `${label} ` : '';
  const stopped = s.stopped ? ` (${s.stopped} at ${s.step}/${s.total})` : '';
  return `${head}${pct} |${bar}| ${s.step}/${s.total} [${formatDuration(s.elapsedMs)}<${formatDuration(s.etaMs)}, ${formatRate(s.rate)}]${metrics ? ' ' + metrics : ''}${stopped}`;
}

/** HTML rendering for notebooks: a native <progress> element and the text line. */
export function progressHtml(s: ProgressState, label = ''): string {
  const text = formatProgress(s, '', 0).replace(/\|\|\s?/, '');
  return (
    `<div class="dinotwins-progress" style="font:12px monospace;display:flex;gap:8px;align-items:center">` +
    (label ? `<span>${escapeHtml(label)}</span>` : '') +
    `<progress value="${s.step}" max="${s.total}" style="width:220px"></progress>` +
    `<span>${escapeHtml(text)}</span></div>`
  );
}

/** A running progress bar; see {@link progress}. */
export class ProgressBar {
  private readonly o: ProgressOptions;
  private readonly mode: Exclude<ProgressMode, 'auto'>;
  private readonly t0: number;
  private step = 0;
  private metrics: Metrics = {};
  private first: { step: number; t: number } | null = null;
  private lastDraw = -Infinity;
  private displayId: string | null = null;
  private finished = false;
  private stopped: string | undefined;

  constructor(options: Partial<ProgressOptions> & { total: number }) {
    const o: ProgressOptions = {
      ...DEFAULT_PROGRESS_OPTIONS,
      stream: process.stderr,
      now: () => performance.now(),
      ...options,
    };
    if (!(Number.isFinite(o.total) && o.total > 0))
      throw new Error(`progress: total must be a positive number, got ${o.total}`);
    if (!(o.minIntervalMs >= 0)) throw new Error(`progress: minIntervalMs must be >= 0, got ${o.minIntervalMs}`);
    this.o = o;
    this.mode = o.mode === 'auto' ? (canDisplay() ? 'notebook' : o.stream.isTTY ? 'tty' : 'log') : o.mode;
    this.t0 = o.now();
  }

  /** The current state (rate and ETA from the first update on, so start-up time does not count). */
  state(): ProgressState {
    const t = this.o.now();
    let rate = NaN;
    if (this.first && t > this.first.t && this.step > this.first.step) {
      rate = ((this.step - this.first.step) * 1000) / (t - this.first.t);
    }
    const etaMs =
      this.step >= this.o.total
        ? 0
        : Number.isFinite(rate) && !this.stopped
          ? ((this.o.total - this.step) / rate) * 1000
          : NaN;
    return {
      step: this.step,
      total: this.o.total,
      elapsedMs: t - this.t0,
      rate,
      etaMs,
      metrics: this.metrics,
      ...(this.stopped ? { stopped: this.stopped } : {}),
    };
  }

  /** Sets the step count (absolute) and merges `metrics`; redraws if the throttle allows. */
  update(step: number, metrics: Metrics = {}): void {
    if (!Number.isFinite(step)) throw new Error(`progress.update: step must be finite, got ${step}`);
    this.step = Math.max(0, Math.min(step, this.o.total));
    this.metrics = { ...this.metrics, ...metrics };
    const t = this.o.now();
    if (this.first == null) this.first = { step: this.step, t };
    this.draw(false);
  }

  /** Advances by `n` steps. */
  tick(n = 1, metrics: Metrics = {}): void {
    this.update(this.step + n, metrics);
  }

  /**
   * Draws the final state and ends the line in a terminal. Idempotent. A bar that was never
   * updated draws nothing (a reloaded finished run has no progress to show, not an empty bar).
   */
  done(metrics: Metrics = {}): void {
    if (this.finished) return;
    if (this.first == null) {
      this.finished = true;
      return;
    }
    this.metrics = { ...this.metrics, ...metrics };
    this.draw(true);
    this.finished = true;
    if (this.mode === 'tty') this.o.stream.write('\n');
  }

  /**
   * Awaits `work` (a promise, or a function that starts it) and draws the bar's last state when it
   * ends, however it ends, so the bar never stays behind the step the work reached (its last
   * update may have been throttled). When `work` throws, the bar says why it stopped: 'interrupted'
   * for an InterruptedError (Kernel > Interrupt, Ctrl-C), else 'failed'; the error is re-thrown.
   *   const run = await bar.track(dt.runPretraining(config, budget, data, { onStep: (s) => bar.update(s.step + 1) }));
   */
  async track<T>(work: Promise<T> | (() => Promise<T>)): Promise<T> {
    let result: T;
    try {
      result = await (typeof work === 'function' ? work() : work);
    } catch (e) {
      this.stop((e as Error | null)?.name === 'InterruptedError' ? 'interrupted' : 'failed');
      throw e;
    }
    this.done();
    return result;
  }

  /** Draws the final state marked as stopped early (`why`: 'interrupted', 'failed', ...). Idempotent, like done(). */
  stop(why: string): void {
    if (!why) throw new Error('progress.stop: say why the bar stopped');
    if (!this.finished) this.stopped = why;
    this.done();
  }

  /** The line as it would be drawn now. */
  toString(): string {
    return formatProgress(this.state(), this.o.label, this.o.barWidth);
  }

  private draw(force: boolean): void {
    if (this.finished || this.mode === 'silent') return;
    const t = this.o.now();
    const interval = this.mode === 'log' ? this.o.logIntervalMs : this.o.minIntervalMs;
    if (!force && t - this.lastDraw < interval) return;
    this.lastDraw = t;
    const s = this.state();
    const line = formatProgress(s, this.o.label, this.o.barWidth);
    switch (this.mode) {
      case 'notebook': {
        const bundle = { 'text/plain': line, 'text/html': progressHtml(s, this.o.label) };
        if (this.displayId == null) {
          this.displayId = newDisplayId();
          display(bundle, this.displayId);
        } else {
          updateDisplay(this.displayId, bundle);
        }
        break;
      }
      case 'tty': {
        const cols = this.o.stream.columns ?? 0;
        const fitted = cols > 1 && line.length >= cols ? line.slice(0, cols - 1) : line;
        this.o.stream.write(`\r${fitted}\x1b[K`);
        break;
      }
      case 'log':
        this.o.stream.write(`${line}\n`);
        break;
    }
  }
}

/**
 * Creates a progress bar: `const bar = progress({total: 100, label: 'epoch 1'});`
 * then `bar.update(step, {loss})` in the loop and `bar.done()` after it.
 */
export function progress(options: Partial<ProgressOptions> & { total: number }): ProgressBar {
  return new ProgressBar(options);
}

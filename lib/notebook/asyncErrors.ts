/**
 * Records errors raised asynchronously in a notebook kernel (unhandled promise rejections,
 * exceptions thrown from timers) after the cell that caused them has finished, so that a
 * later cell, or scripts/run-notebooks.py's final check cell, can fail on them.
 * tslab only prints these to stderr; a headless run would otherwise pass.
 * The records live on `globalThis` under a registered symbol, shared with the runner's
 * injected cells, so re-importing this module (tslab recompiles on edits) keeps them.
 */

/** One recorded asynchronous error. */
export interface AsyncErrorRecord {
  /** Which process event reported it. */
  kind: 'unhandledRejection' | 'uncaughtException';
  /** Error message (or the rejection reason as text). */
  message: string;
  /** Stack trace when the reason was an Error. */
  stack: string;
  /** Date.now() when recorded. */
  time: number;
}

interface CollectorState {
  installed: boolean;
  errors: AsyncErrorRecord[];
}

/** The registry key; scripts/run-notebooks.py uses the same string. */
export const ASYNC_ERRORS_KEY = 'dinotwins.notebook.asyncErrors';

function state(): CollectorState {
  const g = globalThis as unknown as Record<symbol, CollectorState | undefined>;
  const key = Symbol.for(ASYNC_ERRORS_KEY);
  let s = g[key];
  if (s == null) {
    s = { installed: false, errors: [] };
    g[key] = s;
  }
  return s;
}

function record(kind: AsyncErrorRecord['kind'], reason: unknown): void {
  const e = reason instanceof Error ? reason : null;
  // After a second Kernel > Interrupt the cell ended at once; the run then stopped at its step
  // boundary and rejected the abandoned promise with an InterruptedError: wanted, not an error.
  if (e?.name === 'InterruptedError') return;
  state().errors.push({
    kind,
    message: e ? `${e.name}: ${e.message}` : String(reason),
    stack: e?.stack ?? '',
    time: Date.now(),
  });
}

/**
 * Installs `process.on('unhandledRejection' | 'uncaughtException')` recorders once per
 * process. Only use it where another handler keeps the process alive (the tslab kernel
 * has one): adding an `uncaughtException` listener stops Node from exiting on such errors.
 */
export function installAsyncErrorCollector(): void {
  const s = state();
  if (s.installed) return;
  s.installed = true;
  process.on('unhandledRejection', (reason) => record('unhandledRejection', reason));
  process.on('uncaughtException', (err) => record('uncaughtException', err));
}

/** The errors recorded so far (a copy). */
export function asyncErrors(): AsyncErrorRecord[] {
  return state().errors.slice();
}

/** Forgets the recorded errors. */
export function clearAsyncErrors(): void {
  state().errors.length = 0;
}

/** Throws one Error listing every recorded asynchronous error, if any (and clears them). */
export function assertNoAsyncErrors(): void {
  const errs = asyncErrors();
  if (errs.length === 0) return;
  clearAsyncErrors();
  const lines = errs.map(
    (e, k) => `  ${k + 1}. ${e.kind}: ${e.message}${e.stack ? `\n${e.stack.split('\n').slice(1, 4).join('\n')}` : ''}`,
  );
  throw new Error(`${errs.length} asynchronous error(s) after their cells finished:\n${lines.join('\n')}`);
}

/**
 * Interrupts that stop long work at its next step boundary: Ctrl-C in the CLI, and Kernel >
 * Interrupt in a notebook (Jupyter sends SIGINT to the kernel process; tslab's own handler only
 * rejects the promise the cell awaits, so without this module the training loop kept running
 * behind an idle kernel).
 *
 * While an interrupt scope is open (pretraining, a baseline, a linear probe, a feature
 * extraction), this module owns SIGINT:
 *  - the first signal sets a flag; every long loop checks it at its step boundary, saves what it
 *    can (the trainer writes a checkpoint and marks the run `interrupted`), frees its tensors and
 *    throws an {@link InterruptedError} whose one-line message says how to resume;
 *  - a second signal goes to whoever handled SIGINT before the scope opened (in tslab: the cell
 *    ends at once; the loop still stops at its boundary), or, when nobody did (the CLI), exits the
 *    process at once with status 130 (`process.on('exit')` handlers still run: run locks are freed).
 * Outside a scope, SIGINT behaves as if this module did not exist. The state lives on
 * `globalThis` under a registered symbol, so a re-imported copy of lib (tslab recompiles on
 * edits) shares it.
 */
import { inspect } from 'util';

/** Thrown by a loop that stopped because of an interrupt; its message says how to resume. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';

  /** One line when printed (a notebook cell shows `InterruptedError: <message>`, no stack). */
  [inspect.custom](): string {
    return `${this.name}: ${this.message}`;
  }
}

type Listener = (...args: unknown[]) => void;

interface InterruptState {
  /** Open scopes (nested: a pretraining run's kNN monitor extracts features inside it). */
  depth: number;
  /** Signals received since the outermost scope opened. */
  signals: number;
  /** What the outermost scope runs, for the message. */
  label: string;
  /** SIGINT listeners that were installed before the outermost scope opened (tslab's). */
  saved: Listener[];
  /** Our listener while a scope is open. */
  handler: Listener | null;
}

const KEY = Symbol.for('dinotwins.interrupt');

function state(): InterruptState {
  const g = globalThis as unknown as Record<symbol, InterruptState | undefined>;
  return (g[KEY] ??= { depth: 0, signals: 0, label: '', saved: [], handler: null });
}

function onSignal(): void {
  const s = state();
  s.signals += 1;
  if (s.signals === 1) {
    const again = s.saved.length > 0 ? 'interrupt again to give the kernel back now' : 'Ctrl-C again to exit now';
    process.stderr.write(`\ninterrupt: stopping ${s.label} at the next step boundary (${again})\n`);
    return;
  }
  if (s.saved.length > 0) {
    for (const l of s.saved) l('SIGINT');
    return;
  }
  process.stderr.write('\ninterrupt: second Ctrl-C, exiting now (the last checkpoint is kept)\n');
  process.exit(130);
}

/** An open interrupt scope; `close()` it in a `finally`. */
export interface InterruptScope {
  /** True once SIGINT (or {@link requestInterrupt}) arrived while the scope was open. */
  readonly requested: boolean;
  /**
   * Lets a signal that arrived during synchronous work in (one event-loop turn: a training step
   * on cpu or wasm awaits only promises, which never let Node deliver signals), then says whether
   * to stop. Call it at each step boundary.
   */
  poll(): Promise<boolean>;
  /** Closes the scope; the outermost close gives SIGINT back to its previous listeners. */
  close(): void;
}

/**
 * Opens a scope in which SIGINT asks loops to stop at their next step boundary. `label` names
 * the work in the message printed on the first signal (e.g. "pretraining run barlow-r18w4-s0-...").
 */
export function openInterruptScope(label: string): InterruptScope {
  const s = state();
  let open = true;
  if (s.depth === 0) {
    s.signals = 0;
    s.label = label;
    s.saved = process.listeners('SIGINT') as Listener[];
    for (const l of s.saved) process.removeListener('SIGINT', l);
    s.handler = onSignal;
    process.on('SIGINT', s.handler);
    // tslab runs a cell's synchronous part through vm with `breakOnSigint`, which sets SIGINT's
    // listeners aside (they are not seen above) and, when the part ends, restores the signal
    // disposition it found: a handler installed meanwhile stays listed but no longer receives the
    // signal, and Kernel > Interrupt then killed the kernel. Once that part is over, set aside the
    // listeners the vm put back and install ours again, which re-registers it with the OS.
    process.nextTick(() => {
      const st = state();
      if (!open || !st.handler) return;
      for (const l of process.listeners('SIGINT') as Listener[]) {
        process.removeListener('SIGINT', l);
        if (l !== st.handler) st.saved.push(l);
      }
      process.on('SIGINT', st.handler);
    });
  }
  s.depth += 1;
  return {
    get requested() {
      return state().signals > 0;
    },
    poll() {
      return new Promise((resolve) => setImmediate(() => resolve(state().signals > 0)));
    },
    close() {
      if (!open) return;
      open = false;
      const st = state();
      st.depth -= 1;
      if (st.depth > 0) return;
      if (st.handler) process.removeListener('SIGINT', st.handler);
      st.handler = null;
      for (const l of st.saved) process.on('SIGINT', l);
      st.saved = [];
      st.signals = 0;
    },
  };
}

/** Asks the open scope to stop, as a first SIGINT would (for tests and UI code). No-op outside a scope. */
export function requestInterrupt(): void {
  const s = state();
  if (s.depth > 0 && s.signals === 0) s.signals = 1;
}

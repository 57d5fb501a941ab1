/**
 * Frees what the backward pass no longer needs while it runs, instead of at its end.
 *
 * tfjs-core 4.22 (`engine.gradients` -> `backpropagateGradients`) walks the tape backwards and
 * keeps, until the whole backward pass is over, every tensor the forward saved for it and every
 * intermediate gradient (the `dy` of each op's outputs). Both are dead as soon as the op's own
 * gradient has been computed. Counted on the tfjs pool at batch 256 (bench/gpu.ts --what memory,
 * RESULTS-GPU.md): the ViT-T/4 step holds 7.0 GiB after its forward and 15.5 GiB at its peak in
 * the backward, which is mostly these dead tensors.
 *
 * We wrap each tape node's gradient function as the engine records it (`addTapeNode`): when the
 * backward pass moves on to the next node, the previous node's saved tensors and output gradients
 * are disposed. Not disposed: anything a gradient function returned (it may hand back a saved
 * tensor or its dy as a result), a `dy` the caller passed in (made before the forward: its id is
 * below the node's outputs'), and everything during higher-order gradients (the outer tape may
 * still need them; tfjs itself keeps saved tensors then). Assumes, as tfjs' own gradients and ours
 * do, that a node's input-gradient functions run no backward pass of their own (a custom gradient
 * that needs one runs it in its gradient function, before the inputs' functions are handed out).
 * Values do not change, only when memory comes back (test/tape-release.test.ts). Every backend.
 */
import * as tf from '@tensorflow/tfjs';

type Thunks = Record<string, () => tf.Tensor>;

interface TapeNode {
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: Array<tf.Tensor | null>) => Thunks;
}

interface EngineInternals {
  state: { activeTape?: TapeNode[] | null; gradientDepth: number };
  addTapeNode: (...args: unknown[]) => void;
  startTape: () => void;
}

let stockAddTapeNode: EngineInternals['addTapeNode'] | undefined;

/** How many tensors were released early since install (tests and benchmarks read it). */
export const tapeReleaseCounts = { saved: 0, gradients: 0 };

function release(t: tf.Tensor, keep: Set<tf.Tensor>): boolean {
  if (keep.has(t) || t.isDisposed) return false;
  t.dispose();
  return true;
}

/** The node whose input gradients were handed out last, freed when the next node's are asked for. */
interface Pending {
  saved: tf.Tensor[];
  dys: tf.Tensor[];
  results: Set<tf.Tensor>;
}
let pending: Pending | undefined;

function flush(): void {
  const p = pending;
  pending = undefined;
  if (!p) return;
  for (const t of p.saved) if (release(t, p.results)) tapeReleaseCounts.saved++;
  for (const d of p.dys) if (release(d, p.results)) tapeReleaseCounts.gradients++;
}

/**
 * tfjs walks the tape strictly backwards, asking each node for its input-gradient functions and
 * calling them (only for inputs on the path to the variables, so their number is not known here)
 * before it moves to the next node. So when a node is asked, the previous node is done: its saved
 * tensors and output gradients are freed then. The last node of a backward pass is left to tfjs'
 * own clean-up at the end of the pass.
 */
function wrapNode(engine: EngineInternals, node: TapeNode): void {
  const gradient = node.gradient;
  if (!gradient) return;
  // A dy made before this node's outputs came from the caller (tf.grads(f)(xs, dy)): never ours to free.
  const firstOutputId = Math.min(...node.outputs.map((o) => o.id));
  node.gradient = (dys) => {
    flush();
    const thunks = gradient(dys);
    // During higher-order gradients the outer tape still records: keep everything, as tfjs does.
    if (engine.state.gradientDepth !== 0) return thunks;
    const results = new Set<tf.Tensor>();
    const wrapped: Thunks = {};
    for (const name of Object.keys(thunks)) {
      wrapped[name] = () => {
        const r = thunks[name]();
        results.add(r); // a gradient function may return a saved tensor or its dy itself
        return r;
      };
    }
    pending = {
      saved: [...(node.saved ?? [])],
      dys: dys.filter((d): d is tf.Tensor => d !== null && d.id > firstOutputId),
      results,
    };
    return wrapped;
  };
}

/**
 * Installs the early release on tfjs' engine (idempotent). Returns false, with a warning, where the
 * engine's internals are not the ones this was written for (tfjs-core 4.22): memory is then freed
 * at the end of the backward pass, as tfjs does, and nothing else changes.
 */
export function installTapeRelease(): boolean {
  if (stockAddTapeNode) return true;
  const engine = tf.engine() as unknown as EngineInternals;
  // `state.activeTape` does not exist until the first gradient starts a tape (tfjs' EngineState
  // declares it without a value), so the check is on what exists from the start.
  if (
    typeof engine.addTapeNode !== 'function' ||
    typeof engine.startTape !== 'function' ||
    typeof engine.state?.gradientDepth !== 'number'
  ) {
    console.warn(
      'dinotwins: this tfjs-core has no engine.addTapeNode/startTape/state.gradientDepth (written for 4.22); the backward pass keeps its memory until it ends',
    );
    return false;
  }
  const stock = engine.addTapeNode;
  stockAddTapeNode = stock;
  engine.addTapeNode = function (this: EngineInternals, ...args: unknown[]) {
    stock.apply(this, args);
    const tape = this.state.activeTape;
    if (tape && tape.length > 0) wrapNode(this, tape[tape.length - 1]);
  };
  return true;
}

/** Restores tfjs' own behaviour (A/B comparisons). */
export function uninstallTapeRelease(): void {
  if (!stockAddTapeNode) return;
  (tf.engine() as unknown as EngineInternals).addTapeNode = stockAddTapeNode;
  stockAddTapeNode = undefined;
  pending = undefined;
}

/** Whether the early release is installed. */
export function tapeReleaseActive(): boolean {
  return stockAddTapeNode !== undefined;
}

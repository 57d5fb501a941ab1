/**
 * The one registration point for dinotwins' own kernels. `lib/backend/select.ts` calls
 * `registerKernelsFor(name)` when it activates a backend; nothing else in `lib/` knows
 * which kernels are ours.
 */
import { registerGradients } from './gradients';
import { installTapeRelease } from './tapeRelease';

// Our Sum/Mean gradients (./gradients.ts) replace tfjs-core's for every backend as soon as
// anything loads this module: they give the same values without a CPU-side array per call.
registerGradients();
// The backward pass frees saved tensors and intermediate gradients as soon as they are dead
// (./tapeRelease.ts): same values, about half the peak memory of a training step.
installTapeRelease();

const registered = new Map<string, string[]>();
const registrars = new Map<string, () => string[]>();

/** Adds a registrar for a backend (called by each backend's kernel module). */
export function addKernelRegistrar(backend: string, registrar: () => string[]): void {
  registrars.set(backend, registrar);
}

/** Registers our kernels for `backend` once; returns the kernel names that are ours. */
export function registerKernelsFor(backend: string): string[] {
  const done = registered.get(backend);
  if (done) return done;
  const r = registrars.get(backend);
  const names = r ? r() : [];
  registered.set(backend, names);
  return names;
}

/** Names of the kernels we registered for `backend` (empty if none). */
export function ourKernels(backend: string): string[] {
  return registered.get(backend) ?? [];
}

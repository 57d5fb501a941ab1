/**
 * Makes the tfjs `webgpu` backend available in Node without activating it: Dawn through the npm
 * `webgpu` package, `navigator.gpu` set before tfjs-backend-webgpu is required (it registers only
 * if `navigator.gpu` exists then). Used by the kernel tests and the GPU bench; `lib/backend.ts`
 * does the same when it selects a backend.
 */
import { importEsm } from '../../util/esm';

/** Outcome of `ensureWebgpu`: an adapter description, or why there is none. */
export type WebgpuAvailability = { ok: true; adapter: string } | { ok: false; reason: string };

type Gpu = { requestAdapter(): Promise<{ info?: Record<string, string | undefined> } | null> };

/**
 * Ensures Dawn's navigator.gpu and the webgpu tfjs backend are loaded; returns the adapter.
 * `dawnFlags` go to Dawn's `create` (e.g. `enable-dawn-features=allow_unsafe_apis`).
 */
export async function ensureWebgpu(dawnFlags: string[] = []): Promise<WebgpuAvailability> {
  const g = globalThis as unknown as { navigator?: { gpu?: Gpu } };
  try {
    if (!g.navigator?.gpu) {
      const mod = await importEsm<{ create(args: string[]): Gpu; globals: Record<string, unknown> }>('webgpu');
      Object.assign(globalThis, mod.globals);
      const nav = (g.navigator ?? {}) as { gpu?: Gpu };
      nav.gpu = mod.create(dawnFlags);
      if (!g.navigator) (globalThis as Record<string, unknown>).navigator = nav;
    }
    const adapter = await g.navigator!.gpu!.requestAdapter();
    if (!adapter) {
      return { ok: false, reason: 'no WebGPU adapter: needs a Vulkan driver (on a CPU-only machine run `eval "$(scripts/setup-lavapipe.sh)"` first)' };
    }
    require('@tensorflow/tfjs-backend-webgpu');
    const i = adapter.info ?? {};
    return { ok: true, adapter: [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' | ') || 'unknown' };
  } catch (e) {
    return { ok: false, reason: `WebGPU unavailable: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` };
  }
}

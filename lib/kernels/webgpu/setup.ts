/**
 * Makes the tfjs `webgpu` backend available in Node without activating it: Dawn through the npm
 * `webgpu` package, `navigator.gpu` set before tfjs-backend-webgpu is required (it registers only
 * if `navigator.gpu` exists then). Used by the kernel tests and the GPU bench; `lib/backend/select.ts`
 * does the same when it selects a backend.
 */
import * as fs from 'fs';
import * as path from 'path';
import { importEsm } from '../../util/esm';

const VULKAN_LOADER = 'libvulkan.so.1';

/**
 * Whether the dynamic loader can find the Vulkan loader (Linux; elsewhere Dawn uses Metal or D3D12):
 * LD_LIBRARY_PATH, the ld.so cache, the default folders. Without it, Dawn prints a native
 * "Couldn't load Vulkan" warning to stderr and finds no adapter, so it is not asked at all.
 */
export function vulkanLoaderFound(env: NodeJS.ProcessEnv = process.env): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/lib', '/usr/lib', '/lib64', '/usr/lib64'];
  if (dirs.some((d) => fs.existsSync(path.join(d, VULKAN_LOADER)))) return true;
  try {
    return fs.readFileSync('/etc/ld.so.cache').includes(VULKAN_LOADER);
  } catch {
    return false;
  }
}

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
      if (!vulkanLoaderFound()) {
        return {
          ok: false,
          reason: `no WebGPU adapter: the Vulkan loader (${VULKAN_LOADER}) is not installed (Debian/Ubuntu: apt install libvulkan1, plus a GPU's Vulkan driver; on a CPU-only machine run \`eval "$(scripts/setup-lavapipe.sh)"\` first)`,
        };
      }
      const mod = await importEsm<{ create(args: string[]): Gpu; globals: Record<string, unknown> }>('webgpu');
      Object.assign(globalThis, mod.globals);
      const nav = (g.navigator ?? {}) as { gpu?: Gpu };
      nav.gpu = mod.create(dawnFlags);
      if (!g.navigator) (globalThis as Record<string, unknown>).navigator = nav;
    }
    const adapter = await g.navigator!.gpu!.requestAdapter();
    if (!adapter) {
      return {
        ok: false,
        reason:
          'no WebGPU adapter: needs a Vulkan driver (on a CPU-only machine run `eval "$(scripts/setup-lavapipe.sh)"` first)',
      };
    }
    require('@tensorflow/tfjs-backend-webgpu');
    const i = adapter.info ?? {};
    return {
      ok: true,
      adapter: [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' | ') || 'unknown',
    };
  } catch (e) {
    return { ok: false, reason: `WebGPU unavailable: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` };
  }
}

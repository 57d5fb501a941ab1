/**
 * Native kernels under the wasm backend (native/: oneDNN convolutions and products, fused batch
 * norm, layer norm, GELU and Adam, working in place on the wasm heap). Called by the wasm kernel
 * module after it registered its own kernels: each native kernel keeps the kernel it replaces as
 * its fallback for what it does not handle. Nothing is registered when the addon is absent or
 * DINOTWINS_NATIVE=0; `nativeStatus()` then says why in one line.
 */
import * as tf from '@tensorflow/tfjs';
import { registerCapabilities } from '../capabilities';
import { NativeStatus, loadNative, nativeAdaptive } from './addon';
import { LoadMonitor } from './loadMonitor';
import { conv2dKernels } from './conv';
import { fusedKernels } from './fusedOps';
import { matMulKernels } from './matmul';
import { elementwiseKernels } from './elementwise';

let registered: string[] = [];

/** Registers the native kernels for wasm when the addon loads; returns their names ([] if none). */
export function registerNativeKernels(): string[] {
  const st = loadNative();
  if (!st.ok || !st.addon) return [];
  const addon = st.addon;
  // The kernels registered now (ours or the stock ones) stay reachable as fallbacks.
  const before = new Map<string, tf.KernelConfig>();
  const fallback = (name: string): tf.KernelFunc => {
    const k = before.get(name);
    if (!k) throw new Error(`native kernels: no wasm kernel '${name}' to fall back to`);
    return k.kernelFunc;
  };
  const configs = [
    ...conv2dKernels(addon, fallback),
    ...matMulKernels(addon, fallback),
    ...elementwiseKernels(addon, fallback),
    ...fusedKernels(addon),
  ];
  // Beside busy processes the parts run on the calling thread alone (same results; loadMonitor.ts).
  const monitor = (st.threads ?? 1) > 1 && nativeAdaptive() ? new LoadMonitor() : undefined;
  let serial = false;
  const adapt = (): void => {
    const want = monitor!.shouldRunSerial();
    if (want !== serial) addon.setSerial((serial = want));
  };
  for (const c of configs) {
    if (monitor) {
      const f = c.kernelFunc;
      c.kernelFunc = (args) => {
        adapt();
        return f(args);
      };
    }
    const old = tf.getKernel(c.kernelName, 'wasm');
    if (old) {
      before.set(c.kernelName, old);
      tf.unregisterKernel(c.kernelName, 'wasm');
    }
    tf.registerKernel({ ...c, setupFunc: old?.setupFunc });
  }
  // Batch norm with statistics per view is one fused pass here: methods may batch views together.
  registerCapabilities('wasm', { groupedBatchNorm: true });
  registered = configs.map((c) => c.kernelName);
  return registered;
}

/** How the native kernels stand in this process (loads the addon if not yet tried). */
export function nativeStatus(): NativeStatus & { kernels: string[] } {
  return { ...loadNative(), kernels: registered };
}

/** One line for the backend report: "oneDNN kernels (2 threads, oneDNN 2.6.3)" or why not. */
export function nativeLine(): string {
  const s = nativeStatus();
  return s.ok && registered.length > 0
    ? `oneDNN kernels (${s.threads} thread${s.threads === 1 ? '' : 's'}, oneDNN ${s.onednn})`
    : `native kernels off: ${s.reason ?? 'not registered'}`;
}

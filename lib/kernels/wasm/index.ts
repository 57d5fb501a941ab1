/**
 * dinotwins' kernels for tfjs-backend-wasm 4.22, which cannot train a conv net as shipped:
 * it lacks the filter gradient of Conv2D, the depthwise gradients and UnsortedSegmentSum, its
 * MaxPoolGrad is wrong, its Conv2DBackpropInput is a scalar loop and every transposed or
 * batched matMul takes a scalar loop; Identity and Cast copy buffers that could be shared; its
 * Transpose crawls at high rank; its Sum and Mean transpose the whole tensor to reduce leading
 * axes, its binary ops broadcast a per-channel vector one short row at a time, and its Slice,
 * SplitV and Unpack copy the whole input out of the heap for every slice. Importing this module
 * adds a registrar; `lib/backend/select.ts` runs it (through `registerKernelsFor('wasm')`) when it
 * activates wasm. Where the native addon is built, its kernels (lib/kernels/native) are
 * registered over these, which stay as their fallbacks.
 */
import * as tf from '@tensorflow/tfjs';
import { addKernelRegistrar } from '../index';
import { captureStock } from './scope';
import { batchMatMul } from './batchMatMul';
import { conv2dBackpropFilterConfig } from './conv2dBackpropFilter';
import { conv2dBackpropInputConfig } from './conv2dBackpropInput';
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from './depthwiseGrads';
import { maxPoolGradConfig } from './maxPoolGrad';
import { unsortedSegmentSumConfig } from './unsortedSegmentSum';
import { castConfig, identityConfig } from './identity';
import { transposeConfig } from './transpose';
import { meanConfig, sumConfig } from './reduce';
import { broadcastConfigs } from './broadcast';
import { sliceConfig, splitVConfig, unpackConfig } from './slice';
import { registerNativeKernels } from '../native/index';

/** Registers (or replaces) one wasm kernel, keeping the stock setup function if there is one. */
function put(config: tf.KernelConfig): void {
  const old = captureStock(config.kernelName);
  if (old) tf.unregisterKernel(config.kernelName, 'wasm');
  tf.registerKernel({ ...config, setupFunc: config.setupFunc ?? old?.setupFunc });
}

/** Registers every kernel of this module for wasm; returns their names. */
export function registerWasmKernels(): string[] {
  // Loaded here, not at import: the package registers a backend that would otherwise become the
  // default (priority 2 beats cpu) for every program importing lib/.
  require('@tensorflow/tfjs-backend-wasm');
  const configs: tf.KernelConfig[] = [
    conv2dBackpropFilterConfig,
    conv2dBackpropInputConfig,
    depthwiseBackpropInputConfig,
    depthwiseBackpropFilterConfig,
    maxPoolGradConfig,
    unsortedSegmentSumConfig,
    { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: batchMatMul as unknown as tf.KernelFunc },
    identityConfig,
    castConfig,
    transposeConfig,
    sumConfig,
    meanConfig,
    ...broadcastConfigs,
    sliceConfig,
    splitVConfig,
    unpackConfig,
  ];
  for (const c of configs) put(c);
  // Native (oneDNN) kernels where the addon is built, over the ones above as their fallbacks.
  const native = registerNativeKernels();
  return [...new Set([...configs.map((c) => c.kernelName), ...native])];
}

addKernelRegistrar('wasm', registerWasmKernels);

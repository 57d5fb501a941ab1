/**
 * Fused ops that some backends implement as one kernel. A layer asks `hasFusedKernel(name)` for
 * the active backend and otherwise composes the same math from stock tfjs ops (lib/nn), so the
 * kernels stay an optimisation: registering them or not changes speed, not results beyond float
 * rounding. The implementations live with their backend (lib/kernels/webgpu/bnKernels.ts).
 *
 * Training-mode batch norm over the last axis (x seen as [R, C]):
 *   BATCH_NORM          inputs {x, gamma?, beta?, residual?}, attrs {eps, relu, groups?} -> [y, stats];
 *                       stats [groups * 2, C] = (mean, biased variance) per group of batch rows;
 *                       y = (x - mean) / sqrt(var + eps) * gamma + beta (+ residual), then max(y, 0)
 *                       if relu (a residual needs relu)
 *   BATCH_NORM_GRAD     inputs {dy, x, stats, gamma?, beta?, residual?}, attrs as above -> [dx],
 *                       [dx, dgamma, dbeta], plus dresidual last with a residual (dy masked by
 *                       y > 0 first if relu)
 *   BATCH_NORM_RUNNING  inputs {running, stats}, attrs {row, momentum, factor} ->
 *                       (1 - momentum) * running + momentum * factor * stats[row]
 * gamma and beta come together or not at all.
 *
 * AXPBY                inputs {x, y} (float32, same shape), attrs {a, b} -> a * x + b * y (the EMA
 *                      teacher update; a and b change every step, so they are uniforms, not constants)
 * LAYER_NORM           inputs {x, gamma, beta}, attrs {eps} -> (x - mean) / sqrt(var + eps) * gamma + beta
 *                      over the last axis
 * LAYER_NORM_GRAD      inputs {dy, x, gamma}, attrs {eps} -> [dx, dgamma, dbeta]
 * GELU / GELU_GRAD     inputs {x} -> exact GELU; inputs {dy, x} -> dy * GELU'(x)
 * ADAM_FLAT            inputs {g, scale [1], p, m, v, decay (bool), active? (bool)} over flat tensors,
 *                      attrs {which: 'm' | 'v' | 'p', lr, wd, beta1, beta2, eps, bc1, bc2, decoupled}
 *                      -> the new first moment, second moment or parameters of an Adam (L2) or AdamW
 *                      step (lib/train/optimizers.ts has the same arithmetic as tfjs ops)
 * ADAM_FLAT_ALL        ADAM_FLAT's inputs and attrs without `which` -> [p, m, v] in one pass (where a
 *                      backend has it, the optimizer uses it instead of three ADAM_FLAT calls)
 */
import * as tf from '@tensorflow/tfjs';

export const FUSED_KERNELS = {
  batchNorm: 'DinotwinsBatchNorm',
  batchNormGrad: 'DinotwinsBatchNormGrad',
  batchNormRunning: 'DinotwinsBatchNormRunning',
  axpby: 'DinotwinsAxpby',
  layerNorm: 'DinotwinsLayerNorm',
  layerNormGrad: 'DinotwinsLayerNormGrad',
  gelu: 'DinotwinsGelu',
  geluGrad: 'DinotwinsGeluGrad',
  adamFlat: 'DinotwinsAdamFlat',
  adamFlatAll: 'DinotwinsAdamFlatAll',
} as const;

/** True when the active backend has a kernel registered under `name`. */
export function hasFusedKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

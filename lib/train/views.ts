/** The training views for one step: the method's augmentation preset applied to a uint8 batch. */
import * as tf from '@tensorflow/tfjs';
import { makeViews, viewsForMethod, ViewsConfig } from '../augment/index';
import { PretrainConfig } from '../config';

const cache = new WeakMap<PretrainConfig, ViewsConfig>();

/** batch: uint8 NHWC [n, 32, 32, 3]; returns normalised float views (2 global, then locals). Caller disposes. */
export function makeTrainingViews(cfg: PretrainConfig, batch: Uint8Array, n: number, seed: number): tf.Tensor4D[] {
  let vc = cache.get(cfg);
  if (!vc) {
    vc = viewsForMethod(cfg.method, cfg.augment);
    cache.set(cfg, vc);
  }
  return makeViews(batch.subarray(0, n * 3072), vc, seed);
}

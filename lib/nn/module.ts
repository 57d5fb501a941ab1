/** The shape every network in dinotwins has: parameters in a store, a pure forward. */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from './params';
import { ForwardContext } from './layers';

/** A backbone maps images [B, H, W, 3] (normalised float32) to features [B, featureDim]. */
export interface Backbone {
  readonly kind: string;
  /** Serialisable description (goes into run records and checkpoints). */
  readonly spec: Record<string, unknown>;
  readonly featureDim: number;
  /** Creates a freshly initialised parameter store (names prefixed by `prefix`). */
  init(ps: ParamStore, seed: number, prefix?: string): void;
  forward(ps: ParamStore, x: tf.Tensor4D, ctx: ForwardContext, prefix?: string): tf.Tensor2D;
}

/** A head maps [B, inDim] to [B, outDim]. */
export interface Head {
  readonly kind: string;
  readonly spec: Record<string, unknown>;
  readonly inDim: number;
  readonly outDim: number;
  init(ps: ParamStore, seed: number, prefix?: string): void;
  forward(ps: ParamStore, x: tf.Tensor2D, ctx: ForwardContext, prefix?: string): tf.Tensor2D;
}

/** Forward helpers shared by the methods: run a network over a list of views. */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params';
import { ForwardContext } from '../nn/layers';
import { Backbone, Head } from '../nn/module';
import { PREFIX } from './method';
import { backendCapabilities } from '../kernels/capabilities';

/**
 * How views share a forward pass:
 * - 'separate': each view is its own pass (its own batch-norm statistics);
 * - 'joint': views of the same size go through one pass and batch norm sees them together (DINO's
 *   MultiCropWrapper);
 * - 'perView': views of the same size go through one pass, but batch norm takes statistics per
 *   view (`bnGroups`): the same values as 'separate' (the Barlow Twins reference runs each view on
 *   its own) with one pass instead of one per view: fewer, larger kernels and no gradient sums
 *   across the passes.
 */
export type ViewGrouping = 'separate' | 'joint' | 'perView';

/**
 * The faster of the two equivalent groupings for per-view statistics on the active backend:
 * 'perView' where grouped batch norm is cheap (a fused kernel: half the dispatches on WebGPU),
 * 'separate' elsewhere (see `BackendCapabilities.groupedBatchNorm`).
 */
export function perViewGrouping(): ViewGrouping {
  return backendCapabilities().groupedBatchNorm ? 'perView' : 'separate';
}

function groupCtx(ctx: ForwardContext, grouping: ViewGrouping, n: number): ForwardContext {
  return grouping === 'perView' && n > 1 ? { ...ctx, bnGroups: n } : ctx;
}

/** Backbone features [B, F] for each view, with the parameters `ps` (the student's or the teacher's). */
export function backboneFeatures(
  backbone: Backbone,
  ps: ParamStore,
  views: tf.Tensor4D[],
  ctx: ForwardContext,
  grouping: ViewGrouping,
): tf.Tensor2D[] {
  const out: tf.Tensor2D[] = new Array(views.length);
  let i = 0;
  while (i < views.length) {
    let j = i + 1;
    while (
      grouping !== 'separate' &&
      j < views.length &&
      views[j].shape[1] === views[i].shape[1] &&
      views[j].shape[0] === views[i].shape[0]
    )
      j++;
    const group = views.slice(i, j);
    const x = group.length === 1 ? group[0] : tf.concat(group, 0);
    const f = backbone.forward(ps, x, groupCtx(ctx, grouping, group.length), PREFIX.backbone); // [G*B, F]
    const parts = group.length === 1 ? [f] : tf.split(f, group.length, 0);
    for (let k = 0; k < parts.length; k++) out[i + k] = parts[k] as tf.Tensor2D;
    i = j;
  }
  return out;
}

/**
 * Applies a head to every view's features and stacks them: [V, B, D]. 'joint' concatenates the views
 * into one batch (DINO's head); 'perView' too, with batch-norm statistics per view (Barlow's
 * projector, whose batch norm must see one view at a time); 'separate' runs each view on its own.
 */
export function headOverViews(
  ps: ParamStore,
  head: Head,
  prefix: string,
  feats: tf.Tensor2D[],
  ctx: ForwardContext,
  grouping: ViewGrouping,
): tf.Tensor3D {
  const b = feats[0].shape[0];
  if (grouping === 'separate' || feats.length === 1)
    return tf.stack(feats.map((f) => head.forward(ps, f, ctx, prefix))) as tf.Tensor3D;
  const y = head.forward(ps, tf.concat(feats, 0), groupCtx(ctx, grouping, feats.length), prefix); // [V*B, D]
  return tf.reshape(y, [feats.length, b, y.shape[1]]);
}

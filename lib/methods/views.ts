/** Forward helpers shared by the methods: run a network over a list of views. */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params';
import { ForwardContext } from '../nn/layers';
import { Head } from '../nn/module';
import { SslModel, PREFIX } from './model';

/**
 * Backbone features for each view. With `groupSameSize`, views of the same size go through one
 * forward pass (as DINO's MultiCropWrapper does), so batch norm sees all same-resolution crops
 * together; without it, each view is its own pass (as the Barlow Twins reference does).
 */
export function backboneFeatures(m: SslModel, ps: ParamStore, views: tf.Tensor4D[], ctx: ForwardContext, groupSameSize: boolean): tf.Tensor2D[] {
  const out: tf.Tensor2D[] = new Array(views.length);
  let i = 0;
  while (i < views.length) {
    let j = i + 1;
    while (groupSameSize && j < views.length && views[j].shape[1] === views[i].shape[1]) j++;
    const group = views.slice(i, j);
    const x = group.length === 1 ? group[0] : tf.concat(group, 0);
    const f = m.backbone.forward(ps, x, ctx, PREFIX.backbone); // [G*B, F]
    const parts = group.length === 1 ? [f] : tf.split(f, group.length, 0);
    for (let k = 0; k < parts.length; k++) out[i + k] = parts[k] as tf.Tensor2D;
    i = j;
  }
  return out;
}

/**
 * Applies a head to every view's features and stacks them: [V, B, D]. `onePass` concatenates the
 * views into one batch (DINO's head); otherwise each view is its own batch (Barlow's projector,
 * whose batch norm must see one view at a time).
 */
export function headOverViews(ps: ParamStore, head: Head, prefix: string, feats: tf.Tensor2D[], ctx: ForwardContext, onePass: boolean): tf.Tensor3D {
  const b = feats[0].shape[0];
  if (!onePass) return tf.stack(feats.map((f) => head.forward(ps, f, ctx, prefix))) as tf.Tensor3D;
  const y = head.forward(ps, tf.concat(feats, 0), ctx, prefix); // [V*B, D]
  return tf.reshape(y, [feats.length, b, y.shape[1]]);
}

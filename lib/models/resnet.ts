/**
 * ResNet-18/50 with the CIFAR stem (He et al. 2016, "Deep Residual Learning"; block layout and
 * init as torchvision's resnet.py v1.5: stride on the 3x3 conv of the bottleneck, kaiming-normal
 * fan_out convs, BN gamma 1 / beta 0), with a 3x3 stride-1 first conv and no max-pool, as the
 * Barlow Twins / DINO CIFAR reproductions (lightly, solo-learn) use. Parameter names follow
 * torchvision's state_dict (`layer1.0.conv1.weight`, `bn1.running_mean`, `layer2.0.downsample.0.weight`).
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params';
import { Backbone } from '../nn/module';
import { ForwardContext, initConv2d, conv2d, initBatchNorm, batchNorm, BN_EPS } from '../nn/layers';
import { Rng, deriveSeed } from '../util/rng';

export type ResNetDepth = 18 | 50;

export interface ResNetOptions {
  /** 18 (BasicBlock, stages [2,2,2,2]) or 50 (Bottleneck, stages [3,4,6,3]). */
  depth: ResNetDepth;
  /** Width of the first stage; stages use width, 2w, 4w, 8w. Default 64 (torchvision); 16 makes CPU runs possible. */
  width?: number;
}

export const RESNET_DEFAULTS = Object.freeze({ width: 64 });

interface StageLayout {
  block: 'basic' | 'bottleneck';
  blocks: number[];
  expansion: number;
}

const LAYOUTS: Record<ResNetDepth, StageLayout> = {
  18: { block: 'basic', blocks: [2, 2, 2, 2], expansion: 1 },
  50: { block: 'bottleneck', blocks: [3, 4, 6, 3], expansion: 4 },
};

/** One residual block of the network, precomputed from the options. */
interface BlockPlan {
  name: string; // e.g. 'layer2.0'
  inC: number;
  planes: number;
  stride: number;
  downsample: boolean;
}

function plan(depth: ResNetDepth, width: number): { blocks: BlockPlan[]; featureDim: number } {
  const layout = LAYOUTS[depth];
  const blocks: BlockPlan[] = [];
  let inC = width;
  layout.blocks.forEach((n, s) => {
    const planes = width * 2 ** s;
    for (let b = 0; b < n; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      const outC = planes * layout.expansion;
      blocks.push({ name: `layer${s + 1}.${b}`, inC, planes, stride, downsample: stride !== 1 || inC !== outC });
      inC = outC;
    }
  });
  return { blocks, featureDim: inC };
}

/**
 * 3x3 conv with PyTorch's padding=1. Stride 1: TF 'same' is symmetric, so it is used directly.
 * Stride 2: TF 'same' pads only bottom/right, so pad 1 on every side explicitly, then 'valid'.
 */
function conv3x3(ps: ParamStore, name: string, x: tf.Tensor4D, stride: number): tf.Tensor4D {
  return stride === 1 ? conv2d(ps, name, x, 1, 'same') : conv2d(ps, name, x, stride, 1);
}

/**
 * conv -> batch norm (-> ReLU). In inference mode the running statistics are folded into the conv
 * (W' = W * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps)) and bias and ReLU
 * fused into it: one kernel instead of four passes over the activations, same values up to rounding.
 */
function convBn(
  ps: ParamStore,
  conv: string,
  bn: string,
  x: tf.Tensor4D,
  stride: number,
  k: 1 | 3,
  ctx: ForwardContext,
  relu: boolean,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  if (ctx.training) {
    const c = k === 3 ? conv3x3(ps, conv, x, stride) : conv2d(ps, conv, x, stride, 'valid');
    // A block's end, ReLU(bn(conv) + shortcut), is one op with the batch norm where it is fused.
    return batchNorm(ps, bn, c, ctx, { relu, residual });
  }
  const scale = tf.mul(ps.get(`${bn}.weight`), tf.rsqrt(tf.add(ps.get(`${bn}.running_var`), BN_EPS))); // [C]
  const filter = tf.mul(ps.get(`${conv}.weight`), scale) as tf.Tensor4D; // [k, k, in, C]
  const bias = tf.sub(ps.get(`${bn}.bias`), tf.mul(ps.get(`${bn}.running_mean`), scale)); // [C]
  const padded =
    k === 3 && stride !== 1
      ? tf.pad(x, [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ])
      : x;
  const pad = k === 3 && stride === 1 ? 'same' : 'valid';
  if (residual) {
    const y = tf.fused.conv2d({ x: padded, filter, strides: stride, pad, bias, activation: 'linear' });
    return (relu ? tf.relu(tf.add(y, residual)) : tf.add(y, residual)) as tf.Tensor4D;
  }
  return tf.fused.conv2d({ x: padded, filter, strides: stride, pad, bias, activation: relu ? 'relu' : 'linear' });
}

function checkOptions(opts: ResNetOptions): Required<ResNetOptions> {
  if (opts.depth !== 18 && opts.depth !== 50)
    throw new Error(`resnet: depth must be 18 or 50, got ${String(opts.depth)}`);
  const width = opts.width ?? RESNET_DEFAULTS.width;
  if (!Number.isInteger(width) || width < 1)
    throw new Error(`resnet: width must be a positive integer, got ${String(width)}`);
  return { depth: opts.depth, width };
}

/** Builds a CIFAR ResNet backbone: images [B, H, W, 3] -> globally pooled features [B, featureDim]. */
export function resnet(options: ResNetOptions): Backbone {
  const { depth, width } = checkOptions(options);
  const layout = LAYOUTS[depth];
  const { blocks, featureDim } = plan(depth, width);

  function init(ps: ParamStore, seed: number, prefix = ''): void {
    // One derived stream per conv, in a fixed order: the same seed gives the same weights on every backend.
    let k = 0;
    const rng = (): Rng => new Rng(deriveSeed(seed, k++));
    initConv2d(ps, `${prefix}conv1`, 3, 3, width, rng());
    initBatchNorm(ps, `${prefix}bn1`, width);
    for (const b of blocks) {
      const p = `${prefix}${b.name}`;
      if (layout.block === 'basic') {
        initConv2d(ps, `${p}.conv1`, 3, b.inC, b.planes, rng());
        initBatchNorm(ps, `${p}.bn1`, b.planes);
        initConv2d(ps, `${p}.conv2`, 3, b.planes, b.planes, rng());
        initBatchNorm(ps, `${p}.bn2`, b.planes);
      } else {
        initConv2d(ps, `${p}.conv1`, 1, b.inC, b.planes, rng());
        initBatchNorm(ps, `${p}.bn1`, b.planes);
        initConv2d(ps, `${p}.conv2`, 3, b.planes, b.planes, rng());
        initBatchNorm(ps, `${p}.bn2`, b.planes);
        initConv2d(ps, `${p}.conv3`, 1, b.planes, b.planes * layout.expansion, rng());
        initBatchNorm(ps, `${p}.bn3`, b.planes * layout.expansion);
      }
      if (b.downsample) {
        initConv2d(ps, `${p}.downsample.0`, 1, b.inC, b.planes * layout.expansion, rng());
        initBatchNorm(ps, `${p}.downsample.1`, b.planes * layout.expansion);
      }
    }
  }

  function block(ps: ParamStore, b: BlockPlan, x: tf.Tensor4D, ctx: ForwardContext, prefix: string): tf.Tensor4D {
    const p = `${prefix}${b.name}`;
    // 1x1 stride-s 'valid' conv samples pixels 0, s, 2s... exactly as PyTorch's padding=0.
    const shortcut = b.downsample
      ? convBn(ps, `${p}.downsample.0`, `${p}.downsample.1`, x, b.stride, 1, ctx, false)
      : x;
    // The last conv's batch norm ends the block: ReLU(bn(conv(y)) + shortcut).
    if (layout.block === 'basic') {
      const y = convBn(ps, `${p}.conv1`, `${p}.bn1`, x, b.stride, 3, ctx, true); // [B, H/s, W/s, planes]
      return convBn(ps, `${p}.conv2`, `${p}.bn2`, y, 1, 3, ctx, true, shortcut);
    }
    let y = convBn(ps, `${p}.conv1`, `${p}.bn1`, x, 1, 1, ctx, true); // [B, H, W, planes]
    y = convBn(ps, `${p}.conv2`, `${p}.bn2`, y, b.stride, 3, ctx, true); // [B, H/s, W/s, planes]
    return convBn(ps, `${p}.conv3`, `${p}.bn3`, y, 1, 1, ctx, true, shortcut); // [B, H/s, W/s, 4 planes]
  }

  function forward(ps: ParamStore, x: tf.Tensor4D, ctx: ForwardContext, prefix = ''): tf.Tensor2D {
    if (x.rank !== 4 || x.shape[3] !== 3)
      throw new Error(`resnet.forward: expected images [B, H, W, 3], got [${x.shape}]`);
    return tf.tidy(() => {
      let h = convBn(ps, `${prefix}conv1`, `${prefix}bn1`, x, 1, 3, ctx, true); // [B, H, W, w]
      for (const b of blocks) h = block(ps, b, h, ctx, prefix);
      return tf.mean(h, [1, 2]) as tf.Tensor2D; // [B, featureDim]
    });
  }

  return { kind: 'resnet', spec: { kind: 'resnet', depth, width }, featureDim, init, forward };
}

/**
 * Projection heads built from block lists (as lightly's heads.py): a general MLP builder, the
 * Barlow Twins projector (Zbontar et al. 2021, facebookresearch/barlowtwins main.py: Linear-BN-ReLU
 * blocks then a Linear, no biases) and DINO's head (Caron et al. 2021, facebookresearch/dino
 * vision_transformer.py DINOHead: MLP to a bottleneck, L2 normalisation, weight-normalised last layer).
 * Parameter names follow nn.Sequential indices (`0.weight`, `1.running_mean`; DINO: `mlp.0.weight`,
 * `last_layer.weight_g`, `last_layer.weight_v`).
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params';
import { Head } from '../nn/module';
import {
  ForwardContext,
  LinearInit,
  initLinear,
  linear,
  initBatchNorm,
  batchNorm,
  gelu,
  l2Normalize,
} from '../nn/layers';
import { Rng, deriveSeed } from '../util/rng';

/** One Linear layer and what follows it. */
export interface MlpBlock {
  /** Output width of the Linear layer. */
  out: number;
  /** Batch norm after the Linear layer. Default false. */
  bn?: boolean;
  /** Activation after the (normalised) Linear layer. Default null (none). */
  act?: 'relu' | 'gelu' | null;
  /** Bias on the Linear layer. Default true. */
  bias?: boolean;
}

export interface MlpHeadOptions {
  /** Linear-layer initialisation: 'torch' (nn.Linear default) or 'trunc02' (trunc normal 0.02, zero bias; DINO). Default 'torch'. */
  init?: LinearInit;
  /** Value of `Head.kind`. Default 'mlp'. */
  kind?: string;
}

/** A built MLP: the module names of its Linear and BN layers, in nn.Sequential numbering. */
interface MlpLayout {
  linear: string;
  bn?: string;
  act: 'relu' | 'gelu' | null;
  inF: number;
  block: Required<MlpBlock>;
}

function checkDim(what: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1)
    throw new Error(`${what} must be a positive integer, got ${String(v)}`);
  return v as number;
}

/**
 * Module names as nn.Sequential numbers them (each Linear, BN and activation takes an index).
 * `single` names a lone Linear without an index (an nn.Linear, not a Sequential), with `base` as its name.
 */
function layoutOf(inDim: number, blocks: readonly MlpBlock[], base: string): MlpLayout[] {
  if (blocks.length === 0) throw new Error('mlpHead: blocks must not be empty');
  const out: MlpLayout[] = [];
  let idx = 0;
  let inF = checkDim('mlpHead: inDim', inDim);
  const join = (i: number): string => (base ? `${base}.${i}` : `${i}`);
  const single = blocks.length === 1 && !blocks[0].bn && !blocks[0].act;
  blocks.forEach((b, i) => {
    checkDim(`mlpHead: blocks[${i}].out`, b.out);
    const act = b.act ?? null;
    if (act !== null && act !== 'relu' && act !== 'gelu')
      throw new Error(`mlpHead: blocks[${i}].act must be 'relu', 'gelu' or null, got ${String(act)}`);
    const block: Required<MlpBlock> = { out: b.out, bn: b.bn ?? false, act, bias: b.bias ?? true };
    const l: MlpLayout = { linear: single && base ? base : join(idx++), act, inF, block };
    if (block.bn) l.bn = join(idx++);
    if (act) idx++;
    out.push(l);
    inF = b.out;
  });
  return out;
}

function initMlp(ps: ParamStore, layout: MlpLayout[], rng: () => Rng, init: LinearInit, prefix: string): void {
  for (const l of layout) {
    initLinear(ps, `${prefix}${l.linear}`, l.inF, l.block.out, rng(), { bias: l.block.bias, init });
    if (l.bn) initBatchNorm(ps, `${prefix}${l.bn}`, l.block.out);
  }
}

function forwardMlp(
  ps: ParamStore,
  layout: MlpLayout[],
  x: tf.Tensor2D,
  ctx: ForwardContext,
  prefix: string,
): tf.Tensor2D {
  let h = x; // [B, in]
  for (const l of layout) {
    h = linear(ps, `${prefix}${l.linear}`, h); // [B, out]
    // A ReLU right after batch norm is part of the batch-norm op (one fused kernel where available).
    if (l.bn) h = batchNorm(ps, `${prefix}${l.bn}`, h, ctx, { relu: l.act === 'relu' });
    if (l.act === 'relu' && !l.bn) h = tf.relu(h);
    else if (l.act === 'gelu') h = gelu(h);
  }
  return h;
}

function checkInput(kind: string, inDim: number, x: tf.Tensor): void {
  if (x.rank !== 2 || x.shape[1] !== inDim)
    throw new Error(`${kind}.forward: expected [B, ${inDim}], got [${x.shape}]`);
}

/** General MLP head: a Linear (+BN) (+activation) per block. Names: `0.weight`, `1.weight` (BN), ... */
export function mlpHead(inDim: number, blocks: readonly MlpBlock[], opts: MlpHeadOptions = {}): Head {
  const layout = layoutOf(inDim, blocks, '');
  const init = opts.init ?? 'torch';
  const kind = opts.kind ?? 'mlp';
  const outDim = layout[layout.length - 1].block.out;
  return {
    kind,
    spec: { kind, inDim, blocks: layout.map((l) => ({ ...l.block })), init },
    inDim,
    outDim,
    init(ps, seed, prefix = '') {
      let k = 0;
      initMlp(ps, layout, () => new Rng(deriveSeed(seed, k++)), init, prefix);
    },
    forward(ps, x, ctx, prefix = '') {
      checkInput(kind, inDim, x);
      return tf.tidy(() => forwardMlp(ps, layout, x, ctx, prefix));
    },
  };
}

/** Widths of the Barlow Twins projector (defaults: lib/config/config.ts `projector`). */
export interface BarlowProjectorOptions {
  /** Hidden width. */
  hidden: number;
  /** Output width. */
  out: number;
  /** Number of Linear layers (layers-1 Linear-BN-ReLU blocks, then a Linear). */
  layers: number;
}

/** Blocks of the Barlow Twins projector (bias-free Linear layers, as the official code). */
export function barlowProjectorBlocks(o: BarlowProjectorOptions): MlpBlock[] {
  checkDim('barlowProjector: hidden', o.hidden);
  checkDim('barlowProjector: out', o.out);
  checkDim('barlowProjector: layers', o.layers);
  const blocks: MlpBlock[] = [];
  for (let i = 0; i < o.layers - 1; i++) blocks.push({ out: o.hidden, bn: true, act: 'relu', bias: false });
  blocks.push({ out: o.out, bias: false });
  return blocks;
}

/** The Barlow Twins projector on features [B, inDim] -> [B, out]. */
export function barlowProjector(inDim: number, opts: BarlowProjectorOptions): Head {
  return mlpHead(inDim, barlowProjectorBlocks(opts), { kind: 'barlow-projector' });
}

/** The DINO head's shape (defaults: lib/config/config.ts `dino.head`). */
export interface DinoHeadOptions {
  /** Number of prototypes K (output width). */
  out: number;
  /** MLP hidden width. */
  hidden: number;
  /** Bottleneck width before the last layer. */
  bottleneck: number;
  /** Linear layers in the MLP (>= 1). */
  nlayers: number;
  /** Batch norm after each hidden Linear. */
  useBn: boolean;
  /** Fix the weight-norm gain g to 1 (not trainable). */
  normLastLayer: boolean;
}

/** Names of the DINO head's last-layer parameters (frozen during the first epoch(s) by DINO's trainer). */
export function lastLayerParamNames(prefix = ''): string[] {
  return [`${prefix}last_layer.weight_g`, `${prefix}last_layer.weight_v`];
}

/**
 * DINO head: MLP (Linear-GELU(-BN) ... -> bottleneck, trunc normal 0.02, zero bias), L2 normalise,
 * then last layer W = g * v / ||v|| per output unit, no bias. Stored: weight_v [bottleneck, out]
 * (torch's [out, bottleneck] transposed, nn.Linear default init), weight_g [out] (torch: [out, 1]), set to 1.
 */
export function dinoHead(inDim: number, o: DinoHeadOptions): Head {
  checkDim('dinoHead: out', o.out);
  checkDim('dinoHead: hidden', o.hidden);
  checkDim('dinoHead: bottleneck', o.bottleneck);
  checkDim('dinoHead: nlayers', o.nlayers);
  const blocks: MlpBlock[] = [];
  for (let i = 0; i < o.nlayers - 1; i++) blocks.push({ out: o.hidden, bn: o.useBn, act: 'gelu' });
  blocks.push({ out: o.bottleneck });
  const layout = layoutOf(inDim, blocks, 'mlp');
  return {
    kind: 'dino-head',
    spec: { kind: 'dino-head', inDim, ...o },
    inDim,
    outDim: o.out,
    init(ps, seed, prefix = '') {
      let k = 0;
      const rng = (): Rng => new Rng(deriveSeed(seed, k++));
      initMlp(ps, layout, rng, 'trunc02', prefix);
      // DINO applies its trunc-normal init before creating last_layer, which keeps nn.Linear's default.
      const r = rng();
      const bound = 1 / Math.sqrt(o.bottleneck);
      ps.addValues(
        `${prefix}last_layer.weight_v`,
        [o.bottleneck, o.out],
        new Float32Array(o.bottleneck * o.out).map(() => r.uniform(-bound, bound)),
        'weight',
      );
      ps.addValues(`${prefix}last_layer.weight_g`, [o.out], new Float32Array(o.out).fill(1), 'norm', !o.normLastLayer);
    },
    forward(ps, x, ctx, prefix = '') {
      checkInput('dinoHead', inDim, x);
      return tf.tidy(() => {
        const z = l2Normalize(forwardMlp(ps, layout, x, ctx, prefix)); // [B, bottleneck]
        const v = ps.get(`${prefix}last_layer.weight_v`); // [bottleneck, out]
        const g = ps.get(`${prefix}last_layer.weight_g`); // [out]
        // z @ (v * g/||v||_col) == (z @ v) * g/||v||_col: scale the [B, out] product, not the matrix.
        const scale = tf.div(g, tf.sqrt(tf.sum(tf.square(v), 0))); // [out]
        return tf.mul(tf.matMul(z, v as tf.Tensor2D), scale) as tf.Tensor2D; // [B, out]
      });
    },
  };
}

/**
 * Vision Transformer (Dosovitskiy et al. 2021) as facebookresearch/dino's vision_transformer.py:
 * patch embedding by a patch x patch stride-patch conv, CLS token, learned position embeddings
 * (trunc normal 0.02), pre-norm blocks (LN eps 1e-6, MHSA with one qkv linear, MLP with exact GELU),
 * final LN; features = the CLS token output. Position embeddings of other input sizes (DINO's local
 * crops) are bicubically interpolated as DINO's `interpolate_pos_encoding`. Names follow its state_dict.
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params';
import { Backbone } from '../nn/module';
import { ForwardContext, initLinear, linear, initLayerNorm, layerNorm, gelu } from '../nn/layers';
import { Rng, deriveSeed } from '../util/rng';

export interface VitOptions {
  /** Training image size (square); the position embeddings cover (imageSize / patch)^2 patches. */
  imageSize: number;
  /** Patch size (square). */
  patch: number;
  /** Embedding width. */
  dim: number;
  /** Number of transformer blocks. */
  depth: number;
  /** Attention heads (dim must be divisible by heads). */
  heads: number;
  /** Hidden width of each block's MLP. */
  mlpDim: number;
  /** Bias on the qkv projection (DINO: true). */
  qkvBias: boolean;
  /** Layer-norm epsilon (DINO/timm: 1e-6). */
  lnEps: number;
}

/** Named ViT configurations for 32x32 images with 4x4 patches (64 patches + CLS = 65 tokens). */
export const VIT_PRESETS: Readonly<Record<'tiny4-seed' | 'tiny4', Readonly<VitOptions>>> = Object.freeze({
  /** The original project's network: dim 192, depth 4, 6 heads, MLP 1024. */
  'tiny4-seed': Object.freeze({
    imageSize: 32,
    patch: 4,
    dim: 192,
    depth: 4,
    heads: 6,
    mlpDim: 1024,
    qkvBias: true,
    lnEps: 1e-6,
  }),
  /** Standard ViT-Tiny (DeiT-Ti / DINO vit_tiny): dim 192, depth 12, 3 heads, MLP 768. */
  tiny4: Object.freeze({
    imageSize: 32,
    patch: 4,
    dim: 192,
    depth: 12,
    heads: 3,
    mlpDim: 768,
    qkvBias: true,
    lnEps: 1e-6,
  }),
});

export type VitPresetName = keyof typeof VIT_PRESETS;

function checkOptions(o: VitOptions): void {
  const posInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;
  for (const k of ['imageSize', 'patch', 'dim', 'depth', 'heads', 'mlpDim'] as const) {
    if (!posInt(o[k])) throw new Error(`vit: ${k} must be a positive integer, got ${String(o[k])}`);
  }
  if (o.imageSize % o.patch !== 0)
    throw new Error(`vit: imageSize ${o.imageSize} is not divisible by patch ${o.patch}`);
  if (o.dim % o.heads !== 0) throw new Error(`vit: dim ${o.dim} is not divisible by heads ${o.heads}`);
  if (!(o.lnEps > 0)) throw new Error(`vit: lnEps must be > 0, got ${String(o.lnEps)}`);
  if (typeof o.qkvBias !== 'boolean') throw new Error(`vit: qkvBias must be a boolean, got ${String(o.qkvBias)}`);
}

/** PyTorch's bicubic kernel (A = -0.75), weights of the 4 taps around a fractional offset t. */
function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const c1 = (x: number): number => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| <= 1
  const c2 = (x: number): number => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2
  return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
}

/**
 * Matrix [outN, inN] of 1-D bicubic interpolation as F.interpolate(mode='bicubic',
 * align_corners=False, scale_factor=s): source = (dst + 0.5) / s - 0.5, taps clamped to the edge.
 */
export function bicubicMatrix(inN: number, outN: number, scale: number): Float64Array {
  const m = new Float64Array(outN * inN);
  for (let o = 0; o < outN; o++) {
    const real = (o + 0.5) / scale - 0.5;
    const i0 = Math.floor(real);
    const w = cubicWeights(real - i0);
    for (let k = 0; k < 4; k++) {
      const i = Math.min(Math.max(i0 - 1 + k, 0), inN - 1);
      m[o * inN + i] += w[k];
    }
  }
  return m;
}

/**
 * Matrix [gh*gw, G*G] mapping the G x G grid of patch position embeddings to gh x gw, exactly as
 * DINO's interpolate_pos_encoding (scale factor (g + 0.1) / G per axis, bicubic).
 */
function posInterpMatrix(G: number, gh: number, gw: number): Float32Array {
  const ah = bicubicMatrix(G, gh, (gh + 0.1) / G); // [gh, G]
  const aw = bicubicMatrix(G, gw, (gw + 0.1) / G); // [gw, G]
  const m = new Float32Array(gh * gw * G * G);
  for (let r = 0; r < gh; r++)
    for (let c = 0; c < gw; c++) {
      const row = (r * gw + c) * G * G;
      for (let i = 0; i < G; i++) {
        const a = ah[r * G + i];
        if (a === 0) continue;
        for (let j = 0; j < G; j++) m[row + i * G + j] = a * aw[c * G + j];
      }
    }
  return m;
}

/** Builds a ViT backbone: images [B, H, W, 3] (H, W multiples of the patch) -> CLS features [B, dim]. */
export function vit(options: VitOptions): Backbone {
  const o: VitOptions = { ...options };
  checkOptions(o);
  const G = o.imageSize / o.patch; // patches per side at the training size
  const T = G * G + 1; // tokens
  const dh = o.dim / o.heads;
  const interpCache = new Map<string, Float32Array>();

  function init(ps: ParamStore, seed: number, prefix = ''): void {
    let k = 0;
    const rng = (): Rng => new Rng(deriveSeed(seed, k++));
    // Patch embedding: nn.Conv2d's default init, U(+-1/sqrt(fan_in)) for weight and bias (DINO leaves it as is).
    const fanIn = o.patch * o.patch * 3;
    const bound = 1 / Math.sqrt(fanIn);
    const r0 = rng();
    const w = new Float32Array(fanIn * o.dim).map(() => r0.uniform(-bound, bound));
    ps.addValues(`${prefix}patch_embed.proj.weight`, [o.patch, o.patch, 3, o.dim], w, 'weight');
    ps.addValues(
      `${prefix}patch_embed.proj.bias`,
      [o.dim],
      new Float32Array(o.dim).map(() => r0.uniform(-bound, bound)),
      'bias',
    );
    const r1 = rng();
    ps.addValues(
      `${prefix}cls_token`,
      [1, 1, o.dim],
      new Float32Array(o.dim).map(() => 0.02 * r1.truncNormal()),
      'embedding',
    );
    ps.addValues(
      `${prefix}pos_embed`,
      [1, T, o.dim],
      new Float32Array(T * o.dim).map(() => 0.02 * r1.truncNormal()),
      'embedding',
    );
    for (let i = 0; i < o.depth; i++) {
      const p = `${prefix}blocks.${i}`;
      initLayerNorm(ps, `${p}.norm1`, o.dim);
      initLinear(ps, `${p}.attn.qkv`, o.dim, 3 * o.dim, rng(), { init: 'trunc02', bias: o.qkvBias });
      initLinear(ps, `${p}.attn.proj`, o.dim, o.dim, rng(), { init: 'trunc02' });
      initLayerNorm(ps, `${p}.norm2`, o.dim);
      initLinear(ps, `${p}.mlp.fc1`, o.dim, o.mlpDim, rng(), { init: 'trunc02' });
      initLinear(ps, `${p}.mlp.fc2`, o.mlpDim, o.dim, rng(), { init: 'trunc02' });
    }
    initLayerNorm(ps, `${prefix}norm`, o.dim);
  }

  /** Position embeddings for a gh x gw patch grid: [1, 1 + gh*gw, dim]. */
  function posEmbed(ps: ParamStore, gh: number, gw: number, prefix: string): tf.Tensor3D {
    const pos = ps.get(`${prefix}pos_embed`) as tf.Tensor3D; // [1, T, D]
    if (gh === G && gw === G) return pos;
    const key = `${gh}x${gw}`;
    let m = interpCache.get(key);
    if (!m) interpCache.set(key, (m = posInterpMatrix(G, gh, gw)));
    const cls = tf.slice(pos, [0, 0, 0], [1, 1, o.dim]); // [1, 1, D]
    const grid = tf.reshape(tf.slice(pos, [0, 1, 0], [1, G * G, o.dim]), [G * G, o.dim]); // [G*G, D]
    const patches = tf.matMul(tf.tensor2d(m, [gh * gw, G * G]), grid); // [gh*gw, D]
    return tf.concat([cls, tf.reshape(patches, [1, gh * gw, o.dim])], 1);
  }

  function attention(ps: ParamStore, p: string, x: tf.Tensor3D, ctx: ForwardContext): tf.Tensor3D {
    const [B, N] = x.shape;
    const qkv = linear(ps, `${p}.attn.qkv`, x); // [B, N, 3D]
    // [B, N, 3, H, dh] -> [3, B, H, N, dh]
    const split = tf.transpose(tf.reshape(qkv, [B, N, 3, o.heads, dh]), [2, 0, 3, 1, 4]);
    const [q, k, v] = tf.unstack(split, 0) as tf.Tensor4D[]; // each [B, H, N, dh]
    const logits = tf.matMul(tf.mul(q, 1 / Math.sqrt(dh)), k, false, true); // [B, H, N, N]
    const attn = tf.softmax(logits, -1) as tf.Tensor4D;
    if (ctx.attention) ctx.attention.push(tf.keep(attn));
    const out = tf.matMul(attn, v); // [B, H, N, dh]
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B, N, o.dim]) as tf.Tensor3D; // [B, N, D]
    return linear(ps, `${p}.attn.proj`, merged);
  }

  function forward(ps: ParamStore, x: tf.Tensor4D, ctx: ForwardContext, prefix = ''): tf.Tensor2D {
    if (x.rank !== 4 || x.shape[3] !== 3)
      throw new Error(`vit.forward: expected images [B, H, W, 3], got [${x.shape}]`);
    const [B, H, W] = x.shape;
    if (H % o.patch !== 0 || W % o.patch !== 0)
      throw new Error(`vit.forward: image size ${H}x${W} is not a multiple of the patch size ${o.patch}`);
    return tf.tidy(() => {
      const gh = H / o.patch;
      const gw = W / o.patch;
      let e = tf.conv2d(x, ps.get(`${prefix}patch_embed.proj.weight`) as tf.Tensor4D, o.patch, 'valid'); // [B, gh, gw, D]
      e = tf.add(e, ps.get(`${prefix}patch_embed.proj.bias`));
      const cls = tf.broadcastTo(ps.get(`${prefix}cls_token`), [B, 1, o.dim]); // [B, 1, D]
      let h = tf.concat([cls, tf.reshape(e, [B, gh * gw, o.dim])], 1) as tf.Tensor3D; // [B, N, D]
      h = tf.add(h, posEmbed(ps, gh, gw, prefix)) as tf.Tensor3D;
      for (let i = 0; i < o.depth; i++) {
        const p = `${prefix}blocks.${i}`;
        h = tf.add(h, attention(ps, p, layerNorm(ps, `${p}.norm1`, h, o.lnEps), ctx)) as tf.Tensor3D;
        const m = linear(ps, `${p}.mlp.fc2`, gelu(linear(ps, `${p}.mlp.fc1`, layerNorm(ps, `${p}.norm2`, h, o.lnEps)))); // [B, N, D]
        h = tf.add(h, m) as tf.Tensor3D;
      }
      h = layerNorm(ps, `${prefix}norm`, h, o.lnEps);
      return tf.reshape(tf.slice(h, [0, 0, 0], [B, 1, o.dim]), [B, o.dim]) as tf.Tensor2D; // [B, D]
    });
  }

  return { kind: 'vit', spec: { kind: 'vit', ...o }, featureDim: o.dim, init, forward };
}

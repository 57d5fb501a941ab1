/**
 * The fused ops of lib/kernels/fused.ts (batch norm with its running update, layer norm, GELU,
 * the EMA's a*x + b*y and the flat Adam step) for wasm through the native addon
 * (native/src/norm_ops.cc): one pass or two over the activations instead of a dozen stock kernels.
 * Registering them makes lib/nn take the fused path on wasm, as on WebGPU.
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS } from '../fused';
import { NativeAddon } from './addon';
import { KernelArgs, alloc, f32, size, u8 } from './heapViews';

type TI = tf.TensorInfo;

function checkFloat(kernel: string, ts: Array<TI | undefined>): void {
  for (const t of ts)
    if (t && t.dtype !== 'float32')
      throw new Error(`${kernel} (wasm, native): float32 only, got ${t.dtype} [${t.shape}]`);
}

function rowsCols(kernel: string, shape: number[], groups = 1): { r: number; c: number } {
  if (shape.length < 2) throw new Error(`${kernel}: input must have rank >= 2, got shape [${shape}]`);
  const c = shape[shape.length - 1];
  const r = size(shape) / c;
  if (!Number.isInteger(groups) || groups < 1 || shape[0] % groups !== 0) {
    throw new Error(`${kernel}: groups must be a positive integer dividing the batch (${shape[0]}), got ${groups}`);
  }
  return { r, c };
}

function checkLen(kernel: string, name: string, t: TI | undefined, n: number): void {
  if (t && size(t.shape) !== n) throw new Error(`${kernel}: ${name} has shape [${t.shape}], expected ${n} elements`);
}

export function fusedKernels(addon: NativeAddon): tf.KernelConfig[] {
  const K = FUSED_KERNELS;
  const opt = (b: tf.KernelBackend, t: TI | undefined): Float32Array | null => (t ? f32(b, t) : null);

  const batchNorm: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { x, gamma, beta, residual } = inputs as Record<string, TI | undefined> as {
      x: TI;
      gamma?: TI;
      beta?: TI;
      residual?: TI;
    };
    const { eps, relu, groups = 1 } = args.attrs as { eps: number; relu: boolean; groups?: number };
    checkFloat(K.batchNorm, [x, gamma, beta, residual]);
    const { r, c } = rowsCols(K.batchNorm, x.shape, groups);
    checkLen(K.batchNorm, 'gamma', gamma, c);
    checkLen(K.batchNorm, 'beta', beta, c);
    checkLen(K.batchNorm, 'residual', residual, r * c);
    const y = alloc(backend, x.shape);
    const stats = alloc(backend, [2 * groups, c]);
    addon.bnForward(
      r,
      c,
      groups,
      eps,
      relu,
      f32(backend, x),
      opt(backend, gamma),
      opt(backend, beta),
      opt(backend, residual),
      f32(backend, y),
      f32(backend, stats),
    );
    return [y, stats];
  };

  const batchNormGrad: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { dy, x, stats, gamma, beta, residual } = inputs as Record<string, TI | undefined> as {
      dy: TI;
      x: TI;
      stats: TI;
      gamma?: TI;
      beta?: TI;
      residual?: TI;
    };
    const { eps, relu, groups = 1 } = args.attrs as { eps: number; relu: boolean; groups?: number };
    checkFloat(K.batchNormGrad, [dy, x, stats, gamma, beta, residual]);
    const { r, c } = rowsCols(K.batchNormGrad, x.shape, groups);
    checkLen(K.batchNormGrad, 'dy', dy, r * c);
    checkLen(K.batchNormGrad, 'stats', stats, 2 * groups * c);
    const dx = alloc(backend, x.shape);
    const dgamma = gamma ? alloc(backend, [c]) : undefined;
    const dbeta = gamma ? alloc(backend, [c]) : undefined;
    const dres = residual ? alloc(backend, x.shape) : undefined;
    addon.bnBackward(
      r,
      c,
      groups,
      eps,
      relu,
      f32(backend, dy),
      f32(backend, x),
      f32(backend, stats),
      opt(backend, gamma),
      opt(backend, beta),
      opt(backend, residual),
      f32(backend, dx),
      opt(backend, dgamma),
      opt(backend, dbeta),
      opt(backend, dres),
    );
    return [dx, ...(dgamma && dbeta ? [dgamma, dbeta] : []), ...(dres ? [dres] : [])];
  };

  const batchNormRunning: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { running, stats } = inputs as { running: TI; stats: TI };
    const { row, momentum, factor } = args.attrs as { row: 0 | 1; momentum: number; factor: number };
    checkFloat(K.batchNormRunning, [running, stats]);
    const c = size(running.shape);
    const s = size(stats.shape);
    if (s === 0 || s % (2 * c) !== 0)
      throw new Error(`${K.batchNormRunning}: stats [${stats.shape}] do not match ${c} channels`);
    const out = alloc(backend, running.shape);
    const rv = f32(backend, running);
    const sv = f32(backend, stats);
    const ov = f32(backend, out);
    // Group after group, as successive passes would (float32 arithmetic, like the WebGPU kernel).
    const keep = Math.fround(1 - momentum);
    const mom = Math.fround(momentum);
    const fac = Math.fround(factor);
    for (let j = 0; j < c; j++) {
      let v = rv[j];
      for (let g = 0; g < s / (2 * c); g++)
        v = Math.fround(Math.fround(v * keep) + Math.fround(Math.fround(sv[g * 2 * c + row * c + j] * fac) * mom));
      ov[j] = v;
    }
    return out;
  };

  const axpby: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { x, y } = inputs as { x: TI; y: TI };
    const { a, b } = args.attrs as { a: number; b: number };
    checkFloat(K.axpby, [x, y]);
    if (x.shape.join() !== y.shape.join()) throw new Error(`${K.axpby}: x [${x.shape}] and y [${y.shape}] differ`);
    const out = alloc(backend, x.shape);
    addon.axpby(size(x.shape), a, b, f32(backend, x), f32(backend, y), f32(backend, out));
    return out;
  };

  const layerNorm: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { x, gamma, beta } = inputs as { x: TI; gamma: TI; beta: TI };
    const { eps } = args.attrs as { eps: number };
    checkFloat(K.layerNorm, [x, gamma, beta]);
    const { r, c } = rowsCols(K.layerNorm, x.shape);
    checkLen(K.layerNorm, 'gamma', gamma, c);
    checkLen(K.layerNorm, 'beta', beta, c);
    const y = alloc(backend, x.shape);
    addon.lnForward(r, c, eps, f32(backend, x), f32(backend, gamma), f32(backend, beta), f32(backend, y));
    return y;
  };

  const layerNormGrad: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { dy, x, gamma } = inputs as { dy: TI; x: TI; gamma: TI };
    const { eps } = args.attrs as { eps: number };
    checkFloat(K.layerNormGrad, [dy, x, gamma]);
    const { r, c } = rowsCols(K.layerNormGrad, x.shape);
    checkLen(K.layerNormGrad, 'dy', dy, r * c);
    checkLen(K.layerNormGrad, 'gamma', gamma, c);
    const dx = alloc(backend, x.shape);
    const dgamma = alloc(backend, [c]);
    const dbeta = alloc(backend, [c]);
    addon.lnBackward(
      r,
      c,
      eps,
      f32(backend, dy),
      f32(backend, x),
      f32(backend, gamma),
      f32(backend, dx),
      f32(backend, dgamma),
      f32(backend, dbeta),
    );
    return [dx, dgamma, dbeta];
  };

  const gelu: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { x } = inputs as { x: TI };
    checkFloat(K.gelu, [x]);
    const y = alloc(backend, x.shape);
    addon.geluForward(size(x.shape), f32(backend, x), f32(backend, y));
    return y;
  };

  const geluGrad: tf.KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const { dy, x } = inputs as { dy: TI; x: TI };
    checkFloat(K.geluGrad, [dy, x]);
    checkLen(K.geluGrad, 'dy', dy, size(x.shape));
    const dx = alloc(backend, x.shape);
    addon.geluBackward(size(x.shape), f32(backend, dy), f32(backend, x), f32(backend, dx));
    return dx;
  };

  const adamFlat =
    (all: boolean): tf.KernelFunc =>
    (args) => {
      const { inputs, backend } = args as unknown as KernelArgs;
      const ins = inputs as { g: TI; scale: TI; p: TI; m: TI; v: TI; decay: TI; active?: TI };
      const a = args.attrs as {
        which?: string;
        lr: number;
        wd: number;
        beta1: number;
        beta2: number;
        eps: number;
        bc1: number;
        bc2: number;
        decoupled: boolean;
      };
      const name = all ? K.adamFlatAll : K.adamFlat;
      if (!all && a.which !== 'm' && a.which !== 'v' && a.which !== 'p')
        throw new Error(`${name}: which must be 'm', 'v' or 'p', got ${String(a.which)}`);
      checkFloat(name, [ins.g, ins.scale, ins.p, ins.m, ins.v]);
      const n = size(ins.p.shape);
      for (const [k, t] of Object.entries(ins)) if (k !== 'scale' && t) checkLen(name, k, t, n);
      for (const t of [ins.decay, ins.active])
        if (t && t.dtype !== 'bool') throw new Error(`${name}: masks must be bool, got ${t.dtype}`);
      const hyper = Float64Array.from([a.lr, a.wd, a.beta1, a.beta2, a.eps, a.bc1, a.bc2]);
      for (const [i, k] of ['lr', 'wd', 'beta1', 'beta2', 'eps', 'bc1', 'bc2'].entries()) {
        if (!Number.isFinite(hyper[i])) throw new Error(`${name}: ${k} must be a finite number, got ${hyper[i]}`);
      }
      const outs = (all ? ['p', 'm', 'v'] : [a.which as string]).map((w) => ({ w, t: alloc(backend, ins.p.shape) }));
      const view = (w: string): Float32Array | null => {
        const o = outs.find((x) => x.w === w);
        return o ? f32(backend, o.t) : null;
      };
      addon.adamFlat(
        n,
        hyper,
        a.decoupled,
        f32(backend, ins.g),
        f32(backend, ins.scale),
        f32(backend, ins.p),
        f32(backend, ins.m),
        f32(backend, ins.v),
        u8(backend, ins.decay),
        ins.active ? u8(backend, ins.active) : null,
        view('p'),
        view('m'),
        view('v'),
      );
      return all ? outs.map((o) => o.t) : outs[0].t;
    };

  const w = (kernelName: string, kernelFunc: tf.KernelFunc): tf.KernelConfig => ({
    kernelName,
    backendName: 'wasm',
    kernelFunc,
  });
  return [
    w(K.batchNorm, batchNorm),
    w(K.batchNormGrad, batchNormGrad),
    w(K.batchNormRunning, batchNormRunning),
    w(K.axpby, axpby),
    w(K.layerNorm, layerNorm),
    w(K.layerNormGrad, layerNormGrad),
    w(K.gelu, gelu),
    w(K.geluGrad, geluGrad),
    w(K.adamFlat, adamFlat(false)),
    w(K.adamFlatAll, adamFlat(true)),
  ];
}

/**
 * Optimizers over a ParamStore: Adam (Kingma & Ba; L2 decay as torch.optim.Adam), AdamW
 * (Loshchilov & Hutter; decoupled decay), SGD with momentum (torch.optim.SGD) and LARS (You et
 * al. 2017, as in the Barlow Twins reference code: biases and norms get neither decay nor
 * adaptation). Weight decay skips biases, norms and buffers. State is named tensors, so it goes
 * into checkpoints and a resumed run continues bit-exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, hasFusedKernel } from '../kernels/fused';
import { ParamStore, takesWeightDecay } from '../nn/params';
import { FlatSlots } from './flatSlots';
import { CONFIG_DEFAULTS, OPTIMIZER_KINDS, OptimizerConfig, OptimizerKind } from '../config/config';

/** An optimizer config for `kind` with the defaults of lib/config/config.ts (probes and baselines). */
export function optimizerConfig(kind: OptimizerKind, over: Partial<OptimizerConfig> = {}): OptimizerConfig {
  return { ...CONFIG_DEFAULTS.optimizer, ...over, kind };
}

/** Named optimizer state for checkpoints. */
export interface OptimizerState {
  step: number;
  tensors: Map<string, tf.Tensor>;
}

/**
 * One scalar tensor per constant for a whole update (call inside the update's tidy): a JS number
 * in an op becomes a new tensor per call, which the WebGPU backend uploads into a fresh GPU buffer
 * each time (about 0.4 ms apiece on the H100 host by a CPU profile; 9 per parameter for AdamW). Same values.
 */
function scalarCache(): (v: number) => tf.Scalar {
  const consts = new Map<number, tf.Scalar>();
  return (v) => {
    let c = consts.get(v);
    if (!c) {
      c = tf.scalar(v, 'float32');
      consts.set(v, c);
    }
    return c;
  };
}

export class Optimizer {
  readonly cfg: Required<OptimizerConfig>;
  private slots = new Map<string, tf.Variable>();
  /** Adam/AdamW moments of all parameters as two flat tensors (see flatSlots.ts). */
  private flat = new FlatSlots();
  private t = 0;

  /** `cfg` holds the keys its kind reads (a resolved config's `optimizer`, or `optimizerConfig(kind)`). */
  constructor(cfg: OptimizerConfig) {
    if (!OPTIMIZER_KINDS.includes(cfg.kind))
      throw new Error(`optimizer kind "${cfg.kind}" is not one of ${OPTIMIZER_KINDS.join(', ')}`);
    const need =
      cfg.kind === 'sgd' ? ['momentum'] : cfg.kind === 'lars' ? ['momentum', 'larsEta'] : ['beta1', 'beta2', 'eps'];
    const missing = need.filter((k) => typeof (cfg as unknown as Record<string, unknown>)[k] !== 'number');
    if (missing.length > 0)
      throw new Error(
        `optimizer "${cfg.kind}" needs ${missing.join(', ')} (use optimizerConfig(kind) for the defaults)`,
      );
    // Keys the kind does not read are NaN: using one would poison the update visibly, not silently.
    this.cfg = { beta1: NaN, beta2: NaN, eps: NaN, momentum: NaN, larsEta: NaN, ...cfg };
  }

  /** Number of updates applied so far. */
  get steps(): number {
    return this.t;
  }

  private slot(key: string, like: tf.Tensor): tf.Variable {
    let v = this.slots.get(key);
    if (!v) {
      v = tf.variable(tf.zerosLike(like), false);
      this.slots.set(key, v);
    }
    return v;
  }

  /**
   * Applies one update. `grads` maps parameter names of `ps` to gradients (it is not disposed).
   * `weightDecay` is the step's decay (a schedule value; biases, norms and buffers never decay).
   * `frozen` names get no update (e.g. the DINO last layer in epoch 0); their gradients are discarded,
   * so they are left out of the clipping norm too, as in main_dino.py, where the frozen layer's
   * gradient never scales another parameter's. Returns the global norm of the updated parameters'
   * gradients before clipping (a scalar tensor the caller disposes, read it back lazily).
   */
  apply(
    ps: ParamStore,
    grads: Map<string, tf.Tensor>,
    lr: number,
    opts: { weightDecay: number; frozen?: ReadonlySet<string> },
  ): tf.Scalar {
    const c = this.cfg;
    const wd = opts.weightDecay;
    if (!Number.isFinite(wd) || wd < 0) throw new Error(`optimizer: weight decay must be finite and >= 0, got ${wd}`);
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`optimizer: learning rate must be finite and >= 0, got ${lr}`);
    this.t += 1;
    const t = this.t;
    if (c.kind === 'adam' || c.kind === 'adamw') return this.applyAdamFlat(ps, grads, lr, wd, opts.frozen, t);
    // SGD and LARS, parameter by parameter (LARS needs per-parameter norms).
    return tf.tidy(() => {
      const k = scalarCache();
      const names = [...grads.keys()];
      const sq = names.filter((n) => !opts.frozen?.has(n)).map((n) => tf.sum(tf.square(grads.get(n)!)));
      const gnorm = tf.sqrt(sq.length ? tf.addN(sq) : tf.scalar(0)) as tf.Scalar;
      const scale =
        c.clipGradNorm > 0 ? tf.minimum(k(1), tf.div(k(c.clipGradNorm), tf.add(gnorm, k(1e-6)))) : undefined;
      for (const name of names) {
        if (opts.frozen?.has(name)) continue;
        const p = ps.get(name);
        const decays = takesWeightDecay(ps.infoOf(name).kind) && wd > 0;
        let g = grads.get(name)!;
        if (scale) g = tf.mul(g, scale);
        switch (c.kind) {
          case 'sgd': {
            if (decays) g = tf.add(g, tf.mul(p, k(wd)));
            const b = this.slot(`${name}/momentum`, p);
            b.assign(tf.add(tf.mul(b, k(c.momentum)), g)); // zeros at start, so the first step is b = g as in torch
            p.assign(tf.sub(p, tf.mul(b, k(lr))));
            break;
          }
          case 'lars': {
            if (decays) {
              g = tf.add(g, tf.mul(p, k(wd)));
              const pn = tf.norm(p);
              const gn = tf.norm(g);
              const trust = tf.where(
                tf.logicalAnd(tf.greater(pn, k(0)), tf.greater(gn, k(0))),
                tf.div(tf.mul(pn, k(c.larsEta)), gn),
                tf.onesLike(pn),
              );
              g = tf.mul(g, trust);
            }
            const b = this.slot(`${name}/momentum`, p);
            b.assign(tf.add(tf.mul(b, k(c.momentum)), g));
            p.assign(tf.sub(p, tf.mul(b, k(lr))));
            break;
          }
        }
      }
      return gnorm;
    });
  }

  /**
   * Adam/AdamW on all parameters at once: gradients and parameters concatenated into flat
   * tensors, the same element-wise update as the per-parameter form (decay and frozen parameters
   * through masks), then split back. The gradient norm is one sum over the flat gradient (frozen
   * parameters masked out).
   */
  private applyAdamFlat(
    ps: ParamStore,
    grads: Map<string, tf.Tensor>,
    lr: number,
    wd: number,
    frozen: ReadonlySet<string> | undefined,
    t: number,
  ): tf.Scalar {
    const c = this.cfg;
    const names = [...grads.keys()];
    if (names.length === 0) return tf.scalar(0);
    const F = this.flat;
    F.ensure(ps, names);
    const active = F.active(frozen);
    return tf.tidy(() => {
      const k = scalarCache();
      const flatOf = (ts: tf.Tensor[]): tf.Tensor =>
        ts.length === 1 ? tf.reshape(ts[0], [-1]) : tf.concat(ts.map((x) => tf.reshape(x, [-1])));
      let g = flatOf(names.map((n) => grads.get(n)!));
      const gnorm = tf.sqrt(tf.sum(tf.square(active ? tf.where(active, g, tf.zerosLike(g)) : g))) as tf.Scalar;
      if (hasFusedKernel(FUSED_KERNELS.adamFlat)) {
        // One kernel per output (lib/kernels/fused.ts): the same arithmetic without flat temporaries.
        const scale =
          c.clipGradNorm > 0
            ? tf.reshape(tf.minimum(k(1), tf.div(k(c.clipGradNorm), tf.add(gnorm, k(1e-6)))), [1])
            : tf.ones([1]);
        const ins: tf.NamedTensorMap = {
          g,
          scale,
          p: flatOf(names.map((n) => ps.get(n))),
          m: F.m!,
          v: F.v!,
          decay: F.decayMask!,
          ...(active ? { active } : {}),
        };
        const attrs = {
          lr,
          wd: wd > 0 && F.anyDecay ? wd : 0,
          beta1: c.beta1,
          beta2: c.beta2,
          eps: c.eps,
          bc1: 1 - Math.pow(c.beta1, t),
          bc2: 1 - Math.pow(c.beta2, t),
          decoupled: c.kind === 'adamw',
        };
        const run = (which: 'm' | 'v' | 'p'): tf.Tensor =>
          tf
            .engine()
            .runKernel(FUSED_KERNELS.adamFlat, ins, { ...attrs, which } as unknown as tf.NamedAttrMap) as tf.Tensor;
        // One pass for all three outputs where the backend has that kernel, else one per output.
        const [pNew, mNew, vNew] = hasFusedKernel(FUSED_KERNELS.adamFlatAll)
          ? (tf.engine().runKernel(FUSED_KERNELS.adamFlatAll, ins, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[])
          : [run('p'), run('m'), run('v')];
        F.m!.assign(mNew);
        F.v!.assign(vNew);
        const parts = names.length === 1 ? [pNew] : tf.split(pNew, F.sizes);
        names.forEach((n, i) => {
          if (!frozen?.has(n)) ps.get(n).assign(tf.reshape(parts[i], F.shapes[i]));
        });
        return gnorm;
      }
      if (c.clipGradNorm > 0) g = tf.mul(g, tf.minimum(k(1), tf.div(k(c.clipGradNorm), tf.add(gnorm, k(1e-6)))));
      const p = flatOf(names.map((n) => ps.get(n)));
      const decays = wd > 0 && F.anyDecay;
      if (c.kind === 'adam' && decays) g = tf.where(F.decayMask!, tf.add(g, tf.mul(p, k(wd))), g);
      const m = tf.add(tf.mul(F.m!, k(c.beta1)), tf.mul(g, k(1 - c.beta1)));
      const v = tf.add(tf.mul(F.v!, k(c.beta2)), tf.mul(tf.square(g), k(1 - c.beta2)));
      const mhat = tf.div(m, k(1 - Math.pow(c.beta1, t)));
      const vhat = tf.div(v, k(1 - Math.pow(c.beta2, t)));
      let upd: tf.Tensor = tf.div(mhat, tf.add(tf.sqrt(vhat), k(c.eps)));
      if (c.kind === 'adamw' && decays) upd = tf.where(F.decayMask!, tf.add(upd, tf.mul(p, k(wd))), upd);
      const pNew = tf.sub(p, tf.mul(upd, k(lr)));
      F.m!.assign(active ? tf.where(active, m, F.m!) : m);
      F.v!.assign(active ? tf.where(active, v, F.v!) : v);
      const parts = names.length === 1 ? [pNew] : tf.split(pNew, F.sizes);
      names.forEach((n, i) => {
        if (!frozen?.has(n)) ps.get(n).assign(tf.reshape(parts[i], F.shapes[i]));
      });
      return gnorm;
    });
  }

  /**
   * Snapshot of the state: slot tensors by name (`<param>/m`, `<param>/v` for Adam/AdamW,
   * `<param>/momentum` for SGD/LARS). Read them before the next `apply`/`getState`; do not dispose.
   */
  getState(): OptimizerState {
    const tensors = new Map<string, tf.Tensor>(this.slots);
    for (const [k, v] of this.flat.named()) tensors.set(k, v);
    return { step: this.t, tensors };
  }

  /** Restores a state saved by getState (values are copied). */
  setState(step: number, tensors: Map<string, { shape: number[]; values: Float32Array }>): void {
    this.disposeSlots();
    this.t = step;
    if (this.cfg.kind === 'adam' || this.cfg.kind === 'adamw') {
      this.flat.setNamed(tensors);
      return;
    }
    for (const [k, s] of tensors) {
      const init = tf.tensor(s.values, s.shape, 'float32');
      this.slots.set(k, tf.variable(init, false));
      init.dispose();
    }
  }

  private disposeSlots(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
    this.flat.dispose();
  }

  dispose(): void {
    this.disposeSlots();
  }
}

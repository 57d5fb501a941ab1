/**
 * Linear probe on frozen features (the standard SSL protocol, e.g. Barlow Twins / DINO linear
 * evaluation): features are extracted once, standardised with statistics of the training split,
 * then a linear softmax classifier is trained with Adam and a cosine learning rate. Model
 * selection (learning rate, weight decay, epoch) uses a validation split taken from the training
 * set; the test set is evaluated exactly once, at the end, with the selected classifier.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng, deriveSeed } from '../util/rng';
import { cosineSchedule } from '../methods/schedules';
import { InterruptedError, openInterruptScope } from '../train/interrupt';

export interface LinearProbeConfig {
  /** Training epochs per hyperparameter setting. Default 50. */
  epochs: number;
  /** Mini-batch size. Default 256. */
  batchSize: number;
  /** Learning rates tried (Adam). Default [1e-3, 1e-2]. */
  lrs: number[];
  /** L2 weight decays tried. Default [0, 1e-4]. */
  weightDecays: number[];
  /** Seed for initialisation and batch order. Default 0. */
  seed: number;
}

export const LINEAR_PROBE_DEFAULTS: Readonly<LinearProbeConfig> = Object.freeze({
  epochs: 50,
  batchSize: 256,
  lrs: [1e-3, 1e-2],
  weightDecays: [0, 1e-4],
  seed: 0,
});

export interface LabelledFeatures {
  /** [n * dim] row-major. */
  features: Float32Array;
  labels: ArrayLike<number>;
  n: number;
}

export interface ProbeResult {
  /** Validation top-1 (%) of the selected classifier. */
  valTop1: number;
  /** Test top-1 (%), evaluated once with the selected classifier; null if no test set was given. */
  testTop1: number | null;
  selected: { lr: number; weightDecay: number; epoch: number };
  /** Validation top-1 per epoch for each setting. */
  curves: Array<{ lr: number; weightDecay: number; valTop1: number[] }>;
  protocol: Record<string, unknown>;
}

function check(x: LabelledFeatures, dim: number, what: string, numClasses: number): void {
  if (x.features.length !== x.n * dim)
    throw new Error(`linearProbe: ${what} has ${x.features.length} feature values, expected n*dim = ${x.n}*${dim}`);
  if (x.labels.length !== x.n) throw new Error(`linearProbe: ${what} has ${x.labels.length} labels for ${x.n} rows`);
  for (let i = 0; i < x.n; i++)
    if (!(x.labels[i] >= 0 && x.labels[i] < numClasses))
      throw new Error(`linearProbe: ${what} label ${x.labels[i]} at row ${i} is outside [0, ${numClasses})`);
}

async function top1(w: tf.Tensor2D, b: tf.Tensor1D, x: tf.Tensor2D, labels: ArrayLike<number>): Promise<number> {
  const t = tf.tidy(() => tf.argMax(tf.add(tf.matMul(x, w), b), 1));
  const pred = await t.data();
  t.dispose();
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) ok++;
  return (100 * ok) / pred.length;
}

export async function linearProbe(args: {
  dim: number;
  numClasses: number;
  train: LabelledFeatures;
  val: LabelledFeatures;
  test?: LabelledFeatures;
  config?: Partial<LinearProbeConfig>;
  onProgress?: (done: number, total: number) => void;
}): Promise<ProbeResult> {
  const cfg = { ...LINEAR_PROBE_DEFAULTS, ...args.config };
  const { dim, numClasses } = args;
  check(args.train, dim, 'train', numClasses);
  check(args.val, dim, 'val', numClasses);
  if (args.test) check(args.test, dim, 'test', numClasses);
  // Standardise with training-split statistics only.
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  const tr = args.train;
  for (let i = 0; i < tr.n; i++)
    for (let d = 0; d < dim; d++) {
      const v = tr.features[i * dim + d];
      mean[d] += v;
      sq[d] += v * v;
    }
  const mu = new Float32Array(dim);
  const inv = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    mu[d] = mean[d] / tr.n;
    inv[d] = 1 / Math.sqrt(Math.max(sq[d] / tr.n - mu[d] * mu[d], 0) + 1e-6);
  }
  const prep = (x: LabelledFeatures) =>
    tf.tidy(
      () => tf.mul(tf.sub(tf.tensor2d(x.features, [x.n, dim]), tf.tensor1d(mu)), tf.tensor1d(inv)) as tf.Tensor2D,
    );
  const xTrain = prep(tr);
  const xVal = prep(args.val);
  const yTrain = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from(tr.labels), 'int32'), numClasses));
  const stepsPerEpoch = Math.max(1, Math.ceil(tr.n / cfg.batchSize));
  const curves: ProbeResult['curves'] = [];
  let best = { acc: -1, lr: 0, wd: 0, epoch: -1, w: null as tf.Tensor2D | null, b: null as tf.Tensor1D | null };
  const settings = cfg.lrs.flatMap((lr) => cfg.weightDecays.map((wd) => ({ lr, wd })));
  let done = 0;
  // An interrupt (Ctrl-C, Kernel > Interrupt) stops the probe at the next step; everything is freed.
  const stop = openInterruptScope('linear probe');
  try {
    for (const { lr, wd } of settings) {
      const rng = new Rng(deriveSeed(cfg.seed, 101));
      const bound = 1 / Math.sqrt(dim);
      // tf.variable copies its initial value: build both inside tidy so the initial tensors are freed.
      const [w, b] = tf.tidy(() => [
        tf.variable(
          tf.tensor2d(
            Float32Array.from({ length: dim * numClasses }, () => rng.uniform(-bound, bound)),
            [dim, numClasses],
          ),
        ),
        tf.variable(tf.zeros([numClasses]) as tf.Tensor1D),
      ]) as [tf.Variable<tf.Rank.R2>, tf.Variable<tf.Rank.R1>];
      const opt = tf.train.adam(lr);
      const curve: number[] = [];
      for (let epoch = 0; epoch < cfg.epochs; epoch++) {
        const perm = new Rng(deriveSeed(cfg.seed, 102, epoch)).permutation(tr.n);
        for (let s = 0; s < stepsPerEpoch; s++) {
          if (await stop.poll()) {
            opt.dispose();
            w.dispose();
            b.dispose();
            throw new InterruptedError(
              `linear probe interrupted at epoch ${epoch + 1} of ${cfg.epochs} (setting ${curves.length + 1} of ${settings.length}); nothing was written`,
            );
          }
          const step = epoch * stepsPerEpoch + s;
          (opt as unknown as { learningRate: number }).learningRate = cosineSchedule(
            lr,
            0,
            step,
            cfg.epochs * stepsPerEpoch,
          );
          const idx = tf.tensor1d(perm.subarray(s * cfg.batchSize, Math.min(tr.n, (s + 1) * cfg.batchSize)), 'int32');
          const loss = opt.minimize(
            () => {
              const xb = tf.gather(xTrain, idx);
              const yb = tf.gather(yTrain, idx);
              const ce = tf.losses.softmaxCrossEntropy(yb, tf.add(tf.matMul(xb, w), b));
              return (wd > 0 ? tf.add(ce, tf.mul(wd / 2, tf.sum(tf.square(w)))) : ce) as tf.Scalar;
            },
            false,
            [w, b],
          );
          loss?.dispose();
          idx.dispose();
        }
        const acc = await top1(w, b, xVal, args.val.labels);
        curve.push(acc);
        if (acc > best.acc) {
          best.w?.dispose();
          best.b?.dispose();
          best = { acc, lr, wd, epoch, w: tf.clone(w) as tf.Tensor2D, b: tf.clone(b) as tf.Tensor1D };
        }
        done += 1;
        args.onProgress?.(done, settings.length * cfg.epochs);
        await tf.nextFrame();
      }
      curves.push({ lr, weightDecay: wd, valTop1: curve });
      opt.dispose();
      w.dispose();
      b.dispose();
    }
    let testTop1: number | null = null;
    if (args.test) {
      const xTest = prep(args.test);
      testTop1 = await top1(best.w!, best.b!, xTest, args.test.labels);
      xTest.dispose();
    }
    return {
      valTop1: best.acc,
      testTop1,
      selected: { lr: best.lr, weightDecay: best.wd, epoch: best.epoch },
      curves,
      protocol: {
        encoder: 'frozen, inference mode (batch norm running statistics)',
        features: 'extracted once, standardised with training-split mean/std',
        classifier: 'linear softmax, Adam, cosine lr, L2 weight decay',
        selection: 'lr, weight decay and epoch chosen on a validation split taken from the training set',
        test: 'evaluated once with the selected classifier',
        ...cfg,
        nTrain: tr.n,
        nVal: args.val.n,
        nTest: args.test?.n ?? 0,
      },
    };
  } finally {
    stop.close();
    tf.dispose([xTrain, xVal, yTrain]);
    best.w?.dispose();
    best.b?.dispose();
  }
}

/**
 * Supervised baseline encoder: the same backbone trained with labels (cross-entropy through a
 * linear classifier, random-resized-crop + flip), on the same labelled training subset and a
 * comparable budget. It is then evaluated with the same frozen linear-probe protocol as the
 * self-supervised encoders, so their numbers have an upper reference point.
 */
import * as tf from '@tensorflow/tfjs';
import { Backbone } from '../nn/module';
import { ParamStore, ParamSnapshot } from '../nn/params';
import { initLinear, linear } from '../nn/layers';
import { Optimizer, optimizerConfig } from '../train/optimizers';
import { warmupCosineSchedule } from '../methods/schedules';
import { deriveSeed, Rng } from '../util/rng';
import { makeViews, IDENTITY_VIEW, DEFAULT_RATIO, ViewsConfig } from '../augment/index';
import { LabelledImages } from './knnMonitor';
import { imageSizeOf } from './features';
import { InterruptedError, openInterruptScope } from '../train/interrupt';

export interface SupervisedConfig {
  epochs: number;
  batchSize: number;
  /** Peak AdamW learning rate. Default 2e-3. */
  lr: number;
  weightDecay: number;
  seed: number;
  numClasses: number;
}

export const SUPERVISED_DEFAULTS: Readonly<SupervisedConfig> = Object.freeze({
  epochs: 10,
  batchSize: 128,
  lr: 2e-3,
  weightDecay: 5e-4,
  seed: 0,
  numClasses: 10,
});

/** Standard CIFAR supervised augmentation: random resized crop (scale 0.35-1) and horizontal flip. */
export const SUPERVISED_VIEWS: ViewsConfig = Object.freeze({
  name: 'supervised',
  normalize: true,
  views: [{ ...IDENTITY_VIEW, scale: [0.35, 1] as const, ratio: DEFAULT_RATIO, flipP: 0.5 }],
});

/** SUPERVISED_VIEWS at the data's own size (square images of `size` pixels). */
function supervisedViews(size: number): ViewsConfig {
  return size === SUPERVISED_VIEWS.views[0].size
    ? SUPERVISED_VIEWS
    : { ...SUPERVISED_VIEWS, views: [{ ...SUPERVISED_VIEWS.views[0], size }] };
}

/** Where an interrupted supervised training stopped (a step boundary): enough to continue it bit for bit. */
export interface SupervisedResumeState {
  /** Steps done. */
  step: number;
  /** Finished epochs. */
  history: Array<{ epoch: number; loss: number; trainTop1: number }>;
  /** Running sums of the current epoch. */
  lossSum: number;
  correct: number;
  /** Every parameter (backbone and classifier). */
  params: ParamSnapshot[];
  optimizerStep: number;
  optimizer: Map<string, { shape: number[]; values: Float32Array }>;
}

/** Interrupt handling of {@link trainSupervised}. */
export interface SupervisedControl {
  /** Continue from the state an interrupt saved (same data and config). */
  resume?: SupervisedResumeState;
  /** Called at the step boundary where an interrupt stopped training, with the state to save; an InterruptedError follows. */
  onInterrupt?: (state: SupervisedResumeState) => void | Promise<void>;
}

/**
 * Trains `backbone` (parameters under 'backbone.' in a new store) with labels. An interrupt
 * (Ctrl-C, Kernel > Interrupt) stops it at the next step boundary: `control.onInterrupt` gets the
 * state, the store is freed and an InterruptedError is thrown; `control.resume` continues from it. Returns the store
 * (caller disposes) and the per-epoch training loss and accuracy.
 */
export async function trainSupervised(
  backbone: Backbone,
  data: LabelledImages,
  config: Partial<SupervisedConfig> = {},
  onProgress?: (step: number, total: number, values: Record<string, number>) => void,
  control: SupervisedControl = {},
): Promise<{ params: ParamStore; history: Array<{ epoch: number; loss: number; trainTop1: number }> }> {
  const c = { ...SUPERVISED_DEFAULTS, ...config };
  const spe = Math.floor(data.n / c.batchSize);
  if (spe < 1) throw new Error(`trainSupervised: batchSize ${c.batchSize} exceeds the ${data.n} labelled images`);
  const ps = new ParamStore('supervised');
  backbone.init(ps, deriveSeed(c.seed, 1), 'backbone.');
  initLinear(ps, 'classifier', backbone.featureDim, c.numClasses, new Rng(deriveSeed(c.seed, 4)));
  const opt = new Optimizer(optimizerConfig('adamw'));
  const vars = ps.trainableNames().map((n) => ps.get(n));
  const nameOf = new Map(ps.trainableNames().map((n) => [ps.get(n).name, n]));
  const total = c.epochs * spe;
  const size = imageSizeOf(data);
  const per = size.height * size.width * 3;
  if (data.images.length !== data.n * per)
    throw new Error(
      `trainSupervised: expected ${data.n} images of ${size.height}x${size.width}x3 (${data.n * per} bytes), got ${data.images.length}`,
    );
  const views = supervisedViews(size.height);
  const batch = new Uint8Array(c.batchSize * per);
  const labels = new Int32Array(c.batchSize);
  const history: Array<{ epoch: number; loss: number; trainTop1: number }> = [];
  const r = control.resume;
  const stop = openInterruptScope('supervised training');
  try {
    if (r) {
      ps.load(r.params);
      opt.setState(r.optimizerStep, r.optimizer);
      history.push(...r.history);
    }
    const start = r?.step ?? 0;
    for (let epoch = Math.floor(start / spe); epoch < c.epochs; epoch++) {
      const perm = new Rng(deriveSeed(c.seed, 7, epoch)).permutation(data.n);
      let lossSum = r && epoch === Math.floor(start / spe) ? r.lossSum : 0;
      let correct = r && epoch === Math.floor(start / spe) ? r.correct : 0;
      for (let s = epoch === Math.floor(start / spe) ? start % spe : 0; s < spe; s++) {
        const step = epoch * spe + s;
        if (await stop.poll()) {
          const os = opt.getState();
          const optimizer = new Map<string, { shape: number[]; values: Float32Array }>();
          for (const [k, v] of os.tensors)
            optimizer.set(k, { shape: v.shape.slice(), values: (await v.data()) as Float32Array });
          await control.onInterrupt?.({
            step,
            history: history.slice(),
            lossSum,
            correct,
            params: await ps.snapshot(),
            optimizerStep: os.step,
            optimizer,
          });
          throw new InterruptedError(`supervised training interrupted at step ${step} of ${total}`);
        }
        for (let i = 0; i < c.batchSize; i++) {
          const j = perm[s * c.batchSize + i];
          batch.set(data.images.subarray(j * per, (j + 1) * per), i * per);
          labels[i] = data.labels[j];
        }
        const [x] = makeViews(batch, views, deriveSeed(c.seed, 11, step), size);
        const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), c.numClasses));
        let logits: tf.Tensor2D | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const f = backbone.forward(ps, x, { training: true }, 'backbone.');
          logits = tf.keep(linear(ps, 'classifier', f));
          return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
        }, vars);
        const named = new Map(Object.entries(grads).map(([k, g]) => [nameOf.get(k)!, g] as [string, tf.Tensor]));
        opt
          .apply(ps, named, warmupCosineSchedule(c.lr, 0, step, Math.min(spe, total), total), {
            weightDecay: c.weightDecay,
          })
          .dispose();
        const hits = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits!, 1), tf.argMax(y, 1)), 'int32')));
        lossSum += (await value.data())[0];
        correct += (await hits.data())[0];
        tf.dispose([x, y, value, hits, logits!, ...Object.values(grads)]);
        onProgress?.(step + 1, total, { loss: lossSum / (s + 1) });
      }
      history.push({ epoch, loss: lossSum / spe, trainTop1: (100 * correct) / (spe * c.batchSize) });
    }
    return { params: ps, history };
  } catch (e) {
    ps.dispose();
    throw e;
  } finally {
    stop.close();
    opt.dispose();
  }
}

/**
 * Weighted k-nearest-neighbour classifier on frozen features (Wu et al. 2018 "InstDisc"; the evaluation of
 * facebookresearch/dino eval_knn.py knn_classifier): L2-normalised features, cosine similarity, the top-k training
 * neighbours vote for their class with weight exp(sim/T), and the class with the largest summed weight wins.
 */
import * as tf from '@tensorflow/tfjs';
import { l2Normalize } from '../nn/layers';

export interface KnnOptions {
  /** Number of neighbours. Default 200 (DINO reports 20 and 200). */
  k?: number;
  /** Temperature T of the vote weights exp(sim/T). Default 0.1 (InstDisc, DINO: 0.07). */
  temperature?: number;
  /** Number of classes; every label must lie in [0, numClasses). */
  numClasses: number;
  /** Test rows per similarity block, which bounds memory to chunkSize x trainRows floats. Default 256. */
  chunkSize?: number;
}

export const KNN_DEFAULTS: Readonly<{ k: number; temperature: number; chunkSize: number }> = Object.freeze({
  k: 200,
  temperature: 0.1,
  chunkSize: 256,
});

function resolve(
  fn: string,
  trainFeatures: tf.Tensor2D,
  trainLabels: ArrayLike<number>,
  testFeatures: tf.Tensor2D,
  opts: KnnOptions,
): Required<KnnOptions> {
  const k = opts.k ?? KNN_DEFAULTS.k;
  const temperature = opts.temperature ?? KNN_DEFAULTS.temperature;
  const chunkSize = opts.chunkSize ?? KNN_DEFAULTS.chunkSize;
  const { numClasses } = opts;
  if (trainFeatures.rank !== 2 || testFeatures.rank !== 2)
    throw new Error(
      `${fn}: expected [N, D] features, got train [${trainFeatures.shape}] and test [${testFeatures.shape}]`,
    );
  if (trainFeatures.shape[1] !== testFeatures.shape[1])
    throw new Error(`${fn}: feature dims differ, train [${trainFeatures.shape}] vs test [${testFeatures.shape}]`);
  const nTrain = trainFeatures.shape[0];
  if (trainLabels.length !== nTrain)
    throw new Error(`${fn}: ${trainLabels.length} train labels for ${nTrain} train rows`);
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new Error(`${fn}: numClasses must be an integer >= 1, got ${numClasses}`);
  if (!Number.isInteger(k) || k < 1 || k > nTrain)
    throw new Error(`${fn}: k must be an integer in [1, ${nTrain}] (the number of train rows), got ${k}`);
  if (!Number.isFinite(temperature) || temperature <= 0)
    throw new Error(`${fn}: temperature must be a finite number > 0, got ${temperature}`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1)
    throw new Error(`${fn}: chunkSize must be an integer >= 1, got ${chunkSize}`);
  for (let i = 0; i < nTrain; i++) {
    const l = trainLabels[i];
    if (!Number.isInteger(l) || l < 0 || l >= numClasses)
      throw new Error(`${fn}: train label ${i} is ${l}, expected an integer in [0, ${numClasses})`);
  }
  return { k, temperature, numClasses, chunkSize };
}

/**
 * Predicted class per test row. trainFeatures [Ntr, D], trainLabels [Ntr], testFeatures [Nte, D] -> Nte classes.
 * Cost per chunk: one [chunk, D] x [D, Ntr] product, a top-k over Ntr, a [chunk, k, C] vote; memory chunk x Ntr.
 * Async: predictions are read back once per chunk (GPU backends cannot read synchronously).
 */
export async function knnPredict(
  trainFeatures: tf.Tensor2D,
  trainLabels: Int32Array | number[],
  testFeatures: tf.Tensor2D,
  opts: KnnOptions,
): Promise<number[]> {
  const o = resolve('knnPredict', trainFeatures, trainLabels, testFeatures, opts);
  const nTest = testFeatures.shape[0];
  const trainN = tf.tidy(() => l2Normalize(trainFeatures)); // [Ntr, D]
  const labels = tf.tensor1d(Int32Array.from(trainLabels), 'int32'); // [Ntr]
  const out: number[] = [];
  try {
    for (let start = 0; start < nTest; start += o.chunkSize) {
      const size = Math.min(o.chunkSize, nTest - start);
      const pred = tf.tidy(() => {
        const x = l2Normalize(tf.slice(testFeatures, [start, 0], [size, -1])); // [c, D]
        const sim = tf.matMul(x, trainN, false, true); // [c, Ntr]
        const { values, indices } = tf.topk(sim, o.k, true); // [c, k], sorted descending
        // Shifting by the row's best similarity leaves the argmax unchanged and keeps exp finite for small T.
        const w = tf.exp(tf.div(tf.sub(values, tf.slice(values, [0, 0], [-1, 1])), o.temperature)); // [c, k]
        const votes = tf.sum(tf.mul(tf.oneHot(tf.gather(labels, indices), o.numClasses), tf.expandDims(w, 2)), 1); // [c, C]
        return tf.argMax(votes, 1); // [c]
      });
      const p = await pred.data();
      pred.dispose();
      for (let i = 0; i < size; i++) out.push(p[i]);
    }
  } finally {
    trainN.dispose();
    labels.dispose();
  }
  return out;
}

/** Fraction of test rows whose kNN prediction equals testLabels. */
export async function knnAccuracy(
  trainFeatures: tf.Tensor2D,
  trainLabels: Int32Array | number[],
  testFeatures: tf.Tensor2D,
  testLabels: Int32Array | number[],
  opts: KnnOptions,
): Promise<number> {
  if (testLabels.length !== testFeatures.shape[0])
    throw new Error(`knnAccuracy: ${testLabels.length} test labels for ${testFeatures.shape[0]} test rows`);
  const pred = await knnPredict(trainFeatures, trainLabels, testFeatures, opts);
  let correct = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === testLabels[i]) correct++;
  return pred.length === 0 ? 0 : correct / pred.length;
}

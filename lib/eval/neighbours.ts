/**
 * Nearest neighbours under cosine similarity (the geometry of the weighted kNN classifier,
 * lib/eval/knn.ts): for each query row, the k bank rows with the largest cosine similarity,
 * most similar first. Chunked like knnPredict, so memory is chunkSize x bank rows.
 */
import * as tf from '@tensorflow/tfjs';
import { l2Normalize } from '../nn/layers';

export interface NeighboursOptions {
  /** Query rows per similarity block. Default 256. */
  chunkSize: number;
}

export const DEFAULT_NEIGHBOURS_OPTIONS: Readonly<NeighboursOptions> = Object.freeze({ chunkSize: 256 });

export interface Neighbours {
  /** Bank row of the j-th nearest neighbour of query i at [i * k + j]. */
  indices: Int32Array;
  /** Its cosine similarity. */
  similarities: Float32Array;
  k: number;
}

/**
 * bank [nBank, dim] and queries [nQuery, dim] as row-major host arrays -> the k nearest bank rows of
 * each query (ties: the lower bank row first, as tf.topk orders them).
 */
export async function nearestNeighbours(
  bank: Float32Array,
  queries: Float32Array,
  dim: number,
  k: number,
  options: Partial<NeighboursOptions> = {},
): Promise<Neighbours> {
  const o = { ...DEFAULT_NEIGHBOURS_OPTIONS, ...options };
  if (!Number.isInteger(dim) || dim < 1)
    throw new Error(`nearestNeighbours: dim must be a positive integer, got ${dim}`);
  if (bank.length % dim !== 0 || queries.length % dim !== 0)
    throw new Error(
      `nearestNeighbours: bank (${bank.length} values) and queries (${queries.length}) must be whole rows of ${dim}`,
    );
  const nBank = bank.length / dim;
  const nQuery = queries.length / dim;
  if (!Number.isInteger(k) || k < 1 || k > nBank)
    throw new Error(`nearestNeighbours: k must be an integer in [1, ${nBank}] (the bank's rows), got ${k}`);
  if (!Number.isInteger(o.chunkSize) || o.chunkSize < 1)
    throw new Error(`nearestNeighbours: chunkSize must be a positive integer, got ${o.chunkSize}`);
  const indices = new Int32Array(nQuery * k);
  const similarities = new Float32Array(nQuery * k);
  const bankN = tf.tidy(() => l2Normalize(tf.tensor2d(bank, [nBank, dim]))); // [nBank, dim]
  try {
    for (let start = 0; start < nQuery; start += o.chunkSize) {
      const size = Math.min(o.chunkSize, nQuery - start);
      const { values, indices: idx } = tf.tidy(() => {
        const q = l2Normalize(tf.tensor2d(queries.subarray(start * dim, (start + size) * dim), [size, dim])); // [c, dim]
        return tf.topk(tf.matMul(q, bankN, false, true), k, true); // [c, k]
      });
      similarities.set((await values.data()) as Float32Array, start * k);
      indices.set((await idx.data()) as Int32Array, start * k);
      tf.dispose([values, idx]);
    }
  } finally {
    bankN.dispose();
  }
  return { indices, similarities, k };
}

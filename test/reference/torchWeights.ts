/**
 * The formula weights and inputs of test/reference/models_ref.py on the TypeScript side: every
 * parameter is a formula of (its PyTorch state_dict name, flat index), loaded into our stores with
 * the layout conversion (OIHW -> HWIO, Linear [out, in] -> [in, out]), so reference scripts store
 * no weights. Used by the model and the training-step reference tests.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../../lib/nn/params';

/**
 * |a - e| <= rtol * max(|e|, scale) with scale = max|e| / 10: relative error for entries of the
 * data's size, a floor for entries near zero (float32 vs float64 sums differ there in absolute terms).
 */
export function close(actual: ArrayLike<number>, expected: number[], rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 10;
  for (let i = 0; i < expected.length; i++) {
    const tol = rtol * Math.max(Math.abs(expected[i]), scale, 1e-12);
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`,
    );
  }
}

// ---- the formula weights of test/reference/models_ref.py, in PyTorch's layout
function nameCode(name: string): number {
  let s = 0;
  for (let k = 0; k < name.length; k++) s += (k + 1) * name.charCodeAt(k);
  return s % 997;
}

export function formula(name: string, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const c = nameCode(name);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const base = Math.sin(0.7071 * i + 0.37 * c + 0.5);
    let v: number;
    if (name.endsWith('running_mean')) v = 0.1 * base;
    else if (name.endsWith('running_var')) v = 1 + 0.3 * base;
    else if (name.endsWith('weight_g')) v = 1 + 0.2 * base;
    else if (name.endsWith('cls_token') || name.endsWith('pos_embed')) v = 0.5 * base;
    else if (name.endsWith('bias')) v = 0.1 * base;
    else if (shape.length === 1) v = 1 + 0.2 * base;
    else v = base * Math.sqrt(3 / (n / shape[0]));
    out[i] = v;
  }
  return out;
}

/**
 * Loads torch-layout formula weights into `ps`: conv OIHW -> HWIO, Linear [out, in] -> [in, out],
 * anything else (vectors, embeddings, weight_g [out, 1] -> [out]) keeps its flat order. The stores'
 * names must be exactly PyTorch's state_dict names (without num_batches_tracked).
 */
export function loadTorch(ps: ParamStore, params: Array<{ name: string; shape: number[] }>, prefix = ''): void {
  const ours = ps
    .names()
    .filter((n) => n.startsWith(prefix))
    .map((n) => n.slice(prefix.length))
    .sort();
  assert.deepEqual(ours, params.map((p) => p.name).sort(), 'parameter names match the PyTorch state_dict');
  tf.tidy(() => {
    for (const p of params) {
      const v = ps.get(prefix + p.name);
      let t: tf.Tensor = tf.tensor(formula(p.name, p.shape), p.shape);
      if (p.shape.length === 4) t = tf.transpose(t, [2, 3, 1, 0]);
      else if (p.shape.length === 2 && (p.name.endsWith('.weight') || p.name.endsWith('weight_v'))) t = tf.transpose(t);
      assert.equal(t.size, v.size, `${p.name}: size ${t.size} vs ours ${v.size}`);
      if (t.shape.join() !== v.shape.join()) {
        assert.ok(
          p.name.endsWith('weight_g') || p.name.endsWith('pos_embed'),
          `${p.name}: shape [${t.shape}] vs ours [${v.shape}]`,
        );
        t = tf.reshape(t, v.shape);
      }
      v.assign(t);
    }
  });
}

export function images(b: number, h: number, w: number): tf.Tensor4D {
  const n = b * h * w * 3;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(0.37 * i + 0.1) + 0.3 * Math.cos(1.3 * i);
  return tf.tensor4d(x, [b, h, w, 3]);
}

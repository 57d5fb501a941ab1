/**
 * Batch norm with statistics per group of batch rows (`ForwardContext.bnGroups`, used to run the
 * views of a Barlow Twins step as one batch) equals separate passes over each group: outputs,
 * gradients of x / gamma / beta, and running statistics updated group after group, on `cpu`
 * (composed form). The fused WebGPU form is checked against this one in batchnorm-webgpu.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../lib/nn/params';
import { batchNorm, initBatchNorm } from '../lib/nn/layers';
import { batchNormTrain } from '../lib/nn/batchnorm';
import { randn, relErr } from './helpers';

async function values(ts: tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
}

for (const [shape, groups, relu] of [
  [[6, 4, 4, 5], 2, true],
  [[12, 7], 3, false],
] as Array<[number[], number, boolean]>) {
  test(`bnGroups=${groups} on [${shape}] equals ${groups} separate passes (values, gradients, running statistics)`, async () => {
    await tf.setBackend('cpu');
    const C = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(randn(n, 1), shape);
    const dy = tf.tensor(randn(n, 2), shape);
    const make = (): ParamStore => {
      const ps = new ParamStore('bn');
      initBatchNorm(ps, 'bn', C);
      ps.get('bn.weight').assign(tf.tensor1d(randn(C, 3)));
      ps.get('bn.bias').assign(tf.tensor1d(randn(C, 4)));
      return ps;
    };
    const run = async (grouped: boolean): Promise<Float32Array[]> => {
      const ps = make();
      const w = ps.get('bn.weight');
      const b = ps.get('bn.bias');
      const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor): tf.Tensor => {
        void wi;
        void bi; // gradients flow through the ParamStore's variables
        const y = grouped
          ? batchNorm(ps, 'bn', xi, { training: true, bnGroups: groups }, { relu })
          : tf.concat(
              tf.split(xi, groups, 0).map((part) => batchNorm(ps, 'bn', part, { training: true }, { relu })),
              0,
            );
        return tf.sum(tf.mul(y, dy));
      };
      const { grads } = tf.variableGrads(() => f(x, w, b) as tf.Scalar, [w, b]);
      const dx = tf.grad((xi: tf.Tensor) => f(xi, w, b))(x);
      ps.get('bn.running_mean').assign(tf.zeros([C]));
      ps.get('bn.running_var').assign(tf.ones([C]));
      const y = tf.tidy(() =>
        grouped
          ? batchNorm(ps, 'bn', x, { training: true, bnGroups: groups }, { relu })
          : tf.concat(
              tf.split(x, groups, 0).map((part) => batchNorm(ps, 'bn', part, { training: true }, { relu })),
              0,
            ),
      );
      const out = await values([
        y,
        dx,
        grads[w.name],
        grads[b.name],
        ps.get('bn.running_mean'),
        ps.get('bn.running_var'),
      ]);
      tf.dispose([y, dx, ...Object.values(grads)]);
      ps.dispose();
      return out;
    };
    const sep = await run(false);
    const grp = await run(true);
    const names = ['y', 'dx', 'dgamma', 'dbeta', 'running_mean', 'running_var'];
    for (let i = 0; i < names.length; i++) {
      const e = relErr(grp[i], sep[i]);
      assert.ok(e < 1e-5, `${names[i]}: grouped vs separate relative error ${e.toExponential(2)}`);
    }
    // The statistics really are per group: one group over the whole batch gives other values.
    const whole = tf.tidy(() => batchNormTrain(x, undefined, undefined, false));
    const perGroup = tf.tidy(() => batchNormTrain(x, undefined, undefined, false, undefined, groups));
    assert.ok(
      relErr((await whole.data()) as Float32Array, (await perGroup.data()) as Float32Array) > 1e-3,
      'per-group statistics differ from whole-batch ones',
    );
    tf.dispose([x, dy, whole, perGroup]);
  });
}

test('bnGroups that do not divide the batch are named', async () => {
  await tf.setBackend('cpu');
  const ps = new ParamStore('bn');
  initBatchNorm(ps, 'bn', 3);
  assert.throws(
    () => batchNorm(ps, 'bn', tf.zeros([5, 3]), { training: true, bnGroups: 2 }),
    /groups must be a positive integer dividing the batch \(5\), got 2/,
  );
  assert.throws(
    () => batchNormTrain(tf.zeros([4, 3]), undefined, undefined, false, undefined, 0),
    /groups must be a positive integer/,
  );
  ps.dispose();
});

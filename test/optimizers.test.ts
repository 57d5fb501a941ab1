import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Optimizer, OptimizerKind } from '../lib/train/optimizers';
import { ParamStore } from '../lib/nn/params';

const ref = JSON.parse(fs.readFileSync(path.join(__dirname, 'reference', 'optim_ref.json'), 'utf8'));

function assertClose(actual: ArrayLike<number>, expected: number[], rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = rtol * Math.max(1, Math.abs(expected[i]));
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

for (const kind of ['adam', 'adamw', 'sgd', 'lars'] as OptimizerKind[]) {
  test(`${kind} matches the PyTorch reference over 4 steps (decay on weights only)`, async () => {
    await tf.setBackend('cpu');
    const ps = new ParamStore('opt');
    ps.addValues('w', [3, 4], Float32Array.from(ref.w0), 'weight');
    ps.addValues('b', [4], Float32Array.from(ref.b0), 'bias');
    const opt = new Optimizer({ kind, weightDecay: ref.wd, momentum: 0.9, larsEta: 0.001 });
    const before = tf.memory().numTensors;
    for (const g of ref.grads) {
      const grads = new Map<string, tf.Tensor>([['w', tf.tensor(g.w, [3, 4])], ['b', tf.tensor(g.b, [4])]]);
      opt.apply(ps, grads, ref.lr).dispose();
      tf.dispose([...grads.values()]);
    }
    assertClose(await ps.get('w').data(), ref.final[kind].w, 1e-5, `${kind} w`);
    assertClose(await ps.get('b').data(), ref.final[kind].b, 1e-5, `${kind} b`);
    // Slots are created on the first step only; later steps allocate nothing that survives.
    // Only the optimizer slots (2 per parameter for Adam/AdamW, 1 for SGD/LARS) survive the steps.
    assert.equal(tf.memory().numTensors - before, kind.startsWith("adam") ? 4 : 2);
    opt.dispose();
    ps.dispose();
  });
}

test('optimizer state round-trips: a restored optimizer continues identically', async () => {
  await tf.setBackend('cpu');
  const mk = () => {
    const ps = new ParamStore('rt');
    ps.addValues('w', [3, 4], Float32Array.from(ref.w0), 'weight');
    ps.addValues('b', [4], Float32Array.from(ref.b0), 'bias');
    return ps;
  };
  const step = (opt: Optimizer, ps: ParamStore, g: { w: number[]; b: number[] }) => {
    const grads = new Map<string, tf.Tensor>([['w', tf.tensor(g.w, [3, 4])], ['b', tf.tensor(g.b, [4])]]);
    opt.apply(ps, grads, ref.lr).dispose();
    tf.dispose([...grads.values()]);
  };
  const a = mk();
  const oa = new Optimizer({ kind: 'adamw', weightDecay: ref.wd });
  for (const g of ref.grads) step(oa, a, g);
  const b = mk();
  const ob = new Optimizer({ kind: 'adamw', weightDecay: ref.wd });
  step(ob, b, ref.grads[0]);
  step(ob, b, ref.grads[1]);
  const st = ob.getState();
  const saved = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [k, v] of st.tensors) saved.set(k, { shape: v.shape, values: (await v.data()) as Float32Array });
  const oc = new Optimizer({ kind: 'adamw', weightDecay: ref.wd });
  oc.setState(st.step, saved);
  ob.dispose();
  step(oc, b, ref.grads[2]);
  step(oc, b, ref.grads[3]);
  assert.deepEqual(Array.from(await b.get('w').data()), Array.from(await a.get('w').data()));
  for (const x of [oa, oc]) x.dispose();
  a.dispose();
  b.dispose();
});

test('frozen parameters are not updated and memory stays flat across steps', async () => {
  await tf.setBackend('cpu');
  const ps = new ParamStore('frz');
  ps.addValues('w', [3, 4], Float32Array.from(ref.w0), 'weight');
  ps.addValues('b', [4], Float32Array.from(ref.b0), 'bias');
  const opt = new Optimizer({ kind: 'sgd', weightDecay: 0 });
  const grads = new Map<string, tf.Tensor>([['w', tf.ones([3, 4])], ['b', tf.ones([4])]]);
  opt.apply(ps, grads, 0.1, { frozen: new Set(['w']) }).dispose();
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    opt.apply(ps, grads, 0.1, { frozen: new Set(['w']) }).dispose();
    counts.push(tf.memory().numTensors);
  }
  assert.deepEqual(Array.from(await ps.get('w').data()), ref.w0.map((x: number) => Math.fround(x)));
  assert.notDeepEqual(Array.from(await ps.get('b').data()), ref.b0.map((x: number) => Math.fround(x)));
  assert.equal(counts[0], counts[2]);
  tf.dispose([...grads.values()]);
  opt.dispose();
  ps.dispose();
});

test('bad learning rate and unknown kind are clear errors', () => {
  assert.throws(() => new Optimizer({ kind: 'rmsprop' as OptimizerKind }), /optimizer kind "rmsprop" is not one of adam, adamw, sgd, lars/);
  const ps = new ParamStore('bad');
  ps.addValues('w', [1], new Float32Array(1), 'weight');
  const opt = new Optimizer({ kind: 'sgd' });
  assert.throws(() => opt.apply(ps, new Map(), Number.NaN), /learning rate must be finite/);
  ps.dispose();
});

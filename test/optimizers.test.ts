import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Optimizer, optimizerConfig } from '../lib/train/optimizers';
import { OptimizerKind } from '../lib/config/config';
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
    const opt = new Optimizer(optimizerConfig(kind, { momentum: 0.9, larsEta: 0.001 }));
    const before = tf.memory().numTensors;
    for (const g of ref.grads) {
      const grads = new Map<string, tf.Tensor>([
        ['w', tf.tensor(g.w, [3, 4])],
        ['b', tf.tensor(g.b, [4])],
      ]);
      opt.apply(ps, grads, ref.lr, { weightDecay: ref.wd }).dispose();
      tf.dispose([...grads.values()]);
    }
    assertClose(await ps.get('w').data(), ref.final[kind].w, 1e-5, `${kind} w`);
    assertClose(await ps.get('b').data(), ref.final[kind].b, 1e-5, `${kind} b`);
    // Slots are created on the first step only; later steps allocate nothing that survives.
    // Only the optimizer state survives the steps: for Adam/AdamW the two flat moment tensors and
    // the weight-decay mask (lib/train/flatSlots.ts), for SGD/LARS one momentum slot per parameter.
    assert.equal(tf.memory().numTensors - before, kind.startsWith('adam') ? 3 : 2);
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
    const grads = new Map<string, tf.Tensor>([
      ['w', tf.tensor(g.w, [3, 4])],
      ['b', tf.tensor(g.b, [4])],
    ]);
    opt.apply(ps, grads, ref.lr, { weightDecay: ref.wd }).dispose();
    tf.dispose([...grads.values()]);
  };
  const a = mk();
  const oa = new Optimizer(optimizerConfig('adamw'));
  for (const g of ref.grads) step(oa, a, g);
  const b = mk();
  const ob = new Optimizer(optimizerConfig('adamw'));
  step(ob, b, ref.grads[0]);
  step(ob, b, ref.grads[1]);
  const st = ob.getState();
  const saved = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [k, v] of st.tensors) saved.set(k, { shape: v.shape, values: (await v.data()) as Float32Array });
  const oc = new Optimizer(optimizerConfig('adamw'));
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
  const opt = new Optimizer(optimizerConfig('sgd'));
  const grads = new Map<string, tf.Tensor>([
    ['w', tf.ones([3, 4])],
    ['b', tf.ones([4])],
  ]);
  opt.apply(ps, grads, 0.1, { weightDecay: 0, frozen: new Set(['w']) }).dispose();
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    opt.apply(ps, grads, 0.1, { weightDecay: 0, frozen: new Set(['w']) }).dispose();
    counts.push(tf.memory().numTensors);
  }
  assert.deepEqual(
    Array.from(await ps.get('w').data()),
    ref.w0.map((x: number) => Math.fround(x)),
  );
  assert.notDeepEqual(
    Array.from(await ps.get('b').data()),
    ref.b0.map((x: number) => Math.fround(x)),
  );
  assert.equal(counts[0], counts[2]);
  tf.dispose([...grads.values()]);
  opt.dispose();
  ps.dispose();
});

test('bad learning rate and unknown kind are clear errors', () => {
  assert.throws(
    () => new Optimizer(optimizerConfig('rmsprop' as OptimizerKind)),
    /optimizer kind "rmsprop" is not one of adam, adamw, sgd, lars/,
  );
  assert.throws(
    () => new Optimizer({ kind: 'lars', momentum: 0.9, clipGradNorm: 0 }),
    /optimizer "lars" needs larsEta/,
  );
  const ps = new ParamStore('bad');
  ps.addValues('w', [1], new Float32Array(1), 'weight');
  const opt = new Optimizer(optimizerConfig('sgd'));
  assert.throws(() => opt.apply(ps, new Map(), Number.NaN, { weightDecay: 0 }), /learning rate must be finite/);
  assert.throws(
    () => opt.apply(ps, new Map(), 0.1, { weightDecay: -1 }),
    /weight decay must be finite and >= 0, got -1/,
  );
  ps.dispose();
});

for (const kind of ['adamw', 'sgd', 'lars'] as OptimizerKind[]) {
  test(`${kind}: a frozen parameter's gradient is left out of the clipping norm (main_dino.py discards it)`, async () => {
    await tf.setBackend('cpu');
    // 'b' is trained with a gradient of norm 1; frozen 'w' has one of norm 120. Clipped at 2, 'b'
    // must move exactly as if 'w' had no gradient at all: before, the frozen gradient scaled it by 1/60.
    const make = () => {
      const ps = new ParamStore(`clip-${kind}`);
      ps.addValues('w', [3, 4], Float32Array.from(ref.w0), 'weight');
      ps.addValues('b', [4], Float32Array.from(ref.b0), 'bias');
      return ps;
    };
    const bGrad = [0.5, -0.5, 0.5, -0.5];
    const run = async (withFrozen: boolean) => {
      const ps = make();
      const opt = new Optimizer(optimizerConfig(kind, { clipGradNorm: 2 }));
      const norms: number[] = [];
      for (let i = 0; i < 2; i++) {
        const grads = new Map<string, tf.Tensor>([['b', tf.tensor(bGrad, [4])]]);
        if (withFrozen) grads.set('w', tf.fill([3, 4], 120 / Math.sqrt(12)));
        const n = opt.apply(ps, grads, 0.1, { weightDecay: 0, frozen: withFrozen ? new Set(['w']) : undefined });
        norms.push((await n.data())[0]);
        n.dispose();
        tf.dispose([...grads.values()]);
      }
      const out = { b: Array.from(await ps.get('b').data()), w: Array.from(await ps.get('w').data()), norms };
      opt.dispose();
      ps.dispose();
      return out;
    };
    const frozen = await run(true);
    const alone = await run(false);
    assert.deepEqual(frozen.b, alone.b, 'b moves as if the frozen gradient were absent');
    assert.notDeepEqual(
      frozen.b,
      ref.b0.map((x: number) => Math.fround(x)),
      'b moved',
    );
    assert.deepEqual(
      frozen.w,
      ref.w0.map((x: number) => Math.fround(x)),
      'w stays frozen',
    );
    // The reported norm is the trained parameters' (1), not the one including the frozen gradient (about 120).
    for (const n of frozen.norms) assert.ok(Math.abs(n - 1) < 1e-6, `gradient norm ${n}`);
  });
}

/** The per-parameter Adam/AdamW update written out plainly (what the flat update must equal). */
function perParamAdam(
  kind: 'adam' | 'adamw',
  ps: Map<string, Float32Array>,
  kinds: Map<string, string>,
  grads: Map<string, Float32Array>,
  st: Map<string, { m: Float32Array; v: Float32Array }>,
  t: number,
  lr: number,
  wd: number,
  frozen: Set<string>,
): void {
  const f = Math.fround;
  const b1 = 0.9,
    b2 = 0.999,
    eps = 1e-8;
  for (const [n, p] of ps) {
    if (frozen.has(n)) continue;
    const g0 = grads.get(n)!;
    const s = st.get(n) ?? { m: new Float32Array(p.length), v: new Float32Array(p.length) };
    st.set(n, s);
    const decays = kinds.get(n) === 'weight' && wd > 0;
    for (let i = 0; i < p.length; i++) {
      let g = g0[i];
      if (kind === 'adam' && decays) g = f(g + f(p[i] * f(wd)));
      s.m[i] = f(f(s.m[i] * f(b1)) + f(g * f(1 - b1)));
      s.v[i] = f(f(s.v[i] * f(b2)) + f(f(g * g) * f(1 - b2)));
      const mhat = f(s.m[i] / f(1 - Math.pow(b1, t)));
      const vhat = f(s.v[i] / f(1 - Math.pow(b2, t)));
      let upd = f(mhat / f(f(Math.sqrt(vhat)) + f(eps)));
      if (kind === 'adamw' && decays) upd = f(upd + f(p[i] * f(wd)));
      p[i] = f(p[i] - f(upd * f(lr)));
    }
  }
}

for (const kind of ['adam', 'adamw'] as const) {
  test(`${kind} over all parameters at once equals the per-parameter update (frozen parameter, three shapes)`, async () => {
    await tf.setBackend('cpu');
    const shapes: Record<string, number[]> = { w1: [3, 2, 2], b1: [2], w2: [5] };
    const kinds = new Map([
      ['w1', 'weight'],
      ['b1', 'bias'],
      ['w2', 'weight'],
    ]);
    let seed = 7;
    const rnd = (n: number) =>
      Float32Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5);
    const ps = new ParamStore('flat');
    const mirror = new Map<string, Float32Array>();
    for (const [n, s] of Object.entries(shapes)) {
      const v = rnd(s.reduce((a, b) => a * b, 1));
      ps.addValues(n, s, v, kinds.get(n) as 'weight' | 'bias');
      mirror.set(n, v.slice());
    }
    const opt = new Optimizer(optimizerConfig(kind));
    const st = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (let t = 1; t <= 4; t++) {
      const frozen = new Set(t <= 2 ? ['w2'] : []);
      const gv = new Map(Object.entries(shapes).map(([n, s]) => [n, rnd(s.reduce((a, b) => a * b, 1))]));
      const grads = new Map([...gv].map(([n, v]) => [n, tf.tensor(v, shapes[n])]));
      opt.apply(ps, grads, 0.01, { weightDecay: 0.05, frozen }).dispose();
      tf.dispose([...grads.values()]);
      perParamAdam(kind, mirror, kinds, gv, st, t, 0.01, 0.05, frozen);
    }
    for (const n of Object.keys(shapes)) {
      assert.deepEqual(Array.from(await ps.get(n).data()), Array.from(mirror.get(n)!), `${kind} ${n}`);
    }
    // Named state has each parameter's shape; w2's moments only saw its two unfrozen steps.
    const state = opt.getState();
    assert.deepEqual([...state.tensors.keys()].sort(), ['b1/m', 'b1/v', 'w1/m', 'w1/v', 'w2/m', 'w2/v']);
    assert.deepEqual(state.tensors.get('w1/m')!.shape, [3, 2, 2]);
    assert.deepEqual(Array.from(await state.tensors.get('w2/v')!.data()), Array.from(st.get('w2')!.v));
    opt.dispose();
    ps.dispose();
  });
}

test('restored Adam state with a missing slot starts it at zero; a wrong size is a clear error', async () => {
  await tf.setBackend('cpu');
  const ps = new ParamStore('rs');
  ps.addValues('w', [2, 2], new Float32Array([1, 2, 3, 4]), 'weight');
  ps.addValues('b', [2], new Float32Array([0, 0]), 'bias');
  const grads = new Map<string, tf.Tensor>([
    ['w', tf.ones([2, 2])],
    ['b', tf.ones([2])],
  ]);
  const opt = new Optimizer(optimizerConfig('adam'));
  opt.setState(3, new Map([['w/m', { shape: [2, 2], values: new Float32Array([0.5, 0.5, 0.5, 0.5]) }]]));
  opt.apply(ps, grads, 0.1, { weightDecay: 0 }).dispose();
  const s = opt.getState();
  assert.equal(s.step, 4);
  assert.deepEqual(Array.from(await s.tensors.get('w/m')!.data()), [0.55, 0.55, 0.55, 0.55].map(Math.fround));
  assert.deepEqual(
    Array.from(await s.tensors.get('b/m')!.data()),
    [0.1, 0.1].map((x) => Math.fround(Math.fround(x))),
  );
  const bad = new Optimizer(optimizerConfig('adam'));
  bad.setState(1, new Map([['w/v', { shape: [3], values: new Float32Array(3) }]]));
  assert.throws(
    () => bad.apply(ps, grads, 0.1, { weightDecay: 0 }),
    /optimizer state w\/v has 3 values, parameter has 4/,
  );
  tf.dispose([...grads.values()]);
  for (const o of [opt, bad]) o.dispose();
  ps.dispose();
});

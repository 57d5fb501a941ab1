/**
 * The GEMM tuner (lib/kernels/webgpu/tune.ts): it records exactly the GEMMs our conv kernels issue
 * for a workload, keeps the fastest candidate of each (timing replaced by a fake clock, so the
 * choice is known), the tuned kernels compute what `cpu` computes and really run the chosen
 * variant; clearing the table restores the registered options; the real clock path runs; and it
 * refuses other backends.
 *
 * Needs a WebGPU adapter for all but the last test (lavapipe: `eval "$(scripts/setup-lavapipe.sh)"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWebgpuKernels, unregisterWebgpuKernels } from '../lib/kernels/webgpu';
import {
  conv2dFilterGradSpec,
  conv2dForwardSpec,
  conv2dInputGradPhaseSpec,
  inputGradPhases,
} from '../lib/kernels/webgpu/conv2d';
import { tunedGemms } from '../lib/kernels/webgpu/gemm';
import { GEMM_CANDIDATES, GemmCandidate, clearTuning, tuneGemms } from '../lib/kernels/webgpu/tune';
import { randn, relErr, useWebgpu } from './helpers';

// A two-conv net: 3x3 stride 1 (4 -> 8 channels), then 3x3 stride 2 'same' (8 -> 8); loss = sum(y^2).
const X: [number, number, number, number] = [2, 8, 8, 4];
const W1: [number, number, number, number] = [3, 3, 4, 8];
const W2: [number, number, number, number] = [3, 3, 8, 8];

function lossAndGrads(x: tf.Tensor4D, w1: tf.Variable, w2: tf.Variable): { loss: tf.Scalar; grads: tf.Tensor[] } {
  const { value, grads } = tf.variableGrads(() => {
    const h = tf.conv2d(x, w1 as unknown as tf.Tensor4D, 1, 'same');
    const y = tf.conv2d(h, w2 as unknown as tf.Tensor4D, 2, 'same');
    return tf.sum(tf.square(y));
  }, [w1, w2]);
  return { loss: value, grads: [grads[w1.name], grads[w2.name]] };
}

/** The GEMM keys the net must issue: both convs' forward and filter gradient, the second's input-gradient phases. */
function expectedKeys(): string[] {
  const c1 = tf.backend_util.computeConv2DInfo(X, W1, 1, 1, 'same');
  const c2 = tf.backend_util.computeConv2DInfo(c1.outShape as [number, number, number, number], W2, 2, 1, 'same');
  const phases = inputGradPhases(c2).filter((p) => p.Hp > 0 && p.Wp > 0 && p.nKh > 0 && p.nKw > 0);
  return [
    conv2dForwardSpec(c1).key,
    conv2dFilterGradSpec(c1).key,
    conv2dForwardSpec(c2).key,
    conv2dFilterGradSpec(c2).key,
    ...phases.map((p) => conv2dInputGradPhaseSpec(c2, p).key),
  ].sort();
}

async function evalNet(backend: string): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const x = tf.tensor4d(
    randn(
      X.reduce((a, b) => a * b),
      1,
    ),
    X,
  );
  const w1 = tf.variable(
    tf.tensor4d(
      randn(
        W1.reduce((a, b) => a * b),
        2,
        0.2,
      ),
      W1,
    ),
  );
  const w2 = tf.variable(
    tf.tensor4d(
      randn(
        W2.reduce((a, b) => a * b),
        3,
        0.2,
      ),
      W2,
    ),
  );
  const { loss, grads } = lossAndGrads(x, w1, w2);
  const out = [await loss.data(), ...(await Promise.all(grads.map((g) => g.data())))] as Float32Array[];
  tf.dispose([x, w1, w2, loss, ...grads]);
  return out;
}

/** Shader keys of the GEMMs run while `f` runs. */
async function gemmShaders(f: () => Promise<unknown>): Promise<string[]> {
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...r: unknown[]) => unknown };
  const orig = be.runWebGPUProgram;
  const keys: string[] = [];
  be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...r: unknown[]) {
    if (p.shaderKey.startsWith('dtGemm_')) keys.push(p.shaderKey);
    return orig.call(this, p, ...r);
  };
  try {
    await f();
  } finally {
    be.runWebGPUProgram = orig;
  }
  return keys;
}

/** Runs `f` with our kernels registered (winograd off) and no measured choices, clearing both after. */
async function withKernels(f: () => Promise<void>): Promise<void> {
  registerWebgpuKernels();
  clearTuning();
  try {
    await f();
  } finally {
    clearTuning();
    unregisterWebgpuKernels();
  }
}

/** The tuner's workload: one loss-and-gradients evaluation of the net on WebGPU. */
const workload = async (): Promise<void> => void (await evalNet('webgpu'));

test('the tuner records each conv GEMM of a workload once and keeps the fastest candidate', async (t) => {
  if (!(await useWebgpu(t))) return;
  await withKernels(async () => {
    // Fake clock: the candidate with the lowest ms depends on the GEMM, so one fixed answer cannot pass.
    const cost = (c: GemmCandidate, M: number): number => (GEMM_CANDIDATES.indexOf(c) * 7 + M) % GEMM_CANDIDATES.length;
    const timed: string[] = [];
    const streamed: string[] = [];
    const rows = await tuneGemms(workload, {
      algorithms: false,
      time: async (run, c, spec) => {
        run();
        timed.push(`${spec.key}|${c.label}`);
        return cost(c, spec.M);
      },
      // Each row as soon as it is measured: after its GEMM's candidates, before the next GEMM's.
      onRow: (r) => streamed.push(`${r.key} after ${timed.length}`),
    });
    assert.deepEqual(rows.map((r) => r.key).sort(), expectedKeys(), 'one row per distinct GEMM of the net');
    assert.deepEqual(
      streamed,
      rows.map((r, i) => `${r.key} after ${(i + 1) * GEMM_CANDIDATES.length}`),
      'rows reported as measured',
    );
    assert.equal(timed.length, rows.length * GEMM_CANDIDATES.length, 'every candidate timed on every GEMM');
    for (const r of rows) {
      const want = GEMM_CANDIDATES.reduce((b, c) => (cost(c, r.M) < cost(b, r.M) ? c : b));
      assert.equal(r.chosen, want.label, `${r.key}: fastest candidate`);
      assert.deepEqual(tunedGemms().get(r.key), want.opts, `${r.key}: stored choice`);
    }
  });
});

test('tuned kernels compute what cpu does and run the chosen variant; clearing restores the default', async (t) => {
  if (!(await useWebgpu(t))) return;
  const ref = await evalNet('cpu');
  await tf.setBackend('webgpu');
  await withKernels(async () => {
    const pick = GEMM_CANDIDATES.find((c) => c.label === '8x8:blocked:prefetch')!;
    await tuneGemms(workload, { algorithms: false, time: async (_run, c) => (c === pick ? 1 : 2) });
    let got: Float32Array[] = [];
    const tunedKeys = await gemmShaders(async () => {
      got = await evalNet('webgpu');
    });
    ref.forEach((r, i) => assert.ok(relErr(got[i], r) < 1e-4, `output ${i}: rel err ${relErr(got[i], r)}`));
    assert.ok(
      tunedKeys.length >= expectedKeys().length && tunedKeys.every((k) => k.includes('_8x8bp_')),
      `every GEMM ran 8x8 blocked with prefetch: ${tunedKeys.join(' ')}`,
    );
    clearTuning();
    const plainKeys = await gemmShaders(() => evalNet('webgpu'));
    assert.ok(
      plainKeys.every((k) => k.includes('_4x4_')),
      `back to the registered 4x4 strided default: ${plainKeys.join(' ')}`,
    );
  });
});

test('the tuner times candidates on the GPU (real clock)', async (t) => {
  if (!(await useWebgpu(t))) return;
  await withKernels(async () => {
    const two = GEMM_CANDIDATES.filter((c) => c.label === '4x4' || c.label === '4x4:blocked');
    const rows = await tuneGemms(workload, { candidates: two, iters: 1 });
    // The GEMMs, plus one algorithm row for the stride-1 3x3 forward (its input gradient is never taken: x is no variable).
    assert.equal(rows.length, expectedKeys().length + 1);
    assert.ok(
      rows.some((r) => r.key.startsWith('conv fwd_') && /^(direct|winograd) /.test(r.chosen)),
      'a direct-or-Winograd choice for the stride-1 conv',
    );
    for (const r of rows) {
      assert.ok(
        Object.values(r.ms).every((ms) => Number.isFinite(ms) && ms > 0),
        `${r.key}: ${JSON.stringify(r.ms)}`,
      );
      const labels = r.key.startsWith('conv ')
        ? two.flatMap((c) => [`direct ${c.label}`, `winograd ${c.label}`])
        : two.map((c) => c.label);
      assert.ok(labels.includes(r.chosen), `${r.key}: chose ${r.chosen}`);
      assert.equal(Object.keys(r.ms).length, labels.length, `${r.key}: every candidate timed`);
    }
  });
});

test('the tuner picks Winograd or the direct GEMM per stride-1 3x3 pass, by the clock, and the choice is what runs', async (t) => {
  if (!(await useWebgpu(t))) return;
  const ref = await evalNet('cpu');
  await tf.setBackend('webgpu');
  await withKernels(async () => {
    // winograd off: only a measured choice can turn it on
    for (const winogradFaster of [true, false]) {
      clearTuning();
      const rows = await tuneGemms(workload, {
        time: async (run, _c, spec) => {
          run();
          return spec.key.startsWith('wino_') === winogradFaster ? 1 : 2;
        },
      });
      const pass = rows.filter((r) => r.key.startsWith('conv '));
      assert.equal(pass.length, 1, "one stride-1 3x3 pass (the first conv's forward)");
      assert.match(pass[0].chosen, winogradFaster ? /^winograd / : /^direct /);
      let got: Float32Array[] = [];
      const keys = await gemmShaders(async () => {
        got = await evalNet('webgpu');
      });
      assert.equal(
        keys.some((k) => k.startsWith('dtGemm_wino_')),
        winogradFaster,
        `Winograd ran: ${winogradFaster}`,
      );
      ref.forEach((r, i) => assert.ok(relErr(got[i], r) < 1e-4, `output ${i}: rel err ${relErr(got[i], r)}`));
    }
  });
});

test('the tuner refuses a backend other than webgpu', async () => {
  await tf.setBackend('cpu');
  await assert.rejects(
    tuneGemms(() => undefined),
    /not webgpu/,
  );
});

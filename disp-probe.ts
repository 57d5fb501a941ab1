import * as tf from '@tensorflow/tfjs';
import { ensureWebgpu } from './lib/kernels/webgpu/setup';
import { registerWebgpuKernels } from './lib/kernels/webgpu';
import { buildSslModel, METHOD_STEPS } from './lib/methods';
import { resolveConfig } from './lib/train/config';
import { stepSchedule } from './lib/train/schedule';
import { Optimizer } from './lib/train/optimizers';
(async () => {
  await ensureWebgpu(['backend=null']);
  await tf.setBackend('webgpu'); await tf.ready();
  registerWebgpuKernels();
  const meth = (process.argv[3] ?? 'barlow') as any;
  const cfg = resolveConfig({ method: meth, backbone: process.argv[4] === 'vit' ? { kind: 'vit', preset: 'tiny4' } : { kind: 'resnet', depth: 18, width: 16 }, batchSize: Number(process.env.BB ?? 16), epochs: 100, projector: { hidden: 256, out: 256, layers: 3 }, augment: { nLocal: 4 }, dino: { head: { out: 1024, hidden: 256, bottleneck: 64 } } } as any);
  const model = buildSslModel(cfg);
  const method = METHOD_STEPS[cfg.method];
  const opt = new Optimizer(cfg.optimizer);
  const trainable = model.student.trainableNames().map((n) => model.student.get(n));
  const byVar = new Map(model.student.trainableNames().map((n) => [model.student.get(n).name, n]));
  const BB = Number(process.env.BB ?? 16);
  const views = [0, 1].map((v) => tf.randomNormal([BB, 32, 32, 3], 0, 1, 'float32', v)) as tf.Tensor4D[];
  if (meth !== 'barlow') for (let v = 0; v < 4; v++) views.push(tf.randomNormal([16, 16, 16, 3], 0, 1, 'float32', 9 + v) as tf.Tensor4D);
  let phase = 'fwd+bwd';
  const counts = new Map<string, number>();
  const be = tf.backend() as any;
  const orig = be.runWebGPUProgram;
  let on = false;
  const detail = process.argv[2] === 'detail';
  be.runWebGPUProgram = function (p: any, ...r: any[]) {
    if (on) { const k = detail ? `${phase} ${String(p.shaderKey).slice(0, 40)} ${JSON.stringify(p.outputShape)}` : `${phase} ${String(p.shaderKey).split('_')[0].replace(/[0-9].*/, '')}`; counts.set(k, (counts.get(k) ?? 0) + 1); }
    return orig.call(this, p, ...r);
  };
  const dev = be.device;
  const cb = dev.createBuffer.bind(dev);
  const creates = new Map<string, number>();
  dev.createBuffer = (d: any) => { if (process.env.ALLC || on) { const k = `${d.size} ${d.usage} ${d.mappedAtCreation} ${(new Error().stack ?? '').split('\n').slice(2, 9).map((l) => l.trim().replace(/^at /, '').split(' (')[0]).join(' < ')}`; creates.set(k, (creates.get(k) ?? 0) + 1); } return cb(d); };
  for (let step = 0; step < 3; step++) {
    on = step === 2;
    const s = stepSchedule(cfg, step, 1000);
    phase = 'fwd+bwd';
    phase = 'teacher';
    const teacherOut = method.teacherOutputs?.(model, views, s);
    phase = 'fwd+bwd';
    const { value, grads } = tf.variableGrads(() => method.loss(model, views, teacherOut, s).total, trainable);
    const named = new Map<string, tf.Tensor>();
    for (const [vn, g] of Object.entries(grads)) named.set(byVar.get(vn)!, g);
    phase = 'optimizer';
    const gn = opt.apply(model.student, named, s.lr, { weightDecay: s.weightDecay });
    phase = 'after';
    method.afterStep?.(model, teacherOut, s);
    teacherOut?.dispose();
    tf.dispose([...Object.values(grads), gn, value]);
  }
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  let tot = 0; for (const [, n] of rows) tot += n;
  console.log('total', tot);
  for (const [k, n] of creates) console.log('create', n, k);
  for (const [k, n] of rows) console.log(String(n).padStart(5), k);
})();

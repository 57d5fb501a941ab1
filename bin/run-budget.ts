/**
 * Runs a whole budget outside Jupyter, exactly as the notebooks do (same configs, same run
 * folders): pretraining of each method and the random-init and supervised baselines, each followed
 * by its frozen linear probe. Finished steps are skipped, so it can be re-run after an interruption.
 * Only the runs this command names are probed, so two of these commands can share a budget folder.
 *   npx tsx bin/run-budget.ts --budget cpu [--only barlow,dino,dino-twins,random-init,supervised] [--no-probe]
 *                             [--override '{"dino":{"emaMomentum":0.99}}']   (config overrides for the methods: an ablation run gets its own folder;
 *                             a key one of the --only methods does not read is an error)
 *                             [--seeds 0,1,2]   (every selected method and baseline once per seed; default: the config's seed, 0)
 */
import { parseArgs } from 'util';
import * as path from 'path';
import { selectBackend } from '../lib/backend/select';
import { BUDGETS, BudgetName, BUDGETS_NAMES, experimentConfig } from '../lib/config/budget';
import {
  loadExperimentData,
  runPretraining,
  runBaseline,
  probeRun,
  baselineDir,
  ExperimentData,
} from '../lib/protocol/experiment';
import { readRunRecord } from '../lib/train/runRecord';
import { METHODS, Method, PretrainConfig, ConfigLayer } from '../lib/config/config';
import { progress } from '../lib/viz/progress';
import { InterruptedError } from '../lib/train/interrupt';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      budget: { type: 'string' },
      only: { type: 'string' },
      'no-probe': { type: 'boolean' },
      override: { type: 'string' },
      seeds: { type: 'string' },
    },
    strict: true,
  });
  const name = values.budget ?? 'smoke';
  if (!(BUDGETS_NAMES as readonly string[]).includes(name))
    throw new Error(`--budget "${name}" is not one of ${BUDGETS_NAMES.join(', ')}`);
  const budget = BUDGETS[name as BudgetName];
  const all = [...METHODS, 'random-init', 'supervised'];
  const only = values.only ? values.only.split(',') : all;
  for (const o of only) if (!all.includes(o)) throw new Error(`--only: "${o}" is not one of ${all.join(', ')}`);
  let overrides: ConfigLayer = {};
  if (values.override) {
    try {
      overrides = JSON.parse(values.override) as ConfigLayer;
    } catch (e) {
      throw new Error(`--override is not valid JSON: ${(e as Error).message}`);
    }
  }
  const seeds =
    values.seeds === undefined
      ? [undefined]
      : values.seeds.split(',').map((v) => {
          const n = Number(v);
          if (v.trim() === '' || !Number.isInteger(n) || n < 0)
            throw new Error(`--seeds: "${v}" is not a non-negative integer (use e.g. --seeds 0,1,2)`);
          return n;
        });
  if (seeds[0] !== undefined && overrides.seed !== undefined)
    throw new Error('--seeds and a "seed" in --override say the same thing; keep one');
  // Validate before loading data or training (resolveConfig names the bad field).
  for (const m of only)
    if ((METHODS as readonly string[]).includes(m))
      for (const seed of seeds)
        experimentConfig(m as Method, budget, seed === undefined ? overrides : { ...overrides, seed });
  await selectBackend();
  const data = await loadExperimentData(budget);
  console.log(`data: ${data.source}\n${data.protocol.split}`);
  for (const seed of seeds)
    for (const m of only) {
      const t0 = Date.now();
      if ((METHODS as readonly string[]).includes(m)) {
        const cfg = experimentConfig(m as Method, budget, seed === undefined ? overrides : { ...overrides, seed });
        const bar = progress({ total: cfg.epochs * Math.floor(data.train.n / cfg.batchSize), label: m });
        const r = await runPretraining(cfg, budget, data, {
          onStep: (s) => bar.update(s.step + 1, { loss: s.values.loss }),
          onEpochEnd: (i) =>
            console.error(`\n${m} epoch ${i.epoch + 1}: ${JSON.stringify({ ...i.metrics.means, ...i.metrics.extra })}`),
        });
        bar.done();
        r.model.dispose();
        console.log(`${m}: ${r.record.status} in ${((Date.now() - t0) / 1000).toFixed(0)} s -> ${r.recordFile}`);
        if (!values['no-probe']) await probe(r.recordFile, data, budget.probeEpochs);
      } else {
        const kind = m as 'random-init' | 'supervised';
        const baselineSeed = seed ?? (overrides.seed as number | undefined) ?? 0;
        const rec = await runBaseline(kind, budget.pretrain.backbone, budget, data, { seed: baselineSeed });
        console.log(`${m}: ${rec.status} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        if (!values['no-probe'])
          await probe(path.join(baselineDir(kind, budget, baselineSeed), 'record.json'), data, budget.probeEpochs);
      }
    }
}

/** The frozen linear probe and test kNN of one finished run, unless its record already has them. */
async function probe(recordFile: string, data: ExperimentData, probeEpochs: number): Promise<void> {
  const record = readRunRecord(recordFile);
  if (record.status !== 'done') return;
  if (record.results.linearProbe) {
    console.log(`${record.id}: already probed`);
    return;
  }
  const t0 = Date.now();
  const p = await probeRun(recordFile, data, probeEpochs);
  console.log(
    `${path.basename(path.dirname(recordFile))}: linear val ${p.linear.valTop1.toFixed(2)}%, test ${p.linear.testTop1?.toFixed(2)}%, kNN test ${p.knnTestTop1.toFixed(2)}% (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
  );
}

main().catch((e) => {
  // Ctrl-C: the current run stopped at a step boundary with a checkpoint; re-running continues it.
  if (e instanceof InterruptedError) {
    console.error(`\n${e.message}`);
    process.exit(130);
  }
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});

/**
 * CLI for long pretraining runs outside Jupyter:
 *   npm run pretrain -- --method dino-twins --backbone resnet18 --width 16 --epochs 10 --batch 128 --per-class 1000
 * Options are validated before any compute; re-running the same command resumes from the run's checkpoint.
 */
import { parseCli, CLI_HELP, cliBudget, cliRunDir } from '../lib/train/cli';
import { ConfigError } from '../lib/config';
import { selectBackend } from '../lib/backend';
import { loadExperimentData, runPretraining } from '../lib/experiment';
import { progress } from '../lib/viz/progress';
import { InterruptedError } from '../lib/train/interrupt';

async function main(): Promise<number> {
  let o;
  try {
    o = parseCli(process.argv.slice(2));
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    console.log(CLI_HELP);
    return 0;
  }
  await selectBackend();
  const budget = cliBudget(o);
  // The split with seed 0, as the notebooks and sweeps split (the config's seed varies weights, data order and views).
  const data = await loadExperimentData(budget, { allowFixture: false });
  console.log(`data: ${data.source}; ${data.train.n} training images, ${data.val.n} validation images (from the training set)`);
  const total = o.config.epochs * Math.floor(data.train.n / o.config.batchSize);
  const bar = progress({ total, label: `${o.config.method}` });
  const res = await runPretraining(o.config, budget, data, {
    runDir: cliRunDir(o, data.identity),
    fresh: !o.resume,
    onStep: (s) => bar.update(s.step + 1, { loss: s.values.loss, lr: s.schedule.lr }),
    onEpochEnd: (info) => {
      const m = info.metrics;
      const knn = m.extra.knnTop1 !== undefined ? `, kNN val ${m.extra.knnTop1.toFixed(2)}%` : '';
      process.stderr.write(`\nepoch ${info.epoch + 1}/${info.totalEpochs}: loss ${m.means.loss?.toFixed(4)}${knn}\n`);
    },
  });
  bar.done();
  console.log(`run record: ${res.recordFile} (${res.record.status})`);
  res.model.dispose();
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  // Ctrl-C: the run stopped at a step boundary with a checkpoint; its message says how to resume.
  if (e instanceof InterruptedError) {
    console.error(`\n${e.message}`);
    process.exit(130);
  }
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});

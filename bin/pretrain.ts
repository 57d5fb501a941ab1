/**
 * CLI for long pretraining runs outside Jupyter:
 *   npm run pretrain -- --method dino-twins --backbone resnet18 --width 16 --epochs 10 --batch 128 --per-class 1000
 *   npm run pretrain -- --method barlow --data path/to/folder [--image-size 64] [--skip-bad]
 * Options are validated before any compute; re-running the same command resumes from the run's checkpoint.
 * After pretraining, kNN and the linear probe run on the test split and go into the run record
 * (--probe-epochs 0 skips them; an unlabelled folder skips them with a message).
 */
import { parseCli, CLI_HELP, cliBudget, cliConfig, cliRunDir } from '../lib/train/cli';
import { ConfigError } from '../lib/config/config';
import { selectBackend } from '../lib/backend/select';
import { evaluationUnavailable, loadExperimentData, probeRun, runPretraining } from '../lib/protocol/experiment';
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
  const data = await loadExperimentData(budget, { allowFixture: false, data: o.data });
  const config = cliConfig(o, data.imageSize);
  if (data.folder)
    console.log(
      `data: ${data.source}\nsplit: ${data.train.n} training, ${data.val.n} validation and ${data.test.n} test images; ${data.protocol.split}`,
    );
  else
    console.log(
      `data: ${data.source}; ${data.train.n} training images, ${data.val.n} validation images (from the training set)`,
    );
  if (!data.labelled) console.log(`no labels: ${data.evaluationSkipped}`);
  const total = config.epochs * Math.floor(data.train.n / config.batchSize);
  const bar = progress({ total, label: `${config.method}` });
  const res = await runPretraining(config, budget, data, {
    runDir: cliRunDir(o, data.identity, { runsSubdir: data.runsSubdir, config }),
    fresh: !o.resume,
    onStep: (s) => bar.update(s.step + 1, { loss: s.values.loss, lr: s.schedule.lr }),
    onEpochEnd: (info) => {
      const m = info.metrics;
      const knn = m.extra.knnTop1 !== undefined ? `, kNN val ${m.extra.knnTop1.toFixed(2)}%` : '';
      const rank =
        m.extra.knnTop1 === undefined && m.extra.effectiveRank !== undefined
          ? `, effective rank ${m.extra.effectiveRank.toFixed(1)}`
          : '';
      process.stderr.write(
        `\nepoch ${info.epoch + 1}/${info.totalEpochs}: loss ${m.means.loss?.toFixed(4)}${knn}${rank}\n`,
      );
    },
  });
  bar.done();
  console.log(`run record: ${res.recordFile} (${res.record.status})`);
  res.model.dispose();
  const probeEpochs = o.probeEpochs ?? budget.probeEpochs;
  if (res.record.status !== 'done') return 0;
  const unavailable = evaluationUnavailable(data);
  if (probeEpochs === 0) console.log('probe: skipped (--probe-epochs 0)');
  else if (unavailable) console.log(`probe: skipped: ${unavailable}`);
  else {
    const p = await probeRun(res.recordFile, data, probeEpochs);
    console.log(
      `probe: kNN test top-1 ${p.knnTestTop1.toFixed(2)}%, linear probe test top-1 ${p.linear.testTop1?.toFixed(2)}% (val ${p.linear.valTop1.toFixed(2)}%; ${data.train.n} training, ${data.test.n} test images); written into ${res.recordFile}`,
    );
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    // Ctrl-C: the run stopped at a step boundary with a checkpoint; its message says how to resume.
    if (e instanceof InterruptedError) {
      console.error(`\n${e.message}`);
      process.exit(130);
    }
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  },
);

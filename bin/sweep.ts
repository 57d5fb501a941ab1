/**
 * Sweeps from the command line (see README, "Sweeps on a cluster"):
 *   npm run sweep -- SPEC.json --engine local     every run here, one after another
 *   npm run sweep -- SPEC.json --engine slurm     one sbatch job array, one task per run; prints the job id
 *   npm run sweep -- SPEC.json --status | --cancel [--run FOLDER] | --results
 * The spec is validated and expanded (every run's config resolved) before anything runs or is submitted.
 */
import { parseArgs } from 'util';
import * as path from 'path';
import { selectBackend } from '../lib/backend/select';
import { ConfigError } from '../lib/config/config';
import { progress, ProgressBar } from '../lib/viz/progress';
import {
  SweepError,
  SweepPlan,
  expandSweep,
  findRun,
  loadSweepSpec,
  SlurmOptions,
  sweepBudget,
} from '../lib/sweep/spec';
import { loadExperimentData } from '../lib/protocol/experiment';
import { describeProgress, formatResults, runProgress, sweepResults, textTable } from '../lib/sweep/records';
import { runSweepLocal, runSweepTask, TaskTerminatedError } from '../lib/sweep/local';
import { cancelSweep, heldRuns, onPath, submitSweep } from '../lib/sweep/slurm';
import { formatStatus, sweepStatus } from '../lib/sweep/status';

const HELP = `Usage: npm run sweep -- SPEC.json [action] [options]

A sweep spec (JSON) is a budget, methods, overrides for every run ("base"), named variants, a grid
of config keys and seeds; it expands into runs named and stored exactly as the notebooks and
npm run pretrain name and store them (runs/<budget>/<run>/), so finished runs are never redone.

Actions (one; none lists the runs and their state):
  --engine local       train the runs one after another in this process (done runs are skipped,
                       half-done ones resume from their checkpoints); then the results table
  --engine slurm       submit the runs that are neither done nor queued as one Slurm job array
                       (one task per run, logs per task) and print the job id; submit again after
                       failures: only what is not done runs
  --status             each run's record next to squeue/sacct for its task; failed tasks as sacct reports them
  --cancel             cancel the sweep's queued and running tasks (with --run FOLDER: that run's task only)
  --results            the results table from the run records (works while tasks still run)
  --task --run FOLDER  train one run in this process (what each array task runs)

Slurm options (they override the spec's "slurm" section):
  --max-running N      tasks at once (the array's %N throttle)
  --partition NAME     --time LIMIT (e.g. 02:00:00)     --gpus N (per task, --gres=gpu:N)
  --cpus N (per task)  --mem SIZE (e.g. 16G)
  --sbatch-arg FLAG    any other sbatch flag, repeatable: --sbatch-arg=--account=ml --sbatch-arg=--qos=short
  --setup LINE         a shell line each task runs first, repeatable: --setup 'module load nodejs/20'
  --dry-run            write the job script (runs/<budget>/sweeps/<name>/sweep.sbatch) without submitting
`;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x <= 0) throw new SweepError(`--${name} must be a positive integer, got "${v}"`);
  return x;
}

function listRuns(plan: SweepPlan): string {
  const probe = plan.spec.probe ?? false;
  const rows = plan.runs.map((r) => [String(r.index), r.rel, r.label, describeProgress(runProgress(r, probe))]);
  return [
    `sweep ${plan.spec.name}: ${plan.runs.length} runs in ${plan.runsRoot}`,
    ...plan.notes.map((n) => `note: ${n}`),
    '',
    textTable(['#', 'run', 'what', 'state'], rows),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      engine: { type: 'string' },
      status: { type: 'boolean' },
      cancel: { type: 'boolean' },
      results: { type: 'boolean' },
      task: { type: 'boolean' },
      run: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'max-running': { type: 'string' },
      partition: { type: 'string' },
      time: { type: 'string' },
      gpus: { type: 'string' },
      cpus: { type: 'string' },
      mem: { type: 'string' },
      'sbatch-arg': { type: 'string', multiple: true },
      setup: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new SweepError(
      `give exactly one sweep spec file, got ${positionals.length ? positionals.join(' ') : 'none'}\n\n${HELP}`,
    );
  const actions = [
    values.engine !== undefined && '--engine',
    values.status && '--status',
    values.cancel && '--cancel',
    values.results && '--results',
    values.task && '--task',
  ].filter(Boolean);
  if (actions.length > 1) throw new SweepError(`give one action, got ${actions.join(' ')}`);
  if (values.engine !== undefined && values.engine !== 'local' && values.engine !== 'slurm')
    throw new SweepError(`--engine must be local or slurm, got "${values.engine}"`);
  if (values.run !== undefined && !values.task && !values.cancel)
    throw new SweepError('--run goes with --task or --cancel');

  // Run folders are named from each run's config and data, so the data is loaded (and verified) first.
  const spec = loadSweepSpec(path.resolve(positionals[0]));
  const data = await loadExperimentData(sweepBudget(spec));
  const plan = expandSweep(spec, data.identity);

  if (values.task) {
    if (!values.run) throw new SweepError('--task needs --run FOLDER');
    const run = findRun(plan, values.run);
    await selectBackend();
    let bar: ProgressBar | undefined;
    const outcome = await runSweepTask(plan, run, {
      data,
      onStep: (_r, s) => {
        bar ??= progress({ total: s.totalSteps, label: run.id });
        bar.update(s.step + 1, { loss: s.values.loss });
      },
    });
    bar?.done();
    console.log(`${run.rel}: ${outcome}; ${describeProgress(runProgress(run, plan.spec.probe ?? false))}`);
    return 0;
  }
  if (values.status) {
    console.log(formatStatus(sweepStatus(plan)));
    return 0;
  }
  if (values.results) {
    console.log(formatResults(sweepResults(plan)));
    return 0;
  }
  if (values.cancel) {
    const ids = cancelSweep(plan, { run: values.run });
    console.log(
      ids.length
        ? `scancel ${ids.join(' ')}`
        : `sweep ${plan.spec.name}: no queued or running task${values.run ? ` for ${values.run}` : ''}`,
    );
    return 0;
  }
  if (values.engine === 'slurm') {
    const slurm: SlurmOptions = {
      maxRunning: num('max-running', values['max-running']),
      partition: values.partition,
      time: values.time,
      gpusPerTask: num('gpus', values.gpus),
      cpusPerTask: num('cpus', values.cpus),
      mem: values.mem,
      sbatchArgs: values['sbatch-arg'],
      setup: values.setup,
    };
    if (!values['dry-run'] && !onPath('sbatch'))
      throw new SweepError(
        "sbatch is not on the PATH: this machine has no Slurm client (use --engine local, or run this on the cluster's login node)",
      );
    const res = submitSweep(plan, { ...slurm, dryRun: values['dry-run'] });
    for (const [rel, why] of res.held) console.log(`${rel}: held by ${why}, left out`);
    if (res.runs.length === 0) {
      console.log(
        `sweep ${plan.spec.name}: nothing to submit (${res.done.length} of ${plan.runs.length} runs done, ${res.held.size} queued or running)`,
      );
      return 0;
    }
    const what = `${res.runs.length} task(s) (${res.done.length} of ${plan.runs.length} runs already done)`;
    if (res.jobId === null) {
      console.log(`dry run: ${what}; job script ${res.script} (not submitted)`);
      return 0;
    }
    console.log(
      `sweep ${plan.spec.name}: submitted Slurm job ${res.jobId}, ${what}; script ${res.script}, logs ${path.join(plan.sweepDir, 'logs')}/${res.jobId}_<task>.out`,
    );
    console.log(`follow it with: npm run sweep -- ${positionals[0]} --status`);
    console.log(res.jobId);
    return 0;
  }
  if (values.engine === 'local') {
    await selectBackend();
    let held = new Map<string, string>();
    try {
      held = heldRuns(plan);
    } catch (e) {
      console.warn(
        `warning: cannot ask Slurm which runs its tasks hold (${(e as Error).message}); runs a task is training now would get a second writer here`,
      );
    }
    let bar: ProgressBar | undefined;
    let barFor = '';
    const s = await runSweepLocal(plan, {
      data,
      held,
      onStep: (run, info) => {
        if (!bar || barFor !== run.rel) {
          bar = progress({ total: info.totalSteps, label: run.id });
          barFor = run.rel;
        }
        bar.update(info.step + 1, { loss: info.values.loss });
        if (info.step + 1 >= info.totalSteps) bar.done();
      },
    });
    console.log(
      `\nsweep ${plan.spec.name}: ${s.trained.length} trained, ${s.probed.length} probed, ${s.skipped.length} already done, ${s.held.length} held by Slurm, ${s.failed.length} failed\n`,
    );
    console.log(formatResults(sweepResults(plan)));
    for (const f of s.failed) console.error(`FAILED ${f.run}: ${f.error}`);
    return s.failed.length ? 1 : 0;
  }
  console.log(listRuns(plan));
  console.log(`\nrun them with --engine local or --engine slurm; --help for more`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    const err = e as Error;
    const usage =
      err instanceof SweepError ||
      err instanceof ConfigError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    console.error(`error: ${err.message}`);
    process.exit(err instanceof TaskTerminatedError ? 143 : usage ? 2 : 1);
  },
);

/**
 * The notebooks as users run them: every numbered notebook in a real JupyterLab 4 (the shared test
 * bundle), driven through its UI in headless Chromium, then Kernel > Interrupt during 01's training.
 * Started by scripts/lab-notebooks.sh (`npm run notebooks:lab`), which unpacks the bundle and skips,
 * saying why, where ../shared/tools/jupyterlab is absent.
 *
 * Per notebook, on a copy (Lab autosaves): open it in a fresh workspace, wait for "TypeScript | Idle",
 * Run > Run All Cells in the menu bar, wait until no cell is queued, File > Save Notebook, then
 * check (test/lab/checks.ts) that every code cell got a number, nothing raised, stderr holds only
 * what the notebook means to print, every vega-lite chart drew marks, the plotly explorer drew all
 * its points, every progress bar reached its end and the tables are there (as many charts, plots
 * and tables as nbclient's execution in runs/executed/<budget>/, where that exists). A screenshot
 * of the whole notebook goes to OUT/<notebook>.png either way.
 *
 * The interrupt check: a copy of 01 with more epochs; once its progress bar moved, Kernel >
 * Interrupt Kernel. The run must stop at its next step with an InterruptedError that names the
 * step, its record must say `interrupted` at that step, the progress bar must show that step, the
 * kernel must be the same one and idle; then Run > Run Selected Cell on the training cell resumes
 * from that step and finishes.
 *
 * The Lab server gets DINOTWINS_RUNS=OUT/runs (emptied first), so every notebook trains as on a
 * fresh clone and nbclient's runs are not touched.
 *
 * Usage: node --import tsx test/lab/run.ts --bundle DIR [--out DIR] [--only 00,01,interrupt] [--timeout SECONDS]
 * Exit status: 0 when every check passed, 1 otherwise, 2 on bad usage.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import type { Browser } from 'puppeteer-core';
import { checkNotebook, savedCells, savedKinds, EXPECTED_STDERR, type DrawnCell, type SavedCell } from './checks';
import { launchBrowser, NotebookPage, startLab, tail, type LabServer } from './lab';

const ROOT = path.join(__dirname, '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Epochs of the interrupt test's copy of 01 (smoke trains 8 steps an epoch): long enough to interrupt mid-run. */
const INTERRUPT_EPOCHS = 6;
/** Steps the progress bar must show before the interrupt is sent. */
const INTERRUPT_AFTER_STEPS = 3;

const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string' },
    out: { type: 'string' },
    only: { type: 'string' },
    timeout: { type: 'string', default: '1800' },
    reference: { type: 'string' },
  },
  strict: true,
});

function usage(msg: string): never {
  log(
    `test/lab/run.ts: ${msg}\nusage: node --import tsx test/lab/run.ts --bundle DIR [--out DIR] [--only 00,01,interrupt] [--timeout SECONDS]`,
  );
  process.exit(2);
}

const budget = process.env.DINOTWINS_BUDGET ?? 'smoke';
if (!args.bundle || !fs.existsSync(path.join(args.bundle, 'run-lab.sh')))
  usage(
    `--bundle must be the unpacked JupyterLab bundle (the folder with run-lab.sh), got ${args.bundle ?? 'nothing'}`,
  );
const bundle = path.resolve(args.bundle);
const out = path.resolve(args.out ?? path.join(ROOT, 'runs', 'executed', budget, 'lab'));
const reference = path.resolve(args.reference ?? path.join(ROOT, 'runs', 'executed', budget));
const timeoutMs = 1000 * Number(args.timeout);
if (!(timeoutMs > 0)) usage(`--timeout must be a positive number of seconds, got ${args.timeout}`);
const kernels = path.join(ROOT, '.jupyter', 'share', 'jupyter');
if (!fs.existsSync(path.join(kernels, 'kernels', 'tslab', 'kernel.json')))
  usage('the tslab kernel is not registered in .jupyter: run bash scripts/setup.sh');

const all = fs
  .readdirSync(path.join(ROOT, 'notebooks'))
  .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
  .sort();
const only = args.only ? new Set(args.only.split(',').map((s) => s.trim())) : null;
const notebooks = all.filter((f) => !only || only.has(f.slice(0, 2)));
const withInterrupt = !only || only.has('interrupt');
if (only && notebooks.length === 0 && !withInterrupt) usage(`--only ${args.only}: no such notebook`);

/** The notebook copies Lab serves, beside a `lib` link (tslab's rootDir is the notebook's folder). */
const nbDir = path.join(out, 'notebooks');
const runs = path.join(out, 'runs');

function prepare(): void {
  for (const d of [nbDir, runs, path.join(out, 'state')]) fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(nbDir, { recursive: true });
  fs.symlinkSync(path.relative(nbDir, path.join(ROOT, 'lib')), path.join(nbDir, 'lib'));
  for (const f of all) fs.copyFileSync(path.join(ROOT, 'notebooks', f), path.join(nbDir, f));
}

function readSaved(file: string): SavedCell[] {
  return savedCells(JSON.parse(fs.readFileSync(path.join(nbDir, file), 'utf8')));
}

function referenceKinds(file: string): Map<number, ReturnType<typeof savedKinds>> | undefined {
  const p = path.join(reference, file);
  if (!fs.existsSync(p)) return undefined;
  return new Map(savedCells(JSON.parse(fs.readFileSync(p, 'utf8'))).map((c) => [c.index, savedKinds(c)]));
}

function summary(drawn: readonly DrawnCell[]): string {
  const n = (f: (d: DrawnCell) => number) => drawn.reduce((s, d) => s + f(d), 0);
  return `charts ${n((d) => d.vega.length)}, plotly ${n((d) => d.plots.length)}, progress bars ${n((d) => d.progress.length)}, tables ${n((d) => d.tables.length)}`;
}

/** One notebook through Run All; returns its problems. */
async function runNotebook(browser: Browser, lab: LabServer, file: string): Promise<string[]> {
  const name = file.replace(/\.ipynb$/, '');
  const t0 = Date.now();
  let nb: NotebookPage | null = null;
  const problems: string[] = [];
  try {
    nb = await NotebookPage.open(browser, lab, file);
    await nb.waitIdle();
    await nb.runAll();
    const seconds = await nb.waitDone(timeoutMs);
    await nb.save();
    const drawn = await nb.drawnCells();
    const ref = referenceKinds(file);
    problems.push(...checkNotebook(readSaved(file), drawn, {}, ref), ...nb.pageErrors);
    log(
      `${problems.length ? 'FAIL' : 'ok  '} ${name}: ran in ${seconds.toFixed(0)} s (${((Date.now() - t0) / 1000).toFixed(0)} s with opening and checks); ${summary(drawn)}${ref ? '' : `; no nbclient execution in ${reference} to compare with`}`,
    );
  } catch (e) {
    problems.push((e as Error).message);
    log(`FAIL ${name}: ${(e as Error).message}`);
  } finally {
    if (nb) {
      await nb
        .screenshot(path.join(out, `${name}.png`))
        .catch((e) => problems.push(`screenshot failed: ${(e as Error).message}`));
      await nb.close();
    }
  }
  for (const p of problems) log(`     - ${p}`);
  return problems;
}

/** A copy of 01 that trains INTERRUPT_EPOCHS epochs (a config of its own: its own run folder). */
function interruptCopy(): string {
  const src = fs.readFileSync(path.join(ROOT, 'notebooks', '01-barlow-twins.ipynb'), 'utf8');
  const nb = JSON.parse(src) as { cells: Array<{ cell_type: string; source: string | string[] }> };
  const cell = nb.cells.find(
    (c) => c.cell_type === 'code' && [c.source].flat().join('').includes('const OVERRIDES = {'),
  );
  if (!cell) throw new Error('01-barlow-twins.ipynb: no config cell with "const OVERRIDES = {" to set the epochs in');
  cell.source = [cell.source]
    .flat()
    .join('')
    .replace(
      'const OVERRIDES = {',
      `const OVERRIDES = {\n  epochs: ${INTERRUPT_EPOCHS}, // the Lab interrupt test: long enough to interrupt mid-run`,
    );
  const file = '01-barlow-twins-interrupt.ipynb';
  fs.writeFileSync(path.join(nbDir, file), JSON.stringify(nb, null, 1));
  return file;
}

/** Kernel > Interrupt Kernel during 01's training, then Run > Run Selected Cell to resume. Returns problems. */
async function interruptTest(browser: Browser, lab: LabServer): Promise<string[]> {
  const problems: string[] = [];
  const fail = (msg: string) => {
    problems.push(msg);
    log(`     - ${msg}`);
  };
  const file = interruptCopy();
  const train = readSaved(file).find((c) => c.source.includes('runPretraining('));
  if (!train) return [`${file}: no training cell (runPretraining)`];
  const t0 = Date.now();
  let nb: NotebookPage | null = null;
  try {
    nb = await NotebookPage.open(browser, lab, file);
    await nb.waitIdle();
    const before = await nb.kernel();
    await nb.runAll();
    // Wait for the training cell's progress bar to move, then interrupt through the menu.
    const bar = async () => (await nb!.drawnCells()).find((d) => d.index === train.index)?.progress[0];
    let atClick = -1;
    for (const tStart = Date.now(); Date.now() - tStart < timeoutMs; await sleep(200)) {
      const b = await bar();
      if (b && b.value >= INTERRUPT_AFTER_STEPS) {
        atClick = b.value;
        break;
      }
    }
    if (atClick < 0) throw new Error(`the training cell's progress bar never reached step ${INTERRUPT_AFTER_STEPS}`);
    await nb.menu('Kernel', 'Interrupt Kernel');
    await nb.waitDone(300_000);
    await nb.save();
    // tslab prints a cell's exception on stderr (its error reply carries no text); Lab shows that stderr.
    const cell = readSaved(file).find((c) => c.index === train.index)!;
    const stderr = cell.outputs
      .filter((o) => o.type === 'stream' && o.name === 'stderr')
      .map((o) => o.text ?? '')
      .join('');
    const errLine = stderr.split('\n').find((l) => l.startsWith('InterruptedError: ')) ?? '';
    const m = /^InterruptedError: run (\S+) was interrupted at step (\d+) of (\d+)/.exec(errLine);
    if (!m)
      throw new Error(
        `the training cell did not end with an InterruptedError naming the step; its stderr:\n${stderr.slice(0, 800)}`,
      );
    const [, id, stepText, totalText] = m;
    const step = Number(stepText);
    const total = Number(totalText);
    log(
      `     Kernel > Interrupt Kernel clicked at progress ${atClick}/${total}; the cell ended with "${errLine.slice(0, 200)}"`,
    );
    if (step < atClick || step > atClick + 2)
      fail(
        `the run stopped at step ${step}, the bar showed ${atClick} when Kernel > Interrupt was clicked (expected the next step)`,
      );
    const recordFile = path.join(runs, budget, id, 'record.json');
    const rec = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as { status: string; step: number; message?: string };
    if (rec.status !== 'interrupted' || rec.step !== step)
      fail(`${recordFile} says ${rec.status} at step ${rec.step}, expected interrupted at step ${step}`);
    const drawnBar = await bar();
    if (!drawnBar || drawnBar.value !== step)
      fail(
        `the progress bar shows ${drawnBar ? `${drawnBar.value}/${drawnBar.max}` : 'nothing'} after the interrupt, the run stopped at step ${step}`,
      );
    else if (!/interrupted/.test(drawnBar.text))
      fail(`the progress bar does not say the run was interrupted: ${drawnBar.text}`);
    const expected = [
      ...EXPECTED_STDERR.map((e) => e.pattern),
      /^interrupt: stopping pretraining run \S+ at the next step boundary/,
      /^InterruptedError: run \S+ was interrupted at step \d+ of \d+; checkpoint written, memory freed\. Re-run this cell/,
    ];
    for (const line of stderr
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean))
      if (!expected.some((p) => p.test(line))) fail(`the training cell printed on stderr: ${line}`);
    const after = await nb.kernel();
    if (!before || !after || after.id !== before.id || after.state !== 'idle')
      fail(`the kernel did not stay alive: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
    if (!/TypeScript\s*\|\s*Idle/.test(await nb.kernelStatus()))
      fail(`the status bar does not say "TypeScript | Idle" after the interrupt: ${await nb.kernelStatus()}`);

    // Re-run the training cell: select it (its prompt, not its editor) and use Run > Run Selected Cell.
    const prompts = await nb.page.$$('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
    await (await prompts[train.index].$('.jp-InputPrompt'))!.click();
    await nb.menu('Run', 'Run Selected Cell').catch(() => nb!.menu('Run', 'Run Selected Cells'));
    await sleep(1000);
    await nb.waitDone(timeoutMs);
    await nb.save();
    const rerun = readSaved(file).find((c) => c.index === train.index)!;
    const stdout = rerun.outputs
      .filter((o) => o.type === 'stream' && o.name === 'stdout')
      .map((o) => o.text ?? '')
      .join('');
    const rerunErr = rerun.outputs
      .filter((o) => o.type === 'error' || (o.type === 'stream' && o.name === 'stderr'))
      .map((o) => o.text ?? `${o.ename}: ${o.evalue}`)
      .join('')
      .trim();
    if (rerunErr) fail(`re-running the training cell printed on stderr or raised: ${rerunErr.slice(0, 600)}`);
    if (!stdout.includes(`resuming run ${id} from step ${step} of ${total} (where it was interrupted)`))
      fail(`re-running the training cell did not resume from step ${step}; its output:\n${stdout.slice(0, 800)}`);
    const done = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as {
      status: string;
      step: number;
      resumedFrom: number[];
    };
    if (done.status !== 'done' || done.step !== total || !done.resumedFrom.includes(step))
      fail(
        `after the re-run ${recordFile} says ${done.status} at step ${done.step}, resumed from ${JSON.stringify(done.resumedFrom)}; expected done at ${total}, resumed from ${step}`,
      );
    const endBar = await bar();
    if (!endBar || endBar.value !== total || endBar.max !== total)
      fail(
        `after the re-run the progress bar shows ${endBar ? `${endBar.value}/${endBar.max}` : 'nothing'}, expected ${total}/${total}`,
      );
    const last = await nb.kernel();
    if (!last || !before || last.id !== before.id)
      fail(`the kernel changed during the re-run: ${JSON.stringify(before)} -> ${JSON.stringify(last)}`);
    problems.push(...nb.pageErrors);
    log(
      `${problems.length ? 'FAIL' : 'ok  '} interrupt: Kernel > Interrupt Kernel stopped ${id} at step ${step} of ${total}, the kernel stayed, the re-run resumed and finished (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    );
  } catch (e) {
    problems.push((e as Error).message);
    log(`FAIL interrupt: ${(e as Error).message}`);
  } finally {
    if (nb) {
      await nb
        .screenshot(path.join(out, '01-barlow-twins-interrupt.png'))
        .catch((e) => problems.push(`screenshot failed: ${(e as Error).message}`));
      await nb.close();
    }
  }
  return problems;
}

async function main(): Promise<number> {
  prepare();
  const t0 = Date.now();
  log(`lab: JupyterLab from ${bundle}, budget ${budget}; copies, screenshots and runs in ${path.relative(ROOT, out)}/`);
  const env = {
    ...process.env,
    DINOTWINS_BUDGET: budget,
    DINOTWINS_RUNS: runs,
    JUPYTER_PATH: [kernels, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
  };
  const lab = await startLab({ bundle, root: nbDir, state: path.join(out, 'state'), env });
  let browser: Browser | null = null;
  const failed: string[] = [];
  try {
    browser = await launchBrowser(path.join(out, 'state', 'chromium-profile'));
    for (const f of notebooks) if ((await runNotebook(browser, lab, f)).length) failed.push(f);
    if (withInterrupt && (await interruptTest(browser, lab)).length) failed.push('interrupt');
  } finally {
    await browser?.close().catch(() => undefined);
    await lab.stop();
  }
  const total = notebooks.length + (withInterrupt ? 1 : 0);
  log(
    `lab: ${total - failed.length}/${total} passed in ${((Date.now() - t0) / 60000).toFixed(1)} min${failed.length ? `; failed: ${failed.join(', ')} (screenshots in ${path.relative(ROOT, out)}/, server log ${path.relative(ROOT, lab.log)})` : ''}`,
  );
  if (failed.length) log(`last lines of the server log:\n${tail(lab.log, 15)}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log(`lab: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);

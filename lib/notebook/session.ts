/**
 * A notebook's set-up in one call: the asynchronous-error collector, the backend (with its one-line
 * report), the budget from DINOTWINS_BUDGET, the data (CIFAR-10, or the image folder a notebook's
 * `DATA` key names) with its validation split, and a printout of what was chosen; plotly.js inlined
 * once where a notebook draws interactive plots. Every notebook's second cell is
 * `await dt.setupNotebook(NAME)` (with `{ data: DATA }` where the config cell has one).
 */
import { installAsyncErrorCollector } from './asyncErrors';
import { BackendReport, selectBackend } from '../backend/select';
import { Budget, budgetForImageSize, budgetFromEnv } from '../config/budget';
import { ExperimentData, loadExperimentData } from '../protocol/experiment';
import { inlinePlotly } from '../viz/plotly';
import { repoRoot, type DataSpec } from '../data/index';

export interface NotebookSession {
  /** The notebook's name (for the final tensor report). */
  name: string;
  backend: BackendReport;
  /** The budget, with the views at the data's image size (`budgetForImageSize`; CIFAR-10's 32 changes nothing). */
  budget: Budget;
  /** The budget's data: training subset, validation split (from the training set), test set. */
  data: ExperimentData;
}

/**
 * Sets up notebook `name`. `data`: what to train on: 'cifar10' (the default), an image folder's path
 * (relative paths start at the repository root), or the folder with options (lib/data/dataSpec.ts);
 * `false` skips loading data for a notebook that only reads run records (then `data` throws when
 * used, naming the notebook).
 */
export async function setupNotebook(
  name: string,
  opts: { data?: DataSpec | false; plotly?: boolean } = {},
): Promise<NotebookSession> {
  installAsyncErrorCollector(); // errors thrown after a cell finished fail the run (the last cell checks)
  const backend = await selectBackend(); // prints one line: what was chosen, and why each earlier backend was skipped
  const budget = budgetFromEnv();
  if (opts.plotly) inlinePlotly();
  if (opts.data === false) {
    console.log(`budget: ${budget.name}`);
    const session = { name, backend, budget } as NotebookSession;
    Object.defineProperty(session, 'data', {
      get: () => {
        throw new Error(`${name} was set up without data (setupNotebook(..., { data: false }))`);
      },
    });
    return session;
  }
  const data = await loadExperimentData(budget, { data: opts.data, base: repoRoot() });
  console.log(`budget: ${budget.name}\ndata: ${data.source}\nsplit: ${data.protocol.split}`);
  if (data.labelled === false) console.log(`no labels: ${data.evaluationSkipped}`);
  return { name, backend, budget: budgetForImageSize(budget, data.imageSize), data };
}

/**
 * A notebook's set-up in one call: the asynchronous-error collector, the backend (with its one-line
 * report), the budget from DINOTWINS_BUDGET, the budget's data with its validation split, and a
 * printout of what was chosen; plotly.js inlined once where a notebook draws interactive plots.
 * Every notebook's second cell is `await dt.setupNotebook(NAME)`.
 */
import { installAsyncErrorCollector } from './notebook';
import { BackendReport, selectBackend } from './backend';
import { Budget, budgetFromEnv } from './budget';
import { ExperimentData, loadExperimentData } from './experiment';
import { inlinePlotly } from './viz/plotly';

export interface NotebookSession {
  /** The notebook's name (for the final tensor report). */
  name: string;
  backend: BackendReport;
  budget: Budget;
  /** The budget's data: training subset, validation split (from the training set), test set. */
  data: ExperimentData;
}

/**
 * Sets up notebook `name`. `data: false` skips loading CIFAR-10 for a notebook that only reads run
 * records (then `data` throws when used, naming the notebook). `plotly: true` sends plotly.js into
 * the notebook once (viz.inlinePlotly), so its interactive plots work offline and in exported HTML.
 */
export async function setupNotebook(name: string, opts: { data?: boolean; plotly?: boolean } = {}): Promise<NotebookSession> {
  installAsyncErrorCollector(); // errors thrown after a cell finished fail the run (the last cell checks)
  const backend = await selectBackend(); // prints one line: what was chosen, and why each earlier backend was skipped
  const budget = budgetFromEnv();
  if (opts.plotly) inlinePlotly();
  if (opts.data === false) {
    console.log(`budget: ${budget.name}`);
    const session = { name, backend, budget } as NotebookSession;
    Object.defineProperty(session, 'data', { get: () => { throw new Error(`${name} was set up without data (setupNotebook(..., { data: false }))`); } });
    return session;
  }
  const data = await loadExperimentData(budget);
  console.log(`budget: ${budget.name}\ndata: ${data.source}\nsplit: ${data.protocol.split}`);
  return { name, backend, budget, data };
}

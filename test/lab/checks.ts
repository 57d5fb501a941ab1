/**
 * What the JupyterLab UI test (test/lab/run.ts) checks per notebook, as pure functions of two
 * views of the same run: the notebook as Lab saved it (the model: execution counts, outputs as
 * the kernel sent them) and what Lab drew (the DOM: prompts, vega canvases, plotly points,
 * progress bars, tables). Kept apart from the browser code so the rules have unit tests
 * (test/lab-checks.test.ts).
 */

/** One output of a saved code cell, reduced to what the checks read. */
export interface SavedOutput {
  type: 'stream' | 'display_data' | 'execute_result' | 'error' | string;
  /** Stream name ('stdout' | 'stderr') for stream outputs. */
  name?: string;
  /** Stream text. */
  text?: string;
  /** Error name and value for error outputs. */
  ename?: string;
  evalue?: string;
  /** Mime types of display_data / execute_result. */
  mimes: string[];
  /** The text/html data, if any. */
  html?: string;
}

/** One code cell of the saved notebook. */
export interface SavedCell {
  /** Position among the notebook's cells (markdown included), as Lab numbers them. */
  index: number;
  source: string;
  executionCount: number | null;
  outputs: SavedOutput[];
}

/** One code cell as Lab drew it. */
export interface DrawnCell {
  index: number;
  /** The input prompt's text, e.g. '[3]:' or '[*]:'. */
  prompt: string;
  /** Each vega-lite chart: pixels that are clearly coloured (marks; axes and text are grey). */
  vega: Array<{ colouredPixels: number; width: number; height: number }>;
  /** Each dinotwins plotly plot: drawn flag, scatter points drawn, points it should draw (data-points). */
  plots: Array<{ drawn: boolean; points: number; expected: number }>;
  /** Each dinotwins progress bar's <progress> element. */
  progress: Array<{ value: number; max: number; text: string }>;
  /** Output tables (inside output areas), with their body rows. */
  tables: Array<{ rows: number }>;
}

/** A kind of stderr line a notebook prints on purpose, with the reason it is expected. */
export interface ExpectedStderr {
  pattern: RegExp;
  why: string;
}

/**
 * Stderr lines the notebooks print on purpose. Anything else on stderr is a problem: a warning
 * printed by a notebook is a bug until explained (and then listed here).
 */
export const EXPECTED_STDERR: readonly ExpectedStderr[] = Object.freeze([
  {
    pattern: /^WARNING: using the GENERATED FIXTURE \(synthetic images\)/,
    why: 'smoke without the real CIFAR-10 (lib/protocol/experiment.ts loadExperimentData)',
  },
]);

/** Options of {@link checkNotebook}. */
export interface CheckOptions {
  /** Stderr lines allowed besides none (default EXPECTED_STDERR). */
  expectedStderr: readonly ExpectedStderr[];
  /** Error outputs allowed (e.g. the interrupt test's InterruptedError), by `ename: evalue`. */
  expectedErrors: readonly RegExp[];
  /** Minimum clearly coloured pixels for a vega chart to count as drawn. */
  minColouredPixels: number;
}

export const DEFAULT_CHECK_OPTIONS: Readonly<CheckOptions> = Object.freeze({
  expectedStderr: EXPECTED_STDERR,
  expectedErrors: [],
  minColouredPixels: 30,
});

export const VEGALITE_MIME = 'application/vnd.vegalite.v5+json';
/** The marker of a dinotwins progress bar output (lib/viz/progress.ts progressHtml). */
const PROGRESS_MARK = 'dinotwins-progress';
/** The marker of a dinotwins plotly plot (lib/viz/plotly.ts PLOTLY_PLOT_ATTRIBUTE). */
const PLOT_MARK = 'data-dinotwins-plotly=';
/** A result object's one-line inspect text, printed when a cell ends on a bare expression (e.g. `[bar chart: 1234 bytes of SVG, shown]`). */
const STRAY_RESULT = /^\[[^\]]*, shown\]$/;

/** Outputs of a saved cell that the kernel sent as display data, by what they show. */
export function savedKinds(cell: SavedCell): { charts: number; plots: number; progress: number; tables: number } {
  let charts = 0;
  let plots = 0;
  let progress = 0;
  let tables = 0;
  for (const o of cell.outputs) {
    if (o.mimes.includes(VEGALITE_MIME)) charts++;
    const html = o.html ?? '';
    if (html.includes(PLOT_MARK)) plots++;
    if (html.includes(PROGRESS_MARK)) progress++;
    else if (/<table[\s>]/i.test(html)) tables++;
  }
  return { charts, plots, progress, tables };
}

/** The problems of one notebook run in Lab (empty when it passed). `reference`: per-cell kinds from another execution (nbclient's) to compare with. */
export function checkNotebook(
  saved: readonly SavedCell[],
  drawn: readonly DrawnCell[],
  options: Partial<CheckOptions> = {},
  reference?: ReadonlyMap<number, ReturnType<typeof savedKinds>>,
): string[] {
  const o = { ...DEFAULT_CHECK_OPTIONS, ...options };
  const problems: string[] = [];
  const byIndex = new Map(drawn.map((d) => [d.index, d]));
  if (saved.length === 0) problems.push('the saved notebook has no code cells');
  for (const cell of saved) {
    const where = `cell ${cell.index}`;
    const d = byIndex.get(cell.index);
    if (!Number.isInteger(cell.executionCount)) problems.push(`${where} has no execution count (it did not run)`);
    if (!d) {
      problems.push(`${where} is not on the page`);
      continue;
    }
    if (Number.isInteger(cell.executionCount) && d.prompt.replace(/\s/g, '') !== `[${cell.executionCount}]:`)
      problems.push(
        `${where}: the page shows the prompt "${d.prompt}", the saved notebook execution count ${cell.executionCount}`,
      );
    for (const out of cell.outputs) {
      if (out.type === 'error') {
        const msg = `${out.ename ?? ''}: ${out.evalue ?? ''}`;
        if (!o.expectedErrors.some((p) => p.test(msg))) problems.push(`${where} raised ${msg.slice(0, 400)}`);
      } else if (out.type === 'stream' && out.name === 'stderr') {
        for (const line of (out.text ?? '')
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)) {
          if (!o.expectedStderr.some((e) => e.pattern.test(line)))
            problems.push(`${where} printed on stderr: ${line.slice(0, 300)}`);
        }
      } else if (out.type === 'stream' && out.name === 'stdout') {
        for (const line of (out.text ?? '').split('\n').map((l) => l.trim())) {
          if (STRAY_RESULT.test(line))
            problems.push(
              `${where} printed its last value as a stray line (assign it to a const): ${line.slice(0, 200)}`,
            );
        }
      }
    }
    const k = savedKinds(cell);
    if (d.vega.length !== k.charts)
      problems.push(`${where}: ${k.charts} vega-lite chart(s) sent, ${d.vega.length} drawn on the page`);
    d.vega.forEach((v, j) => {
      if (v.colouredPixels < o.minColouredPixels)
        problems.push(
          `${where}: vega-lite chart ${j + 1} (${v.width}x${v.height}) drew no marks (${v.colouredPixels} coloured pixels)`,
        );
    });
    if (d.plots.length !== k.plots)
      problems.push(`${where}: ${k.plots} plotly plot(s) sent, ${d.plots.length} on the page`);
    d.plots.forEach((p, j) => {
      if (!p.drawn) problems.push(`${where}: plotly plot ${j + 1} did not draw`);
      else if (!(p.expected > 0) || p.points !== p.expected)
        problems.push(`${where}: plotly plot ${j + 1} drew ${p.points} points, expected ${p.expected}`);
    });
    if (d.progress.length !== k.progress)
      problems.push(`${where}: ${k.progress} progress bar(s) sent, ${d.progress.length} on the page`);
    d.progress.forEach((p, j) => {
      if (!(p.max > 0) || p.value !== p.max)
        problems.push(`${where}: progress bar ${j + 1} stopped at ${p.value}/${p.max}: ${p.text.slice(0, 200)}`);
    });
    const shownTables = d.tables.filter((t) => t.rows > 0).length;
    if (shownTables < k.tables)
      problems.push(`${where}: ${k.tables} table(s) sent, ${shownTables} with rows on the page`);
    const ref = reference?.get(cell.index);
    if (ref) {
      for (const kind of ['charts', 'plots', 'tables'] as const) {
        if (ref[kind] !== k[kind])
          problems.push(`${where}: ${k[kind]} ${kind} in Lab, ${ref[kind]} in the nbclient execution`);
      }
    }
  }
  return problems;
}

/** Reads the code cells of a notebook file's JSON (nbformat 4) into SavedCells. */
export function savedCells(notebook: unknown): SavedCell[] {
  const nb = notebook as {
    cells?: Array<{
      cell_type: string;
      source: string | string[];
      execution_count?: number | null;
      outputs?: Array<Record<string, unknown>>;
    }>;
  };
  if (!nb || !Array.isArray(nb.cells)) throw new Error('savedCells: not an nbformat 4 notebook (no cells array)');
  const text = (v: unknown): string => (Array.isArray(v) ? v.join('') : typeof v === 'string' ? v : '');
  const cells: SavedCell[] = [];
  nb.cells.forEach((c, index) => {
    if (c.cell_type !== 'code') return;
    cells.push({
      index,
      source: text(c.source),
      executionCount: c.execution_count ?? null,
      outputs: (c.outputs ?? []).map((out) => {
        const data = (out.data ?? {}) as Record<string, unknown>;
        return {
          type: String(out.output_type),
          ...(out.name !== undefined ? { name: String(out.name) } : {}),
          ...(out.text !== undefined ? { text: text(out.text) } : {}),
          ...(out.ename !== undefined ? { ename: String(out.ename), evalue: String(out.evalue ?? '') } : {}),
          mimes: Object.keys(data),
          ...(data['text/html'] !== undefined ? { html: text(data['text/html']) } : {}),
        };
      }),
    });
  });
  return cells;
}

/**
 * The rules of the JupyterLab UI test (test/lab/checks.ts), on hand-made saved and drawn cells:
 * each kind of failure it exists to catch is caught, and a clean notebook passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkNotebook, savedCells, savedKinds, VEGALITE_MIME, type DrawnCell, type SavedCell } from './lab/checks';

function drawn(index: number, over: Partial<DrawnCell> = {}): DrawnCell {
  return { index, prompt: `[${index}]:`, vega: [], plots: [], progress: [], tables: [], ...over };
}

function saved(index: number, outputs: SavedCell['outputs'] = [], over: Partial<SavedCell> = {}): SavedCell {
  return { index, source: '', executionCount: index, outputs, ...over };
}

const chart = { type: 'display_data', mimes: [VEGALITE_MIME, 'image/svg+xml', 'text/plain'] };
const table = {
  type: 'display_data',
  mimes: ['text/html', 'text/plain'],
  html: '<div><table><tbody><tr><td>1</td></tr></tbody></table></div>',
};
const bar = {
  type: 'display_data',
  mimes: ['text/html', 'text/plain'],
  html: '<div class="dinotwins-progress"><progress value="8" max="8"></progress></div>',
};
const plot = {
  type: 'display_data',
  mimes: ['text/html', 'text/plain'],
  html: '<div data-dinotwins-plotly="scatter" data-points="60"></div>',
};

test('a clean notebook passes; the kinds of outputs are counted from what the kernel sent', () => {
  const cells = [
    saved(1, [{ type: 'stream', name: 'stdout', text: 'backend: wasm\n', mimes: [] }]),
    saved(3, [chart, table, bar]),
    saved(4, [plot]),
  ];
  const page = [
    drawn(1),
    drawn(3, {
      vega: [{ colouredPixels: 900, width: 400, height: 300 }],
      tables: [{ rows: 1 }],
      progress: [{ value: 8, max: 8, text: '8/8' }],
    }),
    drawn(4, { plots: [{ drawn: true, points: 60, expected: 60 }] }),
  ];
  assert.deepEqual(checkNotebook(cells, page), []);
  assert.deepEqual(savedKinds(cells[1]), { charts: 1, plots: 0, progress: 1, tables: 1 });
});

test('each failure is named: unrun cells, errors, stray stderr and stray values, undrawn charts, plots, bars and tables', () => {
  const cells = [
    saved(1, [
      {
        type: 'stream',
        name: 'stderr',
        text: '\nWARNING: using the GENERATED FIXTURE (synthetic images): no data\nsomething unexpected\n',
        mimes: [],
      },
    ]),
    saved(2, [{ type: 'error', ename: 'TypeError', evalue: 'x is undefined', mimes: [] }]),
    saved(3, [chart, chart, table, bar, plot]),
    saved(5, [], { executionCount: null }),
    saved(6, [{ type: 'stream', name: 'stdout', text: '[embedding explorer: UMAP (500 images), shown]\n', mimes: [] }]),
  ];
  const page = [
    drawn(1, { prompt: '[7]:' }),
    drawn(2),
    drawn(3, {
      vega: [{ colouredPixels: 5, width: 400, height: 300 }],
      tables: [{ rows: 0 }],
      progress: [{ value: 114, max: 400, text: '114/400' }],
      plots: [{ drawn: true, points: 59, expected: 60 }],
    }),
    drawn(5, { prompt: '[ ]:' }),
    drawn(6),
  ];
  assert.deepEqual(checkNotebook(cells, page), [
    'cell 1: the page shows the prompt "[7]:", the saved notebook execution count 1',
    'cell 1 printed on stderr: something unexpected',
    'cell 2 raised TypeError: x is undefined',
    'cell 3: 2 vega-lite chart(s) sent, 1 drawn on the page',
    'cell 3: vega-lite chart 1 (400x300) drew no marks (5 coloured pixels)',
    'cell 3: plotly plot 1 drew 59 points, expected 60',
    'cell 3: progress bar 1 stopped at 114/400: 114/400',
    'cell 3: 1 table(s) sent, 0 with rows on the page',
    'cell 5 has no execution count (it did not run)',
    'cell 6 printed its last value as a stray line (assign it to a const): [embedding explorer: UMAP (500 images), shown]',
  ]);
  assert.deepEqual(checkNotebook([saved(1)], []), ['cell 1 is not on the page']);
  assert.deepEqual(checkNotebook([], []), ['the saved notebook has no code cells']);
});

test('Lab and nbclient must show as many charts, plots and tables per cell', () => {
  const cells = [saved(2, [chart, table])];
  const page = [drawn(2, { vega: [{ colouredPixels: 100, width: 1, height: 1 }], tables: [{ rows: 3 }] })];
  assert.deepEqual(checkNotebook(cells, page, {}, new Map([[2, { charts: 1, plots: 0, progress: 0, tables: 1 }]])), []);
  assert.deepEqual(checkNotebook(cells, page, {}, new Map([[2, { charts: 2, plots: 0, progress: 3, tables: 1 }]])), [
    'cell 2: 1 charts in Lab, 2 in the nbclient execution',
  ]);
});

test('savedCells reads nbformat 4: code cells only, their index among all cells, joined text', () => {
  const nb = {
    cells: [
      { cell_type: 'markdown', source: '# t' },
      {
        cell_type: 'code',
        source: ['a;\n', 'b;'],
        execution_count: 4,
        outputs: [
          { output_type: 'stream', name: 'stderr', text: ['x\n', 'y\n'] },
          { output_type: 'display_data', data: { 'text/html': ['<table>', '</table>'], 'text/plain': 't' } },
        ],
      },
    ],
  };
  assert.deepEqual(savedCells(nb), [
    {
      index: 1,
      source: 'a;\nb;',
      executionCount: 4,
      outputs: [
        { type: 'stream', name: 'stderr', text: 'x\ny\n', mimes: [] },
        { type: 'display_data', mimes: ['text/html', 'text/plain'], html: '<table></table>' },
      ],
    },
  ]);
  assert.throws(() => savedCells({}), /not an nbformat 4 notebook/);
});

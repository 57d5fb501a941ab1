/**
 * plotly.js in notebooks without a network: the library is inlined into one output per notebook, as
 * plotly.py's `init_notebook_mode(connected=False)` does, and each plot is
 * HTML that draws itself with `window.Plotly` once the library is there. The library is loaded as a
 * global even where RequireJS defines `define` (the classic Notebook): the bundle runs with
 * `define`, `module` and `exports` shadowed, so its UMD header takes the global branch.
 * Where scripts do not run (untrusted notebooks, sanitised HTML), a plot shows its static fallback.
 */
import * as fs from 'fs';
import { display, type MimeBundle } from './display';

/**
 * The bundle: plotly's official partial bundle "basic" (`plotly.js-basic-dist-min`: the trace types
 * scatter, bar and pie, minified; 1.1 MB against the full bundle's 4.6 MB). Every plot of lib/viz
 * uses only these: the embedding explorer draws scatter traces. A plot of another type would not
 * draw, and would keep its static fallback with a note saying why.
 */
const BUNDLE = 'plotly.js-basic-dist-min';

/** The bundle's path and version. */
function bundleInfo(): { file: string; version: string } {
  const pkg = require.resolve(`${BUNDLE}/package.json`);
  const version = (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
  return { file: require.resolve(BUNDLE), version };
}

/** Event fired on `window` once the inlined library has defined `window.Plotly`. */
export const PLOTLY_READY_EVENT = 'dinotwins-plotly-ready';

/** Attribute that marks a dinotwins plotly plot's root element (scripts/render-check.py looks for it). */
export const PLOTLY_PLOT_ATTRIBUTE = 'data-dinotwins-plotly';

/** `<script>` that defines `window.Plotly` from the inlined bundle (about 1.1 MB), unless a page already has it. */
export function plotlyLibraryHtml(): string {
  const { file, version } = bundleInfo();
  const code = fs.readFileSync(file, 'utf8');
  if (code.includes('</script'))
    throw new Error(`plotlyLibraryHtml: ${file} contains "</script" and cannot be inlined`);
  return (
    `<div class="dinotwins-plotly-lib" style="font:11px sans-serif;color:#888">plotly.js ${version}, basic bundle (inlined for this notebook's interactive plots)</div>\n` +
    `<script type="text/javascript">\nif (!window.Plotly) {\n(function (define, module, exports) {\n${code}\n}).call(window);\n}\n` +
    `window.dispatchEvent(new Event('${PLOTLY_READY_EVENT}'));\n</script>`
  );
}

const INLINED = Symbol.for('dinotwins.viz.plotlyInlined');

/** True once this kernel has sent the library (the flag lives on globalThis, so re-importing lib keeps it). */
export function plotlyInlined(): boolean {
  return (globalThis as Record<symbol, unknown>)[INLINED] === true;
}

/**
 * Sends plotly.js into the notebook (call it once, in a notebook's set-up cell: the saved notebook
 * then carries the library before every plot). Returns whether it reached a notebook.
 */
export function inlinePlotly(): boolean {
  const { version } = bundleInfo();
  const bundle: MimeBundle = { 'text/html': plotlyLibraryHtml(), 'text/plain': `<plotly.js ${version} inlined>` };
  const shown = display(bundle);
  if (shown) (globalThis as Record<symbol, unknown>)[INLINED] = true;
  return shown;
}

/**
 * The script of a plot: runs `draw()` (the plot's own code, a function expression in JS source)
 * as soon as `window.Plotly` exists: at once, or when the inlined library announces itself.
 * Without the library after `waitMs`, it leaves the fallback in place and says why in `noteId`.
 */
export function plotlyBootstrap(draw: string, noteId: string, waitMs = 15000): string {
  return `(function () {
  var draw = ${draw};
  var note = document.getElementById(${JSON.stringify(noteId)});
  if (window.Plotly) { draw(window.Plotly); return; }
  var done = false;
  var go = function () { if (!done && window.Plotly) { done = true; draw(window.Plotly); } };
  window.addEventListener(${JSON.stringify(PLOTLY_READY_EVENT)}, go);
  setTimeout(function () {
    go();
    if (!done && note) note.textContent = 'plotly.js is not loaded in this page: showing the static image (run viz.inlinePlotly() in the notebook to make the plot interactive).';
  }, ${waitMs});
})();`;
}

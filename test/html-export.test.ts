/**
 * Self-contained HTML exports (scripts/run-notebooks.py self_contained(), also its --post-process
 * mode) on small nbconvert-like pages: local scripts inlined, RequireJS and MathJax dropped where
 * nothing needs them, MathJax from its CDN where a markdown cell has TeX, an error for any local
 * reference left. Then scripts/render-check.py on such pages in headless Chromium: it waits for a
 * plot that draws late (the old probe dumped the DOM when a virtual-time budget ran out, which came
 * before the plot had drawn once nothing else held virtual time back: commit 0942417), and fails a
 * page that loads local files, throws, or never draws its plot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const ROOT = join(__dirname, '..');
const PY = '/usr/bin/python3';
const MATHJAX_CDN = 'https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js';

function missingPython(): string {
  const r = spawnSync(PY, ['-c', 'import nbclient, nbconvert, nbformat'], { encoding: 'utf8' });
  return r.status === 0 ? '' : 'nbclient/nbconvert not importable by /usr/bin/python3';
}

function skipOrFail(t: { skip(msg: string): void }, missing: string): boolean {
  if (!missing) return false;
  if (process.env.CI) assert.fail(`${missing}: run scripts/setup-jupyter.sh`);
  t.skip(`${missing}: run scripts/setup-jupyter.sh`);
  return true;
}

const SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="40"><rect x="1" y="1" width="20" height="30" fill="#36c"/>' +
  '<rect x="25" y="10" width="20" height="21" fill="#c63"/><line x1="0" y1="39" x2="60" y2="39" stroke="#000"/><text x="2" y="12">a</text></svg>';
const SVG_IMG = `<img src="data:image/svg+xml;base64,${Buffer.from(SVG).toString('base64')}">`;

/** The head and cells of the lab template, as Debian's nbconvert writes them (file:// scripts). */
function page(o: { dir: string; markdown?: string; outputs?: string[]; extraHead?: string }): string {
  const mathjax = `<!-- Load mathjax -->
    <script src="file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"> </script>
    <!-- MathJax configuration -->
    <script type="text/x-mathjax-config">
    init_mathjax = function() { if (window.MathJax) { MathJax.Hub.Queue(["Typeset", MathJax.Hub]); } }
    init_mathjax();
    </script>
    <!-- End of mathjax configuration -->`;
  const cells = (o.outputs ?? []).map(
    (out) => `<div class="jp-Cell jp-CodeCell"><div class="jp-OutputArea jp-Cell-outputArea">
<div class="jp-OutputArea-child"><div class="jp-RenderedHTMLCommon jp-OutputArea-output" data-mime-type="text/html">${out}</div></div></div></div>`,
  );
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8" />
<title>Notebook</title><script src="file://${o.dir}/require.min.js"></script>
${o.extraHead ?? ''}<style type="text/css">body { font: 13px sans-serif; }</style>
${mathjax}</head>
<body class="jp-Notebook">
<div class="jp-Cell jp-MarkdownCell"><div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput " data-mime-type="text/markdown">
${o.markdown ?? '<h1>Title</h1><p>Costs <code>$HOME</code> and <code>$PWD</code>, no maths.</p>'}
</div></div>
${cells.join('\n')}
</body>
</html>
`;
}

/** A notebook whose outputs say what render-check expects: one SVG chart and `plots` interactive plots. */
function notebookFor(plots: number): string {
  const display = (data: Record<string, string>) => ({ output_type: 'display_data', metadata: {}, data });
  const outputs = [display({ 'image/svg+xml': SVG, 'text/plain': '<chart>' })];
  for (let k = 0; k < plots; k++)
    outputs.push(display({ 'text/html': '<div data-dinotwins-plotly="scatter"></div>', 'text/plain': '<plot>' }));
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [{ cell_type: 'code', id: 'c0', metadata: {}, execution_count: 1, source: '', outputs }],
  });
}

/** A plot that marks itself drawn after `ms` (never when ms < 0), as lib/viz/embeddingExplorer.ts does once plotly has drawn. */
function latePlot(ms: number): string {
  return `<div data-dinotwins-plotly="scatter" id="p"><div id="p-note"></div></div>
<script>setTimeout(function () { if (${ms} < 0) return; var r = document.getElementById('p');
r.innerHTML = '<div class="js-plotly-plot"><div class="scatterlayer"><div class="trace"><span class="point">.</span><span class="point">.</span></div></div></div>';
r.setAttribute('data-drawn', '1'); }, Math.max(0, ${ms}));</script>`;
}

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'html-export-'));
  try {
    writeFileSync(
      join(dir, 'require.min.js'),
      'var requirejs = function () {}, require = requirejs, define = function () {}; /*REQUIREJS*/',
    );
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const postProcess = (...files: string[]) =>
  spawnSync(PY, [join(ROOT, 'scripts/run-notebooks.py'), '--post-process', ...files], { encoding: 'utf8', cwd: ROOT });

test('self-contained export: local scripts inlined, unused RequireJS and MathJax dropped, TeX keeps MathJax from its CDN', (t) => {
  if (skipOrFail(t, missingPython())) return;
  withDir((dir) => {
    writeFileSync(join(dir, 'extra.js'), 'window.extra = "</script>";');
    const plain = join(dir, 'plain.html');
    // Not references: "file:" inside a script (the plotly bundle has both of these) and in output text.
    const scriptText =
      '<script>var local = location.origin === "file://" || /^file:/.test(u); var re = /href=/gi;</script>';
    const outputText = '<pre>saved to file:///tmp/run/record.json</pre>';
    writeFileSync(
      plain,
      page({
        dir,
        extraHead: `<script src="file://${dir}/extra.js"></script>\n`,
        outputs: [SVG_IMG, scriptText, outputText],
      }),
    );
    const amd = join(dir, 'amd.html');
    writeFileSync(
      amd,
      page({
        dir,
        outputs: ['<div data-mime-type="application/javascript"><script>require([], function () {});</script></div>'],
      }),
    );
    const tex = join(dir, 'tex.html');
    writeFileSync(tex, page({ dir, markdown: '<p>The loss is $\\sum_i (1 - C_{ii})^2$.</p>' }));

    const r = postProcess(plain, amd, tex);
    assert.equal(r.status, 0, r.stderr);
    const [p, a, x] = [plain, amd, tex].map((f) => readFileSync(f, 'utf8'));
    assert.ok(p.includes(scriptText) && p.includes(outputText));
    for (const html of [p.replace(scriptText, '').replace(outputText, ''), a, x]) {
      assert.doesNotMatch(html, /file:|\/usr\/share/);
      assert.doesNotMatch(html, /<script[^>]*src="(?!https:)/, 'no script from the disk');
    }
    // No TeX ($ only inside <code>) and no AMD outputs: neither MathJax nor RequireJS is left.
    assert.doesNotMatch(p, /mathjax|REQUIREJS/i);
    assert.match(
      p,
      /<script data-inlined="extra.js">\nwindow.extra = "<\\\/script>";\n<\/script>/,
      'inlined, and its </script> escaped',
    );
    assert.match(p, /<code>\$HOME<\/code>/);
    // An application/javascript output runs through RequireJS: inlined.
    assert.match(a, /<script data-inlined="require.min.js">\n.*\/\*REQUIREJS\*\//);
    // TeX in a markdown cell: MathJax stays, from its CDN, with nbconvert's configuration.
    assert.ok(x.includes(`<script src="${MATHJAX_CDN}?config=TeX-AMS_CHTML-full,Safe"> </script>`), x);
    assert.match(x, /text\/x-mathjax-config/);
    assert.doesNotMatch(x, /REQUIREJS/);

    // Running it again changes nothing.
    const again = postProcess(plain, amd, tex);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stderr.match(/^same /gm)?.length, 3, again.stderr);
  });
});

test('self-contained export: a local reference left, or a local script missing, is an error', (t) => {
  if (skipOrFail(t, missingPython())) return;
  withDir((dir) => {
    const img = join(dir, 'img.html');
    const original = page({ dir, outputs: ['<img src="file:///usr/share/pixmaps/debian-logo.png">'] });
    writeFileSync(img, original);
    const css = join(dir, 'css.html');
    writeFileSync(
      css,
      page({
        dir,
        extraHead: '<link rel="stylesheet" href="/usr/share/javascript/jquery-ui/themes/base/jquery-ui.css">\n',
      }),
    );
    const missing = join(dir, 'missing.html');
    writeFileSync(missing, page({ dir, extraHead: `<script src="file://${dir}/nowhere.js"></script>\n` }));

    const r = postProcess(img, css, missing);
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      /FAIL .*img\.html: the HTML still refers to the local disk: <img src="file:\/\/\/usr\/share\/pixmaps\/debian-logo\.png">/,
    );
    assert.match(
      r.stderr,
      /FAIL .*css\.html: the HTML still refers to the local disk: <link href="\/usr\/share\/javascript\/jquery-ui/,
    );
    assert.match(r.stderr, /FAIL .*missing\.html: cannot inline the script file:\/\/.*nowhere\.js/);
    assert.equal(readFileSync(img, 'utf8'), original, 'a failed page is left as it was');
  });
});

test('render check: waits for a late plot, offline, and fails local loads, JavaScript errors and plots that never draw', (t) => {
  if (skipOrFail(t, missingPython() || (existsSync('/usr/bin/chromium') ? '' : 'chromium not installed'))) return;
  withDir((dir) => {
    const write = (name: string, html: string, plots: number) => {
      writeFileSync(join(dir, `${name}.html`), html);
      writeFileSync(join(dir, `${name}.ipynb`), notebookFor(plots));
      return join(dir, `${name}.html`);
    };
    const good = write('good', page({ dir, outputs: [SVG_IMG, latePlot(1500)] }), 1);
    assert.equal(postProcess(good).status, 0);
    const check = (file: string, ...args: string[]) =>
      spawnSync(PY, [join(ROOT, 'scripts/render-check.py'), '--wait', '20', '--min-ink', '0.0005', ...args, file], {
        encoding: 'utf8',
        cwd: ROOT,
      });

    const ok = check(good);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /ok {3}good\.html: charts 1\/1, images 0, tables 0\/0, plotly plots 1/);

    const local = check(write('local', page({ dir, outputs: [SVG_IMG] }), 0)); // not post-processed: file:// scripts
    assert.equal(local.status, 1, local.stderr);
    assert.match(local.stderr, /the page loads file:\/\/.*require\.min\.js \(an export must be self-contained\)/);

    const throws = write('throws', page({ dir, outputs: [SVG_IMG, '<script>null.x;</script>'] }), 0);
    assert.equal(postProcess(throws).status, 0);
    const thrown = check(throws);
    assert.equal(thrown.status, 1, thrown.stderr);
    assert.match(thrown.stderr, /JavaScript error: TypeError: Cannot read properties of null/);

    const never = write('never', page({ dir, outputs: [SVG_IMG, latePlot(-1)] }), 1);
    assert.equal(postProcess(never).status, 0);
    const undrawn = check(never, '--wait', '1');
    assert.equal(undrawn.status, 1, undrawn.stderr);
    assert.match(undrawn.stderr, /0 of 1 interactive plotly plots drew a scatter layer in Chromium within 1 s/);
  });
});

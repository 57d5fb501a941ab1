#!/usr/bin/python3
"""Execute dinotwins notebooks headless with the project-local tslab kernel.

Usage (run with /usr/bin/python3, which has nbclient/nbconvert):
  scripts/run-notebooks.py                     # all notebooks/[0-9][0-9]-*.ipynb, in order
  scripts/run-notebooks.py notebooks/01-x.ipynb --out runs/executed --timeout 900

For each notebook: executes it cell by cell (nbclient), saves the executed copy to
OUT/<name>.ipynb and an HTML export to OUT/<name>.html (SVG outputs embedded as data-URI
<img>, since nbconvert 6.5 strips inline SVG), and reports the failing cell's source,
stderr and error. Errors raised asynchronously after their cell finished (unhandled
rejections, exceptions in timers) are caught by a recorder cell injected before the first
cell and a check cell injected after the last one (both removed from the saved copy).
The HTML is self-contained (see self_contained()): it loads nothing from the local disk, so a
committed export opens on any machine, offline.
Exit status: 0 when every notebook ran cleanly, 1 otherwise, 2 on bad usage.
Environment variables reach the kernel (process.env), e.g. a quick/full budget switch.

  scripts/run-notebooks.py --post-process results/cpu/html/*.html
rewrites existing HTML exports in place with the same post-processing, without executing anything.
"""
import argparse
import base64
import copy
import glob
import html.parser
import os
import re
import sys
import time
import urllib.parse

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INJECTED = 'dinotwins-injected'
ERRORS_KEY = 'dinotwins.notebook.asyncErrors'  # same key as lib/notebook/asyncErrors.ts
ASYNC_MARKERS = ('UnhandledPromiseRejection:', 'UncaughtException:')  # printed by tslab's own handlers

# Recorder: the same registry as lib/notebook/asyncErrors.ts installAsyncErrorCollector(), inlined so that
# notebooks need not import anything. A block keeps its names out of the notebook's scope.
SETUP_CODE = """{
  const g = globalThis as any;
  const key = Symbol.for('%s');
  const s = g[key] ?? (g[key] = { installed: false, errors: [] });
  if (!s.installed) {
    s.installed = true;
    const rec = (kind: string) => (r: any) => s.errors.push({
      kind, message: r instanceof Error ? `${r.name}: ${r.message}` : String(r),
      stack: (r && r.stack) || '', time: Date.now() });
    process.on('unhandledRejection', rec('unhandledRejection'));
    process.on('uncaughtException', rec('uncaughtException'));
  }
}""" % ERRORS_KEY

ASYNC_TAG = '__DINOTWINS_ASYNC_ERRORS__'
CHECK_CODE = """await new Promise((resolve) => setTimeout(resolve, %d));
{
  const s = (globalThis as any)[Symbol.for('%s')];
  const errs: any[] = s ? s.errors.splice(0) : [];
  if (errs.length > 0) {
    console.error('%s' + JSON.stringify(errs));
    throw new Error(`${errs.length} asynchronous error(s) after their cells finished`);
  }
}"""


def log(msg=''):
    print(msg, file=sys.stderr, flush=True)


def text_of(value):
    return ''.join(value) if isinstance(value, list) else str(value)


def cell_stderr(cell):
    parts = []
    for out in cell.get('outputs', []):
        if out.get('output_type') == 'stream' and out.get('name') == 'stderr':
            parts.append(text_of(out.get('text', '')))
        elif out.get('output_type') == 'error':
            parts.append('%s: %s\n%s' % (out.get('ename', ''), out.get('evalue', ''),
                                         '\n'.join(out.get('traceback', []))))
    return ''.join(parts).strip()


def indent(s, prefix='    | '):
    return '\n'.join(prefix + line for line in s.splitlines()) or prefix + '(empty)'


def async_errors(cell):
    import json
    for line in cell_stderr(cell).splitlines():
        if line.startswith(ASYNC_TAG):
            try:
                return json.loads(line[len(ASYNC_TAG):])
            except ValueError:
                pass
    return [{'kind': '?', 'message': cell_stderr(cell)}]


def when(t_ms, spans):
    """Which cell had last started when an error was recorded (kernel and runner share the clock).
    A rejection is often only reported after its cell's reply, so it may come from the cell before."""
    running = [pos for pos, start in spans if start <= t_ms]
    if not running:
        return 'time unknown'
    pos = running[-1]
    return 'recorded after cell %d started' % pos if pos < spans[-1][0] else 'recorded after the last cell'


def injected(source):
    return nbformat.v4.new_code_cell(source, metadata={'tags': [INJECTED]})


def is_injected(cell):
    return INJECTED in cell.get('metadata', {}).get('tags', [])


class SvgAsDataUri:
    """nbconvert preprocessor: the lab template draws `output.svg_filename` as <img src=...>."""

    def __call__(self, nb, resources):
        for cell in nb.cells:
            for out in cell.get('outputs', []):
                data = out.get('data', {})
                if 'image/svg+xml' in data:
                    svg = text_of(data['image/svg+xml']).encode('utf-8')
                    out['svg_filename'] = 'data:image/svg+xml;base64,' + base64.b64encode(svg).decode('ascii')
        return nb, resources


# --- Self-contained HTML ------------------------------------------------------------------------
# Debian's nbconvert links RequireJS and MathJax from file:///usr/share/javascript: such a page only
# works on a Debian machine with those packages, and even there Chromium keeps a "Loading [MathJax]"
# banner at the bottom of the page.

MATHJAX_BLOCK = re.compile(r'[ \t]*<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->', re.S)
# MathJax 2 loads its config, jax and fonts on demand, so it cannot be inlined: where a page has TeX
# it comes from nbconvert's upstream default, a CDN (offline, the TeX shows as written).
MATHJAX_CDN = 'https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe'
# What MathJax (as nbconvert configures it) typesets: $$..$$, $..$, \(..\), \[..\], \begin{env}.
TEX = re.compile(r'\$\$.+?\$\$|\$[^$]+?\$|\\\(.+?\\\)|\\\[.+?\\\]|\\begin\{', re.S)
SCRIPT_SRC = re.compile(r'<script\b[^>]*?\bsrc\s*=\s*["\']([^"\']+)["\'][^>]*>\s*</script\s*>', re.I)
REQUIREJS = re.compile(r'(^|/)require(\.min)?\.js$')
# Outputs that run through RequireJS: application/javascript outputs (the classic Notebook runs them
# with RequireJS present) and Jupyter widgets (embed-amd.js). lib/viz emits neither: charts are SVG,
# and the plotly bundle runs with `define` shadowed (lib/viz/plotly.ts).
NEEDS_AMD = re.compile(r'data-mime-type="application/javascript"|application/vnd\.jupyter\.widget-view\+json|embed-amd\.js')
LOCAL_URL = re.compile(r'\s*(file:|/(?!/))', re.I)  # a file: URL, or an absolute path (file:/// in a file:// page)
CSS_URL = re.compile(r'''url\(\s*["']?([^"')]*)''', re.I)
REF_ATTRS = {'src', 'href', 'srcset', 'data', 'poster', 'action', 'data-main'}
DEBIAN_JS = re.compile(r'''file:///usr/share/[^\s"'<>)]*''')


class LocalRefs(html.parser.HTMLParser):
    """References to the local disk in the page's own tags: a local URL in an attribute that loads
    or links something, or in a CSS url(); script bodies are not read (the plotly bundle that
    lib/viz/plotly.ts inlines tests URLs for "file:" and has a /href=/ regex)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs = []
        self._style = False

    def _css(self, css):
        self.refs += ['url(%s)' % u for u in CSS_URL.findall(css) if LOCAL_URL.match(u)]

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in REF_ATTRS and value and LOCAL_URL.match(value):
                self.refs.append('<%s %s="%s">' % (tag, name, value))
            elif name == 'style' and value:
                self._css(value)
        self._style = tag == 'style'

    def handle_endtag(self, tag):
        self._style = False

    def handle_data(self, data):
        if self._style:
            self._css(data)


def local_refs(page):
    """Local references left in a page: LocalRefs, and Debian's script folder named anywhere (in a
    RequireJS config, say)."""
    parser = LocalRefs()
    parser.feed(page)
    parser.close()
    return sorted(set(parser.refs + DEBIAN_JS.findall(page)))


class MarkdownText(html.parser.HTMLParser):
    """Text of the rendered markdown cells (nbconvert's `data-mime-type="text/markdown"` divs),
    without <code> and <pre>, which MathJax skips."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth = 0  # open <div>s inside a markdown cell; 0 = outside
        self.code = 0
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag == 'div' and (self.depth or dict(attrs).get('data-mime-type') == 'text/markdown'):
            self.depth += 1
        elif self.depth and tag in ('code', 'pre'):
            self.code += 1

    def handle_endtag(self, tag):
        if tag == 'div' and self.depth:
            self.depth -= 1
            if not self.depth:
                self.parts.append('\n')
        elif self.depth and tag in ('code', 'pre') and self.code:
            self.code -= 1

    def handle_data(self, data):
        if self.depth and not self.code:
            self.parts.append(data)


def markdown_has_tex(page):
    parser = MarkdownText()
    parser.feed(page)
    return bool(TEX.search(''.join(parser.parts)))


def is_local(url):
    """A file: URL or an absolute path: the local disk, wherever the page is opened."""
    return bool(LOCAL_URL.match(url))


def local_path(url):
    """File path of a local script URL (file:///a/b.js?x=1 -> /a/b.js)."""
    if url.lower().startswith('file:'):
        url = urllib.parse.urlparse(url).path
    return urllib.parse.unquote(url.split('?', 1)[0].split('#', 1)[0])


def self_contained(page):
    """Rewrites an nbconvert HTML export so that it loads nothing from the local disk:
      - MathJax is dropped when no markdown cell has TeX (no banner, nothing to load), else loaded
        from MATHJAX_CDN instead of the local disk;
      - RequireJS is dropped when no output needs it (NEEDS_AMD), else inlined;
      - any other script linked from the local disk is inlined.
    Raises RuntimeError when a linked local script is missing or a local reference is left
    (local_refs()). Running it on its own output changes nothing."""
    tex = markdown_has_tex(page)
    if tex:
        page = MATHJAX_BLOCK.sub(lambda m: SCRIPT_SRC.sub(
            lambda s: s.group(0).replace(s.group(1), MATHJAX_CDN) if is_local(s.group(1)) else s.group(0),
            m.group(0)), page)
    else:
        page = MATHJAX_BLOCK.sub('', page)
    amd = bool(NEEDS_AMD.search(page))

    def script(m):
        url = m.group(1)
        if REQUIREJS.search(local_path(url)) and not amd:
            return ''
        if not is_local(url):
            return m.group(0)
        path = local_path(url)
        try:
            with open(path, encoding='utf-8') as f:
                code = f.read()
        except OSError as e:
            raise RuntimeError('cannot inline the script %s: %s' % (url, e))
        # '</script' would end the element early; '<\/script' is the same string to JavaScript.
        code = re.sub(r'</(script)', r'<\\/\1', code, flags=re.I)
        return '<script data-inlined="%s">\n%s\n</script>' % (os.path.basename(path), code)
    page = SCRIPT_SRC.sub(script, page)
    left = local_refs(page)
    if left:
        more = ' (and %d more)' % (len(left) - 5) if len(left) > 5 else ''
        raise RuntimeError('the HTML still refers to the local disk: %s%s' % (', '.join(x[:120] for x in left[:5]), more))
    return page


def export_html(nb, path):
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name='lab')
    exporter.register_preprocessor(SvgAsDataUri(), enabled=True)
    body, _ = exporter.from_notebook_node(copy.deepcopy(nb))
    body = self_contained(body)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(body)


def post_process(paths):
    """--post-process: rewrites existing HTML exports in place (self_contained). Returns the exit status."""
    status = 0
    for path in paths:
        try:
            with open(path, encoding='utf-8') as f:
                page = f.read()
            out = self_contained(page)
        except (OSError, RuntimeError) as e:
            log('FAIL %s: %s' % (path, e))
            status = 1
            continue
        if out != page:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(out)
        log('%s %s (%d -> %d bytes)' % ('ok  ' if out != page else 'same', path, len(page.encode('utf-8')), len(out.encode('utf-8'))))
    return status


class KernelStartError(Exception):
    """The kernel never became ready (no cell ran): an infrastructure failure worth one retry."""


def run_one(path, args):
    """Returns a list of failure descriptions (empty = success). Raises KernelStartError when the
    kernel did not start, before any cell ran."""
    name = os.path.splitext(os.path.basename(path))[0]
    nb = nbformat.read(path, as_version=4)
    kernel = args.kernel or nb.metadata.get('kernelspec', {}).get('name') or 'tslab'
    nb.cells.insert(0, injected(SETUP_CODE))
    nb.cells.append(injected(CHECK_CODE % (int(args.grace * 1000), ERRORS_KEY, ASYNC_TAG)))
    client = NotebookClient(nb, timeout=args.timeout, startup_timeout=args.startup_timeout,
                            kernel_name=kernel, allow_errors=False, record_timing=True,
                            resources={'metadata': {'path': os.path.dirname(os.path.abspath(path))}})
    failures = []
    t0 = time.time()
    count = 0
    spans = []  # (cell position, start time in ms): to place asynchronous errors in time
    log('== %s (kernel %s)' % (path, kernel))
    started = [False]
    try:
        with client.setup_kernel():
            started[0] = True
            # --twice: every user cell runs a second time in the same kernel (re-execution safety:
            # the notebooks' last cell fails if the live tensor count grew between the passes).
            user = [(i, c) for i, c in enumerate(nb.cells) if not is_injected(c)]
            order = list(enumerate(nb.cells))
            if args.twice:
                order = order[:-1] + user + order[-1:]
            for index, cell in order:
                if cell.cell_type != 'code':
                    continue
                shown = index  # the setup cell is 0, so user cells keep their 1-based positions
                if not is_injected(cell):
                    count += 1
                tc = time.time()
                spans.append((shown, tc * 1000.0))
                try:
                    client.execute_cell(cell, index, execution_count=None if is_injected(cell) else count)
                except (CellExecutionError, CellTimeoutError) as e:
                    what = 'timed out after %ss' % args.timeout if isinstance(e, CellTimeoutError) else 'failed'
                    if is_injected(cell) and index == len(nb.cells) - 1 and ASYNC_TAG in cell_stderr(cell):
                        errs = async_errors(cell)
                        failures.append('%d asynchronous error(s)' % len(errs))
                        log('!! %s: %d asynchronous error(s) (unhandled rejections / exceptions in callbacks):' % (name, len(errs)))
                        for k, err in enumerate(errs):
                            log('   %d. %s: %s  [%s]' % (k + 1, err.get('kind'), err.get('message'), when(err.get('time', 0), spans)))
                            stack = [ln for ln in str(err.get('stack', '')).splitlines()[1:] if 'node:internal' not in ln][:4]
                            if stack:
                                log(indent('\n'.join(stack)))
                        break
                    elif is_injected(cell):
                        failures.append('the injected recorder cell failed')
                        log('!! %s: the injected recorder cell failed' % name)
                    else:
                        failures.append('cell %d %s' % (shown, what))
                        log('!! %s: cell %d %s. Source:' % (name, shown, what))
                        log(indent(cell.source))
                    err = cell_stderr(cell) or str(e).strip()
                    log('   stderr / error:')
                    log(indent(err))
                    break
                finally:
                    if args.verbose and not is_injected(cell):
                        log('   cell %d: %.1fs' % (shown, time.time() - tc))
    except DeadKernelError as e:
        if not started[0]:
            raise KernelStartError(str(e))
        failures.append('kernel died: %s' % e)
        log('!! %s: kernel died: %s' % (name, e))
    except RuntimeError as e:  # kernel did not start, etc.
        if not started[0]:
            raise KernelStartError(str(e))
        failures.append('kernel error: %s' % e)
        log('!! %s: kernel error: %s' % (name, e))

    # Async errors that tslab printed into some cell's stderr (also when the check cell passed
    # because the error came from a cell whose output the recorder could not see).
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != 'code' or is_injected(cell):
            continue
        err = cell_stderr(cell)
        if any(m in err for m in ASYNC_MARKERS) and not any('asynchronous' in f for f in failures):
            # Normally the recorder already reported it; this catches notebooks that removed
            # or replaced process listeners.
            failures.append('cell %d printed an asynchronous error' % index)
            log('!! %s: cell %d printed an asynchronous error. Source:' % (name, index))
            log(indent(cell.source))
            log(indent(err))

    nb.cells = [c for c in nb.cells if not is_injected(c)]
    os.makedirs(args.out, exist_ok=True)
    out_nb = os.path.join(args.out, name + '.ipynb')
    nbformat.write(nb, out_nb)
    if not args.no_html:
        try:
            export_html(nb, os.path.join(args.out, name + '.html'))
        except Exception as e:  # noqa: BLE001 - report any exporter failure
            failures.append('HTML export failed: %s' % e)
            log('!! %s: HTML export failed: %s' % (name, e))
    log('%s %s in %.1fs -> %s' % ('FAIL' if failures else 'ok  ', name, time.time() - t0, out_nb))
    return failures


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('notebooks', nargs='*', help='notebooks to run (default: notebooks/[0-9][0-9]-*.ipynb), or HTML files with --post-process')
    p.add_argument('--out', default=os.path.join(ROOT, 'runs', 'executed'), help='folder for executed copies and HTML')
    p.add_argument('--timeout', type=int, default=1800, help='per-cell timeout in seconds')
    p.add_argument('--startup-timeout', type=int, default=60, help='kernel start-up timeout in seconds')
    p.add_argument('--start-attempts', type=int, default=3, help='kernel start attempts per notebook (a kernel that never starts is retried)')
    p.add_argument('--kernel', default='', help="kernel name (default: the notebook's kernelspec, else tslab)")
    p.add_argument('--grace', type=float, default=1.0, help='seconds to wait for late asynchronous errors at the end')
    p.add_argument('--no-html', action='store_true', help='skip the HTML export')
    p.add_argument('--fail-fast', action='store_true', help='stop at the first failing notebook')
    p.add_argument('-v', '--verbose', action='store_true', help='print each cell time')
    p.add_argument('--twice', action='store_true', help='run every cell a second time in the same kernel (re-execution check)')
    p.add_argument('--post-process', action='store_true',
                   help='the arguments are HTML exports: make them self-contained, in place, without running anything')
    args = p.parse_args(argv)
    if args.post_process:
        if not args.notebooks:
            log('--post-process: no HTML files given')
            return 2
        return post_process(args.notebooks)

    local = os.path.join(ROOT, '.jupyter', 'share', 'jupyter')
    if os.path.isdir(local):
        paths = [local] + [x for x in os.environ.get('JUPYTER_PATH', '').split(os.pathsep) if x and x != local]
        os.environ['JUPYTER_PATH'] = os.pathsep.join(paths)
    else:
        log('warning: %s missing: run scripts/setup-jupyter.sh' % local)

    notebooks = args.notebooks or sorted(glob.glob(os.path.join(ROOT, 'notebooks', '[0-9][0-9]-*.ipynb')))
    if not notebooks:
        log('no notebooks to run')
        return 2
    missing = [n for n in notebooks if not os.path.isfile(n)]
    if missing:
        log('not found: %s' % ', '.join(missing))
        return 2
    summary = []
    for path in notebooks:
        # A kernel that never starts is retried with a fresh one (seen once: tslab's zeromq socket
        # answered kernel_info with EBUSY and hung). Cell errors are never retried.
        for attempt in range(1, args.start_attempts + 1):
            try:
                failures = run_one(path, args)
                break
            except KernelStartError as e:
                log('!! %s: the kernel did not start (attempt %d of %d): %s' % (path, attempt, args.start_attempts, e))
                failures = ['kernel did not start: %s' % e]
        summary.append((path, failures))
        if failures and args.fail_fast:
            break
    log('\n== summary')
    for path, failures in summary:
        log('%s %s%s' % ('FAIL' if failures else 'ok  ', path, (': ' + '; '.join(failures)) if failures else ''))
    return 1 if any(f for _, f in summary) or len(summary) < len(notebooks) else 0


if __name__ == '__main__':
    sys.exit(main())

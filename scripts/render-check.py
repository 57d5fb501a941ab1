#!/usr/bin/python3
"""Check that exported notebook HTML really renders its charts, images and tables.

Usage: scripts/render-check.py [HTML files...]   (default: runs/executed/*.html)

For each HTML file (written by scripts/run-notebooks.py):
 1. static: every data-URI <img> inside an output area is decoded; SVGs must parse and hold
    drawing elements (path/rect/line/image) and text; PNGs must have a valid signature,
    IHDR and zlib stream, and (with PIL) more than one colour;
 2. browser: a copy of the page, alone in a fresh folder, is opened in headless Chromium with the
    network off, driven over the DevTools protocol (class Chromium). After the load event a probe
    waits, in real time, for each output image to decode and for each interactive plotly plot
    (lib/viz/plotly.ts, data-dinotwins-plotly) to mark itself drawn (up to --wait seconds), then
    reports each image's natural size, each output table's row count and each plot's scatter
    points (all of them, where the plot says how many it has: data-points). Broken images,
    undrawn plots, JavaScript errors (uncaught exceptions, console.error, browser log errors), a
    "Loading [MathJax]" banner and any load other than the page itself, data: URIs and MathJax's
    CDN (a file:// script, say: an export must be self-contained) are failures;
 3. screenshot (with PIL): the page, 1200x3000 CSS pixels, must not be blank.
Expected counts come from the executed .ipynb next to the HTML: each output with
image/svg+xml is a chart, each image/png output an image (a text/html output holding an
SVG data-URI <img>, a static fallback, counts as a chart), each text/html output holding a
<table> a table, each data-dinotwins-plotly element an interactive plot. A notebook must also show at least --min-charts charts or images, unless its
metadata says otherwise ("render_check": {"min_charts": 0}).
Exit status: 0 if all pass, 1 if any fails, 2 on bad usage.
"""
import argparse
import base64
import glob
import html.parser
import io
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars', '--mute-audio', '--remote-debugging-pipe']
DRAWING = {'path', 'rect', 'line', 'polyline', 'polygon', 'circle', 'ellipse', 'image'}
VIEWPORT = (1200, 3000)  # CSS pixels of the page view and of the screenshot

# Evaluated in the page after its load event (a function of the wait in ms). It waits, in real time,
# for what it checks: every output image decoded, and every interactive plotly plot
# (lib/viz/plotly.ts, data-dinotwins-plotly) marked data-drawn by its draw() or the wait is over.
PROBE = """async (waitMs) => {
  const outs = (sel) => [...document.querySelectorAll(sel)].filter((e) => e.closest('.jp-OutputArea-output'));
  const imgs = outs('img');
  await Promise.all(imgs.map((i) => i.decode().catch(() => null)));
  const images = imgs.map((i) => ({ mime: ((i.getAttribute('src') || '').match(/^data:([^;,]+)/) || [, 'url'])[1],
    ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0, w: i.naturalWidth, h: i.naturalHeight }));
  const tables = outs('table').map((t) => ({ rows: t.querySelectorAll('tbody tr').length, cells: t.querySelectorAll('td').length }));
  const roots = outs('[data-dinotwins-plotly]');
  const t0 = performance.now();
  while (roots.some((r) => !r.getAttribute('data-drawn')) && performance.now() - t0 < waitMs) await new Promise((r) => setTimeout(r, 100));
  const plots = roots.map((r) => ({ drawn: r.getAttribute('data-drawn') === '1',
    points: r.querySelectorAll('.js-plotly-plot .scatterlayer .trace .point').length,
    expected: r.hasAttribute('data-points') ? Number(r.getAttribute('data-points')) : null,
    note: ((r.querySelector('[id$="-note"]') || {}).textContent || '').slice(0, 200) }));
  const mj = document.getElementById('MathJax_Message');
  const shown = (e) => { const st = getComputedStyle(e); return st.display !== 'none' && st.visibility !== 'hidden'; };
  const banner = mj && shown(mj) && mj.textContent.trim() ? mj.textContent.trim() : '';
  return { images, tables, plots, plotWaitMs: Math.round(performance.now() - t0), doneMs: Math.round(performance.now()), mathjaxBanner: banner };
}"""


class CdpError(Exception):
    """The browser did not answer (it died, or a command timed out): an infrastructure failure."""


class Chromium:
    """Headless Chromium driven through the DevTools protocol over --remote-debugging-pipe (as
    puppeteer does with `pipe: true`): NUL-terminated JSON, commands on the browser's fd 3, replies
    and events on its fd 4. Waiting on real events replaces --virtual-time-budget/--dump-dom, whose
    dump could come before a page without pending loads had drawn (see commit 0942417)."""

    def __init__(self, profile):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def child_fds():
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)
        exe = shutil.which('chromium') or '/usr/bin/chromium'
        self.stderr = tempfile.TemporaryFile(mode='w+')
        try:
            self.proc = subprocess.Popen([exe] + CHROMIUM_FLAGS + ['--user-data-dir=' + profile, 'about:blank'],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                         pass_fds=(3, 4), preexec_fn=child_fds)
        except OSError as e:
            for fd in (self._cmd_w, self._res_r):
                os.close(fd)
            self.stderr.close()
            raise CdpError('cannot start %s: %s' % (exe, e))
        finally:
            os.close(cmd_r)
            os.close(res_w)
        self._buf = b''
        self._next_id = 0
        self.events = []  # (method, params, sessionId), in arrival order

    def _read(self, deadline, waiting_for):
        while b'\0' not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError('no %s from Chromium in time' % waiting_for)
            ready, _, _ = select.select([self._res_r], [], [], left)
            if ready:
                chunk = os.read(self._res_r, 1 << 20)
                if not chunk:
                    raise CdpError('Chromium closed the DevTools pipe (exit %s): %s' % (self.proc.poll(), self.stderr_tail()))
                self._buf += chunk
        msg, self._buf = self._buf.split(b'\0', 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=30.0):
        self._next_id += 1
        msg = {'id': self._next_id, 'method': method, 'params': params or {}}
        if session:
            msg['sessionId'] = session
        data = json.dumps(msg).encode('utf-8') + b'\0'
        try:
            while data:
                data = data[os.write(self._cmd_w, data):]
        except OSError as e:
            raise CdpError('cannot write to Chromium (exit %s): %s' % (self.proc.poll(), e))
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, 'answer to ' + method)
            if reply.get('id') == self._next_id:
                if 'error' in reply:
                    raise CdpError('%s: %s' % (method, reply['error'].get('message')))
                return reply.get('result', {})
            if 'method' in reply:
                self.events.append((reply['method'], reply.get('params', {}), reply.get('sessionId')))

    def wait_event(self, method, session, timeout):
        """Returns the params of the first event `method` of `session` (also one already received)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for m, params, sid in self.events[seen:]:
                if m == method and sid == session:
                    return params
            seen = len(self.events)
            reply = self._read(deadline, method)
            if 'method' in reply:
                self.events.append((reply['method'], reply.get('params', {}), reply.get('sessionId')))

    def stderr_tail(self):
        self.stderr.seek(0)
        return self.stderr.read().strip()[-400:]

    def close(self):
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def log(msg=''):
    print(msg, file=sys.stderr, flush=True)


class OutputImgs(html.parser.HTMLParser):
    """Collects src of <img> elements inside `jp-OutputArea-output` elements, and tables there."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, is_output_area)
        self.srcs = []
        self.tables = []  # [rows with td]
        self._rows = None
        self._row_has_td = False

    def _in_output(self):
        return any(flag for _, flag in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        is_out = 'jp-OutputArea-output' in (a.get('class') or '').split()
        if tag in ('img', 'br', 'hr', 'meta', 'link', 'input'):
            if tag == 'img' and self._in_output():
                self.srcs.append(a.get('src') or '')
            return
        self.stack.append((tag, is_out))
        if tag == 'table' and self._in_output():
            self._rows = 0
        elif tag == 'tr':
            self._row_has_td = False
        elif tag == 'td':
            self._row_has_td = True

    def handle_endtag(self, tag):
        if tag == 'tr' and self._rows is not None and self._row_has_td:
            self._rows += 1
        if tag == 'table' and self._rows is not None:
            self.tables.append(self._rows)
            self._rows = None
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k][0] == tag:
                del self.stack[k:]
                break


def check_svg(data):
    """Returns an error string or None."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        return 'SVG does not parse: %s' % e
    tags = [el.tag.rsplit('}', 1)[-1] for el in root.iter()]
    drawn = sum(1 for t in tags if t in DRAWING)
    texts = [el for el in root.iter() if el.tag.rsplit('}', 1)[-1] == 'text' and (el.text or '').strip()]
    w = float(re.sub(r'[^\d.]', '', root.get('width', '0')) or 0)
    h = float(re.sub(r'[^\d.]', '', root.get('height', '0')) or 0)
    if w <= 0 or h <= 0:
        return 'SVG has no size (%sx%s)' % (w, h)
    if drawn < 3 or not texts:
        return 'SVG is (nearly) empty: %d drawing elements, %d texts' % (drawn, len(texts))
    return None


def check_png(data):
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        return 'not a PNG (bad signature)'
    pos, idat, dims = 8, b'', None
    while pos + 8 <= len(data):
        (length,) = struct.unpack('>I', data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        if pos + 12 + length > len(data):
            return 'PNG is truncated in chunk %r' % ctype
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack('>I', data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xffffffff != crc:
            return 'PNG chunk %r has a bad CRC' % ctype
        if ctype == b'IHDR':
            dims = struct.unpack('>II', body[:8])
        elif ctype == b'IDAT':
            idat += body
        elif ctype == b'IEND':
            break
        pos += 12 + length
    if not dims or dims[0] == 0 or dims[1] == 0:
        return 'PNG without a valid IHDR'
    try:
        zlib.decompress(idat)
    except zlib.error as e:
        return 'PNG pixel data does not decompress: %s' % e
    try:
        from PIL import Image
    except ImportError:
        return None
    img = Image.open(io.BytesIO(data)).convert('RGB')
    if len(set(img.getextrema())) == 1 and img.getextrema()[0][0] == img.getextrema()[0][1]:
        return 'PNG is a single flat colour'
    return None


def expectations(html_path, min_charts):
    nb_path = os.path.splitext(html_path)[0] + '.ipynb'
    exp = {'charts': 0, 'images': 0, 'tables': 0, 'plots': 0, 'min_charts': min_charts, 'notebook': None}
    if not os.path.isfile(nb_path):
        return exp
    with open(nb_path, encoding='utf-8') as f:
        nb = json.load(f)
    exp['notebook'] = nb_path
    rc = nb.get('metadata', {}).get('render_check', {})
    exp['min_charts'] = rc.get('min_charts', min_charts)
    for cell in nb.get('cells', []):
        for out in cell.get('outputs', []):
            data = out.get('data', {})
            html_data = data.get('text/html')
            html_text = ''.join(html_data) if isinstance(html_data, list) else (html_data or '')
            if 'image/svg+xml' in data and not html_text:
                exp['charts'] += 1
            elif 'image/png' in data and not html_text:
                exp['images'] += 1
            elif 'src="data:image/svg+xml' in html_text:
                exp['charts'] += 1
            elif '<img' in html_text:
                exp['images'] += 1
            exp['plots'] += html_text.count('data-dinotwins-plotly=')
            if '<table' in html_text:
                exp['tables'] += 1
    return exp


# Loads a page may make besides itself: data/blob URIs, and MathJax from its CDN where a markdown
# cell has TeX (scripts/run-notebooks.py self_contained(); offline, the TeX then shows as written).
ALLOWED_URL = re.compile(r'(data|blob|about):|https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/')


def open_page(browser, url, args):
    """Loads `url` in a new tab, offline, and runs PROBE. Returns (probe result, page errors, screenshot PNG).
    Each step may take --timeout seconds (the first includes Chromium's start), the probe --wait more."""
    target = browser.call('Target.createTarget', {'url': 'about:blank'}, timeout=args.timeout)['targetId']
    sid = browser.call('Target.attachToTarget', {'targetId': target, 'flatten': True}, timeout=args.timeout)['sessionId']

    def call(method, params=None, timeout=args.timeout):
        return browser.call(method, params, session=sid, timeout=timeout)
    for method in ('Page.enable', 'Runtime.enable', 'Network.enable', 'Log.enable'):
        call(method)
    call('Network.emulateNetworkConditions', {'offline': True, 'latency': 0, 'downloadThroughput': -1, 'uploadThroughput': -1})
    call('Emulation.setDeviceMetricsOverride', {'width': VIEWPORT[0], 'height': VIEWPORT[1], 'deviceScaleFactor': 1, 'mobile': False})
    nav = call('Page.navigate', {'url': url})
    if nav.get('errorText'):
        raise CdpError('navigation failed: %s' % nav['errorText'])
    browser.wait_event('Page.loadEventFired', sid, args.timeout)
    r = call('Runtime.evaluate', {'expression': '(%s)(%d)' % (PROBE, int(args.wait * 1000)), 'awaitPromise': True,
                                  'returnByValue': True}, timeout=args.wait + args.timeout)
    if 'exceptionDetails' in r:
        raise CdpError('the probe failed: %s' % r['exceptionDetails'].get('text'))
    probe = r['result']['value']
    shot = None if args.no_screenshot else base64.b64decode(call('Page.captureScreenshot', {'format': 'png'})['data'])

    errors = []
    for method, params, s in browser.events:
        if s != sid:
            continue
        if method == 'Runtime.exceptionThrown':
            d = params.get('exceptionDetails', {})
            errors.append('JavaScript error: %s' % ((d.get('exception') or {}).get('description') or d.get('text', '')).splitlines()[0][:300])
        elif method == 'Runtime.consoleAPICalled' and params.get('type') == 'error':
            errors.append('console.error: %s' % ' '.join(str(a.get('value', a.get('description', ''))) for a in params.get('args', []))[:300])
        elif method == 'Log.entryAdded' and params['entry'].get('level') == 'error' and not ALLOWED_URL.match(params['entry'].get('url', '')):
            errors.append('browser log: %s' % params['entry'].get('text', '')[:300])
        elif method == 'Network.requestWillBeSent':
            req = params['request']['url']
            if req != url and not ALLOWED_URL.match(req):
                errors.append('the page loads %s (an export must be self-contained)' % req[:200])
    return probe, errors, shot


def browser_check(html_path, tmp, args):
    """Opens a copy of the page, alone in a fresh folder (nothing beside it to load), in headless
    Chromium with the network off. Returns (probe result, page errors, screenshot PNG or None, error)."""
    page_dir = os.path.join(tmp, 'page')
    os.makedirs(page_dir)
    page = os.path.join(page_dir, os.path.basename(html_path))
    shutil.copyfile(html_path, page)
    # Headless Chromium now and then fails to start or answer (once in CI: exit 0, only DBus noise on
    # stderr): one more try, in a fresh profile, before calling it a failure. A page that renders
    # badly still produces a result, with its failures in it.
    for attempt in (1, 2):
        browser = None
        try:
            browser = Chromium(os.path.join(tmp, 'profile%d' % attempt))
            return open_page(browser, 'file://' + page, args) + (None,)
        except CdpError as e:
            err = 'browser probe produced no result: %s' % e
            log('     (browser probe attempt %d of 2 produced no result: %s)' % (attempt, e))
        finally:
            if browser:
                browser.close()
    return None, [], None, err


def screenshot_ink(png):
    try:
        from PIL import Image
    except ImportError:
        return None
    img = Image.open(io.BytesIO(png)).convert('L')
    hist = img.histogram()
    return 1.0 - sum(hist[245:]) / float(img.width * img.height)


def check_one(html_path, args):
    problems = []
    exp = expectations(html_path, args.min_charts)
    with open(html_path, encoding='utf-8') as f:
        parser = OutputImgs()
        parser.feed(f.read())
    svg_ok = png_ok = 0
    for k, src in enumerate(parser.srcs):
        m = re.match(r'data:([^;,]+);base64,(.*)', src, re.S)
        if not m:
            problems.append('output image %d is not a base64 data-URI (%s...)' % (k, src[:40]))
            continue
        try:
            data = base64.b64decode(m.group(2), validate=False)
        except ValueError as e:
            problems.append('output image %d: bad base64: %s' % (k, e))
            continue
        try:
            err = check_svg(data) if m.group(1) == 'image/svg+xml' else check_png(data) if m.group(1) == 'image/png' else None
        except Exception as e:  # noqa: BLE001 - any decoding failure is a broken image
            err = 'cannot be decoded: %s' % e
        if err:
            problems.append('output image %d (%s): %s' % (k, m.group(1), err))
        elif m.group(1) == 'image/svg+xml':
            svg_ok += 1
        elif m.group(1) == 'image/png':
            png_ok += 1
    tables_ok = sum(1 for rows in parser.tables if rows > 0)
    if any(rows == 0 for rows in parser.tables):
        problems.append('%d output table(s) without rows' % sum(1 for r in parser.tables if r == 0))

    tmp = tempfile.mkdtemp(prefix='render-check-')
    ink = probe = None
    try:
        probe, page_errors, shot, err = browser_check(html_path, tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if err:
        problems.append(err)
    else:
        problems.extend(page_errors)
        broken = [i for i in probe['images'] if not i['ok']]
        if broken:
            problems.append('%d output image(s) did not load in Chromium: %s' % (len(broken), broken[:3]))
        if len(probe['images']) != len(parser.srcs):
            problems.append('Chromium saw %d output images, the HTML has %d' % (len(probe['images']), len(parser.srcs)))
        if sum(1 for t in probe['tables'] if t['rows'] > 0) < exp['tables']:
            problems.append('Chromium saw %d tables with rows, expected %d' % (len(probe['tables']), exp['tables']))
        # A plot that says how many points it has (data-points, lib/viz/embeddingExplorer.ts) must draw them all.
        drawn = sum(1 for p in probe['plots'] if p['drawn'] and p['points'] > 0 and p.get('expected') in (None, p['points']))
        if drawn < exp['plots']:
            problems.append('%d of %d interactive plotly plots drew a scatter layer in Chromium within %.0f s: %s' % (
                drawn, exp['plots'], probe['plotWaitMs'] / 1000.0, probe['plots']))
        if probe['mathjaxBanner']:
            problems.append('MathJax banner left on the page: %r' % probe['mathjaxBanner'])
        ink = None if shot is None else screenshot_ink(shot)
        if ink is not None and ink < args.min_ink:
            problems.append('screenshot is blank (%.2f%% non-white pixels)' % (100 * ink))

    if svg_ok < exp['charts']:
        problems.append('%d charts rendered, the notebook has %d chart outputs' % (svg_ok, exp['charts']))
    if png_ok < exp['images']:
        problems.append('%d PNG images rendered, the notebook has %d image outputs' % (png_ok, exp['images']))
    if tables_ok < exp['tables']:
        problems.append('%d tables with rows, the notebook has %d table outputs' % (tables_ok, exp['tables']))
    if svg_ok + png_ok < exp['min_charts']:
        problems.append('only %d charts/images, at least %d required' % (svg_ok + png_ok, exp['min_charts']))
    ink_s = '' if ink is None else ', screenshot ink %.1f%%' % (100 * ink)
    plots_s = ', plotly plots %d' % exp['plots'] if exp['plots'] else ''
    if plots_s and probe:
        plots_s += ' (checked %.1f s after navigation)' % (probe['doneMs'] / 1000.0)
    log('%s %s: charts %d/%d, images %d, tables %d/%d%s%s' % (
        'FAIL' if problems else 'ok  ', os.path.basename(html_path), svg_ok, exp['charts'], png_ok,
        tables_ok, exp['tables'], plots_s, ink_s))
    for p in problems:
        log('     - ' + p)
    return problems


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('html', nargs='*', help='HTML files (default: runs/executed/*.html)')
    p.add_argument('--min-charts', type=int, default=1, help='charts or images each notebook must show')
    p.add_argument('--min-ink', type=float, default=0.005, help='minimum fraction of non-white screenshot pixels')
    p.add_argument('--no-screenshot', action='store_true', help='skip the screenshot check')
    p.add_argument('--timeout', type=float, default=120, help='seconds for each browser step: start, page load (its load event), screenshot')
    p.add_argument('--wait', type=float, default=60, help='seconds to wait for interactive plots to draw (a slow machine needs more)')
    args = p.parse_args(argv)
    files = args.html or sorted(glob.glob(os.path.join(ROOT, 'runs', 'executed', '*.html')))
    if not files:
        log('render-check: no HTML files')
        return 2
    failed = [f for f in files if check_one(f, args)]
    log('render-check: %d/%d passed' % (len(files) - len(failed), len(files)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

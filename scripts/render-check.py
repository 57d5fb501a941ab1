#!/usr/bin/python3
"""Check that exported notebook HTML really renders its charts, images and tables.

Usage: scripts/render-check.py [HTML files...]   (default: runs/executed/*.html)

For each HTML file (written by scripts/run-notebooks.py):
 1. static: every data-URI <img> inside an output area is decoded; SVGs must parse and hold
    drawing elements (path/rect/line/image) and text; PNGs must have a valid signature,
    IHDR and zlib stream, and (with PIL) more than one colour;
 2. browser: a copy of the page with a small probe script is loaded in headless Chromium
    (--dump-dom); the probe reports, after the load event and img.decode(), each output
    image's natural size and each output table's row count, so broken images count as failures,
    and whether each interactive plotly plot (lib/viz/plotly.ts, data-dinotwins-plotly) drew its
    scatter layer;
 3. screenshot (with PIL): the page screenshot must not be blank.
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
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars', '--mute-audio']
DRAWING = {'path', 'rect', 'line', 'polyline', 'polygon', 'circle', 'ellipse', 'image'}

PROBE = """<script>
window.addEventListener('load', async () => {
  const outs = (sel) => [...document.querySelectorAll(sel)].filter((e) => e.closest('.jp-OutputArea-output'));
  const imgs = outs('img');
  await Promise.all(imgs.map((i) => i.decode().catch(() => null)));
  const images = imgs.map((i) => ({ mime: ((i.getAttribute('src') || '').match(/^data:([^;,]+)/) || [, 'url'])[1],
    ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0, w: i.naturalWidth, h: i.naturalHeight }));
  const tables = outs('table').map((t) => ({ rows: t.querySelectorAll('tbody tr').length, cells: t.querySelectorAll('td').length }));
  const roots = outs('[data-dinotwins-plotly]');
  for (let t = 0; t < 80 && roots.some((r) => !r.getAttribute('data-drawn')); t++) await new Promise((r) => setTimeout(r, 100));
  const plots = roots.map((r) => ({ drawn: r.getAttribute('data-drawn') === '1',
    points: r.querySelectorAll('.js-plotly-plot .scatterlayer .trace .point').length }));
  const pre = document.createElement('pre');
  pre.id = 'render-check-result';
  pre.textContent = JSON.stringify({ images, tables, plots });
  document.body.appendChild(pre);
});
</script>"""


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


def run_chromium(args, timeout):
    exe = shutil.which('chromium') or '/usr/bin/chromium'
    return subprocess.run([exe] + CHROMIUM_FLAGS + args, capture_output=True, timeout=timeout, text=True)


def browser_probe(html_path, tmp, timeout):
    with open(html_path, encoding='utf-8') as f:
        page = f.read()
    page = page.replace('</body>', PROBE + '</body>', 1) if '</body>' in page else page + PROBE
    probe_path = os.path.join(tmp, 'probe.html')
    with open(probe_path, 'w', encoding='utf-8') as f:
        f.write(page)
    # Headless Chromium now and then exits 0 without dumping the DOM (seen once in CI on a page that
    # passed before and after): one more try, in a fresh profile, before calling it a failure. A
    # page that renders badly still produces a result, with its failures in it.
    for attempt in (1, 2):
        r = run_chromium(['--user-data-dir=' + os.path.join(tmp, 'profile%d' % attempt), '--virtual-time-budget=15000',
                          '--dump-dom', 'file://' + probe_path], timeout)
        m = re.search(r'<pre id="render-check-result">(.*?)</pre>', r.stdout, re.S)
        if m:
            break
        log('     (browser probe attempt %d of 2 produced no result, chromium exit %d)' % (attempt, r.returncode))
    if not m:
        return None, 'browser probe produced no result (chromium exit %d): %s' % (r.returncode, r.stderr.strip()[-400:])
    import html as html_mod
    return json.loads(html_mod.unescape(m.group(1))), None


def screenshot_ink(html_path, tmp, timeout):
    try:
        from PIL import Image
    except ImportError:
        return None, None
    shot = os.path.join(tmp, 'shot.png')
    run_chromium(['--user-data-dir=' + os.path.join(tmp, 'profile2'), '--virtual-time-budget=15000',
                  '--window-size=1200,3000', '--screenshot=' + shot, 'file://' + os.path.abspath(html_path)], timeout)
    if not os.path.isfile(shot):
        return None, 'no screenshot was written'
    img = Image.open(shot).convert('L')
    hist = img.histogram()
    ink = 1.0 - sum(hist[245:]) / float(img.width * img.height)
    return ink, None


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
    try:
        probe, err = browser_probe(html_path, tmp, args.timeout)
        if err:
            problems.append(err)
        else:
            broken = [i for i in probe['images'] if not i['ok']]
            if broken:
                problems.append('%d output image(s) did not load in Chromium: %s' % (len(broken), broken[:3]))
            if len(probe['images']) != len(parser.srcs):
                problems.append('Chromium saw %d output images, the HTML has %d' % (len(probe['images']), len(parser.srcs)))
            if sum(1 for t in probe['tables'] if t['rows'] > 0) < exp['tables']:
                problems.append('Chromium saw %d tables with rows, expected %d' % (len(probe['tables']), exp['tables']))
            drawn = sum(1 for p in probe['plots'] if p['drawn'] and p['points'] > 0)
            if drawn < exp['plots']:
                problems.append('%d of %d interactive plotly plots drew a scatter layer in Chromium: %s' % (drawn, exp['plots'], probe['plots']))
        ink, err = (None, None) if args.no_screenshot else screenshot_ink(html_path, tmp, args.timeout)
        if err:
            problems.append(err)
        elif ink is not None and ink < args.min_ink:
            problems.append('screenshot is blank (%.2f%% non-white pixels)' % (100 * ink))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

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
    p.add_argument('--timeout', type=int, default=120, help='seconds per Chromium run')
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

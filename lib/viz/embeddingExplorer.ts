/**
 * The embedding explorer: 2-D layouts of the same images under several encoders, side by side as
 * plotly scatter plots coloured by class. Hovering a point shows its image, its true label and,
 * for every encoder, the kNN prediction and the labels of its nearest training images; the same
 * image is ringed in every panel. A static rendering (the same layouts as a PNG, lib/viz/scatterPng.ts,
 * with HTML titles and legend) sits in the plot's place until plotly draws, and stays where scripts
 * do not run (nbconvert HTML without the library, untrusted notebooks, GitHub). Images without labels (an
 * unlabelled image folder) are drawn in one colour; hovering shows the image alone.
 */
import { inspect } from 'util';
import * as vega from 'vega';
import { display, newDisplayId, type MimeBundle } from './display';
import { encodePng, pngDataUri } from './png';
import { escapeHtml } from './render';
import { scatterPng } from './scatterPng';
import { inlinePlotly, plotlyBootstrap, plotlyInlined, PLOTLY_PLOT_ATTRIBUTE } from './plotly';

/** One encoder's view of the sample. */
export interface EmbeddingPanel {
  /** Panel title, e.g. the method. */
  label: string;
  /** Layout [n * 2]: x, y per sample image. */
  xy: Float32Array;
  /** kNN prediction per sample image (class index). */
  knnPred: ArrayLike<number>;
  /** Labels of each image's nearest training images, [n * k], nearest first. */
  neighbourLabels: ArrayLike<number>;
  /** Neighbours per image in `neighbourLabels`. */
  k: number;
}

/** The images the layouts place. */
export interface EmbeddingSample {
  /** uint8 NHWC [n, height, width, 3]. */
  images: Uint8Array;
  /** Class per image; absent without labels (then `classNames` is not read, and the panels' kNN predictions and neighbour labels may be empty). */
  labels?: ArrayLike<number>;
  n: number;
  classNames: readonly string[];
  /** Image size (default 32 x 32). */
  height?: number;
  width?: number;
}

export interface EmbeddingExplorerOptions {
  title: string;
  /** Width of each panel in pixels. */
  panelWidth: number;
  /** Height of the panels in pixels. */
  panelHeight: number;
  /** Neighbour labels listed on hover (at most each panel's k). */
  showNeighbours: number;
  /** Thumbnail upscaling in the hover panel. */
  thumbScale: number;
  /** Bits kept per colour channel in the thumbnails (PNG, lib/viz/png.ts): 4 keeps them 38 % of lossless size and looks the same at this size; 8 is lossless. */
  thumbBits: number;
  /** Display in the notebook when running in tslab. */
  display: boolean;
}

export const DEFAULT_EMBEDDING_EXPLORER_OPTIONS: Readonly<EmbeddingExplorerOptions> = Object.freeze({
  title: '',
  panelWidth: 260,
  panelHeight: 260,
  showNeighbours: 10,
  thumbScale: 4,
  thumbBits: 4,
  display: true,
});

export interface EmbeddingExplorerResult {
  /** The whole output: fallback image, plot container, hover panel, data and script. */
  html: string;
  /** The static rendering of the panels (PNG), shown with HTML titles and legend where plotly does not draw. */
  png: Buffer;
  bundle: MimeBundle;
  shown: boolean;
}

/** Class colours: vega's tableau10 (tableau20 above ten classes), as the Vega-Lite charts use them. */
export function classColors(count: number): string[] {
  const scheme = (vega.scheme(count <= 10 ? 'tableau10' : 'tableau20') as string[]).slice();
  return Array.from({ length: count }, (_, i) => scheme[i % scheme.length]);
}

/** The legend entry of images without labels. */
export const UNLABELLED_CLASS = 'unlabelled';

/** `s` with a label for every image: one class, UNLABELLED_CLASS, when it has none. */
function withLabels(s: EmbeddingSample): EmbeddingSample & { labels: ArrayLike<number> } {
  return s.labels !== undefined
    ? { ...s, labels: s.labels }
    : { ...s, labels: new Uint8Array(s.n), classNames: [UNLABELLED_CLASS] };
}

function check(panels: readonly EmbeddingPanel[], s: EmbeddingSample): void {
  const h = s.height ?? 32;
  const w = s.width ?? 32;
  if (panels.length === 0) throw new Error('embeddingExplorer: no panels');
  if (!Number.isInteger(s.n) || s.n < 1)
    throw new Error(`embeddingExplorer: sample.n must be a positive integer, got ${s.n}`);
  if (s.images.length !== s.n * h * w * 3)
    throw new Error(`embeddingExplorer: sample has ${s.images.length} image bytes, expected ${s.n} x ${h} x ${w} x 3`);
  const labels = s.labels;
  if (labels !== undefined) {
    if (labels.length !== s.n) throw new Error(`embeddingExplorer: ${labels.length} labels for ${s.n} images`);
    const C = s.classNames.length;
    for (let i = 0; i < s.n; i++)
      if (!(Number.isInteger(labels[i]) && labels[i] >= 0 && labels[i] < C))
        throw new Error(`embeddingExplorer: label ${i} is ${labels[i]}, expected a class index below ${C}`);
  }
  for (const p of panels) {
    if (p.xy.length !== s.n * 2)
      throw new Error(`embeddingExplorer: panel "${p.label}" has ${p.xy.length / 2} points, the sample ${s.n} images`);
    if (!p.xy.every(Number.isFinite))
      throw new Error(`embeddingExplorer: panel "${p.label}" has non-finite coordinates`);
    if (labels === undefined) continue; // kNN predictions and neighbour labels need labels: not read
    if (p.knnPred.length !== s.n)
      throw new Error(
        `embeddingExplorer: panel "${p.label}" has ${p.knnPred.length} kNN predictions for ${s.n} images`,
      );
    if (!Number.isInteger(p.k) || p.k < 0 || p.neighbourLabels.length !== s.n * p.k)
      throw new Error(
        `embeddingExplorer: panel "${p.label}" has ${p.neighbourLabels.length} neighbour labels, expected ${s.n} x k (${p.k})`,
      );
  }
}

/** All thumbnails in one PNG (a grid of `cols` columns), so the page decodes one image. */
function sprite(s: EmbeddingSample, bits: number): { png: Buffer; cols: number } {
  const h = s.height ?? 32;
  const w = s.width ?? 32;
  const cols = Math.ceil(Math.sqrt(s.n));
  const rows = Math.ceil(s.n / cols);
  const W = cols * w;
  const out = new Uint8Array(rows * h * W * 3);
  for (let i = 0; i < s.n; i++) {
    const x0 = (i % cols) * w;
    const y0 = Math.floor(i / cols) * h;
    for (let y = 0; y < h; y++)
      out.set(s.images.subarray((i * h + y) * w * 3, (i * h + y + 1) * w * 3), ((y0 + y) * W + x0) * 3);
  }
  return { png: encodePng(out, W, rows * h, 3, { bits }), cols };
}

const round = (v: number): number => Math.round(v * 1000) / 1000;

/** The browser side: builds the traces from the compact data, draws, and wires hover. */
const DRAW = `function (Plotly) {
  var D = DATA, root = document.getElementById(D.id), plot = document.getElementById(D.id + '-plot');
  var fallback = document.getElementById(D.id + '-fallback'), info = document.getElementById(D.id + '-info');
  if (!root || root.getAttribute('data-drawn')) return;
  // Panels as wide as asked, narrower when the output area is, beside the 200-pixel hover panel (below it when too narrow).
  var M = D.panels.length, full = root.clientWidth || (D.width * M + 210), avail = full - 210 >= 140 * M ? full - 210 : full;
  var pw = Math.max(140, Math.min(D.width, Math.floor(avail / M))), ph = Math.round(pw * D.height / D.width);
  var traces = [], layout = { width: pw * M, height: ph + 90, hovermode: 'closest',
    margin: { l: 10, r: 10, t: 50, b: 10 }, showlegend: true, legend: { orientation: 'h', x: 0, y: -0.02, yanchor: 'top' },
    annotations: [], paper_bgcolor: 'white', plot_bgcolor: 'white' };
  var gap = 0.01;
  D.panels.forEach(function (p, m) {
    var ax = m === 0 ? '' : String(m + 1);
    var axis = { domain: [m / M + gap, (m + 1) / M - gap], showticklabels: false, showgrid: false, zeroline: false, showline: true, linecolor: '#ddd', mirror: true };
    layout['xaxis' + ax] = axis;
    layout['yaxis' + ax] = { anchor: 'x' + ax, showticklabels: false, showgrid: false, zeroline: false, showline: true, linecolor: '#ddd', mirror: true };
    layout.annotations.push({ text: '<b>' + p.label + '</b>', x: (m + 0.5) / M, y: 1, xref: 'paper', yref: 'paper', xanchor: 'center', yanchor: 'bottom', showarrow: false });
    D.classes.forEach(function (name, c) {
      var idx = [], x = [], y = [], text = [];
      for (var i = 0; i < D.n; i++) {
        if (D.labels[i] !== c) continue;
        idx.push(i); x.push(p.xy[2 * i]); y.push(p.xy[2 * i + 1]);
        var pred = p.pred[i];
        if (D.unlabelled) { text.push('#' + i); continue; }
        // A short tooltip (it must not cover the next panel): the image and this encoder's kNN call; the rest is in the side panel.
        text.push('#' + i + ' · ' + name + '<br>kNN: ' + D.classes[pred] + (pred === c ? ' ✓' : ' ✗'));
      }
      traces.push({ type: 'scatter', mode: 'markers', name: name, legendgroup: name, showlegend: m === 0, x: x, y: y, customdata: idx,
        text: text, hovertemplate: '%{text}<extra></extra>', xaxis: 'x' + ax, yaxis: 'y' + ax,
        marker: { size: 5, color: D.colors[c], opacity: 0.8 } });
    });
  });
  var sprite = new Image();
  sprite.src = D.sprite;
  function showInfo(i, hovered) {
    var c = D.labels[i], cv = document.createElement('canvas'), s = D.thumbScale;
    cv.width = D.w * s; cv.height = D.h * s;
    var g = cv.getContext('2d');
    g.imageSmoothingEnabled = false;
    g.drawImage(sprite, (i % D.cols) * D.w, Math.floor(i / D.cols) * D.h, D.w, D.h, 0, 0, D.w * s, D.h * s);
    if (D.unlabelled) { info.innerHTML = ''; info.appendChild(cv); info.appendChild(document.createTextNode('#' + i + ' (no labels)')); return; }
    // Built with el(): a literal table tag in this script would read as a table output to scripts/render-check.py.
    var el = function (tag, style, html) { return '<' + tag + (style ? ' style="' + style + '"' : '') + '>' + html + '</' + tag + '>'; };
    var cell = 'padding:1px 4px;text-align:left';
    var rows = D.panels.map(function (p, m) {
      var pred = p.pred[i], nb = p.nb.slice(i * p.k, i * p.k + D.show), same = nb.filter(function (l) { return l === c; }).length;
      return el('tr', m === hovered ? 'font-weight:bold' : '', el('td', cell, p.label) + el('td', cell + ';color:' + (pred === c ? '#2a7' : '#c33'), D.classes[pred]) + el('td', cell, same + '/' + nb.length));
    }).join('');
    var hp = D.panels[hovered];
    info.innerHTML = '';
    info.appendChild(cv);
    var t = document.createElement('div');
    t.innerHTML = el('div', 'margin:4px 0', el('b', '', '#' + i) + ' · true: ' + el('b', '', D.classes[c])) +
      el('table', 'border-collapse:collapse;font-size:11px', el('tr', '', el('th', cell, 'encoder') + el('th', cell, 'kNN') + el('th', cell, 'nbrs ' + D.classes[c])) + rows) +
      el('div', 'margin-top:4px;color:#555', 'neighbours (' + hp.label + '): ' + hp.nb.slice(i * hp.k, i * hp.k + D.show).map(function (l) { return D.classes[l]; }).join(', '));
    info.appendChild(t);
  }
  // The ring around the hovered image in every panel: circles in an SVG laid over the plot, moved
  // with the axes' own data-to-pixel maps. Nothing is redrawn by plotly while hovering: a
  // Plotly.restyle here made plotly replay the hover (its rehover after a redraw) with a stale mouse
  // position, and the tooltip and the side panel then named different images (issue 25).
  var NS = 'http://www.w3.org/2000/svg', rings = document.createElementNS(NS, 'svg'), current = null;
  rings.setAttribute('class', 'dinotwins-rings');
  rings.setAttribute('style', 'position:absolute;left:0;top:0;pointer-events:none;overflow:visible');
  rings.setAttribute('width', String(layout.width));
  rings.setAttribute('height', String(layout.height));
  var ringOf = D.panels.map(function () {
    var r = document.createElementNS(NS, 'circle');
    r.setAttribute('r', '7');
    r.setAttribute('fill', 'none');
    r.setAttribute('stroke', 'black');
    r.setAttribute('stroke-width', '2');
    r.style.display = 'none';
    rings.appendChild(r);
    return r;
  });
  function placeRings() {
    if (current === null) return;
    var full = plot._fullLayout;
    D.panels.forEach(function (p, m) {
      var ax = m === 0 ? '' : String(m + 1), xa = full && full['xaxis' + ax], ya = full && full['yaxis' + ax], r = ringOf[m];
      if (!xa || !ya) { r.style.display = 'none'; return; }
      r.setAttribute('cx', String(xa._offset + xa.l2p(p.xy[2 * current])));
      r.setAttribute('cy', String(ya._offset + ya.l2p(p.xy[2 * current + 1])));
      r.setAttribute('data-ring', String(current));
      r.style.display = '';
    });
  }
  fallback.style.display = 'none';
  Plotly.newPlot(plot, traces, layout, { displaylogo: false, responsive: false }).then(function () {
    plot.style.position = 'relative';
    plot.appendChild(rings);
    root.setAttribute('data-drawn', '1');
    plot.on('plotly_hover', function (ev) {
      var pt = ev.points[0];
      if (!pt || pt.customdata === undefined) return;
      var i = pt.customdata, m = Math.floor(pt.curveNumber / D.classes.length);
      current = i;
      placeRings();
      showInfo(i, m);
    });
    // Hiding classes in the legend can rescale the axes: the rings follow.
    plot.on('plotly_afterplot', placeRings);
  }, function (err) {
    fallback.style.display = '';
    var note = document.getElementById(D.id + '-note');
    if (note) note.textContent = 'plotly could not draw this plot (' + err + '): showing the static image.';
  });
}`;

/**
 * Shows panels side by side (plotly, with the static rendering as fallback). Sends plotly.js first
 * if this kernel has not inlined it yet (prefer `viz.inlinePlotly()` in the set-up cell).
 */
export async function embeddingExplorer(
  panels: readonly EmbeddingPanel[],
  sample: EmbeddingSample,
  options: Partial<EmbeddingExplorerOptions> = {},
): Promise<EmbeddingExplorerResult> {
  const o = { ...DEFAULT_EMBEDDING_EXPLORER_OPTIONS, ...options };
  check(panels, sample);
  if (!Number.isInteger(o.showNeighbours) || o.showNeighbours < 0)
    throw new Error(`embeddingExplorer: showNeighbours must be a non-negative integer, got ${o.showNeighbours}`);
  if (!(Number.isInteger(o.thumbBits) && o.thumbBits >= 1 && o.thumbBits <= 8))
    throw new Error(`embeddingExplorer: thumbBits must be an integer in 1..8, got ${o.thumbBits}`);
  const unlabelled = sample.labels === undefined;
  const labelled = withLabels(sample);
  const colors = classColors(labelled.classNames.length);
  const still = scatterPng(
    panels.map((p) => p.xy),
    labelled.labels,
    colors,
    { panelWidth: o.panelWidth, panelHeight: o.panelHeight },
  );
  const { png, cols } = sprite(sample, o.thumbBits);
  const id = `dt-emb-${newDisplayId()}`;
  const data = {
    id,
    n: sample.n,
    labels: Array.from(labelled.labels),
    classes: [...labelled.classNames],
    colors,
    unlabelled,
    panels: panels.map((p) => ({
      label: p.label,
      xy: Array.from(p.xy, round),
      pred: Array.from(p.knnPred),
      nb: Array.from(p.neighbourLabels),
      k: p.k,
    })),
    show: Math.min(o.showNeighbours, ...panels.map((p) => p.k)),
    width: o.panelWidth,
    height: o.panelHeight,
    sprite: pngDataUri(png),
    cols,
    w: sample.width ?? 32,
    h: sample.height ?? 32,
    thumbScale: o.thumbScale,
  };
  // JSON inside a script: escape '<' so no "</script>" can end it early.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const alt = `${o.title || 'embeddings'}: ${panels.map((p) => p.label).join(', ')} (${sample.n} images)`;
  // data-points: the scatter points a full drawing has (every image in every panel), for UI tests.
  const html = `<div class="dinotwins-embeddings" id="${id}" ${PLOTLY_PLOT_ATTRIBUTE}="scatter" data-points="${sample.n * panels.length}">
${o.title ? `<div style="font:bold 13px sans-serif;margin:4px 0">${escapeHtml(o.title)}</div>` : ''}<div style="display:flex;flex-wrap:wrap;align-items:flex-start;gap:10px">
<div id="${id}-plot"><div id="${id}-fallback" style="font:12px sans-serif">
<div style="display:flex;gap:10px">${panels.map((p) => `<div style="width:${o.panelWidth}px;text-align:center;font-weight:bold">${escapeHtml(p.label)}</div>`).join('')}</div>
<img alt="${escapeHtml(alt)}" src="${pngDataUri(still.png)}" width="${still.width}" height="${still.height}" style="max-width:100%;display:block">
<div style="margin-top:4px">${labelled.classNames.map((c, k) => `<span style="margin-right:10px;white-space:nowrap"><span style="color:${colors[k]}">●</span> ${escapeHtml(c)}</span>`).join('')}</div>
</div></div>
<div id="${id}-info" style="font:12px sans-serif;width:200px;color:#222">${unlabelled ? 'Hover over a point: its image (the images have no labels).' : `Hover over a point: its image, its true class, and per encoder the kNN prediction and how many of its ${Math.min(o.showNeighbours, ...panels.map((p) => p.k))} nearest training images share its class.`}</div>
</div>
<div id="${id}-note" style="font:11px sans-serif;color:#888"></div>
<script type="text/javascript">
${plotlyBootstrap(
  DRAW.replace('DATA', () => json),
  `${id}-note`,
)}
</script>
</div>`;
  const bundle: MimeBundle = { 'text/html': html, 'text/plain': `<${alt}>` };
  let shown = false;
  if (o.display) {
    if (!plotlyInlined()) inlinePlotly();
    shown = display(bundle);
  }
  const result: EmbeddingExplorerResult = { html, png: still.png, bundle, shown };
  Object.defineProperty(result, inspect.custom, {
    enumerable: false,
    value: () => `[embedding explorer: ${alt}${shown ? ', shown' : ''}]`,
  });
  return result;
}

/**
 * Pure Vega-Lite 5 spec builders for the charts the notebooks need (loss curves, the
 * Barlow Twins cross-correlation matrix, distributions, histograms, result bars).
 * Data are plain numbers; the specs embed them inline, rounded to 6 significant digits.
 */
import * as vega from 'vega';
import type { TopLevelSpec } from 'vega-lite';
import { encodePng, pngDataUri } from './png';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** Options shared by every chart. */
export interface ChartCommonOptions {
  /** Title above the chart ('' for none). */
  title: string;
  /** Plot width in pixels (the data rectangle, without axes and legend). */
  width: number;
  /** Plot height in pixels. */
  height: number;
}

export const DEFAULT_CHART_OPTIONS: Readonly<ChartCommonOptions> = Object.freeze({
  title: '',
  width: 420,
  height: 260,
});

/** One named series of a line chart; `x` defaults to 0, 1, 2, ... */
export interface LineSeries {
  /** Legend name. */
  name: string;
  /** y values. */
  y: ArrayLike<number>;
  /** x values (same length as y); defaults to the index. */
  x?: ArrayLike<number>;
}

/** Several series, either as a list or as a record name -> y values. */
export type SeriesInput = readonly LineSeries[] | Readonly<Record<string, ArrayLike<number>>>;

/** Options of {@link lineChartSpec}. */
export interface LineChartOptions extends ChartCommonOptions {
  /** x axis title. */
  xLabel: string;
  /** y axis title. */
  yLabel: string;
  /** Logarithmic y axis (points with y <= 0 are dropped). */
  logY: boolean;
  /** Logarithmic x axis (points with x <= 0 are dropped). */
  logX: boolean;
  /** Draw a point marker at each value. */
  points: boolean;
  /** Vega-Lite interpolation ('linear', 'step-after', 'monotone', ...). */
  interpolate: 'linear' | 'step-after' | 'step-before' | 'step' | 'monotone';
  /** At most this many points per series are kept (evenly strided, the last point always kept). */
  maxPoints: number;
}

export const DEFAULT_LINE_CHART_OPTIONS: Readonly<LineChartOptions> = Object.freeze({
  ...DEFAULT_CHART_OPTIONS,
  xLabel: 'step',
  yLabel: 'value',
  logY: false,
  logX: false,
  points: false,
  interpolate: 'linear',
  maxPoints: 2000,
});

/** Rounds to 6 significant digits (keeps specs and notebooks small). */
export function round6(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(6)) : v;
}

function isSeriesList(s: SeriesInput): s is readonly LineSeries[] {
  return Array.isArray(s);
}

/** Normalises a {@link SeriesInput} into a list, checking lengths. */
export function toSeriesList(series: SeriesInput, where = 'lineChart'): LineSeries[] {
  const list: LineSeries[] = isSeriesList(series)
    ? series.map((s) => ({ ...s }))
    : Object.entries(series).map(([name, y]) => ({ name, y }));
  if (list.length === 0) throw new Error(`${where}: no series given`);
  for (const s of list) {
    if (s.y == null || typeof s.y.length !== 'number') {
      throw new Error(`${where}: series '${s.name}' has no y values`);
    }
    if (s.x != null && s.x.length !== s.y.length) {
      throw new Error(`${where}: series '${s.name}' has ${s.x.length} x values but ${s.y.length} y values`);
    }
  }
  return list;
}

/** Indices kept when decimating `n` points to at most `max` (evenly strided, last kept). */
export function decimate(n: number, max: number): number[] {
  if (max < 2) throw new Error(`decimate: maxPoints must be >= 2, got ${max}`);
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const stride = Math.ceil(n / max);
  const idx: number[] = [];
  for (let i = 0; i < n; i += stride) idx.push(i);
  if (idx[idx.length - 1] !== n - 1) idx.push(n - 1);
  return idx;
}

/** Long-format rows {series, x, y} with non-finite (and, on log axes, non-positive) points dropped. */
export function seriesRows(
  list: readonly LineSeries[],
  opts: Pick<LineChartOptions, 'logX' | 'logY' | 'maxPoints'>,
): { series: string; x: number; y: number }[] {
  const rows: { series: string; x: number; y: number }[] = [];
  for (const s of list) {
    for (const i of decimate(s.y.length, opts.maxPoints)) {
      const x = s.x ? Number(s.x[i]) : i;
      const y = Number(s.y[i]);
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if ((opts.logY && y <= 0) || (opts.logX && x <= 0)) continue;
      rows.push({ series: s.name, x: round6(x), y: round6(y) });
    }
  }
  return rows;
}

function titled(title: string): { title?: string } {
  return title ? { title } : {};
}

/** Line chart of one or more series (loss curves, kNN accuracy curves). */
export function lineChartSpec(series: SeriesInput, options: Partial<LineChartOptions> = {}): TopLevelSpec {
  const o = { ...DEFAULT_LINE_CHART_OPTIONS, ...options };
  const list = toSeriesList(series);
  const rows = seriesRows(list, o);
  // Integer x values (epochs, steps) get integer ticks: no "1.2 epochs" between two points. A short
  // range lists its ticks (vega still placed one at 1.5 with tickMinStep: 1), a long one asks for whole steps.
  const integerX = !o.logX && rows.length > 0 && rows.every((r) => Number.isInteger(r.x));
  const xs = rows.map((r) => r.x);
  const [x0, x1] = integerX ? [Math.min(...xs), Math.max(...xs)] : [0, 0];
  const xAxis = !integerX
    ? {}
    : {
        axis:
          x1 - x0 <= 20
            ? { values: Array.from({ length: x1 - x0 + 1 }, (_, k) => x0 + k), format: 'd' }
            : { tickMinStep: 1, format: 'd' },
      };
  return {
    $schema: SCHEMA,
    ...titled(o.title),
    width: o.width,
    height: o.height,
    background: 'white',
    data: { values: rows },
    mark: { type: 'line', point: o.points, interpolate: o.interpolate, clip: true },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: o.xLabel,
        scale: o.logX ? { type: 'log' } : { zero: false },
        ...xAxis,
      },
      y: { field: 'y', type: 'quantitative', title: o.yLabel, scale: o.logY ? { type: 'log' } : { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, sort: list.map((s) => s.name) },
    },
  } as TopLevelSpec;
}

/** A dense matrix: nested rows, or flat row-major values with their shape. */
export type MatrixInput =
  readonly ArrayLike<number>[] | { readonly data: ArrayLike<number>; readonly rows: number; readonly cols: number };

/** Options of {@link heatmapSpec}. */
export interface HeatmapOptions extends ChartCommonOptions {
  /** Only the top-left `maxRows` x `maxCols` block is drawn (e.g. a 64x64 crop of a 2048x2048 C). */
  maxRows: number;
  /** See maxRows. */
  maxCols: number;
  /** Colour scale domain; null = data min..max. */
  domain: [number, number] | null;
  /** Vega colour scheme ('redblue' is diverging: blue for -1, white for 0, red for +1). */
  scheme: string;
  /** Side of one cell in pixels; overrides width/height when > 0. */
  cellSize: number;
  /** x axis title. */
  xLabel: string;
  /** y axis title. */
  yLabel: string;
}

export const DEFAULT_HEATMAP_OPTIONS: Readonly<HeatmapOptions> = Object.freeze({
  ...DEFAULT_CHART_OPTIONS,
  maxRows: 64,
  maxCols: 64,
  domain: [-1, 1] as [number, number],
  scheme: 'redblue',
  cellSize: 5,
  xLabel: 'j',
  yLabel: 'i',
});

/** Reads a {@link MatrixInput} into rows/cols and an accessor. */
export function matrixShape(m: MatrixInput): { rows: number; cols: number; at: (i: number, j: number) => number } {
  if (Array.isArray(m)) {
    const rowsArr = m as readonly ArrayLike<number>[];
    const rows = rowsArr.length;
    const cols = rows > 0 ? rowsArr[0].length : 0;
    rowsArr.forEach((r, i) => {
      if (r.length !== cols) throw new Error(`heatmap: row ${i} has ${r.length} values, row 0 has ${cols}`);
    });
    return { rows, cols, at: (i, j) => Number(rowsArr[i][j]) };
  }
  const flat = m as { data: ArrayLike<number>; rows: number; cols: number };
  if (flat.data == null || flat.data.length !== flat.rows * flat.cols) {
    throw new Error(`heatmap: data has ${flat.data?.length} values, expected rows*cols = ${flat.rows}*${flat.cols}`);
  }
  return { rows: flat.rows, cols: flat.cols, at: (i, j) => Number(flat.data[i * flat.cols + j]) };
}

function tickValues(n: number): number[] {
  const step = n <= 16 ? 1 : n <= 32 ? 4 : 8;
  const v: number[] = [];
  for (let i = 0; i < n; i += step) v.push(i);
  return v;
}

/** Parses vega's `rgb(r, g, b)` / `#rrggbb` colour strings. */
function parseColor(c: string): [number, number, number] {
  const m = /rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)/.exec(c);
  if (m) return [Math.round(+m[1]), Math.round(+m[2]), Math.round(+m[3])];
  const h = /^#([0-9a-f]{6})$/i.exec(c);
  if (h) {
    const n = parseInt(h[1], 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  throw new Error(`heatmap: cannot parse colour '${c}'`);
}

/**
 * Colours `values` (row-major [rows, cols]) with a vega scheme over `domain`, as RGB bytes;
 * non-finite values are light grey. `reverse` flips the scheme (as Vega-Lite's scale.reverse).
 */
export function colorize(
  values: ArrayLike<number>,
  domain: [number, number],
  scheme: string,
  reverse: boolean,
): Uint8Array {
  const interp = vega.scheme(scheme) as unknown;
  if (typeof interp !== 'function') throw new Error(`heatmap: '${scheme}' is not a continuous vega colour scheme`);
  const lut: [number, number, number][] = [];
  for (let k = 0; k < 256; k++) {
    const t = k / 255;
    lut.push(parseColor((interp as (t: number) => string)(reverse ? 1 - t : t)));
  }
  const [lo, hi] = domain;
  const span = hi > lo ? hi - lo : 1;
  const out = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    const rgb: [number, number, number] = Number.isFinite(v)
      ? lut[Math.max(0, Math.min(255, Math.round(((v - lo) / span) * 255)))]
      : [221, 221, 221];
    out.set(rgb, i * 3);
  }
  return out;
}

/**
 * Heatmap of a matrix (the Barlow Twins cross-correlation C, attention weights).
 * The cells are one PNG raster (an image mark), so a 64x64 block stays a few KB in the
 * notebook instead of 4,096 SVG rectangles; an invisible two-point rect layer carries the
 * axes and the colour legend.
 */
export function heatmapSpec(matrix: MatrixInput, options: Partial<HeatmapOptions> = {}): TopLevelSpec {
  const o = { ...DEFAULT_HEATMAP_OPTIONS, ...options };
  const { rows, cols, at } = matrixShape(matrix);
  if (rows === 0 || cols === 0) throw new Error(`heatmap: empty matrix (${rows}x${cols})`);
  const r = Math.min(rows, o.maxRows);
  const c = Math.min(cols, o.maxCols);
  const block = new Float64Array(r * c);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      const v = at(i, j);
      block[i * c + j] = v;
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (lo === Infinity) throw new Error('heatmap: no finite values in the drawn block');
  const domain: [number, number] = o.domain ?? [round6(lo), round6(hi)];
  const reverse = o.scheme === 'redblue';
  const png = encodePng(colorize(block, domain, o.scheme, reverse), c, r, 3);
  const cropped = r < rows || c < cols;
  const title = o.title && cropped ? `${o.title} (top-left ${r}x${c} of ${rows}x${cols})` : o.title;
  const width = o.cellSize > 0 ? c * o.cellSize : o.width;
  const height = o.cellSize > 0 ? r * o.cellSize : o.height;
  const iDomain = Array.from({ length: r }, (_, k) => k);
  const jDomain = Array.from({ length: c }, (_, k) => k);
  return {
    $schema: SCHEMA,
    ...titled(title),
    width,
    height,
    background: 'white',
    layer: [
      {
        data: { values: [{ url: pngDataUri(png) }] },
        mark: {
          type: 'image',
          width,
          height,
          aspect: false,
          align: 'left',
          baseline: 'top',
          smooth: false,
          aria: false,
        },
        encoding: { url: { field: 'url', type: 'nominal' }, x: { value: 0 }, y: { value: 0 } },
      },
      {
        data: {
          values: [
            { i: 0, j: 0, v: domain[0] },
            { i: r - 1, j: c - 1, v: domain[1] },
          ],
        },
        mark: { type: 'rect', opacity: 0, aria: false },
        encoding: {
          x: {
            field: 'j',
            type: 'ordinal',
            title: o.xLabel,
            scale: { domain: jDomain },
            axis: { values: tickValues(c), labelAngle: 0 },
          },
          y: {
            field: 'i',
            type: 'ordinal',
            title: o.yLabel,
            scale: { domain: iDomain },
            axis: { values: tickValues(r) },
          },
          color: {
            field: 'v',
            type: 'quantitative',
            title: null,
            scale: { scheme: o.scheme, reverse, domain, clamp: true },
          },
        },
      },
    ],
    config: { view: { strokeWidth: 0 }, axis: { grid: false, ticks: false, domain: false } },
  } as TopLevelSpec;
}

/** Options of {@link histogramSpec} and {@link computeHistogram}. */
export interface HistogramOptions extends ChartCommonOptions {
  /** Number of equal-width bins. */
  bins: number;
  /** Binning range; null = min..max over all series. */
  range: [number, number] | null;
  /** Plot densities (count / (n * bin width)) instead of counts, so series of different sizes compare. */
  density: boolean;
  /** Logarithmic y axis (empty bins are dropped). */
  logY: boolean;
  /** x axis title. */
  xLabel: string;
}

export const DEFAULT_HISTOGRAM_OPTIONS: Readonly<HistogramOptions> = Object.freeze({
  ...DEFAULT_CHART_OPTIONS,
  bins: 40,
  range: null,
  density: false,
  logY: false,
  xLabel: 'value',
});

/** Equal-width histogram; values outside the range and non-finite values are ignored, the last bin is closed. */
export function computeHistogram(
  values: ArrayLike<number>,
  bins: number,
  range: [number, number],
): { edges: number[]; counts: number[] } {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`histogram: bins must be a positive integer, got ${bins}`);
  let [lo, hi] = range;
  if (!(hi > lo)) {
    // A constant sample: one unit-wide window centred on it.
    lo -= 0.5;
    hi += 0.5;
  }
  const width = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (!Number.isFinite(v) || v < lo || v > hi) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
  }
  const edges = Array.from({ length: bins + 1 }, (_, k) => lo + k * width);
  return { edges, counts };
}

function finiteRange(list: ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const vals of list) {
    for (let i = 0; i < vals.length; i++) {
      const v = Number(vals[i]);
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo === Infinity) throw new Error('histogram: no finite values');
  return [lo, hi];
}

/** Overlaid histograms of one or more samples (per-dimension std, logits). */
export function histogramSpec(
  values: ArrayLike<number> | Readonly<Record<string, ArrayLike<number>>>,
  options: Partial<HistogramOptions> = {},
): TopLevelSpec {
  const o = { ...DEFAULT_HISTOGRAM_OPTIONS, ...options };
  const named: [string, ArrayLike<number>][] =
    typeof (values as ArrayLike<number>).length === 'number'
      ? [['values', values as ArrayLike<number>]]
      : Object.entries(values as Record<string, ArrayLike<number>>);
  if (named.length === 0) throw new Error('histogram: no series given');
  const range = o.range ?? finiteRange(named.map(([, v]) => v));
  const rows: { series: string; x0: number; x1: number; y: number }[] = [];
  for (const [name, vals] of named) {
    const { edges, counts } = computeHistogram(vals, o.bins, range);
    const n = counts.reduce((a, b) => a + b, 0);
    counts.forEach((cnt, k) => {
      const w = edges[k + 1] - edges[k];
      const y = o.density ? (n > 0 ? cnt / (n * w) : 0) : cnt;
      if (o.logY && y <= 0) return;
      rows.push({ series: name, x0: round6(edges[k]), x1: round6(edges[k + 1]), y: round6(y) });
    });
  }
  const multi = named.length > 1;
  return {
    $schema: SCHEMA,
    ...titled(o.title),
    width: o.width,
    height: o.height,
    background: 'white',
    data: { values: rows },
    mark: { type: 'rect', opacity: multi ? 0.55 : 0.9 },
    encoding: {
      x: { field: 'x0', type: 'quantitative', title: o.xLabel, scale: { zero: false } },
      x2: { field: 'x1' },
      y: {
        field: 'y',
        type: 'quantitative',
        title: o.density ? 'density' : 'count',
        stack: null,
        ...(o.logY ? { scale: { type: 'log' } } : {}),
      },
      ...(o.logY ? {} : { y2: { datum: 0 } }),
      color: { field: 'series', type: 'nominal', title: null, legend: multi ? {} : null },
    },
  } as TopLevelSpec;
}

/** Options of {@link distributionSpec}. */
export interface DistributionOptions extends LineChartOptions {
  /** Sort each series in descending order first (shows how peaked a softmax output is). */
  sortDescending: boolean;
}

export const DEFAULT_DISTRIBUTION_OPTIONS: Readonly<DistributionOptions> = Object.freeze({
  ...DEFAULT_LINE_CHART_OPTIONS,
  xLabel: 'dimension',
  yLabel: 'probability',
  interpolate: 'step-after' as const,
  sortDescending: false,
});

/** Probability vectors (teacher vs student softmax over K prototypes) drawn as step lines over the index. */
export function distributionSpec(series: SeriesInput, options: Partial<DistributionOptions> = {}): TopLevelSpec {
  const o = { ...DEFAULT_DISTRIBUTION_OPTIONS, ...options };
  const list = toSeriesList(series, 'distribution').map((s) => {
    if (!o.sortDescending) return s;
    const y = Array.from(s.y, Number).sort((a, b) => b - a);
    return { name: s.name, y };
  });
  if (o.sortDescending && o.xLabel === DEFAULT_DISTRIBUTION_OPTIONS.xLabel) o.xLabel = 'rank';
  return lineChartSpec(list, o);
}

/** One bar: a label, its value, an optional group (colour, side by side), error (± whisker) and points (e.g. one per seed). */
export interface BarDatum {
  /** Category on the axis. */
  label: string;
  /** Bar length. */
  value: number;
  /** Optional group: bars of one label are drawn side by side, coloured by group. */
  group?: string;
  /** Optional half-width of an error bar. */
  error?: number;
  /** Optional individual values drawn as dots over the bar (the seeds behind a mean). */
  points?: readonly number[];
}

/** Options of {@link barChartSpec}. */
export interface BarChartOptions extends ChartCommonOptions {
  /** Bars run left to right with labels on the y axis (long labels read better). */
  horizontal: boolean;
  /** Axis title of the categories. */
  labelTitle: string;
  /** Axis title of the values. */
  valueTitle: string;
  /** Write the value at the end of each bar. */
  showValues: boolean;
}

export const DEFAULT_BAR_CHART_OPTIONS: Readonly<BarChartOptions> = Object.freeze({
  ...DEFAULT_CHART_OPTIONS,
  horizontal: false,
  labelTitle: '',
  valueTitle: 'value',
  showValues: true,
});

/** Bar chart of results (kNN / linear-probe accuracy per method). */
export function barChartSpec(
  data: readonly BarDatum[] | Readonly<Record<string, number>>,
  options: Partial<BarChartOptions> = {},
): TopLevelSpec {
  const o = { ...DEFAULT_BAR_CHART_OPTIONS, ...options };
  const list: BarDatum[] = Array.isArray(data)
    ? (data as readonly BarDatum[]).map((d) => ({ ...d }))
    : Object.entries(data as Record<string, number>).map(([label, value]) => ({ label, value }));
  if (list.length === 0) throw new Error('barChart: no bars given');
  for (const d of list) {
    if (!Number.isFinite(d.value)) throw new Error(`barChart: bar '${d.label}' has non-finite value ${d.value}`);
    if (d.error != null && !(d.error >= 0))
      throw new Error(`barChart: bar '${d.label}' has error ${d.error}; it must be a finite half-width >= 0`);
    for (const p of d.points ?? [])
      if (!Number.isFinite(p)) throw new Error(`barChart: bar '${d.label}' has non-finite point ${p}`);
  }
  const grouped = list.some((d) => d.group != null);
  const hasErr = list.some((d) => d.error != null && d.error > 0);
  const values = list.map((d) => ({
    label: d.label,
    group: d.group ?? '',
    value: round6(d.value),
    lo: round6(d.value - (d.error ?? 0)),
    hi: round6(d.value + (d.error ?? 0)),
    // The value label sits above the whisker and the points, not inside them.
    top: round6(Math.max(d.value + (d.error ?? 0), ...(d.points ?? []))),
    text: Math.abs(d.value) >= 100 ? d.value.toFixed(1) : Number(d.value.toPrecision(3)).toString(),
  }));
  const cat = o.horizontal ? 'y' : 'x';
  const val = o.horizontal ? 'x' : 'y';
  const offset = o.horizontal ? 'yOffset' : 'xOffset';
  const labels = [...new Set(list.map((d) => d.label))];
  const base = {
    [cat]: {
      field: 'label',
      type: 'nominal',
      title: o.labelTitle || null,
      sort: labels,
      ...(o.horizontal ? {} : { axis: { labelAngle: labels.some((l) => l.length > 6) ? -30 : 0 } }),
    },
    [val]: { field: 'value', type: 'quantitative', title: o.valueTitle },
    ...(grouped ? { [offset]: { field: 'group' }, color: { field: 'group', type: 'nominal', title: null } } : {}),
  };
  const layers: unknown[] = [{ mark: { type: 'bar' }, encoding: base }];
  if (hasErr) {
    layers.push({
      // Whiskers only where there is an error to show (no zero-length rules on bars without one).
      transform: [{ filter: 'datum.hi > datum.lo' }],
      mark: { type: 'rule', color: 'black' },
      encoding: {
        ...base,
        color: undefined,
        [val]: { field: 'lo', type: 'quantitative' },
        [`${val}2`]: { field: 'hi' },
      },
    });
  }
  const points = list.flatMap((d) =>
    (d.points ?? []).map((p) => ({ label: d.label, group: d.group ?? '', value: round6(p) })),
  );
  if (points.length) {
    layers.push({
      data: { values: points },
      mark: { type: 'point', filled: true, color: 'black', opacity: 0.7, size: 24 },
      encoding: { ...base, color: undefined },
    });
  }
  if (o.showValues) {
    layers.push({
      mark: o.horizontal
        ? { type: 'text', align: 'left', dx: 3, baseline: 'middle' }
        : { type: 'text', baseline: 'bottom', dy: -2 },
      encoding: { ...base, color: undefined, [val]: { field: 'top', type: 'quantitative' }, text: { field: 'text' } },
    });
  }
  return {
    $schema: SCHEMA,
    ...titled(o.title),
    width: o.width,
    height: o.height,
    background: 'white',
    data: { values },
    layer: layers,
  } as TopLevelSpec;
}

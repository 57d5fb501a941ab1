/**
 * Chart helpers for notebooks and scripts: build a Vega-Lite spec from plain data, render a
 * static SVG, display both in tslab (or just return them outside a notebook).
 */
import { writeFileSync } from 'fs';
import { inspect } from 'util';
import type { TopLevelSpec } from 'vega-lite';
import { display, type MimeBundle } from './display';
import { chartBundle, renderSvg, type ChartBundleOptions } from './render';
import {
  barChartSpec,
  distributionSpec,
  heatmapSpec,
  histogramSpec,
  lineChartSpec,
  type BarChartOptions,
  type BarDatum,
  type DistributionOptions,
  type HeatmapOptions,
  type HistogramOptions,
  type LineChartOptions,
  type MatrixInput,
  type SeriesInput,
} from './specs';

/** How a chart is shown, on top of its own options. */
export interface ShowOptions extends ChartBundleOptions {
  /** Display in the notebook when running in tslab (ignored elsewhere). */
  display: boolean;
  /** Also write the SVG to this file ('' = no file). */
  saveSvg: string;
}

export const DEFAULT_SHOW_OPTIONS: Readonly<ShowOptions> = Object.freeze({
  htmlFallback: false,
  alt: 'chart',
  display: true,
  saveSvg: '',
});

/** What a chart call produced. Printing it (a cell's last value) shows one short line. */
export interface ChartResult {
  /** The Vega-Lite spec. */
  spec: TopLevelSpec;
  /** The static SVG rendering. */
  svg: string;
  /** The mime bundle that was (or would be) displayed. */
  bundle: MimeBundle;
  /** Whether it reached a notebook. */
  shown: boolean;
}

/** Renders `spec`, displays it in tslab when possible, and returns spec, SVG and bundle. */
export async function showChart(spec: TopLevelSpec, options: Partial<ShowOptions> = {}): Promise<ChartResult> {
  const o = { ...DEFAULT_SHOW_OPTIONS, ...options };
  const svg = await renderSvg(spec);
  const bundle = chartBundle(spec, svg, o);
  if (o.saveSvg) writeFileSync(o.saveSvg, svg);
  const shown = o.display ? display(bundle) : false;
  const result: ChartResult = { spec, svg, bundle, shown };
  Object.defineProperty(result, inspect.custom, {
    enumerable: false,
    value: () => `[${o.alt}: ${svg.length} bytes of SVG${shown ? ', shown' : ''}]`,
  });
  return result;
}

/** Line chart of one or more series (loss, kNN accuracy); `logY` for losses spanning decades. */
export function lineChart(
  series: SeriesInput,
  options: Partial<LineChartOptions & ShowOptions> = {},
): Promise<ChartResult> {
  return showChart(lineChartSpec(series, options), { alt: options.title || 'line chart', ...options });
}

/** Heatmap of a matrix, by default the top-left 64x64 block on a diverging -1..1 scale. */
export function heatmap(
  matrix: MatrixInput,
  options: Partial<HeatmapOptions & ShowOptions> = {},
): Promise<ChartResult> {
  return showChart(heatmapSpec(matrix, options), { alt: options.title || 'heatmap', ...options });
}

/** Overlaid histograms of one or more samples. */
export function histogram(
  values: ArrayLike<number> | Readonly<Record<string, ArrayLike<number>>>,
  options: Partial<HistogramOptions & ShowOptions> = {},
): Promise<ChartResult> {
  return showChart(histogramSpec(values, options), { alt: options.title || 'histogram', ...options });
}

/** Probability vectors over an index (teacher vs student), optionally sorted descending. */
export function distribution(
  series: SeriesInput,
  options: Partial<DistributionOptions & ShowOptions> = {},
): Promise<ChartResult> {
  return showChart(distributionSpec(series, options), { alt: options.title || 'distribution', ...options });
}

/** Bar chart of results, optionally grouped, with error bars and individual points (e.g. mean ± std over seeds, one dot per seed). */
export function barChart(
  data: readonly BarDatum[] | Readonly<Record<string, number>>,
  options: Partial<BarChartOptions & ShowOptions> = {},
): Promise<ChartResult> {
  return showChart(barChartSpec(data, options), { alt: options.title || 'bar chart', ...options });
}

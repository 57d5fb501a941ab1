/**
 * Vega-Lite spec -> static SVG in Node (vega's headless `View.toSVG()`, no canvas needed),
 * and the display bundle that carries both the interactive spec and the static fallback.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { VEGALITE_MIME, type MimeBundle } from './display';

/** Renders a Vega-Lite spec to an SVG document string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  let vgSpec: vega.Spec;
  try {
    vgSpec = compile(spec).spec;
  } catch (e) {
    throw new Error(`renderSvg: Vega-Lite could not compile the spec: ${(e as Error).message}`);
  }
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** `data:image/svg+xml;base64,...` URI of an SVG document. */
export function svgDataUri(svg: string): string {
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/** Options of {@link chartBundle}. */
export interface ChartBundleOptions {
  /**
   * Also send `text/html` with the SVG as a data-URI `<img>`. Off by default: JupyterLab ranks
   * `text/html` (50) above the Vega-Lite renderer (57), so the static image would replace the
   * interactive chart there. scripts/run-notebooks.py turns `image/svg+xml` into a data-URI
   * `<img>` when it exports HTML, so nbconvert HTML shows the chart without it.
   */
  htmlFallback: boolean;
  /** Short text for `text/plain` (terminals, and the last resort of every front end). */
  alt: string;
}

export const DEFAULT_CHART_BUNDLE_OPTIONS: Readonly<ChartBundleOptions> = Object.freeze({
  htmlFallback: false,
  alt: 'chart',
});

/**
 * Bundle with the Vega-Lite spec (JupyterLab), the SVG (classic notebook, nbconvert, GitHub)
 * and a text/plain line.
 */
export function chartBundle(spec: TopLevelSpec, svg: string, options: Partial<ChartBundleOptions> = {}): MimeBundle {
  const o = { ...DEFAULT_CHART_BUNDLE_OPTIONS, ...options };
  const bundle: MimeBundle = {
    [VEGALITE_MIME]: spec,
    'image/svg+xml': svg,
    'text/plain': `<${o.alt}>`,
  };
  if (o.htmlFallback) {
    bundle['text/html'] = `<img alt="${escapeHtml(o.alt)}" src="${svgDataUri(svg)}">`;
  }
  return bundle;
}

/**
 * Scatter plots drawn straight into pixels, side by side: the static stand-in of the embedding
 * explorer (lib/viz/embeddingExplorer.ts) where scripts do not run. A PNG of a few thousand dots on white
 * compresses to tens of KB, where the same plot as SVG (a path per dot) took 300-560 KB. Dots are
 * discs blended over the background with their opacity, with hard edges (anti-aliased edges made
 * notebook 08's four panels 145 KB instead of 42 KB); no axes (a 2-D layout's axes mean nothing),
 * a light frame per panel.
 */
import { encodePng } from './png';

export interface ScatterPngOptions {
  /** Size of each panel in pixels. */
  panelWidth: number;
  panelHeight: number;
  /** Pixels between panels. */
  gap: number;
  /** Dot radius in pixels. */
  radius: number;
  /** Dot opacity. */
  opacity: number;
  /** Empty margin inside each panel's frame, in pixels. */
  padding: number;
}

export const DEFAULT_SCATTER_PNG_OPTIONS: Readonly<ScatterPngOptions> = Object.freeze({
  panelWidth: 260,
  panelHeight: 260,
  gap: 10,
  radius: 2.5,
  opacity: 0.8,
  padding: 8,
});

/** `#rrggbb` -> [r, g, b]. */
function rgb(hex: string): [number, number, number] {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new Error(`scatterPng: colours must be #rrggbb, got ${JSON.stringify(hex)}`);
  const v = parseInt(m[1], 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/**
 * Draws one panel per layout (`xy`: [n * 2] x, y per point; the same n points in every panel),
 * point i in `colors[group[i]]`, each panel scaled to its own extent (y up). Returns the PNG and
 * the pixel position of every point, [panel][2 * i] x and [2 * i + 1] y, for checks and overlays.
 */
export function scatterPng(
  layouts: readonly ArrayLike<number>[],
  group: ArrayLike<number>,
  colors: readonly string[],
  options: Partial<ScatterPngOptions> = {},
): { png: Buffer; width: number; height: number; positions: Float32Array[] } {
  const o = { ...DEFAULT_SCATTER_PNG_OPTIONS, ...options };
  const n = group.length;
  if (layouts.length === 0) throw new Error('scatterPng: no panels');
  for (const [m, xy] of layouts.entries())
    if (xy.length !== 2 * n) throw new Error(`scatterPng: panel ${m} has ${xy.length / 2} points, expected ${n}`);
  if (!(o.panelWidth >= 2 * o.padding + 1 && o.panelHeight >= 2 * o.padding + 1))
    throw new Error(
      `scatterPng: panels of ${o.panelWidth}x${o.panelHeight} leave no room inside a padding of ${o.padding}`,
    );
  const palette = colors.map(rgb);
  for (let i = 0; i < n; i++)
    if (!(Number.isInteger(group[i]) && group[i] >= 0 && group[i] < palette.length))
      throw new Error(`scatterPng: point ${i} is in group ${group[i]}, not one of the ${palette.length} colours`);
  const width = layouts.length * o.panelWidth + (layouts.length - 1) * o.gap;
  const height = o.panelHeight;
  const px = new Float32Array(width * height * 3).fill(255);
  const positions: Float32Array[] = [];
  const frame = 221; // #ddd
  layouts.forEach((xy, m) => {
    const x0 = m * (o.panelWidth + o.gap);
    for (let x = 0; x < o.panelWidth; x++)
      for (const y of [0, height - 1]) px.fill(frame, (y * width + x0 + x) * 3, (y * width + x0 + x) * 3 + 3);
    for (let y = 0; y < height; y++)
      for (const x of [x0, x0 + o.panelWidth - 1]) px.fill(frame, (y * width + x) * 3, (y * width + x) * 3 + 3);
    let lo = [Infinity, Infinity];
    let hi = [-Infinity, -Infinity];
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < 2; d++) {
        const v = xy[2 * i + d];
        if (!Number.isFinite(v)) continue;
        lo[d] = Math.min(lo[d], v);
        hi[d] = Math.max(hi[d], v);
      }
    }
    if (!(lo[0] <= hi[0])) {
      lo = [0, 0];
      hi = [0, 0];
    }
    const span = [0, 1].map((d) => (hi[d] > lo[d] ? hi[d] - lo[d] : 1));
    const inner = [o.panelWidth - 2 * o.padding - 1, o.panelHeight - 2 * o.padding - 1];
    const pos = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      // A panel whose points all coincide draws them in its middle.
      const fx = hi[0] > lo[0] ? (xy[2 * i] - lo[0]) / span[0] : 0.5;
      const fy = hi[1] > lo[1] ? (xy[2 * i + 1] - lo[1]) / span[1] : 0.5;
      pos[2 * i] = x0 + o.padding + fx * inner[0];
      pos[2 * i + 1] = o.padding + (1 - fy) * inner[1];
    }
    positions.push(pos);
    for (let i = 0; i < n; i++) {
      const cx = pos[2 * i];
      const cy = pos[2 * i + 1];
      if (!Number.isFinite(cx) || !Number.isFinite(cy)) continue;
      const c = palette[group[i]];
      const r = o.radius;
      for (let y = Math.max(0, Math.floor(cy - r - 1)); y <= Math.min(height - 1, Math.ceil(cy + r + 1)); y++) {
        for (
          let x = Math.max(x0, Math.floor(cx - r - 1));
          x <= Math.min(x0 + o.panelWidth - 1, Math.ceil(cx + r + 1));
          x++
        ) {
          if (Math.hypot(x - cx, y - cy) > r) continue;
          const a = o.opacity;
          const k = (y * width + x) * 3;
          for (let ch = 0; ch < 3; ch++) px[k + ch] = (1 - a) * px[k + ch] + a * c[ch];
        }
      }
    }
  });
  const bytes = Uint8Array.from(px, (v) => Math.round(v));
  return { png: encodePng(bytes, width, height, 3, { level: 9 }), width, height, positions };
}

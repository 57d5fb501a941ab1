/**
 * Which rows of the results table differ by more than seed noise: Welch's t-test
 * (lib/results/stats/welch.ts) between every two rows on the same backbone, one metric at a time.
 */
import type { SeedGroup, SeedMetric } from './seedGroups';
import { welchTTest } from './stats/welch';

/** What a comparison concludes at its alpha. */
export type SeedVerdict = 'beyond seed noise' | 'within seed noise' | 'not testable';

/** One pair of rows on one metric; `a` is the row with the higher mean, so diff ≥ 0. */
export interface SeedComparison {
  metric: SeedMetric;
  backbone: string;
  a: string;
  b: string;
  nA: number;
  nB: number;
  meanA: number | null;
  meanB: number | null;
  /** meanA - meanB (points of top-1 %). */
  diff: number | null;
  /** Welch's t, degrees of freedom and two-sided p (null when not testable). */
  t: number | null;
  df: number | null;
  p: number | null;
  /** The smallest |diff| these spreads and counts could call beyond noise (null when not testable). */
  threshold: number | null;
  verdict: SeedVerdict;
  /** Why a pair is not testable, or '' . */
  note: string;
}

/** Options of {@link compareSeedGroups}. */
export interface CompareOptions {
  /** Metric compared. Default 'linearTest'. */
  metric: SeedMetric;
  /** Significance level of the verdict. Default 0.05. */
  alpha: number;
}

export const DEFAULT_COMPARE_OPTIONS: Readonly<CompareOptions> = Object.freeze({ metric: 'linearTest', alpha: 0.05 });

/**
 * Every pair of rows on the same backbone, in row order. A pair where either row has fewer than two
 * seeds with the metric is listed as 'not testable' (one seed says nothing about the spread).
 * No correction for multiple comparisons: with k pairs, about 0.05·k of them pass by chance.
 */
export function compareSeedGroups(
  groups: readonly SeedGroup[],
  options: Partial<CompareOptions> = {},
): SeedComparison[] {
  const o = { ...DEFAULT_COMPARE_OPTIONS, ...options };
  const out: SeedComparison[] = [];
  for (let i = 0; i < groups.length; i++) {
    for (let j = i + 1; j < groups.length; j++) {
      if (groups[i].backbone !== groups[j].backbone) continue;
      let [ga, gb] = [groups[i], groups[j]];
      const [sa, sb] = [ga[o.metric], gb[o.metric]];
      if (sa.mean === null && sb.mean === null) continue;
      if ((sb.mean ?? -Infinity) > (sa.mean ?? -Infinity)) [ga, gb] = [gb, ga];
      const A = ga[o.metric];
      const B = gb[o.metric];
      const base = {
        metric: o.metric,
        backbone: ga.backbone,
        a: ga.label,
        b: gb.label,
        nA: A.n,
        nB: B.n,
        meanA: A.mean,
        meanB: B.mean,
      };
      if (A.n < 2 || B.n < 2) {
        const few = [A.n < 2 ? `${ga.label} has ${A.n}` : '', B.n < 2 ? `${gb.label} has ${B.n}` : '']
          .filter(Boolean)
          .join(', ');
        out.push({
          ...base,
          diff: A.mean !== null && B.mean !== null ? A.mean - B.mean : null,
          t: null,
          df: null,
          p: null,
          threshold: null,
          verdict: 'not testable',
          note: `needs 2+ seeds each: ${few}`,
        });
        continue;
      }
      const w = welchTTest(A.values, B.values, o.alpha);
      out.push({
        ...base,
        diff: w.diff,
        t: w.t,
        df: w.df,
        p: w.p,
        threshold: w.threshold,
        verdict: w.p < o.alpha ? 'beyond seed noise' : 'within seed noise',
        note: '',
      });
    }
  }
  return out;
}

/**
 * A short, honest paragraph on what the comparisons can and cannot say: how many seeds, the
 * degrees of freedom, the differences the test could detect, and that "within noise" is not "equal".
 */
export function seedNoiseNote(comparisons: readonly SeedComparison[], alpha = DEFAULT_COMPARE_OPTIONS.alpha): string {
  const tested = comparisons.filter((c) => c.p !== null);
  const few = [...new Set(comparisons.flatMap((c) => [c.nA < 2 ? c.a : '', c.nB < 2 ? c.b : '']).filter(Boolean))];
  const fewNote = few.length ? ` Not tested, fewer than 2 seeds: ${few.join(', ')}.` : '';
  if (tested.length === 0) {
    return comparisons.length === 0
      ? 'No two rows share a backbone, so nothing is compared.'
      : `No comparison has 2+ seeds on both sides, so no difference can be told from seed noise yet: train more seeds.${fewNote}`;
  }
  const beyond = tested.filter((c) => c.verdict === 'beyond seed noise').length;
  const ns = [...new Set(tested.flatMap((c) => [c.nA, c.nB]))].sort((x, y) => x - y);
  const dfs = tested.map((c) => c.df as number);
  const th = tested.map((c) => c.threshold as number);
  const r = (v: number, d = 1) => v.toFixed(d);
  return (
    [
      `Welch's t-test, two-sided, at p < ${alpha}: ${beyond} of ${tested.length} testable comparisons differ beyond seed noise.`,
      `With ${ns.join(' or ')} seeds per row the test has ${r(Math.min(...dfs))} to ${r(Math.max(...dfs))} degrees of freedom, so it only detects differences of about ${r(Math.min(...th), 2)} to ${r(Math.max(...th), 2)} points (the "detectable" column) and has low power:`,
      `"within seed noise" means these seeds cannot tell the rows apart, not that the methods are equal.`,
      `No correction for ${tested.length} comparisons is applied; at p < ${alpha} about ${r(alpha * tested.length)} of them would pass by chance alone.`,
    ].join(' ') + fewNote
  );
}

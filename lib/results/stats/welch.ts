/**
 * Welch's unequal-variance t-test (Welch 1947; Welch-Satterthwaite degrees of freedom): does the
 * difference of two groups' means stand out from the spread between seeds? Two-sided.
 */
import { summarize } from './describe';
import { studentTQuantile, studentTTwoSided } from './studentT';

export interface WelchResult {
  /** mean(a) - mean(b). */
  diff: number;
  /** Standard error of the difference, sqrt(s_a²/n_a + s_b²/n_b). */
  se: number;
  /** diff / se (±Infinity when both groups have zero spread and different means). */
  t: number;
  /** Welch-Satterthwaite degrees of freedom (n_a + n_b - 2 when both spreads are zero). */
  df: number;
  /** Two-sided p-value. */
  p: number;
  /** Significance level the threshold is for. */
  alpha: number;
  /**
   * The smallest |diff| that would reach p < alpha with these spreads and counts: t_{1-alpha/2, df} · se.
   * With 3 seeds per group df is 2 to 4, so this is 2.8 to 4.3 standard errors: the test has low power.
   */
  threshold: number;
}

/** Welch's t-test of mean(a) vs mean(b); each group needs at least 2 values. */
export function welchTTest(a: readonly number[], b: readonly number[], alpha = 0.05): WelchResult {
  if (a.length < 2 || b.length < 2)
    throw new Error(`welchTTest: each group needs at least 2 values, got ${a.length} and ${b.length}`);
  if (!(alpha > 0 && alpha < 1)) throw new Error(`welchTTest: alpha must be in (0, 1), got ${alpha}`);
  const sa = summarize(a);
  const sb = summarize(b);
  const va = (sa.std as number) ** 2 / sa.n;
  const vb = (sb.std as number) ** 2 / sb.n;
  const diff = (sa.mean as number) - (sb.mean as number);
  const se = Math.sqrt(va + vb);
  if (se === 0) {
    // No spread at all (e.g. a deterministic baseline): any difference is exact, none is noise.
    return {
      diff,
      se,
      t: diff === 0 ? 0 : Math.sign(diff) * Infinity,
      df: sa.n + sb.n - 2,
      p: diff === 0 ? 1 : 0,
      alpha,
      threshold: 0,
    };
  }
  const df = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1));
  const t = diff / se;
  return { diff, se, t, df, p: studentTTwoSided(t, df), alpha, threshold: studentTQuantile(1 - alpha / 2, df) * se };
}

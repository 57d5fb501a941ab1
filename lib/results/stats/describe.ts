/** Mean and sample standard deviation of a handful of numbers (one metric over training seeds). */

/** A metric over seeds: its values, their mean and sample standard deviation (n - 1). */
export interface Summary {
  /** How many values. */
  n: number;
  /** The values, in seed order. */
  values: number[];
  /** Arithmetic mean; null without values. */
  mean: number | null;
  /** Sample standard deviation (divides by n - 1); null with fewer than 2 values. */
  std: number | null;
}

/** Mean and sample (n - 1) standard deviation; non-finite values are an error, not skipped. */
export function summarize(values: readonly number[]): Summary {
  for (const v of values)
    if (!Number.isFinite(v)) throw new Error(`summarize: non-finite value ${v} in [${values.join(', ')}]`);
  const n = values.length;
  if (n === 0) return { n, values: [], mean: null, std: null };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { n, values: [...values], mean, std: null };
  // Two-pass variance (no cancellation from sum of squares).
  const ss = values.reduce((a, v) => a + (v - mean) * (v - mean), 0);
  return { n, values: [...values], mean, std: Math.sqrt(ss / (n - 1)) };
}

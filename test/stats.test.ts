/**
 * lib/results/stats against mpmath at 50 digits (test/reference/stats_ref.py; mpmath's betainc is a
 * hypergeometric series, independent of our continued fraction), closed forms of Student's t for
 * small integer df, and printed table values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import {
  logGamma,
  regularizedIncompleteBeta,
  studentTCdf,
  studentTQuantile,
  studentTTwoSided,
} from '../lib/results/stats/studentT';
import { summarize } from '../lib/results/stats/describe';
import { welchTTest } from '../lib/results/stats/welch';

interface Ref {
  ibeta: Array<{ x: number; a: number; b: number; value: number }>;
  logGamma: Array<{ x: number; value: number }>;
  tCdf: Array<{ t: number; df: number; cdf: number; twoSided: number }>;
  tQuantile: Array<{ p: number; df: number; q: number }>;
  welch: Array<{
    a: number[];
    b: number[];
    diff: number;
    t: number;
    df: number;
    p: number;
    threshold: number;
    stdA: number;
    stdB: number;
  }>;
}
const ref = JSON.parse(fs.readFileSync(path.join(__dirname, 'reference', 'stats_ref.json'), 'utf8')) as Ref;

function close(got: number, want: number, rel: number, abs: number, what: string): void {
  assert.ok(Math.abs(got - want) <= abs + rel * Math.abs(want), `${what}: got ${got}, want ${want}`);
}

test('logGamma matches mpmath.loggamma', () => {
  for (const c of ref.logGamma) close(logGamma(c.x), c.value, 1e-13, 1e-13, `lnΓ(${c.x})`);
  assert.throws(() => logGamma(0), /positive/);
});

test('regularized incomplete beta matches mpmath.betainc on both sides of the continued-fraction switch', () => {
  for (const c of ref.ibeta)
    close(regularizedIncompleteBeta(c.x, c.a, c.b), c.value, 1e-12, 1e-15, `I_${c.x}(${c.a}, ${c.b})`);
  assert.equal(regularizedIncompleteBeta(0, 2, 3), 0);
  assert.equal(regularizedIncompleteBeta(1, 2, 3), 1);
  assert.throws(() => regularizedIncompleteBeta(1.5, 2, 3), /\[0, 1\]/);
});

test("Student's t CDF and two-sided tail match mpmath, including non-integer df", () => {
  for (const c of ref.tCdf) {
    close(studentTCdf(c.t, c.df), c.cdf, 1e-12, 1e-15, `cdf(${c.t}; ${c.df})`);
    close(studentTTwoSided(c.t, c.df), c.twoSided, 1e-11, 1e-16, `P(|T|>=${c.t}; ${c.df})`);
  }
});

test("Student's t CDF equals its closed forms for df = 1, 2, 3", () => {
  for (const t of [-7, -1.3, 0, 0.4, 2.2, 9]) {
    close(studentTCdf(t, 1), 0.5 + Math.atan(t) / Math.PI, 1e-13, 1e-15, `Cauchy ${t}`);
    close(studentTCdf(t, 2), 0.5 + t / (2 * Math.sqrt(2 + t * t)), 1e-13, 1e-15, `df 2 at ${t}`);
    const u = t / Math.sqrt(3);
    close(studentTCdf(t, 3), 0.5 + (u / (1 + u * u) + Math.atan(u)) / Math.PI, 1e-13, 1e-15, `df 3 at ${t}`);
  }
});

test('t quantiles match mpmath and the printed two-sided 5 % table', () => {
  for (const c of ref.tQuantile) close(studentTQuantile(c.p, c.df), c.q, 1e-10, 1e-12, `q(${c.p}; ${c.df})`);
  // Any t table, 0.975 column.
  const table: Array<[number, number]> = [
    [1, 12.706],
    [2, 4.303],
    [3, 3.182],
    [4, 2.776],
    [10, 2.228],
    [30, 2.042],
  ];
  for (const [df, q] of table) assert.equal(studentTQuantile(0.975, df).toFixed(3), q.toFixed(3), `df ${df}`);
  close(studentTQuantile(0.025, 4), -studentTQuantile(0.975, 4), 1e-14, 0, 'symmetry');
});

test('summarize gives the mean and the sample (n - 1) std; one value has no std', () => {
  const s = summarize([38.53, 34.45, 35.43]);
  close(s.mean as number, 36.13666666666667, 1e-14, 0, 'mean');
  // results/cpu/dino-recipe/README.md: 36.14 ± 2.13.
  assert.equal((s.std as number).toFixed(2), '2.13');
  close(s.std as number, ref.welch[0].stdA, 1e-13, 0, 'std vs mpmath');
  assert.deepEqual(summarize([31.69]), { n: 1, values: [31.69], mean: 31.69, std: null });
  assert.deepEqual(summarize([]), { n: 0, values: [], mean: null, std: null });
  assert.throws(() => summarize([1, NaN]), /non-finite/);
});

test("Welch's t-test matches mpmath (and Wikipedia's worked example)", () => {
  for (const c of ref.welch) {
    const w = welchTTest(c.a, c.b);
    close(w.diff, c.diff, 1e-12, 1e-12, 'diff');
    close(w.t, c.t, 1e-12, 0, 't');
    close(w.df, c.df, 1e-12, 0, 'df');
    close(w.p, c.p, 1e-10, 0, 'p');
    close(w.threshold, c.threshold, 1e-9, 0, 'threshold');
    // At the threshold the test is exactly at alpha.
    close(studentTTwoSided(w.threshold / w.se, w.df), 0.05, 1e-9, 0, 'p at the threshold');
  }
  const wiki = welchTTest(ref.welch[3].a, ref.welch[3].b);
  assert.equal(wiki.t.toFixed(2), '-2.46');
  assert.equal(wiki.p.toFixed(3), '0.021');
  // Swapping the groups flips the sign only.
  const ab = welchTTest([1, 2, 4], [5, 6.5, 7]);
  const ba = welchTTest([5, 6.5, 7], [1, 2, 4]);
  close(ab.t, -ba.t, 1e-14, 0, 'antisymmetric t');
  close(ab.p, ba.p, 1e-14, 0, 'symmetric p');
});

test("Welch's t-test: zero spread on both sides, too few values", () => {
  assert.deepEqual(welchTTest([2, 2], [2, 2, 2]).p, 1);
  const exact = welchTTest([3, 3], [2, 2]);
  assert.equal(exact.p, 0);
  assert.equal(exact.t, Infinity);
  assert.throws(() => welchTTest([1], [1, 2]), /at least 2 values/);
});

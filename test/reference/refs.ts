/** Loads test/reference/refs.json (written by make_refs.py) and compares numbers at a relative tolerance. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';

export type Refs = Record<string, any>;

let cached: Refs | undefined;

export function loadRefs(): Refs {
  cached ??= JSON.parse(fs.readFileSync(path.join(__dirname, 'refs.json'), 'utf8')) as Refs;
  return cached;
}

/** Flattens nested arrays of numbers. */
export function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

/** |a − b| ≤ rtol·max(|b|, floor) elementwise; floor guards entries near zero (set from the data's scale). */
export function assertClose(
  actual: ArrayLike<number> | number,
  expected: unknown,
  rtol: number,
  what: string,
  floor = 1e-6,
): void {
  const a = typeof actual === 'number' ? [actual] : Array.from(actual);
  const e = flat(expected);
  assert.equal(a.length, e.length, `${what}: ${a.length} values, expected ${e.length}`);
  for (let i = 0; i < e.length; i++) {
    const tol = rtol * Math.max(Math.abs(e[i]), floor);
    assert.ok(Math.abs(a[i] - e[i]) <= tol, `${what}[${i}]: got ${a[i]}, expected ${e[i]} (tolerance ${tol})`);
  }
}

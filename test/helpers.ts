/** Helpers shared by the tests (not a test file itself: `npm test` runs test/*.test.ts). */
import assert from 'node:assert/strict';

/** max |a - b| / max |a|: the error relative to the tensor's scale. */
export function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(a[i]));
  }
  return den === 0 ? num : num / den;
}

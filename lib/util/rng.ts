/**
 * Seeded, serialisable random numbers.
 *
 * Everything random in dinotwins is a pure function of (seed, stream, counter), so a run
 * resumed from a checkpoint draws exactly the numbers an uninterrupted run would have drawn.
 * The generator is mulberry32 over a 32-bit state; `deriveSeed` mixes integers with splitmix32.
 */

/** Mixes any number of integers into one 32-bit seed (splitmix32 finaliser per input). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    if (!Number.isFinite(p)) throw new Error(`deriveSeed: expected finite integers, got ${p}`);
    h = (h + Math.imul((p | 0) ^ Math.floor(p / 4294967296), 0x85ebca6b)) | 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x846ca68b);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

export interface RngState {
  state: number;
}

/** mulberry32: small, fast, good enough for shuffles, crops and initialisation. */
export class Rng {
  private s: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    this.s = seed >>> 0;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.s = state.state >>> 0;
    return r;
  }

  getState(): RngState {
    return { state: this.s };
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = this.next();
    while (u <= 1e-12) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Normal truncated to [-2, 2] standard deviations (as timm/DINO's trunc_normal_). */
  truncNormal(): number {
    for (;;) {
      const z = this.normal();
      if (z >= -2 && z <= 2) return z;
    }
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

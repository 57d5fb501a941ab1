/**
 * Data-movement loops over the wasm heap in JavaScript. The stock wasm Transpose, strided Slice
 * and rank-6 Pad walk element by element through index arithmetic (2-10 ns per element); these
 * typed-array loops run at memory speed and are what our kernels use to lay operands out for
 * XNNPACK's matMul.
 */

/** Tile edge of the blocked transpose (32 x 32 floats = 4 KiB per tile). */
const TILE = 32;

/**
 * out[b, j, i] = src[b, i, j] for b < batch, i < rows, j < cols (row-major, both contiguous),
 * with srcOffset / outOffset in elements. Cache-blocked.
 */
export function transposeBatched(
  src: Float32Array,
  out: Float32Array,
  batch: number,
  rows: number,
  cols: number,
  srcOffset = 0,
  outOffset = 0,
): void {
  const plane = rows * cols;
  for (let b = 0; b < batch; b++) {
    const s0 = srcOffset + b * plane;
    const o0 = outOffset + b * plane;
    for (let i0 = 0; i0 < rows; i0 += TILE) {
      const i1 = Math.min(rows, i0 + TILE);
      for (let j0 = 0; j0 < cols; j0 += TILE) {
        const j1 = Math.min(cols, j0 + TILE);
        for (let i = i0; i < i1; i++) {
          const si = s0 + i * cols;
          for (let j = j0; j < j1; j++) out[o0 + j * rows + i] = src[si + j];
        }
      }
    }
  }
}

/** Geometry of an NHWC convolution as im2col needs it. */
export interface ConvGeometry {
  /** Input height, width, channels. */
  h: number;
  w: number;
  c: number;
  /** Output height and width. */
  ho: number;
  wo: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  /** Top and left zero padding. */
  top: number;
  left: number;
}

/**
 * Transposed im2col: for images [n0, n1) of x [N, H, W, C], writes
 * out[(i * kw + j) * C + c, m] = x[n, y*sh + i - top, x*sw + j - left, c] (0 outside the image),
 * m = ((n - n0) * Ho + y) * Wo + x, so out is [kh * kw * C, (n1 - n0) * Ho * Wo]: the A operand of
 * dW = cols^T dY. `xt` must hold x laid out as [C, N, H, W] (`channelsFirst`): every output row is
 * then a shifted copy of runs of one channel's rows, written in order with no gather.
 */
export function im2colT(xt: Float32Array, out: Float32Array, g: ConvGeometry, n: number, n0: number, n1: number): void {
  const { h, w, c, ho, wo, kh, kw, sh, sw, top, left } = g;
  const m = (n1 - n0) * ho * wo;
  if (sh === 1 && sw === 1 && ho === h && wo === w) {
    im2colTSame(xt, out, g, n, n0, n1);
    return;
  }
  for (let i = 0; i < kh; i++) {
    const di = i - top;
    for (let j = 0; j < kw; j++) {
      const dj = j - left;
      // Output columns x with 0 <= x*sw + dj < w.
      const x0 = Math.min(wo, Math.max(0, Math.ceil(-dj / sw)));
      const x1 = Math.max(x0, Math.min(wo, Math.floor((w - 1 - dj) / sw) + 1));
      for (let ch = 0; ch < c; ch++) {
        let o = ((i * kw + j) * c + ch) * m;
        for (let b = n0; b < n1; b++) {
          const plane = (ch * n + b) * h;
          for (let y = 0; y < ho; y++, o += wo) {
            const yy = y * sh + di;
            if (yy < 0 || yy >= h) {
              out.fill(0, o, o + wo);
              continue;
            }
            const src = (plane + yy) * w + dj;
            for (let x = 0; x < x0; x++) out[o + x] = 0;
            if (sw === 1) for (let x = x0; x < x1; x++) out[o + x] = xt[src + x];
            else for (let x = x0; x < x1; x++) out[o + x] = xt[src + x * sw];
            for (let x = x1; x < wo; x++) out[o + x] = 0;
          }
        }
      }
    }
  }
}

/**
 * `im2colT` for stride 1 and an output as large as the input: each output row (tap, channel) is
 * the channel's [N, H, W] plane shifted by (i - top) * W + (j - left), one native copy, then the
 * positions whose source lies outside the image (it wrapped into a neighbouring row or image)
 * are zeroed.
 */
function im2colTSame(xt: Float32Array, out: Float32Array, g: ConvGeometry, n: number, n0: number, n1: number): void {
  const { h, w, c, kh, kw, top, left } = g;
  const hw = h * w;
  const m = (n1 - n0) * hw;
  for (let i = 0; i < kh; i++) {
    const di = i - top;
    for (let j = 0; j < kw; j++) {
      const dj = j - left;
      const shift = di * w + dj;
      for (let ch = 0; ch < c; ch++) {
        const o = ((i * kw + j) * c + ch) * m;
        const plane = (ch * n + n0) * hw; // start of image n0 of this channel in xt
        // out[o + p] = xt[plane + p + shift] for p in [0, m), clamped to this channel's images.
        const lo = Math.max(0, -(plane + shift - ch * n * hw));
        const hi = Math.min(m, (ch + 1) * n * hw - plane - shift);
        if (lo > 0) out.fill(0, o, o + lo);
        if (hi > lo) out.set(xt.subarray(plane + shift + lo, plane + shift + hi), o + lo);
        if (hi < m) out.fill(0, o + Math.max(lo, hi), o + m);
        for (let b = 0; b < n1 - n0; b++) {
          const ob = o + b * hw;
          if (di < 0) out.fill(0, ob, ob + Math.min(h, -di) * w);
          else if (di > 0) out.fill(0, ob + Math.max(0, h - di) * w, ob + hw);
          if (dj !== 0) {
            const x0 = dj < 0 ? 0 : Math.max(0, w - dj);
            const x1 = dj < 0 ? Math.min(w, -dj) : w;
            for (let y = 0; y < h; y++) for (let x = x0; x < x1; x++) out[ob + y * w + x] = 0;
          }
        }
      }
    }
  }
}

/** x [N, H, W, C] -> [C, N, H, W] (`out` must hold at least x's size). */
export function channelsFirst(x: Float32Array, out: Float32Array, n: number, h: number, w: number, c: number): void {
  const p = n * h * w;
  if (c > 64) {
    transposeBatched(x, out, 1, p, c);
    return;
  }
  // Few channels: one sequential read, c sequential write streams.
  for (let q = 0, s0 = 0; q < p; q++, s0 += c) for (let ch = 0; ch < c; ch++) out[ch * p + q] = x[s0 + ch];
}

/**
 * out[b, p, a] = src[a, p, b] for src [A, P, B] (swaps the outer and inner axes, keeps the
 * middle one): NHWC [N, H*W, C] -> [C, H*W, N]. Reads are contiguous.
 */
export function swapOuterInner(src: Float32Array, out: Float32Array, na: number, np: number, nb: number): void {
  const outStrideB = np * na;
  for (let a = 0; a < na; a++) {
    for (let p = 0; p < np; p++) {
      const s0 = (a * np + p) * nb;
      const o0 = p * na + a;
      for (let b = 0; b < nb; b++) out[o0 + b * outStrideB] = src[s0 + b];
    }
  }
}

/** out[q, a, :] = src[a, q, :] for src [A, Q, blk]: swaps two outer axes, moving blk-long runs. */
export function swapOuterBlocks(src: Float32Array, out: Float32Array, na: number, nq: number, blk: number): void {
  for (let a = 0; a < na; a++) {
    for (let q = 0; q < nq; q++) {
      const s0 = (a * nq + q) * blk;
      const o0 = (q * na + a) * blk;
      for (let k = 0; k < blk; k++) out[o0 + k] = src[s0 + k];
    }
  }
}

/**
 * Filter [kh, kw, Ci, Co] rotated by 180 degrees with its channel axes swapped:
 * out[i, j, co, ci] = w[kh-1-i, kw-1-j, ci, co], i.e. [kh, kw, Co, Ci].
 */
export function flipFilterInto(
  w: Float32Array,
  out: Float32Array,
  kh: number,
  kw: number,
  ci: number,
  co: number,
): void {
  const tap = ci * co;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      transposeBatched(w, out, 1, ci, co, ((kh - 1 - i) * kw + (kw - 1 - j)) * tap, (i * kw + j) * tap);
    }
  }
}

/**
 * Writes phase (rh, rw) of a stride-(sh, sw) image: dst[n, rh + sh*u, rw + sw*v, :] = src[n, u, v, :]
 * for src [N, Hr, Wr, C] into dst [N, H, W, C].
 */
export function scatterPhase(
  src: Float32Array,
  dst: Float32Array,
  n: number,
  hr: number,
  wr: number,
  c: number,
  h: number,
  w: number,
  rh: number,
  rw: number,
  sh: number,
  sw: number,
): void {
  for (let b = 0; b < n; b++) {
    for (let u = 0; u < hr; u++) {
      const rowDst = (b * h + rh + sh * u) * w;
      const rowSrc = (b * hr + u) * wr;
      for (let v = 0; v < wr; v++) {
        const d = (rowDst + rw + sw * v) * c;
        const s0 = (rowSrc + v) * c;
        for (let k = 0; k < c; k++) dst[d + k] = src[s0 + k];
      }
    }
  }
}

type Typed = Float32Array | Int32Array | Uint8Array;

/**
 * Collapses a transpose to its essentials: drops size-1 axes and merges input axes that stay
 * adjacent and in order in the output. Returns the reduced input shape and permutation.
 */
export function reducePermutation(
  shape: readonly number[],
  perm: readonly number[],
): { shape: number[]; perm: number[] } {
  const keep = perm.filter((p) => shape[p] !== 1);
  // Runs of consecutive input axes in output order.
  const runs: number[][] = [];
  for (const p of keep) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1] + 1 === p) last.push(p);
    else runs.push([p]);
  }
  const order = runs.map((r) => r[0]).sort((a, b) => a - b);
  const newShape = order.map((first) => runs.find((r) => r[0] === first)!.reduce((acc, ax) => acc * shape[ax], 1));
  const newPerm = runs.map((r) => order.indexOf(r[0]));
  return { shape: newShape, perm: newPerm };
}

/** out = transpose(src, perm) for src of `shape` (row-major), any rank. */
export function permute(src: Typed, out: Typed, shape: readonly number[], perm: readonly number[]): void {
  const r = reducePermutation(shape, perm);
  const rank = r.shape.length;
  if (rank <= 1) {
    out.set(src.subarray(0, out.length));
    return;
  }
  if (rank === 2 || (rank === 3 && r.perm[0] === 0 && r.perm[1] === 2)) {
    const [batch, rows, cols] = rank === 2 ? [1, r.shape[0], r.shape[1]] : r.shape;
    transposeBatchedAny(src, out, batch, rows, cols);
    return;
  }
  const inStrides = new Array<number>(rank);
  inStrides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) inStrides[d] = inStrides[d + 1] * r.shape[d + 1];
  const outShape = r.perm.map((p) => r.shape[p]);
  const stride = r.perm.map((p) => inStrides[p]); // input stride of each output axis
  const inner = outShape[rank - 1];
  const innerStride = stride[rank - 1];
  const idx = new Array<number>(rank - 1).fill(0);
  let base = 0;
  let o = 0;
  const total = out.length;
  while (o < total) {
    for (let t = 0, p = base; t < inner; t++, p += innerStride) out[o++] = src[p];
    // Odometer over the outer output axes.
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < outShape[d]) break;
      base -= stride[d] * outShape[d];
      idx[d] = 0;
    }
  }
}

/** `transposeBatched` for any typed array. */
function transposeBatchedAny(src: Typed, out: Typed, batch: number, rows: number, cols: number): void {
  const plane = rows * cols;
  for (let b = 0; b < batch; b++) {
    const s0 = b * plane;
    for (let i0 = 0; i0 < rows; i0 += TILE) {
      const i1 = Math.min(rows, i0 + TILE);
      for (let j0 = 0; j0 < cols; j0 += TILE) {
        const j1 = Math.min(cols, j0 + TILE);
        for (let i = i0; i < i1; i++) {
          const si = s0 + i * cols;
          for (let j = j0; j < j1; j++) out[s0 + j * rows + i] = src[si + j];
        }
      }
    }
  }
}

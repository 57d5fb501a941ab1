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
export function transposeBatched(src: Float32Array, out: Float32Array, batch: number, rows: number, cols: number, srcOffset = 0, outOffset = 0): void {
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
 * dW = cols^T dY. Reads are contiguous runs of C floats; each row of out is written in order.
 */
export function im2colT(x: Float32Array, out: Float32Array, g: ConvGeometry, n0: number, n1: number): void {
  const { h, w, c, ho, wo, kh, kw, sh, sw, top, left } = g;
  const m = (n1 - n0) * ho * wo;
  // Columns are handled in blocks of IM2COL_BLOCK so that each output row is written in runs
  // (a plain per-column loop writes one float per cache line).
  const src = new Int32Array(IM2COL_BLOCK);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const rowBase = (i * kw + j) * c * m;
      for (let col0 = 0; col0 < m; col0 += IM2COL_BLOCK) {
        const nb = Math.min(IM2COL_BLOCK, m - col0);
        for (let t = 0; t < nb; t++) {
          const col = col0 + t;
          const xo = col % wo;
          const rest = (col - xo) / wo;
          const y = rest % ho;
          const n = n0 + (rest - y) / ho;
          const xr = y * sh + i - top;
          const xc = xo * sw + j - left;
          src[t] = xr >= 0 && xr < h && xc >= 0 && xc < w ? ((n * h + xr) * w + xc) * c : -1;
        }
        for (let ch = 0; ch < c; ch++) {
          const o = rowBase + ch * m + col0;
          for (let t = 0; t < nb; t++) {
            const p = src[t];
            out[o + t] = p >= 0 ? x[p + ch] : 0;
          }
        }
      }
    }
  }
}

/** Column block of `im2colT`. */
const IM2COL_BLOCK = 64;

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
export function flipFilterInto(w: Float32Array, out: Float32Array, kh: number, kw: number, ci: number, co: number): void {
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
export function scatterPhase(src: Float32Array, dst: Float32Array, n: number, hr: number, wr: number, c: number, h: number, w: number, rh: number, rw: number, sh: number, sw: number): void {
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
export function reducePermutation(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
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

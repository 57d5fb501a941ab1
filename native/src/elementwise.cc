// Element-wise arithmetic and the full sum on big float32 tensors: the same IEEE operations as the
// wasm kernels (so the same bits), on every thread of the pool with AVX where the CPU has it. The
// sum accumulates in double over a fixed split into parts.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <cstring>
#include <vector>

#include "internal.h"
#include "ops.h"

namespace dt {

namespace {

int parts_for(int64_t n) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(shared_parts(), n / 4096 + 1))); }

}  // namespace

void square(const float *x, int64_t n, float *out) {
  const int parts = parts_for(n);
  shared_pool().run(parts, [&](int p) {
    int64_t s, e;
    part_range(n, parts, p, s, e);
    const float *__restrict xi = x;
    float *__restrict o = out;
    for (int64_t i = s; i < e; i++) o[i] = xi[i] * xi[i];
  }, n >= kParallelElements);
}

double sum_all(const float *x, int64_t n) {
  // Fixed parts (independent of the thread count) of fixed 8-lane double accumulators.
  const int parts = parts_for(n);
  std::vector<double> partial(parts, 0.0);
  shared_pool().run(parts, [&](int p) {
    int64_t s, e;
    part_range(n, parts, p, s, e);
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = s;
    for (; i + 8 <= e; i += 8)
      for (int l = 0; l < 8; l++) acc[l] += x[i + l];
    for (int l = 0; i < e; i++, l++) acc[l] += x[i];
    double t = 0;
    for (int l = 0; l < 8; l++) t += acc[l];
    partial[p] = t;
  }, n >= kParallelElements);
  double t = 0;
  for (double v : partial) t += v;
  return t;
}

void transpose4(const uint32_t *x, const int64_t *shape, const int *perm, int rank, uint32_t *out) {
  std::vector<int64_t> in_stride(rank), out_shape(rank), stride(rank);
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    in_stride[d] = s;
    s *= shape[d];
  }
  const int64_t total = s;
  for (int d = 0; d < rank; d++) {
    out_shape[d] = shape[perm[d]];
    stride[d] = in_stride[perm[d]];  // input stride of output axis d
  }
  const int64_t inner = out_shape[rank - 1], inner_stride = stride[rank - 1];
  const int64_t rows = total / inner;  // output rows of `inner` elements
  const int parts = parts_for(total);
  shared_pool().run(parts, [&](int p) {
    int64_t r0, r1;
    part_range(rows, parts, p, r0, r1);
    if (r0 >= r1) return;
    // Input offset of output row r0 (odometer over the outer output axes).
    std::vector<int64_t> idx(rank > 1 ? rank - 1 : 1, 0);
    int64_t base = 0, rem = r0;
    for (int d = rank - 2; d >= 0; d--) {
      idx[d] = rem % out_shape[d];
      rem /= out_shape[d];
      base += idx[d] * stride[d];
    }
    uint32_t *o = out + r0 * inner;
    for (int64_t row = r0; row < r1; row++) {
      const uint32_t *src = x + base;
      if (inner_stride == 1) std::memcpy(o, src, inner * sizeof(uint32_t));
      else
        for (int64_t j = 0; j < inner; j++) o[j] = src[j * inner_stride];
      o += inner;
      for (int d = rank - 2; d >= 0; d--) {
        base += stride[d];
        if (++idx[d] < out_shape[d]) break;
        base -= stride[d] * out_shape[d];
        idx[d] = 0;
      }
    }
  }, total >= kParallelElements);
}

void sum_rows(const float *x, int64_t r, int64_t c, float *out) {
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(shared_parts(), r)));
  std::vector<double> partial(static_cast<size_t>(parts) * c, 0.0);
  shared_pool().run(parts, [&](int p) {
    int64_t b, e;
    part_range(r, parts, p, b, e);
    double *__restrict acc = &partial[static_cast<size_t>(p) * c];
    for (int64_t i = b; i < e; i++) {
      const float *__restrict row = x + i * c;
      for (int64_t j = 0; j < c; j++) acc[j] += row[j];
    }
  }, r * c >= kParallelElements);
  for (int64_t j = 0; j < c; j++) {
    double t = 0;
    for (int p = 0; p < parts; p++) t += partial[static_cast<size_t>(p) * c + j];
    out[j] = static_cast<float>(t);
  }
}

namespace {

template <int kOp, class T>
inline auto apply2(T x, T y) {
  if constexpr (kOp == 0) return x + y;
  else if constexpr (kOp == 1) return x - y;
  else if constexpr (kOp == 2) return x * y;
  else if constexpr (kOp == 3) return x / y;
  else if constexpr (kOp == 4) return (x != x || y != y) ? x + y : (x > y ? x : y);
  else if constexpr (kOp == 5) return (x != x || y != y) ? x + y : (x < y ? x : y);
  else if constexpr (kOp == 6) return static_cast<uint8_t>(x == y);
  else if constexpr (kOp == 7) return static_cast<uint8_t>(x != y);
  else if constexpr (kOp == 8) return static_cast<uint8_t>(x > y);
  else if constexpr (kOp == 9) return static_cast<uint8_t>(x >= y);
  else if constexpr (kOp == 10) return static_cast<uint8_t>(x < y);
  else if constexpr (kOp == 11) return static_cast<uint8_t>(x <= y);
  else if constexpr (kOp == 12) return static_cast<uint8_t>(x && y);
  else return static_cast<uint8_t>(x || y);
}

// One row: a and b each a vector (stride 1) or a value (stride 0).
template <int kOp, class T, class O, bool kAv, bool kBv>
void row_op(const T *__restrict a, const T *__restrict b, int64_t n, O *__restrict out) {
  const T av = a[0], bv = b[0];
  for (int64_t j = 0; j < n; j++) out[j] = static_cast<O>(apply2<kOp>(kAv ? a[j] : av, kBv ? b[j] : bv));
}

template <int kOp, class T, class O>
void binary_typed(const T *a, int am, const T *b, int bm, int64_t rows, int64_t cols, O *out) {
  const int64_t n = rows * cols;
  // Parts over rows; a row of one value per operand is one loop with two scalars.
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(shared_parts(), n / 4096 + 1)));
  const bool av = am == kFull || am == kCol, bv = bm == kFull || bm == kCol;
  shared_pool().run(parts, [&](int p) {
    int64_t s, e;
    // Elements [s, e) of the output, walked row by row.
    part_range(n, parts, p, s, e);
    while (s < e) {
      const int64_t r = s / cols, c0 = s % cols, c1 = std::min<int64_t>(cols, c0 + (e - s));
      const T *ar = am == kFull ? a + r * cols + c0 : am == kCol ? a + c0 : am == kRow ? a + r : a;
      const T *br = bm == kFull ? b + r * cols + c0 : bm == kCol ? b + c0 : bm == kRow ? b + r : b;
      O *o = out + r * cols + c0;
      const int64_t len = c1 - c0;
      if (av && bv) row_op<kOp, T, O, true, true>(ar, br, len, o);
      else if (av) row_op<kOp, T, O, true, false>(ar, br, len, o);
      else if (bv) row_op<kOp, T, O, false, true>(ar, br, len, o);
      else row_op<kOp, T, O, false, false>(ar, br, len, o);
      s += len;
    }
  }, n >= kParallelElements);
}

template <int kOp>
void binary_f(const void *a, int am, const void *b, int bm, int64_t rows, int64_t cols, void *out) {
  using O = std::conditional_t<(kOp <= 5), float, uint8_t>;
  binary_typed<kOp, float, O>(static_cast<const float *>(a), am, static_cast<const float *>(b), bm, rows, cols, static_cast<O *>(out));
}

}  // namespace

void binary_bcast(int op, const void *a, int am, const void *b, int bm, int64_t rows, int64_t cols, void *out) {
  switch (op) {
    case 0: return binary_f<0>(a, am, b, bm, rows, cols, out);
    case 1: return binary_f<1>(a, am, b, bm, rows, cols, out);
    case 2: return binary_f<2>(a, am, b, bm, rows, cols, out);
    case 3: return binary_f<3>(a, am, b, bm, rows, cols, out);
    case 4: return binary_f<4>(a, am, b, bm, rows, cols, out);
    case 5: return binary_f<5>(a, am, b, bm, rows, cols, out);
    case 6: return binary_f<6>(a, am, b, bm, rows, cols, out);
    case 7: return binary_f<7>(a, am, b, bm, rows, cols, out);
    case 8: return binary_f<8>(a, am, b, bm, rows, cols, out);
    case 9: return binary_f<9>(a, am, b, bm, rows, cols, out);
    case 10: return binary_f<10>(a, am, b, bm, rows, cols, out);
    case 11: return binary_f<11>(a, am, b, bm, rows, cols, out);
    case 12:
      return binary_typed<12, uint8_t, uint8_t>(static_cast<const uint8_t *>(a), am, static_cast<const uint8_t *>(b), bm, rows, cols, static_cast<uint8_t *>(out));
    case 13:
      return binary_typed<13, uint8_t, uint8_t>(static_cast<const uint8_t *>(a), am, static_cast<const uint8_t *>(b), bm, rows, cols, static_cast<uint8_t *>(out));
    default: throw std::invalid_argument("binary: unknown op");
  }
}

void unary(int op, const void *x, int64_t n, float p0, float p1, void *out) {
  const int parts = parts_for(n);
  shared_pool().run(parts, [&](int p) {
    int64_t s, e;
    part_range(n, parts, p, s, e);
    if (op == 6) {
      const uint8_t *__restrict xi = static_cast<const uint8_t *>(x);
      uint8_t *__restrict o = static_cast<uint8_t *>(out);
      for (int64_t i = s; i < e; i++) o[i] = !xi[i];
      return;
    }
    const float *__restrict xi = static_cast<const float *>(x);
    float *__restrict o = static_cast<float *>(out);
    switch (op) {
      case 0: for (int64_t i = s; i < e; i++) o[i] = std::fabs(xi[i]); break;
      case 1: for (int64_t i = s; i < e; i++) o[i] = std::floor(xi[i]); break;
      case 2: for (int64_t i = s; i < e; i++) o[i] = std::ceil(xi[i]); break;
      case 3: for (int64_t i = s; i < e; i++) o[i] = -xi[i]; break;
      case 4: for (int64_t i = s; i < e; i++) o[i] = std::sqrt(xi[i]); break;
      // max then min, NaN passed through (as tfjs' clip).
      case 5: for (int64_t i = s; i < e; i++) { const float v = xi[i] < p0 ? p0 : xi[i]; o[i] = v > p1 ? p1 : v; } break;
      default: throw std::invalid_argument("unary: unknown op");
    }
  }, n >= kParallelElements);
}

void select(const uint8_t *cond, const float *a, int am, const float *b, int bm, int64_t n, float *out) {
  const int parts = parts_for(n);
  shared_pool().run(parts, [&](int p) {
    int64_t s, e;
    part_range(n, parts, p, s, e);
    const float av = a[0], bv = b[0];
    const bool afull = am == kFull, bfull = bm == kFull;
    for (int64_t i = s; i < e; i++) out[i] = cond[i] ? (afull ? a[i] : av) : (bfull ? b[i] : bv);
  }, n >= kParallelElements);
}

}  // namespace dt

// Element-wise arithmetic and the full sum on big float32 tensors: the same IEEE operations as the
// wasm kernels (so the same bits), on every thread of the pool with AVX where the CPU has it. The
// sum accumulates in double over a fixed split into parts.
#include <algorithm>
#include <cstring>
#include <vector>

#include "internal.h"
#include "ops.h"

namespace dt {

namespace {

int parts_for(int64_t n) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(shared_parts(), n / 4096 + 1))); }

template <int kOp, bool kAs, bool kBs>
void binary_range(const float *__restrict a, const float *__restrict b, int64_t s, int64_t e, float *__restrict out) {
  const float av = kAs ? a[0] : 0.f, bv = kBs ? b[0] : 0.f;
  for (int64_t i = s; i < e; i++) {
    const float x = kAs ? av : a[i], y = kBs ? bv : b[i];
    out[i] = kOp == 0 ? x + y : kOp == 1 ? x - y : kOp == 2 ? x * y : x / y;
  }
}

template <int kOp>
void binary_op(const float *a, bool as, const float *b, bool bs, int64_t s, int64_t e, float *out) {
  if (as) binary_range<kOp, true, false>(a, b, s, e, out);
  else if (bs) binary_range<kOp, false, true>(a, b, s, e, out);
  else binary_range<kOp, false, false>(a, b, s, e, out);
}

}  // namespace

void binary(int op, const float *a, int64_t a_n, const float *b, int64_t b_n, int64_t n, float *out) {
  const int parts = parts_for(n);
  const bool as = a_n == 1 && n > 1, bs = b_n == 1 && n > 1;
  shared_pool().run(parts, [&](int p) {
    int64_t s, e;
    part_range(n, parts, p, s, e);
    switch (op) {
      case 0: binary_op<0>(a, as, b, bs, s, e, out); break;
      case 1: binary_op<1>(a, as, b, bs, s, e, out); break;
      case 2: binary_op<2>(a, as, b, bs, s, e, out); break;
      default: binary_op<3>(a, as, b, bs, s, e, out); break;
    }
  }, n >= kParallelElements);
}

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

}  // namespace dt

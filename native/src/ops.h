// The kernels of the addon, on raw float pointers (NHWC activations, [kh, kw, in, out] filters,
// row-major matrices), as tfjs lays its tensors out. Each returns false when it does not handle a
// shape (the caller then uses the backend's own kernel); a oneDNN failure is thrown.
#pragma once

#include <cstdint>
#include <string>

namespace dt {

// Starts the thread pool: `threads` parts per kernel call, run by up to that many threads.
void init(int threads);
int threads();
// Runs every part of every call on the calling thread (tests).
void set_serial(bool serial);
long long parts_on_workers();
std::string onednn_version();
// Which oneDNN implementation runs each convolution direction of a shape (for the report).
std::string last_impl();

struct ConvShape {
  int n, h, w, ci;     // input NHWC
  int co, kh, kw;      // filter [kh, kw, ci, co]
  int sh, sw, dh, dw;  // strides, dilations (1 = none)
  int pt, pl, pb, pr;  // padding: top, left, bottom, right
  int oh, ow;          // output height, width
};

// y = conv(x, w) (+ bias) (then ReLU if relu).
bool conv2d_forward(const ConvShape &s, const float *x, const float *w, const float *bias, bool relu, float *y);
// dx = the input gradient of conv for dy.
bool conv2d_backward_data(const ConvShape &s, const float *dy, const float *w, float *dx);
// dw = the filter gradient of conv for x and dy.
bool conv2d_backward_weights(const ConvShape &s, const float *x, const float *dy, float *dw);

struct MatMulShape {
  int batch_a, batch_b;  // 1 or the output batch (broadcast)
  int m, k, n;
  bool trans_a, trans_b;  // a stored [k, m], b stored [n, k]
};

// c[b] = op(a[b]) op(b[b]) (+ bias [n]) (then ReLU if relu), c [max(batch_a, batch_b), m, n].
bool matmul(const MatMulShape &s, const float *a, const float *b, const float *bias, bool relu, float *c);

// Training batch norm over rows of [r, c], statistics per group of r / groups consecutive rows.
void bn_forward(const float *x, const float *gamma, const float *beta, const float *residual, int64_t r, int c, int groups, float eps,
                bool relu, float *y, float *stats);
void bn_backward(const float *dy, const float *x, const float *stats, const float *gamma, const float *beta, const float *residual,
                 int64_t r, int c, int groups, float eps, bool relu, float *dx, float *dgamma, float *dbeta, float *dresidual);

// Layer norm over the last axis of [r, c].
void ln_forward(const float *x, const float *gamma, const float *beta, int64_t r, int c, float eps, float *y);
void ln_backward(const float *dy, const float *x, const float *gamma, int64_t r, int c, float eps, float *dx, float *dgamma, float *dbeta);

void gelu_forward(const float *x, int64_t n, float *y);
void gelu_backward(const float *dy, const float *x, int64_t n, float *dx);

// out = a * x + b * y.
void axpby(const float *x, const float *y, int64_t n, float a, float b, float *out);

struct AdamStep {
  float lr, wd, beta1, beta2, eps, bc1, bc2;
  bool decoupled;
};
// One Adam (L2 decay) or AdamW step over flat arrays; `decay` and `active` are 0/1 bytes
// (`active` may be null: every element active). Writes whichever of p_out, m_out, v_out is non-null.
void adam_flat(const AdamStep &s, const float *g, const float *scale, const float *p, const float *m, const float *v, const uint8_t *decay,
               const uint8_t *active, int64_t n, float *p_out, float *m_out, float *v_out);

}  // namespace dt

namespace dt {
void square(const float *x, int64_t n, float *out);
// Sum of all n elements, accumulated in double over fixed parts.
double sum_all(const float *x, int64_t n);
}  // namespace dt

namespace dt {
// out = x transposed: `shape` and `perm` as reduced by the caller (no size-1 axes, adjacent axes merged),
// 4-byte elements.
void transpose4(const uint32_t *x, const int64_t *shape, const int *perm, int rank, uint32_t *out);
// out[c] = sum over r of x[r, c] for x [r, c] (double accumulation over fixed parts of the rows).
void sum_rows(const float *x, int64_t r, int64_t c, float *out);
}  // namespace dt

namespace dt {
// How an operand maps onto an output seen as [rows, cols]: its own [rows, cols], one value per row,
// one per column, or one value.
enum Bcast { kFull = 0, kRow = 1, kCol = 2, kScalar = 3 };
// Binary ops over float32 operands: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min (float32 out; max/min
// propagate NaN as JavaScript's Math.max/min); 6 eq, 7 ne, 8 gt, 9 ge, 10 lt, 11 le (bool out);
// over bool (uint8) operands: 12 and, 13 or (bool out).
void binary_bcast(int op, const void *a, int am, const void *b, int bm, int64_t rows, int64_t cols, void *out);
// Unary: 0 abs, 1 floor, 2 ceil, 3 neg, 4 sqrt, 5 clip to [p0, p1] (float32); 6 logical not (bool).
void unary(int op, const void *x, int64_t n, float p0, float p1, void *out);
// out = cond ? a : b over n elements (a, b: kFull or kScalar).
void select(const uint8_t *cond, const float *a, int am, const float *b, int bm, int64_t n, float *out);
}  // namespace dt

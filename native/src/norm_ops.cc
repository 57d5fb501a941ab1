// Batch norm (Ioffe & Szegedy 2015) and layer norm (Ba et al. 2016) in training mode, forward and
// backward, and the exact GELU, with the arithmetic of lib/kernels/fused.ts's contract (the WebGPU
// kernels compute the same). Sums run in double over a fixed split of the rows into parts, added
// in part order, so the bits depend only on the part count. Batch-norm statistics use sums shifted
// by the group's first row (Chan, Golub & LeVeque 1983), as the WebGPU kernel does.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "internal.h"
#include "ops.h"

namespace dt {

namespace {

// Rows of a group split into parts: never more parts than rows.
int row_parts(int64_t rows) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(shared_parts(), rows))); }

void run_parts(int parts, int64_t elements, const std::function<void(int)> &fn) {
  shared_pool().run(parts, fn, elements >= kParallelElements);
}

}  // namespace

// One row of the statistics pass: shifted sums in double.
static inline void bn_stats_row(const float *__restrict x, const float *__restrict k, double *__restrict s1, double *__restrict s2, int c) {
  for (int j = 0; j < c; j++) {
    const double d = static_cast<double>(x[j]) - static_cast<double>(k[j]);
    s1[j] += d;
    s2[j] += d * d;
  }
}

// y = (x - mean) * scale (+ beta) (+ residual), then ReLU: the one expression forward and backward
// share (the backward pass recomputes the sign of y from it, bit for bit).
template <bool kBeta, bool kRes, bool kRelu>
static inline void bn_apply_row(const float *__restrict x, const float *__restrict mu, const float *__restrict sc, const float *__restrict beta,
                                const float *__restrict res, float *__restrict y, int c) {
  for (int j = 0; j < c; j++) {
    float t = (x[j] - mu[j]) * sc[j];
    if (kBeta) t = t + beta[j];
    if (kRes) t = t + res[j];
    y[j] = kRelu ? (t > 0.f ? t : 0.f) : t;
  }
}

template <bool kBeta, bool kRes, bool kRelu>
static inline void bn_grad_sums_row(const float *__restrict dy, const float *__restrict x, const float *__restrict mu, const float *__restrict iv,
                                    const float *__restrict sc, const float *__restrict beta, const float *__restrict res, double *__restrict sd,
                                    double *__restrict sdx, int c) {
  for (int j = 0; j < c; j++) {
    const float xm = x[j] - mu[j];
    float d = dy[j];
    if (kRelu) {
      float t = xm * sc[j];
      if (kBeta) t = t + beta[j];
      if (kRes) t = t + res[j];
      d = d * static_cast<float>(t > 0.f);  // a multiply, not a branch: GCC vectorizes it
    }
    const float xh = xm * iv[j];
    sd[j] += static_cast<double>(d);
    sdx[j] += static_cast<double>(d) * static_cast<double>(xh);
  }
}

template <bool kBeta, bool kRes, bool kRelu, bool kDres>
static inline void bn_grad_row(const float *__restrict dy, const float *__restrict x, const float *__restrict mu, const float *__restrict iv,
                               const float *__restrict sc, const float *__restrict beta, const float *__restrict res, const float *__restrict a,
                               const float *__restrict b, float *__restrict dx, float *__restrict dres, int c) {
  for (int j = 0; j < c; j++) {
    const float xm = x[j] - mu[j];
    float d = dy[j];
    if (kRelu) {
      float t = xm * sc[j];
      if (kBeta) t = t + beta[j];
      if (kRes) t = t + res[j];
      d = d * static_cast<float>(t > 0.f);  // a multiply, not a branch: GCC vectorizes it
    }
    const float xh = xm * iv[j];
    dx[j] = ((d - a[j]) - xh * b[j]) * sc[j];
    if (kDres) dres[j] = d;
  }
}

// Calls f.template operator()<kBeta, kRes, kRelu>() for the flags' values.
template <class F>
static void dispatch3(bool beta, bool res, bool relu, F &&f) {
  if (beta) {
    if (res) relu ? f.template operator()<true, true, true>() : f.template operator()<true, true, false>();
    else relu ? f.template operator()<true, false, true>() : f.template operator()<true, false, false>();
  } else {
    if (res) relu ? f.template operator()<false, true, true>() : f.template operator()<false, true, false>();
    else relu ? f.template operator()<false, false, true>() : f.template operator()<false, false, false>();
  }
}

void bn_forward(const float *x, const float *gamma, const float *beta, const float *residual, int64_t r, int c, int groups, float eps,
                bool relu, float *y, float *stats) {
  const int64_t rg = r / groups;
  const int parts = row_parts(rg);
  // Per (group, part): shifted sums [2][c] in double.
  std::vector<double> partial(static_cast<size_t>(groups) * parts * 2 * c);
  run_parts(groups * parts, r * c, [&](int t) {
    const int g = t / parts, p = t % parts;
    int64_t b, e;
    part_range(rg, parts, p, b, e);
    const float *k = x + g * rg * c;  // the group's first row: the shift
    double *s1 = &partial[static_cast<size_t>(t) * 2 * c];
    double *s2 = s1 + c;
    std::fill(s1, s1 + 2 * c, 0.0);
    for (int64_t i = g * rg + b; i < g * rg + e; i++) bn_stats_row(x + i * c, k, s1, s2, c);
  });
  std::vector<float> mean(static_cast<size_t>(groups) * c), scale(static_cast<size_t>(groups) * c);
  for (int g = 0; g < groups; g++) {
    const float *k = x + g * rg * c;
    for (int j = 0; j < c; j++) {
      double s1 = 0, s2 = 0;
      for (int p = 0; p < parts; p++) {
        const double *q = &partial[(static_cast<size_t>(g) * parts + p) * 2 * c];
        s1 += q[j];
        s2 += q[c + j];
      }
      const double m1 = s1 / rg;
      const double var = std::max(0.0, s2 / rg - m1 * m1);
      const float mf = static_cast<float>(k[j] + m1), vf = static_cast<float>(var);
      stats[(2 * g) * c + j] = mf;
      stats[(2 * g + 1) * c + j] = vf;
      const float inv = 1.0f / std::sqrt(vf + eps);
      mean[g * c + j] = mf;
      scale[g * c + j] = gamma ? inv * gamma[j] : inv;
    }
  }
  const int parts_all = row_parts(r);
  run_parts(parts_all, r * c, [&](int p) {
    int64_t b, e;
    part_range(r, parts_all, p, b, e);
    dispatch3(beta != nullptr, residual != nullptr, relu, [&]<bool kB, bool kR, bool kL>() {
      for (int64_t i = b; i < e; i++) {
        const int g = static_cast<int>(i / rg);
        bn_apply_row<kB, kR, kL>(x + i * c, &mean[g * c], &scale[g * c], beta, kR ? residual + i * c : nullptr, y + i * c, c);
      }
    });
  });
}

void bn_backward(const float *dy, const float *x, const float *stats, const float *gamma, const float *beta, const float *residual,
                 int64_t r, int c, int groups, float eps, bool relu, float *dx, float *dgamma, float *dbeta, float *dresidual) {
  const int64_t rg = r / groups;
  std::vector<float> mean(static_cast<size_t>(groups) * c), inv(static_cast<size_t>(groups) * c), scale(static_cast<size_t>(groups) * c);
  for (int g = 0; g < groups; g++) {
    for (int j = 0; j < c; j++) {
      const float vf = stats[(2 * g + 1) * c + j];
      const float iv = 1.0f / std::sqrt(vf + eps);
      mean[g * c + j] = stats[(2 * g) * c + j];
      inv[g * c + j] = iv;
      scale[g * c + j] = gamma ? iv * gamma[j] : iv;
    }
  }
  const int parts = row_parts(rg);
  std::vector<double> partial(static_cast<size_t>(groups) * parts * 2 * c);
  run_parts(groups * parts, r * c, [&](int t) {
    const int g = t / parts, p = t % parts;
    int64_t b, e;
    part_range(rg, parts, p, b, e);
    double *sd = &partial[static_cast<size_t>(t) * 2 * c];
    double *sdx = sd + c;
    std::fill(sd, sd + 2 * c, 0.0);
    dispatch3(beta != nullptr, residual != nullptr, relu, [&]<bool kB, bool kR, bool kL>() {
      for (int64_t i = g * rg + b; i < g * rg + e; i++)
        bn_grad_sums_row<kB, kR, kL>(dy + i * c, x + i * c, &mean[g * c], &inv[g * c], &scale[g * c], beta, kR ? residual + i * c : nullptr, sd, sdx, c);
    });
  });
  std::vector<float> a(static_cast<size_t>(groups) * c), bq(static_cast<size_t>(groups) * c);
  std::vector<double> tot_d(c, 0.0), tot_dx(c, 0.0);
  for (int g = 0; g < groups; g++) {
    for (int j = 0; j < c; j++) {
      double s1 = 0, s2 = 0;
      for (int p = 0; p < parts; p++) {
        const double *q = &partial[(static_cast<size_t>(g) * parts + p) * 2 * c];
        s1 += q[j];
        s2 += q[c + j];
      }
      a[g * c + j] = static_cast<float>(s1 / rg);
      bq[g * c + j] = static_cast<float>(s2 / rg);
      tot_d[j] += s1;
      tot_dx[j] += s2;
    }
  }
  if (dgamma)
    for (int j = 0; j < c; j++) dgamma[j] = static_cast<float>(tot_dx[j]);
  if (dbeta)
    for (int j = 0; j < c; j++) dbeta[j] = static_cast<float>(tot_d[j]);
  const int parts_all = row_parts(r);
  run_parts(parts_all, r * c, [&](int p) {
    int64_t b, e;
    part_range(r, parts_all, p, b, e);
    dispatch3(beta != nullptr, residual != nullptr, relu, [&]<bool kB, bool kR, bool kL>() {
      for (int64_t i = b; i < e; i++) {
        const int g = static_cast<int>(i / rg);
        const float *res = kR ? residual + i * c : nullptr;
        if (dresidual)
          bn_grad_row<kB, kR, kL, true>(dy + i * c, x + i * c, &mean[g * c], &inv[g * c], &scale[g * c], beta, res, &a[g * c], &bq[g * c], dx + i * c,
                                        dresidual + i * c, c);
        else
          bn_grad_row<kB, kR, kL, false>(dy + i * c, x + i * c, &mean[g * c], &inv[g * c], &scale[g * c], beta, res, &a[g * c], &bq[g * c], dx + i * c,
                                         nullptr, c);
      }
    });
  });
}

void ln_forward(const float *x, const float *gamma, const float *beta, int64_t r, int c, float eps, float *y) {
  const int parts = row_parts(r);
  run_parts(parts, r * c, [&](int p) {
    int64_t b, e;
    part_range(r, parts, p, b, e);
    for (int64_t i = b; i < e; i++) {
      const float *xi = x + i * c;
      double s = 0;
      for (int j = 0; j < c; j++) s += xi[j];
      const double m = s / c;
      double v = 0;
      for (int j = 0; j < c; j++) {
        const double d = xi[j] - m;
        v += d * d;
      }
      const float mf = static_cast<float>(m);
      const float inv = 1.0f / std::sqrt(static_cast<float>(v / c) + eps);
      float *yi = y + i * c;
      for (int j = 0; j < c; j++) yi[j] = (xi[j] - mf) * inv * gamma[j] + beta[j];
    }
  });
}

void ln_backward(const float *dy, const float *x, const float *gamma, int64_t r, int c, float eps, float *dx, float *dgamma, float *dbeta) {
  const int parts = row_parts(r);
  std::vector<double> partial(static_cast<size_t>(parts) * 2 * c, 0.0);
  run_parts(parts, r * c, [&](int p) {
    int64_t b, e;
    part_range(r, parts, p, b, e);
    double *sg = &partial[static_cast<size_t>(p) * 2 * c];
    double *sb = sg + c;
    std::vector<float> xh(c);
    for (int64_t i = b; i < e; i++) {
      const float *xi = x + i * c, *di = dy + i * c;
      double s = 0;
      for (int j = 0; j < c; j++) s += xi[j];
      const double m = s / c;
      double v = 0;
      for (int j = 0; j < c; j++) {
        const double d = xi[j] - m;
        v += d * d;
      }
      const float mf = static_cast<float>(m);
      const float inv = 1.0f / std::sqrt(static_cast<float>(v / c) + eps);
      double s1 = 0, s2 = 0;  // mean of g = dy * gamma and of g * xhat
      for (int j = 0; j < c; j++) {
        xh[j] = (xi[j] - mf) * inv;
        const float gj = di[j] * gamma[j];
        s1 += gj;
        s2 += static_cast<double>(gj) * xh[j];
        sg[j] += static_cast<double>(di[j]) * xh[j];
        sb[j] += di[j];
      }
      const float a = static_cast<float>(s1 / c), bb = static_cast<float>(s2 / c);
      float *o = dx + i * c;
      for (int j = 0; j < c; j++) o[j] = ((di[j] * gamma[j] - a) - xh[j] * bb) * inv;
    }
  });
  for (int j = 0; j < c; j++) {
    double g = 0, b = 0;
    for (int p = 0; p < parts; p++) {
      g += partial[static_cast<size_t>(p) * 2 * c + j];
      b += partial[static_cast<size_t>(p) * 2 * c + c + j];
    }
    dgamma[j] = static_cast<float>(g);
    dbeta[j] = static_cast<float>(b);
  }
}

// exp and erf as plain arithmetic, so the GELU loops vectorize (libm's erff and expf do not, without
// -ffast-math). exp: Cephes' expf (range reduction by ln 2 in two parts, a degree-6 polynomial,
// the exponent set through the bits), relative error about 2e-7. erf: Abramowitz & Stegun 7.1.26,
// absolute error below 1.5e-7, the formula tfjs' own Erf kernel uses.
static inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float t = x * 1.44269504088896341f;
  const int32_t ni = static_cast<int32_t>(t + std::copysign(0.5f, t));  // round(t); vectorizes (floorf does not)
  const float n = static_cast<float>(ni);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * __builtin_bit_cast(float, (ni + 127) << 23);
}

static inline float erf_approx(float x) {
  const float ax = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  return std::copysign(1.0f - poly * exp_approx(-ax * ax), x);
}

void gelu_forward(const float *x, int64_t n, float *y) {
  const int parts = row_parts(n / 4096 + 1);
  run_parts(parts, n, [&](int p) {
    int64_t b, e;
    part_range(n, parts, p, b, e);
    const float *__restrict xi = x;
    float *__restrict yo = y;
    for (int64_t i = b; i < e; i++) yo[i] = 0.5f * xi[i] * (1.0f + erf_approx(xi[i] * 0.70710678118654752f));
  });
}

void gelu_backward(const float *dy, const float *x, int64_t n, float *dx) {
  const int parts = row_parts(n / 4096 + 1);
  run_parts(parts, n, [&](int p) {
    int64_t b, e;
    part_range(n, parts, p, b, e);
    const float *__restrict xi = x;
    const float *__restrict d = dy;
    float *__restrict o = dx;
    for (int64_t i = b; i < e; i++) {
      const float cdf = 0.5f * (1.0f + erf_approx(xi[i] * 0.70710678118654752f));
      const float pdf = 0.39894228040143268f * exp_approx(-0.5f * xi[i] * xi[i]);
      o[i] = d[i] * (cdf + xi[i] * pdf);
    }
  });
}

void axpby(const float *x, const float *y, int64_t n, float a, float b, float *out) {
  const int parts = row_parts(n / 4096 + 1);
  run_parts(parts, n, [&](int p) {
    int64_t s, e;
    part_range(n, parts, p, s, e);
    for (int64_t i = s; i < e; i++) out[i] = a * x[i] + b * y[i];
  });
}

template <bool kDecoupled, bool kActive, int kWhich>  // kWhich: 0 p, 1 m, 2 v, 3 all three
static void adam_range(const AdamStep &s, const float *__restrict g, float sc, const float *__restrict p, const float *__restrict m,
                       const float *__restrict v, const uint8_t *__restrict decay, const uint8_t *__restrict active, int64_t b, int64_t e,
                       float *__restrict out, float *__restrict m_out, float *__restrict v_out) {
  const float wd = s.wd, b1 = s.beta1, b2 = s.beta2, c1 = 1.0f - s.beta1, c2 = 1.0f - s.beta2;
  for (int64_t i = b; i < e; i++) {
    float gi = g[i] * sc;
    if (!kDecoupled) gi = decay[i] ? gi + p[i] * wd : gi;
    const float mi = m[i] * b1 + gi * c1;
    const float vi = v[i] * b2 + (gi * gi) * c2;
    const bool on = !kActive || active[i];
    if (kWhich == 1) {
      out[i] = on ? mi : m[i];
    } else if (kWhich == 2) {
      out[i] = on ? vi : v[i];
    } else {
      float upd = (mi / s.bc1) / (std::sqrt(vi / s.bc2) + s.eps);
      if (kDecoupled) upd = decay[i] ? upd + p[i] * wd : upd;
      out[i] = on ? p[i] - upd * s.lr : p[i];
      if (kWhich == 3) {
        m_out[i] = on ? mi : m[i];
        v_out[i] = on ? vi : v[i];
      }
    }
  }
}

void adam_flat(const AdamStep &s, const float *g, const float *scale, const float *p, const float *m, const float *v, const uint8_t *decay,
               const uint8_t *active, int64_t n, float *p_out, float *m_out, float *v_out) {
  const int parts = row_parts(n / 4096 + 1);
  const float sc = scale[0];
  auto one = [&](int which, float *out) {
    run_parts(parts, n, [&](int q) {
      int64_t b, e;
      part_range(n, parts, q, b, e);
      auto go = [&]<int kW>() {
        if (s.decoupled) active ? adam_range<true, true, kW>(s, g, sc, p, m, v, decay, active, b, e, out, m_out, v_out)
                                : adam_range<true, false, kW>(s, g, sc, p, m, v, decay, active, b, e, out, m_out, v_out);
        else active ? adam_range<false, true, kW>(s, g, sc, p, m, v, decay, active, b, e, out, m_out, v_out)
                    : adam_range<false, false, kW>(s, g, sc, p, m, v, decay, active, b, e, out, m_out, v_out);
      };
      if (which == 0) go.template operator()<0>();
      else if (which == 1) go.template operator()<1>();
      else if (which == 2) go.template operator()<2>();
      else go.template operator()<3>();
    });
  };
  if (p_out && m_out && v_out) {
    one(3, p_out);  // one pass writes all three
    return;
  }
  if (p_out) one(0, p_out);
  if (m_out) one(1, m_out);
  if (v_out) one(2, v_out);
}

}  // namespace dt

// Convolutions and matrix products through oneDNN (the library PyTorch uses for its CPU
// convolutions). Activations stay NHWC and filters [kh, kw, in, out] ("hwio") in the caller's
// memory; oneDNN picks its own blocked filter layout ("any"), and the filter is reordered to it on
// every call (filters change every step). Every kernel call is split into a fixed number of parts
// along the batch (or the rows or columns of a product), each run by a single-threaded oneDNN
// primitive on one thread of the pool: parts never split a sum except the filter gradient's sum
// over the batch, whose per-part results are added in part order. So the bits depend on the part
// count, never on how many threads ran the parts.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "ops.h"
#include "pool.h"

namespace dt {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt_ = dnnl::memory::data_type;

namespace {

// Below this many multiply-adds a call runs its parts on the calling thread alone: waking a
// worker costs more than it saves.
constexpr double kParallelMacs = 1 << 20;

struct State {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  std::unique_ptr<Pool> pool;
  int parts = 1;
  std::string last_impl;
};

State &st() {
  static State s;
  return s;
}

dnnl::stream &thread_stream() {
  thread_local dnnl::stream s(st().eng);
  return s;
}

// A per-thread scratch buffer of at least `bytes` (oneDNN's scratchpad, owned by us so that one
// primitive can run on several threads at once).
void *thread_scratch(size_t bytes) {
  thread_local void *buf = nullptr;
  thread_local size_t size = 0;
  if (bytes > size) {
    std::free(buf);
    size_t want = (bytes + 4095) & ~size_t(4095);
    buf = std::aligned_alloc(64, want);
    if (!buf) throw std::bad_alloc();
    size = want;
  }
  return buf;
}

// 64-byte aligned float buffer owned by a cache entry.
struct Buffer {
  float *p = nullptr;
  size_t bytes = 0;
  void ensure(size_t b) {
    if (b <= bytes) return;
    std::free(p);
    bytes = (b + 63) & ~size_t(63);
    p = static_cast<float *>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
  }
  ~Buffer() { std::free(p); }
};

dnnl::primitive_attr scratch_attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

void exec(dnnl::primitive &p, const dnnl::memory::desc &scratch_md, std::unordered_map<int, memory> args) {
  auto &s = thread_stream();
  if (scratch_md.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md, st().eng, thread_scratch(scratch_md.get_size()))});
  p.execute(s, args);
  s.wait();
}

// Parts of a batch of n: min(parts, n) parts of n / parts (the first n % parts one more).
struct Split {
  int count;
  int big, small;  // sizes: the first `count_big` parts are `big`
  int count_big;
  Split(long long n, int parts) {
    count = static_cast<int>(std::max<long long>(1, std::min<long long>(parts, n)));
    small = static_cast<int>(n / count);
    count_big = static_cast<int>(n % count);
    big = small + (count_big > 0 ? 1 : 0);
  }
  int size(int i) const { return i < count_big ? big : small; }
  long long begin(int i) const { return static_cast<long long>(i) * small + std::min(i, count_big); }
};

std::string key_of(const char *kind, std::initializer_list<long long> v) {
  std::ostringstream o;
  o << kind;
  for (long long x : v) o << ',' << x;
  return o.str();
}

// Primitive caches: one entry per (direction, shape), created on first use.
template <class T>
struct Cache {
  std::unordered_map<std::string, std::unique_ptr<T>> map;
  T *get(const std::string &k) {
    auto it = map.find(k);
    return it == map.end() ? nullptr : it->second.get();
  }
  T *put(const std::string &k, std::unique_ptr<T> v) {
    if (map.size() > 4096) map.clear();  // shapes change only between phases; never unbounded
    return (map[k] = std::move(v)).get();
  }
};

memory::dims conv_src_dims(const ConvShape &s, int nb) { return {nb, s.ci, s.h, s.w}; }

// The high-side padding oneDNN's kernels assume: exactly what the last output row and column reach,
// which is below the caller's when the stride skips the input's last rows (tfjs' 'valid' 1x1 stride-2
// downsample of an even size: -1). Passing the caller's larger value is accepted by the descriptor's
// shape check (floor division) but made the filter-gradient kernel write out of bounds (64x64 input,
// 1x1 stride 2, seen by heap corruption).
memory::dims conv_pad_r(const ConvShape &s) {
  return {(memory::dim)(s.oh - 1) * s.sh + (memory::dim)(s.kh - 1) * s.dh + 1 - s.h - s.pt,
          (memory::dim)(s.ow - 1) * s.sw + (memory::dim)(s.kw - 1) * s.dw + 1 - s.w - s.pl};
}
memory::dims conv_dst_dims(const ConvShape &s, int nb) { return {nb, s.co, s.oh, s.ow}; }
memory::dims conv_w_dims(const ConvShape &s) { return {s.co, s.ci, s.kh, s.kw}; }

bool conv_supported(const ConvShape &s) {
  if (s.n < 1 || s.h < 1 || s.w < 1 || s.ci < 1 || s.co < 1 || s.kh < 1 || s.kw < 1 || s.sh < 1 || s.sw < 1 || s.dh < 1 || s.dw < 1) return false;
  if (s.pt < 0 || s.pl < 0 || s.pb < 0 || s.pr < 0) return false;
  // oneDNN's shape rule (floor division), which tfjs' output size follows.
  long long keh = (long long)(s.kh - 1) * s.dh + 1, kew = (long long)(s.kw - 1) * s.dw + 1;
  if (s.h + s.pt + s.pb < keh || s.w + s.pl + s.pr < kew) return false;
  return (s.h + s.pt + s.pb - keh) / s.sh + 1 == s.oh && (s.w + s.pl + s.pr - kew) / s.sw + 1 == s.ow;
}

dnnl::convolution_forward::desc conv_fwd_desc(const ConvShape &s, int nb, const memory::desc &wmd, bool bias, dnnl::prop_kind kind) {
  memory::desc src(conv_src_dims(s, nb), dt_::f32, tag::nhwc), dst(conv_dst_dims(s, nb), dt_::f32, tag::nhwc);
  memory::dims strides{s.sh, s.sw}, dil{s.dh - 1, s.dw - 1}, pl{s.pt, s.pl}, pr = conv_pad_r(s);
  if (bias) {
    memory::desc b({s.co}, dt_::f32, tag::x);
    return dnnl::convolution_forward::desc(kind, dnnl::algorithm::convolution_direct, src, wmd, b, dst, strides, dil, pl, pr);
  }
  return dnnl::convolution_forward::desc(kind, dnnl::algorithm::convolution_direct, src, wmd, dst, strides, dil, pl, pr);
}

memory::desc any_w(const ConvShape &s) { return memory::desc(conv_w_dims(s), dt_::f32, tag::any); }
memory::desc user_w(const ConvShape &s) { return memory::desc(conv_w_dims(s), dt_::f32, tag::hwio); }

// One part size's primitive and its scratchpad size.
template <class PD, class P>
struct PartPrim {
  PD pd;
  P prim;
  memory::desc scratch;
};

struct ConvFwdEntry {
  Split split{1, 1};
  std::vector<PartPrim<dnnl::convolution_forward::primitive_desc, dnnl::convolution_forward>> prims;  // [0]: big, [1]: small
  memory::desc wmd;
  dnnl::reorder to_prim;
  Buffer wbuf;
};

struct ConvBwdDataEntry {
  Split split{1, 1};
  std::vector<PartPrim<dnnl::convolution_backward_data::primitive_desc, dnnl::convolution_backward_data>> prims;
  memory::desc wmd;
  dnnl::reorder to_prim;
  Buffer wbuf;
};

struct ConvBwdWeightsEntry {
  Split split{1, 1};
  std::vector<PartPrim<dnnl::convolution_backward_weights::primitive_desc, dnnl::convolution_backward_weights>> prims;
  memory::desc wmd;
  dnnl::reorder to_user;
  std::vector<Buffer> parts;  // one diff-weights buffer per part
};

Cache<ConvFwdEntry> fwd_cache;
Cache<ConvBwdDataEntry> bwd_data_cache;
Cache<ConvBwdWeightsEntry> bwd_weights_cache;
std::mutex cache_mu;  // kernels are called from JavaScript's one thread; this guards misuse

// Sizes used by a split: the big part, then the small one if it differs.
std::vector<int> split_sizes(const Split &sp) {
  std::vector<int> v{sp.count_big > 0 ? sp.big : sp.small};
  if (sp.count_big > 0 && sp.count_big < sp.count && sp.small != sp.big) v.push_back(sp.small);
  return v;
}
int size_index(const Split &sp, int i) { return (sp.count_big > 0 && i >= sp.count_big && sp.small != sp.big) ? 1 : 0; }

std::string conv_key(const char *kind, const ConvShape &s, int parts, long long extra) {
  return key_of(kind, {s.n, s.h, s.w, s.ci, s.co, s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, s.pb, s.pr, s.oh, s.ow, parts, extra});
}

double conv_macs(const ConvShape &s) { return (double)s.n * s.oh * s.ow * s.co * s.ci * s.kh * s.kw; }

}  // namespace

void init(int threads) {
  if (threads < 1) throw std::invalid_argument("threads must be >= 1");
  omp_set_num_threads(1);
  st().pool = std::make_unique<Pool>(threads);
  st().parts = threads;
}

int threads() { return st().pool ? st().pool->threads() : 0; }
void set_serial(bool serial) {
  if (st().pool) st().pool->set_serial(serial);
}
long long parts_on_workers() { return st().pool ? st().pool->parts_on_workers() : 0; }

std::string onednn_version() {
  const dnnl_version_t *v = dnnl_version();
  std::ostringstream o;
  o << v->major << '.' << v->minor << '.' << v->patch;
  return o.str();
}

std::string last_impl() { return st().last_impl; }

static Pool &pool() {
  if (!st().pool) throw std::logic_error("dinotwins native: init() was not called");
  return *st().pool;
}

static bool conv2d_forward_direct(const ConvShape &s, const float *x, const float *w, const float *bias, bool relu, float *y) {
  if (!conv_supported(s)) return false;
  std::lock_guard<std::mutex> lock(cache_mu);
  const int P = st().parts;
  std::string k = conv_key("fwd", s, P, (bias ? 1 : 0) | (relu ? 2 : 0));
  ConvFwdEntry *e = fwd_cache.get(k);
  if (!e) {
    auto ne = std::make_unique<ConvFwdEntry>();
    ne->split = Split(s.n, P);
    dnnl::primitive_attr attr = scratch_attr();
    if (relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(ops);
    }
    auto kind = dnnl::prop_kind::forward_training;
    for (int nb : split_sizes(ne->split)) {
      memory::desc wmd = ne->prims.empty() ? any_w(s) : ne->wmd;
      dnnl::convolution_forward::primitive_desc pd(conv_fwd_desc(s, nb, wmd, bias != nullptr, kind), attr, st().eng);
      if (ne->prims.empty()) ne->wmd = pd.weights_desc();
      ne->prims.push_back({pd, dnnl::convolution_forward(pd), pd.scratchpad_desc()});
    }
    ne->to_prim = dnnl::reorder(memory(user_w(s), st().eng, nullptr), memory(ne->wmd, st().eng, nullptr));
    ne->wbuf.ensure(ne->wmd.get_size());
    st().last_impl = ne->prims[0].pd.impl_info_str();
    e = fwd_cache.put(k, std::move(ne));
  }
  memory wuser(user_w(s), st().eng, const_cast<float *>(w));
  memory wprim(e->wmd, st().eng, e->wbuf.p);
  e->to_prim.execute(thread_stream(), wuser, wprim);
  thread_stream().wait();
  const long long in_img = (long long)s.h * s.w * s.ci, out_img = (long long)s.oh * s.ow * s.co;
  pool().run(e->split.count, [&](int i) {
    auto &pp = e->prims[size_index(e->split, i)];
    int nb = e->split.size(i);
    long long b0 = e->split.begin(i);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(memory::desc(conv_src_dims(s, nb), dt_::f32, tag::nhwc), st().eng, const_cast<float *>(x + b0 * in_img))},
        {DNNL_ARG_WEIGHTS, memory(e->wmd, st().eng, e->wbuf.p)},
        {DNNL_ARG_DST, memory(memory::desc(conv_dst_dims(s, nb), dt_::f32, tag::nhwc), st().eng, y + b0 * out_img)}};
    if (bias) args.insert({DNNL_ARG_BIAS, memory(memory::desc({s.co}, dt_::f32, tag::x), st().eng, const_cast<float *>(bias))});
    exec(pp.prim, pp.scratch, std::move(args));
  }, conv_macs(s) >= kParallelMacs);
  return true;
}

static bool conv2d_backward_data_direct(const ConvShape &s, const float *dy, const float *w, float *dx) {
  if (!conv_supported(s)) return false;
  std::lock_guard<std::mutex> lock(cache_mu);
  const int P = st().parts;
  std::string k = conv_key("bwd_data", s, P, 0);
  ConvBwdDataEntry *e = bwd_data_cache.get(k);
  if (!e) {
    auto ne = std::make_unique<ConvBwdDataEntry>();
    ne->split = Split(s.n, P);
    dnnl::primitive_attr attr = scratch_attr();
    for (int nb : split_sizes(ne->split)) {
      memory::desc wmd = ne->prims.empty() ? any_w(s) : ne->wmd;
      dnnl::convolution_forward::primitive_desc hint(conv_fwd_desc(s, nb, wmd, false, dnnl::prop_kind::forward_training), st().eng);
      memory::desc src(conv_src_dims(s, nb), dt_::f32, tag::nhwc), dst(conv_dst_dims(s, nb), dt_::f32, tag::nhwc);
      dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, src, wmd, dst, {s.sh, s.sw}, {s.dh - 1, s.dw - 1}, {s.pt, s.pl}, conv_pad_r(s));
      dnnl::convolution_backward_data::primitive_desc pd(d, attr, st().eng, hint);
      if (ne->prims.empty()) ne->wmd = pd.weights_desc();
      ne->prims.push_back({pd, dnnl::convolution_backward_data(pd), pd.scratchpad_desc()});
    }
    ne->to_prim = dnnl::reorder(memory(user_w(s), st().eng, nullptr), memory(ne->wmd, st().eng, nullptr));
    ne->wbuf.ensure(ne->wmd.get_size());
    st().last_impl = ne->prims[0].pd.impl_info_str();
    e = bwd_data_cache.put(k, std::move(ne));
  }
  memory wuser(user_w(s), st().eng, const_cast<float *>(w));
  memory wprim(e->wmd, st().eng, e->wbuf.p);
  e->to_prim.execute(thread_stream(), wuser, wprim);
  thread_stream().wait();
  const long long in_img = (long long)s.h * s.w * s.ci, out_img = (long long)s.oh * s.ow * s.co;
  pool().run(e->split.count, [&](int i) {
    auto &pp = e->prims[size_index(e->split, i)];
    int nb = e->split.size(i);
    long long b0 = e->split.begin(i);
    exec(pp.prim, pp.scratch,
         {{DNNL_ARG_DIFF_DST, memory(memory::desc(conv_dst_dims(s, nb), dt_::f32, tag::nhwc), st().eng, const_cast<float *>(dy + b0 * out_img))},
          {DNNL_ARG_WEIGHTS, memory(e->wmd, st().eng, e->wbuf.p)},
          {DNNL_ARG_DIFF_SRC, memory(memory::desc(conv_src_dims(s, nb), dt_::f32, tag::nhwc), st().eng, dx + b0 * in_img)}});
  }, conv_macs(s) >= kParallelMacs);
  return true;
}

static bool conv2d_backward_weights_direct(const ConvShape &s, const float *x, const float *dy, float *dw) {
  if (!conv_supported(s)) return false;
  std::lock_guard<std::mutex> lock(cache_mu);
  const int P = st().parts;
  std::string k = conv_key("bwd_weights", s, P, 0);
  ConvBwdWeightsEntry *e = bwd_weights_cache.get(k);
  if (!e) {
    auto ne = std::make_unique<ConvBwdWeightsEntry>();
    ne->split = Split(s.n, P);
    dnnl::primitive_attr attr = scratch_attr();
    for (int nb : split_sizes(ne->split)) {
      memory::desc wmd = ne->prims.empty() ? any_w(s) : ne->wmd;
      dnnl::convolution_forward::primitive_desc hint(conv_fwd_desc(s, nb, wmd, false, dnnl::prop_kind::forward_training), st().eng);
      memory::desc src(conv_src_dims(s, nb), dt_::f32, tag::nhwc), dst(conv_dst_dims(s, nb), dt_::f32, tag::nhwc);
      dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, src, wmd, dst, {s.sh, s.sw}, {s.dh - 1, s.dw - 1}, {s.pt, s.pl}, conv_pad_r(s));
      dnnl::convolution_backward_weights::primitive_desc pd(d, attr, st().eng, hint);
      if (ne->prims.empty()) ne->wmd = pd.diff_weights_desc();
      ne->prims.push_back({pd, dnnl::convolution_backward_weights(pd), pd.scratchpad_desc()});
    }
    ne->to_user = dnnl::reorder(memory(ne->wmd, st().eng, nullptr), memory(user_w(s), st().eng, nullptr));
    ne->parts.resize(ne->split.count);
    for (auto &b : ne->parts) b.ensure(ne->wmd.get_size());
    st().last_impl = ne->prims[0].pd.impl_info_str();
    e = bwd_weights_cache.put(k, std::move(ne));
  }
  const long long in_img = (long long)s.h * s.w * s.ci, out_img = (long long)s.oh * s.ow * s.co;
  pool().run(e->split.count, [&](int i) {
    auto &pp = e->prims[size_index(e->split, i)];
    int nb = e->split.size(i);
    long long b0 = e->split.begin(i);
    exec(pp.prim, pp.scratch,
         {{DNNL_ARG_SRC, memory(memory::desc(conv_src_dims(s, nb), dt_::f32, tag::nhwc), st().eng, const_cast<float *>(x + b0 * in_img))},
          {DNNL_ARG_DIFF_DST, memory(memory::desc(conv_dst_dims(s, nb), dt_::f32, tag::nhwc), st().eng, const_cast<float *>(dy + b0 * out_img))},
          {DNNL_ARG_DIFF_WEIGHTS, memory(e->wmd, st().eng, e->parts[i].p)}});
  }, conv_macs(s) >= kParallelMacs);
  // The parts' sums over their images, added in part order (padding lanes are zero in each).
  float *acc = e->parts[0].p;
  const size_t len = e->wmd.get_size() / sizeof(float);
  for (int i = 1; i < e->split.count; i++) {
    const float *src = e->parts[i].p;
    for (size_t j = 0; j < len; j++) acc[j] += src[j];
  }
  memory wprim(e->wmd, st().eng, acc);
  memory wuser(user_w(s), st().eng, dw);
  e->to_user.execute(thread_stream(), wprim, wuser);
  thread_stream().wait();
  return true;
}


// A 1x1 convolution with a stride and no padding (the ResNet downsample shortcut) is a 1x1 stride-1
// convolution of the input's subsampled pixels. It runs that way here: oneDNN 2.6.3's strided 1x1
// kernels ("reduce to unit stride") overran their scratchpad on some shapes (filter gradient, 4 input
// channels, 64x64 input: heap corruption, also in a plain C++ program with 2 OpenMP threads), so the
// subsampling is ours and oneDNN only sees unit strides.
namespace {

bool strided_1x1(const ConvShape &s) {
  return s.kh == 1 && s.kw == 1 && (s.sh > 1 || s.sw > 1) && s.pt == 0 && s.pl == 0 && s.dh == 1 && s.dw == 1 && conv_supported(s);
}

ConvShape unit_stride(const ConvShape &s) { return ConvShape{s.n, s.oh, s.ow, s.ci, s.co, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, s.oh, s.ow}; }

// xs[b, i, j, :] = x[b, i * sh, j * sw, :] (gather), or x = 0 except x[b, i * sh, j * sw, :] = xs[b, i, j, :] (scatter).
void subsample(const ConvShape &s, float *x, float *xs, bool scatter) {
  Pool &pool = *st().pool;
  const bool par = (double)s.n * s.h * s.w * s.ci >= 65536;
  if (scatter) {
    const int64_t total = (int64_t)s.n * s.h * s.w * s.ci;
    const int zp = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(st().parts, total / 4096 + 1)));
    pool.run(zp, [&](int p) {
      int64_t a, e;
      part_range(total, zp, p, a, e);
      std::fill(x + a, x + e, 0.f);
    }, par);
  }
  const int64_t rows = (int64_t)s.n * s.oh;
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(st().parts, rows)));
  pool.run(parts, [&](int p) {
    int64_t r0, r1;
    part_range(rows, parts, p, r0, r1);
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = r / s.oh, i = r % s.oh;
      float *full = x + ((b * s.h + i * s.sh) * s.w) * s.ci;
      float *sub = xs + r * s.ow * s.ci;
      for (int64_t j = 0; j < s.ow; j++) {
        if (scatter) std::copy(sub + j * s.ci, sub + (j + 1) * s.ci, full + j * s.sw * s.ci);
        else std::copy(full + j * s.sw * s.ci, full + j * s.sw * s.ci + s.ci, sub + j * s.ci);
      }
    }
  }, par);
}

std::vector<float> &sub_buffer(size_t n) {
  static std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

}  // namespace

bool conv2d_forward(const ConvShape &s, const float *x, const float *w, const float *bias, bool relu, float *y) {
  if (!strided_1x1(s)) return conv2d_forward_direct(s, x, w, bias, relu, y);
  std::vector<float> &xs = sub_buffer((size_t)s.n * s.oh * s.ow * s.ci);
  subsample(s, const_cast<float *>(x), xs.data(), false);
  return conv2d_forward_direct(unit_stride(s), xs.data(), w, bias, relu, y);
}

bool conv2d_backward_data(const ConvShape &s, const float *dy, const float *w, float *dx) {
  if (!strided_1x1(s)) return conv2d_backward_data_direct(s, dy, w, dx);
  std::vector<float> &dxs = sub_buffer((size_t)s.n * s.oh * s.ow * s.ci);
  if (!conv2d_backward_data_direct(unit_stride(s), dy, w, dxs.data())) return false;
  subsample(s, dx, dxs.data(), true);
  return true;
}

bool conv2d_backward_weights(const ConvShape &s, const float *x, const float *dy, float *dw) {
  if (!strided_1x1(s)) return conv2d_backward_weights_direct(s, x, dy, dw);
  std::vector<float> &xs = sub_buffer((size_t)s.n * s.oh * s.ow * s.ci);
  subsample(s, const_cast<float *>(x), xs.data(), false);
  return conv2d_backward_weights_direct(unit_stride(s), xs.data(), dy, dw);
}

namespace {

struct MatMulEntry {
  // Parts along one axis: 0 batch, 1 rows of c, 2 columns of c.
  int axis = 0;
  Split split{1, 1};
  std::vector<PartPrim<dnnl::matmul::primitive_desc, dnnl::matmul>> prims;
};
Cache<MatMulEntry> mm_cache;

// Descriptors of a part: `nb` batch entries, `mp` rows, `np` columns, with the full matrices' strides.
struct MmDescs {
  memory::desc a, b, c, bias;
};

MmDescs mm_descs(const MatMulShape &s, int nb, int mp, int np, bool bias) {
  const memory::dim M = s.m, K = s.k, N = s.n;
  MmDescs d;
  memory::dim ba = s.batch_a == 1 ? 1 : nb, bb = s.batch_b == 1 ? 1 : nb;
  d.a = memory::desc({ba, mp, K}, dt_::f32, s.trans_a ? memory::dims{M * K, 1, M} : memory::dims{M * K, K, 1});
  d.b = memory::desc({bb, K, np}, dt_::f32, s.trans_b ? memory::dims{K * N, 1, K} : memory::dims{K * N, N, 1});
  d.c = memory::desc({nb, mp, np}, dt_::f32, memory::dims{M * N, N, 1});
  if (bias) d.bias = memory::desc({1, 1, np}, dt_::f32, memory::dims{N, N, 1});
  return d;
}

}  // namespace

bool matmul(const MatMulShape &s, const float *a, const float *b, const float *bias, bool relu, float *c) {
  const int batch = std::max(s.batch_a, s.batch_b);
  if (s.m < 1 || s.k < 1 || s.n < 1 || batch < 1) return false;
  if ((s.batch_a != 1 && s.batch_a != batch) || (s.batch_b != 1 && s.batch_b != batch)) return false;
  std::lock_guard<std::mutex> lock(cache_mu);
  const int P = st().parts;
  std::string k = key_of("mm", {s.batch_a, s.batch_b, s.m, s.k, s.n, s.trans_a, s.trans_b, bias ? 1 : 0, relu ? 1 : 0, P});
  MatMulEntry *e = mm_cache.get(k);
  if (!e) {
    auto ne = std::make_unique<MatMulEntry>();
    // Split where each part stays a sizeable product: the batch, else the longer side of c.
    if (batch >= P) ne->axis = 0;
    else ne->axis = s.m >= s.n ? 1 : 2;
    long long len = ne->axis == 0 ? batch : ne->axis == 1 ? s.m : s.n;
    ne->split = Split(len, P);
    dnnl::primitive_attr attr = scratch_attr();
    if (relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(ops);
    }
    for (int sz : split_sizes(ne->split)) {
      int nb = ne->axis == 0 ? sz : batch, mp = ne->axis == 1 ? sz : s.m, np = ne->axis == 2 ? sz : s.n;
      MmDescs d = mm_descs(s, nb, mp, np, bias != nullptr);
      dnnl::matmul::desc md = bias ? dnnl::matmul::desc(d.a, d.b, d.bias, d.c) : dnnl::matmul::desc(d.a, d.b, d.c);
      dnnl::matmul::primitive_desc pd(md, attr, st().eng);
      ne->prims.push_back({pd, dnnl::matmul(pd), pd.scratchpad_desc()});
    }
    st().last_impl = ne->prims[0].pd.impl_info_str();
    e = mm_cache.put(k, std::move(ne));
  }
  const long long M = s.m, K = s.k, N = s.n;
  double macs = (double)batch * M * K * N;
  pool().run(e->split.count, [&](int i) {
    auto &pp = e->prims[size_index(e->split, i)];
    long long p0 = e->split.begin(i);
    int sz = e->split.size(i);
    int nb = e->axis == 0 ? sz : batch, mp = e->axis == 1 ? sz : s.m, np = e->axis == 2 ? sz : s.n;
    MmDescs d = mm_descs(s, nb, mp, np, bias != nullptr);
    long long ao = 0, bo = 0, co = 0, biaso = 0;
    if (e->axis == 0) {
      ao = s.batch_a == 1 ? 0 : p0 * M * K;
      bo = s.batch_b == 1 ? 0 : p0 * K * N;
      co = p0 * M * N;
    } else if (e->axis == 1) {
      ao = s.trans_a ? p0 : p0 * K;
      co = p0 * N;
    } else {
      bo = s.trans_b ? p0 * K : p0;
      co = p0;
      biaso = p0;
    }
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(d.a, st().eng, const_cast<float *>(a + ao))},
                                         {DNNL_ARG_WEIGHTS, memory(d.b, st().eng, const_cast<float *>(b + bo))},
                                         {DNNL_ARG_DST, memory(d.c, st().eng, c + co)}};
    if (bias) args.insert({DNNL_ARG_BIAS, memory(d.bias, st().eng, const_cast<float *>(bias + biaso))});
    exec(pp.prim, pp.scratch, std::move(args));
  }, macs >= kParallelMacs);
  return true;
}

Pool &shared_pool() { return pool(); }
int shared_parts() { return st().parts; }

}  // namespace dt

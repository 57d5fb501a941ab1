// N-API surface of the addon (node-addon-api). Every array argument is a typed array, usually a
// view into the tfjs wasm heap: the kernels read and write it in place. Sizes are checked here
// against the shapes, so a wrong call throws instead of writing past a tensor.
#include <napi.h>

#include <string>
#include <vector>

#include "ops.h"

namespace {

int64_t Int(const Napi::CallbackInfo &info, size_t i) { return info[i].As<Napi::Number>().Int64Value(); }
double Num(const Napi::CallbackInfo &info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }
bool Bool(const Napi::CallbackInfo &info, size_t i) { return info[i].ToBoolean().Value(); }

[[noreturn]] void Fail(const Napi::Env &env, const std::string &msg) { throw Napi::TypeError::New(env, "dinotwins native: " + msg); }

template <class T, napi_typedarray_type Kind>
T *Array(const Napi::CallbackInfo &info, size_t i, int64_t need, const char *name, bool optional = false) {
  Napi::Value v = info[i];
  if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray()) Fail(info.Env(), std::string(name) + " must be a typed array");
  // The C call, not TypedArray::ArrayBuffer(): the threaded wasm build's heap is a SharedArrayBuffer,
  // which napi_get_arraybuffer_info rejects; napi_get_typedarray_info gives the data pointer of either.
  napi_typedarray_type type;
  size_t length = 0;
  void *data = nullptr;
  if (napi_get_typedarray_info(info.Env(), v, &type, &length, &data, nullptr, nullptr) != napi_ok) Fail(info.Env(), std::string(name) + ": not readable");
  if (type != Kind) Fail(info.Env(), std::string(name) + " has the wrong element type");
  if (static_cast<int64_t>(length) < need)
    Fail(info.Env(), std::string(name) + " holds " + std::to_string(length) + " elements, needs " + std::to_string(need));
  return static_cast<T *>(data);
}

float *F(const Napi::CallbackInfo &info, size_t i, int64_t need, const char *name, bool optional = false) {
  return Array<float, napi_float32_array>(info, i, need, name, optional);
}
uint8_t *U8(const Napi::CallbackInfo &info, size_t i, int64_t need, const char *name, bool optional = false) {
  return Array<uint8_t, napi_uint8_array>(info, i, need, name, optional);
}

template <class Fn>
Napi::Value Guard(const Napi::CallbackInfo &info, Fn fn) {
  try {
    return fn();
  } catch (const Napi::Error &) {
    throw;
  } catch (const std::exception &e) {
    throw Napi::Error::New(info.Env(), std::string("dinotwins native: ") + e.what());
  }
}

Napi::Value Init(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    dt::init(static_cast<int>(Int(info, 0)));
    return info.Env().Undefined();
  });
}

// setSerial(bool): every part on the calling thread (tests compare the bits with the pool's).
Napi::Value SetSerial(const Napi::CallbackInfo &info) {
  dt::set_serial(Bool(info, 0));
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo &info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("onednn", dt::onednn_version());
  o.Set("threads", dt::threads());
  o.Set("partsOnWorkers", static_cast<double>(dt::parts_on_workers()));
  o.Set("lastImpl", dt::last_impl());
  return o;
}

// dims: [n, h, w, ci, co, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow]
dt::ConvShape Shape(const Napi::CallbackInfo &info, size_t i) {
  Napi::Int32Array d = info[i].As<Napi::Int32Array>();
  if (d.ElementLength() != 17) Fail(info.Env(), "conv dims must have 17 entries");
  return dt::ConvShape{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15], d[16]};
}
int64_t InSize(const dt::ConvShape &s) { return (int64_t)s.n * s.h * s.w * s.ci; }
int64_t OutSize(const dt::ConvShape &s) { return (int64_t)s.n * s.oh * s.ow * s.co; }
int64_t WSize(const dt::ConvShape &s) { return (int64_t)s.kh * s.kw * s.ci * s.co; }

// conv2dForward(dims, x, w, bias|null, y, relu) -> handled
Napi::Value Conv2dForward(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    dt::ConvShape s = Shape(info, 0);
    bool ok = dt::conv2d_forward(s, F(info, 1, InSize(s), "x"), F(info, 2, WSize(s), "filter"), F(info, 3, s.co, "bias", true), Bool(info, 5),
                                 F(info, 4, OutSize(s), "y"));
    return Napi::Boolean::New(info.Env(), ok);
  });
}

// conv2dBackwardData(dims, dy, w, dx) -> handled
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    dt::ConvShape s = Shape(info, 0);
    bool ok = dt::conv2d_backward_data(s, F(info, 1, OutSize(s), "dy"), F(info, 2, WSize(s), "filter"), F(info, 3, InSize(s), "dx"));
    return Napi::Boolean::New(info.Env(), ok);
  });
}

// conv2dBackwardWeights(dims, x, dy, dw) -> handled
Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    dt::ConvShape s = Shape(info, 0);
    bool ok = dt::conv2d_backward_weights(s, F(info, 1, InSize(s), "x"), F(info, 2, OutSize(s), "dy"), F(info, 3, WSize(s), "dw"));
    return Napi::Boolean::New(info.Env(), ok);
  });
}

// matmul(batchA, batchB, m, k, n, transA, transB, a, b, bias|null, c, relu) -> handled
Napi::Value MatMul(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    dt::MatMulShape s{static_cast<int>(Int(info, 0)), static_cast<int>(Int(info, 1)), static_cast<int>(Int(info, 2)),
                      static_cast<int>(Int(info, 3)), static_cast<int>(Int(info, 4)), Bool(info, 5), Bool(info, 6)};
    int64_t batch = s.batch_a > s.batch_b ? s.batch_a : s.batch_b;
    bool ok = dt::matmul(s, F(info, 7, (int64_t)s.batch_a * s.m * s.k, "a"), F(info, 8, (int64_t)s.batch_b * s.k * s.n, "b"),
                         F(info, 9, s.n, "bias", true), Bool(info, 11), F(info, 10, batch * s.m * s.n, "c"));
    return Napi::Boolean::New(info.Env(), ok);
  });
}

// bnForward(r, c, groups, eps, relu, x, gamma|null, beta|null, residual|null, y, stats)
Napi::Value BnForward(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t r = Int(info, 0);
    int c = static_cast<int>(Int(info, 1)), groups = static_cast<int>(Int(info, 2));
    if (r < 1 || c < 1 || groups < 1 || r % groups != 0) Fail(info.Env(), "batch norm: bad rows/channels/groups");
    dt::bn_forward(F(info, 5, r * c, "x"), F(info, 6, c, "gamma", true), F(info, 7, c, "beta", true), F(info, 8, r * c, "residual", true), r, c,
                   groups, static_cast<float>(Num(info, 3)), Bool(info, 4), F(info, 9, r * c, "y"), F(info, 10, 2LL * groups * c, "stats"));
    return info.Env().Undefined();
  });
}

// bnBackward(r, c, groups, eps, relu, dy, x, stats, gamma|null, beta|null, residual|null, dx, dgamma|null, dbeta|null, dresidual|null)
Napi::Value BnBackward(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t r = Int(info, 0);
    int c = static_cast<int>(Int(info, 1)), groups = static_cast<int>(Int(info, 2));
    if (r < 1 || c < 1 || groups < 1 || r % groups != 0) Fail(info.Env(), "batch norm: bad rows/channels/groups");
    dt::bn_backward(F(info, 5, r * c, "dy"), F(info, 6, r * c, "x"), F(info, 7, 2LL * groups * c, "stats"), F(info, 8, c, "gamma", true),
                    F(info, 9, c, "beta", true), F(info, 10, r * c, "residual", true), r, c, groups, static_cast<float>(Num(info, 3)), Bool(info, 4),
                    F(info, 11, r * c, "dx"), F(info, 12, c, "dgamma", true), F(info, 13, c, "dbeta", true), F(info, 14, r * c, "dresidual", true));
    return info.Env().Undefined();
  });
}

// lnForward(r, c, eps, x, gamma, beta, y)
Napi::Value LnForward(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t r = Int(info, 0);
    int c = static_cast<int>(Int(info, 1));
    dt::ln_forward(F(info, 3, r * c, "x"), F(info, 4, c, "gamma"), F(info, 5, c, "beta"), r, c, static_cast<float>(Num(info, 2)), F(info, 6, r * c, "y"));
    return info.Env().Undefined();
  });
}

// lnBackward(r, c, eps, dy, x, gamma, dx, dgamma, dbeta)
Napi::Value LnBackward(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t r = Int(info, 0);
    int c = static_cast<int>(Int(info, 1));
    dt::ln_backward(F(info, 3, r * c, "dy"), F(info, 4, r * c, "x"), F(info, 5, c, "gamma"), r, c, static_cast<float>(Num(info, 2)),
                    F(info, 6, r * c, "dx"), F(info, 7, c, "dgamma"), F(info, 8, c, "dbeta"));
    return info.Env().Undefined();
  });
}

// geluForward(n, x, y); geluBackward(n, dy, x, dx)
Napi::Value GeluForward(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t n = Int(info, 0);
    dt::gelu_forward(F(info, 1, n, "x"), n, F(info, 2, n, "y"));
    return info.Env().Undefined();
  });
}
Napi::Value GeluBackward(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t n = Int(info, 0);
    dt::gelu_backward(F(info, 1, n, "dy"), F(info, 2, n, "x"), n, F(info, 3, n, "dx"));
    return info.Env().Undefined();
  });
}

// axpby(n, a, b, x, y, out)
Napi::Value Axpby(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t n = Int(info, 0);
    dt::axpby(F(info, 3, n, "x"), F(info, 4, n, "y"), n, static_cast<float>(Num(info, 1)), static_cast<float>(Num(info, 2)), F(info, 5, n, "out"));
    return info.Env().Undefined();
  });
}

// adamFlat(n, [lr, wd, beta1, beta2, eps, bc1, bc2], decoupled, g, scale, p, m, v, decay, active|null, pOut|null, mOut|null, vOut|null)
Napi::Value AdamFlat(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t n = Int(info, 0);
    Napi::Float64Array h = info[1].As<Napi::Float64Array>();
    if (h.ElementLength() != 7) Fail(info.Env(), "adam hyperparameters must have 7 entries");
    dt::AdamStep s{(float)h[0], (float)h[1], (float)h[2], (float)h[3], (float)h[4], (float)h[5], (float)h[6], Bool(info, 2)};
    dt::adam_flat(s, F(info, 3, n, "g"), F(info, 4, 1, "scale"), F(info, 5, n, "p"), F(info, 6, n, "m"), F(info, 7, n, "v"), U8(info, 8, n, "decay"),
                  U8(info, 9, n, "active", true), n, F(info, 10, n, "pOut", true), F(info, 11, n, "mOut", true), F(info, 12, n, "vOut", true));
    return info.Env().Undefined();
  });
}

// square(x, out)
Napi::Value Square(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t n = static_cast<int64_t>(info[0].As<Napi::Float32Array>().ElementLength());
    dt::square(F(info, 0, n, "x"), n, F(info, 1, n, "out"));
    return info.Env().Undefined();
  });
}

// sumAll(x) -> number (the double sum)
Napi::Value SumAll(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t n = static_cast<int64_t>(info[0].As<Napi::Float32Array>().ElementLength());
    return Napi::Number::New(info.Env(), dt::sum_all(F(info, 0, n, "x"), n));
  });
}

// transpose(x, out, shape: Float64Array, perm: Int32Array): 4-byte elements (float32 or int32 views).
Napi::Value Transpose(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    Napi::Float64Array sh = info[2].As<Napi::Float64Array>();
    Napi::Int32Array pm = info[3].As<Napi::Int32Array>();
    const int rank = static_cast<int>(sh.ElementLength());
    if (rank < 1 || static_cast<int>(pm.ElementLength()) != rank) Fail(info.Env(), "transpose: shape and perm must have the same rank >= 1");
    std::vector<int64_t> shape(rank);
    std::vector<int> perm(rank), seen(rank, 0);
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
      shape[d] = static_cast<int64_t>(sh[d]);
      perm[d] = pm[d];
      if (perm[d] < 0 || perm[d] >= rank || seen[perm[d]]++) Fail(info.Env(), "transpose: perm is not a permutation");
      n *= shape[d];
    }
    Napi::TypedArray xa = info[0].As<Napi::TypedArray>();
    napi_typedarray_type kind = xa.TypedArrayType();
    if (kind != napi_float32_array && kind != napi_int32_array) Fail(info.Env(), "transpose: 4-byte elements only");
    auto ptr = [&](size_t i) {
      return kind == napi_float32_array ? reinterpret_cast<uint32_t *>(F(info, i, n, i == 0 ? "x" : "out"))
                                        : reinterpret_cast<uint32_t *>(Array<int32_t, napi_int32_array>(info, i, n, i == 0 ? "x" : "out"));
    };
    dt::transpose4(ptr(0), shape.data(), perm.data(), rank, ptr(1));
    return info.Env().Undefined();
  });
}

// sumRows(x, r, c, out): out[j] = sum_i x[i, j].
Napi::Value SumRows(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t r = Int(info, 1), c = Int(info, 2);
    dt::sum_rows(F(info, 0, r * c, "x"), r, c, F(info, 3, c, "out"));
    return info.Env().Undefined();
  });
}

// Raw pointer and element count of a float32 or uint8 typed array (elements of its own type).
void *Raw(const Napi::CallbackInfo &info, size_t i, int64_t need, const char *name, bool *is_float = nullptr) {
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  const bool f = t.TypedArrayType() == napi_float32_array;
  if (!f && t.TypedArrayType() != napi_uint8_array) Fail(info.Env(), std::string(name) + " must be a Float32Array or Uint8Array");
  if (is_float) *is_float = f;
  return f ? static_cast<void *>(F(info, i, need, name)) : static_cast<void *>(U8(info, i, need, name));
}

int64_t ModeSize(int mode, int64_t rows, int64_t cols) { return mode == dt::kFull ? rows * cols : mode == dt::kRow ? rows : mode == dt::kCol ? cols : 1; }

// binaryBcast(op, a, aMode, b, bMode, rows, cols, out)
Napi::Value BinaryBcast(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    const int op = static_cast<int>(Int(info, 0)), am = static_cast<int>(Int(info, 2)), bm = static_cast<int>(Int(info, 4));
    const int64_t rows = Int(info, 5), cols = Int(info, 6);
    if (op < 0 || op > 13 || am < 0 || am > 3 || bm < 0 || bm > 3) Fail(info.Env(), "binaryBcast: bad op or mode");
    bool af = false, bf = false, of = false;
    void *a = Raw(info, 1, ModeSize(am, rows, cols), "a", &af);
    void *b = Raw(info, 3, ModeSize(bm, rows, cols), "b", &bf);
    void *o = Raw(info, 7, rows * cols, "out", &of);
    const bool logical = op >= 12;
    if (af != !logical || bf != !logical || of != (op <= 5)) Fail(info.Env(), "binaryBcast: operand types do not fit the op");
    dt::binary_bcast(op, a, am, b, bm, rows, cols, o);
    return info.Env().Undefined();
  });
}

// unary(op, x, out, p0, p1)
Napi::Value Unary(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    const int op = static_cast<int>(Int(info, 0));
    if (op < 0 || op > 6) Fail(info.Env(), "unary: bad op");
    int64_t n = static_cast<int64_t>(info[1].As<Napi::TypedArray>().ElementLength());
    bool xf = false, of = false;
    void *x = Raw(info, 1, n, "x", &xf);
    void *o = Raw(info, 2, n, "out", &of);
    if (xf != (op != 6) || of != xf) Fail(info.Env(), "unary: operand types do not fit the op");
    dt::unary(op, x, n, static_cast<float>(Num(info, 3)), static_cast<float>(Num(info, 4)), o);
    return info.Env().Undefined();
  });
}

// select(cond, a, aMode, b, bMode, out)
Napi::Value Select(const Napi::CallbackInfo &info) {
  return Guard(info, [&] {
    int64_t n = static_cast<int64_t>(info[5].As<Napi::Float32Array>().ElementLength());
    const int am = static_cast<int>(Int(info, 2)), bm = static_cast<int>(Int(info, 4));
    if ((am != dt::kFull && am != dt::kScalar) || (bm != dt::kFull && bm != dt::kScalar)) Fail(info.Env(), "select: modes must be full or scalar");
    dt::select(U8(info, 0, n, "cond"), F(info, 1, am == dt::kFull ? n : 1, "a"), am, F(info, 3, bm == dt::kFull ? n : 1, "b"), bm, n, F(info, 5, n, "out"));
    return info.Env().Undefined();
  });
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  exports.Set("binaryBcast", Napi::Function::New(env, BinaryBcast));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("select", Napi::Function::New(env, Select));
  exports.Set("transpose", Napi::Function::New(env, Transpose));
  exports.Set("sumRows", Napi::Function::New(env, SumRows));
  exports.Set("square", Napi::Function::New(env, Square));
  exports.Set("sumAll", Napi::Function::New(env, SumAll));
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setSerial", Napi::Function::New(env, SetSerial));
  exports.Set("conv2dForward", Napi::Function::New(env, Conv2dForward));
  exports.Set("conv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData));
  exports.Set("conv2dBackwardWeights", Napi::Function::New(env, Conv2dBackwardWeights));
  exports.Set("matmul", Napi::Function::New(env, MatMul));
  exports.Set("bnForward", Napi::Function::New(env, BnForward));
  exports.Set("bnBackward", Napi::Function::New(env, BnBackward));
  exports.Set("lnForward", Napi::Function::New(env, LnForward));
  exports.Set("lnBackward", Napi::Function::New(env, LnBackward));
  exports.Set("geluForward", Napi::Function::New(env, GeluForward));
  exports.Set("geluBackward", Napi::Function::New(env, GeluBackward));
  exports.Set("axpby", Napi::Function::New(env, Axpby));
  exports.Set("adamFlat", Napi::Function::New(env, AdamFlat));
  return exports;
}

}  // namespace

NODE_API_MODULE(dinotwins_native, Module)

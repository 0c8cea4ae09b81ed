// The only file that knows about JavaScript: unwraps arguments, re-checks
// them through qk::ops, and maps a failed Status to a thrown QkError.
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "calibrated.h"
#include "dispatch.h"
#include "llama.h"
#include "mapped_file.h"
#include "membench.h"
#include "ops.h"
#include "pool.h"

namespace {

struct AddonData {
  Napi::FunctionReference error_class;  // lib/errors.ts QkError(code, message)
  // the async resource and its name that every decode step's work item
  // shares: made per call, they were ~100 bytes of JS heap a token
  Napi::ObjectReference decode_resource;  // its "name" property holds the name string
};

Napi::Error make_error(Napi::Env env, const char* code, const std::string& message) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data && !data->error_class.IsEmpty()) {
    Napi::Object e = data->error_class.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// Arguments come from lib/native.ts, which has already validated them; these
// checks exist so that the addon never trusts its caller with memory.
struct ArgError {
  const char* code;
  std::string message;
};

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) throw ArgError{qk::kErrArg, std::string(name) + " must be a number"};
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v != std::floor(v) || v < -9007199254740991.0 || v > 9007199254740991.0) {
    throw ArgError{qk::kErrShape, std::string(name) + " must be an integer, got " + std::to_string(v)};
  }
  return static_cast<int64_t>(v);
}

template <typename T>
Napi::TypedArrayOf<T> array_arg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* kind) {
  if (i >= info.Length() || !info[i].IsTypedArray()) throw ArgError{qk::kErrArg, std::string(name) + " must be a " + kind};
  Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
  const napi_typedarray_type want = std::is_same<T, float>::value     ? napi_float32_array
                                    : std::is_same<T, int32_t>::value ? napi_int32_array
                                                                      : napi_uint8_array;
  if (ta.TypedArrayType() != want) throw ArgError{qk::kErrArg, std::string(name) + " must be a " + kind};
  if (ta.ArrayBuffer().IsDetached()) throw ArgError{qk::kErrArg, std::string(name) + "'s ArrayBuffer is detached"};
  return ta.As<Napi::TypedArrayOf<T>>();
}

qk::Precision precision_arg(const Napi::CallbackInfo& info, size_t i) {
  const int64_t p = int_arg(info, i, "precision");
  if (p != 0 && p != 1) throw ArgError{qk::kErrArg, "precision must be 'q8' or 'f32'"};
  return p == 0 ? qk::Precision::kQ8 : qk::Precision::kF32;
}

qk::Layout layout_arg(const Napi::CallbackInfo& info, size_t i) {
  const int64_t l = int_arg(info, i, "layout");
  if (l != 0 && l != 1) throw ArgError{qk::kErrArg, "layout must be 'ggml' or 'interleaved16'"};
  return l == 0 ? qk::Layout::kGgml : qk::Layout::kInterleaved;
}

template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn fn) {
  Napi::Env env = info.Env();
  try {
    qk::Status s = fn();
    if (!s.ok()) make_error(env, s.code, s.message).ThrowAsJavaScriptException();
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// quantize(typeId, src: Float32Array, rows, cols, dst: Uint8Array, importance?: Float32Array | null)
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    const int type = static_cast<int>(int_arg(info, 0, "type"));
    auto src = array_arg<float>(info, 1, "src", "Float32Array");
    const int64_t rows = int_arg(info, 2, "rows"), cols = int_arg(info, 3, "cols");
    auto dst = array_arg<uint8_t>(info, 4, "dst", "Uint8Array");
    if (info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsNull()) {
      auto imp = array_arg<float>(info, 5, "opts.importance", "Float32Array");
      return qk::quantize(type, src.Data(), src.ElementLength(), rows, cols, dst.Data(), dst.ElementLength(), imp.Data(),
                          imp.ElementLength());
    }
    return qk::quantize(type, src.Data(), src.ElementLength(), rows, cols, dst.Data(), dst.ElementLength());
  });
}

// dequantize(typeId, data: Uint8Array, rows, cols, out: Float32Array)
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    const int type = static_cast<int>(int_arg(info, 0, "type"));
    auto src = array_arg<uint8_t>(info, 1, "data", "Uint8Array");
    const int64_t rows = int_arg(info, 2, "rows"), cols = int_arg(info, 3, "cols");
    auto out = array_arg<float>(info, 4, "out", "Float32Array");
    return qk::dequantize(type, src.Data(), src.ElementLength(), rows, cols, out.Data(), out.ElementLength());
  });
}

// matmul(typeId, w: Uint8Array, rows, cols, x: Float32Array, m, out: Float32Array, precision, layout)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    const int type = static_cast<int>(int_arg(info, 0, "type"));
    auto w = array_arg<uint8_t>(info, 1, "w.data", "Uint8Array");
    const int64_t rows = int_arg(info, 2, "w.rows"), cols = int_arg(info, 3, "w.cols");
    auto x = array_arg<float>(info, 4, "x", "Float32Array");
    const int64_t m = int_arg(info, 5, "m");
    auto out = array_arg<float>(info, 6, "out", "Float32Array");
    const qk::Precision p = precision_arg(info, 7);
    const qk::Layout l = layout_arg(info, 8);
    return qk::matmul(type, w.Data(), w.ElementLength(), rows, cols, x.Data(), x.ElementLength(), m, out.Data(),
                      out.ElementLength(), p, l);
  });
}

// interleave / deinterleave(typeId, src: Uint8Array, rows, cols, dst: Uint8Array): prepare() and back.
template <qk::Status (*Op)(int, const uint8_t*, size_t, int64_t, int64_t, uint8_t*, size_t)>
Napi::Value Relayout(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    const int type = static_cast<int>(int_arg(info, 0, "type"));
    auto src = array_arg<uint8_t>(info, 1, "data", "Uint8Array");
    const int64_t rows = int_arg(info, 2, "rows"), cols = int_arg(info, 3, "cols");
    auto dst = array_arg<uint8_t>(info, 4, "dst", "Uint8Array");
    return Op(type, src.Data(), src.ElementLength(), rows, cols, dst.Data(), dst.ElementLength());
  });
}

// quantizeActivations(typeId, x: Float32Array, m, k, dst: Uint8Array)
Napi::Value QuantizeActivations(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    const int type = static_cast<int>(int_arg(info, 0, "type"));
    auto x = array_arg<float>(info, 1, "x", "Float32Array");
    const int64_t m = int_arg(info, 2, "m"), k = int_arg(info, 3, "k");
    auto dst = array_arg<uint8_t>(info, 4, "dst", "Uint8Array");
    return qk::quantize_activations(type, x.Data(), x.ElementLength(), m, k, dst.Data(), dst.ElementLength());
  });
}

// The async matmul pins its four arguments (references keep the typed arrays
// and their buffers alive) until the promise settles.
class MatmulWorker : public Napi::AsyncWorker {
 public:
  MatmulWorker(Napi::Env env, int type, Napi::Uint8Array w, int64_t rows, int64_t cols, Napi::Float32Array x, int64_t m,
               Napi::Float32Array out, qk::Precision p, qk::Layout l)
      : Napi::AsyncWorker(env, "qkernels.matmulAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        type_(type), rows_(rows), cols_(cols), m_(m), p_(p), l_(l),
        w_ptr_(w.Data()), w_len_(w.ElementLength()),
        x_ptr_(x.Data()), x_len_(x.ElementLength()),
        out_ptr_(out.Data()), out_len_(out.ElementLength()) {
    w_ref_ = Napi::Persistent(static_cast<Napi::Object>(w));
    x_ref_ = Napi::Persistent(static_cast<Napi::Object>(x));
    out_ref_ = Napi::Persistent(static_cast<Napi::Object>(out));
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    status_ = qk::matmul(type_, w_ptr_, w_len_, rows_, cols_, x_ptr_, x_len_, m_, out_ptr_, out_len_, p_, l_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (status_.ok()) deferred_.Resolve(out_ref_.Value());
    else deferred_.Reject(make_error(env, status_.code, status_.message).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int type_;
  int64_t rows_, cols_, m_;
  qk::Precision p_;
  qk::Layout l_;
  const uint8_t* w_ptr_;
  size_t w_len_;
  const float* x_ptr_;
  size_t x_len_;
  float* out_ptr_;
  size_t out_len_;
  Napi::ObjectReference w_ref_, x_ref_, out_ref_;
  qk::Status status_;
};

Napi::Value MatmulAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const int type = static_cast<int>(int_arg(info, 0, "type"));
    auto w = array_arg<uint8_t>(info, 1, "w.data", "Uint8Array");
    const int64_t rows = int_arg(info, 2, "w.rows"), cols = int_arg(info, 3, "w.cols");
    auto x = array_arg<float>(info, 4, "x", "Float32Array");
    const int64_t m = int_arg(info, 5, "m");
    auto out = array_arg<float>(info, 6, "out", "Float32Array");
    const qk::Precision p = precision_arg(info, 7);
    const qk::Layout l = layout_arg(info, 8);
    auto* worker = new MatmulWorker(env, type, w, rows, cols, x, m, out, p, l);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// ---- calibrated quantization (GPTQ, AWQ; native/src/calibrated.h) ----
// gptq(type, groupSize, sym, actOrder, damp, batch, weights, rows, cols, calib, n, dst[, times: Float64Array(3)])
//   -> the dampening used; type: a ggml block type id, or -1 for int4.
// awq(type, groupSize, sym, grid, tokens, clip, weights, rows, cols, calib, n, dst, scales[, inputScales | null])
//   -> the chosen ratio (-1 when inputScales were given: no search).
// The async forms run on a worker thread and pin every typed array until they settle.

bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean()) throw ArgError{qk::kErrArg, std::string(name) + " must be a boolean"};
  return info[i].As<Napi::Boolean>().Value();
}

double number_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) throw ArgError{qk::kErrArg, std::string(name) + " must be a number"};
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v)) throw ArgError{qk::kErrArg, std::string(name) + " must be finite"};
  return v;
}

int type_arg(const Napi::CallbackInfo& info, size_t i) {
  const int64_t t = int_arg(info, i, "type");
  if (t < -1 || t >= qk::kTypeIdLimit) throw ArgError{qk::kErrType, "type id " + std::to_string(t) + " is not a calibrated grid"};
  return static_cast<int>(t);
}

// Every argument of one gptq / awq call, unwrapped; the pointers stay valid
// while `pins` (when pinned) hold their typed arrays.
struct CalibJob {
  bool is_awq = false;
  qk::CalibParams p;
  const float* w = nullptr;
  size_t w_len = 0;
  int64_t rows = 0, cols = 0, n = 0;
  const float* x = nullptr;
  size_t x_len = 0;
  uint8_t* dst = nullptr;
  size_t dst_len = 0;
  float* scales = nullptr;
  size_t scales_len = 0;
  double* times = nullptr;  // gptq: optional 3 doubles (hessian, factor, columns seconds)
  double result = 0;
  qk::Status status;

  void run() {
    if (is_awq) {
      status = qk::awq(p, w, w_len, rows, cols, x, x_len, n, dst, dst_len, scales, scales_len, &result);
    } else {
      qk::GptqTimes t;
      status = qk::gptq(p, w, w_len, rows, cols, x, x_len, n, dst, dst_len, &result, &t);
      if (status.ok() && times) {
        times[0] = t.hessian;
        times[1] = t.factor;
        times[2] = t.columns;
      }
    }
  }
};

// Unwraps the arguments; typed arrays are appended to `arrays` (for pinning).
CalibJob calib_args(const Napi::CallbackInfo& info, bool is_awq, std::vector<Napi::Object>* arrays) {
  CalibJob j;
  j.is_awq = is_awq;
  j.p.type = type_arg(info, 0);
  j.p.group_size = int_arg(info, 1, "groupSize");
  j.p.sym = bool_arg(info, 2, "sym");
  if (is_awq) {
    j.p.grid = int_arg(info, 3, "grid");
    j.p.tokens = int_arg(info, 4, "tokens");
    j.p.clip = bool_arg(info, 5, "clip");
  } else {
    j.p.act_order = bool_arg(info, 3, "actOrder");
    j.p.damp = number_arg(info, 4, "damp");
    j.p.batch = int_arg(info, 5, "batch");
  }
  auto w = array_arg<float>(info, 6, "weights", "Float32Array");
  j.rows = int_arg(info, 7, "rows");
  j.cols = int_arg(info, 8, "cols");
  auto x = array_arg<float>(info, 9, "calib", "Float32Array");
  j.n = int_arg(info, 10, "n");
  auto dst = array_arg<uint8_t>(info, 11, "dst", "Uint8Array");
  j.w = w.Data();
  j.w_len = w.ElementLength();
  j.x = x.Data();
  j.x_len = x.ElementLength();
  j.dst = dst.Data();
  j.dst_len = dst.ElementLength();
  arrays->push_back(w);
  arrays->push_back(x);
  arrays->push_back(dst);
  if (is_awq) {
    auto sc = array_arg<float>(info, 12, "scales", "Float32Array");
    j.scales = sc.Data();
    j.scales_len = sc.ElementLength();
    arrays->push_back(sc);
    if (info.Length() > 13 && !info[13].IsUndefined() && !info[13].IsNull()) {
      auto given = array_arg<float>(info, 13, "inputScales", "Float32Array");
      j.p.given_scales = given.Data();
      j.p.given_scales_len = given.ElementLength();
      arrays->push_back(given);
    }
  } else if (info.Length() > 12 && !info[12].IsUndefined() && !info[12].IsNull()) {
    if (!info[12].IsTypedArray() || info[12].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw ArgError{qk::kErrArg, "times must be a Float64Array"};
    }
    auto t = info[12].As<Napi::Float64Array>();
    if (t.ArrayBuffer().IsDetached()) throw ArgError{qk::kErrArg, "times' ArrayBuffer is detached"};
    if (t.ElementLength() != 3) throw ArgError{qk::kErrLength, "times must hold exactly 3 doubles, got " + std::to_string(t.ElementLength())};
    j.times = t.Data();
    arrays->push_back(t);
  }
  // No two of the buffers written and read may overlap: dst is written while
  // weights and calib are read (a caller aliasing them would read garbage).
  auto span = [](const void* p, size_t bytes) { return std::make_pair(reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + bytes); };
  auto overlap = [](std::pair<uintptr_t, uintptr_t> a, std::pair<uintptr_t, uintptr_t> b) { return a.first < b.second && b.first < a.second; };
  const auto sd = span(j.dst, j.dst_len), sw = span(j.w, j.w_len * 4), sx = span(j.x, j.x_len * 4);
  if (overlap(sd, sw) || overlap(sd, sx)) throw ArgError{qk::kErrArg, "dst must not share memory with weights or calib"};
  if (j.scales) {
    const auto ss = span(j.scales, j.scales_len * 4);
    if (overlap(ss, sw) || overlap(ss, sx) || overlap(ss, sd)) throw ArgError{qk::kErrArg, "scales must not share memory with the other buffers"};
  }
  return j;
}

template <bool kAwq>
Napi::Value Calibrated(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::vector<Napi::Object> arrays;
    CalibJob j = calib_args(info, kAwq, &arrays);
    j.run();
    if (!j.status.ok()) throw ArgError{j.status.code, j.status.message};
    return Napi::Number::New(env, j.result);
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

class CalibWorker : public Napi::AsyncWorker {
 public:
  CalibWorker(Napi::Env env, CalibJob job, const std::vector<Napi::Object>& arrays)
      : Napi::AsyncWorker(env, job.is_awq ? "qkernels.awqAsync" : "qkernels.gptqAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)) {
    for (const Napi::Object& a : arrays) pins_.push_back(Napi::Persistent(a));
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { job_.run(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (job_.status.ok()) deferred_.Resolve(Napi::Number::New(env, job_.result));
    else deferred_.Reject(make_error(env, job_.status.code, job_.status.message).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  CalibJob job_;
  std::vector<Napi::ObjectReference> pins_;
};

template <bool kAwq>
Napi::Value CalibratedAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::vector<Napi::Object> arrays;
    CalibJob j = calib_args(info, kAwq, &arrays);
    auto* worker = new CalibWorker(env, std::move(j), arrays);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}
// ---- end of calibrated quantization ----

// misalignment(u8): the view's start address modulo 64, so that prepare()
// can place its tiles on cache-line boundaries (V8 backing stores never move).
Napi::Value Misalignment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto a = array_arg<uint8_t>(info, 0, "data", "Uint8Array");
    return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(a.Data()) % 64));
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// adviseHugePages(u8): transparent huge pages for the buffer's aligned 2 MiB
// pages, asked for before the loader writes weights into it; the bytes advised.
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto a = array_arg<uint8_t>(info, 0, "data", "Uint8Array");
    return Napi::Number::New(env, static_cast<double>(qk::advise_huge_pages(a.Data(), a.ElementLength())));
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", qk::isa_name(qk::active_isa()));
  o.Set("bestIsa", qk::isa_name(qk::best_isa()));
  Napi::Array isas = Napi::Array::New(env);
  uint32_t n = 0;
  for (int i = qk::kIsaCount - 1; i >= 0; --i) {
    if (qk::isa_supported(i)) isas.Set(n++, qk::isa_name(i));
  }
  o.Set("isas", isas);
  o.Set("threads", qk::thread_count());
  o.Set("defaultThreads", qk::default_thread_count());
  return o;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    make_error(env, qk::kErrArg, "isa must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const int isa = name == "auto" ? qk::best_isa() : qk::isa_from_name(name.c_str());
  if (isa < 0 || !qk::set_active_isa(isa)) {
    std::string have;
    for (int i = qk::kIsaCount - 1; i >= 0; --i) {
      if (qk::isa_supported(i)) have += std::string(have.empty() ? "" : ", ") + qk::isa_name(i);
    }
    make_error(env, qk::kErrIsa,
               "isa '" + name + "' is " + (isa < 0 ? "unknown" : "not supported by this CPU or build") + "; expected 'auto' or one of: " + have)
        .ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    const int64_t n = int_arg(info, 0, "threads");
    if (n < 1 || n > 256) return qk::Status::Error(qk::kErrArg, "threads must be an integer in [1, 256], got " + std::to_string(n));
    qk::set_thread_count(static_cast<int>(n));
    return qk::Status::Ok();
  });
}

// memoryBandwidth(bytes | buffer: Uint8Array, reps): best streaming-read GB/s
// over the thread pool, through a buffer of its own or the caller's.
Napi::Value MemoryBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const int64_t reps = int_arg(info, 1, "reps");
    if (reps < 1 || reps > 1000) throw ArgError{qk::kErrArg, "memoryBandwidth needs 1 <= reps <= 1000"};
    if (info.Length() > 0 && info[0].IsTypedArray()) {
      auto buf = array_arg<uint8_t>(info, 0, "buffer", "Uint8Array");
      if (buf.ElementLength() < (size_t{1} << 20)) throw ArgError{qk::kErrArg, "memoryBandwidth needs a buffer of at least 1 MiB"};
      return Napi::Number::New(env, qk::stream_read_gbs(buf.Data(), buf.ElementLength(), static_cast<int>(reps)));
    }
    const int64_t bytes = int_arg(info, 0, "bytes");
    if (bytes < (int64_t{1} << 20) || bytes > (int64_t{1} << 34)) {
      throw ArgError{qk::kErrArg, "memoryBandwidth needs 1 MiB <= bytes <= 16 GiB"};
    }
    return Napi::Number::New(env, qk::stream_read_gbs(static_cast<size_t>(bytes), static_cast<int>(reps)));
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  if (info.Length() >= 1 && info[0].IsFunction()) data->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// ---- mapped files (GGUF) ----
// mapFile(path) -> [handle, size]: maps a whole file copy-on-write and reports
// its size to V8 as external memory. mappedView(handle, offset, length) ->
// ArrayBuffer | null: an external ArrayBuffer over part of the mapping (one
// buffer per tensor or parse window: Node caps one buffer at 4 GiB, files are
// larger); null where the runtime forbids external buffers (Electron), and the
// caller then reads the file instead. The mapping is unmapped when the handle
// and every view are collected, or at once by unmapFile(handle, views), which
// first detaches the views still alive so none can reach unmapped memory.

struct MappedViewRecord;

struct SharedMapping {
  qk::MappedFile file;
  int64_t reported = 0;  // bytes reported to V8 via AdjustExternalMemory
  int refs = 0;          // the handle's finalizer and one per view
  // Every view not yet collected, each with a weak reference, so that
  // unmapFile can detach the live ones. (Kept here, not as JS WeakRefs:
  // V8 holds a WeakRef's target until the current job ends, so a synchronous
  // open/close loop kept every view of every file alive.)
  std::unordered_set<MappedViewRecord*> views;
};

struct MappedViewRecord {
  SharedMapping* mapping;
  napi_ref ref = nullptr;  // weak (count 0): empty once the view is collected
};

void release_mapping(Napi::Env env, SharedMapping* m) {
  if (m->reported != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -m->reported);
    m->reported = 0;
  }
  m->file.unmap();
}

void drop_mapping_ref(Napi::Env env, SharedMapping* m) {
  if (--m->refs > 0) return;
  release_mapping(env, m);
  delete m;
}

void finalize_mapped_view(napi_env env, void* /*data*/, void* hint) {
  auto* rec = static_cast<MappedViewRecord*>(hint);
  SharedMapping* m = rec->mapping;
  m->views.erase(rec);
  if (rec->ref != nullptr) napi_delete_reference(env, rec->ref);
  delete rec;
  drop_mapping_ref(Napi::Env(env), m);
}

SharedMapping* mapping_arg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal()) throw ArgError{qk::kErrArg, "handle must be a mapped-file handle"};
  return info[i].As<Napi::External<SharedMapping>>().Data();
}

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() < 1 || !info[0].IsString()) throw ArgError{qk::kErrArg, "path must be a string"};
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    auto* m = new SharedMapping();
    std::string error;
    if (!m->file.map(path.c_str(), &error)) {
      delete m;
      throw ArgError{qk::kErrArg, "cannot map '" + path + "': " + error};
    }
    m->refs = 1;
    m->reported = static_cast<int64_t>(m->file.size());
    if (m->reported != 0) Napi::MemoryManagement::AdjustExternalMemory(env, m->reported);
    Napi::External<SharedMapping> handle =
        Napi::External<SharedMapping>::New(env, m, [](Napi::Env e, SharedMapping* p) { drop_mapping_ref(e, p); });
    Napi::Array result = Napi::Array::New(env, 2);
    result.Set(uint32_t{0}, handle);
    result.Set(uint32_t{1}, Napi::Number::New(env, static_cast<double>(m->file.size())));
    return result;
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

Napi::Value MappedView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    SharedMapping* m = mapping_arg(info, 0);
    const int64_t offset = int_arg(info, 1, "offset"), length = int_arg(info, 2, "length");
    const uint64_t size = m->file.size();
    if (!m->file.mapped() && size == 0 && length == 0 && offset == 0) return Napi::ArrayBuffer::New(env, 0);
    if (!m->file.mapped()) throw ArgError{qk::kErrArg, "the file was closed"};
    if (offset < 0 || length < 0 || static_cast<uint64_t>(offset) > size || static_cast<uint64_t>(length) > size - static_cast<uint64_t>(offset)) {
      throw ArgError{qk::kErrLength, "view [" + std::to_string(offset) + ", +" + std::to_string(length) + ") lies outside the " + std::to_string(size) + "-byte file"};
    }
    if (length == 0) return Napi::ArrayBuffer::New(env, 0);
    napi_value buffer;
    auto* rec = new MappedViewRecord{m};
    const napi_status st = napi_create_external_arraybuffer(env, m->file.data() + offset, static_cast<size_t>(length),
                                                            finalize_mapped_view, rec, &buffer);
    if (st != napi_ok) {
      delete rec;
      if (st == napi_no_external_buffers_allowed) return env.Null();
      if (env.IsExceptionPending()) env.GetAndClearPendingException();
      throw ArgError{qk::kErrLength, "cannot make an ArrayBuffer of " + std::to_string(length) + " bytes over the mapping (napi status " + std::to_string(st) + ")"};
    }
    m->refs += 1;
    m->views.insert(rec);
    if (napi_create_reference(env, buffer, 0, &rec->ref) != napi_ok) rec->ref = nullptr;
    return Napi::Value(env, buffer);
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// unmapFile(handle): detaches every view still alive (every typed array on it
// then has length 0), then unmaps. If a view cannot be detached the mapping
// stays, since something could still read through it.
Napi::Value UnmapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    SharedMapping* m = mapping_arg(info, 0);
    if (!m->file.mapped()) return env.Undefined();
    for (MappedViewRecord* rec : m->views) {
      if (rec->ref == nullptr) throw ArgError{qk::kErrArg, "a view of the mapping cannot be tracked, so the mapping stays"};
      napi_value v = nullptr;
      if (napi_get_reference_value(env, rec->ref, &v) != napi_ok || v == nullptr) continue;  // collected
      bool detached = false;
      napi_is_detached_arraybuffer(env, v, &detached);
      if (detached) continue;
      if (napi_detach_arraybuffer(env, v) != napi_ok) {
        if (env.IsExceptionPending()) env.GetAndClearPendingException();
        throw ArgError{qk::kErrArg, "cannot detach a view of the mapping, so it stays mapped"};
      }
    }
    release_mapping(env, m);
    return env.Undefined();
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// releaseFreeMemory() -> boolean: returns the C heap's free pages to the
// system (glibc malloc_trim), so that a leak campaign's resident-memory
// samples measure live memory, not the allocator's high-water mark. False
// where the C library has no such call.
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  malloc_trim(0);
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// mappingFaulted(handle) -> boolean: whether a read of the mapping faulted
// because the file shrank under it (qk::MappedFile::faulted).
Napi::Value MappingFaulted(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    return Napi::Boolean::New(env, mapping_arg(info, 0)->file.faulted());
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// adviseMapped(handle, offset, length, willNeed): a paging hint for a byte range.
Napi::Value AdviseMapped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    SharedMapping* m = mapping_arg(info, 0);
    const int64_t offset = int_arg(info, 1, "offset"), length = int_arg(info, 2, "length");
    if (offset < 0 || length < 0) throw ArgError{qk::kErrArg, "offset and length must be >= 0"};
    const bool will_need = info.Length() > 3 && info[3].ToBoolean().Value();
    if (will_need) m->file.will_need(static_cast<size_t>(offset), static_cast<size_t>(length));
    else m->file.dont_need(static_cast<size_t>(offset), static_cast<size_t>(length));
    return env.Undefined();
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}
// ---- end of mapped files (GGUF) ----

// ---- llama decoder ----
// llamaCreate(config, weights) -> handle: the runner keeps pointers into the
// weights' typed arrays, so the handle pins each of them for its lifetime.
// kvCreate(handle, context, f16) -> cache handle. llamaDecode[Async](handle,
// caches[], tokens, positions, cacheIndex, wantLogits, logits): one batch
// through every layer (see llama.h); the async form pins every argument until
// it settles.

struct LlamaHandle {
  qk::LlamaRunner runner;
  std::vector<Napi::ObjectReference> pins;
};

struct KvHandle {
  qk::KvCache cache;
  int64_t reported = 0;
  const qk::LlamaRunner* owner = nullptr;
};

Napi::Object object_arg(const Napi::Value& v, const char* name) {
  if (!v.IsObject()) throw ArgError{qk::kErrArg, std::string(name) + " must be an object"};
  return v.As<Napi::Object>();
}

int64_t int_field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw ArgError{qk::kErrArg, std::string("config.") + key + " must be a number"};
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9007199254740991.0) throw ArgError{qk::kErrArg, std::string("config.") + key + " must be an integer"};
  return static_cast<int64_t>(d);
}

float float_field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw ArgError{qk::kErrArg, std::string("config.") + key + " must be a number"};
  return static_cast<float>(v.As<Napi::Number>().DoubleValue());
}

// A typed array field of `o`, pinned by `h`; its bytes are read in place.
template <typename T>
Napi::TypedArrayOf<T> pinned_array(LlamaHandle& h, const Napi::Object& o, const char* key, const char* kind) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray()) throw ArgError{qk::kErrArg, std::string(key) + " must be a " + kind};
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  const napi_typedarray_type want = std::is_same<T, float>::value ? napi_float32_array : napi_uint8_array;
  if (ta.TypedArrayType() != want) throw ArgError{qk::kErrArg, std::string(key) + " must be a " + kind};
  if (ta.ArrayBuffer().IsDetached()) throw ArgError{qk::kErrArg, std::string(key) + "'s ArrayBuffer is detached"};
  h.pins.push_back(Napi::Persistent(static_cast<Napi::Object>(ta)));
  return ta.As<Napi::TypedArrayOf<T>>();
}

const float* norm_field(LlamaHandle& h, const Napi::Object& o, const char* key, int64_t n) {
  auto a = pinned_array<float>(h, o, key, "Float32Array");
  if (static_cast<int64_t>(a.ElementLength()) != n) throw ArgError{qk::kErrLength, std::string(key) + " must hold " + std::to_string(n) + " floats, got " + std::to_string(a.ElementLength())};
  return a.Data();
}

// {type, data, rows, cols, layout?}
qk::WeightView weight_field(LlamaHandle& h, const Napi::Object& o, const char* key) {
  Napi::Object w = object_arg(o.Get(key), key);
  qk::WeightView v;
  v.type = static_cast<int>(int_field(w, "type"));
  v.rows = int_field(w, "rows");
  v.cols = int_field(w, "cols");
  auto d = pinned_array<uint8_t>(h, w, "data", "Uint8Array");
  v.data = d.Data();
  v.len = d.ElementLength();
  if (w.Has("layout") && !w.Get("layout").IsUndefined()) {
    const int64_t l = int_field(w, "layout");
    if (l != 0 && l != 1) throw ArgError{qk::kErrArg, std::string(key) + ".layout must be 0 (ggml) or 1 (interleaved)"};
    v.layout = l == 1 ? qk::Layout::kInterleaved : qk::Layout::kGgml;
  }
  return v;
}

Napi::Value LlamaCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* h = new LlamaHandle();
  try {
    if (info.Length() < 2) throw ArgError{qk::kErrArg, "llamaCreate(config, weights)"};
    Napi::Object co = object_arg(info[0], "config");
    Napi::Object wo = object_arg(info[1], "weights");
    qk::LlamaConfig c;
    c.hidden = int_field(co, "hidden");
    c.layers = int_field(co, "layers");
    c.heads = int_field(co, "heads");
    c.kv_heads = int_field(co, "kvHeads");
    c.head_dim = int_field(co, "headDim");
    c.ffn = int_field(co, "ffn");
    c.vocab = int_field(co, "vocab");
    c.rope_dims = int_field(co, "ropeDims");
    c.rope_base = float_field(co, "ropeBase");
    c.rope_freq_scale = float_field(co, "ropeFreqScale");
    c.norm_eps = float_field(co, "normEps");
    c.rope_neox = co.Get("ropeNeox").ToBoolean().Value();
    c.max_batch = int_field(co, "maxBatch");
    qk::LlamaWeights w;
    w.tok_embd = weight_field(*h, wo, "tokEmbd");
    w.output = weight_field(*h, wo, "output");
    w.out_norm = norm_field(*h, wo, "outNorm", c.hidden);
    if (wo.Has("ropeFreqs") && wo.Get("ropeFreqs").IsTypedArray()) {
      auto f = pinned_array<float>(*h, wo, "ropeFreqs", "Float32Array");
      w.rope_freqs = f.Data();
      w.rope_freqs_len = f.ElementLength();
    }
    Napi::Value lv = wo.Get("layers");
    if (!lv.IsArray()) throw ArgError{qk::kErrArg, "weights.layers must be an array"};
    Napi::Array layers = lv.As<Napi::Array>();
    for (uint32_t i = 0; i < layers.Length(); ++i) {
      Napi::Object lo = object_arg(layers.Get(i), "a layer");
      qk::LlamaLayerWeights L;
      L.attn_norm = norm_field(*h, lo, "attnNorm", c.hidden);
      L.ffn_norm = norm_field(*h, lo, "ffnNorm", c.hidden);
      L.wq = weight_field(*h, lo, "wq");
      L.wk = weight_field(*h, lo, "wk");
      L.wv = weight_field(*h, lo, "wv");
      L.wo = weight_field(*h, lo, "wo");
      L.gate = weight_field(*h, lo, "gate");
      L.up = weight_field(*h, lo, "up");
      L.down = weight_field(*h, lo, "down");
      w.layers.push_back(L);
    }
    qk::Status s = h->runner.init(c, w);
    if (!s.ok()) throw ArgError{s.code, s.message};
    return Napi::External<LlamaHandle>::New(env, h, [](Napi::Env, LlamaHandle* p) { delete p; });
  } catch (const ArgError& e) {
    delete h;
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

LlamaHandle* llama_arg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal()) throw ArgError{qk::kErrArg, "model must be a llama handle"};
  return info[i].As<Napi::External<LlamaHandle>>().Data();
}

Napi::Value KvCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    LlamaHandle* h = llama_arg(info, 0);
    const int64_t context = int_arg(info, 1, "context");
    const bool f16 = info.Length() > 2 && info[2].ToBoolean().Value();
    auto* kv = new KvHandle();
    qk::Status s = kv->cache.init(h->runner.config(), context, f16);
    if (!s.ok()) {
      delete kv;
      throw ArgError{s.code, s.message};
    }
    kv->owner = &h->runner;
    kv->reported = static_cast<int64_t>(kv->cache.bytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, kv->reported);
    return Napi::External<KvHandle>::New(env, kv, [](Napi::Env e, KvHandle* p) {
      Napi::MemoryManagement::AdjustExternalMemory(e, -p->reported);
      delete p;
    });
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// The batch's arguments, unwrapped and checked against one another.
struct DecodeArgs {
  LlamaHandle* model = nullptr;
  std::vector<qk::KvCache*> caches;
  qk::LlamaBatch batch;
};

DecodeArgs decode_args(const Napi::CallbackInfo& info) {
  DecodeArgs a;
  a.model = llama_arg(info, 0);
  if (info.Length() < 7 || !info[1].IsArray()) throw ArgError{qk::kErrArg, "caches must be an array of KV cache handles"};
  Napi::Array cs = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < cs.Length(); ++i) {
    Napi::Value v = cs.Get(i);
    if (!v.IsExternal()) throw ArgError{qk::kErrArg, "caches must hold KV cache handles"};
    KvHandle* kv = v.As<Napi::External<KvHandle>>().Data();
    if (kv->owner != &a.model->runner) throw ArgError{qk::kErrArg, "a KV cache was made for another model"};
    a.caches.push_back(&kv->cache);
  }
  auto tokens = array_arg<int32_t>(info, 2, "tokens", "Int32Array");
  auto positions = array_arg<int32_t>(info, 3, "positions", "Int32Array");
  auto index = array_arg<int32_t>(info, 4, "cacheIndex", "Int32Array");
  auto want = array_arg<uint8_t>(info, 5, "wantLogits", "Uint8Array");
  auto logits = array_arg<float>(info, 6, "logits", "Float32Array");
  const size_t n = tokens.ElementLength();
  if (positions.ElementLength() != n || index.ElementLength() != n || want.ElementLength() != n) {
    throw ArgError{qk::kErrLength, "tokens, positions, cacheIndex and wantLogits must have the same length"};
  }
  a.batch.tokens = tokens.Data();
  a.batch.positions = positions.Data();
  a.batch.cache_index = index.Data();
  a.batch.want_logits = want.Data();
  a.batch.n = static_cast<int64_t>(n);
  a.batch.caches = a.caches.data();
  a.batch.n_caches = static_cast<int64_t>(a.caches.size());
  a.batch.logits = logits.Data();
  a.batch.logits_len = logits.ElementLength();
  return a;
}

Napi::Value LlamaDecode(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    DecodeArgs a = decode_args(info);
    return a.model->runner.decode(a.batch);
  });
}

// A decode on the pool as a bare napi async work item (not Napi::AsyncWorker,
// which makes a resource object and a name string per call): the promise is
// the only JS object a step makes here.
struct DecodeJob {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  DecodeArgs args;
  napi_ref pins[7] = {};
  qk::Status status;
};

void decode_execute(napi_env, void* data) {
  auto* job = static_cast<DecodeJob*>(data);
  job->status = job->args.model->runner.decode(job->args.batch);
}

void decode_complete(napi_env env, napi_status status, void* data) {
  auto* job = static_cast<DecodeJob*>(data);
  {
    Napi::HandleScope scope(env);
    if (status == napi_ok && job->status.ok()) {
      napi_value undef;
      napi_get_undefined(env, &undef);
      napi_resolve_deferred(env, job->deferred, undef);
    } else {
      const qk::Status s = status == napi_ok ? job->status : qk::Status::Error(qk::kErrArg, "the decode was cancelled");
      napi_reject_deferred(env, job->deferred, make_error(Napi::Env(env), s.code, s.message).Value());
    }
  }
  for (napi_ref r : job->pins) {
    if (r) napi_delete_reference(env, r);
  }
  napi_delete_async_work(env, job->work);
  delete job;
}

Napi::Value LlamaDecodeAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto job = std::make_unique<DecodeJob>();
    job->args = decode_args(info);
    job->args.batch.caches = job->args.caches.data();
    AddonData* data = env.GetInstanceData<AddonData>();
    if (data->decode_resource.IsEmpty()) {
      Napi::Object r = Napi::Object::New(env);
      r.Set("name", Napi::String::New(env, "qkernels.llamaDecode"));
      data->decode_resource = Napi::Persistent(r);
    }
    Napi::Object resource = data->decode_resource.Value();
    napi_value name = resource.Get("name");
    napi_value promise;
    NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &job->deferred, &promise), env.Undefined());
    // The caches array and the typed arrays stay alive until the step is done
    // (the model handle, an External, is held by its engine object).
    napi_status st = napi_ok;
    for (size_t i = 1; i < 7 && st == napi_ok; ++i) st = napi_create_reference(env, info[i], 1, &job->pins[i]);
    if (st == napi_ok) st = napi_create_async_work(env, resource, name, decode_execute, decode_complete, job.get(), &job->work);
    if (st == napi_ok) st = napi_queue_async_work(env, job->work);
    if (st != napi_ok) {
      // settle the promise and drop the pins, as decode_complete would
      napi_reject_deferred(env, job->deferred, make_error(env, qk::kErrArg, "cannot queue the decode").Value());
      for (napi_ref r : job->pins) {
        if (r) napi_delete_reference(env, r);
      }
      if (job->work) napi_delete_async_work(env, job->work);
      return Napi::Value(env, promise);
    }
    job.release();  // decode_complete deletes it
    return Napi::Value(env, promise);
  } catch (const ArgError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}
// ---- end of llama decoder ----

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("quantize", Napi::Function::New(env, Quantize));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize));
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("matmulAsync", Napi::Function::New(env, MatmulAsync));
  exports.Set("interleave", Napi::Function::New(env, Relayout<qk::interleave>));
  exports.Set("deinterleave", Napi::Function::New(env, Relayout<qk::deinterleave>));
  exports.Set("misalignment", Napi::Function::New(env, Misalignment));
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages));
  exports.Set("quantizeActivations", Napi::Function::New(env, QuantizeActivations));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("memoryBandwidth", Napi::Function::New(env, MemoryBandwidth));
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
  exports.Set("mappedView", Napi::Function::New(env, MappedView));
  exports.Set("unmapFile", Napi::Function::New(env, UnmapFile));
  exports.Set("adviseMapped", Napi::Function::New(env, AdviseMapped));
  exports.Set("mappingFaulted", Napi::Function::New(env, MappingFaulted));
  exports.Set("releaseFreeMemory", Napi::Function::New(env, ReleaseFreeMemory));
  exports.Set("llamaCreate", Napi::Function::New(env, LlamaCreate));
  exports.Set("kvCreate", Napi::Function::New(env, KvCreate));
  exports.Set("llamaDecode", Napi::Function::New(env, LlamaDecode));
  exports.Set("llamaDecodeAsync", Napi::Function::New(env, LlamaDecodeAsync));
  exports.Set("gptq", Napi::Function::New(env, Calibrated<false>));
  exports.Set("gptqAsync", Napi::Function::New(env, CalibratedAsync<false>));
  exports.Set("awq", Napi::Function::New(env, Calibrated<true>));
  exports.Set("awqAsync", Napi::Function::New(env, CalibratedAsync<true>));
  return exports;
}

}  // namespace

NODE_API_MODULE(qkernels, Init)

#include "ops.h"

#include <cmath>
#include <limits>
#include <vector>

#include "dispatch.h"
#include "pool.h"

namespace qk {

const char* const kErrType = "ERR_QK_TYPE";
const char* const kErrShape = "ERR_QK_SHAPE";
const char* const kErrLength = "ERR_QK_LENGTH";
const char* const kErrValue = "ERR_QK_VALUE";
const char* const kErrIsa = "ERR_QK_ISA";
const char* const kErrArg = "ERR_QK_ARG";

namespace {

// 2^40 elements bounds every product below far from int64/size_t overflow.
constexpr int64_t kMaxDim = int64_t{1} << 40;

Status weight_type(int type, const TypeTraits** out) {
  const TypeTraits* t = type_traits(type);
  if (!t || !t->is_weight) return Status::Error(kErrType, "type id " + std::to_string(type) + " is not a supported weight type");
  *out = t;
  return Status::Ok();
}

Status check_shape(const TypeTraits& t, int64_t rows, int64_t cols, const char* rows_name, const char* cols_name) {
  if (rows < 0 || rows > kMaxDim) return Status::Error(kErrShape, std::string(rows_name) + " must be an integer in [0, 2^40], got " + std::to_string(rows));
  if (cols <= 0 || cols > kMaxDim) return Status::Error(kErrShape, std::string(cols_name) + " must be a positive integer, got " + std::to_string(cols));
  if (cols % t.block_size != 0) {
    return Status::Error(kErrShape, std::string(cols_name) + " must be a multiple of " + std::to_string(t.block_size) +
                                        " for " + t.name + ", got " + std::to_string(cols));
  }
  if (static_cast<double>(rows) * static_cast<double>(cols) > static_cast<double>(kMaxDim)) {
    return Status::Error(kErrShape, std::string(rows_name) + " x " + cols_name + " is too large");
  }
  return Status::Ok();
}

Status check_len(const char* name, size_t got, size_t want, const char* unit) {
  if (got != want) {
    return Status::Error(kErrLength, std::string(name) + " must hold exactly " + std::to_string(want) + " " + unit + ", got " + std::to_string(got));
  }
  return Status::Ok();
}

Status check_at_least(const char* name, size_t got, size_t want, const char* unit) {
  if (got < want) {
    return Status::Error(kErrLength, std::string(name) + " is too short: needs " + std::to_string(want) + " " + unit + ", got " + std::to_string(got));
  }
  return Status::Ok();
}

template <typename Fn>
void for_rows(int64_t rows, int64_t grain, Fn& fn) {
  parallel_for(rows, grain, [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); }, &fn);
}

int64_t grain_for(int64_t rows, int64_t row_cost) {
  // Aim for chunks of ~64K elements of work, and at least 4 chunks per thread when there is enough.
  int64_t g = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, row_cost));
  const int64_t per_thread = rows / (4 * thread_count());
  if (per_thread >= 1 && g > per_thread) g = per_thread;
  return g;
}

// The calling thread's reusable buffer for quantized activations: grows, never shrinks.
std::vector<uint8_t>& scratch() {
  thread_local std::vector<uint8_t> buf;
  return buf;
}

}  // namespace

size_t activation_bytes(int type, int64_t m, int64_t k) {
  const TypeTraits* t = type_traits(type);
  if (!t || t->act_type == kF32 || m < 0 || k < 0) return 0;
  return static_cast<size_t>(m) * row_bytes(*type_traits(t->act_type), k);
}

Status quantize(int type, const float* src, size_t src_len, int64_t rows, int64_t cols, uint8_t* dst, size_t dst_len,
                const float* importance, size_t importance_len) {
  const TypeTraits* t;
  Status s = weight_type(type, &t);
  if (!s.ok()) return s;
  if (!(s = check_shape(*t, rows, cols, "rows", "cols")).ok()) return s;
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const size_t rb = row_bytes(*t, cols);
  if (!(s = check_len("src", src_len, n, "floats")).ok()) return s;
  if (!(s = check_len("dst", dst_len, static_cast<size_t>(rows) * rb, "bytes")).ok()) return s;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(src[i])) {
      return Status::Error(kErrValue, std::string("src[") + std::to_string(i) + "] is " + (std::isnan(src[i]) ? "NaN" : "infinite") +
                                          " (row " + std::to_string(i / cols) + ", col " + std::to_string(i % cols) + "); quantize needs finite values");
    }
  }
  const TypeKernels& kern = active_kernels().type[type];
  if (!kern.quantize_row) return Status::Error(kErrType, std::string(t->name) + " has no kernels in this build");
  if (importance) {
    if (!kern.quantize_row_importance) {
      return Status::Error(kErrArg, std::string("an importance vector is not used by ") + t->name +
                                        " (llama.cpp's " + t->name + " quantizer takes none); omit opts.importance");
    }
    if (!(s = check_len("importance", importance_len, static_cast<size_t>(cols), "floats (one per column)")).ok()) return s;
    for (size_t i = 0; i < importance_len; ++i) {
      if (!std::isfinite(importance[i]) || importance[i] < 0.f) {
        return Status::Error(kErrValue, "importance[" + std::to_string(i) + "] must be finite and >= 0, got " + std::to_string(importance[i]));
      }
    }
    const QuantizeRowImportanceFn qi = kern.quantize_row_importance;
    auto fn = [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) qi(src + r * cols, dst + r * rb, cols, importance);
    };
    for_rows(rows, grain_for(rows, cols * 64), fn);
    return Status::Ok();
  }
  const QuantizeRowFn q = kern.quantize_row;
  auto fn = [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) q(src + r * cols, dst + r * rb, cols);
  };
  for_rows(rows, grain_for(rows, cols * (t->block_size > 32 ? 64 : 8)), fn);
  return Status::Ok();
}

Status dequantize(int type, const uint8_t* src, size_t src_len, int64_t rows, int64_t cols, float* dst, size_t dst_len) {
  const TypeTraits* t;
  Status s = weight_type(type, &t);
  if (!s.ok()) return s;
  if (!(s = check_shape(*t, rows, cols, "rows", "cols")).ok()) return s;
  const size_t rb = row_bytes(*t, cols);
  if (!(s = check_len("data", src_len, static_cast<size_t>(rows) * rb, "bytes")).ok()) return s;
  if (!(s = check_at_least("out", dst_len, static_cast<size_t>(rows) * static_cast<size_t>(cols), "floats")).ok()) return s;
  const DequantizeRowFn dq = active_kernels().type[type].dequantize_row;
  if (!dq) return Status::Error(kErrType, std::string(t->name) + " has no kernels in this build");
  auto fn = [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) dq(src + r * rb, dst + r * cols, cols);
  };
  for_rows(rows, grain_for(rows, cols), fn);
  return Status::Ok();
}

Status quantize_activations(int type, const float* x, size_t x_len, int64_t m, int64_t k, uint8_t* dst, size_t dst_len) {
  const TypeTraits* t;
  Status s = weight_type(type, &t);
  if (!s.ok()) return s;
  if (t->act_type == kF32) return Status::Error(kErrType, std::string(t->name) + " weights take f32 activations; there is nothing to quantize");
  if (!(s = check_shape(*t, m, k, "m", "k")).ok()) return s;
  const TypeTraits& at = *type_traits(t->act_type);
  if (!(s = check_len("x", x_len, static_cast<size_t>(m) * static_cast<size_t>(k), "floats")).ok()) return s;
  const size_t ab = row_bytes(at, k);
  if (!(s = check_len("dst", dst_len, static_cast<size_t>(m) * ab, "bytes")).ok()) return s;
  const QuantizeRowFn qa = active_kernels().type[t->act_type].quantize_act;
  if (!qa) return Status::Error(kErrType, std::string(at.name) + " activations have no kernels in this build");
  for (int64_t i = 0; i < m; ++i) qa(x + i * k, dst + i * ab, k);
  return Status::Ok();
}

namespace {

// Rows of W are visited in tiles small enough to stay in L1/L2 while every
// activation row passes over them, so m > 1 reads each weight byte from
// memory once.
constexpr int64_t kRowTile = 8;

struct MatmulJob {
  const TypeKernels* k;
  const uint8_t* w;
  size_t rb;
  int64_t rows, cols, m;
  const float* x;
  const uint8_t* act;
  size_t ab;
  float* out;
  bool int_path;
};

// Multi-row kernel path: tiles of 8 weight rows x 4 activation rows, one
// pass over k each. Activation rows go in chunks of kActChunk (kept in L2)
// while the 8 weight rows of a tile stay in L1 across the chunk.
constexpr int64_t kActChunk = 64;

void matmul_range_rows(const MatmulJob& j, int64_t begin, int64_t end) {
  const VecDotRowsFn f = j.k->vec_dot_rows;
  for (int64_t i0 = 0; i0 < j.m; i0 += kActChunk) {
    const int64_t i1 = std::min(j.m, i0 + kActChunk);
    for (int64_t n = begin; n < end; n += 8) {
      const int nw = static_cast<int>(std::min<int64_t>(8, end - n));
      for (int64_t i = i0; i < i1; i += 4) {
        const int na = static_cast<int>(std::min<int64_t>(4, i1 - i));
        f(j.cols, j.w + n * j.rb, j.rb, nw, j.act + i * j.ab, j.ab, na, j.out + i * j.rows + n, static_cast<size_t>(j.rows));
      }
    }
  }
}

void matmul_range(void* ctx, int64_t begin, int64_t end) {
  const MatmulJob& j = *static_cast<const MatmulJob*>(ctx);
  if (j.int_path && j.k->vec_dot_rows) return matmul_range_rows(j, begin, end);
  for (int64_t n0 = begin; n0 < end; n0 += kRowTile) {
    const int64_t n1 = std::min(end, n0 + kRowTile);
    for (int64_t i = 0; i < j.m; ++i) {
      float* y = j.out + i * j.rows;
      if (j.int_path) {
        const uint8_t* a = j.act + i * j.ab;
        for (int64_t n = n0; n < n1; ++n) y[n] = j.k->vec_dot(j.cols, j.w + n * j.rb, a);
      } else {
        const float* xi = j.x + i * j.cols;
        for (int64_t n = n0; n < n1; ++n) y[n] = j.k->vec_dot_f32(j.cols, j.w + n * j.rb, xi);
      }
    }
  }
}

}  // namespace

Status matmul(int type, const uint8_t* w, size_t w_len, int64_t rows, int64_t cols, const float* x, size_t x_len, int64_t m,
              float* out, size_t out_len, Precision p) {
  const TypeTraits* t;
  Status s = weight_type(type, &t);
  if (!s.ok()) return s;
  if (!(s = check_shape(*t, rows, cols, "w.rows", "w.cols")).ok()) return s;
  if (m < 1 || m > kMaxDim) return Status::Error(kErrShape, "m must be a positive integer, got " + std::to_string(m));
  if (static_cast<double>(m) * static_cast<double>(std::max(rows, cols)) > static_cast<double>(kMaxDim)) {
    return Status::Error(kErrShape, "m x max(rows, cols) is too large");
  }
  const size_t rb = row_bytes(*t, cols);
  if (!(s = check_len("w.data", w_len, static_cast<size_t>(rows) * rb, "bytes")).ok()) return s;
  if (!(s = check_len("x", x_len, static_cast<size_t>(m) * static_cast<size_t>(cols), "floats (m x w.cols)")).ok()) return s;
  if (!(s = check_at_least("out", out_len, static_cast<size_t>(m) * static_cast<size_t>(rows), "floats (m x w.rows)")).ok()) return s;
  if (rows == 0) return Status::Ok();

  const KernelTable& kt = active_kernels();
  MatmulJob job{&kt.type[type], w, rb, rows, cols, m, x, nullptr, 0, out, false};
  job.int_path = p == Precision::kQ8 && t->act_type != kF32;
  if (!kt.type[type].vec_dot_f32 || (job.int_path && (!kt.type[type].vec_dot || !kt.type[t->act_type].quantize_act))) {
    return Status::Error(kErrType, std::string(t->name) + " has no matmul kernels in this build");
  }
  if (job.int_path) {
    const TypeTraits& at = *type_traits(t->act_type);
    job.ab = row_bytes(at, cols);
    std::vector<uint8_t>& buf = scratch();
    if (buf.size() < static_cast<size_t>(m) * job.ab) buf.resize(static_cast<size_t>(m) * job.ab);
    const QuantizeRowFn qa = kt.type[t->act_type].quantize_act;
    for (int64_t i = 0; i < m; ++i) qa(x + i * cols, buf.data() + i * job.ab, cols);
    job.act = buf.data();
  }
  // Tasks are rows of W; keep chunks tile-aligned and big enough to amortize the hand-off.
  int64_t grain = std::max<int64_t>(kRowTile, (rows / (4 * thread_count())) / kRowTile * kRowTile);
  grain = std::min<int64_t>(grain, 256);
  // Below ~1M multiply-adds (a few microseconds) waking a worker costs more than it saves.
  if (static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(m) < static_cast<double>(1 << 20)) {
    matmul_range(&job, 0, rows);
    return Status::Ok();
  }
  parallel_for(rows, grain, matmul_range, &job);
  return Status::Ok();
}

}  // namespace qk

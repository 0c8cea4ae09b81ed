#include "ops.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "dispatch.h"
#include "fp16.h"
#include "batch_tile.h"
#include "interleave.h"
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

// The calling thread's reusable buffers for quantized activations: grow, never shrink.
std::vector<uint8_t>& scratch() {
  thread_local std::vector<uint8_t> buf;
  return buf;
}

std::vector<ActBlockMeta>& meta_scratch() {
  thread_local std::vector<ActBlockMeta> buf;
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
  const TypeTraits* t;
  const TypeKernels* k;
  const uint8_t* w;
  size_t rb;
  int64_t rows, cols, m;
  const float* x;
  const uint8_t* act;
  size_t ab;
  const ActBlockMeta* meta;  // interleaved layout with a tile kernel: per-block facts of each activation row
  float* out;
  bool int_path;
  bool interleaved;     // work is split in tiles of 16 rows (the matrix is interleaved, or is tiled on the fly)
  bool tile_from_ggml;  // the matrix is in the ggml layout: each thread interleaves its tiles into a buffer
  bool batch_tiles;     // ggml layout, packed by each thread into batch tiles (batch_tile.h) for the batch kernel
};

// Multi-row kernel path: tiles of 8 weight rows x 4 activation rows, one
// pass over k each. Activation rows go in chunks of kActChunk (kept in L2)
// while the 8 weight rows of a tile stay in L1 across the chunk.
constexpr int64_t kActChunk = 64;

// Weights per block of the loops below: a block of W (~256 KiB) stays in L2
// while every chunk of activation rows (kActChunk rows, ~280 KiB at k = 4096)
// passes over it, so W is read from memory once whatever the thread count.
constexpr size_t kWeightBlockBytes = size_t{256} << 10;

// Rows begin..end of W, row n at w0 + (n - begin) * rb.
void rows_multi(const MatmulJob& j, const uint8_t* w0, int64_t begin, int64_t end) {
  const VecDotRowsFn f = j.k->vec_dot_rows;
  const int64_t block = std::max<int64_t>(8, static_cast<int64_t>(kWeightBlockBytes / j.rb) / 8 * 8);
  for (int64_t b0 = begin; b0 < end; b0 += block) {
    const int64_t b1 = std::min(end, b0 + block);
    for (int64_t i0 = 0; i0 < j.m; i0 += kActChunk) {
      const int64_t i1 = std::min(j.m, i0 + kActChunk);
      for (int64_t n = b0; n < b1; n += 8) {
        const int nw = static_cast<int>(std::min<int64_t>(8, b1 - n));
        for (int64_t i = i0; i < i1; i += 4) {
          const int na = static_cast<int>(std::min<int64_t>(4, i1 - i));
          f(j.cols, w0 + (n - begin) * j.rb, j.rb, nw, j.act + i * j.ab, j.ab, na, j.out + i * j.rows + n, static_cast<size_t>(j.rows));
        }
      }
    }
  }
}

void rows_single(const MatmulJob& j, const uint8_t* w0, int64_t begin, int64_t end) {
  if (j.int_path && j.k->vec_dot_rows) return rows_multi(j, w0, begin, end);
  for (int64_t n0 = begin; n0 < end; n0 += kRowTile) {
    const int64_t n1 = std::min(end, n0 + kRowTile);
    for (int64_t i = 0; i < j.m; ++i) {
      float* y = j.out + i * j.rows;
      if (j.int_path) {
        const uint8_t* a = j.act + i * j.ab;
        for (int64_t n = n0; n < n1; ++n) y[n] = j.k->vec_dot(j.cols, w0 + (n - begin) * j.rb, a);
      } else {
        const float* xi = j.x + i * j.cols;
        for (int64_t n = n0; n < n1; ++n) y[n] = j.k->vec_dot_f32(j.cols, w0 + (n - begin) * j.rb, xi);
      }
    }
  }
}

// Activation rows per tile-kernel call: the 16 weight rows of a tile are
// unpacked once per block for all of them.
constexpr int kTileActs = 8;

// From this batch size on, ggml-layout matrices of a type with a tile kernel
// are tiled on the fly (see matmul).
constexpr int64_t kTileMinBatch = 8;

// interleave_tile, by the ISA's SIMD form for whole tiles when it has one.
void make_tile(const TypeTraits& t, const TypeKernels& k, const uint8_t* rows, size_t rb, int nrows, int64_t cols, uint8_t* tile) {
  if (nrows == kTileRows && k.interleave_full_tile) return k.interleave_full_tile(rows, rb, cols / t.block_size, tile);
  interleave_tile(t, rows, rb, nrows, cols, tile);
}

// A thread's buffer for tiles made on the fly, on a cache line like prepare()'s.
uint8_t* tile_buffer(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  const uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - p % 64) % 64);
}

// Tiles begin..end (16 rows each) of an interleaved matrix, or of a ggml one
// tiled here block by block (tile_from_ggml).
void tiles_range(const MatmulJob& j, int64_t begin, int64_t end) {
  const size_t tile_bytes = kTileRows * j.rb;
  if (j.int_path && j.k->tile_dot) {
    const TileDotFn f = j.k->tile_dot;
    const size_t nb = static_cast<size_t>(j.cols / j.t->block_size);
    const int64_t block = std::max<int64_t>(1, static_cast<int64_t>(kWeightBlockBytes / tile_bytes));
    uint8_t* buf = j.tile_from_ggml ? tile_buffer(static_cast<size_t>(block) * tile_bytes) : nullptr;
    for (int64_t t0 = begin; t0 < end; t0 += block) {
      const int64_t t1 = std::min(end, t0 + block);
      const uint8_t* tiles = j.w + t0 * tile_bytes;  // tile t at tiles + (t - t0) * tile_bytes
      if (buf) {
        for (int64_t t = t0; t < t1; ++t) {
          const int nvalid = static_cast<int>(std::min<int64_t>(kTileRows, j.rows - t * kTileRows));
          make_tile(*j.t, *j.k, j.w + t * kTileRows * j.rb, j.rb, nvalid, j.cols, buf + (t - t0) * tile_bytes);
        }
        tiles = buf;
      }
      for (int64_t i0 = 0; i0 < j.m; i0 += kActChunk) {
        const int64_t i1 = std::min(j.m, i0 + kActChunk);
        for (int64_t t = t0; t < t1; ++t) {
          const int nvalid = static_cast<int>(std::min<int64_t>(kTileRows, j.rows - t * kTileRows));
          for (int64_t i = i0; i < i1; i += kTileActs) {
            const int na = static_cast<int>(std::min<int64_t>(kTileActs, i1 - i));
            f(j.cols, tiles + (t - t0) * tile_bytes, j.act + i * j.ab, j.ab, j.meta + i * nb, nb, na,
              j.out + i * j.rows + t * kTileRows, static_cast<size_t>(j.rows), nvalid);
          }
        }
      }
    }
    return;
  }
  // No kernel for the layout on this ISA (or 'f32' precision): each tile back
  // to ggml rows in this thread's buffer, then the row kernels.
  thread_local std::vector<uint8_t> rows_buf;
  if (rows_buf.size() < tile_bytes) rows_buf.resize(tile_bytes);
  for (int64_t t = begin; t < end; ++t) {
    const int nvalid = static_cast<int>(std::min<int64_t>(kTileRows, j.rows - t * kTileRows));
    deinterleave_tile(*j.t, j.w + t * tile_bytes, j.cols, rows_buf.data(), j.rb, nvalid);
    rows_single(j, rows_buf.data(), t * kTileRows, t * kTileRows + nvalid);
  }
}

// Tiles begin..end of 16 ggml rows, packed block by block into this
// thread's buffer (kWeightBlockBytes of source rows at a time, which every
// chunk of activation rows then passes over).
static_assert(kBatchTileRows == kTileRows, "matmul splits both layouts in the same 16-row units");
void batch_tiles_range(const MatmulJob& j, int64_t begin, int64_t end) {
  const size_t src_tile = kTileRows * j.rb;
  const size_t tile_bytes = static_cast<size_t>(j.cols / j.t->block_size) * static_cast<size_t>(j.k->batch_block_bytes);
  const int64_t block = std::max<int64_t>(1, static_cast<int64_t>(kWeightBlockBytes / src_tile));
  uint8_t* buf = tile_buffer(static_cast<size_t>(block) * tile_bytes);
  const BatchTileDotFn f = j.k->batch_tile_dot;
  for (int64_t t0 = begin; t0 < end; t0 += block) {
    const int64_t t1 = std::min(end, t0 + block);
    for (int64_t t = t0; t < t1; ++t) {
      const int nvalid = static_cast<int>(std::min<int64_t>(kTileRows, j.rows - t * kTileRows));
      j.k->pack_batch_tile(j.w + t * src_tile, j.rb, nvalid, j.cols, buf + (t - t0) * tile_bytes);
    }
    for (int64_t i0 = 0; i0 < j.m; i0 += kActChunk) {
      const int64_t i1 = std::min(j.m, i0 + kActChunk);
      for (int64_t t = t0; t < t1; ++t) {
        const int nvalid = static_cast<int>(std::min<int64_t>(kTileRows, j.rows - t * kTileRows));
        for (int64_t i = i0; i < i1; i += kTileActs) {
          const int na = static_cast<int>(std::min<int64_t>(kTileActs, i1 - i));
          f(j.cols, buf + (t - t0) * tile_bytes, j.act + i * j.ab, j.ab, na, j.out + i * j.rows + t * kTileRows,
            static_cast<size_t>(j.rows), nvalid);
        }
      }
    }
  }
}

void matmul_range(void* ctx, int64_t begin, int64_t end) {
  const MatmulJob& j = *static_cast<const MatmulJob*>(ctx);
  if (j.batch_tiles) return batch_tiles_range(j, begin, end);
  if (j.interleaved) return tiles_range(j, begin, end);
  rows_single(j, j.w + begin * j.rb, begin, end);
}

}  // namespace

namespace {

// interleave() and deinterleave(): the ggml rows are `rows` on one side and
// the tiles on the other.
Status relayout(int type, const uint8_t* src, size_t src_len, int64_t rows, int64_t cols, uint8_t* dst, size_t dst_len,
                bool to_tiles) {
  const TypeTraits* t;
  Status s = weight_type(type, &t);
  if (!s.ok()) return s;
  if (!has_interleaved_layout(type)) return Status::Error(kErrType, std::string(t->name) + " has no interleaved layout");
  if (!(s = check_shape(*t, rows, cols, "rows", "cols")).ok()) return s;
  const size_t rb = row_bytes(*t, cols), ggml = static_cast<size_t>(rows) * rb, tiled = interleaved_bytes(*t, rows, cols);
  if (!(s = check_len("data", src_len, to_tiles ? ggml : tiled, "bytes")).ok()) return s;
  if (!(s = check_len("dst", dst_len, to_tiles ? tiled : ggml, "bytes")).ok()) return s;
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  const TypeKernels& kern = active_kernels().type[type];
  auto fn = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int n = static_cast<int>(std::min<int64_t>(kTileRows, rows - i * kTileRows));
      const size_t at = static_cast<size_t>(i) * kTileRows * rb;  // tile i and its first row are at the same offset
      if (to_tiles) make_tile(*t, kern, src + at, rb, n, cols, dst + at);
      else deinterleave_tile(*t, src + at, cols, dst + at, rb, n);
    }
  };
  for_rows(tiles, grain_for(tiles, kTileRows * cols / 16), fn);
  return Status::Ok();
}

}  // namespace

Status interleave(int type, const uint8_t* src, size_t src_len, int64_t rows, int64_t cols, uint8_t* dst, size_t dst_len) {
  return relayout(type, src, src_len, rows, cols, dst, dst_len, true);
}

Status deinterleave(int type, const uint8_t* src, size_t src_len, int64_t rows, int64_t cols, uint8_t* dst, size_t dst_len) {
  return relayout(type, src, src_len, rows, cols, dst, dst_len, false);
}

namespace {

// Checks one matmul's arguments and fills in its job (everything but the
// quantized activations).
Status setup_job(int type, const uint8_t* w, size_t w_len, int64_t rows, int64_t cols, const float* x, size_t x_len, int64_t m,
                 float* out, size_t out_len, Precision p, Layout layout, MatmulJob* job) {
  const TypeTraits* t;
  Status s = weight_type(type, &t);
  if (!s.ok()) return s;
  if (!(s = check_shape(*t, rows, cols, "w.rows", "w.cols")).ok()) return s;
  if (m < 1 || m > kMaxDim) return Status::Error(kErrShape, "m must be a positive integer, got " + std::to_string(m));
  if (static_cast<double>(m) * static_cast<double>(std::max(rows, cols)) > static_cast<double>(kMaxDim)) {
    return Status::Error(kErrShape, "m x max(rows, cols) is too large");
  }
  const bool interleaved = layout == Layout::kInterleaved;
  if (interleaved && !has_interleaved_layout(type)) return Status::Error(kErrType, std::string(t->name) + " has no interleaved layout");
  const size_t rb = row_bytes(*t, cols);
  const size_t w_want = interleaved ? interleaved_bytes(*t, rows, cols) : static_cast<size_t>(rows) * rb;
  if (!(s = check_len("w.data", w_len, w_want, "bytes")).ok()) return s;
  if (!(s = check_len("x", x_len, static_cast<size_t>(m) * static_cast<size_t>(cols), "floats (m x w.cols)")).ok()) return s;
  if (!(s = check_at_least("out", out_len, static_cast<size_t>(m) * static_cast<size_t>(rows), "floats (m x w.rows)")).ok()) return s;

  const KernelTable& kt = active_kernels();
  *job = MatmulJob{t, &kt.type[type], w, rb, rows, cols, m, x, nullptr, 0, nullptr, out, false, interleaved, false, false};
  job->int_path = p == Precision::kQ8 && t->act_type != kF32;
  // Batches of a few rows and more run on the tile kernel even in the ggml
  // layout: each thread interleaves its tiles as it goes (one pass over W per
  // call), and the tile kernel's gain outweighs that from here on.
  if (!interleaved && job->int_path && m >= kTileMinBatch && has_interleaved_layout(type) && kt.type[type].tile_dot) {
    job->interleaved = true;
    job->tile_from_ggml = true;
  }
  if (!interleaved && job->int_path && m >= kTileMinBatch && kt.type[type].batch_tile_dot && kt.type[type].pack_batch_tile &&
      kt.type[type].batch_block_bytes > 0) {
    job->batch_tiles = true;
  }
  if (!kt.type[type].vec_dot_f32 || (job->int_path && (!kt.type[type].vec_dot || !kt.type[t->act_type].quantize_act))) {
    return Status::Error(kErrType, std::string(t->name) + " has no matmul kernels in this build");
  }
  return Status::Ok();
}

bool needs_meta(const MatmulJob& j) { return j.int_path && j.interleaved && !j.batch_tiles && j.k->tile_dot; }

// Quantizes x (m x cols) once into the calling thread's scratch in the
// activation format of `act_type`, with the per-block facts the tile
// kernels take when with_meta, and points every job at it.
void quantize_input(int act_type, bool with_meta, const float* x, int64_t m, int64_t cols, MatmulJob* jobs, int n) {
  const KernelTable& kt = active_kernels();
  const TypeTraits& at = *type_traits(act_type);
  const size_t ab = row_bytes(at, cols);
  std::vector<uint8_t>& buf = scratch();
  if (buf.size() < static_cast<size_t>(m) * ab) buf.resize(static_cast<size_t>(m) * ab);
  const QuantizeRowFn qa = kt.type[act_type].quantize_act;
  // The tile kernels also take each activation block's scale as a float and
  // the sum of its levels (for q4_0's -8 offset), computed once here.
  const int64_t nb = cols / at.block_size;
  ActBlockMeta* meta = nullptr;
  if (with_meta) {
    std::vector<ActBlockMeta>& mbuf = meta_scratch();
    if (mbuf.size() < static_cast<size_t>(m * nb)) mbuf.resize(static_cast<size_t>(m * nb));
    meta = mbuf.data();
  }
  auto quantize_rows = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      uint8_t* row = buf.data() + i * ab;
      qa(x + i * cols, row, cols);
      if (!with_meta) continue;
      for (int64_t blk = 0; blk < nb; ++blk) {
        const uint8_t* p = row + blk * at.block_bytes;
        uint16_t d;
        std::memcpy(&d, p, 2);
        int32_t sum = 0;
        for (int e2 = 0; e2 < QK32; ++e2) sum += static_cast<int8_t>(p[2 + e2]);
        meta[i * nb + blk] = {fp16_to_f32(d), sum};
      }
    }
  };
  // Prefill-sized batches (m x k of a few million) split the quantization over the pool too.
  if (static_cast<double>(m) * static_cast<double>(cols) >= static_cast<double>(1 << 18)) {
    for_rows(m, std::max<int64_t>(1, (int64_t{1} << 16) / cols), quantize_rows);
  } else {
    quantize_rows(0, m);
  }
  for (int i = 0; i < n; ++i) {
    jobs[i].act = buf.data();
    jobs[i].ab = ab;
    jobs[i].meta = needs_meta(jobs[i]) ? meta : nullptr;
  }
}

int64_t job_units(const MatmulJob& j) { return j.interleaved || j.batch_tiles ? (j.rows + kTileRows - 1) / kTileRows : j.rows; }

// Tasks are rows (tiles) of W; chunks big enough to amortize the hand-off,
// row chunks aligned to the kernels' 8-row tiles.
int64_t job_grain(const MatmulJob& j, int64_t units) {
  if (j.interleaved || j.batch_tiles) return std::min<int64_t>(16, std::max<int64_t>(1, units / (4 * thread_count())));
  const int64_t g = std::max<int64_t>(kRowTile, (j.rows / (4 * thread_count())) / kRowTile * kRowTile);
  return std::min<int64_t>(g, 256);
}

// Below this many multiply-adds (a few microseconds of work) handing part of
// a call to a worker costs more than it saves.
constexpr double kMinParallelMacs = double{1 << 18};

// Several jobs in one pass of the pool: each is cut in its own chunks, and
// the pool hands the chunks out across all of them.
struct JobChunk {
  int job;
  int64_t begin, end;
};

struct JobSet {
  MatmulJob* jobs;
  const JobChunk* chunks;
};

void job_set_range(void* ctx, int64_t begin, int64_t end) {
  const JobSet& set = *static_cast<const JobSet*>(ctx);
  for (int64_t c = begin; c < end; ++c) {
    const JobChunk& ch = set.chunks[c];
    matmul_range(&set.jobs[ch.job], ch.begin, ch.end);
  }
}

void run_jobs(MatmulJob* jobs, int n) {
  double macs = 0;
  for (int i = 0; i < n; ++i) macs += static_cast<double>(jobs[i].rows) * static_cast<double>(jobs[i].cols) * static_cast<double>(jobs[i].m);
  if (macs < kMinParallelMacs || thread_count() <= 1) {
    for (int i = 0; i < n; ++i) matmul_range(&jobs[i], 0, job_units(jobs[i]));
    return;
  }
  if (n == 1) {
    const int64_t units = job_units(jobs[0]);
    parallel_for(units, job_grain(jobs[0], units), matmul_range, &jobs[0]);
    return;
  }
  thread_local std::vector<JobChunk> chunks;
  chunks.clear();
  for (int i = 0; i < n; ++i) {
    const int64_t units = job_units(jobs[i]), grain = job_grain(jobs[i], units);
    for (int64_t b = 0; b < units; b += grain) chunks.push_back({i, b, std::min(units, b + grain)});
  }
  JobSet set{jobs, chunks.data()};
  parallel_for(static_cast<int64_t>(chunks.size()), 1, job_set_range, &set);
}

}  // namespace

Status matmul(int type, const uint8_t* w, size_t w_len, int64_t rows, int64_t cols, const float* x, size_t x_len, int64_t m,
              float* out, size_t out_len, Precision p, Layout layout) {
  MatmulJob job;
  Status s = setup_job(type, w, w_len, rows, cols, x, x_len, m, out, out_len, p, layout, &job);
  if (!s.ok()) return s;
  if (rows == 0) return Status::Ok();
  if (job.int_path) quantize_input(job.t->act_type, needs_meta(job), x, m, cols, &job, 1);
  run_jobs(&job, 1);
  return Status::Ok();
}

Status matmul_shared_input(const MatmulTarget* targets, int n, int64_t cols, const float* x, size_t x_len, int64_t m, Precision p) {
  constexpr int kMaxTargets = 8;
  if (n < 1 || n > kMaxTargets) return Status::Error(kErrArg, "matmul_shared_input takes 1 to 8 matrices, got " + std::to_string(n));
  MatmulJob jobs[kMaxTargets];
  for (int i = 0; i < n; ++i) {
    const MatmulTarget& t = targets[i];
    Status s = setup_job(t.type, t.w, t.w_len, t.rows, cols, x, x_len, m, t.out, t.out_len, p, t.layout, &jobs[i]);
    if (!s.ok()) return s;
  }
  // One quantization serves them all only when they share its format.
  bool shared = true, meta = false;
  for (int i = 0; i < n; ++i) {
    shared = shared && jobs[i].int_path == jobs[0].int_path && jobs[i].t->act_type == jobs[0].t->act_type && jobs[i].rows > 0;
    meta = meta || needs_meta(jobs[i]);
  }
  if (!shared) {
    for (int i = 0; i < n; ++i) {
      const MatmulTarget& t = targets[i];
      Status s = matmul(t.type, t.w, t.w_len, t.rows, cols, x, x_len, m, t.out, t.out_len, p, t.layout);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }
  if (jobs[0].int_path) quantize_input(jobs[0].t->act_type, meta, x, m, cols, jobs, n);
  run_jobs(jobs, n);
  return Status::Ok();
}

}  // namespace qk

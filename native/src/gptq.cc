// GPTQ on one layer (lib/js/gptq.ts is the reference, and documents the
// choices): Hessian H = (2/n) X^T X, dead columns, act-order, dampening with
// retries, U with (H_perm + damp I)^-1 = U^T U by the "reverse Cholesky"
// (lib/js/linalg.ts inverseCholeskyUpper), then the column loop in lazy
// batches. Block parameters are fixed at the first touch of a block from the
// current compensated weights with the type's own reference quantizer (or the
// int4 group grid), levels are the nearest grid levels, and the levels are
// written into the blocks at the end.
//
// The O(n cols^2), O(cols^3) and O(rows cols^2) parts are matrix products
// (gemm_tn below) split over the pool; the in-batch column updates run row by
// row, rows split over the pool (rows are independent given U).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "calibrated.h"
#include "dispatch.h"
#include "fp16.h"
#include "pool.h"
#include "types.h"

namespace qk {
namespace calib {

double js_round(double x) {
  const double f = std::floor(x);
  return x - f >= 0.5 ? f + 1 : f;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace {

bool is_block_type(int t) {
  switch (t) {
    case kQ4_0: case kQ4_1: case kQ5_0: case kQ5_1: case kQ8_0: case kQ4_K: case kQ5_K: case kQ6_K: return true;
    default: return false;
  }
}

}  // namespace

Status check_args(const char* what, const CalibParams& p, size_t weights_len, int64_t rows, int64_t cols, size_t calib_len,
                  int64_t n, size_t dst_len, int* storage, int64_t* group) {
  const std::string w(what);
  constexpr int64_t kMax = int64_t{1} << 40;
  if (rows < 1 || rows > kMax) return Status::Error(kErrShape, w + ": rows must be an integer in [1, 2^40], got " + std::to_string(rows));
  if (cols < 32 || cols > (int64_t{1} << 24) || cols % 32 != 0) {
    return Status::Error(kErrShape, w + ": cols must be a positive multiple of 32 (at most 2^24), got " + std::to_string(cols));
  }
  if (n < 1 || n > kMax) return Status::Error(kErrShape, w + ": n (calibration rows) must be an integer in [1, 2^40], got " + std::to_string(n));
  if (static_cast<double>(rows) * cols > static_cast<double>(kMax) || static_cast<double>(n) * cols > static_cast<double>(kMax)) {
    return Status::Error(kErrShape, w + ": the layer or the calibration set is too large");
  }
  int st;
  int64_t g;
  if (p.type == kCalibInt4) {
    st = p.sym ? kQ4_0 : kQ8_0;
    g = p.group_size == -1 || p.group_size == 0 ? cols : p.group_size;
    if (g < 32 || g % 32 != 0 || cols % g != 0) {
      return Status::Error(kErrShape, w + ": the int4 group size must be -1 or a multiple of 32 that divides cols (" + std::to_string(cols) +
                                          "), got " + std::to_string(p.group_size));
    }
  } else {
    if (!is_block_type(p.type)) {
      return Status::Error(kErrType, w + ": type id " + std::to_string(p.type) +
                                         " is not a calibrated grid (q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, or -1 for int4)");
    }
    st = p.type;
    g = type_traits(st)->block_size;
    if (cols % g != 0) return Status::Error(kErrShape, w + ": cols must be a multiple of " + std::to_string(g) + " for " + type_traits(st)->name + ", got " + std::to_string(cols));
  }
  if (!(p.damp >= 0 && p.damp <= 10)) return Status::Error(kErrArg, w + ": damp must be a number in [0, 10], got " + std::to_string(p.damp));
  if (p.batch < 1 || p.batch > (1 << 16)) return Status::Error(kErrArg, w + ": batch must be an integer in [1, 65536], got " + std::to_string(p.batch));
  if (p.grid < 1 || p.grid > 1000) return Status::Error(kErrArg, w + ": grid must be an integer in [1, 1000], got " + std::to_string(p.grid));
  if (p.tokens < 1 || p.tokens > (int64_t{1} << 24)) return Status::Error(kErrArg, w + ": tokens must be an integer in [1, 2^24], got " + std::to_string(p.tokens));
  const TypeTraits& t = *type_traits(st);
  const size_t want_w = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const size_t want_c = static_cast<size_t>(n) * static_cast<size_t>(cols);
  const size_t want_d = static_cast<size_t>(rows) * row_bytes(t, cols);
  if (weights_len != want_w) return Status::Error(kErrLength, w + ": weights must hold exactly rows x cols = " + std::to_string(want_w) + " floats, got " + std::to_string(weights_len));
  if (calib_len != want_c) return Status::Error(kErrLength, w + ": calib must hold exactly n x cols = " + std::to_string(want_c) + " floats, got " + std::to_string(calib_len));
  if (dst_len != want_d) return Status::Error(kErrLength, w + ": dst must hold exactly " + std::to_string(want_d) + " bytes (" + t.name + "), got " + std::to_string(dst_len));
  *storage = st;
  *group = g;
  return Status::Ok();
}

// ---- the matrix product ----

namespace {

constexpr int kMR = 4;     // micro-tile rows (of C)
constexpr int kNR = 8;     // micro-tile columns
constexpr int64_t kKB = 256;  // depth of one packed panel
constexpr int64_t kNB = 256;  // columns of one packed panel of B

// On x86-64 Linux with GCC the micro-kernel is also compiled for AVX-512 and
// AVX2 (target_clones: the loader picks the widest this CPU runs, so a build
// still runs on any x86-64). Only the vector width differs: every element of
// acc is the same sequence of multiplies and adds (-ffp-contract=off, no FMA),
// so the clones give the same bits.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(QK_NO_TARGET_CLONES)
#define QK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QK_CLONES
#endif

// acc = sum_p a[p][0..MR) x b[p][0..NR) over packed panels; c += alpha * acc.
QK_CLONES void micro(int64_t K, const double* a, const double* b, double* c, int64_t ldc, double alpha, int mr, int nr) {
  double acc[kMR][kNR];
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < kNR; ++j) acc[i][j] = 0;
  for (int64_t p = 0; p < K; ++p) {
    const double* ap = a + p * kMR;
    const double* bp = b + p * kNR;
    for (int i = 0; i < kMR; ++i) {
      const double ai = ap[i];
      for (int j = 0; j < kNR; ++j) acc[i][j] += ai * bp[j];
    }
  }
  if (mr == kMR && nr == kNR) {
    for (int i = 0; i < kMR; ++i)
      for (int j = 0; j < kNR; ++j) c[i * ldc + j] += alpha * acc[i][j];
  } else {
    for (int i = 0; i < mr; ++i)
      for (int j = 0; j < nr; ++j) c[i * ldc + j] += alpha * acc[i][j];
  }
}

// a(p, i) = A[p * a_p + i * a_i], b(p, j) = B[p * b_p + j * b_j]; panels are
// packed (and converted to double) so the micro-kernel reads them contiguously.
template <typename TA, typename TB>
void gemm_t(int64_t M, int64_t N, int64_t K, const TA* A, int64_t a_p, int64_t a_i, const TB* B, int64_t b_p, int64_t b_j,
            double* C, int64_t ldc, double alpha) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  thread_local std::vector<double> pa, pb;
  const int64_t nbw = std::min(N, kNB);
  const int64_t kbd = std::min(K, kKB);
  pb.resize(static_cast<size_t>(((nbw + kNR - 1) / kNR) * kNR * kbd));
  pa.resize(static_cast<size_t>(kMR * kbd));
  for (int64_t k0 = 0; k0 < K; k0 += kKB) {
    const int64_t kb = std::min(kKB, K - k0);
    for (int64_t j0 = 0; j0 < N; j0 += kNB) {
      const int64_t nb = std::min(kNB, N - j0);
      const int64_t nt = (nb + kNR - 1) / kNR;
      // B panel as [tile][p][kNR], zero-padded.
      for (int64_t t = 0; t < nt; ++t) {
        double* dstp = pb.data() + t * kb * kNR;
        const int64_t jj = j0 + t * kNR;
        const int w = static_cast<int>(std::min<int64_t>(kNR, N - jj));
        const TB* src = B + k0 * b_p + jj * b_j;
        if (w == kNR && b_j == 1) {
          for (int64_t p = 0; p < kb; ++p)
            for (int j = 0; j < kNR; ++j) dstp[p * kNR + j] = static_cast<double>(src[p * b_p + j]);
        } else {
          for (int64_t p = 0; p < kb; ++p)
            for (int j = 0; j < kNR; ++j) dstp[p * kNR + j] = j < w ? static_cast<double>(src[p * b_p + j * b_j]) : 0.0;
        }
      }
      for (int64_t i0 = 0; i0 < M; i0 += kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, M - i0));
        const TA* src = A + k0 * a_p + i0 * a_i;
        double* d = pa.data();
        if (mr == kMR && a_i == 1) {
          for (int64_t p = 0; p < kb; ++p)
            for (int i = 0; i < kMR; ++i) d[p * kMR + i] = static_cast<double>(src[p * a_p + i]);
        } else {
          for (int64_t p = 0; p < kb; ++p)
            for (int i = 0; i < kMR; ++i) d[p * kMR + i] = i < mr ? static_cast<double>(src[p * a_p + i * a_i]) : 0.0;
        }
        for (int64_t t = 0; t < nt; ++t) {
          const int64_t jj = j0 + t * kNR;
          const int nr = static_cast<int>(std::min<int64_t>(kNR, N - jj));
          micro(kb, pa.data(), pb.data() + t * kb * kNR, C + i0 * ldc + jj, ldc, alpha, mr, nr);
        }
      }
    }
  }
}

}  // namespace

void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t a_p, int64_t a_i, const double* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha) {
  gemm_t(M, N, K, A, a_p, a_i, B, b_p, b_j, C, ldc, alpha);
}
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_p, int64_t a_i, const float* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha) {
  gemm_t(M, N, K, A, a_p, a_i, B, b_p, b_j, C, ldc, alpha);
}
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_p, int64_t a_i, const double* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha) {
  gemm_t(M, N, K, A, a_p, a_i, B, b_p, b_j, C, ldc, alpha);
}
void gemm_tn(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb, double* C,
             int64_t ldc, double alpha) {
  gemm_t(M, N, K, A, lda, int64_t{1}, B, ldb, int64_t{1}, C, ldc, alpha);
}

// ---- the int4 grid (lib/js/int4.ts) ----

void int4_params(const float* v, int64_t count, bool sym, Int4Params* out) {
  double lo = 0, hi = 0;
  for (int64_t e = 0; e < count; ++e) {
    if (v[e] < lo) lo = v[e];
    if (v[e] > hi) hi = v[e];
  }
  if (sym) {
    hi = std::max(-lo, hi);
    lo = -hi;
  }
  if (lo == 0 && hi == 0) {
    lo = -1;
    hi = 1;
  }
  // as f32ToF16Bits: the double rounded to f32 first
  out->bits = f32_to_fp16(static_cast<float>((hi - lo) / 15));
  out->scale = fp16_to_f32(out->bits);
  out->zero = sym ? 8 : static_cast<int>(std::min(15.0, std::max(0.0, js_round(-lo / out->scale))));
}

int int4_level(double w, const Int4Params& p) {
  if (p.scale == 0) return p.zero;
  const double q = js_round(w / p.scale) + p.zero;
  return q < 0 ? 0 : q > 15 ? 15 : static_cast<int>(q);
}

void write_int4_scales(uint8_t* dst, int64_t count, bool sym, const Int4Params& p) {
  const int bb = sym ? 18 : 34;
  for (int64_t b = 0; b < count / 32; ++b) {
    uint8_t* o = dst + b * bb;
    o[0] = static_cast<uint8_t>(p.bits & 0xff);
    o[1] = static_cast<uint8_t>(p.bits >> 8);
    std::memset(o + 2, sym ? 0x88 : 0, static_cast<size_t>(bb - 2));
  }
}

void quantize_int4_row(const float* src, uint8_t* dst, int64_t k, int64_t group, bool sym) {
  const int bb = sym ? 18 : 34;
  Int4Params p;
  for (int64_t c0 = 0; c0 < k; c0 += group) {
    int4_params(src + c0, group, sym, &p);
    uint8_t* go = dst + (c0 / 32) * bb;
    write_int4_scales(go, group, sym, p);
    for (int64_t e = 0; e < group; ++e) {
      const int q = int4_level(src[c0 + e], p);
      uint8_t* bo = go + (e >> 5) * bb;
      const int l = static_cast<int>(e & 31);
      if (sym) {
        uint8_t& b = bo[2 + (l & 15)];
        b = l < 16 ? static_cast<uint8_t>((b & 0xf0) | q) : static_cast<uint8_t>((b & 0x0f) | (q << 4));
      } else {
        bo[2 + l] = static_cast<uint8_t>((q - p.zero) & 0xff);
      }
    }
  }
}

namespace {

// ---- block grids (lib/js/grid.ts) ----
// Element e of a block dequantizes to a[e] * (q - c[e]) - b[e], q in [lo[e], hi[e]].
struct Grid {
  double a[256], b[256];
  int c[256], lo[256], hi[256];
};

inline uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline double f16(const uint8_t* p) { return fp16_to_f32(u16(p)); }

void fill(Grid& g, int from, int to, double a, double b, int c, int lo, int hi) {
  for (int e = from; e < to; ++e) {
    g.a[e] = a;
    g.b[e] = b;
    g.c[e] = c;
    g.lo[e] = lo;
    g.hi[e] = hi;
  }
}

int scale_min_k4(int j, const uint8_t* q) {
  if (j < 4) return (q[j] & 63) | ((q[j + 4] & 63) << 8);
  const int sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
  const int m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  return sc | (m << 8);
}

void read_grid(int type, const uint8_t* o, Grid& g) {
  switch (type) {
    case kQ4_0: return fill(g, 0, 32, f16(o), 0, 8, 0, 15);
    case kQ4_1: return fill(g, 0, 32, f16(o), -f16(o + 2), 0, 0, 15);
    case kQ5_0: return fill(g, 0, 32, f16(o), 0, 16, 0, 31);
    case kQ5_1: return fill(g, 0, 32, f16(o), -f16(o + 2), 0, 0, 31);
    case kQ8_0: return fill(g, 0, 32, f16(o), 0, 0, -128, 127);
    case kQ4_K:
    case kQ5_K: {
      const float d = static_cast<float>(f16(o)), dmin = static_cast<float>(f16(o + 2));
      const int top = type == kQ4_K ? 15 : 31;
      for (int j = 0; j < 8; ++j) {
        const int sm = scale_min_k4(j, o + 4);
        fill(g, 32 * j, 32 * j + 32, d * static_cast<float>(sm & 0xff), dmin * static_cast<float>(sm >> 8), 0, 0, top);
      }
      return;
    }
    case kQ6_K: {
      const float d = static_cast<float>(f16(o + 208));
      for (int j = 0; j < 16; ++j) fill(g, 16 * j, 16 * j + 16, d * static_cast<float>(static_cast<int8_t>(o[192 + j])), 0, 32, 0, 63);
      return;
    }
    default: return;
  }
}

// Replaces the levels of the block at o, leaving its scales (levels in the grid's range).
void write_levels(int type, uint8_t* o, const int8_t* q) {
  switch (type) {
    case kQ4_0:
    case kQ4_1: {
      uint8_t* s = o + (type == kQ4_0 ? 2 : 4);
      for (int j = 0; j < 16; ++j) s[j] = static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
      return;
    }
    case kQ5_0:
    case kQ5_1: {
      uint8_t* h = o + (type == kQ5_0 ? 2 : 4);
      uint32_t qh = 0;
      for (int j = 0; j < 16; ++j) {
        h[4 + j] = static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
        qh |= (static_cast<uint32_t>((q[j] >> 4) & 1) << j) | (static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16));
      }
      h[0] = static_cast<uint8_t>(qh);
      h[1] = static_cast<uint8_t>(qh >> 8);
      h[2] = static_cast<uint8_t>(qh >> 16);
      h[3] = static_cast<uint8_t>(qh >> 24);
      return;
    }
    case kQ8_0:
      for (int j = 0; j < 32; ++j) o[2 + j] = static_cast<uint8_t>(q[j]);
      return;
    case kQ4_K:
    case kQ5_K: {
      uint8_t* qs = o + (type == kQ4_K ? 16 : 48);
      for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4));
      }
      if (type == kQ5_K) {
        for (int l = 0; l < 32; ++l) {
          int h = 0;
          for (int j = 0; j < 8; ++j) h |= ((q[32 * j + l] >> 4) & 1) << j;
          o[16 + l] = static_cast<uint8_t>(h);
        }
      }
      return;
    }
    case kQ6_K:
      for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
          const int e = 128 * h + l;
          const int q1 = q[e], q2 = q[e + 32], q3 = q[e + 64], q4 = q[e + 96];
          o[64 * h + l] = static_cast<uint8_t>((q1 & 15) | ((q3 & 15) << 4));
          o[64 * h + 32 + l] = static_cast<uint8_t>((q2 & 15) | ((q4 & 15) << 4));
          o[128 + 32 * h + l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
      }
      return;
    default: return;
  }
}

// One 16-element segment's grid: every type's parameters are shared by at
// least 16 consecutive columns (q6_K's sub-blocks; 32 or more elsewhere).
constexpr int kSeg = 16;
struct Seg {
  double a, b;
  int16_t c, lo, hi;
};

inline int nearest_level(const Seg& g, double w) {
  if (g.a == 0) return std::min<int>(std::max<int>(g.c, g.lo), g.hi);
  const double q = js_round((w + g.b) / g.a + g.c);
  return q < g.lo ? g.lo : q > g.hi ? g.hi : static_cast<int>(q);
}

inline double level_value(const Seg& g, int q) { return g.a * (q - g.c) - g.b; }

// ---- linear algebra (lib/js/linalg.ts), blocked and on the pool ----

// 4-lane dot product the compiler vectorises (no reassociation needed).
inline double dot(const double* a, const double* b, int64_t n) {
  double s[4] = {0, 0, 0, 0};
  int64_t p = 0;
  for (; p + 4 <= n; p += 4) {
    for (int l = 0; l < 4; ++l) s[l] += a[p + l] * b[p + l];
  }
  double t = (s[0] + s[1]) + (s[2] + s[3]);
  for (; p < n; ++p) t += a[p] * b[p];
  return t;
}

// H = (2/n) X^T X (both triangles), the diagonal summed exactly as the reference does.
void hessian(const float* x, int64_t n, int64_t k, double* h) {
  constexpr int64_t T = 128;
  const int64_t nt = (k + T - 1) / T;
  std::vector<std::pair<int32_t, int32_t>> tiles;
  for (int64_t bi = 0; bi < nt; ++bi)
    for (int64_t bj = bi; bj < nt; ++bj) tiles.emplace_back(static_cast<int32_t>(bi), static_cast<int32_t>(bj));
  // largest tiles first is moot: all are T x T but the edge ones
  par(static_cast<int64_t>(tiles.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t i0 = tiles[t].first * T, j0 = tiles[t].second * T;
      const int64_t mi = std::min(T, k - i0), mj = std::min(T, k - j0);
      double* c = h + i0 * k + j0;
      for (int64_t i = 0; i < mi; ++i) std::fill(c + i * k, c + i * k + mj, 0.0);
      gemm(mi, mj, n, x + i0, k, 1, x + j0, k, 1, c, k, 1.0);
    }
  });
  // The diagonal (dead columns, act-order's sort) summed in row order, like gram().
  constexpr int64_t CB = 256;
  par((k + CB - 1) / CB, 1, [&](int64_t b, int64_t e) {
    std::vector<double> d(CB);
    for (int64_t cb = b; cb < e; ++cb) {
      const int64_t c0 = cb * CB, m = std::min(CB, k - c0);
      std::fill(d.begin(), d.end(), 0.0);
      for (int64_t s = 0; s < n; ++s) {
        const float* row = x + s * k + c0;
        for (int64_t j = 0; j < m; ++j) d[j] += static_cast<double>(row[j]) * row[j];
      }
      for (int64_t j = 0; j < m; ++j) h[(c0 + j) * k + c0 + j] = d[j];
    }
  });
  const double f = 2.0 / static_cast<double>(n);
  par(k, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t j = i; j < k; ++j) h[i * k + j] *= f;
  });
  par(k, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t j = 0; j < i; ++j) h[i * k + j] = h[j * k + i];
  });
}

constexpr int64_t kFB = 128;  // block of the blocked factorizations

// In place: the lower Cholesky factor of a (k x k row-major; only the lower
// triangle is read), the upper triangle zeroed. False if not positive definite.
bool cholesky_lower(double* a, int64_t k) {
  std::vector<double> pt;
  for (int64_t k0 = 0; k0 < k; k0 += kFB) {
    const int64_t b = std::min(kFB, k - k0);
    // the diagonal block, unblocked (the reference's loop)
    for (int64_t j = 0; j < b; ++j) {
      double* rj = a + (k0 + j) * k + k0;
      const double d = rj[j] - dot(rj, rj, j);
      if (!(d > 0)) return false;
      const double ljj = std::sqrt(d);
      rj[j] = ljj;
      for (int64_t i = j + 1; i < b; ++i) {
        double* ri = a + (k0 + i) * k + k0;
        ri[j] = (ri[j] - dot(ri, rj, j)) / ljj;
      }
    }
    const int64_t r0 = k0 + b, m = k - r0;
    if (m == 0) break;
    // the panel below it: L21 = A21 L11^-T, row by row
    pt.assign(static_cast<size_t>(b * m), 0.0);
    par(m, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        double* ri = a + (r0 + i) * k + k0;
        for (int64_t j = 0; j < b; ++j) {
          const double* rj = a + (k0 + j) * k + k0;
          ri[j] = (ri[j] - dot(ri, rj, j)) / rj[j];
        }
        for (int64_t j = 0; j < b; ++j) pt[j * m + i] = ri[j];
      }
    });
    // the trailing matrix: A22 -= L21 L21^T, lower-triangle tiles
    constexpr int64_t T = 128;
    const int64_t nt = (m + T - 1) / T;
    std::vector<std::pair<int32_t, int32_t>> tiles;
    for (int64_t ti = 0; ti < nt; ++ti)
      for (int64_t tj = 0; tj <= ti; ++tj) tiles.emplace_back(static_cast<int32_t>(ti), static_cast<int32_t>(tj));
    par(static_cast<int64_t>(tiles.size()), 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t i0 = tiles[t].first * T, j0 = tiles[t].second * T;
        const int64_t mi = std::min(T, m - i0), mj = std::min(T, m - j0);
        gemm_tn(mi, mj, b, pt.data() + i0, m, pt.data() + j0, m, a + (r0 + i0) * k + r0 + j0, k, -1.0);
      }
    });
  }
  par(k, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) std::fill(a + i * k + i + 1, a + (i + 1) * k, 0.0);
  });
  return true;
}

// In place: the inverse of a lower-triangular matrix (upper triangle zero).
void invert_lower(double* l, int64_t k) {
  std::vector<double> lt, t, xt;
  for (int64_t i0 = 0; i0 < k; i0 += kFB) {
    const int64_t b = std::min(kFB, k - i0);
    // T = L[I, 0:i0] X[0:i0, 0:i0], with X the inverse already in rows < i0
    if (i0 > 0) {
      lt.assign(static_cast<size_t>(i0 * b), 0.0);  // L[I, 0:i0] transposed: [p][i]
      for (int64_t i = 0; i < b; ++i)
        for (int64_t p = 0; p < i0; ++p) lt[p * b + i] = l[(i0 + i) * k + p];
      t.assign(static_cast<size_t>(b * i0), 0.0);
      constexpr int64_t W = 64;
      par((i0 + W - 1) / W, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t jt = lo; jt < hi; ++jt) {
          const int64_t j0 = jt * W, w = std::min(W, i0 - j0);
          // X[p][j] = 0 for p < j: the sum starts at p = j0
          gemm_tn(b, w, i0 - j0, lt.data() + j0 * b, b, l + j0 * k + j0, k, t.data() + j0, i0, 1.0);
        }
      });
    }
    // X_II, unblocked (the reference's loop)
    for (int64_t i = 0; i < b; ++i) {
      double* ri = l + (i0 + i) * k + i0;
      const double inv = 1 / ri[i];
      for (int64_t j = 0; j < i; ++j) {
        double s = 0;
        for (int64_t p = j; p < i; ++p) s += ri[p] * l[(i0 + p) * k + i0 + j];
        ri[j] = -s * inv;
      }
      ri[i] = inv;
    }
    if (i0 == 0) continue;
    // X[I, 0:i0] = -X_II T
    xt.assign(static_cast<size_t>(b * b), 0.0);  // X_II transposed: [q][i]
    for (int64_t i = 0; i < b; ++i)
      for (int64_t q = 0; q <= i; ++q) xt[q * b + i] = l[(i0 + i) * k + i0 + q];
    for (int64_t i = 0; i < b; ++i) std::fill(l + (i0 + i) * k, l + (i0 + i) * k + i0, 0.0);
    constexpr int64_t W = 256;
    par((i0 + W - 1) / W, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t jt = lo; jt < hi; ++jt) {
        const int64_t j0 = jt * W, w = std::min(W, i0 - j0);
        gemm_tn(b, w, b, xt.data(), b, t.data() + j0, i0, l + i0 * k + j0, k, -1.0);
      }
    });
  }
}

// r := U with (H_perm + damp * mean(diag) I)^-1 = U^T U, H's rows and columns
// in `order`; false if not positive definite. Computed as the reference does:
// Cholesky of the reversed matrix R = L L^T, then U = reverse(L^-1).
bool damped_factor(const double* h, int64_t k, const std::vector<int32_t>& order, double damp, double* r) {
  double mean = 0;
  for (int64_t i = 0; i < k; ++i) mean += h[i * k + i];
  mean /= static_cast<double>(k);
  const double add = damp * mean;
  par(k, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const double* hi_row = h + static_cast<int64_t>(order[k - 1 - i]) * k;
      double* ri = r + i * k;
      for (int64_t j = 0; j <= i; ++j) ri[j] = hi_row[order[k - 1 - j]];
      ri[i] += add;
    }
  });
  if (!cholesky_lower(r, k)) return false;
  invert_lower(r, k);
  // reverse in place: r[i][j] <-> r[k-1-i][k-1-j]
  const int64_t total = k * k;
  par(k / 2 + (k & 1), 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t x = i * k + j, y = total - 1 - x;
        if (x < y) std::swap(r[x], r[y]);
      }
    }
  });
  return true;
}

}  // namespace
}  // namespace calib

Status gptq(const CalibParams& p, const float* weights, size_t weights_len, int64_t rows, int64_t cols, const float* calib,
            size_t calib_len, int64_t n, uint8_t* dst, size_t dst_len, double* damp_used, GptqTimes* times) {
  using namespace calib;
  int st;
  int64_t group;
  Status s = check_args("gptq", p, weights_len, rows, cols, calib_len, n, dst_len, &st, &group);
  if (!s.ok()) return s;
  for (size_t i = 0; i < weights_len; ++i) {
    if (!std::isfinite(weights[i])) return Status::Error(kErrValue, "gptq: weights[" + std::to_string(i) + "] is not finite");
  }
  for (size_t i = 0; i < calib_len; ++i) {
    if (!std::isfinite(calib[i])) return Status::Error(kErrValue, "gptq: calib[" + std::to_string(i) + "] is not finite");
  }
  const TypeKernels& kern = active_kernels().type[st];
  if (!kern.quantize_row) return Status::Error(kErrType, std::string("gptq: ") + type_traits(st)->name + " has no kernels in this build");
  const QuantizeRowFn quantize_row = kern.quantize_row;
  const bool int4 = p.type == kCalibInt4;
  const int64_t k = cols;
  GptqTimes tm;
  double t0 = now_seconds();

  // Hessian, dead columns
  std::vector<double> h(static_cast<size_t>(k * k));
  hessian(calib, n, k, h.data());
  std::vector<uint8_t> dead(static_cast<size_t>(k), 0);
  for (int64_t i = 0; i < k; ++i) {
    if (h[i * k + i] == 0) {
      dead[i] = 1;
      h[i * k + i] = 1;
    }
  }
  double t1 = now_seconds();
  tm.hessian = t1 - t0;

  // column order: by decreasing diagonal, ties in column order
  std::vector<int32_t> order(static_cast<size_t>(k));
  std::iota(order.begin(), order.end(), 0);
  if (p.act_order) {
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return h[b * k + b] < h[a * k + a]; });
  }
  std::vector<double> u(static_cast<size_t>(k * k));
  double damp = p.damp;
  bool ok = false;
  for (int attempt = 0; attempt < 3; ++attempt, damp *= 10) {
    if (damped_factor(h.data(), k, order, damp, u.data())) {
      ok = true;
      break;
    }
  }
  if (!ok) {
    return Status::Error(kErrValue, "gptq: the calibration Hessian is not positive definite even with dampening " + std::to_string(damp / 10) +
                                        " of its mean diagonal");
  }
  std::vector<double>().swap(h);
  double t2 = now_seconds();
  tm.factor = t2 - t1;

  const TypeTraits& tt = *type_traits(st);
  const int64_t bs = tt.block_size, bb = tt.block_bytes;
  const int64_t rb = static_cast<int64_t>(row_bytes(tt, cols));
  const int64_t nseg = cols / kSeg;

  // w: the weights being compensated, columns in processing order
  std::vector<double> w(static_cast<size_t>(rows * k));
  par(rows, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      for (int64_t q = 0; q < k; ++q) {
        const int32_t c = order[q];
        w[r * k + q] = dead[c] ? 0.0 : weights[r * k + c];
      }
    }
  });
  std::vector<int32_t> pos(static_cast<size_t>(k));
  for (int64_t q = 0; q < k; ++q) pos[order[q]] = static_cast<int32_t>(q);
  // the processing position at which each block / group gets its parameters
  std::vector<int32_t> trigger(static_cast<size_t>(k), -1);
  {
    std::vector<uint8_t> fixed(static_cast<size_t>(k / group), 0);
    for (int64_t q = 0; q < k; ++q) {
      const int64_t gi = order[q] / group;
      if (!fixed[gi]) {
        fixed[gi] = 1;
        trigger[q] = static_cast<int32_t>(gi);
      }
    }
  }
  std::vector<Seg> grid(static_cast<size_t>(rows * nseg));
  std::vector<int8_t> level(static_cast<size_t>(rows * k));

  // the first failure in the reference's order (column position, then row)
  std::mutex fail_mu;
  int64_t fail_q = -1, fail_r = -1, fail_col = -1;
  auto note_failure = [&](int64_t q, int64_t r, int64_t col) {
    std::lock_guard<std::mutex> lk(fail_mu);
    if (fail_q < 0 || q < fail_q || (q == fail_q && r < fail_r)) {
      fail_q = q;
      fail_r = r;
      fail_col = col;
    }
  };

  const int64_t B = std::max<int64_t>(1, p.batch);
  std::vector<double> errt(static_cast<size_t>(std::min(B, k) * rows));  // [k][r]
  for (int64_t i1 = 0; i1 < k; i1 += B) {
    const int64_t i2 = std::min(i1 + B, k);
    par(rows, std::max<int64_t>(1, std::min<int64_t>(16, rows / (4 * thread_count()))), [&](int64_t lo, int64_t hi) {
      std::vector<float> vals(static_cast<size_t>(group));
      Grid g;
      for (int64_t r = lo; r < hi; ++r) {
        double* wr = w.data() + r * k;
        Seg* gr = grid.data() + r * nseg;
        for (int64_t q = i1; q < i2; ++q) {
          if (trigger[q] >= 0) {
            // the block's (group's) parameters from its current weights
            const int64_t c0 = static_cast<int64_t>(trigger[q]) * group;
            for (int64_t e = 0; e < group; ++e) vals[e] = static_cast<float>(wr[pos[c0 + e]]);
            uint8_t* blk = dst + r * rb + (c0 / bs) * bb;
            int zero = -1;
            if (int4) {
              Int4Params ip;
              int4_params(vals.data(), group, p.sym, &ip);
              zero = ip.zero;
              write_int4_scales(blk, group, p.sym, ip);
            } else {
              quantize_row(vals.data(), blk, group);
            }
            bool bad = false;
            for (int64_t b = 0; b < group / bs && !bad; ++b) {
              read_grid(st, blk + b * bb, g);
              for (int64_t e = 0; e < bs; ++e) {
                if (!std::isfinite(g.a[e])) {
                  note_failure(q, r, c0 + b * bs);
                  bad = true;
                  break;
                }
              }
              for (int64_t e = 0; e < bs; e += kSeg) {
                Seg& sg = gr[(c0 + b * bs + e) / kSeg];
                sg.a = g.a[e];
                sg.b = g.b[e];
                sg.c = static_cast<int16_t>(g.c[e]);
                const bool narrowed = st == kQ8_0 && zero >= 0;  // asymmetric int4: the levels q - zero, q in 0..15
                sg.lo = static_cast<int16_t>(narrowed ? -zero : g.lo[e]);
                sg.hi = static_cast<int16_t>(narrowed ? 15 - zero : g.hi[e]);
              }
            }
            if (bad) break;
          }
          const int32_t c = order[q];
          const Seg& sg = gr[c / kSeg];
          const double wv = wr[q];
          const int lv = nearest_level(sg, wv);
          level[r * k + c] = static_cast<int8_t>(lv);
          const double e = (wv - level_value(sg, lv)) / u[q * k + q];
          errt[(q - i1) * rows + r] = e;
          const double* uq = u.data() + q * k;
          for (int64_t j = q + 1; j < i2; ++j) wr[j] -= e * uq[j];
        }
      }
    });
    if (fail_q >= 0) {
      return Status::Error(kErrValue, "gptq: row " + std::to_string(fail_r) + "'s block at column " + std::to_string(fail_col) +
                                          " has a scale beyond fp16's range");
    }
    // the batch's errors reach the remaining columns in one product
    if (i2 < k) {
      constexpr int64_t RT = 32;
      par((rows + RT - 1) / RT, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t r0 = t * RT, mr = std::min(RT, rows - r0);
          gemm_tn(mr, k - i2, i2 - i1, errt.data() + r0, rows, u.data() + i1 * k + i2, k, w.data() + r0 * k + i2, k, -1.0);
        }
      });
    }
  }

  par(rows, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      for (int64_t b = 0; b < cols / bs; ++b) write_levels(st, dst + r * rb + b * bb, level.data() + r * k + b * bs);
    }
  });
  tm.columns = now_seconds() - t2;
  if (times) *times = tm;
  *damp_used = damp;
  return Status::Ok();
}

}  // namespace qk

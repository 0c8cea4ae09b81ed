// GPTQ on one layer (lib/js/gptq.ts is the reference, and documents the
// choices): Hessian H = (2/n) X^T X, dead columns, act-order, dampening with
// retries, U with (H_perm + damp I)^-1 = U^T U by the "reverse Cholesky"
// (lib/js/linalg.ts inverseCholeskyUpper), then the column loop in lazy
// batches. Block parameters are fixed at the first touch of a block from the
// current compensated weights with the type's own reference quantizer (or the
// int4 group grid), levels are the nearest grid levels, and the levels are
// written into the blocks at the end. Also the argument checks GPTQ and AWQ
// share.
//
// The O(n cols^2), O(cols^3) and O(rows cols^2) parts are matrix products
// (dense.h) split over the pool; the in-batch column updates run row by row,
// rows split over the pool (rows are independent given U). The grids are in
// block_grid.h.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "block_grid.h"
#include "calibrated.h"
#include "dense.h"
#include "dispatch.h"
#include "pool.h"
#include "types.h"

namespace qk {
namespace calib {

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

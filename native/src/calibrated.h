// Calibrated quantization of one linear layer: GPTQ (gptq.cc) and AWQ
// (awq.cc), on the thread pool. lib/js/gptq.ts and lib/js/awq.ts are the
// float64 references; these follow them choice for choice (same column order,
// same dampening retries, same block parameters from the type's own reference
// quantizer, same grid rounding, same AWQ search), with the float sums in
// another order, so a rounding tie can fall the other way.
//
// Plain portable C++ (the generic part of the build): the heavy loops are
// matrix products (dense.h) whose micro-kernel comes from the kernel table.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops.h"
#include "pool.h"

namespace qk {

// What GPTQ and AWQ are told (lib/backend.ts CalibParams). type: a ggml block
// type id (q4_0, q4_1, q5_0, q5_1, q8_0, q4_K, q5_K, q6_K) or kCalibInt4, GPTQ's
// 4-bit groups, stored as q4_0 (sym) or q8_0 holding q - zero (asym).
constexpr int kCalibInt4 = -1;

struct CalibParams {
  int type = kCalibInt4;
  int64_t group_size = 128;  // int4 only: columns per group (-1 or 0: the whole row)
  bool sym = true;
  bool act_order = false;  // gptq
  double damp = 0.01;      // gptq
  int64_t batch = 128;     // gptq
  int64_t grid = 20;       // awq
  int64_t tokens = 512;    // awq
  bool clip = true;        // awq
  // awq: given input scales (cols finite floats > 0): no exponent search, *ratio = -1
  const float* given_scales = nullptr;
  size_t given_scales_len = 0;
};

// Seconds spent in GPTQ's three phases (for benchmarks).
struct GptqTimes {
  double hessian = 0;
  double factor = 0;   // ordering, dampening, Cholesky and triangular inverse (all attempts)
  double columns = 0;  // the column loop, its trailing updates and the final level writes
};

// weights: rows x cols floats (row o is output o), calib: n x cols floats,
// dst: rows * row_bytes(storage type, cols) bytes. *damp_used: the dampening
// that made the Hessian positive definite (p.damp, or 10x / 100x it).
Status gptq(const CalibParams& p, const float* weights, size_t weights_len, int64_t rows, int64_t cols, const float* calib,
            size_t calib_len, int64_t n, uint8_t* dst, size_t dst_len, double* damp_used, GptqTimes* times = nullptr);

// As gptq for the buffers; scales: cols floats, the input scales s (the matrix
// holds Q(W diag(s))). *ratio: the chosen exponent, or -1 with p.given_scales.
Status awq(const CalibParams& p, const float* weights, size_t weights_len, int64_t rows, int64_t cols, const float* calib,
           size_t calib_len, int64_t n, uint8_t* dst, size_t dst_len, float* scales, size_t scales_len, double* ratio);

namespace calib {

// Shared by gptq.cc and awq.cc (defined in gptq.cc); the grids are in
// block_grid.h, the matrix products and factorizations in dense.h.

// The checks both entry points make; on success *storage is the ggml type the
// result is stored as and *group the columns sharing one set of parameters.
Status check_args(const char* what, const CalibParams& p, size_t weights_len, int64_t rows, int64_t cols, size_t calib_len,
                  int64_t n, size_t dst_len, int* storage, int64_t* group);

// parallel_for over a lambda fn(begin, end).
template <typename Fn>
void par(int64_t n, int64_t grain, const Fn& fn) {
  if (n <= 0) return;
  parallel_for(
      n, grain < 1 ? 1 : grain, [](void* c, int64_t b, int64_t e) { (*static_cast<const Fn*>(c))(b, e); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

// Wall clock seconds.
double now_seconds();

}  // namespace calib
}  // namespace qk

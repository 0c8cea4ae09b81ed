// The scale/level searches of llama.cpp's K-quant and importance-weighted
// quantizers (ggml-quants.c: nearest_int, make_qx_quants, make_qkx2_quants,
// make_qkx3_quants, make_qp_quants), written from the format reference
// (quant-formats.md 1.3 and 4.1). Every operation is a separate f32 operation
// in the order written there: the file must be compiled with
// -ffp-contract=off, and nothing here may be reassociated or fused, or the
// quantized bytes stop matching llama.cpp's.
#pragma once
#include <cstdint>
#include <cstring>

#include "fp16.h"

namespace qk {

// Round to nearest, ties to even, by adding 1.5 * 2^23 and reading the low
// mantissa bits. Exact for |v| <= 4194303 (ggml asserts that, in debug builds
// only). Every other float still gives what llama.cpp's release build
// computes, a pure function of the bits of f32(v + 12582912): +-inf gives
// -4194304, values beyond the exact range give their low mantissa bits, with
// one project rule: a NaN gives 0. That is llama.cpp's value for the default
// NaN that x86 and ARM produce for invalid operations and for the usual quiet
// NaN 0x7FC00000 of input data; only a NaN input with a non-zero payload in
// its low 22 bits would differ from llama.cpp (which returns the payload).
// The rule keeps C++ and JavaScript (which cannot see NaN payloads reliably)
// identical.
inline int nearest_int(float v) {
  const float s = v + 12582912.f;
  if (s != s) return 0;
  int32_t i;
  std::memcpy(&i, &s, 4);
  return (i & 0x007FFFFF) - 0x00400000;
}

// fp16 bits of a scale computed by a search. A NaN (only from non-finite
// input: inf - inf, 0 * inf in the weighted sums) is stored as 0x7E00 whatever
// its sign: the sign of a NaN made by an invalid operation is a property of
// the CPU (x86 makes it negative, ARM positive), so without this rule the same
// input would give different bytes on x86 and aarch64. For every non-NaN value
// this is f32_to_fp16.
inline uint16_t fp16_scale_bits(float v) { return v != v ? static_cast<uint16_t>(0x7E00) : f32_to_fp16(v); }

// Symmetric levels: L[i] in [0, 2*nmax - 1] (L - nmax is the signed level);
// returns the scale (sign opposite to the element of largest |x|).
// qw: per-element weights, or nullptr for the rmse_type default
// (1: x^2, 2: 1, 3: |x|, otherwise sqrt|x|). rmse_type 0: plain rounding;
// negative: one pass, returns the mean of the fitted and the initial scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);

// Asymmetric levels L[i] in [0, nmax], value ~ scale*L - the_min
// (the_min >= 0 written to *the_min). Laux: n bytes of scratch.
float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad);

// As make_qkx2_quants, except that w may be nullptr (weights x^2) and the
// degenerate test is max <= min.
float make_qkx3_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad);

// Unsigned levels for non-negative x (the sub-block scales and mins of the
// importance K-quants), L in [0, nmax] for such x. Levels are stored as
// uint8_t exactly as ggml does, so a negative x (possible in principle: a
// sub-block scale of the search can be negative) wraps modulo 256 the same way.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* qw);

}  // namespace qk

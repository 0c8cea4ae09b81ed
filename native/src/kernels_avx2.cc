// AVX2 + FMA + F16C kernels (x86-64 only).
//
// The file is compiled with the project's global flags (no -mavx2): the ISA is
// switched on for this file only by target_avx2_begin.h below, and the table is
// only used when CPUID/XGETBV say the CPU and OS support it (dispatch.cc).
// Every header is included BEFORE the pragma so that no inline function shared
// with other translation units (fp16.h, the standard library) is ever compiled
// with AVX2 enabled: the linker could otherwise keep that copy for the whole
// program and run it on a CPU without AVX2.
//
// Numerics (see reference/quant-formats.md):
// - quantize_row (q8_0, q4_0, q4_1), quantize_act (q8_0, q8_1) and every
//   dequantize_row are byte-exact with kernels_scalar.cc, including the x86
//   behaviour of the scalar float->int conversions on overflow (inf/NaN give
//   INT_MIN, of which only the low bits are kept).
// - vec_dot computes the same exact integer per block as the scalar kernel;
//   only the float accumulation order differs.
// - No alignment is assumed for any pointer.
#if defined(__x86_64__) || defined(_M_X64)

#include <cstdint>
#include <cstring>

#include "fp16.h"
#include "kernels.h"
#include "types.h"

#include "target_avx2_begin.h"

namespace qk {
namespace {

// ---- small helpers ------------------------------------------------------

#include "simd_avx2.h"
#include "rows_x86.h"
#include "pairs_avx2.h"

inline void st_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
// Equal to f32_to_fp16 for every non-NaN input (nearest-even, subnormals, inf).
inline uint16_t f2h(float f) { return static_cast<uint16_t>(_cvtss_sh(f, 0)); }

inline float hmin(__m256 v) {
  __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_min_ps(s, _mm_movehl_ps(s, s));
  s = _mm_min_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline int first_set(uint32_t mask) {  // mask != 0
  int i = 0;
  while (!((mask >> i) & 1u)) ++i;
  return i;
}

// 16 bytes of nibbles -> 32 bytes 0..15 in element order (low nibbles are
// elements 0..15, high nibbles elements 16..31).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i b = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
  return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

// Low bytes of four vectors of 8 int32 (elements 0..7, 8..15, 16..23, 24..31)
// as 32 bytes in order: the truncation a scalar int -> int8 cast performs.
inline __m256i low_bytes_32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ff = _mm256_set1_epi32(0xFF);
  a = _mm256_and_si256(a, ff); b = _mm256_and_si256(b, ff);
  c = _mm256_and_si256(c, ff); d = _mm256_and_si256(d, ff);
  const __m256i ab = _mm256_packus_epi32(a, b);     // a0-3 b0-3 | a4-7 b4-7
  const __m256i cd = _mm256_packus_epi32(c, d);
  const __m256i r = _mm256_packus_epi16(ab, cd);    // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
  return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Pack levels (each 0..15 as int32): byte j = q[j] | q[j+16] << 4.
inline __m128i pack_nibbles(__m256i q0, __m256i q1, __m256i q2, __m256i q3) {
  const __m256i lo = _mm256_or_si256(q0, _mm256_slli_epi32(q2, 4));  // bytes 0..7
  const __m256i hi = _mm256_or_si256(q1, _mm256_slli_epi32(q3, 4));  // bytes 8..15
  const __m256i w = _mm256_packus_epi32(lo, hi);                      // lo0-3 hi0-3 | lo4-7 hi4-7
  const __m256i p = _mm256_permute4x64_epi64(w, 0xD8);                // lo0-3 lo4-7 | hi0-3 hi4-7
  return _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
}

inline __m256 loadu8(const float* p) { return _mm256_loadu_ps(p); }

// ---- float types: dequantize_row and vec_dot_f32 -------------------------

void dequantize_f32(const uint8_t* x, float* y, int64_t k) {
  std::memcpy(y, x, static_cast<size_t>(k) * 4);
}

void dequantize_f16(const uint8_t* x, float* y, int64_t k) {
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    const __m128i* p = reinterpret_cast<const __m128i*>(x + 2 * i);
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(p)));
    _mm256_storeu_ps(y + i + 8, _mm256_cvtph_ps(_mm_loadu_si128(p + 1)));
    _mm256_storeu_ps(y + i + 16, _mm256_cvtph_ps(_mm_loadu_si128(p + 2)));
    _mm256_storeu_ps(y + i + 24, _mm256_cvtph_ps(_mm_loadu_si128(p + 3)));
  }
  for (; i + 8 <= k; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 2 * i))));
  }
  for (; i < k; ++i) y[i] = _cvtsh_ss(ld_u16(x + 2 * i));
}

inline __m256 bf16x8(const uint8_t* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

void dequantize_bf16(const uint8_t* x, float* y, int64_t k) {
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    _mm256_storeu_ps(y + i, bf16x8(x + 2 * i));
    _mm256_storeu_ps(y + i + 8, bf16x8(x + 2 * i + 16));
  }
  for (; i + 8 <= k; i += 8) _mm256_storeu_ps(y + i, bf16x8(x + 2 * i));
  for (; i < k; ++i) y[i] = bf16_to_f32(ld_u16(x + 2 * i));
}

// The f32 baseline: four independent 8-wide FMA chains per 32 floats (two
// rounds of them per iteration, so 8 accumulators hide the FMA latency).
float dot_f32_f32(int64_t k, const uint8_t* wb, const float* x) {
  const float* w = reinterpret_cast<const float*>(wb);  // memcpy-free: loadu has no alignment needs
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  __m256 a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(), a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
  int64_t i = 0;
  float head = 0.f;
  // Align the weight stream to 32 bytes (a misaligned stream costs ~20% of
  // DRAM bandwidth here), when the row is at least float-aligned.
  const uintptr_t addr = reinterpret_cast<uintptr_t>(wb);
  if ((addr & 3) == 0) {
    int64_t n = static_cast<int64_t>(((32 - (addr & 31)) & 31) / 4);
    if (n > k) n = k;
    for (; i < n; ++i) {
      float wi;
      std::memcpy(&wi, wb + 4 * i, 4);
      head += wi * x[i];
    }
  }
  for (; i + 64 <= k; i += 64) {
    a0 = _mm256_fmadd_ps(loadu8(w + i), loadu8(x + i), a0);
    a1 = _mm256_fmadd_ps(loadu8(w + i + 8), loadu8(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(loadu8(w + i + 16), loadu8(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(loadu8(w + i + 24), loadu8(x + i + 24), a3);
    a4 = _mm256_fmadd_ps(loadu8(w + i + 32), loadu8(x + i + 32), a4);
    a5 = _mm256_fmadd_ps(loadu8(w + i + 40), loadu8(x + i + 40), a5);
    a6 = _mm256_fmadd_ps(loadu8(w + i + 48), loadu8(x + i + 48), a6);
    a7 = _mm256_fmadd_ps(loadu8(w + i + 56), loadu8(x + i + 56), a7);
  }
  for (; i + 8 <= k; i += 8) a0 = _mm256_fmadd_ps(loadu8(w + i), loadu8(x + i), a0);
  a0 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  a4 = _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7));
  float s = hsum(_mm256_add_ps(a0, a4)) + head;
  for (; i < k; ++i) {
    float wi;
    std::memcpy(&wi, wb + 4 * i, 4);
    s += wi * x[i];
  }
  return s;
}

float dot_f16_f32(int64_t k, const uint8_t* w, const float* x) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    const __m128i* p = reinterpret_cast<const __m128i*>(w + 2 * i);
    a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(p)), loadu8(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(p + 1)), loadu8(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(p + 2)), loadu8(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(p + 3)), loadu8(x + i + 24), a3);
  }
  for (; i + 8 <= k; i += 8) {
    a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i))),
                         loadu8(x + i), a0);
  }
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < k; ++i) s += _cvtsh_ss(ld_u16(w + 2 * i)) * x[i];
  return s;
}

float dot_bf16_f32(int64_t k, const uint8_t* w, const float* x) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    a0 = _mm256_fmadd_ps(bf16x8(w + 2 * i), loadu8(x + i), a0);
    a1 = _mm256_fmadd_ps(bf16x8(w + 2 * i + 16), loadu8(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(bf16x8(w + 2 * i + 32), loadu8(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(bf16x8(w + 2 * i + 48), loadu8(x + i + 24), a3);
  }
  for (; i + 8 <= k; i += 8) a0 = _mm256_fmadd_ps(bf16x8(w + 2 * i), loadu8(x + i), a0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < k; ++i) s += bf16_to_f32(ld_u16(w + 2 * i)) * x[i];
  return s;
}

// ---- q4_0 ---------------------------------------------------------------


// Reference quantizer, operation for operation (mul, then add; no FMA).
void quantize_q4_0(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kQ40) {
    const __m256 v0 = loadu8(x), v1 = loadu8(x + 8), v2 = loadu8(x + 16), v3 = loadu8(x + 24);
    const __m256 b0 = abs_ps(v0), b1 = abs_ps(v1), b2 = abs_ps(v2), b3 = abs_ps(v3);
    const float amax = hmax(_mm256_max_ps(_mm256_max_ps(b0, b1), _mm256_max_ps(b2, b3)));
    float m = 0.f;
    if (amax > 0.f) {
      // First element whose |x| equals the maximum (the scalar scan's strict '>').
      const __m256 am = _mm256_set1_ps(amax);
      const uint32_t mask = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(b0, am, _CMP_EQ_OQ))) |
                            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(b1, am, _CMP_EQ_OQ))) << 8 |
                            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(b2, am, _CMP_EQ_OQ))) << 16 |
                            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(b3, am, _CMP_EQ_OQ))) << 24;
      m = x[first_set(mask)];
    }
    const float d = m / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    st_u16(y, f2h(d));
    const __m256 vid = _mm256_set1_ps(id), half8 = _mm256_set1_ps(8.5f);
    const __m256i m15 = _mm256_set1_epi32(15), m0f = _mm256_set1_epi32(0xF);
    __m256i q[4];
    const __m256 v[4] = {v0, v1, v2, v3};
    for (int j = 0; j < 4; ++j) {
      const __m256 t = _mm256_add_ps(_mm256_mul_ps(v[j], vid), half8);
      // min(15, (int)t); inf/NaN give INT_MIN whose low nibble is 0, as in the scalar code.
      q[j] = _mm256_and_si256(_mm256_min_epi32(_mm256_cvttps_epi32(t), m15), m0f);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 2), pack_nibbles(q[0], q[1], q[2], q[3]));
  }
}

// Four vectors of 8 levels of a 16-byte nibble array, elements 0..7, 8..15,
// 16..23, 24..31, as floats, minus kBias (exact integers).
template <int kBias>
inline void nibble_levels_ps(const uint8_t* qs, __m256& l0, __m256& l1, __m256& l2, __m256& l3) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i lo = _mm256_cvtepu8_epi32(v);                         // bytes 0..7
  const __m256i hi = _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(v, v));  // bytes 8..15
  const __m256i m = _mm256_set1_epi32(0xF), b = _mm256_set1_epi32(kBias);
  l0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(lo, m), b));
  l1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(hi, m), b));
  l2 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(lo, 4), b));
  l3 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(hi, 4), b));
}

void dequantize_q4_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ40, y += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(x));
    __m256 l0, l1, l2, l3;
    nibble_levels_ps<8>(x + 2, l0, l1, l2, l3);
    // (q - 8) * d, as the scalar code (exact: a 4-bit integer times an fp16 value).
    _mm256_storeu_ps(y, _mm256_mul_ps(l0, d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(l1, d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(l2, d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(l3, d));
  }
}

// 'q8' dots. Blocks are taken in pairs: 128-bit lane l of a pair vector holds
// four int32 partial sums of block l (elements 0..15 and 16..31 of each block
// sit in the same lane of the lo / hi vectors). Four pairs (8 blocks) are
// folded with hadd into one vector of exact block sums S, ordered
// [b0 b2 b4 b6 | b1 b3 b5 b7]; the 8 scales are packed in that order with
// pinsrw, so each 8 blocks cost one cvt, one mul and one FMA.
inline __m256i pair128(const uint8_t* p0, const uint8_t* p1) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p0))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1)), 1);
}

inline int hsum8_i32(__m256i v) { return hsum_i32(v); }

// 'f32' dot: weights rebuilt exactly as the scalar dequantizer does
// ((q - 8) * d, also for an inf scale), then FMA with x.
float dot_q4_0_f32(int64_t k, const uint8_t* w, const float* x) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ40, x += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(w));
    __m256 l0, l1, l2, l3;
    nibble_levels_ps<8>(w + 2, l0, l1, l2, l3);
    a0 = _mm256_fmadd_ps(_mm256_mul_ps(l0, d), loadu8(x), a0);
    a1 = _mm256_fmadd_ps(_mm256_mul_ps(l1, d), loadu8(x + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_mul_ps(l2, d), loadu8(x + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_mul_ps(l3, d), loadu8(x + 24), a3);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// ---- q4_1 ---------------------------------------------------------------

void quantize_q4_1(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kQ41) {
    const __m256 v0 = loadu8(x), v1 = loadu8(x + 8), v2 = loadu8(x + 16), v3 = loadu8(x + 24);
    float mn = hmin(_mm256_min_ps(_mm256_min_ps(v0, v1), _mm256_min_ps(v2, v3)));
    const float mx = hmax(_mm256_max_ps(_mm256_max_ps(v0, v1), _mm256_max_ps(v2, v3)));
    if (mn == 0.f) {
      // The scalar scan keeps the first zero it meets: its sign is stored.
      for (int i = 0; i < QK32; ++i) {
        if (x[i] == 0.f) { mn = x[i]; break; }
      }
    }
    float d = (mx - mn) / 15.f;
    if (d == 0.f) d = 0.f;  // the scalar min and max are the same element then: +0
    const float id = d != 0.f ? 1.f / d : 0.f;
    st_u16(y, f2h(d));
    st_u16(y + 2, f2h(mn));
    const __m256 vid = _mm256_set1_ps(id), vmn = _mm256_set1_ps(mn), half = _mm256_set1_ps(0.5f);
    const __m256i m15 = _mm256_set1_epi32(15), m0f = _mm256_set1_epi32(0xF);
    __m256i q[4];
    const __m256 v[4] = {v0, v1, v2, v3};
    for (int j = 0; j < 4; ++j) {
      const __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v[j], vmn), vid), half);
      q[j] = _mm256_and_si256(_mm256_min_epi32(_mm256_cvttps_epi32(t), m15), m0f);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 4), pack_nibbles(q[0], q[1], q[2], q[3]));
  }
}

void dequantize_q4_1(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ41, y += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(x)), m = _mm256_set1_ps(h2f(x + 2));
    __m256 l0, l1, l2, l3;
    nibble_levels_ps<0>(x + 4, l0, l1, l2, l3);
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_mul_ps(l0, d), m));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_mul_ps(l1, d), m));
    _mm256_storeu_ps(y + 16, _mm256_add_ps(_mm256_mul_ps(l2, d), m));
    _mm256_storeu_ps(y + 24, _mm256_add_ps(_mm256_mul_ps(l3, d), m));
  }
}

// fma(q, d, m) == f32(f32(q * d) + m) of the scalar dequantizer: q * d is exact.
float dot_q4_1_f32(int64_t k, const uint8_t* w, const float* x) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ41, x += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(w)), m = _mm256_set1_ps(h2f(w + 2));
    __m256 l0, l1, l2, l3;
    nibble_levels_ps<0>(w + 4, l0, l1, l2, l3);
    a0 = _mm256_fmadd_ps(_mm256_fmadd_ps(l0, d, m), loadu8(x), a0);
    a1 = _mm256_fmadd_ps(_mm256_fmadd_ps(l1, d, m), loadu8(x + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_fmadd_ps(l2, d, m), loadu8(x + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_fmadd_ps(l3, d, m), loadu8(x + 24), a3);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// ---- q8_0 weights and the q8_0 / q8_1 activation quantizers -------------

// roundf (halves away from zero), exactly: t = trunc(v); v - t is exact; step
// one away from zero when |v - t| >= 0.5. inf/NaN stay inf/NaN.
inline __m256 roundf_ps(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                    _mm256_or_ps(_mm256_set1_ps(1.f), _mm256_and_ps(v, _mm256_set1_ps(-0.f))));
  return _mm256_add_ps(t, step);
}

inline float amax32(const float* x, __m256& v0, __m256& v1, __m256& v2, __m256& v3) {
  v0 = loadu8(x); v1 = loadu8(x + 8); v2 = loadu8(x + 16); v3 = loadu8(x + 24);
  return hmax(_mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)), _mm256_max_ps(abs_ps(v2), abs_ps(v3))));
}

void quantize_q8_0(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kQ80) {
    __m256 v0, v1, v2, v3;
    const float amax = amax32(x, v0, v1, v2, v3);
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    st_u16(y, f2h(d));
    const __m256 vid = _mm256_set1_ps(id);
    // cvtt of the already integral value; inf/NaN -> INT_MIN -> low byte 0, as the scalar cast.
    const __m256i q0 = _mm256_cvttps_epi32(roundf_ps(_mm256_mul_ps(v0, vid)));
    const __m256i q1 = _mm256_cvttps_epi32(roundf_ps(_mm256_mul_ps(v1, vid)));
    const __m256i q2 = _mm256_cvttps_epi32(roundf_ps(_mm256_mul_ps(v2, vid)));
    const __m256i q3 = _mm256_cvttps_epi32(roundf_ps(_mm256_mul_ps(v3, vid)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + 2), low_bytes_32(q0, q1, q2, q3));
  }
}

// Activations: d = amax/127, id = 127/amax (0 when that is inf), ties-to-even
// (cvtps under the default MXCSR rounding, as nearbyintf in the scalar code).
template <bool kWithSum>
void quantize_act_q8(const float* x, uint8_t* y, int64_t k) {
  constexpr int kHead = kWithSum ? 4 : 2;
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kHead + QK32) {
    __m256 v0, v1, v2, v3;
    const float amax = amax32(x, v0, v1, v2, v3);
    const float d = amax / 127.f;
    // 127/amax is inf for amax = 0 or below ~3.7e-37: levels 0 then (the
    // scalar kernel's rule).
    float id = 127.f / amax;
    if (!(id <= 3.402823466e+38f)) id = 0.f;  // not finite
    st_u16(y, f2h(d));
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid));
    const __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
    const __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid));
    const __m256i q3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
    const __m256i qb = low_bytes_32(q0, q1, q2, q3);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + kHead), qb);
    if (kWithSum) {
      // |q| <= 127 here (id finite), so the int32 lanes are the stored bytes.
      const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3));
      const int sum = hsum_i32(s);
      st_u16(y + 2, f2h(static_cast<float>(sum) * d));
    }
  }
}

void dequantize_q8_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ80, y += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(x));
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 2));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 18));
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(lo, lo))), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(hi, hi))), d));
  }
}

// Sign trick: |x| (unsigned) * (y with the sign of x). Exact for every weight
// byte (|-128| = 128 as unsigned) and every activation byte except -128, which
// quantize_act never produces (|q| <= 127). One block per vector (8 lanes);
// 8 blocks are folded by a hadd tree into natural order.
inline __m256i block_q8_0(const uint8_t* w, const uint8_t* a) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2));
  const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 2));
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

template <int kStride>
inline __m256 scales8(const uint8_t* p) {
  __m128i h = _mm_cvtsi32_si128(ld_u16(p));
  h = _mm_insert_epi16(h, ld_u16(p + 1 * kStride), 1);
  h = _mm_insert_epi16(h, ld_u16(p + 2 * kStride), 2);
  h = _mm_insert_epi16(h, ld_u16(p + 3 * kStride), 3);
  h = _mm_insert_epi16(h, ld_u16(p + 4 * kStride), 4);
  h = _mm_insert_epi16(h, ld_u16(p + 5 * kStride), 5);
  h = _mm_insert_epi16(h, ld_u16(p + 6 * kStride), 6);
  h = _mm_insert_epi16(h, ld_u16(p + 7 * kStride), 7);
  return _mm256_cvtph_ps(h);
}

float dot_q8_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  const int64_t nb = k / QK32;
  __m256 acc = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8, w += 8 * kQ80, a += 8 * kQ80) {
    const __m256i h01 = _mm256_hadd_epi32(block_q8_0(w, a), block_q8_0(w + kQ80, a + kQ80));
    const __m256i h23 = _mm256_hadd_epi32(block_q8_0(w + 2 * kQ80, a + 2 * kQ80), block_q8_0(w + 3 * kQ80, a + 3 * kQ80));
    const __m256i h45 = _mm256_hadd_epi32(block_q8_0(w + 4 * kQ80, a + 4 * kQ80), block_q8_0(w + 5 * kQ80, a + 5 * kQ80));
    const __m256i h67 = _mm256_hadd_epi32(block_q8_0(w + 6 * kQ80, a + 6 * kQ80), block_q8_0(w + 7 * kQ80, a + 7 * kQ80));
    const __m256i lo = _mm256_hadd_epi32(h01, h23), hi = _mm256_hadd_epi32(h45, h67);  // per 128-bit half
    const __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
    const __m256 d = _mm256_mul_ps(scales8<kQ80>(w), scales8<kQ80>(a));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
  }
  float tail = 0.f;
  for (; b < nb; ++b, w += kQ80, a += kQ80) {
    tail += (h2f(w) * h2f(a)) * static_cast<float>(hsum8_i32(block_q8_0(w, a)));
  }
  return hsum(acc) + tail;
}

// ---- multi-row q4_0 dot (vec_dot_rows) ----------------------------------
//
// nw (1..4) weight rows x 4 activation rows per pass over k: each pair of
// blocks of the 4 activation rows is loaded (and its -8 * sum y formed) once
// for all weight rows, each weight pair unpacked once for the 4 activation
// rows; packs + madd fold the 4 pair vectors of a weight row into dword 4l+j = exact
// S of block l against activation row j, then one cvt + one FMA with the pair
// scales (staged per 8 blocks). Other shapes use vec_dot per pair.
struct APair { __m256i ylo, yhi, corr; };

template <int kOuter>
void rows4_q4_0(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, size_t os) {
  const int64_t nb = k / QK32, n8 = nb / 8;
  const __m256i m4 = _mm256_set1_epi8(0x0F), e8 = _mm256_set1_epi8(8), one = _mm256_set1_epi16(1);
  __m256 acc[kOuter];
  for (int o = 0; o < kOuter; ++o) acc[o] = _mm256_setzero_ps();
  alignas(32) float sa[8][4];        // activation scales, [block][act row]
  alignas(32) float sw[kOuter][8];   // weight scales, [row][block]
  for (int64_t g = 0; g < n8; ++g) {
    const int64_t b0 = g * 8;
    for (int j = 0; j < 4; ++j) {
      alignas(32) float f[8];
      _mm256_store_ps(f, scales8<kQ80>(a + j * as + b0 * kQ80));
      for (int b = 0; b < 8; ++b) sa[b][j] = f[b];
    }
    for (int o = 0; o < kOuter; ++o) _mm256_store_ps(sw[o], scales8<kQ40>(w + o * ws + b0 * kQ40));
    for (int p = 0; p < 4; ++p) {
      const int64_t b = b0 + 2 * p;
      APair ap[4];
      for (int j = 0; j < 4; ++j) {
        const uint8_t* ar = a + j * as + b * kQ80 + 2;
        ap[j].ylo = pair128(ar, ar + kQ80);
        ap[j].yhi = pair128(ar + 16, ar + kQ80 + 16);
        ap[j].corr = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(e8, ap[j].ylo), _mm256_maddubs_epi16(e8, ap[j].yhi)), one);
      }
      const __m256 all = _mm256_load_ps(&sa[2 * p][0]);  // lane l: block 2p+l, dword j: act row j
      for (int o = 0; o < kOuter; ++o) {
        const __m256i z = pair128(w + o * ws + b * kQ40 + 2, w + o * ws + (b + 1) * kQ40 + 2);
        const __m256i lo = _mm256_and_si256(z, m4), hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
        __m256i v[4];
        for (int j = 0; j < 4; ++j) {
          const __m256i qy = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ap[j].ylo), _mm256_maddubs_epi16(hi, ap[j].yhi));
          v[j] = _mm256_sub_epi32(_mm256_madd_epi16(qy, one), ap[j].corr);
        }
        // Each partial dword sums 8 products (q - 8) * y, two of them stay
        // within int16: saturating packs are exact, madd adds neighbours
        // (the hadd tree's result with fewer shuffles).
        const __m256i t01 = _mm256_madd_epi16(_mm256_packs_epi32(v[0], v[1]), one);
        const __m256i t23 = _mm256_madd_epi16(_mm256_packs_epi32(v[2], v[3]), one);
        const __m256i s = _mm256_madd_epi16(_mm256_packs_epi32(t01, t23), one);
        const __m256 dw = _mm256_set_m128(_mm_broadcast_ss(&sw[o][2 * p + 1]), _mm_broadcast_ss(&sw[o][2 * p]));
        acc[o] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, all), acc[o]);
      }
    }
  }
  for (int o = 0; o < kOuter; ++o) {
    alignas(16) float r[4];
    _mm_store_ps(r, _mm_add_ps(_mm256_castps256_ps128(acc[o]), _mm256_extractf128_ps(acc[o], 1)));
    const uint8_t* wr = w + o * ws;
    for (int j = 0; j < 4; ++j) {
      const uint8_t* ar = a + j * as;
      float tail = 0.f;
      for (int64_t b = n8 * 8; b < nb; ++b) {
        const __m256i q = unpack_nibbles(wr + b * kQ40 + 2);
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ar + b * kQ80 + 2));
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(e8, y));
        tail += (h2f(wr + b * kQ40) * h2f(ar + b * kQ80)) * static_cast<float>(hsum8_i32(_mm256_madd_epi16(p, one)));
      }
      out[j * os + o] = r[j] + tail;
    }
  }
}

// q4_0: 4 activation rows in one pass (rows4_q4_0), fewer one at a time.
void dot_rows_q4_0(int64_t k, const uint8_t* w, size_t ws, int nw, const uint8_t* a, size_t as, int na, float* out, size_t os) {
  if (na != 4) return dot_rows_pairs<kQ40>(k, w, ws, nw, a, as, na, out, os);
  for (int i0 = 0; i0 < nw; i0 += 4) {
    const uint8_t* wi = w + i0 * ws;
    float* oi = out + i0;
    switch (nw - i0 < 4 ? nw - i0 : 4) {
      case 4: rows4_q4_0<4>(k, wi, ws, a, as, oi, os); continue;
      case 3: rows4_q4_0<3>(k, wi, ws, a, as, oi, os); continue;
      case 2: rows4_q4_0<2>(k, wi, ws, a, as, oi, os); continue;
      default: rows4_q4_0<1>(k, wi, ws, a, as, oi, os); continue;
    }
  }
}

float dot_q8_0_f32(int64_t k, const uint8_t* w, const float* x) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ80, x += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(w));
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 18));
    const __m256 l0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    const __m256 l1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(lo, lo)));
    const __m256 l2 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    const __m256 l3 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(hi, hi)));
    a0 = _mm256_fmadd_ps(_mm256_mul_ps(l0, d), loadu8(x), a0);
    a1 = _mm256_fmadd_ps(_mm256_mul_ps(l1, d), loadu8(x + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_mul_ps(l2, d), loadu8(x + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_mul_ps(l3, d), loadu8(x + 24), a3);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

}  // namespace
}  // namespace qk

#include "target_end.h"

// Outside the target region: this runs on any CPU (it only stores pointers).
namespace qk {

void fill_avx2(KernelTable& t) {
  t.isa = kIsaAvx2;
  TypeKernels& f32 = t.type[kF32];
  f32.dequantize_row = dequantize_f32;
  f32.vec_dot_f32 = dot_f32_f32;
  TypeKernels& f16 = t.type[kF16];
  f16.dequantize_row = dequantize_f16;
  f16.vec_dot_f32 = dot_f16_f32;
  TypeKernels& bf16 = t.type[kBF16];
  bf16.dequantize_row = dequantize_bf16;
  bf16.vec_dot_f32 = dot_bf16_f32;
  TypeKernels& q40 = t.type[kQ4_0];
  q40.quantize_row = quantize_q4_0;
  q40.dequantize_row = dequantize_q4_0;
  q40.vec_dot = dot_pairs<kQ40>;
  q40.vec_dot_f32 = dot_q4_0_f32;
  q40.vec_dot_rows = dot_rows_q4_0;
  TypeKernels& q41 = t.type[kQ4_1];
  q41.quantize_row = quantize_q4_1;
  q41.dequantize_row = dequantize_q4_1;
  q41.vec_dot = dot_pairs<kQ41>;
  q41.vec_dot_rows = dot_rows_pairs<kQ41>;
  q41.vec_dot_f32 = dot_q4_1_f32;
  TypeKernels& q80 = t.type[kQ8_0];
  q80.quantize_row = quantize_q8_0;
  q80.quantize_act = quantize_act_q8<false>;
  q80.dequantize_row = dequantize_q8_0;
  q80.vec_dot = dot_q8_0_q8_0;
  q80.vec_dot_f32 = dot_q8_0_f32;
  t.type[kQ8_1].quantize_act = quantize_act_q8<true>;
}

}  // namespace qk

#endif  // x86-64

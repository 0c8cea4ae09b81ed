// AVX2 + FMA + F16C kernels for q5_0, q5_1 and the K-quants q4_K, q5_K,
// q6_K, with their activation quantizer q8_K (x86-64 only). Filled on top of
// the AVX2 table of kernels_avx2.cc; the weight quantizers stay scalar (an
// offline cost whose searches are sequential).
//
// Same build rules as kernels_avx2.cc: compiled with the project's global
// flags, the ISA switched on for this file only by target_avx2_begin.h below,
// every header included BEFORE the pragma, and the fill function outside it.
//
// Numerics (reference/quant-formats.md sections 3.3, 3.4, 4, 5.3):
// - dequantize_row is bit-exact with the scalar kernels (same f32 operations:
//   D = d*sc, then D*q and - M as two roundings; no FMA there).
// - quantize_act (q8_K) is byte-exact with quantize_row_q8_K_ref, the
//   project's all-zero guard included.
// - vec_dot computes the same exact integers as the scalar kernels: per block
//   S (q5_0, q5_1, reduced to the integer itself), per super-block A and B
//   (q4_K, q5_K: int32 lanes whose sum is the integer, each lane converted to
//   f32 once per super-block: a lane sums terms sc*q*y with sc, q >= 0, so
//   |D * lane| is at most the sum of |activation| * (|w| + M) over its
//   elements and its rounding stays within the terms' tolerance) or A (q6_K:
//   reduced to the integer, see dot_q6_K_q8_K). Only the float accumulation
//   order differs.
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

constexpr int kQ4K = sizeof(BlockQ4_K), kQ5K = sizeof(BlockQ5_K), kQ6K = sizeof(BlockQ6_K), kQ8K = sizeof(BlockQ8_K);

// ---- small helpers ------------------------------------------------------

#include "simd_avx2.h"
#include "rows_x86.h"
#include "pairs_avx2.h"

inline uint32_t ld_u32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline void st_f32(uint8_t* p, float v) { std::memcpy(p, &v, 4); }
inline bool finite_f32(float v) { return (f32_bits(v) & 0x7F800000u) != 0x7F800000u; }

inline __m128i load64(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }
inline __m256 loadf(const float* p) { return _mm256_loadu_ps(p); }

// Eight bytes at p, zero-extended to int32 lanes.
inline __m256i u8x8(const uint8_t* p) { return _mm256_cvtepu8_epi32(load64(p)); }

// Bit kB of every byte (kB = 0..7) moved to bit 4 (value 16), other bits 0.
// 16-bit shifts are safe: only bit kB survives the mask, and it never crosses
// a byte boundary on the way to bit 4.
template <int kB>
inline __m256i bit_to_16(__m256i v) {
  const __m256i b = _mm256_and_si256(v, _mm256_set1_epi8(static_cast<char>(1 << kB)));
  if (kB < 4) return _mm256_slli_epi16(b, 4 - kB);
  if (kB > 4) return _mm256_srli_epi16(b, kB - 4);
  return b;
}
// The same on int32 lanes holding one zero-extended byte each.
template <int kB>
inline __m256i bit_to_16_i32(__m256i v) {
  const __m256i b = _mm256_and_si256(v, _mm256_set1_epi32(1 << kB));
  if (kB < 4) return _mm256_slli_epi32(b, 4 - kB);
  if (kB > 4) return _mm256_srli_epi32(b, kB - 4);
  return b;
}

// Bytes ahead of a row's stream that a batch-1 dot asks the prefetcher for,
// as the interleaved q4_0 kernel does (kernels_avx2_tile.cc).
constexpr int kPrefetchAhead = 2048;
template <int kBytes>
inline void prefetch_ahead(const uint8_t* w) {
  const char* p = reinterpret_cast<const char*>(w + kPrefetchAhead);
  for (int l = 0; l < kBytes; l += 64) _mm_prefetch(p + l, _MM_HINT_T0);
}

// ---- q5_0 / q5_1 ----------------------------------------------------------
//
// Their 'q8' dots (vec_dot, vec_dot_rows) are pairs_avx2.h's, shared with
// q4_0/q4_1; below, dequantize and the 'f32' dots.

// 0xFF in byte e (e = 0..31, element order) where bit e of the little-endian
// word qh is set.
inline __m256i qh_mask32(uint32_t qh) {
  const __m256i v = _mm256_set1_epi32(static_cast<int>(qh));
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, spread), bit), bit);
}

// 16 bytes of nibbles -> 32 bytes 0..15 in element order.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i v = load128(qs);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

// Signed levels (level - 16, int8) of one q5_0 block in element order: the
// nibble, with 0xF0 or'ed in where the fifth bit is clear (n - 16 as int8).
inline __m256i q5_0_signed(const uint8_t* blk) {
  return _mm256_or_si256(unpack_nibbles(blk + 6), _mm256_andnot_si256(qh_mask32(ld_u32(blk + 2)), _mm256_set1_epi8(static_cast<char>(0xF0))));
}
// Levels 0..31 of one q5_1 block in element order.
inline __m256i q5_1_levels(const uint8_t* blk) {
  return _mm256_or_si256(unpack_nibbles(blk + 8), _mm256_and_si256(qh_mask32(ld_u32(blk + 4)), _mm256_set1_epi8(0x10)));
}

// Levels of a block (32 bytes, element order) as four vectors of 8 floats.
inline void bytes_to_ps_u8(__m256i v, __m256& f0, __m256& f1, __m256& f2, __m256& f3) {
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
  f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(lo, lo)));
  f2 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
  f3 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(hi, hi)));
}
inline void bytes_to_ps_i8(__m256i v, __m256& f0, __m256& f1, __m256& f2, __m256& f3) {
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
  f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(lo, lo)));
  f2 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
  f3 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(hi, hi)));
}

// y = float(level - 16) * d, as the scalar dequantizer.
void dequantize_q5_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ50, y += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(x));
    __m256 f0, f1, f2, f3;
    bytes_to_ps_i8(q5_0_signed(x), f0, f1, f2, f3);
    _mm256_storeu_ps(y, _mm256_mul_ps(f0, d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(f1, d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(f2, d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(f3, d));
  }
}

// y = float(level) * d + m: two roundings, as the scalar dequantizer.
void dequantize_q5_1(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ51, y += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(x)), m = _mm256_set1_ps(h2f(x + 2));
    __m256 f0, f1, f2, f3;
    bytes_to_ps_u8(q5_1_levels(x), f0, f1, f2, f3);
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_mul_ps(f0, d), m));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_mul_ps(f1, d), m));
    _mm256_storeu_ps(y + 16, _mm256_add_ps(_mm256_mul_ps(f2, d), m));
    _mm256_storeu_ps(y + 24, _mm256_add_ps(_mm256_mul_ps(f3, d), m));
  }
}

// 'f32' dots: weights rebuilt in registers ((level-16)*d; level*d + m as one
// FMA, equal to the two roundings since level*d is exact), FMA with x.
float dot_q5_0_f32(int64_t k, const uint8_t* w, const float* x) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ50, x += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(w));
    __m256 f0, f1, f2, f3;
    bytes_to_ps_i8(q5_0_signed(w), f0, f1, f2, f3);
    a0 = _mm256_fmadd_ps(_mm256_mul_ps(f0, d), loadf(x), a0);
    a1 = _mm256_fmadd_ps(_mm256_mul_ps(f1, d), loadf(x + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_mul_ps(f2, d), loadf(x + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_mul_ps(f3, d), loadf(x + 24), a3);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

float dot_q5_1_f32(int64_t k, const uint8_t* w, const float* x) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ51, x += QK32) {
    const __m256 d = _mm256_set1_ps(h2f(w)), m = _mm256_set1_ps(h2f(w + 2));
    __m256 f0, f1, f2, f3;
    bytes_to_ps_u8(q5_1_levels(w), f0, f1, f2, f3);
    a0 = _mm256_fmadd_ps(_mm256_fmadd_ps(f0, d, m), loadf(x), a0);
    a1 = _mm256_fmadd_ps(_mm256_fmadd_ps(f1, d, m), loadf(x + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_fmadd_ps(f2, d, m), loadf(x + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_fmadd_ps(f3, d, m), loadf(x + 24), a3);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// ---- K-quant scales -------------------------------------------------------

// The 12 packed bytes of 6-bit scales and mins (quant-formats.md 4.2) ->
// bytes [sc0..sc7 | m0..m7]. Dwords u0 u1 u2 of the field:
//   sc0-3 = u0 & 0x3f..,                    m0-3 = u1 & 0x3f..,
//   sc4-7 = (u2 & 0x0f..) | ((u0 >> 2) & 0x30..),
//   m4-7  = ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..).
// Reads 16 bytes at s (the 4 after the field are the next field of the block).
inline __m128i kscales(const uint8_t* s) {
  const __m128i v = load128(s);
  const __m128i A = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));  // u0 u2 u1 u2
  const __m128i B = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));  // u0 u0 u1 u1
  const __m128i lo = _mm_and_si128(_mm_srlv_epi32(A, _mm_setr_epi32(0, 0, 0, 4)),
                                   _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i hi = _mm_and_si128(_mm_srli_epi32(B, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(lo, hi);
}

// D_j = d * sc_j and M_j = dmin * m_j (f32 products, as the scalar code).
inline void kscales_f32(const uint8_t* blk, float* D, float* M) {
  const __m128i sm = kscales(blk + 4);
  const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm));
  const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(sm, sm)));
  _mm256_storeu_ps(D, _mm256_mul_ps(_mm256_set1_ps(h2f(blk)), sc));
  _mm256_storeu_ps(M, _mm256_mul_ps(_mm256_set1_ps(h2f(blk + 2)), mn));
}

// int16 j of every 128-bit lane of v broadcast over that lane (pshufb control).
inline __m256i bcast16(__m256i v, int j) { return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<short>(0x0100 + 0x0202 * j))); }

// ---- q4_K / q5_K 'q8' dot ---------------------------------------------------
//
// Per super-block: for each 64-element chunk c, maddubs of the levels of
// sub-blocks 2c and 2c+1 with their activations gives int16 pair sums (q4:
// <= 2*15*128, q5: <= 2*31*128), madd with the broadcast 6-bit scale gives
// int32 lanes; the eight lanes of sumi add up to A exactly. B comes from
// madd(bsums, mins) (8 lanes m_j*(bs_2j + bs_2j+1)). acc += D*A lanes,
// accm += Dm*B lanes; the result is hsum(acc) - hsum(accm).
template <bool kQ5, int kC>
inline __m256i qk_chunk(const uint8_t* q, __m256i hb, const uint8_t* y, __m256i sc) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i z = load256(q + 32 * kC);
  __m256i lo = _mm256_and_si256(z, m4), hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
  if (kQ5) {
    lo = _mm256_or_si256(lo, bit_to_16<2 * kC>(hb));
    hi = _mm256_or_si256(hi, bit_to_16<2 * kC + 1>(hb));
  }
  const __m256i p0 = _mm256_maddubs_epi16(lo, load256(y + 64 * kC));
  const __m256i p1 = _mm256_maddubs_epi16(hi, load256(y + 64 * kC + 32));
  return _mm256_add_epi32(_mm256_madd_epi16(p0, bcast16(sc, 2 * kC)), _mm256_madd_epi16(p1, bcast16(sc, 2 * kC + 1)));
}

template <bool kQ5>
float dot_qk_q8_K(int64_t k, const uint8_t* w, const uint8_t* a) {
  constexpr int kBytes = kQ5 ? kQ5K : kQ4K;
  constexpr int kQs = kQ5 ? 48 : 16;
  __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK_K; ++b, w += kBytes, a += kQ8K) {
    prefetch_ahead<kBytes>(w);
    const float dy = ld_f32(a);
    const float D = h2f(w) * dy, Dm = h2f(w + 2) * dy;
    const __m128i sm = kscales(w + 4);
    const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));        // sc0..7 (int16), both lanes
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));           // m0 m0 m1 m1 .. m7 m7
    const __m256i B = _mm256_madd_epi16(load256(a + 260), mins);
    const __m256i hb = kQ5 ? load256(w + 16) : _mm256_setzero_si256();
    const uint8_t* q = w + kQs;
    const uint8_t* y = a + 4;
    const __m256i s01 = _mm256_add_epi32(qk_chunk<kQ5, 0>(q, hb, y, sc), qk_chunk<kQ5, 1>(q, hb, y, sc));
    const __m256i s23 = _mm256_add_epi32(qk_chunk<kQ5, 2>(q, hb, y, sc), qk_chunk<kQ5, 3>(q, hb, y, sc));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(D), _mm256_cvtepi32_ps(_mm256_add_epi32(s01, s23)), acc);
    accm = _mm256_fmadd_ps(_mm256_set1_ps(Dm), _mm256_cvtepi32_ps(B), accm);
  }
  return hsum(acc) - hsum(accm);
}

// ---- q4_K / q5_K dequantize and 'f32' dot -----------------------------------

// Levels of sub-block j (elements 32j + 8t .. + 7, t = 0..3) as int32 lanes.
template <bool kQ5, int kJ>
inline __m256i qk_levels8(const uint8_t* blk, int t) {
  constexpr int kQs = kQ5 ? 48 : 16;
  const __m256i v = u8x8(blk + kQs + 32 * (kJ / 2) + 8 * t);
  __m256i q = (kJ & 1) ? _mm256_srli_epi32(v, 4) : _mm256_and_si256(v, _mm256_set1_epi32(0xF));
  if (kQ5) q = _mm256_or_si256(q, bit_to_16_i32<kJ>(u8x8(blk + 16 + 8 * t)));
  return q;
}

template <bool kQ5, int kJ>
inline void qk_dequant_sub(const uint8_t* blk, const float* D, const float* M, float* y) {
  const __m256 d = _mm256_set1_ps(D[kJ]), m = _mm256_set1_ps(M[kJ]);
  for (int t = 0; t < 4; ++t) {
    const __m256 q = _mm256_cvtepi32_ps(qk_levels8<kQ5, kJ>(blk, t));
    _mm256_storeu_ps(y + 32 * kJ + 8 * t, _mm256_sub_ps(_mm256_mul_ps(d, q), m));
  }
}

template <bool kQ5>
void dequantize_qk(const uint8_t* x, float* y, int64_t k) {
  constexpr int kBytes = kQ5 ? kQ5K : kQ4K;
  alignas(32) float D[8], M[8];
  for (int64_t b = 0; b < k / QK_K; ++b, x += kBytes, y += QK_K) {
    kscales_f32(x, D, M);
    qk_dequant_sub<kQ5, 0>(x, D, M, y);
    qk_dequant_sub<kQ5, 1>(x, D, M, y);
    qk_dequant_sub<kQ5, 2>(x, D, M, y);
    qk_dequant_sub<kQ5, 3>(x, D, M, y);
    qk_dequant_sub<kQ5, 4>(x, D, M, y);
    qk_dequant_sub<kQ5, 5>(x, D, M, y);
    qk_dequant_sub<kQ5, 6>(x, D, M, y);
    qk_dequant_sub<kQ5, 7>(x, D, M, y);
  }
}

// fmsub(q, D, M) equals the two roundings of the dequantizer: D*q is exact
// (an fp16 value times a 6-bit and a 5-bit integer).
template <bool kQ5, int kJ>
inline void qk_dot_sub(const uint8_t* blk, const float* D, const float* M, const float* x, __m256* acc) {
  const __m256 d = _mm256_set1_ps(D[kJ]), m = _mm256_set1_ps(M[kJ]);
  for (int t = 0; t < 4; ++t) {
    const __m256 q = _mm256_cvtepi32_ps(qk_levels8<kQ5, kJ>(blk, t));
    acc[t] = _mm256_fmadd_ps(_mm256_fmsub_ps(q, d, m), loadf(x + 32 * kJ + 8 * t), acc[t]);
  }
}

template <bool kQ5>
float dot_qk_f32(int64_t k, const uint8_t* w, const float* x) {
  constexpr int kBytes = kQ5 ? kQ5K : kQ4K;
  alignas(32) float D[8], M[8];
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < k / QK_K; ++b, w += kBytes, x += QK_K) {
    kscales_f32(w, D, M);
    qk_dot_sub<kQ5, 0>(w, D, M, x, acc);
    qk_dot_sub<kQ5, 1>(w, D, M, x, acc);
    qk_dot_sub<kQ5, 2>(w, D, M, x, acc);
    qk_dot_sub<kQ5, 3>(w, D, M, x, acc);
    qk_dot_sub<kQ5, 4>(w, D, M, x, acc);
    qk_dot_sub<kQ5, 5>(w, D, M, x, acc);
    qk_dot_sub<kQ5, 6>(w, D, M, x, acc);
    qk_dot_sub<kQ5, 7>(w, D, M, x, acc);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// ---- q6_K -------------------------------------------------------------------
//
// Levels u (0..63) of the 32 elements 128h + 32i + l (l = 0..31) of half h:
// i = 0: ql[l] & 15 | (qh[l] & 3) << 4,       i = 1: ql[32+l] & 15 | (qh[l] >> 2 & 3) << 4,
// i = 2: ql[l] >> 4 | (qh[l] >> 4 & 3) << 4,  i = 3: ql[32+l] >> 4 | (qh[l] >> 6) << 4
// (ql = block + 64h, qh = block + 128 + 32h). Vector i covers sub-blocks
// 8h + 2i (128-bit lane 0) and 8h + 2i + 1 (lane 1).
inline void q6_levels(const uint8_t* blk, int h, __m256i* u) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  const __m256i z0 = load256(blk + 64 * h), z1 = load256(blk + 64 * h + 32), hb = load256(blk + 128 + 32 * h);
  u[0] = _mm256_or_si256(_mm256_and_si256(z0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
  u[1] = _mm256_or_si256(_mm256_and_si256(z1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
  u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(z0, 4), m4), _mm256_and_si256(hb, m30));
  u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(z1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
}

// A = sum_j s_j * sum u*y - 32 * sum_j s_j * bsums_j. maddubs of the unsigned
// levels (int16 pair sums <= 2*63*128), madd with the sub-block scale pair of
// the vector (s_{8h+2i} in lane 0, s_{8h+2i+1} in lane 1); the correction
// madd(bsums, scales) * 32 starts sumi. Every lane stays far inside int32,
// and so does A (|A| <= 256 * 32 * 128 * 128 < 2^28).
float dot_q6_K_q8_K(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK_K; ++b, w += kQ6K, a += kQ8K) {
    prefetch_ahead<kQ6K>(w);
    const float D = h2f(w + 208) * ld_f32(a);
    const __m128i sc8 = load128(w + 192);
    const __m256i corr = _mm256_madd_epi16(load256(a + 260), _mm256_cvtepi8_epi16(sc8));
    __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
    for (int h = 0; h < 2; ++h) {
      // s_{8h} .. s_{8h+7} as int16 in both lanes.
      const __m256i sh = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(load64(w + 192 + 8 * h)));
      __m256i u[4];
      q6_levels(w, h, u);
      const uint8_t* y = a + 4 + 128 * h;
      for (int i = 0; i < 4; ++i) {
        // int16 2i in lane 0, 2i + 1 in lane 1.
        const __m256i ctrl = _mm256_setr_epi16(
            static_cast<short>(0x0100 + 0x0404 * i), static_cast<short>(0x0100 + 0x0404 * i), static_cast<short>(0x0100 + 0x0404 * i),
            static_cast<short>(0x0100 + 0x0404 * i), static_cast<short>(0x0100 + 0x0404 * i), static_cast<short>(0x0100 + 0x0404 * i),
            static_cast<short>(0x0100 + 0x0404 * i), static_cast<short>(0x0100 + 0x0404 * i), static_cast<short>(0x0302 + 0x0404 * i),
            static_cast<short>(0x0302 + 0x0404 * i), static_cast<short>(0x0302 + 0x0404 * i), static_cast<short>(0x0302 + 0x0404 * i),
            static_cast<short>(0x0302 + 0x0404 * i), static_cast<short>(0x0302 + 0x0404 * i), static_cast<short>(0x0302 + 0x0404 * i),
            static_cast<short>(0x0302 + 0x0404 * i));
        const __m256i p = _mm256_maddubs_epi16(u[i], load256(y + 32 * i));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sh, ctrl)));
      }
    }
    // A itself, not its lanes, goes to float: the lanes carry the -32
    // correction separately from the products it cancels, and converting them
    // one by one would round away that cancellation (for weights and
    // activations that never meet, the exact 0 would become a few ulps of the
    // large lane values).
    acc += D * static_cast<float>(hsum_i32(sumi));
  }
  return acc;
}

// D_j = d * scales_j for the 16 sub-blocks (f32 products, as the scalar code).
inline void q6_scales_f32(const uint8_t* blk, float* D) {
  const __m256 d = _mm256_set1_ps(h2f(blk + 208));
  const __m128i sc8 = load128(blk + 192);
  _mm256_storeu_ps(D, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8))));
  _mm256_storeu_ps(D + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(sc8, sc8)))));
}

// Signed values u - 32 of elements 128h + 32i + l0 .. + 7 (i = 0..3) as floats.
inline void q6_values8(const uint8_t* blk, int h, int l0, __m256* v) {
  const __m256i ql0 = u8x8(blk + 64 * h + l0), ql1 = u8x8(blk + 64 * h + 32 + l0), hq = u8x8(blk + 128 + 32 * h + l0);
  const __m256i m4 = _mm256_set1_epi32(0xF), m30 = _mm256_set1_epi32(0x30), b32 = _mm256_set1_epi32(32);
  const __m256i u0 = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi32(hq, 4), m30));
  const __m256i u1 = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi32(hq, 2), m30));
  const __m256i u2 = _mm256_or_si256(_mm256_srli_epi32(ql0, 4), _mm256_and_si256(hq, m30));
  const __m256i u3 = _mm256_or_si256(_mm256_srli_epi32(ql1, 4), _mm256_and_si256(_mm256_srli_epi32(hq, 2), m30));
  v[0] = _mm256_cvtepi32_ps(_mm256_sub_epi32(u0, b32));
  v[1] = _mm256_cvtepi32_ps(_mm256_sub_epi32(u1, b32));
  v[2] = _mm256_cvtepi32_ps(_mm256_sub_epi32(u2, b32));
  v[3] = _mm256_cvtepi32_ps(_mm256_sub_epi32(u3, b32));
}

// y = D_j * (u - 32).
void dequantize_q6_K(const uint8_t* x, float* y, int64_t k) {
  alignas(32) float D[16];
  for (int64_t b = 0; b < k / QK_K; ++b, x += kQ6K, y += QK_K) {
    q6_scales_f32(x, D);
    for (int h = 0; h < 2; ++h) {
      for (int l0 = 0; l0 < 32; l0 += 8) {
        __m256 v[4];
        q6_values8(x, h, l0, v);
        for (int i = 0; i < 4; ++i) {
          const int e = 128 * h + 32 * i + l0;
          _mm256_storeu_ps(y + e, _mm256_mul_ps(_mm256_set1_ps(D[e / 16]), v[i]));
        }
      }
    }
  }
}

float dot_q6_K_f32(int64_t k, const uint8_t* w, const float* x) {
  alignas(32) float D[16];
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < k / QK_K; ++b, w += kQ6K, x += QK_K) {
    q6_scales_f32(w, D);
    for (int h = 0; h < 2; ++h) {
      for (int l0 = 0; l0 < 32; l0 += 8) {
        __m256 v[4];
        q6_values8(w, h, l0, v);
        for (int i = 0; i < 4; ++i) {
          const int e = 128 * h + 32 * i + l0;
          acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(D[e / 16]), v[i]), loadf(x + e), acc[i]);
        }
      }
    }
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// ---- q8_K activations -----------------------------------------------------

// Low bytes of four vectors of 8 int32 (elements 0..7, 8..15, 16..23, 24..31)
// as 32 bytes in order: the truncation of the scalar int -> int8 store.
inline __m256i low_bytes_32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ff = _mm256_set1_epi32(0xFF);
  a = _mm256_and_si256(a, ff); b = _mm256_and_si256(b, ff);
  c = _mm256_and_si256(c, ff); d = _mm256_and_si256(d, ff);
  const __m256i ab = _mm256_packus_epi32(a, b);  // a0-3 b0-3 | a4-7 b4-7
  const __m256i cd = _mm256_packus_epi32(c, d);
  const __m256i r = _mm256_packus_epi16(ab, cd);  // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
  return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// quantize_row_q8_K_ref: m = the first x of largest |x| (NaN never wins: maxps
// returns its second operand, the running max, when the first is NaN), iscale
// = -127/m, qs = min(127, nearest_int(iscale*x)) with cvtps (ties to even
// under the default MXCSR, as nearest_int for |v| < 2^22; NaN gives INT_MIN,
// whose low byte 0 is nearest_int's 0), bsums of the stored bytes, d = 1/iscale.
// A block with max 0 or a non-finite iscale or d is written all zero.
void quantize_q8_K(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, y += kQ8K) {
    __m256 mx0 = _mm256_setzero_ps(), mx1 = _mm256_setzero_ps();
    for (int i = 0; i < QK_K; i += 16) {
      mx0 = _mm256_max_ps(abs_ps(loadf(x + i)), mx0);
      mx1 = _mm256_max_ps(abs_ps(loadf(x + i + 8)), mx1);
    }
    const float amax = hmax(_mm256_max_ps(mx0, mx1));
    float m = 0.f;
    if (amax > 0.f) {
      const __m256 am = _mm256_set1_ps(amax);
      for (int i = 0; i < QK_K; i += 8) {
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(loadf(x + i)), am, _CMP_EQ_OQ));
        if (mask) {
          int j = 0;
          while (!((mask >> j) & 1)) ++j;
          m = x[i + j];
          break;
        }
      }
    }
    const float iscale = amax != 0.f ? -127.f / m : 0.f;
    const float d = amax != 0.f ? 1.f / iscale : 0.f;
    if (amax == 0.f || !finite_f32(iscale) || !finite_f32(d)) {
      std::memset(y, 0, kQ8K);
      continue;
    }
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i c127 = _mm256_set1_epi32(127), ones = _mm256_set1_epi8(1);
    __m256i t[8];
    for (int g = 0; g < 8; ++g) {
      const float* xg = x + 32 * g;
      const __m256i q0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(loadf(xg), vs)), c127);
      const __m256i q1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(loadf(xg + 8), vs)), c127);
      const __m256i q2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(loadf(xg + 16), vs)), c127);
      const __m256i q3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(loadf(xg + 24), vs)), c127);
      const __m256i qb = low_bytes_32(q0, q1, q2, q3);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + 4 + 32 * g), qb);
      t[g] = _mm256_maddubs_epi16(ones, qb);  // int16 pair sums; lane 0: group 2g, lane 1: group 2g+1
    }
    // hadd tree: lane 0 ends as bsums 0, 2, .., 14, lane 1 as 1, 3, .., 15.
    const __m256i h0 = _mm256_hadd_epi16(_mm256_hadd_epi16(t[0], t[1]), _mm256_hadd_epi16(t[2], t[3]));
    const __m256i h1 = _mm256_hadd_epi16(_mm256_hadd_epi16(t[4], t[5]), _mm256_hadd_epi16(t[6], t[7]));
    const __m256i r = _mm256_hadd_epi16(h0, h1);
    const __m128i ev = _mm256_castsi256_si128(r), od = _mm256_extracti128_si256(r, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 260), _mm_unpacklo_epi16(ev, od));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 276), _mm_unpackhi_epi16(ev, od));
    st_f32(y, d);
  }
}

}  // namespace
}  // namespace qk

#include "target_end.h"

// Outside the target region: this runs on any CPU (it only stores pointers).
namespace qk {

void fill_avx2_kquants(KernelTable& t) {
  TypeKernels& q50 = t.type[kQ5_0];
  q50.dequantize_row = dequantize_q5_0;
  q50.vec_dot = dot_pairs<kQ50>;
  q50.vec_dot_rows = dot_rows_pairs<kQ50>;
  q50.vec_dot_f32 = dot_q5_0_f32;
  TypeKernels& q51 = t.type[kQ5_1];
  q51.dequantize_row = dequantize_q5_1;
  q51.vec_dot = dot_pairs<kQ51>;
  q51.vec_dot_rows = dot_rows_pairs<kQ51>;
  q51.vec_dot_f32 = dot_q5_1_f32;
  TypeKernels& q4k = t.type[kQ4_K];
  q4k.dequantize_row = dequantize_qk<false>;
  q4k.vec_dot = dot_qk_q8_K<false>;
  q4k.vec_dot_f32 = dot_qk_f32<false>;
  TypeKernels& q5k = t.type[kQ5_K];
  q5k.dequantize_row = dequantize_qk<true>;
  q5k.vec_dot = dot_qk_q8_K<true>;
  q5k.vec_dot_f32 = dot_qk_f32<true>;
  TypeKernels& q6k = t.type[kQ6_K];
  q6k.dequantize_row = dequantize_q6_K;
  q6k.vec_dot = dot_q6_K_q8_K;
  q6k.vec_dot_f32 = dot_q6_K_f32;
  t.type[kQ8_K].quantize_act = quantize_q8_K;
}

}  // namespace qk

#endif  // x86-64

// AVX-512 (F, BW, VL, DQ; optionally VNNI) kernels (x86-64 only), filled on
// top of the AVX2 table: the entries not set here stay the AVX2 ones.
//
// Same build rules as kernels_avx2.cc: global flags only, the ISA enabled by
// target_avx512_begin.h for the kernels, every header included before it, and the
// fill function outside the region (it runs on any CPU).
//
// vec_dot computes the same exact integer per block as the scalar kernel;
// only the float accumulation order differs. No alignment is assumed. The
// 'q8' kernels of q4_1 are kernels_avx512_k.cc's, with those of q5_0/q5_1.
#if defined(__x86_64__) || defined(_M_X64)

#include <cstdint>
#include <cstring>

#include "fp16.h"
#include "kernels.h"
#include "types.h"

#include "target_avx512_begin.h"

namespace qk {
namespace {


#include "simd_avx512.h"
#include "quart_avx512.h"

inline __m128i loadu128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i loadu256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// ---- the 'q8' dot products ----------------------------------------------
//
// Batch 1 of q4_0 (vec_dot, and vec_dot_rows for one activation row) is
// quart_avx512.h's kernel; this file keeps q4_0 against 2-4 activation rows
// (rows_q4_0).

// ---- multi-row q4_0 dot (vec_dot_rows) ----------------------------------
//
// A 4 x n block of (weight row, activation row) pairs per pass over k. For a
// quartet of blocks, each of the 4 "inner" rows (the 4 activation rows, or
// the 4 weight rows when fewer than 4 activation rows are given) is unpacked
// once and dotted with each "outer" row; the 4 quartet vectors of one outer
// row fold (reduce4) into dword 4l+j = exact S of block l for inner row j,
// then one cvt + one FMA with the pair scales. Each unpacked weight block is
// reused for every activation row and vice versa.

// The fp16 scales of 16 consecutive blocks in natural order (block i in
// dword i).
template <int kStride>
inline __m512 scales_nat16(const uint8_t* p) {
  return low_halves_ps(gather_fields16<kStride, 0, true>(p));
}

// reduce4 for partial sums that fit int16 (each of the 4 dwords of a block
// lane sums 8 products (q - 8) * y, |.| <= 8 * 8 * 128; two of them <= 2^14):
// saturating packs are exact, madd with ones adds neighbours. Same result
// and order as reduce4 with half the shuffles.
inline __m512i reduce4_small(__m512i v0, __m512i v1, __m512i v2, __m512i v3) {
  const __m512i one = _mm512_set1_epi16(1);
  const __m512i t01 = _mm512_madd_epi16(_mm512_packs_epi32(v0, v1), one);  // lane: v0 d0+d1, v0 d2+d3, v1 .., v1 ..
  const __m512i t23 = _mm512_madd_epi16(_mm512_packs_epi32(v2, v3), one);
  return _mm512_madd_epi16(_mm512_packs_epi32(t01, t23), one);
}

// Sum of the four 128-bit lanes: 4 floats.
inline __m128 lanes_sum(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// kActInner: the 4 inner rows are activation rows and the kOuter outer rows
// weight rows; else the 4 inner rows are weight rows, the outer activation rows.

template <bool kVnni, bool kActInner, int kOuter>
void rows_q4_0(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, size_t os) {
  const int64_t nb = k / QK32, ng = nb / 16;
  const uint8_t* inner = kActInner ? a : w;
  const uint8_t* outer = kActInner ? w : a;
  const size_t is = kActInner ? as : ws, ost = kActInner ? ws : as;
  constexpr int kIB = kActInner ? kQ80 : kQ40, kOB = kActInner ? kQ40 : kQ80;
  __m512 acc[kOuter];
  QK_UNROLL
  for (int o = 0; o < kOuter; ++o) acc[o] = _mm512_setzero_ps();
  PrefetchLead lead = prefetch_lead(nb);
  for (int64_t g = 0; g < ng; ++g) {
    const int64_t b0 = g * 16;
    // Pair scales for the group: D[o][q] dword 4l+j = d(outer o) * d(inner j) of block 4q+l.
    __m512 fi[4], D[kOuter][4];
    QK_UNROLL
    for (int j = 0; j < 4; ++j) fi[j] = scales_nat16<kIB>(inner + j * is + b0 * kIB);
    if (!kActInner) prefetch_row_set<kQ40>(w, ws, g, ng, lead);
    __m512 all[4];
    QK_UNROLL
    for (int q = 0; q < 4; ++q) {
      const __m512i ia = _mm512_setr_epi32(4 * q, 16 + 4 * q, 0, 0, 4 * q + 1, 16 + 4 * q + 1, 0, 0, 4 * q + 2, 16 + 4 * q + 2, 0, 0,
                                           4 * q + 3, 16 + 4 * q + 3, 0, 0);
      const __m512i ib = _mm512_setr_epi32(0, 0, 4 * q, 16 + 4 * q, 0, 0, 4 * q + 1, 16 + 4 * q + 1, 0, 0, 4 * q + 2, 16 + 4 * q + 2,
                                           0, 0, 4 * q + 3, 16 + 4 * q + 3);
      all[q] = _mm512_mask_blend_ps(0xCCCC, _mm512_permutex2var_ps(fi[0], ia, fi[1]), _mm512_permutex2var_ps(fi[2], ib, fi[3]));
    }
    QK_UNROLL
    for (int o = 0; o < kOuter; ++o) {
      const __m512 fo = scales_nat16<kOB>(outer + o * ost + b0 * kOB);
      QK_UNROLL
      for (int q = 0; q < 4; ++q) {
        const __m512i ie = _mm512_setr_epi32(4 * q, 4 * q, 4 * q, 4 * q, 4 * q + 1, 4 * q + 1, 4 * q + 1, 4 * q + 1, 4 * q + 2, 4 * q + 2,
                                             4 * q + 2, 4 * q + 2, 4 * q + 3, 4 * q + 3, 4 * q + 3, 4 * q + 3);
        D[o][q] = _mm512_mul_ps(_mm512_permutexvar_ps(ie, fo), all[q]);
      }
    }
    QK_UNROLL
    for (int q = 0; q < 4; ++q) {
      const int64_t b = b0 + 4 * q;
      if (kActInner) {
        Q8Quart in[4];
        QK_UNROLL
        for (int j = 0; j < 4; ++j) in[j] = q8_quart<kQ40, kVnni>(a + j * as + b * kQ80);
        QK_UNROLL
        for (int o = 0; o < kOuter; ++o) {
          const LevelQuart wq = level_quart<kQ40>(w + o * ws + b * kQ40);
          const __m512i s = reduce4_small(quart_dot<kVnni>(wq, in[0]), quart_dot<kVnni>(wq, in[1]), quart_dot<kVnni>(wq, in[2]),
                                    quart_dot<kVnni>(wq, in[3]));
          acc[o] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), D[o][q], acc[o]);
        }
      } else {
        LevelQuart in[4];
        QK_UNROLL
        for (int j = 0; j < 4; ++j) in[j] = level_quart<kQ40>(w + j * ws + b * kQ40);
        QK_UNROLL
        for (int o = 0; o < kOuter; ++o) {
          const Q8Quart aq = q8_quart<kQ40, kVnni>(a + o * as + b * kQ80);
          const __m512i s = reduce4_small(quart_dot<kVnni>(in[0], aq), quart_dot<kVnni>(in[1], aq), quart_dot<kVnni>(in[2], aq),
                                    quart_dot<kVnni>(in[3], aq));
          acc[o] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), D[o][q], acc[o]);
        }
      }
    }
  }
  QK_UNROLL
  for (int o = 0; o < kOuter; ++o) {
    alignas(16) float r[4];
    _mm_store_ps(r, lanes_sum(acc[o]));
    QK_UNROLL
    for (int j = 0; j < 4; ++j) {
      const uint8_t* wr = w + (kActInner ? o : j) * ws;
      const uint8_t* ar = a + (kActInner ? j : o) * as;
      float tail = 0.f;
      for (int64_t b = ng * 16; b < nb; ++b) {
        tail += (h2f(wr + b * kQ40) * h2f(ar + b * kQ80)) * static_cast<float>(block_dot<kQ40>(wr + b * kQ40, ar + b * kQ80));
      }
      const int iw = kActInner ? o : j, ia = kActInner ? j : o;
      out[ia * os + iw] = r[j] + tail;
    }
  }
}

// nw 1..8 weight rows x na 1..4 activation rows: 4 activation rows are the
// inner rows of one pass; 2 or 3 are outer rows against 4 weight rows at a
// time (pairs of smaller blocks fall back to vec_dot). One activation row
// (batch 1) takes quart_avx512.h's kernel, 4-10% faster there from memory;
// rows_q4_0 is 13-20% faster for 2 and 3 rows, as fast for 4.
template <bool kVnni>
void dot_rows_q4_0(int64_t k, const uint8_t* w, size_t ws, int nw, const uint8_t* a, size_t as, int na, float* out, size_t os) {
  if (na == 1) return dot_rows_qx<kQ40, kVnni>(k, w, ws, nw, a, as, na, out, os);
  if (na == 4) {
    switch (nw) {
      case 8: return rows_q4_0<kVnni, true, 8>(k, w, ws, a, as, out, os);
      case 7: return rows_q4_0<kVnni, true, 7>(k, w, ws, a, as, out, os);
      case 6: return rows_q4_0<kVnni, true, 6>(k, w, ws, a, as, out, os);
      case 5: return rows_q4_0<kVnni, true, 5>(k, w, ws, a, as, out, os);
      case 4: return rows_q4_0<kVnni, true, 4>(k, w, ws, a, as, out, os);
      case 3: return rows_q4_0<kVnni, true, 3>(k, w, ws, a, as, out, os);
      case 2: return rows_q4_0<kVnni, true, 2>(k, w, ws, a, as, out, os);
      case 1: return rows_q4_0<kVnni, true, 1>(k, w, ws, a, as, out, os);
      default: return;
    }
  }
  for (int i0 = 0; i0 < nw; i0 += 4) {
    const uint8_t* wi = w + i0 * ws;
    float* oi = out + i0;
    if (nw - i0 >= 4) {
      switch (na) {
        case 3: rows_q4_0<kVnni, false, 3>(k, wi, ws, a, as, oi, os); continue;
        case 2: rows_q4_0<kVnni, false, 2>(k, wi, ws, a, as, oi, os); continue;
        default: return;
      }
    }
    for (int j = 0; j < na; ++j)
      for (int i = 0; i < nw - i0; ++i) oi[j * os + i] = dot_qx<kQ40, kVnni>(k, wi + i * ws, a + j * as);
  }
}

// ---- 'f32' precision ------------------------------------------------------

inline __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // n < 16

float dot_f32_f32(int64_t k, const uint8_t* wb, const float* x) {
  const float* w = reinterpret_cast<const float*>(wb);
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  __m512 a4 = _mm512_setzero_ps(), a5 = _mm512_setzero_ps(), a6 = _mm512_setzero_ps(), a7 = _mm512_setzero_ps();
  int64_t i = 0;
  // Align the weight stream to 64 bytes (split 64-byte loads cost ~30% of DRAM
  // bandwidth here), when the row is at least float-aligned.
  const uintptr_t addr = reinterpret_cast<uintptr_t>(wb);
  if ((addr & 3) == 0 && (addr & 63) != 0) {
    int64_t n = static_cast<int64_t>((64 - (addr & 63)) / 4);
    if (n > k) n = k;
    const __mmask16 m = tail_mask(n);
    a4 = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w), _mm512_maskz_loadu_ps(m, x));
    i = n;
  }
  for (; i + 128 <= k; i += 128) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    a4 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 64), _mm512_loadu_ps(x + i + 64), a4);
    a5 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 80), _mm512_loadu_ps(x + i + 80), a5);
    a6 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 96), _mm512_loadu_ps(x + i + 96), a6);
    a7 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 112), _mm512_loadu_ps(x + i + 112), a7);
  }
  for (; i + 16 <= k; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
  if (i < k) {
    const __mmask16 m = tail_mask(k - i);
    a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a1);
  }
  a0 = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
  a4 = _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7));
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a4));
}

inline __m512 f16x16(const uint8_t* p) { return _mm512_cvtph_ps(loadu256(p)); }
inline __m512 bf16x16(const uint8_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(loadu256(p)), 16));
}

float dot_f16_f32(int64_t k, const uint8_t* w, const float* x) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= k; i += 64) {
    a0 = _mm512_fmadd_ps(f16x16(w + 2 * i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(f16x16(w + 2 * i + 32), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(f16x16(w + 2 * i + 64), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(f16x16(w + 2 * i + 96), _mm512_loadu_ps(x + i + 48), a3);
  }
  for (; i + 16 <= k; i += 16) a0 = _mm512_fmadd_ps(f16x16(w + 2 * i), _mm512_loadu_ps(x + i), a0);
  if (i < k) {
    const __mmask16 m = tail_mask(k - i);
    const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + 2 * i));
    a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + i), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float dot_bf16_f32(int64_t k, const uint8_t* w, const float* x) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= k; i += 64) {
    a0 = _mm512_fmadd_ps(bf16x16(w + 2 * i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(bf16x16(w + 2 * i + 32), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(bf16x16(w + 2 * i + 64), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(bf16x16(w + 2 * i + 96), _mm512_loadu_ps(x + i + 48), a3);
  }
  for (; i + 16 <= k; i += 16) a0 = _mm512_fmadd_ps(bf16x16(w + 2 * i), _mm512_loadu_ps(x + i), a0);
  if (i < k) {
    const __mmask16 m = tail_mask(k - i);
    const __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w + 2 * i));
    const __m512 wv = _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
    a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + i), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// 16 nibble bytes -> levels of elements 0..15 (lo) and 16..31 (hi) as floats,
// minus kBias.
template <int kBias>
inline void nibble_levels_ps(const uint8_t* qs, __m512& lo, __m512& hi) {
  const __m512i b = _mm512_cvtepu8_epi32(loadu128(qs)), bias = _mm512_set1_epi32(kBias);
  lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0xF)), bias));
  hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(b, 4), bias));
}

// Weights are rebuilt exactly as the scalar dequantizers do ((q-8)*d, resp.
// fma(q, d, m) == f32(q*d) + m since q*d is exact; both also for inf scales),
// then FMA with x; two accumulator pairs over alternating blocks.
float dot_q4_0_f32(int64_t k, const uint8_t* w, const float* x) {
  const int64_t nb = k / QK32;
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ40, x += 2 * QK32) {
    const __m512 d0 = _mm512_set1_ps(h2f(w)), d1 = _mm512_set1_ps(h2f(w + kQ40));
    __m512 l0, h0, l1, h1;
    nibble_levels_ps<8>(w + 2, l0, h0);
    nibble_levels_ps<8>(w + kQ40 + 2, l1, h1);
    a0 = _mm512_fmadd_ps(_mm512_mul_ps(l0, d0), _mm512_loadu_ps(x), a0);
    a1 = _mm512_fmadd_ps(_mm512_mul_ps(h0, d0), _mm512_loadu_ps(x + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_mul_ps(l1, d1), _mm512_loadu_ps(x + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_mul_ps(h1, d1), _mm512_loadu_ps(x + 48), a3);
  }
  if (b < nb) {
    const __m512 d0 = _mm512_set1_ps(h2f(w));
    __m512 l0, h0;
    nibble_levels_ps<8>(w + 2, l0, h0);
    a0 = _mm512_fmadd_ps(_mm512_mul_ps(l0, d0), _mm512_loadu_ps(x), a0);
    a1 = _mm512_fmadd_ps(_mm512_mul_ps(h0, d0), _mm512_loadu_ps(x + 16), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float dot_q4_1_f32(int64_t k, const uint8_t* w, const float* x) {
  const int64_t nb = k / QK32;
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ41, x += 2 * QK32) {
    const __m512 d0 = _mm512_set1_ps(h2f(w)), m0 = _mm512_set1_ps(h2f(w + 2));
    const __m512 d1 = _mm512_set1_ps(h2f(w + kQ41)), m1 = _mm512_set1_ps(h2f(w + kQ41 + 2));
    __m512 l0, h0, l1, h1;
    nibble_levels_ps<0>(w + 4, l0, h0);
    nibble_levels_ps<0>(w + kQ41 + 4, l1, h1);
    a0 = _mm512_fmadd_ps(_mm512_fmadd_ps(l0, d0, m0), _mm512_loadu_ps(x), a0);
    a1 = _mm512_fmadd_ps(_mm512_fmadd_ps(h0, d0, m0), _mm512_loadu_ps(x + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_fmadd_ps(l1, d1, m1), _mm512_loadu_ps(x + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_fmadd_ps(h1, d1, m1), _mm512_loadu_ps(x + 48), a3);
  }
  if (b < nb) {
    const __m512 d0 = _mm512_set1_ps(h2f(w)), m0 = _mm512_set1_ps(h2f(w + 2));
    __m512 l0, h0;
    nibble_levels_ps<0>(w + 4, l0, h0);
    a0 = _mm512_fmadd_ps(_mm512_fmadd_ps(l0, d0, m0), _mm512_loadu_ps(x), a0);
    a1 = _mm512_fmadd_ps(_mm512_fmadd_ps(h0, d0, m0), _mm512_loadu_ps(x + 16), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float dot_q8_0_f32(int64_t k, const uint8_t* w, const float* x) {
  const int64_t nb = k / QK32;
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ80, x += 2 * QK32) {
    const __m512 d0 = _mm512_set1_ps(h2f(w)), d1 = _mm512_set1_ps(h2f(w + kQ80));
    const __m512 l0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(loadu128(w + 2)));
    const __m512 h0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(loadu128(w + 18)));
    const __m512 l1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(loadu128(w + kQ80 + 2)));
    const __m512 h1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(loadu128(w + kQ80 + 18)));
    a0 = _mm512_fmadd_ps(_mm512_mul_ps(l0, d0), _mm512_loadu_ps(x), a0);
    a1 = _mm512_fmadd_ps(_mm512_mul_ps(h0, d0), _mm512_loadu_ps(x + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_mul_ps(l1, d1), _mm512_loadu_ps(x + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_mul_ps(h1, d1), _mm512_loadu_ps(x + 48), a3);
  }
  if (b < nb) {
    const __m512 d0 = _mm512_set1_ps(h2f(w));
    const __m512 l0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(loadu128(w + 2)));
    const __m512 h0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(loadu128(w + 18)));
    a0 = _mm512_fmadd_ps(_mm512_mul_ps(l0, d0), _mm512_loadu_ps(x), a0);
    a1 = _mm512_fmadd_ps(_mm512_mul_ps(h0, d0), _mm512_loadu_ps(x + 16), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

}  // namespace
}  // namespace qk

#include "target_end.h"

// Outside the target region: this runs on any CPU (it only stores pointers).
namespace qk {

void fill_avx512(KernelTable& t, bool vnni) {
  t.isa = kIsaAvx512;
  t.type[kF32].vec_dot_f32 = dot_f32_f32;
  t.type[kF16].vec_dot_f32 = dot_f16_f32;
  t.type[kBF16].vec_dot_f32 = dot_bf16_f32;
  t.type[kQ4_0].vec_dot_f32 = dot_q4_0_f32;
  t.type[kQ4_1].vec_dot_f32 = dot_q4_1_f32;
  t.type[kQ8_0].vec_dot_f32 = dot_q8_0_f32;
  if (vnni) {
    t.type[kQ4_0].vec_dot = dot_qx<kQ40, true>;
    t.type[kQ4_0].vec_dot_rows = dot_rows_q4_0<true>;
  } else {
    t.type[kQ4_0].vec_dot = dot_qx<kQ40, false>;
    t.type[kQ4_0].vec_dot_rows = dot_rows_q4_0<false>;
    // q8_0 keeps the AVX2 kernel (here with or without VNNI): a 512-bit one
    // measured 1.3-1.6x slower on Zen 5 at 1x4096 @ 4096x11008.
  }
}

}  // namespace qk

#endif  // x86-64

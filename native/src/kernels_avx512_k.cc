// AVX-512 (F, BW, VL, DQ; optionally VNNI) kernels for q5_0, q5_1 and the
// K-quants q4_K, q5_K, q6_K (x86-64 only): vec_dot and vec_dot_f32, and the
// 'q8' vec_dot and vec_dot_rows of q4_1, q5_0, q5_1, which share one kernel;
// filled on top of the AVX-512 table; the entries not set here
// (dequantize_row, the q8_K activation quantizer) stay the AVX2 ones of
// kernels_avx2_k.cc.
//
// Same build rules as kernels_avx512.cc: global flags only, the ISA enabled
// by target_avx512_begin.h for the kernels, every header included before it, the
// fill function outside the region, and AVX512_VNNI NOT in the target set:
// its two instructions are written as inline asm and only reached by the
// kernels filled when vnni is true (a compiler that knows VNNI could fuse the
// maddubs/madd sequences of the non-VNNI kernels into VNNI instructions,
// which would fault on AVX-512 CPUs without it).
//
// vec_dot computes the same exact int32 integers per (super-)block as the
// scalar kernels (S for q5_0/q5_1; A, and B for q4_K/q5_K, in int32 lanes
// converted to f32 once per super-block; A for q6_K); only the float
// accumulation order differs.
// No alignment is assumed.
#if defined(__x86_64__) || defined(_M_X64)

#include <cstdint>
#include <cstring>

#include "fp16.h"
#include "kernels.h"
#include "types.h"

#include "target_avx512_begin.h"

namespace qk {
namespace {

constexpr int kQ4K = sizeof(BlockQ4_K), kQ5K = sizeof(BlockQ5_K), kQ6K = sizeof(BlockQ6_K), kQ8K = sizeof(BlockQ8_K);

#include "simd_avx512.h"
#include "quart_avx512.h"

inline float ld_f32(const uint8_t* p) { float v; std::memcpy(&v, p, 4); return v; }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m512i load512(const uint8_t* p) { return _mm512_loadu_si512(p); }
// 32 bytes at p in both 256-bit halves.
inline __m512i bcast256(const uint8_t* p) { return _mm512_broadcast_i64x4(load256(p)); }
// Sixteen bytes at p, zero-extended to int32 lanes.
inline __m512i u8x16(const uint8_t* p) { return _mm512_cvtepu8_epi32(load128(p)); }

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// VPDPWSSD: acc + sum a*b per pair of int16, exact (no saturation).
inline __m512i dpwssd(__m512i acc, __m512i a, __m512i b) {
#if defined(__GNUC__)
  __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
#else
  return _mm512_dpwssd_epi32(acc, a, b);
#endif
}

// The integer core shared by the three K-quants: acc + (per dword lane) the
// sum of the 4 products of its bytes (w unsigned levels, y int8 activations)
// times the lane's sub-block scale.
//  - VNNI: dpbusd gives the 4-product sums P in int32 lanes; |P| <= 4*63*128
//    < 2^15, so the low int16 of each lane is P itself, and dpwssd with the
//    scale in the low int16 (0 in the high one) adds P*scale exactly.
//  - otherwise: maddubs gives int16 pair sums (<= 2*63*128, no saturation)
//    and madd with the scale in both int16 halves adds both pairs times it.
// scale_lanes builds the scale vector of each variant from int32 lanes.
template <bool kVnni>
inline __m512i scale_lanes(__m512i s32) {
  const __m512i lo = _mm512_and_si512(s32, _mm512_set1_epi32(0xFFFF));
  return kVnni ? lo : _mm512_or_si512(lo, _mm512_slli_epi32(s32, 16));
}
template <bool kVnni>
inline __m512i mac(__m512i acc, __m512i w, __m512i y, __m512i sc) {
  if (kVnni) return dpwssd(acc, dpbusd(_mm512_setzero_si512(), w, y), sc);
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w, y), sc));
}

// Dword index vector [a x4, b x4, c x4, d x4] / [a x8, b x8].
inline __m512i idx4(int a, int b, int c, int d) { return _mm512_setr_epi32(a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d); }
inline __m512i idx8(int a, int b) { return _mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b); }

// ---- q4_K / q5_K --------------------------------------------------------------

// The 12 packed bytes of 6-bit scales and mins (quant-formats.md 4.2) ->
// bytes [sc0..sc7 | m0..m7]; see kernels_avx2_k.cc. Reads 16 bytes at s.
inline __m128i kscales(const uint8_t* s) {
  const __m128i v = load128(s);
  const __m128i A = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));  // u0 u2 u1 u2
  const __m128i B = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));  // u0 u0 u1 u1
  const __m128i lo = _mm_and_si128(_mm_srlv_epi32(A, _mm_setr_epi32(0, 0, 0, 4)),
                                   _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i hi = _mm_and_si128(_mm_srli_epi32(B, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(lo, hi);
}

// Per super-block, chunk c (64 elements: sub-blocks 2c, 2c+1) is one zmm: the
// 32 nibble bytes broadcast to both halves, the upper half shifted right by
// 4, masked: levels of elements 64c .. 64c+63 in order, against the 64
// contiguous activations. For q5_K the 32 qh bytes are broadcast likewise
// (upper half shifted right by 1 once, so that bit 2c of a byte is the fifth
// bit of both halves of chunk c) and 16 is added where the bit is set. The
// scale vector of chunk c has sc_2c in dwords 0..7 and sc_2c+1 in 8..15.
template <bool kQ5, bool kVnni>
float dot_qk_q8_K(int64_t k, const uint8_t* w, const uint8_t* a) {
  constexpr int kBytes = kQ5 ? kQ5K : kQ4K;
  constexpr int kQs = kQ5 ? 48 : 16;
  const __m512i m4 = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(0x10);
  const __m512i i0 = idx8(0, 1), i1 = idx8(2, 3), i2 = idx8(4, 5), i3 = idx8(6, 7);
  const __mmask32 upper = 0xFFFF0000u;
  __m512 acc = _mm512_setzero_ps();
  __m256 accm = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK_K; ++b, w += kBytes, a += kQ8K) {
    const float dy = ld_f32(a);
    const float D = h2f(w) * dy, Dm = h2f(w + 2) * dy;
    const __m128i sm = kscales(w + 4);
    const __m512i S = scale_lanes<kVnni>(_mm512_cvtepu8_epi32(sm));              // sc0..7, m0..7
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));         // m0 m0 m1 m1 .. m7 m7
    const __m256i B = _mm256_madd_epi16(load256(a + 260), mins);                  // m_j*(bs_2j + bs_2j+1)
    __m512i hb = _mm512_setzero_si512();
    if (kQ5) {
      hb = bcast256(w + 16);
      hb = _mm512_mask_srli_epi16(hb, upper, hb, 1);
    }
    const uint8_t* q = w + kQs;
    const uint8_t* y = a + 4;
    __m512i sumi = _mm512_setzero_si512();
    const __m512i idx[4] = {i0, i1, i2, i3};
    for (int c = 0; c < 4; ++c) {
      const __m512i x = bcast256(q + 32 * c);
      __m512i lv = _mm512_and_si512(_mm512_mask_srli_epi16(x, upper, x, 4), m4);
      if (kQ5) {
        const __mmask64 bit = _mm512_test_epi8_mask(hb, _mm512_set1_epi8(static_cast<char>(1 << (2 * c))));
        lv = _mm512_mask_add_epi8(lv, bit, lv, b16);
      }
      sumi = mac<kVnni>(sumi, lv, load512(y + 64 * c), _mm512_permutexvar_epi32(idx[c], S));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(D), _mm512_cvtepi32_ps(sumi), acc);
    accm = _mm256_fmadd_ps(_mm256_set1_ps(Dm), _mm256_cvtepi32_ps(B), accm);
  }
  return _mm512_reduce_add_ps(acc) - hsum256(accm);
}

// 'f32': weights D_j*q - M_j rebuilt in registers (one fmsub: D*q is exact),
// FMA with x. Chunk c, half t (t = 0, 1) of its 32 bytes: 16 levels of
// sub-block 2c (low nibbles) and 16 of 2c+1 (high nibbles).
template <bool kQ5>
float dot_qk_f32(int64_t k, const uint8_t* w, const float* x) {
  constexpr int kBytes = kQ5 ? kQ5K : kQ4K;
  constexpr int kQs = kQ5 ? 48 : 16;
  const __m512i m4 = _mm512_set1_epi32(0xF), b16 = _mm512_set1_epi32(16);
  alignas(64) float D[8], M[8];
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < k / QK_K; ++b, w += kBytes, x += QK_K) {
    const __m128i sm = kscales(w + 4);
    const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sm));
    const __m512 dd = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(h2f(w)), _mm512_set1_ps(h2f(w + 2)));
    alignas(64) float DM[16];
    _mm512_store_ps(DM, _mm512_mul_ps(dd, f));  // d*sc_j, then dmin*m_j (f32 products, as the scalar code)
    std::memcpy(D, DM, sizeof D);
    std::memcpy(M, DM + 8, sizeof M);
    for (int c = 0; c < 4; ++c) {
      for (int t = 0; t < 2; ++t) {
        const __m512i v = u8x16(w + kQs + 32 * c + 16 * t);
        __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_srli_epi32(v, 4);
        if (kQ5) {
          const __m512i hq = u8x16(w + 16 + 16 * t);
          lo = _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi32(_mm512_srli_epi32(hq, 2 * c), 4), b16));
          hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_slli_epi32(_mm512_srli_epi32(hq, 2 * c + 1), 4), b16));
        }
        const int j = 2 * c;
        const __m512 wl = _mm512_fmsub_ps(_mm512_cvtepi32_ps(lo), _mm512_set1_ps(D[j]), _mm512_set1_ps(M[j]));
        const __m512 wh = _mm512_fmsub_ps(_mm512_cvtepi32_ps(hi), _mm512_set1_ps(D[j + 1]), _mm512_set1_ps(M[j + 1]));
        acc[2 * t] = _mm512_fmadd_ps(wl, _mm512_loadu_ps(x + 64 * c + 16 * t), acc[2 * t]);
        acc[2 * t + 1] = _mm512_fmadd_ps(wh, _mm512_loadu_ps(x + 64 * c + 32 + 16 * t), acc[2 * t + 1]);
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

// ---- q6_K ---------------------------------------------------------------------
//
// Half h (elements 128h .. 128h+127) is two zmm of levels u (0..63):
// v01 = elements 128h + 0..63:  ql[64h + l] & 15 | (qh & 3) << 4 (bytes 0..31),
//                               ql[64h + 32 + l] & 15 | (qh >> 2 & 3) << 4 (32..63);
// v23 = elements 128h + 64..127: ql[64h + l] >> 4 | (qh >> 4 & 3) << 4,
//                               ql[64h + 32 + l] >> 4 | (qh >> 6) << 4;
// with qh = qh[32h + l] broadcast to both halves and shifted per half
// (vpsllvw / vpsrlvw), masked to bits 4-5 and merged with the nibbles by one
// ternlog (bits 0-3 from the nibble byte, 4-7 from the qh byte). 128-bit lane
// j of v01 is sub-block 8h + j, of v23 sub-block 8h + 4 + j.
// A = sum_j s_j * sum u*y - 32 * sum_j s_j*bsums_j (the correction starts sumi).
template <bool kVnni>
float dot_q6_K_q8_K(int64_t k, const uint8_t* w, const uint8_t* a) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  const __m512i sh01 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i sh23 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  const __m512i idx[2][2] = {{idx4(0, 1, 2, 3), idx4(4, 5, 6, 7)}, {idx4(8, 9, 10, 11), idx4(12, 13, 14, 15)}};
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK_K; ++b, w += kQ6K, a += kQ8K) {
    const float D = h2f(w + 208) * ld_f32(a);
    const __m128i sc8 = load128(w + 192);
    const __m512i S = scale_lanes<kVnni>(_mm512_cvtepi8_epi32(sc8));
    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(load256(a + 260), _mm256_cvtepi8_epi16(sc8)), 5);
    __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), corr));
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = load512(w + 64 * h);
      const __m512i qh = bcast256(w + 128 + 32 * h);
      const __m512i h01 = _mm512_and_si512(_mm512_sllv_epi16(qh, sh01), m30);
      const __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(qh, sh23), m30);
      // 0xE4: bitwise (c ? a : b) with c = 0x0F.
      const __m512i v01 = _mm512_ternarylogic_epi32(ql, h01, m4, 0xE4);
      const __m512i v23 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), h23, m4, 0xE4);
      const uint8_t* y = a + 4 + 128 * h;
      sumi = mac<kVnni>(sumi, v01, load512(y), _mm512_permutexvar_epi32(idx[h][0], S));
      sumi = mac<kVnni>(sumi, v23, load512(y + 64), _mm512_permutexvar_epi32(idx[h][1], S));
    }
    // A itself goes to float, not its lanes: see kernels_avx2_k.cc (the lanes
    // hold the -32 correction apart from the products it cancels).
    acc += D * static_cast<float>(_mm512_reduce_add_epi32(sumi));
  }
  return acc;
}

// 'f32': y = D_j*(u - 32) (D_j = d*scales_j, f32 products as the scalar
// code), FMA with x; 16 elements per vector.
float dot_q6_K_f32(int64_t k, const uint8_t* w, const float* x) {
  const __m512i m4 = _mm512_set1_epi32(0xF), m30 = _mm512_set1_epi32(0x30), b32 = _mm512_set1_epi32(32);
  alignas(64) float D[16];
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < k / QK_K; ++b, w += kQ6K, x += QK_K) {
    _mm512_store_ps(D, _mm512_mul_ps(_mm512_set1_ps(h2f(w + 208)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load128(w + 192)))));
    for (int h = 0; h < 2; ++h) {
      for (int t = 0; t < 2; ++t) {
        const __m512i ql0 = u8x16(w + 64 * h + 16 * t), ql1 = u8x16(w + 64 * h + 32 + 16 * t);
        const __m512i hq = u8x16(w + 128 + 32 * h + 16 * t);
        __m512i u[4];
        u[0] = _mm512_or_si512(_mm512_and_si512(ql0, m4), _mm512_and_si512(_mm512_slli_epi32(hq, 4), m30));
        u[1] = _mm512_or_si512(_mm512_and_si512(ql1, m4), _mm512_and_si512(_mm512_slli_epi32(hq, 2), m30));
        u[2] = _mm512_or_si512(_mm512_srli_epi32(ql0, 4), _mm512_and_si512(hq, m30));
        u[3] = _mm512_or_si512(_mm512_srli_epi32(ql1, 4), _mm512_and_si512(_mm512_srli_epi32(hq, 2), m30));
        for (int i = 0; i < 4; ++i) {
          const int e = 128 * h + 32 * i + 16 * t;
          const __m512 v = _mm512_mul_ps(_mm512_set1_ps(D[e / 16]), _mm512_cvtepi32_ps(_mm512_sub_epi32(u[i], b32)));
          acc[i] = _mm512_fmadd_ps(v, _mm512_loadu_ps(x + e), acc[i]);
        }
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

// 'f32': (u - 16)*d, resp. fma(u, d, m) (== u*d + m: u*d is exact), FMA with x;
// elements 0..15 and 16..31 of a block per vector.
template <bool kQ50Type>
float dot_q5_f32(int64_t k, const uint8_t* w, const float* x) {
  constexpr int kW = kQ50Type ? kQ50 : kQ51;
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  const __m512i b16 = _mm512_set1_epi32(16);
  const int64_t nb = k / QK32;
  for (int64_t b = 0; b < nb; ++b, w += kW, x += QK32) {
    const __m256i u = kQ50Type ? q5_levels32<2, 6>(w) : q5_levels32<4, 8>(w);
    __m512i lo = _mm512_cvtepu8_epi32(_mm256_castsi256_si128(u)), hi = _mm512_cvtepu8_epi32(_mm256_extracti128_si256(u, 1));
    const __m512 d = _mm512_set1_ps(h2f(w));
    __m512 wl, wh;
    if (kQ50Type) {
      wl = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo, b16)), d);
      wh = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi, b16)), d);
    } else {
      const __m512 m = _mm512_set1_ps(h2f(w + 2));
      wl = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), d, m);
      wh = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), d, m);
    }
    if (b & 1) {
      a2 = _mm512_fmadd_ps(wl, _mm512_loadu_ps(x), a2);
      a3 = _mm512_fmadd_ps(wh, _mm512_loadu_ps(x + 16), a3);
    } else {
      a0 = _mm512_fmadd_ps(wl, _mm512_loadu_ps(x), a0);
      a1 = _mm512_fmadd_ps(wh, _mm512_loadu_ps(x + 16), a1);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

}  // namespace
}  // namespace qk

#include "target_end.h"

// Outside the target region: this runs on any CPU (it only stores pointers).
namespace qk {

// The 'q8' dots, which differ only by the dot-product instruction.
template <bool kVnni>
void fill_q8_dots(KernelTable& t) {
  t.type[kQ4_1].vec_dot = dot_qx<kQ41, kVnni>;
  t.type[kQ5_0].vec_dot = dot_qx<kQ50, kVnni>;
  t.type[kQ5_1].vec_dot = dot_qx<kQ51, kVnni>;
  t.type[kQ4_1].vec_dot_rows = dot_rows_qx<kQ41, kVnni>;
  t.type[kQ5_0].vec_dot_rows = dot_rows_qx<kQ50, kVnni>;
  t.type[kQ5_1].vec_dot_rows = dot_rows_qx<kQ51, kVnni>;
  t.type[kQ4_K].vec_dot = dot_qk_q8_K<false, kVnni>;
  t.type[kQ5_K].vec_dot = dot_qk_q8_K<true, kVnni>;
  t.type[kQ6_K].vec_dot = dot_q6_K_q8_K<kVnni>;
}

void fill_avx512_kquants(KernelTable& t, bool vnni) {
  t.type[kQ5_0].vec_dot_f32 = dot_q5_f32<true>;
  t.type[kQ5_1].vec_dot_f32 = dot_q5_f32<false>;
  t.type[kQ4_K].vec_dot_f32 = dot_qk_f32<false>;
  t.type[kQ5_K].vec_dot_f32 = dot_qk_f32<true>;
  t.type[kQ6_K].vec_dot_f32 = dot_q6_K_f32;
  if (vnni) {
    fill_q8_dots<true>(t);
  } else {
    fill_q8_dots<false>(t);
  }
}

}  // namespace qk

#endif  // x86-64

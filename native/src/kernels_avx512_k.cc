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

// ---- q4_1 / q5_0 / q5_1 --------------------------------------------------------
//
// The three formats with an offset or a fifth bit, told apart by their block
// size kW (20, 22, 24 bytes). Quartets of blocks, as q4_0 in
// kernels_avx512.cc: 128-bit lane l holds block l of four, one vector its
// elements 0..15 (low nibbles), another 16..31 (high nibbles), each against
// the matching 16 activation bytes, so a dot product leaves 4 partial sums of
// block l in lane l with no folding. q5's fifth bits: the 4 qh bytes,
// broadcast to the lanes like the nibbles, are spread one byte per element by
// a shuffle and tested against the element's bit; 16 is added where it is
// set. Levels u are unsigned (0..15, 0..31):
//   q4_1, q5_1: S = sum u*y (and m * s in floats);  q5_0: S = sum u*y - 16 * sum y,
// the -16 * sum y of an activation quartet computed once for all the weight
// rows of a pass. Four quartets fold (reduce4) into the 16 block sums of a
// group, the fp16 scales gathered in the same order (Perm16); one cvt + one
// FMA per 16 blocks and row.
//
// Batch 1 runs 4 weight rows a pass (vec_dot_rows), prefetched as q4_0's.
// Against the former q5 kernel (two blocks per vector, the fifth bits as a
// mask moved from general registers, the halves folded by shuffles, one row
// at a time), alternated in one process, weights from memory: 2 threads, q5_0
// 1.19-1.38x (to 37-42 GB/s), q5_1 1.57-2.06x (to 37-42 GB/s); 1 thread at
// 1x4096 @ 4096x11008 1.24x and 1.64x (to 21-22 GB/s).
constexpr int kQ41 = sizeof(BlockQ4_1), kQ50 = sizeof(BlockQ5_0), kQ51 = sizeof(BlockQ5_1), kQ80 = sizeof(BlockQ8_0),
              kQ81 = sizeof(BlockQ8_1);

// Layout facts of a weight format (kW: its block size).
template <int kW>
struct Fmt {
  static constexpr bool kFifthBit = kW != kQ41;
  static constexpr bool kOffset16 = kW == kQ50;  // q5_0: levels - 16; q4_1/q5_1: + m
  static constexpr int kQh = kW == kQ50 ? 2 : 4;  // q5 only
  static constexpr int kQs = kW == kQ41 ? 4 : kW == kQ50 ? 6 : 8;
  static constexpr int kA = kOffset16 ? kQ80 : kQ81;  // activation block: q8_0 or q8_1
};

inline uint32_t ld_u32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }

struct LevelQuart { __m512i lo, hi; };
struct Q8Quart { __m512i lo, hi, corr; };

template <int kW>
inline LevelQuart level_quart(const uint8_t* w) {
  using F = Fmt<kW>;
  const __m512i z = bcast4<kW>(w + F::kQs), m4 = _mm512_set1_epi8(0x0F);
  const __m512i lo = _mm512_and_si512(z, m4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
  if (!F::kFifthBit) return {lo, hi};
  const __m512i h = bcast4<kW>(w + F::kQh), e16 = _mm512_set1_epi8(0x10);
  // Element j of a lane's low vector takes bit j of qh (byte j / 8), of its high vector bit 16 + j.
  const __m512i sel_lo = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m512i sel_hi = _mm512_broadcast_i32x4(_mm_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m512i bit = _mm512_broadcast_i32x4(_mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128));
  return {_mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(_mm512_shuffle_epi8(h, sel_lo), bit), lo, e16),
          _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(_mm512_shuffle_epi8(h, sel_hi), bit), hi, e16)};
}

// An activation quartet (q8_0 for q5_0, else q8_1); corr = -16 * sum y for q5_0, else 0.
template <int kW, bool kVnni>
inline Q8Quart q8_quart(const uint8_t* a) {
  constexpr int kA = Fmt<kW>::kA, kYs = kA - 32;
  Q8Quart r{bcast4<kA>(a + kYs), bcast4<kA>(a + kYs + 16), _mm512_setzero_si512()};
  if (Fmt<kW>::kOffset16) {
    const __m512i e16 = _mm512_set1_epi8(16);
    __m512i sum16;
    if (kVnni) {
      sum16 = dpbusd(dpbusd(_mm512_setzero_si512(), e16, r.lo), e16, r.hi);
    } else {
      // int16: two pair sums of 16 * |y| <= 2 * 2 * 16 * 128 < 2^15.
      const __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(e16, r.lo), _mm512_maddubs_epi16(e16, r.hi));
      sum16 = _mm512_madd_epi16(p, _mm512_set1_epi16(1));
    }
    r.corr = _mm512_sub_epi32(_mm512_setzero_si512(), sum16);
  }
  return r;
}

// Lane l: 4 partial sums whose total is the exact S of block l.
template <bool kVnni>
inline __m512i quart_dot(const LevelQuart& w, const Q8Quart& a) {
  if (kVnni) return dpbusd(dpbusd(a.corr, w.lo, a.lo), w.hi, a.hi);
  // int16: each maddubs pair <= 2 * 31 * 128, two of them summed stay < 2^15.
  const __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(w.lo, a.lo), _mm512_maddubs_epi16(w.hi, a.hi));
  return _mm512_add_epi32(a.corr, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
}

// Dword permutes collecting one 16-bit field (byte kField of each block,
// blocks kStride apart) of 16 consecutive blocks into the reduce4 order,
// from 64-byte windows inside the 16 blocks; a field in the upper half of its
// dword is shifted down, so the low 16 bits of dword i are the field (the
// upper 16 bits the next field when both share a dword: q5_1 d|m, q8_1 d|s).
template <int kStride, int kField>
struct Perm16 {
  static constexpr int kGroup = 16 * kStride;
  static constexpr int kWin = (kGroup + 63) / 64;
  int32_t idx[kWin][16];
  int base[kWin];
  uint32_t mask[kWin];
  uint32_t upper;
  constexpr Perm16() : idx(), base(), mask(), upper(0) {
    for (int m = 0; m < kWin; ++m) base[m] = 64 * m < kGroup - 64 ? 64 * m : kGroup - 64;
    for (int i = 0; i < 16; ++i) {
      const int off = kStride * (4 * (i % 4) + i / 4) + kField;
      const int doff = off & ~3;
      if (off & 2) upper |= 1u << i;
      for (int m = 0; m < kWin; ++m) {
        if (doff >= base[m] && doff + 4 <= base[m] + 64) {
          idx[m][i] = (doff - base[m]) / 4;
          mask[m] |= 1u << i;
          break;
        }
      }
    }
  }
};

template <int kStride, int kField>
inline __m512i gather_fields16(const uint8_t* p) {
  static constexpr Perm16<kStride, kField> P{};
  __m512i r = _mm512_permutexvar_epi32(_mm512_loadu_si512(P.idx[0]), load512(p + P.base[0]));
  for (int m = 1; m < P.kWin; ++m) {
    if (P.mask[m]) {
      r = _mm512_mask_permutexvar_epi32(r, static_cast<__mmask16>(P.mask[m]), _mm512_loadu_si512(P.idx[m]), load512(p + P.base[m]));
    }
  }
  if (P.upper) r = _mm512_mask_srli_epi32(r, static_cast<__mmask16>(P.upper), r, 16);
  return r;
}

// Levels (0..31) of one block in element order, for the tails.
template <int kQh, int kQs>
inline __m256i q5_levels32(const uint8_t* w) {
  const __m128i v = load128(w + kQs);
  const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
  return _mm256_mask_add_epi8(nib, static_cast<__mmask32>(ld_u32(w + kQh)), nib, _mm256_set1_epi8(0x10));
}
// Exact S of one block, for the tails.
template <int kW>
inline int block_dot(const uint8_t* w, const uint8_t* a) {
  using F = Fmt<kW>;
  __m256i u;
  if (F::kFifthBit) {
    u = q5_levels32<F::kQh, F::kQs>(w);
  } else {
    const __m128i v = load128(w + F::kQs);
    u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
  }
  const __m256i y = load256(a + F::kA - 32);
  __m256i p = _mm256_maddubs_epi16(u, y);
  if (F::kOffset16) p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(_mm256_set1_epi8(16), y));
  return hsum8_i32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

// kRows weight rows (ws bytes apart) against one activation row: out[r].
// Four rows stream side by side with software prefetch (prefetch_row_set).
template <int kW, bool kVnni, int kRows>
void rows_qx(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, float* out) {
  constexpr int kA = Fmt<kW>::kA;
  constexpr bool kMin = !Fmt<kW>::kOffset16;
  const int64_t nb = k / QK32, ng = nb / 16;
  __m512 acc[kRows], accm[kRows];
  QK_UNROLL
  for (int r = 0; r < kRows; ++r) acc[r] = accm[r] = _mm512_setzero_ps();
  PrefetchLead lead = prefetch_lead(nb);
  for (int64_t g = 0; g < ng; ++g) {
    const int64_t b0 = g * 16;
    if (kRows == 4) prefetch_row_set<kW>(w, ws, g, ng, lead);
    __m512i v[kRows][4];
    QK_UNROLL
    for (int q = 0; q < 4; ++q) {
      const Q8Quart y = q8_quart<kW, kVnni>(a + (b0 + 4 * q) * kA);
      QK_UNROLL
      for (int r = 0; r < kRows; ++r) v[r][q] = quart_dot<kVnni>(level_quart<kW>(w + r * ws + (b0 + 4 * q) * kW), y);
    }
    // q5_0: d; q4_1/q5_1: d | m << 16 (weights), d | s << 16 (activations).
    const __m512i yf = gather_fields16<kA, 0>(a + b0 * kA);
    const __m512 dy = low_halves_ps(yf);
    QK_UNROLL
    for (int r = 0; r < kRows; ++r) {
      const __m512i xf = gather_fields16<kW, 0>(w + r * ws + b0 * kW);
      const __m512i s = reduce4(v[r][0], v[r][1], v[r][2], v[r][3]);
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(low_halves_ps(xf), dy), _mm512_cvtepi32_ps(s), acc[r]);
      if (kMin) accm[r] = _mm512_fmadd_ps(high_halves_ps(xf), high_halves_ps(yf), accm[r]);
    }
  }
  QK_UNROLL
  for (int r = 0; r < kRows; ++r) {
    const uint8_t* wr = w + r * ws;
    float tail = 0.f;
    for (int64_t b = ng * 16; b < nb; ++b) {
      const uint8_t* wb = wr + b * kW;
      const uint8_t* ab = a + b * kA;
      tail += (h2f(wb) * h2f(ab)) * static_cast<float>(block_dot<kW>(wb, ab));
      if (kMin) tail += h2f(wb + 2) * h2f(ab + 2);
    }
    out[r] = _mm512_reduce_add_ps(kMin ? _mm512_add_ps(acc[r], accm[r]) : acc[r]) + tail;
  }
}

template <int kW, bool kVnni>
float dot_qx(int64_t k, const uint8_t* w, const uint8_t* a) {
  float r;
  rows_qx<kW, kVnni, 1>(k, w, 0, a, &r);
  return r;
}

// nw 1..8 weight rows x na 1..4 activation rows: 4 weight rows a pass, each activation row in turn.
template <int kW, bool kVnni>
void dot_rows_qx(int64_t k, const uint8_t* w, size_t ws, int nw, const uint8_t* a, size_t as, int na, float* out, size_t os) {
  for (int j = 0; j < na; ++j) {
    const uint8_t* aj = a + j * as;
    float* oj = out + j * os;
    int i = 0;
    for (; i + 4 <= nw; i += 4) rows_qx<kW, kVnni, 4>(k, w + i * ws, ws, aj, oj + i);
    switch (nw - i) {
      case 3: rows_qx<kW, kVnni, 3>(k, w + i * ws, ws, aj, oj + i); break;
      case 2: rows_qx<kW, kVnni, 2>(k, w + i * ws, ws, aj, oj + i); break;
      case 1: rows_qx<kW, kVnni, 1>(k, w + i * ws, ws, aj, oj + i); break;
      default: break;
    }
  }
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

void fill_avx512_kquants(KernelTable& t, bool vnni) {
  t.type[kQ5_0].vec_dot_f32 = dot_q5_f32<true>;
  t.type[kQ5_1].vec_dot_f32 = dot_q5_f32<false>;
  t.type[kQ4_K].vec_dot_f32 = dot_qk_f32<false>;
  t.type[kQ5_K].vec_dot_f32 = dot_qk_f32<true>;
  t.type[kQ6_K].vec_dot_f32 = dot_q6_K_f32;
  if (vnni) {
    t.type[kQ4_1].vec_dot = dot_qx<kQ41, true>;
    t.type[kQ5_0].vec_dot = dot_qx<kQ50, true>;
    t.type[kQ5_1].vec_dot = dot_qx<kQ51, true>;
    t.type[kQ4_1].vec_dot_rows = dot_rows_qx<kQ41, true>;
    t.type[kQ5_0].vec_dot_rows = dot_rows_qx<kQ50, true>;
    t.type[kQ5_1].vec_dot_rows = dot_rows_qx<kQ51, true>;
    t.type[kQ4_K].vec_dot = dot_qk_q8_K<false, true>;
    t.type[kQ5_K].vec_dot = dot_qk_q8_K<true, true>;
    t.type[kQ6_K].vec_dot = dot_q6_K_q8_K<true>;
  } else {
    t.type[kQ4_1].vec_dot = dot_qx<kQ41, false>;
    t.type[kQ5_0].vec_dot = dot_qx<kQ50, false>;
    t.type[kQ5_1].vec_dot = dot_qx<kQ51, false>;
    t.type[kQ4_1].vec_dot_rows = dot_rows_qx<kQ41, false>;
    t.type[kQ5_0].vec_dot_rows = dot_rows_qx<kQ50, false>;
    t.type[kQ5_1].vec_dot_rows = dot_rows_qx<kQ51, false>;
    t.type[kQ4_K].vec_dot = dot_qk_q8_K<false, false>;
    t.type[kQ5_K].vec_dot = dot_qk_q8_K<true, false>;
    t.type[kQ6_K].vec_dot = dot_q6_K_q8_K<false>;
  }
}

}  // namespace qk

#endif  // x86-64

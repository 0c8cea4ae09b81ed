// SIMD helpers shared by the AVX-512 kernel files. Include it only
// inside `namespace qk { namespace {`, after the file's target pragma (or
// clang attribute), so that every function here is compiled for that ISA.
#pragma once

inline uint16_t ld_u16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }

inline float h2f(const uint8_t* p) { return _cvtsh_ss(ld_u16(p)); }

#include "rows_x86.h"  // needs h2f

// VPDPBUSD: acc + sum u*s per 4-byte group (u unsigned, s signed), exact.
// AVX512_VNNI is deliberately NOT in this file's target set: a compiler that
// knows VNNI may fuse maddubs/madd/add sequences of the non-VNNI kernels into
// VNNI instructions (LLVM has such patterns), which would fault on AVX-512
// CPUs without VNNI (Skylake-SP/X, iMac Pro). The instruction is written as
// inline asm instead, and only the kernels filled when vnni is true reach it.
inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
#if defined(__GNUC__)
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
#else
  return _mm512_dpbusd_epi32(acc, u, s);  // MSVC: intrinsics need no target flags
#endif
}

// Quartet of 16-byte pieces (p + kStride*l) into lane l, by broadcasts (load
// port) and blends rather than lane inserts (shuffle port).
template <int kStride>
inline __m512i bcast4(const uint8_t* p) {
  const auto at = [p](int l) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + l * kStride)); };
  __m512i z = _mm512_broadcast_i32x4(at(0));
  z = _mm512_mask_broadcast_i32x4(z, 0x00F0, at(1));
  z = _mm512_mask_broadcast_i32x4(z, 0x0F00, at(2));
  return _mm512_mask_broadcast_i32x4(z, 0xF000, at(3));
}

// Dword permutes that collect one 16-bit field (at byte kField of each block,
// blocks kStride bytes apart) of 16 consecutive blocks into the reduce4 order:
// dword i gets the 4 bytes holding the field of block 4(i%4) + i/4, read from
// 64-byte windows that all lie inside the 16 blocks (no read past them); a
// field in the upper half of its dword is shifted down afterwards, so the low
// 16 bits of dword i are the field (the upper 16 bits are the next field when
// kField and kField+2 share a dword: q4_1 d|m, q8_1 d|s). kNatural: dword i
// gets block i instead.
template <int kStride, int kField, bool kNatural = false>
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
      const int off = kStride * (kNatural ? i : 4 * (i % 4) + i / 4) + kField;
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

template <int kStride, int kField, bool kNatural = false>
inline __m512i gather_fields16(const uint8_t* p) {
  static constexpr Perm16<kStride, kField, kNatural> P{};
  __m512i r = _mm512_permutexvar_epi32(_mm512_loadu_si512(P.idx[0]), _mm512_loadu_si512(p + P.base[0]));
  for (int m = 1; m < P.kWin; ++m) {
    if (P.mask[m]) {
      r = _mm512_mask_permutexvar_epi32(r, static_cast<__mmask16>(P.mask[m]), _mm512_loadu_si512(P.idx[m]),
                                        _mm512_loadu_si512(p + P.base[m]));
    }
  }
  if (P.upper) r = _mm512_mask_srli_epi32(r, static_cast<__mmask16>(P.upper), r, 16);
  return r;
}

// Four quartet vectors (lane l of v_j: block 4j+l) -> dword 4l+j = S of block 4j+l.
inline __m512i reduce4(__m512i v0, __m512i v1, __m512i v2, __m512i v3) {
  const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(v0, v1), _mm512_unpackhi_epi32(v0, v1));
  const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(v2, v3), _mm512_unpackhi_epi32(v2, v3));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
}

// fp16 in the low 16 bits of each dword -> 16 floats.
inline __m512 low_halves_ps(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }

inline __m512 high_halves_ps(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))); }

// 256-bit exact integer S of one block, for the tails (< 16 blocks).
inline int hsum8_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

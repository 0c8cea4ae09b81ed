// SIMD helpers shared by the AVX-512 kernel files. Include it only
// inside `namespace qk { namespace {`, after the file's target pragma (or
// clang attribute), so that every function here is compiled for that ISA.
#pragma once

inline uint16_t ld_u16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }

inline float h2f(const uint8_t* p) { return _cvtsh_ss(ld_u16(p)); }

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

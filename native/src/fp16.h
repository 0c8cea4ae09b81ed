// Scalar fp16 / bf16 conversions, bit-exact with ggml's portable routines
// (round to nearest even, subnormals kept, NaN made quiet).
#pragma once
#include <cstdint>
#include <cstring>

namespace qk {
// Internal linkage: with MSVC the AVX2/AVX-512 files are compiled with /arch
// flags, and a shared inline copy from one of them could be the one the linker
// keeps for every caller (an AVX instruction on a CPU without AVX).
namespace {

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t man = h & 0x3FF;
  if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (man << 13));
  if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
  // Subnormal or zero: man * 2^-24 is exact in f32.
  const float v = static_cast<float>(man) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

inline uint16_t f32_to_fp16(float f) {
  const uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00;        // NaN
  if (ax >= 0x477FF000u) return sign | 0x7C00;       // rounds past 65504: inf
  if (ax < 0x38800000u) {                            // below the smallest normal fp16
    // Adding 0.5 (an f32 with exponent -1) aligns the mantissa so that the FPU's
    // own nearest-even rounding produces the subnormal fp16 mantissa.
    const float r = bits_f32(ax) + 0.5f;
    return sign | static_cast<uint16_t>(f32_bits(r) - 0x3F000000u);
  }
  const uint32_t odd = (ax >> 13) & 1;
  const uint32_t rounded = ax + 0xC8000FFFu + odd;   // rebias exponent (-112 << 23) and round to even
  return sign | static_cast<uint16_t>(rounded >> 13);
}

inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

}  // namespace
}  // namespace qk

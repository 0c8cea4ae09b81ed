// NEON kernels for the interleaved q4_0 and q8_0 layouts (interleave.h), for
// CPUs with ARMv8.2 SDOT. One 128-bit register holds the same 4 payload bytes
// of 4 rows, and SDOT by lane multiplies them by one activation dword: 4 dot
// product steps per instruction, no horizontal sums. Without SDOT the table
// keeps no tile kernel and matmul de-interleaves tiles for the row kernels.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstring>

#include "interleave.h"
#include "kernels.h"
#include "types.h"

#include "neon_dotprod.h"

namespace qk {
namespace {

#if QK_HAVE_DOTPROD

constexpr int kQ80 = 34;

// Per type: the 8 registers of 4-row group quad q (rows 4q..4q+3) of one
// block, u[i] holding levels 4i..4i+3 of each row as int8 (so u[i] meets
// activation dword i), and the offset those levels carry.
struct NeonQ4_0 {
  static constexpr int kPayload = 16, kOffset = 8;
  QK_DOTPROD static inline void unpack(const uint8_t* tp, int q, int8x16_t u[8]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int g = 0; g < 4; ++g) {
      const uint8x16_t p = vld1q_u8(tp + 64 * g + 16 * q);
      u[g] = vreinterpretq_s8_u8(vandq_u8(p, m4));
      u[4 + g] = vreinterpretq_s8_u8(vshrq_n_u8(p, 4));
    }
  }
};

struct NeonQ8_0 {
  static constexpr int kPayload = 32, kOffset = 0;
  QK_DOTPROD static inline void unpack(const uint8_t* tp, int q, int8x16_t u[8]) {
    for (int g = 0; g < 8; ++g) u[g] = vld1q_s8(reinterpret_cast<const int8_t*>(tp + 64 * g + 16 * q));
  }
};

// Exact sum over one block of (u - offset) * y for 4 rows.
QK_DOTPROD inline int32x4_t quad_sums(const int8x16_t u[8], int8x16_t y0, int8x16_t y1, int32_t corr) {
  int32x4_t s0 = vdupq_n_s32(corr), s1 = vdupq_n_s32(0);
  s0 = vdotq_laneq_s32(s0, u[0], y0, 0);
  s1 = vdotq_laneq_s32(s1, u[4], y1, 0);
  s0 = vdotq_laneq_s32(s0, u[1], y0, 1);
  s1 = vdotq_laneq_s32(s1, u[5], y1, 1);
  s0 = vdotq_laneq_s32(s0, u[2], y0, 2);
  s1 = vdotq_laneq_s32(s1, u[6], y1, 2);
  s0 = vdotq_laneq_s32(s0, u[3], y0, 3);
  s1 = vdotq_laneq_s32(s1, u[7], y1, 3);
  return vaddq_s32(s0, s1);
}

// One block against kNa activation rows (at most 4: 16 float accumulators,
// 8 unpacked weights and the activations fill the 32 registers).
template <typename T, int kNa>
QK_DOTPROD inline void tile_block(const uint8_t* ts, const uint8_t* tp, const uint8_t* a, size_t as, const ActBlockMeta* meta,
                                  size_t ms, int64_t b, float32x4_t acc[][4]) {
  int8x16_t y0[kNa], y1[kNa];
  float32x4_t da[kNa];
  int32_t corr[kNa];
  for (int j = 0; j < kNa; ++j) {
    const int8_t* y = reinterpret_cast<const int8_t*>(a + j * as + b * kQ80 + 2);
    y0[j] = vld1q_s8(y);
    y1[j] = vld1q_s8(y + 16);
    const ActBlockMeta mt = meta[j * ms + b];
    da[j] = vdupq_n_f32(mt.d);
    corr[j] = -T::kOffset * mt.sum;
  }
  for (int q = 0; q < 4; ++q) {
    const float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(ts + 8 * q))));
    int8x16_t u[8];
    T::unpack(tp, q, u);
    for (int j = 0; j < kNa; ++j) {
      const int32x4_t s = quad_sums(u, y0[j], y1[j], corr[j]);
      acc[j][q] = vfmaq_f32(acc[j][q], vcvtq_f32_s32(s), vmulq_f32(dw, da[j]));
    }
  }
}

template <typename T, int kNa>
QK_DOTPROD void tile_rows(int64_t k, const uint8_t* tile, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms,
                          float* out, size_t os, int nvalid) {
  const int64_t nb = k / QK32;
  float32x4_t acc[kNa][4];
  for (int j = 0; j < kNa; ++j)
    for (int q = 0; q < 4; ++q) acc[j][q] = vdupq_n_f32(0.f);
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = tile_place(b, nb, 2 + T::kPayload);
    tile_block<T, kNa>(tile + at.scales, tile + at.payload, a, as, meta, ms, b, acc);
  }
  for (int j = 0; j < kNa; ++j) {
    float r[16];
    for (int q = 0; q < 4; ++q) vst1q_f32(r + 4 * q, acc[j][q]);
    std::memcpy(out + j * os, r, sizeof(float) * static_cast<size_t>(nvalid < 16 ? nvalid : 16));
  }
}

template <typename T>
QK_DOTPROD void tile_dot(int64_t k, const uint8_t* tile, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms, int na,
                         float* out, size_t os, int nvalid) {
  for (int j0 = 0; j0 < na; j0 += 4) {
    const int n = na - j0 < 4 ? na - j0 : 4;
    const uint8_t* aj = a + j0 * as;
    const ActBlockMeta* mj = meta + j0 * ms;
    float* oj = out + j0 * os;
    switch (n) {
      case 4: tile_rows<T, 4>(k, tile, aj, as, mj, ms, oj, os, nvalid); break;
      case 3: tile_rows<T, 3>(k, tile, aj, as, mj, ms, oj, os, nvalid); break;
      case 2: tile_rows<T, 2>(k, tile, aj, as, mj, ms, oj, os, nvalid); break;
      default: tile_rows<T, 1>(k, tile, aj, as, mj, ms, oj, os, nvalid); break;
    }
  }
}

#endif  // QK_HAVE_DOTPROD

}  // namespace

void fill_neon_tiles(KernelTable& t, bool dotprod) {
#if QK_HAVE_DOTPROD
  if (dotprod) {
    t.type[kQ4_0].tile_dot = tile_dot<NeonQ4_0>;
    t.type[kQ8_0].tile_dot = tile_dot<NeonQ8_0>;
  }
#else
  (void)t;
  (void)dotprod;
#endif
}

}  // namespace qk

#endif  // defined(__aarch64__)

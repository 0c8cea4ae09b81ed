// AVX2 kernels for the interleaved q4_0 and q8_0 layouts (interleave.h). Build rules as
// in kernels_avx2.cc. A 256-bit register holds the same 4 payload bytes of 8
// rows, so a tile is two halves; per block and activation row, 8 VPMADDUBSW
// summed in int16 and one VPMADDWD give the exact sums of 8 rows at once.
#if defined(__x86_64__) || defined(_M_X64)

#include <cstdint>
#include <cstring>

#include "interleave.h"
#include "kernels.h"
#include "types.h"

#include "target_avx2_begin.h"

namespace qk {
namespace {

constexpr int kQ80 = 34;
// Bytes ahead of the batch-1 stream that a software prefetch asks for: the
// hardware prefetcher alone left a single core at ~12 GB/s on a tile stream;
// 2 KiB ahead gave ~17 (1 KiB: 15, 4 KiB: 16; same runs, Zen 5 VM).
constexpr int kPrefetchAhead = 2048;

#include "simd_avx2.h"

// q4_0, rows 8h..8h+7 of the tile; 4 activation rows at most per pass so that the
// 8 unpacked weight registers and the accumulators fit the 16 registers.
template <int kNa>
void tile_half_q4_0(int64_t k, const uint8_t* tile, int h, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms,
                    float* out, size_t os, int nvalid) {
  const int64_t nb = k / QK32;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[kNa];
  for (int j = 0; j < kNa; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = tile_place(b, nb, 18);
    const uint8_t* tp = tile + at.payload;
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tile + at.scales + 16 * h)));
    __m256i lo[4], hi[4];
    for (int g = 0; g < 4; ++g) {
      const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tp + 64 * g + 32 * h));
      lo[g] = _mm256_and_si256(p, m4);
      hi[g] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
    }
    for (int j = 0; j < kNa; ++j) {
      const ActBlockMeta mt = meta[j * ms + b];
      const uint8_t* y = a + j * as + b * kQ80 + 2;
      // int16 lanes: eight maddubs pairs of at most 3810 each stay inside int16.
      __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[0], bcast_dword(y)), _mm256_maddubs_epi16(hi[0], bcast_dword(y + 16)));
      __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[1], bcast_dword(y + 4)), _mm256_maddubs_epi16(hi[1], bcast_dword(y + 20)));
      p0 = _mm256_add_epi16(p0, _mm256_add_epi16(_mm256_maddubs_epi16(lo[2], bcast_dword(y + 8)), _mm256_maddubs_epi16(hi[2], bcast_dword(y + 24))));
      p1 = _mm256_add_epi16(p1, _mm256_add_epi16(_mm256_maddubs_epi16(lo[3], bcast_dword(y + 12)), _mm256_maddubs_epi16(hi[3], bcast_dword(y + 28))));
      const __m256i s = _mm256_add_epi32(_mm256_set1_epi32(-8 * mt.sum), _mm256_madd_epi16(_mm256_add_epi16(p0, p1), ones));
      acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(mt.d)), acc[j]);
    }
  }
  store_half<kNa>(acc, h, out, os, nvalid);
}

// q4_0, one activation row, all 16 rows of the tile in one pass: the batch-1
// decode case. Each 64-byte payload group is loaded once, in address order
// (the tile streams from DRAM line after line), and each activation dword is
// broadcast once for both halves; two halves, two int16 sums and two float
// accumulators stay in registers.
void tile_q4_0_one(int64_t k, const uint8_t* tile, const uint8_t* a, const ActBlockMeta* meta, float* out, int nvalid) {
  const int64_t nb = k / QK32;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = tile_place(b, nb, 18);
    const uint8_t* tp = tile + at.payload;
    const uint8_t* y = a + b * kQ80 + 2;
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g) {
      _mm_prefetch(reinterpret_cast<const char*>(tp + 64 * g + kPrefetchAhead), _MM_HINT_T0);
      const __m256i p0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tp + 64 * g));
      const __m256i p1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tp + 64 * g + 32));
      const __m256i ylo = bcast_dword(y + 4 * g), yhi = bcast_dword(y + 16 + 4 * g);
      s0 = _mm256_add_epi16(s0, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(p0, m4), ylo),
                                                 _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p0, 4), m4), yhi)));
      s1 = _mm256_add_epi16(s1, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(p1, m4), ylo),
                                                 _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p1, 4), m4), yhi)));
    }
    const ActBlockMeta mt = meta[b];
    const __m256i off = _mm256_set1_epi32(-8 * mt.sum);
    const __m256 dy = _mm256_set1_ps(mt.d);
    const __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tile + at.scales)));
    const __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tile + at.scales + 16)));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(off, _mm256_madd_epi16(s0, ones))), _mm256_mul_ps(d0, dy), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(off, _mm256_madd_epi16(s1, ones))), _mm256_mul_ps(d1, dy), acc1);
  }
  store_half<1>(&acc0, 0, out, 0, nvalid);
  if (nvalid > 8) store_half<1>(&acc1, 1, out, 0, nvalid);
}

void tile_dot_q4_0(int64_t k, const uint8_t* tile, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms, int na, float* out,
                   size_t os, int nvalid);

// q8_0, rows 8h..8h+7: signed 8-bit products by VPSIGNB + VPMADDUBSW (|w| times
// y with w's sign; a pair is at most 2 * 128 * 127, inside int16), widened
// to int32 at once. The weights are re-read from L1 per activation row: 16
// registers do not hold them and the accumulators.
template <int kNa>
void tile_half_q8_0(int64_t k, const uint8_t* tile, int h, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms,
                    float* out, size_t os, int nvalid) {
  const int64_t nb = k / QK32;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[kNa];
  for (int j = 0; j < kNa; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = tile_place(b, nb, 34);
    const uint8_t* tp = tile + at.payload + 32 * h;
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tile + at.scales + 16 * h)));
    for (int j = 0; j < kNa; ++j) {
      const ActBlockMeta mt = meta[j * ms + b];
      const uint8_t* y = a + j * as + b * kQ80 + 2;
      __m256i s = _mm256_setzero_si256();
      for (int g = 0; g < 8; ++g) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tp + 64 * g));
        const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(bcast_dword(y + 4 * g), w));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
      }
      acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(mt.d)), acc[j]);
    }
  }
  store_half<kNa>(acc, h, out, os, nvalid);
}

template <void (*Half1)(int64_t, const uint8_t*, int, const uint8_t*, size_t, const ActBlockMeta*, size_t, float*, size_t, int),
          void (*Half2)(int64_t, const uint8_t*, int, const uint8_t*, size_t, const ActBlockMeta*, size_t, float*, size_t, int),
          void (*Half3)(int64_t, const uint8_t*, int, const uint8_t*, size_t, const ActBlockMeta*, size_t, float*, size_t, int),
          void (*Half4)(int64_t, const uint8_t*, int, const uint8_t*, size_t, const ActBlockMeta*, size_t, float*, size_t, int)>
void tile_dot(int64_t k, const uint8_t* tile, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms, int na, float* out,
              size_t os, int nvalid) {
  for (int j0 = 0; j0 < na; j0 += 4) {
    const int n = na - j0 < 4 ? na - j0 : 4;
    const uint8_t* aj = a + j0 * as;
    const ActBlockMeta* mj = meta + j0 * ms;
    float* oj = out + j0 * os;
    for (int h = 0; h < 2 && 8 * h < nvalid; ++h) {
      switch (n) {
        case 4: Half4(k, tile, h, aj, as, mj, ms, oj, os, nvalid); break;
        case 3: Half3(k, tile, h, aj, as, mj, ms, oj, os, nvalid); break;
        case 2: Half2(k, tile, h, aj, as, mj, ms, oj, os, nvalid); break;
        default: Half1(k, tile, h, aj, as, mj, ms, oj, os, nvalid); break;
      }
    }
  }
}

void tile_dot_q4_0(int64_t k, const uint8_t* tile, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms, int na, float* out,
                   size_t os, int nvalid) {
  if (na == 1) {
    tile_q4_0_one(k, tile, a, meta, out, nvalid);
    return;
  }
  tile_dot<tile_half_q4_0<1>, tile_half_q4_0<2>, tile_half_q4_0<3>, tile_half_q4_0<4>>(k, tile, a, as, meta, ms, na, out, os, nvalid);
}

}  // namespace
}  // namespace qk

#include "target_end.h"

// Outside the target region: this runs on any CPU (it only stores pointers).
namespace qk {

void fill_avx2_tiles(KernelTable& t) {
  t.type[kQ4_0].tile_dot = tile_dot_q4_0;
  t.type[kQ8_0].tile_dot = tile_dot<tile_half_q8_0<1>, tile_half_q8_0<2>, tile_half_q8_0<3>, tile_half_q8_0<4>>;
}

}  // namespace qk

#endif  // x86-64

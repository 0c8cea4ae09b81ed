// AVX-512 kernels for the interleaved q4_0 and q8_0 layouts (interleave.h),
// with and without VNNI (q8_0: with VNNI only). Build rules as in kernels_avx512.cc: global flags only, the
// ISA switched on by target_avx512_begin.h, headers included before it, the fill
// function outside the region.
//
// One 512-bit register holds the same 4 payload bytes of the 16 rows of a
// tile; a broadcast activation dword against it is one step of 16 dot
// products at once. Per block and activation row that is 8 VPDPBUSD (or 8
// VPMADDUBSW) into one register whose dword r is the exact integer sum of
// row r, then one convert and one FMA: no shuffles, no horizontal sums.
// The 16 rows are unpacked once per block for all activation rows.
#if defined(__x86_64__) || defined(_M_X64)

#include <cstdint>
#include <cstring>

#include "interleave.h"
#include "kernels.h"
#include "types.h"

#include "target_avx512_begin.h"

namespace qk {
namespace {

#include "simd_avx512.h"

constexpr int kQ80 = 34;


inline __m512i bcast_dword(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Per type: how a block's payload becomes 8 registers u[i] of unsigned
// levels, dword r of u[i] holding levels 4i..4i+3 of row r (so u[i] meets
// activation dword i), and the offset the unsigned levels carry.
struct TileQ4_0 {
  static constexpr int kPayload = 16, kOffset = 8;
  static void unpack(const uint8_t* tp, __m512i u[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int g = 0; g < 4; ++g) {
      const __m512i p = _mm512_loadu_si512(tp + 64 * g);
      u[g] = _mm512_and_si512(p, m4);                             // levels 4g..4g+3
      u[4 + g] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);  // levels 16+4g..16+4g+3
    }
  }
};

// q8_0 levels are signed; + 128 (a flip of the top bit) makes them the
// unsigned operand VPDPBUSD wants.
struct TileQ8_0 {
  static constexpr int kPayload = 32, kOffset = 128;
  static void unpack(const uint8_t* tp, __m512i u[8]) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int g = 0; g < 8; ++g) u[g] = _mm512_xor_si512(_mm512_loadu_si512(tp + 64 * g), flip);
  }
};

// Exact sum over one block of (u - offset) * y for the 16 rows, y the
// activation levels, ysum their sum.
template <typename T, bool kVnni>
inline __m512i block_sums(const __m512i u[8], const uint8_t* y, int32_t ysum) {
  const __m512i corr = _mm512_set1_epi32(-T::kOffset * ysum);
  if (kVnni) {
    __m512i s0 = dpbusd(corr, u[0], bcast_dword(y));
    __m512i s1 = dpbusd(_mm512_setzero_si512(), u[4], bcast_dword(y + 16));
    s0 = dpbusd(s0, u[1], bcast_dword(y + 4));
    s1 = dpbusd(s1, u[5], bcast_dword(y + 20));
    s0 = dpbusd(s0, u[2], bcast_dword(y + 8));
    s1 = dpbusd(s1, u[6], bcast_dword(y + 24));
    s0 = dpbusd(s0, u[3], bcast_dword(y + 12));
    s1 = dpbusd(s1, u[7], bcast_dword(y + 28));
    return _mm512_add_epi32(s0, s1);
  }
  // q4_0 only: each maddubs pair is at most 2 * 15 * 127 = 3810 in size,
  // eight of them at most 30480, inside int16.
  static_assert(kVnni || T::kOffset == 8, "the int16 sums hold only 4-bit levels");
  __m512i p0 = _mm512_add_epi16(_mm512_maddubs_epi16(u[0], bcast_dword(y)), _mm512_maddubs_epi16(u[4], bcast_dword(y + 16)));
  __m512i p1 = _mm512_add_epi16(_mm512_maddubs_epi16(u[1], bcast_dword(y + 4)), _mm512_maddubs_epi16(u[5], bcast_dword(y + 20)));
  p0 = _mm512_add_epi16(p0, _mm512_add_epi16(_mm512_maddubs_epi16(u[2], bcast_dword(y + 8)), _mm512_maddubs_epi16(u[6], bcast_dword(y + 24))));
  p1 = _mm512_add_epi16(p1, _mm512_add_epi16(_mm512_maddubs_epi16(u[3], bcast_dword(y + 12)), _mm512_maddubs_epi16(u[7], bcast_dword(y + 28))));
  return _mm512_add_epi32(corr, _mm512_madd_epi16(_mm512_add_epi16(p0, p1), _mm512_set1_epi16(1)));
}

// One block of the tile against kNa activation rows, into acc.
template <typename T, bool kVnni, int kNa>
inline void tile_block(const uint8_t* ts, const uint8_t* tp, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms,
                       int64_t b, __m512* acc) {
  const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ts)));
  __m512i u[8];
  T::unpack(tp, u);
  for (int j = 0; j < kNa; ++j) {
    const ActBlockMeta mt = meta[j * ms + b];
    const __m512i s = block_sums<T, kVnni>(u, a + j * as + b * kQ80 + 2, mt.sum);
    acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(mt.d)), acc[j]);
  }
}

template <typename T, bool kVnni, int kNa>
void tile_rows(int64_t k, const uint8_t* tile, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms, float* out,
               size_t os, int nvalid) {
  constexpr int kPair = 2 * kTileRows * (2 + T::kPayload);
  // With 4 or more activation rows a block takes long enough that the
  // hardware prefetcher falls behind: fetch 8 pairs of q4_0 (4.5 KiB) ahead
  // (prefill of 8 rows 1.7x faster). With fewer rows it only got in the way
  // (m = 1: 0.87x).
  constexpr int kPfDist = 4608, kPfMinNa = 4;
  const int64_t nb = k / QK32;
  __m512 acc[kNa];
  for (int j = 0; j < kNa; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = tile_place(b, nb, 2 + T::kPayload);
    if (kNa >= kPfMinNa && (b & 1) == 0) {  // once per pair of blocks
      const char* pf = reinterpret_cast<const char*>(tile + at.scales) + kPfDist;
      for (int l = 0; l < kPair; l += 64) _mm_prefetch(pf + l, _MM_HINT_T0);
    }
    tile_block<T, kVnni, kNa>(tile + at.scales, tile + at.payload, a, as, meta, ms, b, acc);
  }
  const __mmask16 mask = nvalid >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nvalid) - 1);
  for (int j = 0; j < kNa; ++j) _mm512_mask_storeu_ps(out + j * os, mask, acc[j]);
}

template <typename T, bool kVnni>
void tile_dot(int64_t k, const uint8_t* tile, const uint8_t* a, size_t as, const ActBlockMeta* meta, size_t ms, int na, float* out,
              size_t os, int nvalid) {
  switch (na) {
    case 8: return tile_rows<T, kVnni, 8>(k, tile, a, as, meta, ms, out, os, nvalid);
    case 7: return tile_rows<T, kVnni, 7>(k, tile, a, as, meta, ms, out, os, nvalid);
    case 6: return tile_rows<T, kVnni, 6>(k, tile, a, as, meta, ms, out, os, nvalid);
    case 5: return tile_rows<T, kVnni, 5>(k, tile, a, as, meta, ms, out, os, nvalid);
    case 4: return tile_rows<T, kVnni, 4>(k, tile, a, as, meta, ms, out, os, nvalid);
    case 3: return tile_rows<T, kVnni, 3>(k, tile, a, as, meta, ms, out, os, nvalid);
    case 2: return tile_rows<T, kVnni, 2>(k, tile, a, as, meta, ms, out, os, nvalid);
    case 1: return tile_rows<T, kVnni, 1>(k, tile, a, as, meta, ms, out, os, nvalid);
    default: return;
  }
}

// ---- the layout itself, for tiles made on the fly --------------------------
//
// Per block and 16-byte half of the payload: four registers take rows
// {q, q+4, q+8, q+12} in their 128-bit lanes, and a 4x4 dword transpose
// inside each lane leaves register g holding dword g of rows 0..15 in order,
// which is payload group g of the tile. The scales come the same way from
// the first dword of each block (the fp16 d and 2 payload bytes).
inline __m512i rows4(const uint8_t* p, size_t rb, int q) {
  __m512i z = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + q * rb)));
  z = _mm512_mask_broadcast_i32x4(z, 0x00F0, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (q + 4) * rb)));
  z = _mm512_mask_broadcast_i32x4(z, 0x0F00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (q + 8) * rb)));
  return _mm512_mask_broadcast_i32x4(z, 0xF000, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (q + 12) * rb)));
}

template <int kBB>
void interleave_full(const uint8_t* rows, size_t rb, int64_t nb, uint8_t* tile) {
  constexpr int kPayload = kBB - 2;
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = tile_place(b, nb, kBB);
    uint8_t* ts = tile + at.scales;
    uint8_t* tp = tile + at.payload;
    const uint8_t* src = rows + b * kBB;
    {
      const __m512i z0 = rows4(src, rb, 0), z1 = rows4(src, rb, 1), z2 = rows4(src, rb, 2), z3 = rows4(src, rb, 3);
      const __m512i first = _mm512_unpacklo_epi64(_mm512_unpacklo_epi32(z0, z1), _mm512_unpacklo_epi32(z2, z3));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ts), _mm512_cvtepi32_epi16(first));
    }
    for (int h = 0; h < kPayload / 16; ++h) {
      const uint8_t* p = src + 2 + 16 * h;
      const __m512i z0 = rows4(p, rb, 0), z1 = rows4(p, rb, 1), z2 = rows4(p, rb, 2), z3 = rows4(p, rb, 3);
      const __m512i t0 = _mm512_unpacklo_epi32(z0, z1), t1 = _mm512_unpackhi_epi32(z0, z1);
      const __m512i t2 = _mm512_unpacklo_epi32(z2, z3), t3 = _mm512_unpackhi_epi32(z2, z3);
      uint8_t* o = tp + 4 * 64 * h;
      _mm512_storeu_si512(o, _mm512_unpacklo_epi64(t0, t2));
      _mm512_storeu_si512(o + 64, _mm512_unpackhi_epi64(t0, t2));
      _mm512_storeu_si512(o + 128, _mm512_unpacklo_epi64(t1, t3));
      _mm512_storeu_si512(o + 192, _mm512_unpackhi_epi64(t1, t3));
    }
  }
}

}  // namespace
}  // namespace qk

#include "target_end.h"

// Outside the target region: this runs on any CPU (it only stores pointers).
namespace qk {

void fill_avx512_tiles(KernelTable& t, bool vnni) {
  t.type[kQ4_0].tile_dot = vnni ? tile_dot<TileQ4_0, true> : tile_dot<TileQ4_0, false>;
  // Without VNNI, q8_0 keeps the AVX2 kernel: 8-bit products need VPSIGNB,
  // which has no 512-bit form.
  if (vnni) t.type[kQ8_0].tile_dot = tile_dot<TileQ8_0, true>;
  t.type[kQ4_0].interleave_full_tile = interleave_full<18>;
  t.type[kQ8_0].interleave_full_tile = interleave_full<34>;
}

}  // namespace qk

#endif  // x86-64

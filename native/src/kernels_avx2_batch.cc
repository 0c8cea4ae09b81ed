// AVX2 kernels for batch tiles (batch_tile.h): prefill-sized matmuls of
// K-quants (q4_K, q5_K, q6_K). Per super-block, sub-block and activation row, 8 VPMADDUBSW of
// broadcast activation dwords against 8 rows' nibbles, summed in int16, and
// one VPMADDWD with the rows' scales give 8 rows' exact sums at once, where
// the row-by-row dot (kernels_avx2_k.cc) spends about as much work on one.
#if defined(__x86_64__) || defined(_M_X64)

#include <cstdint>
#include <cstring>

#include "batch_tile.h"
#include "kernels.h"
#include "types.h"

#include "target_avx2_begin.h"

namespace qk {
namespace {

constexpr int kQ8KBytes = sizeof(BlockQ8_K);  // f32 d, 256 int8, 16 int16 sums of 16

#include "simd_avx2.h"

// The end of a q4_K/q5_K super-block: B = sum_j m_j * (sum of y over
// sub-block j) from the mins and the activation's 16-element sums, then
// acc += d*dy*A - dmin*dy*B for each activation row.
template <int kNa>
inline void kquant_finish(const uint8_t* t, int h, const uint8_t* ab, size_t as, const __m256i* isum, __m256* acc) {
  const __m256 dw = _mm256_cvtph_ps(load128(t + 16 * h));
  const __m256 dmw = _mm256_cvtph_ps(load128(t + 32 + 16 * h));
  const __m256i mn0 = _mm256_cvtepu8_epi16(load128(t + 320 + 16 * h));
  const __m256i mn1 = _mm256_cvtepu8_epi16(load128(t + 352 + 16 * h));
  const __m256i mn2 = _mm256_cvtepu8_epi16(load128(t + 384 + 16 * h));
  const __m256i mn3 = _mm256_cvtepu8_epi16(load128(t + 416 + 16 * h));
  for (int j = 0; j < kNa; ++j) {
    const uint8_t* aj = ab + j * as;
    // Sums of y over sub-blocks 0..7 (each two of the 16-element sums; at most 32 * 128, int16).
    const __m128i s = _mm_hadd_epi16(load128(aj + 260), load128(aj + 276));
    const __m256i s8 = _mm256_broadcastsi128_si256(s);
    __m256i bm = _mm256_madd_epi16(mn0, _mm256_shuffle_epi32(s8, 0x00));
    bm = _mm256_add_epi32(bm, _mm256_madd_epi16(mn1, _mm256_shuffle_epi32(s8, 0x55)));
    bm = _mm256_add_epi32(bm, _mm256_madd_epi16(mn2, _mm256_shuffle_epi32(s8, 0xAA)));
    bm = _mm256_add_epi32(bm, _mm256_madd_epi16(mn3, _mm256_shuffle_epi32(s8, 0xFF)));
    const __m256 dy = _mm256_set1_ps(ld_f32(aj));
    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(dw, dy), acc[j]);
    acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(bm), _mm256_mul_ps(dmw, dy), acc[j]);
  }
}

// q4_K, rows 8h..8h+7 of a batch tile, kNa activation rows. Sums per
// super-block and row: A = sum_j sc_j * (levels . y over sub-block j) and
// B = sum_j m_j * (sum of y over sub-block j), both exact in int32 (|A| <
// 256 * 15 * 128 * 63); the result adds d*dy*A - dmin*dy*B, as the row dot.
// Half a chunk (4 dwords of each row, 16 elements of two sub-blocks) is
// unpacked at a time: 8 registers, with kNa int32 sums beside them.
template <int kNa>
void half_q4_K(int64_t k, const uint8_t* tile, int h, const uint8_t* a, size_t as, float* out, size_t os, int nvalid) {
  const int64_t nb = k / QK_K;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[kNa];
  for (int j = 0; j < kNa; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* t = tile + b * kQ4KBatchBlockBytes;
    const uint8_t* ab = a + b * kQ8KBytes;
    __m256i isum[kNa];
    for (int j = 0; j < kNa; ++j) isum[j] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i sc0 = _mm256_cvtepu8_epi16(load128(t + 64 + 64 * c + 16 * h));
      const __m256i sc1 = _mm256_cvtepu8_epi16(load128(t + 96 + 64 * c + 16 * h));
      for (int gh = 0; gh < 2; ++gh) {
        const uint8_t* q = t + 448 + 512 * c + 256 * gh + 32 * h;
        __m256i lo[4], hi[4];
        for (int g = 0; g < 4; ++g) {
          const __m256i p = load256(q + 64 * g);
          lo[g] = _mm256_and_si256(p, m4);
          hi[g] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
        }
        for (int j = 0; j < kNa; ++j) {
          const uint8_t* y = ab + j * as + 4 + 64 * c + 16 * gh;
          // int16: four pairs of at most 2 * 15 * 128 each.
          const __m256i plo = _mm256_add_epi16(
              _mm256_add_epi16(_mm256_maddubs_epi16(lo[0], bcast_dword(y)), _mm256_maddubs_epi16(lo[1], bcast_dword(y + 4))),
              _mm256_add_epi16(_mm256_maddubs_epi16(lo[2], bcast_dword(y + 8)), _mm256_maddubs_epi16(lo[3], bcast_dword(y + 12))));
          const __m256i phi = _mm256_add_epi16(
              _mm256_add_epi16(_mm256_maddubs_epi16(hi[0], bcast_dword(y + 32)), _mm256_maddubs_epi16(hi[1], bcast_dword(y + 36))),
              _mm256_add_epi16(_mm256_maddubs_epi16(hi[2], bcast_dword(y + 40)), _mm256_maddubs_epi16(hi[3], bcast_dword(y + 44))));
          isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(_mm256_madd_epi16(plo, sc0), _mm256_madd_epi16(phi, sc1)));
        }
      }
    }
    kquant_finish<kNa>(t, h, ab, as, isum, acc);
  }
  store_half<kNa>(acc, h, out, os, nvalid);
}

// q5_K, rows 8h..8h+7: as q4_K with the levels (0..31) one byte each; four
// VPMADDUBSW pairs of at most 2 * 31 * 128 fit int16, so a sub-block takes
// two VPMADDWD.
template <int kNa>
void half_q5_K(int64_t k, const uint8_t* tile, int h, const uint8_t* a, size_t as, float* out, size_t os, int nvalid) {
  const int64_t nb = k / QK_K;
  __m256 acc[kNa];
  for (int j = 0; j < kNa; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* t = tile + b * kQ5KBatchBlockBytes;
    const uint8_t* ab = a + b * kQ8KBytes;
    __m256i isum[kNa];
    for (int j = 0; j < kNa; ++j) isum[j] = _mm256_setzero_si256();
    for (int sb = 0; sb < 8; ++sb) {
      const __m256i sc = _mm256_cvtepu8_epi16(load128(t + 64 + 32 * sb + 16 * h));
      for (int gh = 0; gh < 2; ++gh) {
        const uint8_t* q = t + 448 + 512 * sb + 256 * gh + 32 * h;
        const __m256i w0 = load256(q), w1 = load256(q + 64), w2 = load256(q + 128), w3 = load256(q + 192);
        for (int j = 0; j < kNa; ++j) {
          const uint8_t* y = ab + j * as + 4 + 32 * sb + 16 * gh;
          const __m256i p = _mm256_add_epi16(
              _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast_dword(y)), _mm256_maddubs_epi16(w1, bcast_dword(y + 4))),
              _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast_dword(y + 8)), _mm256_maddubs_epi16(w3, bcast_dword(y + 12))));
          isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(p, sc));
        }
      }
    }
    kquant_finish<kNa>(t, h, ab, as, isum, acc);
  }
  store_half<kNa>(acc, h, out, os, nvalid);
}

// q6_K, rows 8h..8h+7, kNa activation rows. With levels u = l + 32 (0..63):
// A = sum_g sc_g * (u . y over group g) and B = sum_g sc_g * (sum of y over
// g), exact in int32 (|A| < 256 * 63 * 128 * 128); the row's sum is
// d*dy*(A - 32*B), the integer the row dot forms from l directly. Two
// VPMADDUBSW pairs of at most 2 * 63 * 128 fit int16, four do not: each
// group takes two VPMADDWD.
template <int kNa>
void half_q6_K(int64_t k, const uint8_t* tile, int h, const uint8_t* a, size_t as, float* out, size_t os, int nvalid) {
  const int64_t nb = k / QK_K;
  __m256 acc[kNa];
  for (int j = 0; j < kNa; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* t = tile + b * kQ6KBatchBlockBytes;
    const uint8_t* ab = a + b * kQ8KBytes;
    __m256i isum[kNa];
    for (int j = 0; j < kNa; ++j) isum[j] = _mm256_setzero_si256();
    for (int g = 0; g < 16; ++g) {
      const __m256i sc = _mm256_cvtepi8_epi16(load128(t + 64 + 32 * g + 16 * h));
      const uint8_t* q = t + 832 + 256 * g + 32 * h;
      const __m256i w0 = load256(q), w1 = load256(q + 64), w2 = load256(q + 128), w3 = load256(q + 192);
      for (int j = 0; j < kNa; ++j) {
        const uint8_t* y = ab + j * as + 4 + 16 * g;
        const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast_dword(y)), _mm256_maddubs_epi16(w1, bcast_dword(y + 4)));
        const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast_dword(y + 8)), _mm256_maddubs_epi16(w3, bcast_dword(y + 12)));
        isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(_mm256_madd_epi16(p0, sc), _mm256_madd_epi16(p1, sc)));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(load128(t + 16 * h));
    for (int j = 0; j < kNa; ++j) {
      const uint8_t* aj = ab + j * as;
      const __m256i s0 = _mm256_broadcastsi128_si256(load128(aj + 260));  // group sums 0..7, int16
      const __m256i s1 = _mm256_broadcastsi128_si256(load128(aj + 276));  // 8..15
      const uint8_t* sp = t + 576 + 16 * h;
      __m256i bm = _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(sp)), _mm256_shuffle_epi32(s0, 0x00));
      bm = _mm256_add_epi32(bm, _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(sp + 32)), _mm256_shuffle_epi32(s0, 0x55)));
      bm = _mm256_add_epi32(bm, _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(sp + 64)), _mm256_shuffle_epi32(s0, 0xAA)));
      bm = _mm256_add_epi32(bm, _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(sp + 96)), _mm256_shuffle_epi32(s0, 0xFF)));
      bm = _mm256_add_epi32(bm, _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(sp + 128)), _mm256_shuffle_epi32(s1, 0x00)));
      bm = _mm256_add_epi32(bm, _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(sp + 160)), _mm256_shuffle_epi32(s1, 0x55)));
      bm = _mm256_add_epi32(bm, _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(sp + 192)), _mm256_shuffle_epi32(s1, 0xAA)));
      bm = _mm256_add_epi32(bm, _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(sp + 224)), _mm256_shuffle_epi32(s1, 0xFF)));
      const __m256i total = _mm256_sub_epi32(isum[j], _mm256_slli_epi32(bm, 5));
      acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_mul_ps(dw, _mm256_set1_ps(ld_f32(aj))), acc[j]);
    }
  }
  store_half<kNa>(acc, h, out, os, nvalid);
}

using HalfFn = void (*)(int64_t, const uint8_t*, int, const uint8_t*, size_t, float*, size_t, int);

template <HalfFn Half1, HalfFn Half2, HalfFn Half3, HalfFn Half4>
void batch_dot(int64_t k, const uint8_t* tile, const uint8_t* a, size_t as, int na, float* out, size_t os, int nvalid) {
  for (int j0 = 0; j0 < na; j0 += 4) {
    const int n = na - j0 < 4 ? na - j0 : 4;
    const uint8_t* aj = a + j0 * as;
    float* oj = out + j0 * os;
    for (int h = 0; h < 2 && 8 * h < nvalid; ++h) {
      switch (n) {
        case 4: Half4(k, tile, h, aj, as, oj, os, nvalid); break;
        case 3: Half3(k, tile, h, aj, as, oj, os, nvalid); break;
        case 2: Half2(k, tile, h, aj, as, oj, os, nvalid); break;
        default: Half1(k, tile, h, aj, as, oj, os, nvalid); break;
      }
    }
  }
}

}  // namespace
}  // namespace qk

#include "target_end.h"

// Outside the target region: this runs on any CPU (it only stores pointers).
namespace qk {

void fill_avx2_batch_tiles(KernelTable& t) {
  TypeKernels& q4k = t.type[kQ4_K];
  q4k.pack_batch_tile = pack_batch_tile_q4_K;
  q4k.batch_tile_dot = batch_dot<half_q4_K<1>, half_q4_K<2>, half_q4_K<3>, half_q4_K<4>>;
  q4k.batch_block_bytes = kQ4KBatchBlockBytes;
  TypeKernels& q5k = t.type[kQ5_K];
  q5k.pack_batch_tile = pack_batch_tile_q5_K;
  q5k.batch_tile_dot = batch_dot<half_q5_K<1>, half_q5_K<2>, half_q5_K<3>, half_q5_K<4>>;
  q5k.batch_block_bytes = kQ5KBatchBlockBytes;
  TypeKernels& q6k = t.type[kQ6_K];
  q6k.pack_batch_tile = pack_batch_tile_q6_K;
  q6k.batch_tile_dot = batch_dot<half_q6_K<1>, half_q6_K<2>, half_q6_K<3>, half_q6_K<4>>;
  q6k.batch_block_bytes = kQ6KBatchBlockBytes;
}

}  // namespace qk

#endif  // x86-64

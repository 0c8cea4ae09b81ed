// The batch-1 'q8' kernel of the 4- and 5-bit block formats q4_0, q4_1,
// q5_0 and q5_1 on AVX2, shared by kernels_avx2.cc (q4_0, q4_1) and
// kernels_avx2_k.cc (q5_0, q5_1). Include it inside
// `namespace qk { namespace {`, after simd_avx2.h and rows_x86.h.
//
// kRows weight rows against one activation row per pass over k, the formats
// told apart by their block size kW (18, 20, 22, 24 bytes). Blocks go in
// pairs: 128-bit lane l of a pair vector holds block l, 'lo' its elements
// 0..15 (low nibbles) and 'hi' 16..31, loaded by a broadcast and a blend
// rather than a lane insert (shuffle port). q5's fifth bits: the qh bytes,
// broadcast to the lanes the same way, spread one byte per element by a
// shuffle, compared against the element's bit, and 16 or'ed in. Levels u are
// unsigned (0..31), so one maddubs per half:
//   q4_1, q5_1: S = sum u*y (and m * s in floats);
//   q4_0, q5_0: S = sum u*y - o * sum y (o = 8, 16),
// in int16 until the madd: |u*y pairs| <= 2 * 2 * 31 * 128 and
// |o * sum y| <= 2 * 2 * 16 * 128, their difference below 2^15. The
// activation pair, its -o * sum y and its scales are made once for all rows;
// with 4 rows each weight stream is prefetched ahead (rows_x86.h). Four
// pairs fold by hadd into the 8 block sums of a group, ordered
// b0 b2 b4 b6 | b1 b3 b5 b7, as the scales (scales8_evens_odds, pairs4).
//
// Against the one-row-at-a-time kernels it replaced, alternated from memory
// (this table forced on an AVX-512 machine): q4_0 1.15-1.34x and q4_1
// 1.23-1.27x on 2 threads, 1.31x and 1.14x on 1; q5_0 1.11-1.14x and q5_1
// 1.09-1.17x; 2-3 activation rows 1.3-1.4x.
#pragma once

constexpr int kQ40 = sizeof(BlockQ4_0), kQ41 = sizeof(BlockQ4_1), kQ50 = sizeof(BlockQ5_0), kQ51 = sizeof(BlockQ5_1),
              kQ80 = sizeof(BlockQ8_0), kQ81 = sizeof(BlockQ8_1);

inline __m256i pair_bcast(const uint8_t* p0, const uint8_t* p1) {
  return _mm256_blend_epi32(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p0))),
                            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p1))), 0xF0);
}

// Levels of the blocks at w0 and w1 in lanes 0 and 1 (lo: elements 0..15 of
// each, hi: 16..31).
template <int kW>
inline void pair_levels(const uint8_t* w0, const uint8_t* w1, __m256i& lo, __m256i& hi) {
  using F = BlockFmt<kW>;
  const __m256i z = pair_bcast(w0 + F::kQs, w1 + F::kQs), m4 = _mm256_set1_epi8(0x0F);
  lo = _mm256_and_si256(z, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
  if (!F::kFifthBit) return;
  const __m256i h = pair_bcast(w0 + F::kQh, w1 + F::kQh);
  const __m256i sel_lo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m256i sel_hi = _mm256_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull)), b4 = _mm256_set1_epi8(0x10);
  const __m256i mlo = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(h, sel_lo), bit), bit);
  const __m256i mhi = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(h, sel_hi), bit), bit);
  lo = _mm256_or_si256(lo, _mm256_and_si256(mlo, b4));
  hi = _mm256_or_si256(hi, _mm256_and_si256(mhi, b4));
}

// o * sum y of an activation pair in int16 pair sums (0 for the formats with a min).
template <int kW>
inline __m256i pair_corr(__m256i ylo, __m256i yhi) {
  if (!BlockFmt<kW>::kOffset) return _mm256_setzero_si256();
  const __m256i eo = _mm256_set1_epi8(BlockFmt<kW>::kOffset);
  return _mm256_add_epi16(_mm256_maddubs_epi16(eo, ylo), _mm256_maddubs_epi16(eo, yhi));
}

// int32 lanes, 128-bit lane l summing to the exact S of block l of the pair.
inline __m256i pair_dot(__m256i lo, __m256i hi, __m256i ylo, __m256i yhi, __m256i corr) {
  const __m256i qy = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ylo), _mm256_maddubs_epi16(hi, yhi));
  return _mm256_madd_epi16(_mm256_sub_epi16(qy, corr), _mm256_set1_epi16(1));
}

// Exact S of one block (the tails): the pair kernel with the block in both
// lanes, lane 0 taken.
template <int kW>
inline int block_dot_pair(const uint8_t* w, const uint8_t* a) {
  __m256i lo, hi;
  pair_levels<kW>(w, w, lo, hi);
  const uint8_t* y = a + BlockFmt<kW>::kYs;
  const __m256i ylo = pair_bcast(y, y), yhi = pair_bcast(y + 16, y + 16);
  const __m256i s = pair_dot(lo, hi, ylo, yhi, pair_corr<kW>(ylo, yhi));
  return hsum_i32(_mm256_blend_epi32(s, _mm256_setzero_si256(), 0xF0));
}

template <int kW, int kRows>
void rows1_pairs(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, float* out) {
  using F = BlockFmt<kW>;
  constexpr int kA = F::kA;
  constexpr bool kMin = F::kOffset == 0;
  const int64_t nb = k / QK32, n8 = nb / 8, ng = nb / 16;
  __m256 acc[kRows], accm[kRows];
  QK_UNROLL
  for (int r = 0; r < kRows; ++r) acc[r] = accm[r] = _mm256_setzero_ps();
  PrefetchLead lead = prefetch_lead(nb);
  for (int64_t g = 0; g < n8; ++g) {
    const int64_t b0 = g * 8;
    if (kRows == 4 && (g & 1) == 0 && g / 2 < ng) prefetch_row_set<kW>(w, ws, g / 2, ng, lead);
    __m256i t[kRows][2];
    QK_UNROLL
    for (int h = 0; h < 2; ++h) {
      __m256i v[kRows][2];
      QK_UNROLL
      for (int p = 0; p < 2; ++p) {
        const uint8_t* ap = a + (b0 + 4 * h + 2 * p) * kA + F::kYs;
        const __m256i ylo = pair_bcast(ap, ap + kA), yhi = pair_bcast(ap + 16, ap + kA + 16);
        const __m256i c = pair_corr<kW>(ylo, yhi);
        QK_UNROLL
        for (int r = 0; r < kRows; ++r) {
          const uint8_t* wp = w + r * ws + (b0 + 4 * h + 2 * p) * kW;
          __m256i lo, hi;
          pair_levels<kW>(wp, wp + kW, lo, hi);
          v[r][p] = pair_dot(lo, hi, ylo, yhi, c);
        }
      }
      QK_UNROLL
      for (int r = 0; r < kRows; ++r) t[r][h] = _mm256_hadd_epi32(v[r][0], v[r][1]);
    }
    // Block sums in the order b0 b2 b4 b6 | b1 b3 b5 b7 (= reduce_pairs of the 4 pairs).
    if (!kMin) {
      const __m256 da = scales8_evens_odds<kA>(a + b0 * kA);
      QK_UNROLL
      for (int r = 0; r < kRows; ++r) {
        const __m256 d = _mm256_mul_ps(scales8_evens_odds<kW>(w + r * ws + b0 * kW), da);
        acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_hadd_epi32(t[r][0], t[r][1])), acc[r]);
      }
    } else {
      // (d, m) x (d, s): [dd0 ms0 dd2 ms2 | dd1 ms1 dd3 ms3] for blocks 0..3, then 4..7.
      const __m256 a0 = pairs4<kA>(a + b0 * kA), a1 = pairs4<kA>(a + (b0 + 4) * kA);
      QK_UNROLL
      for (int r = 0; r < kRows; ++r) {
        const uint8_t* wr = w + r * ws + b0 * kW;
        const __m256 p0 = _mm256_mul_ps(pairs4<kW>(wr), a0), p1 = _mm256_mul_ps(pairs4<kW>(wr + 4 * kW), a1);
        const __m256 dd = _mm256_shuffle_ps(p0, p1, _MM_SHUFFLE(2, 0, 2, 0));
        acc[r] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(_mm256_hadd_epi32(t[r][0], t[r][1])), acc[r]);
        accm[r] = _mm256_add_ps(accm[r], _mm256_shuffle_ps(p0, p1, _MM_SHUFFLE(3, 1, 3, 1)));
      }
    }
  }
  QK_UNROLL
  for (int r = 0; r < kRows; ++r) {
    const float tail = tail_blocks<kW, kA, kMin>(w + r * ws, a, n8 * 8, nb, block_dot_pair<kW>);
    out[r] = hsum(kMin ? _mm256_add_ps(acc[r], accm[r]) : acc[r]) + tail;
  }
}

template <int kW>
float dot_pairs(int64_t k, const uint8_t* w, const uint8_t* a) {
  float r;
  rows1_pairs<kW, 1>(k, w, 0, a, &r);
  return r;
}

// nw weight rows x na activation rows, one activation row at a time.
template <int kW>
void dot_rows_pairs(int64_t k, const uint8_t* w, size_t ws, int nw, const uint8_t* a, size_t as, int na, float* out, size_t os) {
  for (int j = 0; j < na; ++j) {
    const uint8_t* aj = a + j * as;
    float* oj = out + j * os;
    for_row_sets(nw, [&](auto rows, int i) { rows1_pairs<kW, decltype(rows)::value>(k, w + i * ws, ws, aj, oj + i); });
  }
}

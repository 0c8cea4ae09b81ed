// The 'q8' kernel of the 4- and 5-bit block formats q4_0, q4_1, q5_0 and
// q5_1 on AVX-512 (F, BW, VL, DQ; dpbusd when kVnni), shared by
// kernels_avx512.cc (q4_0 at batch 1) and kernels_avx512_k.cc (the others).
// Include it inside `namespace qk { namespace {`, after simd_avx512.h.
//
// The formats are told apart by their block size kW (18, 20, 22, 24 bytes).
// Quartets of blocks: 128-bit lane l holds block l of four, one vector its
// elements 0..15 (low nibbles), another 16..31 (high nibbles), each against
// the matching 16 activation bytes, so a dot product leaves 4 partial sums of
// block l in lane l with no folding. q5's fifth bits: the 4 qh bytes,
// broadcast to the lanes like the nibbles, are spread one byte per element by
// a shuffle and tested against the element's bit; 16 is added where it is
// set. Levels u are unsigned (0..15, 0..31):
//   q4_1, q5_1: S = sum u*y (and m * s in floats);
//   q4_0, q5_0: S = sum u*y - o * sum y (o = 8, 16),
// the -o * sum y of an activation quartet computed once for all the weight
// rows of a pass. Four quartets fold (reduce4) into the 16 block sums of a
// group, the fp16 scales gathered in the same order (Perm16); one cvt + one
// FMA per 16 blocks and row. Batch 1 runs 4 weight rows a pass
// (vec_dot_rows) with per-stream prefetch (prefetch_row_set).
//
// Measured against the kernels it replaced, alternated in one process,
// weights from memory, batch 1 on 2 threads: q5_0 1.19-1.38x, q5_1
// 1.57-2.06x (both to 37-42 GB/s; their former kernel held two blocks per
// vector, took the fifth bits as a mask moved from general registers and ran
// one row at a time); q4_1 1.11-1.38x (to 44-50 GB/s); q4_0 1.04-1.10x
// against rows_q4_0, which keeps batches of 2-4 rows (kernels_avx512.cc).
#pragma once

constexpr int kQ40 = sizeof(BlockQ4_0), kQ41 = sizeof(BlockQ4_1), kQ50 = sizeof(BlockQ5_0), kQ51 = sizeof(BlockQ5_1), kQ80 = sizeof(BlockQ8_0),
              kQ81 = sizeof(BlockQ8_1);

inline uint32_t ld_u32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }

struct LevelQuart { __m512i lo, hi; };
struct Q8Quart { __m512i lo, hi, corr; };

template <int kW>
inline LevelQuart level_quart(const uint8_t* w) {
  using F = BlockFmt<kW>;
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
  constexpr int kA = BlockFmt<kW>::kA, kYs = kA - 32;
  Q8Quart r{bcast4<kA>(a + kYs), bcast4<kA>(a + kYs + 16), _mm512_setzero_si512()};
  if (BlockFmt<kW>::kOffset) {
    const __m512i e16 = _mm512_set1_epi8(BlockFmt<kW>::kOffset);
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

// Levels (0..31) of one block in element order, for the tails.
template <int kQh, int kQs>
inline __m256i q5_levels32(const uint8_t* w) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + kQs));
  const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
  return _mm256_mask_add_epi8(nib, static_cast<__mmask32>(ld_u32(w + kQh)), nib, _mm256_set1_epi8(0x10));
}
// Exact S of one block, for the tails.
template <int kW>
inline int block_dot(const uint8_t* w, const uint8_t* a) {
  using F = BlockFmt<kW>;
  __m256i u;
  if (F::kFifthBit) {
    u = q5_levels32<F::kQh, F::kQs>(w);
  } else {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + F::kQs));
    u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
  }
  const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + F::kA - 32));
  __m256i p = _mm256_maddubs_epi16(u, y);
  if (F::kOffset) p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(_mm256_set1_epi8(F::kOffset), y));
  return hsum8_i32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

// kRows weight rows (ws bytes apart) against one activation row: out[r].
// Four rows stream side by side with software prefetch (prefetch_row_set).
template <int kW, bool kVnni, int kRows>
void rows_qx(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, float* out) {
  constexpr int kA = BlockFmt<kW>::kA;
  constexpr bool kMin = !BlockFmt<kW>::kOffset;
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
    const float tail = tail_blocks<kW, kA, kMin>(w + r * ws, a, ng * 16, nb, block_dot<kW>);
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
    for_row_sets(nw, [&](auto rows, int i) { rows_qx<kW, kVnni, decltype(rows)::value>(k, w + i * ws, ws, aj, oj + i); });
  }
}

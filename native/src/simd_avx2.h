// SIMD helpers shared by the AVX2 kernel files. Include it only
// inside `namespace qk { namespace {`, after the file's target pragma (or
// clang attribute), so that every function here is compiled for that ISA.
#pragma once

inline uint16_t ld_u16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }

inline float h2f(const uint8_t* p) { return _cvtsh_ss(ld_u16(p)); }
inline float ld_f32(const uint8_t* p) { float v; std::memcpy(&v, p, 4); return v; }

inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// The 4 bytes at p in every 32-bit lane: one activation dword for 8 rows
// of an interleaved or batch tile.
inline __m256i bcast_dword(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The tile kernels' results for rows 8h..8h+7 of kNa activation rows: the
// first nvalid - 8h of them (a tile's last rows may be padding).
template <int kNa>
inline void store_half(const __m256* acc, int h, float* out, size_t os, int nvalid) {
  const int n = nvalid - 8 * h;
  for (int j = 0; j < kNa; ++j) {
    float* o = out + j * os + 8 * h;
    if (n >= 8) {
      _mm256_storeu_ps(o, acc[j]);
    } else {
      alignas(32) float r[8];
      _mm256_store_ps(r, acc[j]);
      for (int i = 0; i < n; ++i) o[i] = r[i];
    }
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline __m256i reduce_pairs(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  return _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
}

// fp16 fields of 8 blocks (stride bytes apart) in the order b0 b2 b4 b6 b1 b3 b5 b7.
template <int kStride>
inline __m256 scales8_evens_odds(const uint8_t* p) {
  __m128i h = _mm_cvtsi32_si128(ld_u16(p));
  h = _mm_insert_epi16(h, ld_u16(p + 2 * kStride), 1);
  h = _mm_insert_epi16(h, ld_u16(p + 4 * kStride), 2);
  h = _mm_insert_epi16(h, ld_u16(p + 6 * kStride), 3);
  h = _mm_insert_epi16(h, ld_u16(p + 1 * kStride), 4);
  h = _mm_insert_epi16(h, ld_u16(p + 3 * kStride), 5);
  h = _mm_insert_epi16(h, ld_u16(p + 5 * kStride), 6);
  h = _mm_insert_epi16(h, ld_u16(p + 7 * kStride), 7);
  return _mm256_cvtph_ps(h);
}

inline int ld_i32(const uint8_t* p) { int v; std::memcpy(&v, p, 4); return v; }

// (field0, field1) fp16 pairs of blocks b0 b2 b1 b3 (p = block b0) as 8 floats.
template <int kStride>
inline __m256 pairs4(const uint8_t* p) {
  __m128i h = _mm_cvtsi32_si128(ld_i32(p));
  h = _mm_insert_epi32(h, ld_i32(p + 2 * kStride), 1);
  h = _mm_insert_epi32(h, ld_i32(p + 1 * kStride), 2);
  h = _mm_insert_epi32(h, ld_i32(p + 3 * kStride), 3);
  return _mm256_cvtph_ps(h);
}

// Portable scalar kernels for the K-quants q4_K, q5_K, q6_K (256-element
// super-blocks) and their activation format q8_K. Quantizers follow
// llama.cpp's quantize_row_q{4,5,6}_K_ref / _impl and quantize_row_q8_K_ref
// operation for operation (quant-formats.md section 4; build with
// -ffp-contract=off). Where ggml stores an int into a uint8_t/int8_t field the
// low byte is kept, as C does; every float-to-int conversion goes through
// nearest_int, which is defined for every float.
#include <cmath>
#include <cstring>

#include "fp16.h"
#include "kernels.h"
#include "kquant_search.h"

namespace qk {
namespace {

inline float load_f32(const uint8_t* p) { float f; std::memcpy(&f, p, 4); return f; }
inline void store_f32(uint8_t* p, float f) { std::memcpy(p, &f, 4); }
inline uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline void store_u16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v); p[1] = static_cast<uint8_t>(v >> 8); }
inline int load_i16(const uint8_t* p) { return static_cast<int>(static_cast<int16_t>(load_u16(p))); }
inline int as_i8(uint8_t b) { return static_cast<int>(b) - ((b & 0x80) ? 256 : 0); }
inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Block layouts (byte offsets).
constexpr int kQ4K_Bytes = sizeof(BlockQ4_K);  // d 0, dmin 2, scales 4, qs 16
constexpr int kQ5K_Bytes = sizeof(BlockQ5_K);  // d 0, dmin 2, scales 4, qh 16, qs 48
constexpr int kQ6K_Bytes = sizeof(BlockQ6_K);  // ql 0, qh 128, scales 192, d 208
constexpr int kQ8K_Bytes = sizeof(BlockQ8_K);  // d 0 (f32), qs 4, bsums 260
constexpr float kGroupMaxEps = 1e-15f;

// ---- 6-bit scale/min packing (quant-formats.md 4.2) -----------------------

// ggml's packing loop, on uint8_t fields: j < 4 writes the whole byte (so a
// level above 63, possible only for the unclamped importance q4_K levels, keeps
// its high bits there, as in ggml), j >= 4 ORs bits 4-5 into bits 6-7.
void pack_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* S) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      S[j] = ls[j];
      S[j + 4] = lm[j];
    } else {
      S[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      S[j - 4] = static_cast<uint8_t>(S[j - 4] | ((ls[j] >> 4) << 6));
      S[j] = static_cast<uint8_t>(S[j] | ((lm[j] >> 4) << 6));
    }
  }
}

inline void scale_min(int j, const uint8_t* S, int* sc, int* m) {
  if (j < 4) {
    *sc = S[j] & 63;
    *m = S[j + 4] & 63;
  } else {
    *sc = (S[j + 4] & 0xF) | ((S[j - 4] >> 6) << 4);
    *m = (S[j + 4] >> 4) | ((S[j] >> 6) << 4);
  }
}

// ---- q4_K / q5_K common -------------------------------------------------

// The final level pass of every q4_K/q5_K quantizer: levels from the stored
// (fp16-rounded) d, dmin and 6-bit scales; a sub-block whose D is 0 keeps the
// levels of the search.
void final_levels(const float* x, const uint8_t* blk, int nmax, uint8_t* L) {
  const float d = fp16_to_f32(load_u16(blk));
  const float dmin = fp16_to_f32(load_u16(blk + 2));
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min(j, blk + 4, &sc, &m);
    const float D = d * static_cast<float>(sc);
    if (D == 0.f) continue;
    const float M = dmin * static_cast<float>(m);
    for (int i = 0; i < 32; ++i) L[32 * j + i] = static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + i] + M) / D), 0, nmax));
  }
}

void pack_q4k_levels(const uint8_t* L, uint8_t* qs) {
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

void pack_q5k_levels(const uint8_t* L, uint8_t* qh, uint8_t* qs) {
  std::memset(qh, 0, QK_K / 8);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
      if (l1 > 15) { l1 -= 16; qh[l] = static_cast<uint8_t>(qh[l] | (1u << (2 * c))); }
      if (l2 > 15) { l2 -= 16; qh[l] = static_cast<uint8_t>(qh[l] | (2u << (2 * c))); }
      qs[32 * c + l] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
}

// quantize_row_q{4,5}_K_ref: per sub-block make_qkx2_quants with weights
// av + |x|, av the RMS of the sub-block; 6-bit scales/mins relative to the
// largest; final levels from the stored values.
template <int kNmax>
void quantize_qk_ref_block(const float* x, uint8_t* blk, uint8_t* L) {
  constexpr float kRmin = kNmax == 15 ? -1.f : -0.5f;
  constexpr int kNstep = kNmax == 15 ? 20 : 15;
  float scales[8], mins[8], w[32];
  uint8_t Laux[32];
  float max_scale = 0.f, max_min = 0.f;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0.f;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av = std::sqrt(sum_x2 / 32.f);
    for (int l = 0; l < 32; ++l) w[l] = av + std::fabs(xs[l]);
    scales[j] = make_qkx2_quants(32, kNmax, xs, w, L + 32 * j, &mins[j], Laux, kRmin, 0.1f, kNstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_s = max_scale > 0.f ? 63.f / max_scale : 0.f;
  const float inv_m = max_min > 0.f ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    // uint8_t ls = nearest_int(...); ls = MIN(63, ls): the low byte first, then the clamp.
    const uint8_t a = static_cast<uint8_t>(nearest_int(inv_s * scales[j]));
    const uint8_t b = static_cast<uint8_t>(nearest_int(inv_m * mins[j]));
    ls[j] = a < 63 ? a : 63;
    lm[j] = b < 63 ? b : 63;
  }
  pack_scales(ls, lm, blk + 4);
  store_u16(blk, fp16_scale_bits(max_scale / 63.f));
  store_u16(blk + 2, fp16_scale_bits(max_min / 63.f));
  final_levels(x, blk, kNmax, L);
}

// quantize_row_q{4,5}_K_impl: importance weights qw*sqrt(sigma2 + x^2) with
// sigma2 = 2*mean(x^2) over the super-block, make_qkx3_quants, then the
// sub-block scales and mins quantized by make_qp_quants weighted by the
// sub-block weight sums. q5_K clamps the 6-bit levels to 63, q4_K does not.
template <int kNmax>
void quantize_qk_importance_block(const float* x, const float* qw, uint8_t* blk, uint8_t* L) {
  float scales[8], mins[8], sw[8], w[32];
  uint8_t Laux[32];
  float sum_x2 = 0.f;
  for (int l = 0; l < QK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = (2.f * sum_x2) / static_cast<float>(QK_K);
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    for (int l = 0; l < 32; ++l) w[l] = qw[32 * j + l] * std::sqrt(sigma2 + xs[l] * xs[l]);
    float sumw = 0.f;
    for (int l = 0; l < 32; ++l) sumw += w[l];
    sw[j] = sumw;
    scales[j] = make_qkx3_quants(32, kNmax, xs, w, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
  }
  uint8_t ls[8], lm[8];
  const float d_block = make_qp_quants(8, 63, scales, ls, sw);
  const float m_block = make_qp_quants(8, 63, mins, lm, sw);
  if (kNmax == 31) {
    for (int j = 0; j < 8; ++j) {
      if (ls[j] > 63) ls[j] = 63;
      if (lm[j] > 63) lm[j] = 63;
    }
  }
  pack_scales(ls, lm, blk + 4);
  store_u16(blk, fp16_scale_bits(d_block));
  store_u16(blk + 2, fp16_scale_bits(m_block));
  final_levels(x, blk, kNmax, L);
}

// ---- q4_K ---------------------------------------------------------------

void quantize_q4_K(const float* x, uint8_t* y, int64_t k) {
  uint8_t L[QK_K];
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, y += kQ4K_Bytes) {
    quantize_qk_ref_block<15>(x, y, L);
    pack_q4k_levels(L, y + 16);
  }
}
void quantize_q4_K_importance(const float* x, uint8_t* y, int64_t k, const float* importance) {
  uint8_t L[QK_K];
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, y += kQ4K_Bytes) {
    quantize_qk_importance_block<15>(x, importance + b * QK_K, y, L);
    pack_q4k_levels(L, y + 16);
  }
}

// D_j = d*sc_j, M_j = dmin*m_j, y = D_j*q - M_j.
void dequant_block_q4_K(const uint8_t* b, float* y) {
  const float d = fp16_to_f32(load_u16(b)), dmin = fp16_to_f32(load_u16(b + 2));
  const uint8_t* qs = b + 16;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min(j, b + 4, &sc, &m);
    const float D = d * static_cast<float>(sc), M = dmin * static_cast<float>(m);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = (j & 1) * 4;
    for (int l = 0; l < 32; ++l) y[32 * j + l] = D * static_cast<float>((q[l] >> shift) & 0xF) - M;
  }
}

// ---- q5_K ---------------------------------------------------------------

void quantize_q5_K(const float* x, uint8_t* y, int64_t k) {
  uint8_t L[QK_K];
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, y += kQ5K_Bytes) {
    quantize_qk_ref_block<31>(x, y, L);
    pack_q5k_levels(L, y + 16, y + 48);
  }
}
void quantize_q5_K_importance(const float* x, uint8_t* y, int64_t k, const float* importance) {
  uint8_t L[QK_K];
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, y += kQ5K_Bytes) {
    quantize_qk_importance_block<31>(x, importance + b * QK_K, y, L);
    pack_q5k_levels(L, y + 16, y + 48);
  }
}

// Level of element 32j + l (j = sub-block): low nibble of qs[32*(j/2) + l]
// (high nibble for odd j) plus 16 * bit j of qh[l].
inline int q5k_level(const uint8_t* b, int j, int l) {
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  const int lo = (qs[32 * (j / 2) + l] >> ((j & 1) * 4)) & 0xF;
  return lo | (((qh[l] >> j) & 1) << 4);
}

void dequant_block_q5_K(const uint8_t* b, float* y) {
  const float d = fp16_to_f32(load_u16(b)), dmin = fp16_to_f32(load_u16(b + 2));
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min(j, b + 4, &sc, &m);
    const float D = d * static_cast<float>(sc), M = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) y[32 * j + l] = D * static_cast<float>(q5k_level(b, j, l)) - M;
  }
}

// ---- q6_K ---------------------------------------------------------------

// Level u (0..63) of element e of a q6_K block (quant-formats.md 4.5).
inline int q6k_level(const uint8_t* b, int e) {
  const int h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
  const uint8_t* ql = b + 64 * h;
  const uint8_t qh = b[128 + 32 * h + l];
  const int lo = quarter & 1 ? ql[32 + l] : ql[l];
  const int nib = quarter & 2 ? (lo >> 4) : (lo & 0xF);
  return nib | (((qh >> (2 * quarter)) & 3) << 4);
}

template <bool kImportance>
void quantize_q6_K_impl(const float* x, uint8_t* y, int64_t k, const float* importance) {
  int8_t L[QK_K];
  float scales[16];
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, y += kQ6K_Bytes) {
    float max_scale = 0.f, max_abs = 0.f;
    for (int ib = 0; ib < 16; ++ib) {
      const float* qw = kImportance ? importance + b * QK_K + 16 * ib : nullptr;
      const float s = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw);
      scales[ib] = s;
      if (std::fabs(s) > max_abs) { max_abs = std::fabs(s); max_scale = s; }
    }
    if (max_abs < kGroupMaxEps) {
      std::memset(y, 0, kQ6K_Bytes);
      continue;
    }
    const float iscale = -128.f / max_scale;
    store_u16(y + 208, fp16_scale_bits(1.f / iscale));
    uint8_t* sc = y + 192;
    // MIN(127, nearest_int(...)) stored into int8_t: the low byte.
    for (int ib = 0; ib < 16; ++ib) {
      const int v = nearest_int(iscale * scales[ib]);
      sc[ib] = static_cast<uint8_t>(v < 127 ? v : 127);
    }
    const float d = fp16_to_f32(load_u16(y + 208));
    for (int j = 0; j < 16; ++j) {
      const float D = d * static_cast<float>(as_i8(sc[j]));
      if (D == 0.f) continue;
      for (int i = 0; i < 16; ++i) L[16 * j + i] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + i] / D), -32, 31) + 32);
    }
    uint8_t* ql = y;
    uint8_t* qh = y + 128;
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int q1 = Lh[l], q2 = Lh[l + 32], q3 = Lh[l + 64], q4 = Lh[l + 96];
        ql[64 * h + l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[64 * h + 32 + l] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[32 * h + l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}
void quantize_q6_K(const float* x, uint8_t* y, int64_t k) { quantize_q6_K_impl<false>(x, y, k, nullptr); }
void quantize_q6_K_importance(const float* x, uint8_t* y, int64_t k, const float* importance) {
  quantize_q6_K_impl<true>(x, y, k, importance);
}

// y = (d*scale_j)*(u - 32), j = sub-block of 16.
void dequant_block_q6_K(const uint8_t* b, float* y) {
  const float d = fp16_to_f32(load_u16(b + 208));
  for (int j = 0; j < 16; ++j) {
    const float D = d * static_cast<float>(as_i8(b[192 + j]));
    for (int i = 0; i < 16; ++i) y[16 * j + i] = D * static_cast<float>(q6k_level(b, 16 * j + i) - 32);
  }
}

// ---- q8_K activations ---------------------------------------------------

// quantize_row_q8_K_ref; a block with max|x| = 0, or whose scale -127/max or
// its inverse is not finite (subnormal or infinite max), is written all zero.
void quantize_q8_K(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, y += kQ8K_Bytes) {
    float mx = 0.f, amax = 0.f;
    for (int i = 0; i < QK_K; ++i) {
      const float ax = std::fabs(x[i]);
      if (ax > amax) { amax = ax; mx = x[i]; }
    }
    const float iscale = amax != 0.f ? -127.f / mx : 0.f;
    const float d = amax != 0.f ? 1.f / iscale : 0.f;
    if (amax == 0.f || !std::isfinite(iscale) || !std::isfinite(d)) {
      std::memset(y, 0, kQ8K_Bytes);
      continue;
    }
    int8_t* qs = reinterpret_cast<int8_t*>(y + 4);
    for (int i = 0; i < QK_K; ++i) {
      const int v = nearest_int(iscale * x[i]);
      y[4 + i] = static_cast<uint8_t>(v < 127 ? v : 127);  // int8_t field: the low byte
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += qs[16 * g + i];
      store_u16(y + 260 + 2 * g, static_cast<uint16_t>(sum));
    }
    store_f32(y, d);
  }
}

// ---- dot products -------------------------------------------------------

// 'f32' precision: one super-block dequantized as dequantize_row does, then
// the chunked_dot order of kernels_scalar.cc (32 products in element order
// into s, then acc += s).
template <void (*Deq)(const uint8_t*, float*)>
float dot_f32(int64_t k, const uint8_t* w, int block_bytes, const float* x) {
  float acc = 0.f;
  float tmp[QK_K];
  for (int64_t b = 0; b < k / QK_K; ++b, w += block_bytes, x += QK_K) {
    Deq(w, tmp);
    for (int c = 0; c < QK_K; c += 32) {
      float s = 0.f;
      for (int i = c; i < c + 32; ++i) s += tmp[i] * x[i];
      acc += s;
    }
  }
  return acc;
}

template <void (*Deq)(const uint8_t*, float*)>
void dequantize_rows(const uint8_t* x, float* y, int64_t k, int block_bytes) {
  for (int64_t b = 0; b < k / QK_K; ++b, x += block_bytes, y += QK_K) Deq(x, y);
}

void dequantize_q4_K(const uint8_t* x, float* y, int64_t k) { dequantize_rows<dequant_block_q4_K>(x, y, k, kQ4K_Bytes); }
void dequantize_q5_K(const uint8_t* x, float* y, int64_t k) { dequantize_rows<dequant_block_q5_K>(x, y, k, kQ5K_Bytes); }
void dequantize_q6_K(const uint8_t* x, float* y, int64_t k) { dequantize_rows<dequant_block_q6_K>(x, y, k, kQ6K_Bytes); }
float dot_q4_K_f32(int64_t k, const uint8_t* w, const float* x) { return dot_f32<dequant_block_q4_K>(k, w, kQ4K_Bytes, x); }
float dot_q5_K_f32(int64_t k, const uint8_t* w, const float* x) { return dot_f32<dequant_block_q5_K>(k, w, kQ5K_Bytes, x); }
float dot_q6_K_f32(int64_t k, const uint8_t* w, const float* x) { return dot_f32<dequant_block_q6_K>(k, w, kQ6K_Bytes, x); }

// 'q8' precision, per super-block: exact int32
//   A = sum_j sc_j * sum_{i in j} q_i*qy_i,  B = sum_j m_j*(bsums[2j] + bsums[2j+1]),
// then acc += (d*dy)*A; acc -= (dmin*dy)*B (each product rounded to f32).
template <bool kQ5>
float dot_qk_q8_K(int64_t k, const uint8_t* w, const uint8_t* a) {
  const int bytes = kQ5 ? kQ5K_Bytes : kQ4K_Bytes;
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK_K; ++b, w += bytes, a += kQ8K_Bytes) {
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 4);
    int32_t A = 0, B = 0;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      scale_min(j, w + 4, &sc, &m);
      int32_t s = 0;
      if (kQ5) {
        for (int l = 0; l < 32; ++l) s += q5k_level(w, j, l) * qy[32 * j + l];
      } else {
        const uint8_t* q = w + 16 + 32 * (j / 2);
        const int shift = (j & 1) * 4;
        for (int l = 0; l < 32; ++l) s += ((q[l] >> shift) & 0xF) * qy[32 * j + l];
      }
      A += sc * s;
      B += m * (load_i16(a + 260 + 4 * j) + load_i16(a + 262 + 4 * j));
    }
    const float dy = load_f32(a);
    const float dd = fp16_to_f32(load_u16(w)) * dy;
    const float dm = fp16_to_f32(load_u16(w + 2)) * dy;
    acc += dd * static_cast<float>(A);
    acc -= dm * static_cast<float>(B);
  }
  return acc;
}
float dot_q4_K_q8_K(int64_t k, const uint8_t* w, const uint8_t* a) { return dot_qk_q8_K<false>(k, w, a); }
float dot_q5_K_q8_K(int64_t k, const uint8_t* w, const uint8_t* a) { return dot_qk_q8_K<true>(k, w, a); }

// A = sum_j scales_j * sum_{i in j} (u_i - 32)*qy_i; acc += (d*dy)*A.
float dot_q6_K_q8_K(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK_K; ++b, w += kQ6K_Bytes, a += kQ8K_Bytes) {
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 4);
    int32_t A = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int i = 0; i < 16; ++i) s += (q6k_level(w, 16 * j + i) - 32) * qy[16 * j + i];
      A += as_i8(w[192 + j]) * s;
    }
    const float dd = fp16_to_f32(load_u16(w + 208)) * load_f32(a);
    acc += dd * static_cast<float>(A);
  }
  return acc;
}

}  // namespace

void fill_scalar_kquants(KernelTable& t) {
  t.type[kQ4_K] = {quantize_q4_K, nullptr, dequantize_q4_K, dot_q4_K_q8_K, dot_q4_K_f32, quantize_q4_K_importance};
  t.type[kQ5_K] = {quantize_q5_K, nullptr, dequantize_q5_K, dot_q5_K_q8_K, dot_q5_K_f32, quantize_q5_K_importance};
  t.type[kQ6_K] = {quantize_q6_K, nullptr, dequantize_q6_K, dot_q6_K_q8_K, dot_q6_K_f32, quantize_q6_K_importance};
  t.type[kQ8_K] = {nullptr, quantize_q8_K, nullptr, nullptr, nullptr, nullptr};
}

}  // namespace qk

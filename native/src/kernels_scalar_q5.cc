// Portable scalar kernels for q5_0 and q5_1, and the importance-weighted
// quantizers (llama.cpp's quantize_row_q{4_0,4_1,5_0,5_1}_impl) of the
// 32-element types. Conventions as kernels_scalar.cc: llama.cpp's reference
// quantizers operation for operation (built with -ffp-contract=off),
// float-to-int casts with x86 semantics spelled out, 'f32' dots in chunks of 32.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "fp16.h"
#include "kernels.h"
#include "kquant_search.h"

namespace qk {
namespace {

// As kernels_scalar.cc: C's float-to-int cast as llama.cpp's x86 build runs it
// (NaN and out-of-range values become INT_MIN, low byte 0).
inline int cast_level(float v) { return std::fabs(v) < 2147483648.f ? static_cast<int>(v) : 0; }
// (int8_t)(float) and (uint8_t)(float) on x86: the 32-bit cast, then the low byte.
inline int cast_int8(float v) { return static_cast<int>(static_cast<int8_t>(static_cast<uint8_t>(cast_level(v) & 0xFF))); }
inline int cast_uint8(float v) { return cast_level(v) & 0xFF; }

inline uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline void store_u16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v); p[1] = static_cast<uint8_t>(v >> 8); }
inline uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline void store_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

constexpr int kQ5_0Bytes = sizeof(BlockQ5_0);  // d(2) qh(4) qs(16)
constexpr int kQ5_1Bytes = sizeof(BlockQ5_1);  // d(2) m(2) qh(4) qs(16)

// Packs 32 five-bit levels (only bits 0-4 of each are used): low nibbles into
// qs (element j low, j+16 high), fifth bits into the little-endian word qh.
void pack_q5(const uint8_t* L, uint8_t* qh_out, uint8_t* qs) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const uint32_t a = L[j], b = L[j + 16];
    qs[j] = static_cast<uint8_t>((a & 0x0F) | ((b & 0x0F) << 4));
    qh |= ((a & 0x10u) >> 4) << j;
    qh |= ((b & 0x10u) >> 4) << (j + 16);
  }
  store_u32(qh_out, qh);
}

// Level (0..31) of element j of a block, from its qh word and qs bytes.
inline int level5(uint32_t qh, const uint8_t* qs, int j) {
  const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
  return lo | static_cast<int>(((qh >> j) & 1u) << 4);
}

// 'f32' precision: dequantize one block exactly as dequantize_row does, then
// the chunked_dot order of kernels_scalar.cc (32 products summed into s in
// element order, then acc += s). Blocks here are exactly one chunk.
template <typename DequantBlock>
float chunked_dot_blocks(int64_t k, const uint8_t* w, int block_bytes, const float* x, DequantBlock deq) {
  float acc = 0.f;
  float tmp[QK32];
  for (int64_t b = 0; b < k / QK32; ++b, w += block_bytes, x += QK32) {
    deq(w, tmp);
    float s = 0.f;
    for (int i = 0; i < QK32; ++i) s += tmp[i] * x[i];
    acc += s;
  }
  return acc;
}

// ---- q5_0 ---------------------------------------------------------------

void quantize_q5_0(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kQ5_0Bytes) {
    float amax = 0.f, m = 0.f;
    for (int i = 0; i < QK32; ++i) {
      if (amax < std::fabs(x[i])) { amax = std::fabs(x[i]); m = x[i]; }
    }
    const float d = m / -16.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    store_u16(y, fp16_scale_bits(d));
    uint8_t L[QK32];
    for (int i = 0; i < QK32; ++i) {
      // MIN(31, (int8_t)(x*id + 16.5)), stored as uint8_t.
      L[i] = static_cast<uint8_t>(std::min(31, cast_int8(x[i] * id + 16.5f)));
    }
    pack_q5(L, y + 2, y + 6);
  }
}

void dequant_block_q5_0(const uint8_t* b, float* y) {
  const float d = fp16_to_f32(load_u16(b));
  const uint32_t qh = load_u32(b + 2);
  for (int j = 0; j < QK32; ++j) y[j] = static_cast<float>(level5(qh, b + 6, j) - 16) * d;
}
void dequantize_q5_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ5_0Bytes, y += QK32) dequant_block_q5_0(x, y);
}
float dot_q5_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ5_0Bytes, a += sizeof(BlockQ8_0)) {
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 2);
    const uint32_t qh = load_u32(w + 2);
    int s = 0;
    for (int j = 0; j < QK32; ++j) s += (level5(qh, w + 6, j) - 16) * qy[j];
    acc += (fp16_to_f32(load_u16(w)) * fp16_to_f32(load_u16(a))) * static_cast<float>(s);
  }
  return acc;
}
float dot_q5_0_f32(int64_t k, const uint8_t* w, const float* x) {
  return chunked_dot_blocks(k, w, kQ5_0Bytes, x, dequant_block_q5_0);
}

// ---- q5_1 ---------------------------------------------------------------

void quantize_q5_1(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kQ5_1Bytes) {
    float mn = 3.402823466e38f, mx = -3.402823466e38f;
    for (int i = 0; i < QK32; ++i) {
      if (x[i] < mn) mn = x[i];
      if (x[i] > mx) mx = x[i];
    }
    const float d = (mx - mn) / 31.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    store_u16(y, fp16_scale_bits(d));
    store_u16(y + 2, fp16_scale_bits(mn));
    uint8_t L[QK32];
    // (uint8_t)((x - min)*id + 0.5), no clamp (cannot exceed 31 for finite input).
    for (int i = 0; i < QK32; ++i) L[i] = static_cast<uint8_t>(cast_uint8((x[i] - mn) * id + 0.5f));
    pack_q5(L, y + 4, y + 8);
  }
}

void dequant_block_q5_1(const uint8_t* b, float* y) {
  const float d = fp16_to_f32(load_u16(b)), m = fp16_to_f32(load_u16(b + 2));
  const uint32_t qh = load_u32(b + 4);
  for (int j = 0; j < QK32; ++j) y[j] = static_cast<float>(level5(qh, b + 8, j)) * d + m;
}
void dequantize_q5_1(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ5_1Bytes, y += QK32) dequant_block_q5_1(x, y);
}
float dot_q5_1_q8_1(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ5_1Bytes, a += sizeof(BlockQ8_1)) {
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 4);
    const uint32_t qh = load_u32(w + 4);
    int s = 0;
    for (int j = 0; j < QK32; ++j) s += level5(qh, w + 8, j) * qy[j];
    const float dxdy = fp16_to_f32(load_u16(w)) * fp16_to_f32(load_u16(a));
    const float msy = fp16_to_f32(load_u16(w + 2)) * fp16_to_f32(load_u16(a + 2));
    acc += dxdy * static_cast<float>(s);
    acc += msy;
  }
  return acc;
}
float dot_q5_1_f32(int64_t k, const uint8_t* w, const float* x) {
  return chunked_dot_blocks(k, w, kQ5_1Bytes, x, dequant_block_q5_1);
}

// ---- importance-weighted quantizers (quant-formats.md 3.1-3.4) -----------
// One call quantizes one row of k values; sigma2 is the mean square of the
// whole row: f32(S / float(k)) with S the sequential f32 sum of x^2.

float row_sigma2(const float* x, int64_t k) {
  float s = 0.f;
  for (int64_t i = 0; i < k; ++i) s += x[i] * x[i];
  return s / static_cast<float>(k);
}

void block_weights(const float* xb, const float* qw, float sigma2, float* w) {
  for (int j = 0; j < QK32; ++j) w[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

void quantize_q4_0_importance(const float* x, uint8_t* y, int64_t k, const float* importance) {
  const float sigma2 = row_sigma2(x, k);
  float w[QK32];
  int8_t L[QK32];
  for (int64_t b = 0; b < k / QK32; ++b, y += sizeof(BlockQ4_0)) {
    const float* xb = x + b * QK32;
    block_weights(xb, importance + b * QK32, sigma2, w);
    const float d = make_qx_quants(QK32, 8, xb, L, 1, w);
    store_u16(y, fp16_scale_bits(d));
    for (int j = 0; j < 16; ++j) y[2 + j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void quantize_q4_1_importance(const float* x, uint8_t* y, int64_t k, const float* importance) {
  const float sigma2 = row_sigma2(x, k);
  float w[QK32];
  uint8_t L[QK32], Laux[QK32];
  for (int64_t b = 0; b < k / QK32; ++b, y += sizeof(BlockQ4_1)) {
    const float* xb = x + b * QK32;
    block_weights(xb, importance + b * QK32, sigma2, w);
    float the_min = 0.f;
    const float d = make_qkx3_quants(QK32, 15, xb, w, L, &the_min, Laux, -0.9f, 0.05f, 36, false);
    store_u16(y, fp16_scale_bits(d));
    store_u16(y + 2, fp16_scale_bits(-the_min));
    for (int j = 0; j < 16; ++j) y[4 + j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void quantize_q5_0_importance(const float* x, uint8_t* y, int64_t k, const float* importance) {
  const float sigma2 = row_sigma2(x, k);
  float w[QK32];
  int8_t L[QK32];
  uint8_t U[QK32];
  for (int64_t b = 0; b < k / QK32; ++b, y += kQ5_0Bytes) {
    const float* xb = x + b * QK32;
    block_weights(xb, importance + b * QK32, sigma2, w);
    const float d = make_qx_quants(QK32, 16, xb, L, 1, w);
    store_u16(y, fp16_scale_bits(d));
    for (int j = 0; j < QK32; ++j) U[j] = static_cast<uint8_t>(L[j]);  // levels 0..31
    pack_q5(U, y + 2, y + 6);
  }
}

void quantize_q5_1_importance(const float* x, uint8_t* y, int64_t k, const float* importance) {
  const float sigma2 = row_sigma2(x, k);
  float w[QK32];
  uint8_t L[QK32], Laux[QK32];
  for (int64_t b = 0; b < k / QK32; ++b, y += kQ5_1Bytes) {
    const float* xb = x + b * QK32;
    block_weights(xb, importance + b * QK32, sigma2, w);
    float the_min = 0.f;
    const float d = make_qkx3_quants(QK32, 31, xb, w, L, &the_min, Laux, -0.9f, 0.05f, 36, false);
    store_u16(y, fp16_scale_bits(d));
    store_u16(y + 2, fp16_scale_bits(-the_min));
    pack_q5(L, y + 4, y + 8);
  }
}

}  // namespace

void fill_scalar_q5(KernelTable& t) {
  t.type[kQ5_0] = {quantize_q5_0, nullptr, dequantize_q5_0, dot_q5_0_q8_0, dot_q5_0_f32, quantize_q5_0_importance};
  t.type[kQ5_1] = {quantize_q5_1, nullptr, dequantize_q5_1, dot_q5_1_q8_1, dot_q5_1_f32, quantize_q5_1_importance};
  t.type[kQ4_0].quantize_row_importance = quantize_q4_0_importance;
  t.type[kQ4_1].quantize_row_importance = quantize_q4_1_importance;
}

}  // namespace qk

// Portable scalar kernels: the reference every SIMD variant is tested against,
// and what runs where no SIMD level is available. Quantizers follow llama.cpp's
// reference quantizers operation for operation (the build uses
// -ffp-contract=off so no multiply-add is fused).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "fp16.h"
#include "kernels.h"

namespace qk {
namespace {

// C's float-to-integer cast as llama.cpp's x86 build executes it: NaN or a
// value outside int32 becomes INT_MIN, whose low byte (the stored level) is 0.
// Reached only when a subnormal scale makes 1/d infinite; the golden files
// record level 0 there. Spelled out so that every platform agrees.
inline int cast_level(float v) { return std::fabs(v) < 2147483648.f ? static_cast<int>(v) : 0; }

inline float load_f32(const uint8_t* p) { float f; std::memcpy(&f, p, 4); return f; }
inline uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline void store_u16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v); p[1] = static_cast<uint8_t>(v >> 8); }

// ---- float types --------------------------------------------------------

void quantize_f32(const float* x, uint8_t* y, int64_t k) { std::memcpy(y, x, static_cast<size_t>(k) * 4); }
void dequantize_f32(const uint8_t* x, float* y, int64_t k) { std::memcpy(y, x, static_cast<size_t>(k) * 4); }
// 'f32' precision sums 32 products into a partial sum, then adds it to the
// row accumulator: the TypeScript kernels use the same order (so the two agree
// bit for bit), and the rounding error grows with k/32 rather than k.
constexpr int64_t kChunk = 32;

template <typename Weight>
float chunked_dot(int64_t k, Weight weight, const float* x) {
  float acc = 0.f;
  for (int64_t c = 0; c < k; c += kChunk) {
    const int64_t e = std::min(k, c + kChunk);
    float s = 0.f;
    for (int64_t i = c; i < e; ++i) s += weight(i) * x[i];
    acc += s;
  }
  return acc;
}

float dot_f32_f32(int64_t k, const uint8_t* w, const float* x) {
  return chunked_dot(k, [w](int64_t i) { return load_f32(w + 4 * i); }, x);
}

void quantize_f16(const float* x, uint8_t* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) store_u16(y + 2 * i, f32_to_fp16(x[i]));
}
void dequantize_f16(const uint8_t* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = fp16_to_f32(load_u16(x + 2 * i));
}
float dot_f16_f32(int64_t k, const uint8_t* w, const float* x) {
  return chunked_dot(k, [w](int64_t i) { return fp16_to_f32(load_u16(w + 2 * i)); }, x);
}

void quantize_bf16(const float* x, uint8_t* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) store_u16(y + 2 * i, f32_to_bf16(x[i]));
}
void dequantize_bf16(const uint8_t* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = bf16_to_f32(load_u16(x + 2 * i));
}
float dot_bf16_f32(int64_t k, const uint8_t* w, const float* x) {
  return chunked_dot(k, [w](int64_t i) { return bf16_to_f32(load_u16(w + 2 * i)); }, x);
}

// ---- q4_0 ---------------------------------------------------------------

void quantize_q4_0(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += sizeof(BlockQ4_0)) {
    float amax = 0.f, m = 0.f;
    for (int i = 0; i < QK32; ++i) {
      if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); m = x[i]; }
    }
    const float d = m / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    store_u16(y, f32_to_fp16(d));
    for (int j = 0; j < QK32 / 2; ++j) {
      const float t0 = x[j] * id, t1 = x[j + 16] * id;
      const int q0 = std::min(15, cast_level(t0 + 8.5f));
      const int q1 = std::min(15, cast_level(t1 + 8.5f));
      y[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}
void dequantize_q4_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += sizeof(BlockQ4_0), y += QK32) {
    const float d = fp16_to_f32(load_u16(x));
    for (int j = 0; j < QK32 / 2; ++j) {
      y[j] = static_cast<float>((x[2 + j] & 0xF) - 8) * d;
      y[j + 16] = static_cast<float>((x[2 + j] >> 4) - 8) * d;
    }
  }
}
float dot_q4_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK32; ++b, w += sizeof(BlockQ4_0), a += sizeof(BlockQ8_0)) {
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 2);
    int s = 0;
    for (int j = 0; j < QK32 / 2; ++j) {
      s += ((w[2 + j] & 0xF) - 8) * qy[j] + ((w[2 + j] >> 4) - 8) * qy[j + 16];
    }
    acc += (fp16_to_f32(load_u16(w)) * fp16_to_f32(load_u16(a))) * static_cast<float>(s);
  }
  return acc;
}
float dot_q4_0_f32(int64_t k, const uint8_t* w, const float* x) {
  return chunked_dot(k, [w](int64_t i) {
    const uint8_t* b = w + (i / QK32) * sizeof(BlockQ4_0);
    const int j = static_cast<int>(i % QK32);
    const int q = j < 16 ? (b[2 + j] & 0xF) : (b[2 + j - 16] >> 4);
    return static_cast<float>(q - 8) * fp16_to_f32(load_u16(b));
  }, x);
}

// ---- q4_1 ---------------------------------------------------------------

void quantize_q4_1(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += sizeof(BlockQ4_1)) {
    float mn = 3.402823466e38f, mx = -3.402823466e38f;
    for (int i = 0; i < QK32; ++i) {
      if (x[i] < mn) mn = x[i];
      if (x[i] > mx) mx = x[i];
    }
    const float d = (mx - mn) / 15.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    store_u16(y, f32_to_fp16(d));
    store_u16(y + 2, f32_to_fp16(mn));
    for (int j = 0; j < QK32 / 2; ++j) {
      const float t0 = (x[j] - mn) * id, t1 = (x[j + 16] - mn) * id;
      const int q0 = std::min(15, cast_level(t0 + 0.5f));
      const int q1 = std::min(15, cast_level(t1 + 0.5f));
      y[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}
void dequantize_q4_1(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += sizeof(BlockQ4_1), y += QK32) {
    const float d = fp16_to_f32(load_u16(x)), m = fp16_to_f32(load_u16(x + 2));
    for (int j = 0; j < QK32 / 2; ++j) {
      y[j] = static_cast<float>(x[4 + j] & 0xF) * d + m;
      y[j + 16] = static_cast<float>(x[4 + j] >> 4) * d + m;
    }
  }
}
float dot_q4_1_q8_1(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK32; ++b, w += sizeof(BlockQ4_1), a += sizeof(BlockQ8_1)) {
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 4);
    int s = 0;
    for (int j = 0; j < QK32 / 2; ++j) s += (w[4 + j] & 0xF) * qy[j] + (w[4 + j] >> 4) * qy[j + 16];
    const float dxdy = fp16_to_f32(load_u16(w)) * fp16_to_f32(load_u16(a));
    const float msy = fp16_to_f32(load_u16(w + 2)) * fp16_to_f32(load_u16(a + 2));
    acc += dxdy * static_cast<float>(s);
    acc += msy;
  }
  return acc;
}
float dot_q4_1_f32(int64_t k, const uint8_t* w, const float* x) {
  return chunked_dot(k, [w](int64_t i) {
    const uint8_t* b = w + (i / QK32) * sizeof(BlockQ4_1);
    const int j = static_cast<int>(i % QK32);
    const int q = j < 16 ? (b[4 + j] & 0xF) : (b[4 + j - 16] >> 4);
    return static_cast<float>(q) * fp16_to_f32(load_u16(b)) + fp16_to_f32(load_u16(b + 2));
  }, x);
}

// ---- q8_0 (weights) and the q8_0 / q8_1 activation quantizers ----------

void quantize_q8_0(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += sizeof(BlockQ8_0)) {
    float amax = 0.f;
    for (int i = 0; i < QK32; ++i) amax = amax > std::fabs(x[i]) ? amax : std::fabs(x[i]);
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    store_u16(y, f32_to_fp16(d));
    for (int i = 0; i < QK32; ++i) y[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(cast_level(std::roundf(x[i] * id))));
  }
}
void dequantize_q8_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += sizeof(BlockQ8_0), y += QK32) {
    const float d = fp16_to_f32(load_u16(x));
    for (int i = 0; i < QK32; ++i) y[i] = static_cast<float>(static_cast<int8_t>(x[2 + i])) * d;
  }
}
float dot_q8_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK32; ++b, w += sizeof(BlockQ8_0), a += sizeof(BlockQ8_0)) {
    const int8_t* qx = reinterpret_cast<const int8_t*>(w + 2);
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 2);
    int s = 0;
    for (int i = 0; i < QK32; ++i) s += qx[i] * qy[i];
    acc += (fp16_to_f32(load_u16(w)) * fp16_to_f32(load_u16(a))) * static_cast<float>(s);
  }
  return acc;
}
float dot_q8_0_f32(int64_t k, const uint8_t* w, const float* x) {
  return chunked_dot(k, [w](int64_t i) {
    const uint8_t* b = w + (i / QK32) * sizeof(BlockQ8_0);
    return static_cast<float>(static_cast<int8_t>(b[2 + i % QK32])) * fp16_to_f32(load_u16(b));
  }, x);
}

// Activations: multiplier 127/amax and ties-to-even, as llama.cpp's x86 path;
// one choice for every ISA and the JS fallback, so quantized activations are
// identical everywhere.
template <bool kWithSum>
void quantize_act_q8(const float* x, uint8_t* y, int64_t k) {
  constexpr int kHead = kWithSum ? 4 : 2;
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kHead + QK32) {
    float amax = 0.f;
    for (int i = 0; i < QK32; ++i) amax = amax > std::fabs(x[i]) ? amax : std::fabs(x[i]);
    const float d = amax / 127.f;
    // 127/amax overflows for amax < ~3.7e-37 (and is inf for an all-zero
    // block); such a block's fp16 scale is 0 anyway, so its levels are set to
    // 0 instead of whatever inf * x would convert to (llama.cpp leaves this
    // undefined). Every implementation applies the same rule.
    float id = 127.f / amax;
    if (!(id < std::numeric_limits<float>::infinity())) id = 0.f;
    store_u16(y, f32_to_fp16(d));
    int64_t sum = 0;  // 64-bit: INT_MIN levels (below) would overflow an int
    for (int i = 0; i < QK32; ++i) {
      // A NaN or infinite input (x * 0 is NaN for x = inf) has no level; the
      // conversion would be undefined, so it takes the value the SIMD kernels'
      // cvtps_epi32 gives, INT_MIN (low byte 0), as the JS kernels' castLevel does.
      const float r = std::nearbyintf(x[i] * id);
      const int q = std::fabs(r) < 2147483648.f ? static_cast<int>(r) : std::numeric_limits<int>::min();
      y[kHead + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
      sum += q;
    }
    if (kWithSum) store_u16(y + 2, f32_to_fp16(static_cast<float>(sum) * d));
  }
}

}  // namespace

void fill_scalar(KernelTable& t) {
  t.isa = kIsaScalar;
  t.type[kF32] = {quantize_f32, nullptr, dequantize_f32, nullptr, dot_f32_f32};
  t.type[kF16] = {quantize_f16, nullptr, dequantize_f16, nullptr, dot_f16_f32};
  t.type[kBF16] = {quantize_bf16, nullptr, dequantize_bf16, nullptr, dot_bf16_f32};
  t.type[kQ4_0] = {quantize_q4_0, nullptr, dequantize_q4_0, dot_q4_0_q8_0, dot_q4_0_f32};
  t.type[kQ4_1] = {quantize_q4_1, nullptr, dequantize_q4_1, dot_q4_1_q8_1, dot_q4_1_f32};
  t.type[kQ8_0] = {quantize_q8_0, quantize_act_q8<false>, dequantize_q8_0, dot_q8_0_q8_0, dot_q8_0_f32};
  t.type[kQ8_1] = {nullptr, quantize_act_q8<true>, nullptr, nullptr, nullptr};
  // After the whole-entry assignments above: these add importance quantizers to q4_0/q4_1.
  fill_scalar_q5(t);
  fill_scalar_kquants(t);
}

}  // namespace qk

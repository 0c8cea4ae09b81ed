// AArch64 NEON kernels for q5_0, q5_1 (32-element blocks) and the K-quants
// q4_K, q5_K, q6_K with their activation format q8_K, with ARMv8.2 SDOT
// variants of the integer dot products selected at run time. The weight
// quantizers (quantize_row, quantize_row_importance) stay scalar.
//
// Exactness contract (the references are kernels_scalar_q5.cc and
// kernels_scalar_k.cc; conventions as kernels_neon.cc):
//  - dequantize_row and quantize_act (q8_K) produce the scalar bytes exactly:
//    the same f32 operations, each rounded on its own (mul_unfused where a
//    product feeds an add or subtract, so no FMA even without
//    -ffp-contract=off).
//  - vec_dot: the exact int32 integers per block / super-block
//    (q4_K/q5_K: A = sum_j sc_j * sum_{i in j} q_i*qy_i,
//     B = sum_j m_j * (bsums[2j] + bsums[2j+1]); q6_K: A = sum_j scales_j *
//     sum_{i in j} (u_i - 32)*qy_i), then the scalar float combination.
//  - vec_dot_f32: the bit-exact dequantized weights times x, FMA into four
//    accumulators.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "fp16.h"
#include "kernels.h"
#include "types.h"

#include "neon_dotprod.h"

#define QK_INLINE inline __attribute__((always_inline))

namespace qk {
namespace {

constexpr int kQ50Bytes = sizeof(BlockQ5_0);  // d 0, qh 2, qs 6
constexpr int kQ51Bytes = sizeof(BlockQ5_1);  // d 0, m 2, qh 4, qs 8
constexpr int kQ80Bytes = sizeof(BlockQ8_0);  // d 0, qs 2
constexpr int kQ81Bytes = sizeof(BlockQ8_1);  // d 0, s 2, qs 4
constexpr int kQ4KBytes = sizeof(BlockQ4_K);  // d 0, dmin 2, scales 4, qs 16
constexpr int kQ5KBytes = sizeof(BlockQ5_K);  // d 0, dmin 2, scales 4, qh 16, qs 48
constexpr int kQ6KBytes = sizeof(BlockQ6_K);  // ql 0, qh 128, scales 192, d 208
constexpr int kQ8KBytes = sizeof(BlockQ8_K);  // d 0 (f32), qs 4, bsums 260

#include "simd_neon.h"

QK_INLINE uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
QK_INLINE float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---- integer dot-product cores ----------------------------------------------

struct DotMull {  // baseline ARMv8: widening multiply, pairwise accumulate
  static QK_INLINE int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
  }
};

#if QK_HAVE_DOTPROD
struct DotSdot {
  // Only inlined into the dotprod-enabled entry points below.
  QK_DOTPROD static inline int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
};
#endif

// ---- q5_0 / q5_1 ------------------------------------------------------------

// The fifth bits of a block (qh, bit i = element i) as bytes 0x10 / 0x00:
// h_lo for elements 0-15, h_hi for 16-31.
QK_INLINE void q5_high(uint32_t qh, uint8x16_t* h_lo, uint8x16_t* h_hi) {
  const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(qh));
  const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ULL));
  const uint8x16_t sixteen = vdupq_n_u8(0x10);
  const uint8x16_t lo = vcombine_u8(vdup_lane_u8(b, 0), vdup_lane_u8(b, 1));
  const uint8x16_t hi = vcombine_u8(vdup_lane_u8(b, 2), vdup_lane_u8(b, 3));
  *h_lo = vandq_u8(vtstq_u8(lo, bit), sixteen);
  *h_hi = vandq_u8(vtstq_u8(hi, bit), sixteen);
}

// Levels (0..31) of one q5 block: lo = elements 0-15, hi = 16-31.
QK_INLINE void q5_levels(const uint8_t* qh, const uint8_t* qs, uint8x16_t* lo, uint8x16_t* hi) {
  uint8x16_t h_lo, h_hi;
  q5_high(load_u32(qh), &h_lo, &h_hi);
  const uint8x16_t q = vld1q_u8(qs);
  *lo = vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), h_lo);
  *hi = vorrq_u8(vshrq_n_u8(q, 4), h_hi);
}

// q5_0 block against a q8_0 block: exact sum of (level - 16) * y.
template <class D>
QK_INLINE int32_t block_q5_0_q8_0(const uint8_t* w, const uint8_t* a) {
  uint8x16_t lo, hi;
  q5_levels(w + 2, w + 6, &lo, &hi);
  const int8x16_t sixteen = vdupq_n_s8(16);
  const int8x16_t l = vsubq_s8(vreinterpretq_s8_u8(lo), sixteen);
  const int8x16_t h = vsubq_s8(vreinterpretq_s8_u8(hi), sixteen);
  int32x4_t p = D::dot(vdupq_n_s32(0), l, vld1q_s8(reinterpret_cast<const int8_t*>(a + 2)));
  p = D::dot(p, h, vld1q_s8(reinterpret_cast<const int8_t*>(a + 18)));
  return vaddvq_s32(p);
}

// q5_1 block against a q8_1 block: exact sum of level * y.
template <class D>
QK_INLINE int32_t block_q5_1_q8_1(const uint8_t* w, const uint8_t* a) {
  uint8x16_t lo, hi;
  q5_levels(w + 4, w + 8, &lo, &hi);
  int32x4_t p = D::dot(vdupq_n_s32(0), vreinterpretq_s8_u8(lo), vld1q_s8(reinterpret_cast<const int8_t*>(a + 4)));
  p = D::dot(p, vreinterpretq_s8_u8(hi), vld1q_s8(reinterpret_cast<const int8_t*>(a + 20)));
  return vaddvq_s32(p);
}

// Two blocks per iteration, two float accumulators.
template <class D>
QK_INLINE float vec_dot_q5_0_impl(int64_t k, const uint8_t* w, const uint8_t* a) {
  const int64_t nb = k / QK32;
  float acc0 = 0.f, acc1 = 0.f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ50Bytes, a += 2 * kQ80Bytes) {
    const int32_t s0 = block_q5_0_q8_0<D>(w, a);
    const int32_t s1 = block_q5_0_q8_0<D>(w + kQ50Bytes, a + kQ80Bytes);
    acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(s0);
    acc1 += (scale_fast(w + kQ50Bytes) * scale_fast(a + kQ80Bytes)) * static_cast<float>(s1);
  }
  if (b < nb) acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(block_q5_0_q8_0<D>(w, a));
  return acc0 + acc1;
}

template <class D>
QK_INLINE float vec_dot_q5_1_impl(int64_t k, const uint8_t* w, const uint8_t* a) {
  const int64_t nb = k / QK32;
  float acc0 = 0.f, acc1 = 0.f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ51Bytes, a += 2 * kQ81Bytes) {
    const int32_t s0 = block_q5_1_q8_1<D>(w, a);
    const int32_t s1 = block_q5_1_q8_1<D>(w + kQ51Bytes, a + kQ81Bytes);
    const uint8_t* w1 = w + kQ51Bytes;
    const uint8_t* a1 = a + kQ81Bytes;
    acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(s0) + scale_fast(w + 2) * scale_fast(a + 2);
    acc1 += (scale_fast(w1) * scale_fast(a1)) * static_cast<float>(s1) + scale_fast(w1 + 2) * scale_fast(a1 + 2);
  }
  if (b < nb) {
    acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(block_q5_1_q8_1<D>(w, a)) +
            scale_fast(w + 2) * scale_fast(a + 2);
  }
  return acc0 + acc1;
}

// Dequantized q5 blocks into 8 vectors (elements in order), each value the
// scalar f32(float(level - 16) * d), resp. f32(float(level) * d) + m.
QK_INLINE void deq_block_q5_0(const uint8_t* w, float d, float32x4_t out[8]) {
  uint8x16_t lo, hi;
  q5_levels(w + 2, w + 6, &lo, &hi);
  const int8x16_t sixteen = vdupq_n_s8(16);
  i8_to_f32(vsubq_s8(vreinterpretq_s8_u8(lo), sixteen), out);
  i8_to_f32(vsubq_s8(vreinterpretq_s8_u8(hi), sixteen), out + 4);
  for (int j = 0; j < 8; ++j) out[j] = vmulq_n_f32(out[j], d);
}

QK_INLINE void deq_block_q5_1(const uint8_t* w, float d, float m, float32x4_t out[8]) {
  uint8x16_t lo, hi;
  q5_levels(w + 4, w + 8, &lo, &hi);
  i8_to_f32(vreinterpretq_s8_u8(lo), out);
  i8_to_f32(vreinterpretq_s8_u8(hi), out + 4);
  const float32x4_t vm = vdupq_n_f32(m);
  for (int j = 0; j < 8; ++j) out[j] = vaddq_f32(mul_unfused(out[j], d), vm);
}

// 8 vectors (32 elements) times x into four accumulators.
QK_INLINE void fma_32(const float32x4_t wv[8], const float* x, float32x4_t acc[4]) {
  for (int j = 0; j < 8; ++j) acc[j & 3] = vfmaq_f32(acc[j & 3], wv[j], vld1q_f32(x + 4 * j));
}

void dequantize_q5_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ50Bytes, y += QK32) {
    float32x4_t v[8];
    deq_block_q5_0(x, scale_exact(x), v);
    store_block(y, v);
  }
}

void dequantize_q5_1(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ51Bytes, y += QK32) {
    float32x4_t v[8];
    deq_block_q5_1(x, scale_exact(x), scale_exact(x + 2), v);
    store_block(y, v);
  }
}

float vec_dot_q5_0_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t acc[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ50Bytes, x += QK32) {
    float32x4_t v[8];
    deq_block_q5_0(w, scale_fast(w), v);
    fma_32(v, x, acc);
  }
  return hsum4(acc[0], acc[1], acc[2], acc[3]);
}

float vec_dot_q5_1_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t acc[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ51Bytes, x += QK32) {
    float32x4_t v[8];
    deq_block_q5_1(w, scale_fast(w), scale_fast(w + 2), v);
    fma_32(v, x, acc);
  }
  return hsum4(acc[0], acc[1], acc[2], acc[3]);
}

// ---- q4_K / q5_K ----------------------------------------------------------------

// The 6-bit scales (sc[0..7]) and mins (m[0..7]) of a q4_K/q5_K super-block
// (quant-formats.md 4.2), four bytes at a time.
QK_INLINE void decode_scales(const uint8_t* S, uint8_t sc[8], uint8_t m[8]) {
  constexpr uint32_t kLow6 = 0x3F3F3F3Fu, kLow4 = 0x0F0F0F0Fu, kLow2 = 0x03030303u;
  uint32_t u[3];
  std::memcpy(u, S, 12);
  const uint32_t sc_lo = u[0] & kLow6;                                       // sc 0-3: S[j] & 63
  const uint32_t m_lo = u[1] & kLow6;                                        // m 0-3: S[j+4] & 63
  const uint32_t sc_hi = (u[2] & kLow4) | (((u[0] >> 6) & kLow2) << 4);     // sc 4-7
  const uint32_t m_hi = ((u[2] >> 4) & kLow4) | (((u[1] >> 6) & kLow2) << 4);  // m 4-7
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
}

// B = sum_j m_j * (bsums[2j] + bsums[2j+1]), exact in int32.
QK_INLINE int32_t mins_dot_bsums(const uint8_t m[8], const uint8_t* bsums) {
  const int32x4_t b_lo = vpaddlq_s16(vreinterpretq_s16_u8(vld1q_u8(bsums)));       // pairs for j = 0..3
  const int32x4_t b_hi = vpaddlq_s16(vreinterpretq_s16_u8(vld1q_u8(bsums + 16)));  // j = 4..7
  const uint16x8_t m16 = vmovl_u8(vld1_u8(m));
  const int32x4_t m_lo = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(m16)));
  const int32x4_t m_hi = vreinterpretq_s32_u32(vmovl_high_u16(m16));
  return vaddvq_s32(vmlaq_s32(vmulq_s32(b_lo, m_lo), b_hi, m_hi));
}

// Levels of chunk c (elements 64c .. 64c+63) of a q4_K/q5_K super-block:
// l0,l1 = sub-block 2c (elements l = 0-15, 16-31), h0,h1 = sub-block 2c+1.
// For q5_K, qh0/qh1 are the qh bytes (l = 0-15, 16-31) already shifted right
// by 2c; the caller shifts them on.
template <bool kQ5>
QK_INLINE void qk_chunk(const uint8_t* qs, int c, uint8x16_t qh0, uint8x16_t qh1, uint8x16_t* l0, uint8x16_t* l1,
                        uint8x16_t* h0, uint8x16_t* h1) {
  const uint8x16_t q0 = vld1q_u8(qs + 32 * c), q1 = vld1q_u8(qs + 32 * c + 16);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  *l0 = vandq_u8(q0, low4);
  *l1 = vandq_u8(q1, low4);
  *h0 = vshrq_n_u8(q0, 4);
  *h1 = vshrq_n_u8(q1, 4);
  if (kQ5) {
    const uint8x16_t one = vdupq_n_u8(1), two = vdupq_n_u8(2);
    *l0 = vorrq_u8(*l0, vshlq_n_u8(vandq_u8(qh0, one), 4));
    *l1 = vorrq_u8(*l1, vshlq_n_u8(vandq_u8(qh1, one), 4));
    *h0 = vorrq_u8(*h0, vshlq_n_u8(vandq_u8(qh0, two), 3));
    *h1 = vorrq_u8(*h1, vshlq_n_u8(vandq_u8(qh1, two), 3));
  }
}

template <class D, bool kQ5>
QK_INLINE float vec_dot_qk_impl(int64_t k, const uint8_t* w, const uint8_t* a) {
  constexpr int kBytes = kQ5 ? kQ5KBytes : kQ4KBytes;
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK_K; ++b, w += kBytes, a += kQ8KBytes) {
    uint8_t sc[8], m[8];
    decode_scales(w + 4, sc, m);
    const uint8_t* qs = w + (kQ5 ? 48 : 16);
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 4);
    uint8x16_t qh0 = vdupq_n_u8(0), qh1 = vdupq_n_u8(0);
    if (kQ5) {
      qh0 = vld1q_u8(w + 16);
      qh1 = vld1q_u8(w + 32);
    }
    int32x4_t accA = vdupq_n_s32(0);
    for (int c = 0; c < 4; ++c) {
      uint8x16_t l0, l1, h0, h1;
      qk_chunk<kQ5>(qs, c, qh0, qh1, &l0, &l1, &h0, &h1);
      if (kQ5) {
        qh0 = vshrq_n_u8(qh0, 2);
        qh1 = vshrq_n_u8(qh1, 2);
      }
      const int8_t* y = qy + 64 * c;
      int32x4_t pl = D::dot(vdupq_n_s32(0), vreinterpretq_s8_u8(l0), vld1q_s8(y));
      pl = D::dot(pl, vreinterpretq_s8_u8(l1), vld1q_s8(y + 16));
      int32x4_t ph = D::dot(vdupq_n_s32(0), vreinterpretq_s8_u8(h0), vld1q_s8(y + 32));
      ph = D::dot(ph, vreinterpretq_s8_u8(h1), vld1q_s8(y + 48));
      accA = vmlaq_n_s32(accA, pl, sc[2 * c]);
      accA = vmlaq_n_s32(accA, ph, sc[2 * c + 1]);
    }
    const int32_t A = vaddvq_s32(accA);
    const int32_t B = mins_dot_bsums(m, a + 260);
    const float dy = load_f32(a);
    const float dd = scale_fast(w) * dy;
    const float dm = scale_fast(w + 2) * dy;
    acc += dd * static_cast<float>(A);
    acc -= dm * static_cast<float>(B);
  }
  return acc;
}

// One sub-block of 32 levels (l0: elements 0-15, l1: 16-31) dequantized as
// the scalar f32(D * q) - M into 8 vectors.
QK_INLINE void deq_sub_qk(uint8x16_t l0, uint8x16_t l1, float D, float M, float32x4_t out[8]) {
  i8_to_f32(vreinterpretq_s8_u8(l0), out);
  i8_to_f32(vreinterpretq_s8_u8(l1), out + 4);
  const float32x4_t vm = vdupq_n_f32(M);
  for (int j = 0; j < 8; ++j) out[j] = vsubq_f32(mul_unfused(out[j], D), vm);
}

// Walks the eight dequantized sub-blocks of a q4_K/q5_K super-block:
// sink(element offset, 8 vectors).
template <bool kQ5, bool kExact, class Sink>
QK_INLINE void deq_qk_block(const uint8_t* w, Sink sink) {
  const float d = kExact ? scale_exact(w) : scale_fast(w);
  const float dmin = kExact ? scale_exact(w + 2) : scale_fast(w + 2);
  uint8_t sc[8], m[8];
  decode_scales(w + 4, sc, m);
  const uint8_t* qs = w + (kQ5 ? 48 : 16);
  uint8x16_t qh0 = vdupq_n_u8(0), qh1 = vdupq_n_u8(0);
  if (kQ5) {
    qh0 = vld1q_u8(w + 16);
    qh1 = vld1q_u8(w + 32);
  }
  for (int c = 0; c < 4; ++c) {
    uint8x16_t l0, l1, h0, h1;
    qk_chunk<kQ5>(qs, c, qh0, qh1, &l0, &l1, &h0, &h1);
    if (kQ5) {
      qh0 = vshrq_n_u8(qh0, 2);
      qh1 = vshrq_n_u8(qh1, 2);
    }
    float32x4_t v[8];
    const int j0 = 2 * c, j1 = 2 * c + 1;
    deq_sub_qk(l0, l1, d * static_cast<float>(sc[j0]), dmin * static_cast<float>(m[j0]), v);
    sink(32 * j0, v);
    deq_sub_qk(h0, h1, d * static_cast<float>(sc[j1]), dmin * static_cast<float>(m[j1]), v);
    sink(32 * j1, v);
  }
}

template <bool kQ5>
void dequantize_qk(const uint8_t* x, float* y, int64_t k) {
  constexpr int kBytes = kQ5 ? kQ5KBytes : kQ4KBytes;
  for (int64_t b = 0; b < k / QK_K; ++b, x += kBytes, y += QK_K) {
    deq_qk_block<kQ5, true>(x, [y](int off, const float32x4_t* v) { store_block(y + off, v); });
  }
}

template <bool kQ5>
float vec_dot_qk_f32(int64_t k, const uint8_t* w, const float* x) {
  constexpr int kBytes = kQ5 ? kQ5KBytes : kQ4KBytes;
  float32x4_t acc[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  for (int64_t b = 0; b < k / QK_K; ++b, w += kBytes, x += QK_K) {
    deq_qk_block<kQ5, false>(w, [x, &acc](int off, const float32x4_t* v) { fma_32(v, x + off, acc); });
  }
  return hsum4(acc[0], acc[1], acc[2], acc[3]);
}

// ---- q6_K -------------------------------------------------------------------

// Signed levels (u - 32) of half h (elements 128h .. 128h+127) of a q6_K
// super-block: out[i] = elements 128h + 16i .. 128h + 16i + 15, i.e.
// sub-block 8h + i.
QK_INLINE void q6k_half(const uint8_t* w, int h, int8x16_t out[8]) {
  const uint8_t* ql = w + 64 * h;
  const uint8_t* qh = w + 128 + 32 * h;
  const uint8x16_t ql0 = vld1q_u8(ql), ql1 = vld1q_u8(ql + 16), ql2 = vld1q_u8(ql + 32), ql3 = vld1q_u8(ql + 48);
  const uint8x16_t qh0 = vld1q_u8(qh), qh1 = vld1q_u8(qh + 16);
  const uint8x16_t low4 = vdupq_n_u8(0x0F), bits45 = vdupq_n_u8(0x30);
  const int8x16_t m32 = vdupq_n_s8(32);
  uint8x16_t u[8];
  // elements 128h + l: ql[l] & 0xF, qh bits 1-0
  u[0] = vorrq_u8(vandq_u8(ql0, low4), vandq_u8(vshlq_n_u8(qh0, 4), bits45));
  u[1] = vorrq_u8(vandq_u8(ql1, low4), vandq_u8(vshlq_n_u8(qh1, 4), bits45));
  // 128h + 32 + l: ql[32 + l] & 0xF, qh bits 3-2
  u[2] = vorrq_u8(vandq_u8(ql2, low4), vandq_u8(vshlq_n_u8(qh0, 2), bits45));
  u[3] = vorrq_u8(vandq_u8(ql3, low4), vandq_u8(vshlq_n_u8(qh1, 2), bits45));
  // 128h + 64 + l: ql[l] >> 4, qh bits 5-4
  u[4] = vorrq_u8(vshrq_n_u8(ql0, 4), vandq_u8(qh0, bits45));
  u[5] = vorrq_u8(vshrq_n_u8(ql1, 4), vandq_u8(qh1, bits45));
  // 128h + 96 + l: ql[32 + l] >> 4, qh bits 7-6
  u[6] = vorrq_u8(vshrq_n_u8(ql2, 4), vshrq_n_u8(vandq_u8(qh0, vdupq_n_u8(0xC0)), 2));
  u[7] = vorrq_u8(vshrq_n_u8(ql3, 4), vshrq_n_u8(vandq_u8(qh1, vdupq_n_u8(0xC0)), 2));
  for (int i = 0; i < 8; ++i) out[i] = vsubq_s8(vreinterpretq_s8_u8(u[i]), m32);
}

template <class D>
QK_INLINE float vec_dot_q6_K_impl(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < k / QK_K; ++b, w += kQ6KBytes, a += kQ8KBytes) {
    const int8_t* scales = reinterpret_cast<const int8_t*>(w + 192);
    const int8_t* qy = reinterpret_cast<const int8_t*>(a + 4);
    int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
    for (int h = 0; h < 2; ++h) {
      int8x16_t q[8];
      q6k_half(w, h, q);
      for (int i = 0; i < 8; i += 2) {
        const int32x4_t p0 = D::dot(vdupq_n_s32(0), q[i], vld1q_s8(qy + 128 * h + 16 * i));
        const int32x4_t p1 = D::dot(vdupq_n_s32(0), q[i + 1], vld1q_s8(qy + 128 * h + 16 * i + 16));
        acc0 = vmlaq_n_s32(acc0, p0, scales[8 * h + i]);
        acc1 = vmlaq_n_s32(acc1, p1, scales[8 * h + i + 1]);
      }
    }
    const int32_t A = vaddvq_s32(vaddq_s32(acc0, acc1));
    const float dd = scale_fast(w + 208) * load_f32(a);
    acc += dd * static_cast<float>(A);
  }
  return acc;
}

// Walks the sixteen dequantized sub-blocks of a q6_K super-block, the scalar
// f32(D_j * float(u - 32)) with D_j = d * scales_j: sink(element offset, 4 vectors).
template <bool kExact, class Sink>
QK_INLINE void deq_q6k_block(const uint8_t* w, Sink sink) {
  const float d = kExact ? scale_exact(w + 208) : scale_fast(w + 208);
  const int8_t* scales = reinterpret_cast<const int8_t*>(w + 192);
  for (int h = 0; h < 2; ++h) {
    int8x16_t q[8];
    q6k_half(w, h, q);
    for (int i = 0; i < 8; ++i) {
      const float D = d * static_cast<float>(scales[8 * h + i]);
      float32x4_t v[4];
      i8_to_f32(q[i], v);
      for (int j = 0; j < 4; ++j) v[j] = vmulq_n_f32(v[j], D);
      sink(128 * h + 16 * i, v);
    }
  }
}

void dequantize_q6_K(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b, x += kQ6KBytes, y += QK_K) {
    deq_q6k_block<true>(x, [y](int off, const float32x4_t* v) {
      for (int j = 0; j < 4; ++j) vst1q_f32(y + off + 4 * j, v[j]);
    });
  }
}

float vec_dot_q6_K_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t acc[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  for (int64_t b = 0; b < k / QK_K; ++b, w += kQ6KBytes, x += QK_K) {
    deq_q6k_block<false>(w, [x, &acc](int off, const float32x4_t* v) {
      for (int j = 0; j < 4; ++j) acc[j] = vfmaq_f32(acc[j], v[j], vld1q_f32(x + off + 4 * j));
    });
  }
  return hsum4(acc[0], acc[1], acc[2], acc[3]);
}

// ---- q8_K activations ---------------------------------------------------------
// quantize_row_q8_K_ref as the scalar port: mx = signed x of the first strict
// max |x| (NaN never counts), iscale = -127/mx, d = 1/iscale; a block with
// max|x| = 0 or a non-finite iscale or d is all zero (bsums included);
// qs = low byte of min(127, nearest-even(iscale*x)) (FCVTNS; NaN gives 0 like
// nearest_int), bsums[g] = sum of the int8 qs of group g.

void quantize_act_q8_K(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, y += kQ8KBytes) {
    // |x| with NaN lanes as 0 (the scalar "ax > amax" never takes a NaN).
    float32x4_t m0 = vdupq_n_f32(0.f), m1 = m0, m2 = m0, m3 = m0;
    for (int i = 0; i < QK_K; i += 16) {
      const float32x4_t v0 = vld1q_f32(x + i), v1 = vld1q_f32(x + i + 4);
      const float32x4_t v2 = vld1q_f32(x + i + 8), v3 = vld1q_f32(x + i + 12);
      m0 = vmaxq_f32(m0, vreinterpretq_f32_u32(vandq_u32(vceqq_f32(v0, v0), vreinterpretq_u32_f32(vabsq_f32(v0)))));
      m1 = vmaxq_f32(m1, vreinterpretq_f32_u32(vandq_u32(vceqq_f32(v1, v1), vreinterpretq_u32_f32(vabsq_f32(v1)))));
      m2 = vmaxq_f32(m2, vreinterpretq_f32_u32(vandq_u32(vceqq_f32(v2, v2), vreinterpretq_u32_f32(vabsq_f32(v2)))));
      m3 = vmaxq_f32(m3, vreinterpretq_f32_u32(vandq_u32(vceqq_f32(v3, v3), vreinterpretq_u32_f32(vabsq_f32(v3)))));
    }
    const float amax = vmaxvq_f32(vmaxq_f32(vmaxq_f32(m0, m1), vmaxq_f32(m2, m3)));
    if (amax == 0.f) {
      std::memset(y, 0, kQ8KBytes);
      continue;
    }
    float mx = 0.f;
    const float32x4_t vamax = vdupq_n_f32(amax);
    for (int i = 0; i < QK_K; i += 4) {
      if (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + i)), vamax)) != 0) {
        int l = 0;
        while (std::fabs(x[i + l]) != amax) ++l;
        mx = x[i + l];
        break;
      }
    }
    const float iscale = -127.f / mx;
    const float d = 1.f / iscale;
    if (!std::isfinite(iscale) || !std::isfinite(d)) {
      std::memset(y, 0, kQ8KBytes);
      continue;
    }
    const int32x4_t max127 = vdupq_n_s32(127);
    for (int g = 0; g < 16; ++g) {
      const float* xg = x + 16 * g;
      int32x4_t q[4];
      for (int j = 0; j < 4; ++j) q[j] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(xg + 4 * j), iscale)), max127);
      const int16x8_t q01 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
      const int16x8_t q23 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
      const int8x16_t qb = vcombine_s8(vmovn_s16(q01), vmovn_s16(q23));  // low bytes
      vst1q_s8(reinterpret_cast<int8_t*>(y + 4 + 16 * g), qb);
      const int16_t sum = vaddlvq_s8(qb);
      std::memcpy(y + 260 + 2 * g, &sum, 2);
    }
    std::memcpy(y, &d, 4);
  }
}

// ---- entry points -------------------------------------------------------------

float vec_dot_q5_0(int64_t k, const uint8_t* w, const uint8_t* a) { return vec_dot_q5_0_impl<DotMull>(k, w, a); }
float vec_dot_q5_1(int64_t k, const uint8_t* w, const uint8_t* a) { return vec_dot_q5_1_impl<DotMull>(k, w, a); }
float vec_dot_q4_K(int64_t k, const uint8_t* w, const uint8_t* a) { return vec_dot_qk_impl<DotMull, false>(k, w, a); }
float vec_dot_q5_K(int64_t k, const uint8_t* w, const uint8_t* a) { return vec_dot_qk_impl<DotMull, true>(k, w, a); }
float vec_dot_q6_K(int64_t k, const uint8_t* w, const uint8_t* a) { return vec_dot_q6_K_impl<DotMull>(k, w, a); }

#if QK_HAVE_DOTPROD
QK_DOTPROD float vec_dot_q5_0_sdot(int64_t k, const uint8_t* w, const uint8_t* a) {
  return vec_dot_q5_0_impl<DotSdot>(k, w, a);
}
QK_DOTPROD float vec_dot_q5_1_sdot(int64_t k, const uint8_t* w, const uint8_t* a) {
  return vec_dot_q5_1_impl<DotSdot>(k, w, a);
}
QK_DOTPROD float vec_dot_q4_K_sdot(int64_t k, const uint8_t* w, const uint8_t* a) {
  return vec_dot_qk_impl<DotSdot, false>(k, w, a);
}
QK_DOTPROD float vec_dot_q5_K_sdot(int64_t k, const uint8_t* w, const uint8_t* a) {
  return vec_dot_qk_impl<DotSdot, true>(k, w, a);
}
QK_DOTPROD float vec_dot_q6_K_sdot(int64_t k, const uint8_t* w, const uint8_t* a) {
  return vec_dot_q6_K_impl<DotSdot>(k, w, a);
}
#endif

}  // namespace

void fill_neon_kquants(KernelTable& t, bool dotprod) {
  TypeKernels& q50 = t.type[kQ5_0];
  q50.dequantize_row = dequantize_q5_0;
  q50.vec_dot = vec_dot_q5_0;
  q50.vec_dot_f32 = vec_dot_q5_0_f32;

  TypeKernels& q51 = t.type[kQ5_1];
  q51.dequantize_row = dequantize_q5_1;
  q51.vec_dot = vec_dot_q5_1;
  q51.vec_dot_f32 = vec_dot_q5_1_f32;

  TypeKernels& q4k = t.type[kQ4_K];
  q4k.dequantize_row = dequantize_qk<false>;
  q4k.vec_dot = vec_dot_q4_K;
  q4k.vec_dot_f32 = vec_dot_qk_f32<false>;

  TypeKernels& q5k = t.type[kQ5_K];
  q5k.dequantize_row = dequantize_qk<true>;
  q5k.vec_dot = vec_dot_q5_K;
  q5k.vec_dot_f32 = vec_dot_qk_f32<true>;

  TypeKernels& q6k = t.type[kQ6_K];
  q6k.dequantize_row = dequantize_q6_K;
  q6k.vec_dot = vec_dot_q6_K;
  q6k.vec_dot_f32 = vec_dot_q6_K_f32;

  t.type[kQ8_K].quantize_act = quantize_act_q8_K;

#if QK_HAVE_DOTPROD
  if (dotprod) {
    q50.vec_dot = vec_dot_q5_0_sdot;
    q51.vec_dot = vec_dot_q5_1_sdot;
    q4k.vec_dot = vec_dot_q4_K_sdot;
    q5k.vec_dot = vec_dot_q5_K_sdot;
    q6k.vec_dot = vec_dot_q6_K_sdot;
  }
#else
  (void)dotprod;
#endif
}

}  // namespace qk

#endif  // defined(__aarch64__)

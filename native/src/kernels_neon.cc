// AArch64 Advanced SIMD (NEON) kernels, with ARMv8.2 SDOT variants of the
// integer dot products selected at run time.
//
// Exactness contract (see kernels_scalar.cc, the reference):
//  - quantize_row / quantize_act / dequantize_row produce the scalar bytes
//    exactly: the same f32 operations in the same order, each rounded on its
//    own (vmulq then vaddq, never vmlaq/vfmaq, and mul_unfused where a
//    product feeds an add, so this holds even without -ffp-contract=off).
//    Float-to-int conversions use the AArch64 instructions plus the scalar
//    code's explicit rules for the degenerate inputs whose multiplier
//    overflows to inf (subnormal blocks), and narrow by truncation (vmovn)
//    like the scalar integer casts.
//  - vec_dot: exact int32 sums per block, then float accumulation (order
//    differs from scalar only in the float summation).
//  - vec_dot_f32: dequantized weight (bit-exact) times x with FMA into several
//    accumulators.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstring>

#include "fp16.h"
#include "kernels.h"
#include "types.h"

#include "neon_dotprod.h"

#define QK_INLINE inline __attribute__((always_inline))

namespace qk {
namespace {

constexpr int kQ40Bytes = 18, kQ41Bytes = 20, kQ80Bytes = 34, kQ81Bytes = 36;

#include "simd_neon.h"

QK_INLINE void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

QK_INLINE float32x4_t load_f32_u(const uint8_t* p) { return vreinterpretq_f32_u8(vld1q_u8(p)); }

// Low byte of each int32 lane (C's conversion to a narrower integer).
QK_INLINE int8x16_t narrow_i32_to_i8(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const int16x8_t ab = vcombine_s16(vmovn_s32(a), vmovn_s32(b));
  const int16x8_t cd = vcombine_s16(vmovn_s32(c), vmovn_s32(d));
  return vcombine_s8(vmovn_s16(ab), vmovn_s16(cd));
}

// The scalar cast_level: C's float-to-int cast, except that NaN and values
// outside int32 (reached only when a subnormal scale makes 1/d infinite)
// give 0, as llama.cpp's x86 build stores them.
QK_INLINE int32x4_t cast_level_trunc(float32x4_t v) {
  return vandq_s32(vcvtq_s32_f32(v), vreinterpretq_s32_u32(vcaltq_f32(v, vdupq_n_f32(2147483648.f))));
}
// Same on roundf(v): FCVTAS rounds half away from zero. |roundf(v)| < 2^31
// exactly when |v| < 2^31 (floats that large are integers).
QK_INLINE int32x4_t cast_level_round(float32x4_t v) {
  return vandq_s32(vcvtaq_s32_f32(v), vreinterpretq_s32_u32(vcaltq_f32(v, vdupq_n_f32(2147483648.f))));
}

QK_INLINE float32x4_t max_abs_32(const float32x4_t v[8]) {
  float32x4_t a = vmaxq_f32(vabsq_f32(v[0]), vabsq_f32(v[1]));
  float32x4_t b = vmaxq_f32(vabsq_f32(v[2]), vabsq_f32(v[3]));
  float32x4_t c = vmaxq_f32(vabsq_f32(v[4]), vabsq_f32(v[5]));
  float32x4_t d = vmaxq_f32(vabsq_f32(v[6]), vabsq_f32(v[7]));
  return vmaxq_f32(vmaxq_f32(a, b), vmaxq_f32(c, d));
}

QK_INLINE void load_block(const float* x, float32x4_t v[8]) {
  for (int j = 0; j < 8; ++j) v[j] = vld1q_f32(x + 4 * j);
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
  // Not always_inline: it may only be inlined into a dotprod-enabled caller,
  // which is where it is used (through the always_inline templates below).
  QK_DOTPROD static inline int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
};
#endif

// q4_0 block (18 bytes) against q8_0 block (34 bytes): exact sum of (q-8)*y.
template <class D>
QK_INLINE int32_t block_q4_0_q8_0(const uint8_t* w, const uint8_t* a) {
  const uint8x16_t q = vld1q_u8(w + 2);
  const int8x16_t eight = vdupq_n_s8(8);
  const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
  const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
  int32x4_t p = D::dot(vdupq_n_s32(0), lo, vld1q_s8(reinterpret_cast<const int8_t*>(a + 2)));
  p = D::dot(p, hi, vld1q_s8(reinterpret_cast<const int8_t*>(a + 18)));
  return vaddvq_s32(p);
}

template <class D>
QK_INLINE int32_t block_q8_0_q8_0(const uint8_t* w, const uint8_t* a) {
  const int8_t* qx = reinterpret_cast<const int8_t*>(w + 2);
  const int8_t* qy = reinterpret_cast<const int8_t*>(a + 2);
  int32x4_t p = D::dot(vdupq_n_s32(0), vld1q_s8(qx), vld1q_s8(qy));
  p = D::dot(p, vld1q_s8(qx + 16), vld1q_s8(qy + 16));
  return vaddvq_s32(p);
}

// q4_1 block (20 bytes) against q8_1 block (36 bytes): exact sum of q*y.
template <class D>
QK_INLINE int32_t block_q4_1_q8_1(const uint8_t* w, const uint8_t* a) {
  const uint8x16_t q = vld1q_u8(w + 4);
  const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F)));
  const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
  int32x4_t p = D::dot(vdupq_n_s32(0), lo, vld1q_s8(reinterpret_cast<const int8_t*>(a + 4)));
  p = D::dot(p, hi, vld1q_s8(reinterpret_cast<const int8_t*>(a + 20)));
  return vaddvq_s32(p);
}

// Two blocks per iteration, two independent float accumulators.
template <class D>
QK_INLINE float vec_dot_q4_0_impl(int64_t k, const uint8_t* w, const uint8_t* a) {
  const int64_t nb = k / QK32;
  float acc0 = 0.f, acc1 = 0.f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ40Bytes, a += 2 * kQ80Bytes) {
    const int32_t s0 = block_q4_0_q8_0<D>(w, a);
    const int32_t s1 = block_q4_0_q8_0<D>(w + kQ40Bytes, a + kQ80Bytes);
    acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(s0);
    acc1 += (scale_fast(w + kQ40Bytes) * scale_fast(a + kQ80Bytes)) * static_cast<float>(s1);
  }
  if (b < nb) acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(block_q4_0_q8_0<D>(w, a));
  return acc0 + acc1;
}

template <class D>
QK_INLINE float vec_dot_q8_0_impl(int64_t k, const uint8_t* w, const uint8_t* a) {
  const int64_t nb = k / QK32;
  float acc0 = 0.f, acc1 = 0.f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ80Bytes, a += 2 * kQ80Bytes) {
    const int32_t s0 = block_q8_0_q8_0<D>(w, a);
    const int32_t s1 = block_q8_0_q8_0<D>(w + kQ80Bytes, a + kQ80Bytes);
    acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(s0);
    acc1 += (scale_fast(w + kQ80Bytes) * scale_fast(a + kQ80Bytes)) * static_cast<float>(s1);
  }
  if (b < nb) acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(block_q8_0_q8_0<D>(w, a));
  return acc0 + acc1;
}

template <class D>
QK_INLINE float vec_dot_q4_1_impl(int64_t k, const uint8_t* w, const uint8_t* a) {
  const int64_t nb = k / QK32;
  float acc0 = 0.f, acc1 = 0.f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kQ41Bytes, a += 2 * kQ81Bytes) {
    const int32_t s0 = block_q4_1_q8_1<D>(w, a);
    const int32_t s1 = block_q4_1_q8_1<D>(w + kQ41Bytes, a + kQ81Bytes);
    const uint8_t* w1 = w + kQ41Bytes;
    const uint8_t* a1 = a + kQ81Bytes;
    acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(s0) + scale_fast(w + 2) * scale_fast(a + 2);
    acc1 += (scale_fast(w1) * scale_fast(a1)) * static_cast<float>(s1) + scale_fast(w1 + 2) * scale_fast(a1 + 2);
  }
  if (b < nb) {
    acc0 += (scale_fast(w) * scale_fast(a)) * static_cast<float>(block_q4_1_q8_1<D>(w, a)) +
            scale_fast(w + 2) * scale_fast(a + 2);
  }
  return acc0 + acc1;
}

float vec_dot_q4_0(int64_t k, const uint8_t* w, const uint8_t* a) { return vec_dot_q4_0_impl<DotMull>(k, w, a); }
float vec_dot_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) { return vec_dot_q8_0_impl<DotMull>(k, w, a); }
float vec_dot_q4_1(int64_t k, const uint8_t* w, const uint8_t* a) { return vec_dot_q4_1_impl<DotMull>(k, w, a); }

#if QK_HAVE_DOTPROD
QK_DOTPROD float vec_dot_q4_0_sdot(int64_t k, const uint8_t* w, const uint8_t* a) {
  return vec_dot_q4_0_impl<DotSdot>(k, w, a);
}
QK_DOTPROD float vec_dot_q8_0_sdot(int64_t k, const uint8_t* w, const uint8_t* a) {
  return vec_dot_q8_0_impl<DotSdot>(k, w, a);
}
QK_DOTPROD float vec_dot_q4_1_sdot(int64_t k, const uint8_t* w, const uint8_t* a) {
  return vec_dot_q4_1_impl<DotSdot>(k, w, a);
}
#endif

// ---- activation quantizers (q8_0, q8_1) ---------------------------------------
// d = amax/127, id = 127/amax (0 unless finite), q = nearest-even(x*id) (FCVTNS, as the
// scalar nearbyintf + int cast), byte = low byte of q, sum over the int q.

template <bool kWithSum>
void quantize_act_q8(const float* x, uint8_t* y, int64_t k) {
  constexpr int kHead = kWithSum ? 4 : 2;
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kHead + QK32) {
    float32x4_t v[8];
    load_block(x, v);
    const float amax = vmaxvq_f32(max_abs_32(v));
    const float d = amax / 127.f;
    // The shared rule for a multiplier that overflows (amax == 0 or tiny,
    // where the fp16 scale is 0 anyway) or is NaN: levels 0.
    float id = 127.f / amax;
    if (!(id < __builtin_inff())) id = 0.f;
    store_u16(y, f32_to_fp16(d));
    int32x4_t q[8];
    for (int j = 0; j < 8; ++j) q[j] = vcvtnq_s32_f32(vmulq_n_f32(v[j], id));
    vst1q_s8(reinterpret_cast<int8_t*>(y + kHead), narrow_i32_to_i8(q[0], q[1], q[2], q[3]));
    vst1q_s8(reinterpret_cast<int8_t*>(y + kHead + 16), narrow_i32_to_i8(q[4], q[5], q[6], q[7]));
    if (kWithSum) {
      // Wrapping int32 adds: the scalar int sum, whatever the order.
      const int32x4_t s = vaddq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])),
                                    vaddq_s32(vaddq_s32(q[4], q[5]), vaddq_s32(q[6], q[7])));
      const int32_t sum = static_cast<int32_t>(vaddvq_u32(vreinterpretq_u32_s32(s)));
      store_u16(y + 2, f32_to_fp16(static_cast<float>(sum) * d));
    }
  }
}

// ---- weight quantizers ------------------------------------------------------

// q8_0: amax, d = amax/127, id = d ? 1/d : 0, q = roundf(x*id) (FCVTAS: ties away).
void quantize_q8_0(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kQ80Bytes) {
    float32x4_t v[8];
    load_block(x, v);
    const float amax = vmaxvq_f32(max_abs_32(v));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    store_u16(y, f32_to_fp16(d));
    int32x4_t q[8];
    for (int j = 0; j < 8; ++j) q[j] = cast_level_round(vmulq_n_f32(v[j], id));
    vst1q_s8(reinterpret_cast<int8_t*>(y + 2), narrow_i32_to_i8(q[0], q[1], q[2], q[3]));
    vst1q_s8(reinterpret_cast<int8_t*>(y + 18), narrow_i32_to_i8(q[4], q[5], q[6], q[7]));
  }
}

// Packs levels (int32 lanes; elements 0-15 in q[0..3], 16-31 in q[4..7]) as
// low byte of (q_j | q_{j+16} << 4), the scalar expression.
QK_INLINE void pack_nibbles(const int32x4_t q[8], uint8_t* out) {
  int32x4_t p[4];
  for (int j = 0; j < 4; ++j) p[j] = vorrq_s32(q[j], vshlq_n_s32(q[j + 4], 4));
  vst1q_u8(out, vreinterpretq_u8_s8(narrow_i32_to_i8(p[0], p[1], p[2], p[3])));
}

// q4_0: m = signed first element of largest |x| (strict >, from 0), d = m/-8,
// id = d ? 1/d : 0, q = min(15, trunc(x*id + 8.5)).
void quantize_q4_0(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kQ40Bytes) {
    float32x4_t v[8];
    load_block(x, v);
    const float amax = vmaxvq_f32(max_abs_32(v));
    float m = 0.f;  // stays +0 when every |x| is 0, like the scalar scan
    if (amax > 0.f) {
      for (int i = 0; i < QK32; ++i) {
        if (__builtin_fabsf(x[i]) == amax) { m = x[i]; break; }
      }
    }
    const float d = m / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    store_u16(y, f32_to_fp16(d));
    const float32x4_t half8 = vdupq_n_f32(8.5f);
    const int32x4_t fifteen = vdupq_n_s32(15);
    int32x4_t q[8];
    for (int j = 0; j < 8; ++j) {
      const float32x4_t t = vaddq_f32(mul_unfused(v[j], id), half8);
      q[j] = vminq_s32(cast_level_trunc(t), fifteen);
    }
    pack_nibbles(q, y + 2);
  }
}

// The value of the first element equal (==) to r: the scalar min/max scans
// keep the first of equal candidates, which only matters for +0 versus -0.
QK_INLINE float first_equal(const float* x, float r) {
  if (r != 0.f) return r;
  for (int i = 0; i < QK32; ++i) {
    if (x[i] == r) return x[i];
  }
  return r;
}

// q4_1: min/max (scans from +-FLT_MAX), d = (max-min)/15, id = d ? 1/d : 0,
// q = min(15, trunc((x-min)*id + 0.5)).
void quantize_q4_1(const float* x, uint8_t* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += QK32, y += kQ41Bytes) {
    float32x4_t v[8];
    load_block(x, v);
    float32x4_t mn = vdupq_n_f32(3.402823466e38f), mx = vdupq_n_f32(-3.402823466e38f);
    for (int j = 0; j < 8; ++j) {
      mn = vminq_f32(mn, v[j]);
      mx = vmaxq_f32(mx, v[j]);
    }
    const float fmn = first_equal(x, vminvq_f32(mn));
    const float fmx = first_equal(x, vmaxvq_f32(mx));
    const float d = (fmx - fmn) / 15.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    store_u16(y, f32_to_fp16(d));
    store_u16(y + 2, f32_to_fp16(fmn));
    const float32x4_t vmn = vdupq_n_f32(fmn);
    const float32x4_t half = vdupq_n_f32(0.5f);
    const int32x4_t fifteen = vdupq_n_s32(15);
    int32x4_t q[8];
    for (int j = 0; j < 8; ++j) {
      const float32x4_t t = vaddq_f32(mul_unfused(vsubq_f32(v[j], vmn), id), half);
      q[j] = vminq_s32(cast_level_trunc(t), fifteen);
    }
    pack_nibbles(q, y + 4);
  }
}

// f16: FCVTN rounds to nearest even like the software encoder; NaN lanes get
// the software encoder's sign | 0x7E00.
QK_INLINE uint16x4_t f32x4_to_f16_bits(float32x4_t v) {
  const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(v));
  const uint32x4_t nan = vmvnq_u32(vceqq_f32(v, v));
  const uint16x4_t fix = vorr_u16(vand_u16(vshrn_n_u32(vreinterpretq_u32_f32(v), 16), vdup_n_u16(0x8000)),
                                  vdup_n_u16(0x7E00));
  return vbsl_u16(vmovn_u32(nan), fix, h);
}

void quantize_f16(const float* x, uint8_t* y, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const uint16x8_t h = vcombine_u16(f32x4_to_f16_bits(vld1q_f32(x + i)), f32x4_to_f16_bits(vld1q_f32(x + i + 4)));
    vst1q_u8(y + 2 * i, vreinterpretq_u8_u16(h));
  }
  for (; i < k; ++i) store_u16(y + 2 * i, f32_to_fp16(x[i]));
}

// bf16: (u + 0x7FFF + ((u >> 16) & 1)) >> 16, NaN: (u >> 16) | 0x40.
QK_INLINE uint16x4_t f32x4_to_bf16_bits(float32x4_t v) {
  const uint32x4_t u = vreinterpretq_u32_f32(v);
  const uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
  const uint16x4_t r = vshrn_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7FFF)), odd), 16);
  const uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7FFFFFFF)), vdupq_n_u32(0x7F800000));
  const uint16x4_t fix = vorr_u16(vshrn_n_u32(u, 16), vdup_n_u16(0x40));
  return vbsl_u16(vmovn_u32(nan), fix, r);
}

void quantize_bf16(const float* x, uint8_t* y, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const uint16x8_t h = vcombine_u16(f32x4_to_bf16_bits(vld1q_f32(x + i)), f32x4_to_bf16_bits(vld1q_f32(x + i + 4)));
    vst1q_u8(y + 2 * i, vreinterpretq_u8_u16(h));
  }
  for (; i < k; ++i) store_u16(y + 2 * i, f32_to_bf16(x[i]));
}

// ---- dequantizers -----------------------------------------------------------

// fp16 bits -> f32 as the software decoder: FCVTL for everything but NaN
// (FCVTL would quiet a signalling NaN; the software decoder keeps its bits).
QK_INLINE float32x4_t f16_bits_to_f32(uint16x4_t h) {
  const float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
  const uint32x4_t w = vmovl_u16(h);
  const uint32x4_t nan = vandq_u32(vceqq_u32(vandq_u32(w, vdupq_n_u32(0x7C00)), vdupq_n_u32(0x7C00)),
                                   vtstq_u32(w, vdupq_n_u32(0x03FF)));
  const uint32x4_t bits = vorrq_u32(vorrq_u32(vshlq_n_u32(vandq_u32(w, vdupq_n_u32(0x8000)), 16), vdupq_n_u32(0x7F800000)),
                                    vshlq_n_u32(vandq_u32(w, vdupq_n_u32(0x03FF)), 13));
  return vreinterpretq_f32_u32(vbslq_u32(nan, bits, vreinterpretq_u32_f32(f)));
}

void dequantize_f16(const uint8_t* x, float* y, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(x + 2 * i));
    vst1q_f32(y + i, f16_bits_to_f32(vget_low_u16(h)));
    vst1q_f32(y + i + 4, f16_bits_to_f32(vget_high_u16(h)));
  }
  for (; i < k; ++i) y[i] = fp16_to_f32(load_u16(x + 2 * i));
}

void dequantize_bf16(const uint8_t* x, float* y, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(x + 2 * i));
    vst1q_f32(y + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
    vst1q_f32(y + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
  }
  for (; i < k; ++i) y[i] = bf16_to_f32(load_u16(x + 2 * i));
}

// Levels of one q4 block as int8: lo = elements 0-15, hi = 16-31.
QK_INLINE void unpack_q4(const uint8_t* qs, int8x16_t* lo, int8x16_t* hi, bool minus8) {
  const uint8x16_t q = vld1q_u8(qs);
  int8x16_t l = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F)));
  int8x16_t h = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
  if (minus8) {
    l = vsubq_s8(l, vdupq_n_s8(8));
    h = vsubq_s8(h, vdupq_n_s8(8));
  }
  *lo = l;
  *hi = h;
}

// Dequantized block of q4_0 / q4_1 / q8_0 into 8 float vectors (elements in
// order), each value exactly the scalar f32(float(q) * d) (+ m for q4_1).
QK_INLINE void deq_block_q4_0(const uint8_t* w, float d, float32x4_t out[8]) {
  int8x16_t lo, hi;
  unpack_q4(w + 2, &lo, &hi, true);
  i8_to_f32(lo, out);
  i8_to_f32(hi, out + 4);
  for (int j = 0; j < 8; ++j) out[j] = vmulq_n_f32(out[j], d);
}

QK_INLINE void deq_block_q4_1(const uint8_t* w, float d, float m, float32x4_t out[8]) {
  int8x16_t lo, hi;
  unpack_q4(w + 4, &lo, &hi, false);
  i8_to_f32(lo, out);
  i8_to_f32(hi, out + 4);
  const float32x4_t vm = vdupq_n_f32(m);
  for (int j = 0; j < 8; ++j) out[j] = vaddq_f32(mul_unfused(out[j], d), vm);
}

QK_INLINE void deq_block_q8_0(const uint8_t* w, float d, float32x4_t out[8]) {
  i8_to_f32(vld1q_s8(reinterpret_cast<const int8_t*>(w + 2)), out);
  i8_to_f32(vld1q_s8(reinterpret_cast<const int8_t*>(w + 18)), out + 4);
  for (int j = 0; j < 8; ++j) out[j] = vmulq_n_f32(out[j], d);
}

void dequantize_q4_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ40Bytes, y += QK32) {
    float32x4_t v[8];
    deq_block_q4_0(x, scale_exact(x), v);
    store_block(y, v);
  }
}

void dequantize_q4_1(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ41Bytes, y += QK32) {
    float32x4_t v[8];
    deq_block_q4_1(x, scale_exact(x), scale_exact(x + 2), v);
    store_block(y, v);
  }
}

void dequantize_q8_0(const uint8_t* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK32; ++b, x += kQ80Bytes, y += QK32) {
    float32x4_t v[8];
    deq_block_q8_0(x, scale_exact(x), v);
    store_block(y, v);
  }
}

// ---- f32-precision dot products ---------------------------------------------

float vec_dot_f32_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    a0 = vfmaq_f32(a0, load_f32_u(w + 4 * i), vld1q_f32(x + i));
    a1 = vfmaq_f32(a1, load_f32_u(w + 4 * i + 16), vld1q_f32(x + i + 4));
    a2 = vfmaq_f32(a2, load_f32_u(w + 4 * i + 32), vld1q_f32(x + i + 8));
    a3 = vfmaq_f32(a3, load_f32_u(w + 4 * i + 48), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= k; i += 4) a0 = vfmaq_f32(a0, load_f32_u(w + 4 * i), vld1q_f32(x + i));
  float tail = 0.f;
  for (; i < k; ++i) {
    float wv;
    std::memcpy(&wv, w + 4 * i, 4);
    tail += wv * x[i];
  }
  return hsum4(a0, a1, a2, a3) + tail;
}

float vec_dot_f16_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    const float16x8_t h0 = vreinterpretq_f16_u8(vld1q_u8(w + 2 * i));
    const float16x8_t h1 = vreinterpretq_f16_u8(vld1q_u8(w + 2 * i + 16));
    a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(h0)), vld1q_f32(x + i));
    a1 = vfmaq_f32(a1, vcvt_high_f32_f16(h0), vld1q_f32(x + i + 4));
    a2 = vfmaq_f32(a2, vcvt_f32_f16(vget_low_f16(h1)), vld1q_f32(x + i + 8));
    a3 = vfmaq_f32(a3, vcvt_high_f32_f16(h1), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= k; i += 4) {
    a0 = vfmaq_f32(a0, vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(w + 2 * i))), vld1q_f32(x + i));
  }
  float tail = 0.f;
  for (; i < k; ++i) tail += scale_fast(w + 2 * i) * x[i];
  return hsum4(a0, a1, a2, a3) + tail;
}

float vec_dot_bf16_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    const uint16x8_t h0 = vreinterpretq_u16_u8(vld1q_u8(w + 2 * i));
    const uint16x8_t h1 = vreinterpretq_u16_u8(vld1q_u8(w + 2 * i + 16));
    a0 = vfmaq_f32(a0, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h0), 16)), vld1q_f32(x + i));
    a1 = vfmaq_f32(a1, vreinterpretq_f32_u32(vshll_high_n_u16(h0, 16)), vld1q_f32(x + i + 4));
    a2 = vfmaq_f32(a2, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h1), 16)), vld1q_f32(x + i + 8));
    a3 = vfmaq_f32(a3, vreinterpretq_f32_u32(vshll_high_n_u16(h1, 16)), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= k; i += 4) {
    const uint16x4_t h = vreinterpret_u16_u8(vld1_u8(w + 2 * i));
    a0 = vfmaq_f32(a0, vreinterpretq_f32_u32(vshll_n_u16(h, 16)), vld1q_f32(x + i));
  }
  float tail = 0.f;
  for (; i < k; ++i) tail += bf16_to_f32(load_u16(w + 2 * i)) * x[i];
  return hsum4(a0, a1, a2, a3) + tail;
}

// One dequantized block (8 vectors) times x into four accumulators.
QK_INLINE void fma_block(const float32x4_t wv[8], const float* x, float32x4_t acc[4]) {
  for (int j = 0; j < 8; ++j) acc[j & 3] = vfmaq_f32(acc[j & 3], wv[j], vld1q_f32(x + 4 * j));
}

float vec_dot_q4_0_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t acc[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ40Bytes, x += QK32) {
    float32x4_t v[8];
    deq_block_q4_0(w, scale_fast(w), v);
    fma_block(v, x, acc);
  }
  return hsum4(acc[0], acc[1], acc[2], acc[3]);
}

float vec_dot_q4_1_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t acc[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ41Bytes, x += QK32) {
    float32x4_t v[8];
    deq_block_q4_1(w, scale_fast(w), scale_fast(w + 2), v);
    fma_block(v, x, acc);
  }
  return hsum4(acc[0], acc[1], acc[2], acc[3]);
}

float vec_dot_q8_0_f32(int64_t k, const uint8_t* w, const float* x) {
  float32x4_t acc[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  for (int64_t b = 0; b < k / QK32; ++b, w += kQ80Bytes, x += QK32) {
    float32x4_t v[8];
    deq_block_q8_0(w, scale_fast(w), v);
    fma_block(v, x, acc);
  }
  return hsum4(acc[0], acc[1], acc[2], acc[3]);
}

}  // namespace

void fill_neon(KernelTable& t, bool dotprod) {
  t.isa = kIsaNeon;

  t.type[kF32].vec_dot_f32 = vec_dot_f32_f32;

  t.type[kF16].quantize_row = quantize_f16;
  t.type[kF16].dequantize_row = dequantize_f16;
  t.type[kF16].vec_dot_f32 = vec_dot_f16_f32;

  t.type[kBF16].quantize_row = quantize_bf16;
  t.type[kBF16].dequantize_row = dequantize_bf16;
  t.type[kBF16].vec_dot_f32 = vec_dot_bf16_f32;

  TypeKernels& q40 = t.type[kQ4_0];
  q40.quantize_row = quantize_q4_0;
  q40.dequantize_row = dequantize_q4_0;
  q40.vec_dot = vec_dot_q4_0;
  q40.vec_dot_f32 = vec_dot_q4_0_f32;

  TypeKernels& q41 = t.type[kQ4_1];
  q41.quantize_row = quantize_q4_1;
  q41.dequantize_row = dequantize_q4_1;
  q41.vec_dot = vec_dot_q4_1;
  q41.vec_dot_f32 = vec_dot_q4_1_f32;

  TypeKernels& q80 = t.type[kQ8_0];
  q80.quantize_row = quantize_q8_0;
  q80.quantize_act = quantize_act_q8<false>;
  q80.dequantize_row = dequantize_q8_0;
  q80.vec_dot = vec_dot_q8_0;
  q80.vec_dot_f32 = vec_dot_q8_0_f32;

  t.type[kQ8_1].quantize_act = quantize_act_q8<true>;

#if QK_HAVE_DOTPROD
  if (dotprod) {
    q40.vec_dot = vec_dot_q4_0_sdot;
    q41.vec_dot = vec_dot_q4_1_sdot;
    q80.vec_dot = vec_dot_q8_0_sdot;
  }
#else
  (void)dotprod;
#endif
}

}  // namespace qk

#endif  // defined(__aarch64__)

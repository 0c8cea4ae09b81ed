// SIMD helpers shared by the NEON kernel files. Include it only
// inside `namespace qk { namespace {`, after the file's target pragma (or
// clang attribute), so that every function here is compiled for that ISA.
#pragma once

QK_INLINE uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Scales for the exact paths: the same software decode as the scalar code
// (bit-identical values, signalling NaNs included).
QK_INLINE float scale_exact(const uint8_t* p) { return fp16_to_f32(load_u16(p)); }

// Scales for the dot products (tolerance-checked): one FCVT, equal to the
// software decode for every non-NaN pattern.
QK_INLINE float scale_fast(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return static_cast<float>(h);
}

// x * s rounded to f32 on its own: the empty asm hides the product from the
// optimizer, so it cannot be contracted with a following add into an FMA even
// when the file is built without -ffp-contract=off (GCC's vmulq/vaddq are
// plain vector operators and would otherwise fuse).
QK_INLINE float32x4_t mul_unfused(float32x4_t x, float s) {
  float32x4_t p = vmulq_n_f32(x, s);
  __asm__("" : "+w"(p));
  return p;
}

// int8x16 -> four float32x4 (elements 0-3, 4-7, 8-11, 12-15).
QK_INLINE void i8_to_f32(int8x16_t v, float32x4_t out[4]) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(v));
  const int16x8_t hi = vmovl_high_s8(v);
  out[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
  out[1] = vcvtq_f32_s32(vmovl_high_s16(lo));
  out[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
  out[3] = vcvtq_f32_s32(vmovl_high_s16(hi));
}

QK_INLINE void store_block(float* y, const float32x4_t v[8]) {
  for (int j = 0; j < 8; ++j) vst1q_f32(y + 4 * j, v[j]);
}

QK_INLINE float hsum4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d) {
  return vaddvq_f32(vaddq_f32(vaddq_f32(a, b), vaddq_f32(c, d)));
}

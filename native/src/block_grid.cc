// The block grids and the int4 group grid (block_grid.h).
#include "block_grid.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "fp16.h"
#include "types.h"

namespace qk {
namespace calib {

double js_round(double x) {
  const double f = std::floor(x);
  return x - f >= 0.5 ? f + 1 : f;
}

// ---- the int4 grid (lib/js/int4.ts) ----

void int4_params(const float* v, int64_t count, bool sym, Int4Params* out) {
  double lo = 0, hi = 0;
  for (int64_t e = 0; e < count; ++e) {
    if (v[e] < lo) lo = v[e];
    if (v[e] > hi) hi = v[e];
  }
  if (sym) {
    hi = std::max(-lo, hi);
    lo = -hi;
  }
  if (lo == 0 && hi == 0) {
    lo = -1;
    hi = 1;
  }
  // as f32ToF16Bits: the double rounded to f32 first
  out->bits = f32_to_fp16(static_cast<float>((hi - lo) / 15));
  out->scale = fp16_to_f32(out->bits);
  out->zero = sym ? 8 : static_cast<int>(std::min(15.0, std::max(0.0, js_round(-lo / out->scale))));
}

int int4_level(double w, const Int4Params& p) {
  if (p.scale == 0) return p.zero;
  const double q = js_round(w / p.scale) + p.zero;
  return q < 0 ? 0 : q > 15 ? 15 : static_cast<int>(q);
}

void write_int4_scales(uint8_t* dst, int64_t count, bool sym, const Int4Params& p) {
  const int bb = sym ? 18 : 34;
  for (int64_t b = 0; b < count / 32; ++b) {
    uint8_t* o = dst + b * bb;
    o[0] = static_cast<uint8_t>(p.bits & 0xff);
    o[1] = static_cast<uint8_t>(p.bits >> 8);
    std::memset(o + 2, sym ? 0x88 : 0, static_cast<size_t>(bb - 2));
  }
}

void quantize_int4_row(const float* src, uint8_t* dst, int64_t k, int64_t group, bool sym) {
  const int bb = sym ? 18 : 34;
  Int4Params p;
  for (int64_t c0 = 0; c0 < k; c0 += group) {
    int4_params(src + c0, group, sym, &p);
    uint8_t* go = dst + (c0 / 32) * bb;
    write_int4_scales(go, group, sym, p);
    for (int64_t e = 0; e < group; ++e) {
      const int q = int4_level(src[c0 + e], p);
      uint8_t* bo = go + (e >> 5) * bb;
      const int l = static_cast<int>(e & 31);
      if (sym) {
        uint8_t& b = bo[2 + (l & 15)];
        b = l < 16 ? static_cast<uint8_t>((b & 0xf0) | q) : static_cast<uint8_t>((b & 0x0f) | (q << 4));
      } else {
        bo[2 + l] = static_cast<uint8_t>((q - p.zero) & 0xff);
      }
    }
  }
}

// ---- block grids (lib/js/grid.ts) ----

namespace {

inline uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline double f16(const uint8_t* p) { return fp16_to_f32(u16(p)); }

void fill(Grid& g, int from, int to, double a, double b, int c, int lo, int hi) {
  for (int e = from; e < to; ++e) {
    g.a[e] = a;
    g.b[e] = b;
    g.c[e] = c;
    g.lo[e] = lo;
    g.hi[e] = hi;
  }
}

int scale_min_k4(int j, const uint8_t* q) {
  if (j < 4) return (q[j] & 63) | ((q[j + 4] & 63) << 8);
  const int sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
  const int m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  return sc | (m << 8);
}

}  // namespace

void read_grid(int type, const uint8_t* o, Grid& g) {
  switch (type) {
    case kQ4_0: return fill(g, 0, 32, f16(o), 0, 8, 0, 15);
    case kQ4_1: return fill(g, 0, 32, f16(o), -f16(o + 2), 0, 0, 15);
    case kQ5_0: return fill(g, 0, 32, f16(o), 0, 16, 0, 31);
    case kQ5_1: return fill(g, 0, 32, f16(o), -f16(o + 2), 0, 0, 31);
    case kQ8_0: return fill(g, 0, 32, f16(o), 0, 0, -128, 127);
    case kQ4_K:
    case kQ5_K: {
      const float d = static_cast<float>(f16(o)), dmin = static_cast<float>(f16(o + 2));
      const int top = type == kQ4_K ? 15 : 31;
      for (int j = 0; j < 8; ++j) {
        const int sm = scale_min_k4(j, o + 4);
        fill(g, 32 * j, 32 * j + 32, d * static_cast<float>(sm & 0xff), dmin * static_cast<float>(sm >> 8), 0, 0, top);
      }
      return;
    }
    case kQ6_K: {
      const float d = static_cast<float>(f16(o + 208));
      for (int j = 0; j < 16; ++j) fill(g, 16 * j, 16 * j + 16, d * static_cast<float>(static_cast<int8_t>(o[192 + j])), 0, 32, 0, 63);
      return;
    }
    default: return;
  }
}

void write_levels(int type, uint8_t* o, const int8_t* q) {
  switch (type) {
    case kQ4_0:
    case kQ4_1: {
      uint8_t* s = o + (type == kQ4_0 ? 2 : 4);
      for (int j = 0; j < 16; ++j) s[j] = static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
      return;
    }
    case kQ5_0:
    case kQ5_1: {
      uint8_t* h = o + (type == kQ5_0 ? 2 : 4);
      uint32_t qh = 0;
      for (int j = 0; j < 16; ++j) {
        h[4 + j] = static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
        qh |= (static_cast<uint32_t>((q[j] >> 4) & 1) << j) | (static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16));
      }
      h[0] = static_cast<uint8_t>(qh);
      h[1] = static_cast<uint8_t>(qh >> 8);
      h[2] = static_cast<uint8_t>(qh >> 16);
      h[3] = static_cast<uint8_t>(qh >> 24);
      return;
    }
    case kQ8_0:
      for (int j = 0; j < 32; ++j) o[2 + j] = static_cast<uint8_t>(q[j]);
      return;
    case kQ4_K:
    case kQ5_K: {
      uint8_t* qs = o + (type == kQ4_K ? 16 : 48);
      for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4));
      }
      if (type == kQ5_K) {
        for (int l = 0; l < 32; ++l) {
          int h = 0;
          for (int j = 0; j < 8; ++j) h |= ((q[32 * j + l] >> 4) & 1) << j;
          o[16 + l] = static_cast<uint8_t>(h);
        }
      }
      return;
    }
    case kQ6_K:
      for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
          const int e = 128 * h + l;
          const int q1 = q[e], q2 = q[e + 32], q3 = q[e + 64], q4 = q[e + 96];
          o[64 * h + l] = static_cast<uint8_t>((q1 & 15) | ((q3 & 15) << 4));
          o[64 * h + 32 + l] = static_cast<uint8_t>((q2 & 15) | ((q4 & 15) << 4));
          o[128 + 32 * h + l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
      }
      return;
    default: return;
  }
}

}  // namespace calib
}  // namespace qk

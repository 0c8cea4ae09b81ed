// The grids GPTQ and AWQ round to (gptq.cc, awq.cc): the levels of each ggml
// block type as its scales leave them (lib/js/grid.ts), and GPTQ's int4 group
// grid (lib/js/int4.ts), with the reference's rounding (JavaScript's Math.round).
#pragma once
#include <algorithm>
#include <cstdint>

namespace qk {
namespace calib {

// JavaScript's Math.round: the nearest integer, halves toward +infinity.
double js_round(double x);

// ---- the int4 group grid (lib/js/int4.ts) ----
struct Int4Params {
  uint16_t bits = 0;  // fp16 bits of the scale
  double scale = 0;
  int zero = 0;  // the level standing for zero: 8 when symmetric
};
void int4_params(const float* v, int64_t count, bool sym, Int4Params* out);
int int4_level(double w, const Int4Params& p);
// The scale of the count/32 storage blocks at dst (q4_0 when sym, else q8_0), levels set to zero.
void write_int4_scales(uint8_t* dst, int64_t count, bool sym, const Int4Params& p);
// Round-to-nearest of one row of k floats (k a multiple of group) into storage blocks.
void quantize_int4_row(const float* src, uint8_t* dst, int64_t k, int64_t group, bool sym);

// ---- block grids (lib/js/grid.ts) ----
// Element e of a block dequantizes to a[e] * (q - c[e]) - b[e], q in [lo[e], hi[e]].
struct Grid {
  double a[256], b[256];
  int c[256], lo[256], hi[256];
};

// The grid of the block at o of a calibrated type (q4_0, q4_1, q5_0, q5_1,
// q8_0, q4_K, q5_K, q6_K); other types leave g as it was.
void read_grid(int type, const uint8_t* o, Grid& g);
// Replaces the levels of the block at o, leaving its scales (levels in the grid's range).
void write_levels(int type, uint8_t* o, const int8_t* q);

// One 16-element segment's grid: every type's parameters are shared by at
// least 16 consecutive columns (q6_K's sub-blocks; 32 or more elsewhere).
constexpr int kSeg = 16;
struct Seg {
  double a, b;
  int16_t c, lo, hi;
};

inline int nearest_level(const Seg& g, double w) {
  if (g.a == 0) return std::min<int>(std::max<int>(g.c, g.lo), g.hi);
  const double q = js_round((w + g.b) / g.a + g.c);
  return q < g.lo ? g.lo : q > g.hi ? g.hi : static_cast<int>(q);
}

inline double level_value(const Seg& g, int q) { return g.a * (q - g.c) - g.b; }

}  // namespace calib
}  // namespace qk

#include "interleave.h"

#include <cstring>

namespace qk {

namespace {
constexpr int kScaleBytes = 2;
}

bool has_interleaved_layout(int type) { return type == kQ4_0; }

size_t interleaved_bytes(const TypeTraits& t, int64_t rows, int64_t cols) {
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  return static_cast<size_t>(tiles) * kTileRows * row_bytes(t, cols);
}

void interleave_tile(const TypeTraits& t, const uint8_t* rows, size_t rb, int nrows, int64_t cols, uint8_t* tile) {
  const int64_t nb = cols / t.block_size;
  const int bb = t.block_bytes, groups = (bb - kScaleBytes) / 4;
  std::memset(tile, 0, static_cast<size_t>(nb) * kTileRows * bb);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* tb = tile + b * kTileRows * bb;
    for (int r = 0; r < nrows; ++r) {
      const uint8_t* src = rows + r * rb + b * bb;
      std::memcpy(tb + kScaleBytes * r, src, kScaleBytes);
      for (int g = 0; g < groups; ++g) std::memcpy(tb + kTileRows * kScaleBytes + g * 4 * kTileRows + 4 * r, src + kScaleBytes + 4 * g, 4);
    }
  }
}

void deinterleave_tile(const TypeTraits& t, const uint8_t* tile, int64_t cols, uint8_t* rows, size_t rb, int nrows) {
  const int64_t nb = cols / t.block_size;
  const int bb = t.block_bytes, groups = (bb - kScaleBytes) / 4;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* tb = tile + b * kTileRows * bb;
    for (int r = 0; r < nrows; ++r) {
      uint8_t* dst = rows + r * rb + b * bb;
      std::memcpy(dst, tb + kScaleBytes * r, kScaleBytes);
      for (int g = 0; g < groups; ++g) std::memcpy(dst + kScaleBytes + 4 * g, tb + kTileRows * kScaleBytes + g * 4 * kTileRows + 4 * r, 4);
    }
  }
}

}  // namespace qk

#include "interleave.h"

#include <algorithm>
#include <cstring>

namespace qk {

namespace {
constexpr int kScaleBytes = 2;
}

bool has_interleaved_layout(int type) { return type == kQ4_0 || type == kQ8_0; }

size_t interleaved_bytes(const TypeTraits& t, int64_t rows, int64_t cols) {
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  return static_cast<size_t>(tiles) * kTileRows * row_bytes(t, cols);
}

namespace {

// Byte offsets in a tile of block b's 16 scales and of its payload. Blocks
// go in pairs, [scales b | scales b+1 | payload b | payload b+1], so that
// with q4_0 (2 * 288 = 9 cache lines) every payload starts on a cache line
// when the tile does; an odd last block stands alone.
struct TilePlace {
  size_t scales, payload;
};

TilePlace place(int64_t b, int64_t nb, int bb) {
  const int64_t pair = b / 2, in_pair = b % 2;
  const int64_t count = std::min<int64_t>(2, nb - 2 * pair);
  const size_t start = static_cast<size_t>(pair) * 2 * kTileRows * bb;
  const size_t sb = kTileRows * kScaleBytes, pb = kTileRows * static_cast<size_t>(bb - kScaleBytes);
  return {start + in_pair * sb, start + count * sb + in_pair * pb};
}

}  // namespace

namespace {

// The whole-tile case with the block size known at compile time: plain
// fixed-size moves, no memset (matmul tiles ggml matrices on the fly with it).
template <int kBB>
void interleave_full_tile(const uint8_t* rows, size_t rb, int64_t nb, uint8_t* tile) {
  constexpr int kGroups = (kBB - kScaleBytes) / 4;
  constexpr size_t kSB = kTileRows * kScaleBytes, kPB = kTileRows * (kBB - kScaleBytes);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t pair = b / 2, in_pair = b % 2;
    const int64_t count = nb - 2 * pair < 2 ? 1 : 2;
    uint8_t* ts = tile + static_cast<size_t>(pair) * 2 * kTileRows * kBB + in_pair * kSB;
    uint8_t* tp = tile + static_cast<size_t>(pair) * 2 * kTileRows * kBB + count * kSB + in_pair * kPB;
    const uint8_t* src = rows + b * kBB;
    for (int r = 0; r < kTileRows; ++r, src += rb) {
      std::memcpy(ts + kScaleBytes * r, src, kScaleBytes);
      for (int g = 0; g < kGroups; ++g) std::memcpy(tp + g * 4 * kTileRows + 4 * r, src + kScaleBytes + 4 * g, 4);
    }
  }
}

}  // namespace

void interleave_tile(const TypeTraits& t, const uint8_t* rows, size_t rb, int nrows, int64_t cols, uint8_t* tile) {
  const int64_t nb = cols / t.block_size;
  const int bb = t.block_bytes, groups = (bb - kScaleBytes) / 4;
  if (nrows == kTileRows && bb == 18) return interleave_full_tile<18>(rows, rb, nb, tile);
  if (nrows == kTileRows && bb == 34) return interleave_full_tile<34>(rows, rb, nb, tile);
  std::memset(tile, 0, static_cast<size_t>(nb) * kTileRows * bb);
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = place(b, nb, bb);
    for (int r = 0; r < nrows; ++r) {
      const uint8_t* src = rows + r * rb + b * bb;
      std::memcpy(tile + at.scales + kScaleBytes * r, src, kScaleBytes);
      for (int g = 0; g < groups; ++g) std::memcpy(tile + at.payload + g * 4 * kTileRows + 4 * r, src + kScaleBytes + 4 * g, 4);
    }
  }
}

void deinterleave_tile(const TypeTraits& t, const uint8_t* tile, int64_t cols, uint8_t* rows, size_t rb, int nrows) {
  const int64_t nb = cols / t.block_size;
  const int bb = t.block_bytes, groups = (bb - kScaleBytes) / 4;
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = place(b, nb, bb);
    for (int r = 0; r < nrows; ++r) {
      uint8_t* dst = rows + r * rb + b * bb;
      std::memcpy(dst, tile + at.scales + kScaleBytes * r, kScaleBytes);
      for (int g = 0; g < groups; ++g) std::memcpy(dst + kScaleBytes + 4 * g, tile + at.payload + g * 4 * kTileRows + 4 * r, 4);
    }
  }
}

}  // namespace qk

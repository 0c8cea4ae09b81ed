#include "interleave.h"

#include <cstring>

namespace qk {

bool has_interleaved_layout(int type) { return type == kQ4_0 || type == kQ8_0; }

size_t interleaved_bytes(const TypeTraits& t, int64_t rows, int64_t cols) {
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  return static_cast<size_t>(tiles) * kTileRows * row_bytes(t, cols);
}

namespace {

// Moves each piece of nrows rows between the ggml layout and a tile, one way
// or the other. kBB > 0 fixes the block size at compile time, so that the
// copies become plain moves (matmul tiles ggml matrices on the fly with it).
template <bool kToTile, int kBB>
void copy_tile(int bb_runtime, const uint8_t* from, uint8_t* to, size_t rb, int nrows, int64_t nb) {
  const int bb = kBB > 0 ? kBB : bb_runtime, groups = (bb - kTileScaleBytes) / 4;
  for (int64_t b = 0; b < nb; ++b) {
    const TilePlace at = tile_place(b, nb, bb);
    for (int r = 0; r < nrows; ++r) {
      const size_t row = r * rb + static_cast<size_t>(b) * bb;
      const size_t ts = at.scales + kTileScaleBytes * r;
      if (kToTile) std::memcpy(to + ts, from + row, kTileScaleBytes);
      else std::memcpy(to + row, from + ts, kTileScaleBytes);
      for (int g = 0; g < groups; ++g) {
        const size_t tp = at.payload + g * 4 * kTileRows + 4 * r, rp = row + kTileScaleBytes + 4 * g;
        if (kToTile) std::memcpy(to + tp, from + rp, 4);
        else std::memcpy(to + rp, from + tp, 4);
      }
    }
  }
}

}  // namespace

void interleave_tile(const TypeTraits& t, const uint8_t* rows, size_t rb, int nrows, int64_t cols, uint8_t* tile) {
  const int64_t nb = cols / t.block_size;
  if (nrows == kTileRows && t.block_bytes == 18) return copy_tile<true, 18>(18, rows, tile, rb, nrows, nb);
  if (nrows == kTileRows && t.block_bytes == 34) return copy_tile<true, 34>(34, rows, tile, rb, nrows, nb);
  std::memset(tile, 0, static_cast<size_t>(nb) * kTileRows * t.block_bytes);  // the padding rows
  copy_tile<true, 0>(t.block_bytes, rows, tile, rb, nrows, nb);
}

void deinterleave_tile(const TypeTraits& t, const uint8_t* tile, int64_t cols, uint8_t* rows, size_t rb, int nrows) {
  copy_tile<false, 0>(t.block_bytes, tile, rows, rb, nrows, cols / t.block_size);
}

}  // namespace qk

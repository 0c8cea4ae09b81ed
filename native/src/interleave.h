// The interleaved ("prepared") weight layout: rows in tiles of 16 so that one
// SIMD register holds the same 4-byte group of 16 rows, and a kernel turns a
// broadcast activation dword into 16 dot-product steps with no shuffles and
// no horizontal sums. Made once at load by prepare(); the ggml bytes stay
// the format of files, quantize and dequantize.
//
// For a type whose block is a 2-byte fp16 scale d followed by a payload of P
// bytes (q4_0: P = 16, q8_0: P = 32), a tile of 16 rows holds, for each block b along k:
//   scales:  16 x fp16 d (rows 0..15)                    32 bytes
//   payload: for g in 0..P/4-1, 16 x bytes 4g..4g+3      16 * P bytes
// with the blocks in pairs, [scales b | scales b+1 | payload b | payload b+1],
// and an odd last block alone as [scales | payload]. A q4_0 pair is 9 cache
// lines, so every 64-byte payload group starts on a cache line when the tile
// does (prepare() aligns the buffer; measured 1.5x faster streaming from
// DRAM than with 288-byte blocks straddling lines, and 1.4x faster than
// the scales of a tile stored apart from its payload). A tile is
// 16 * row_bytes bytes, the same size as its 16 ggml rows. The last tile of
// a matrix whose row count is not a multiple of 16 is padded with zero bytes
// (rows with d = 0).
#pragma once
#include <cstddef>
#include <cstdint>

#include "types.h"

namespace qk {

constexpr int kTileRows = 16;
constexpr int kTileScaleBytes = 2;  // the fp16 d that opens each block of the types with this layout

namespace {  // internal linkage, see fp16.h

// Byte offsets inside a tile of block b's 16 scales and of its payload, for
// nb blocks of block_bytes each: the pairs described above.
struct TilePlace {
  size_t scales, payload;
};

inline TilePlace tile_place(int64_t b, int64_t nb, int block_bytes) {
  const int64_t pair = b / 2, in_pair = b % 2;
  const int64_t count = nb - 2 * pair < 2 ? 1 : 2;
  const size_t start = static_cast<size_t>(pair) * 2 * kTileRows * block_bytes;
  const size_t sb = kTileRows * kTileScaleBytes, pb = kTileRows * static_cast<size_t>(block_bytes - kTileScaleBytes);
  return {start + in_pair * sb, start + count * sb + in_pair * pb};
}

}  // namespace

// The types prepare() interleaves; for the others it keeps the ggml layout.
bool has_interleaved_layout(int type);

// Bytes of a prepared rows x cols matrix: whole tiles of 16 rows.
size_t interleaved_bytes(const TypeTraits& t, int64_t rows, int64_t cols);

// nrows (1..16) ggml rows (rb bytes apart) -> one tile (padding rows zeroed).
void interleave_tile(const TypeTraits& t, const uint8_t* rows, size_t rb, int nrows, int64_t cols, uint8_t* tile);
// One tile -> its first nrows ggml rows (rb bytes apart).
void deinterleave_tile(const TypeTraits& t, const uint8_t* tile, int64_t cols, uint8_t* rows, size_t rb, int nrows);

}  // namespace qk

#include "batch_tile.h"

#include <cstring>

#include "types.h"

namespace qk {

namespace {

// The 6-bit scale and min of sub-block j from a K-quant's 12 packed bytes.
inline void unpack_scale_min(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

}  // namespace

void pack_batch_tile_q4_K(const uint8_t* rows, size_t rb, int nrows, int64_t k, uint8_t* tile) {
  const int64_t nb = k / QK_K;
  std::memset(tile, 0, static_cast<size_t>(nb) * kQ4KBatchBlockBytes);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* t = tile + b * kQ4KBatchBlockBytes;
    for (int r = 0; r < nrows; ++r) {
      const uint8_t* blk = rows + r * rb + b * sizeof(BlockQ4_K);
      std::memcpy(t + 2 * r, blk, 2);
      std::memcpy(t + 32 + 2 * r, blk + 2, 2);
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        unpack_scale_min(blk + 4, j, &sc, &m);
        t[64 + 32 * j + 2 * r] = sc;
        t[64 + 32 * j + 2 * r + 1] = sc;
        t[320 + 32 * (j / 2) + 2 * r + (j & 1)] = m;
      }
      const uint8_t* qs = blk + 16;
      for (int c = 0; c < 4; ++c)
        for (int g = 0; g < 8; ++g) std::memcpy(t + 448 + 512 * c + 64 * g + 4 * r, qs + 32 * c + 4 * g, 4);
    }
  }
}

}  // namespace qk

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

// The 256 levels (0..63) of a q6_K block in element order: each 128-element
// half takes ql's low nibbles for elements 0..63 and its high ones for
// 64..127 (bytes l and 32 + l for l, 32 + l, 64 + l, 96 + l), and qh's 2-bit
// fields 0..3 of byte l above them in the same order.
inline void q6_K_levels(const uint8_t* blk, uint8_t* L) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = blk + 64 * h;
    const uint8_t* qh = blk + 128 + 32 * h;
    for (int l = 0; l < 32; ++l) {
      uint8_t* o = L + 128 * h + l;
      o[0] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh[l] & 3) << 4));
      o[32] = static_cast<uint8_t>((ql[32 + l] & 0xF) | (((qh[l] >> 2) & 3) << 4));
      o[64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      o[96] = static_cast<uint8_t>((ql[32 + l] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
}

// d, dmin, the scales and the mins of row r of a q4_K/q5_K super-block.
void pack_kquant_header(const uint8_t* blk, int r, uint8_t* t) {
  std::memcpy(t + 2 * r, blk, 2);
  std::memcpy(t + 32 + 2 * r, blk + 2, 2);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min(blk + 4, j, &sc, &m);
    t[64 + 32 * j + 2 * r] = sc;
    t[64 + 32 * j + 2 * r + 1] = sc;
    t[320 + 32 * (j / 2) + 2 * r + (j & 1)] = m;
  }
}

}  // namespace

void pack_batch_tile_q6_K(const uint8_t* rows, size_t rb, int nrows, int64_t k, uint8_t* tile) {
  const int64_t nb = k / QK_K;
  std::memset(tile, 0, static_cast<size_t>(nb) * kQ6KBatchBlockBytes);
  uint8_t L[QK_K];
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* t = tile + b * kQ6KBatchBlockBytes;
    for (int r = 0; r < nrows; ++r) {
      const uint8_t* blk = rows + r * rb + b * sizeof(BlockQ6_K);
      std::memcpy(t + 2 * r, blk + 208, 2);
      for (int g = 0; g < 16; ++g) {
        const uint8_t sc = blk[192 + g];
        t[64 + 32 * g + 2 * r] = sc;
        t[64 + 32 * g + 2 * r + 1] = sc;
        t[576 + 32 * (g / 2) + 2 * r + (g & 1)] = sc;
      }
      q6_K_levels(blk, L);
      for (int g = 0; g < 16; ++g)
        for (int i = 0; i < 4; ++i) std::memcpy(t + 832 + 256 * g + 64 * i + 4 * r, L + 16 * g + 4 * i, 4);
    }
  }
}

void pack_batch_tile_q4_K(const uint8_t* rows, size_t rb, int nrows, int64_t k, uint8_t* tile) {
  const int64_t nb = k / QK_K;
  std::memset(tile, 0, static_cast<size_t>(nb) * kQ4KBatchBlockBytes);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* t = tile + b * kQ4KBatchBlockBytes;
    for (int r = 0; r < nrows; ++r) {
      const uint8_t* blk = rows + r * rb + b * sizeof(BlockQ4_K);
      pack_kquant_header(blk, r, t);
      const uint8_t* qs = blk + 16;
      for (int c = 0; c < 4; ++c)
        for (int g = 0; g < 8; ++g) std::memcpy(t + 448 + 512 * c + 64 * g + 4 * r, qs + 32 * c + 4 * g, 4);
    }
  }
}

void pack_batch_tile_q5_K(const uint8_t* rows, size_t rb, int nrows, int64_t k, uint8_t* tile) {
  const int64_t nb = k / QK_K;
  std::memset(tile, 0, static_cast<size_t>(nb) * kQ5KBatchBlockBytes);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* t = tile + b * kQ5KBatchBlockBytes;
    for (int r = 0; r < nrows; ++r) {
      const uint8_t* blk = rows + r * rb + b * sizeof(BlockQ5_K);
      pack_kquant_header(blk, r, t);
      const uint8_t* qh = blk + 16;
      const uint8_t* qs = blk + 48;
      for (int j = 0; j < 8; ++j) {
        // Sub-block j: the low or high nibbles of chunk j / 2, bit j of qh[l] on top.
        uint8_t L[32];
        for (int l = 0; l < 32; ++l) {
          const uint8_t q = qs[32 * (j / 2) + l];
          L[l] = static_cast<uint8_t>(((j & 1) ? (q >> 4) : (q & 0xF)) | (((qh[l] >> j) & 1) << 4));
        }
        for (int g = 0; g < 8; ++g) std::memcpy(t + 448 + 512 * j + 64 * g + 4 * r, L + 4 * g, 4);
      }
    }
  }
}

}  // namespace qk

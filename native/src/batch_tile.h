// Batch tiles: a layout that lives only inside one matmul call. For prefill-
// sized batches (m >= 8) of a K-quant, each thread unpacks 16 ggml rows at a
// time into its own buffer in this form, and a kernel runs every activation
// row over it; the bytes of files, of mmap'd weights and of prepare() stay
// ggml's. The unpacking is paid once per 16 rows and spread over all m rows
// of the batch (about 2% of the kernel time at m = 128).
//
// Like the interleaved layout (interleave.h), one 256-bit register holds the
// same 4-byte group of 8 rows, so a broadcast activation dword feeds 8 rows
// at once; unlike it, the 6-bit scales and mins come already unpacked.
//
// q4_K, per super-block b, kQ4KBatchBlockBytes bytes at b * that:
//   0    d[16]            the rows' fp16 d                           32 bytes
//   32   dmin[16]         the rows' fp16 dmin                        32 bytes
//   64   sc[8][16][2]     scale of sub-block j of row r, twice       256 bytes
//   320  mn[4][16][2]     mins of sub-blocks 2c and 2c+1 of row r    128 bytes
//   448  qs[4][8][16][4]  bytes 4g..4g+3 of chunk c (32 bytes: sub-block
//                         2c in the low nibbles, 2c+1 in the high ones) 2048 bytes
// q5_K, per super-block, kQ5KBatchBlockBytes bytes: d, dmin, sc and mn as
// for q4_K (bytes 0..447), then its 5-bit levels one byte each:
//   448  qs[8][8][16][4]  levels 4g..4g+3 of sub-block j              4096 bytes
//
// q6_K, per super-block, kQ6KBatchBlockBytes bytes: the 6-bit levels come
// out one byte each, unsigned (0..63; the -32 is taken off through the
// activation's group sums), so the kernel only loads them:
//   0    d[16]            the rows' fp16 d (then 32 bytes of padding)  64 bytes
//   64   sc[16][16][2]    int8 scale of 16-element group g of row r, twice  512 bytes
//   576  sp[8][16][2]     the scales of groups 2i and 2i+1 of row r    256 bytes
//   832  qs[16][4][16][4] levels 4i..4i+3 of group g                  4096 bytes
// Every field starts on a 64-byte line when the tile does. Rows past nrows
// are zero (d = 0).
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

constexpr int kBatchTileRows = 16;
constexpr int kQ4KBatchBlockBytes = 2496;
constexpr int kQ5KBatchBlockBytes = 4544;
constexpr int kQ6KBatchBlockBytes = 4928;

// nrows (1..16) q4_K rows, rb bytes apart, of k elements -> one batch tile.
void pack_batch_tile_q4_K(const uint8_t* rows, size_t rb, int nrows, int64_t k, uint8_t* tile);
void pack_batch_tile_q5_K(const uint8_t* rows, size_t rb, int nrows, int64_t k, uint8_t* tile);
void pack_batch_tile_q6_K(const uint8_t* rows, size_t rb, int nrows, int64_t k, uint8_t* tile);

}  // namespace qk

// The kernel table: one entry per (ISA, type). Every ISA file fills in the
// entries it accelerates; the rest stay the portable scalar ones, so a table
// is always complete (the simdjson-style "one interface, many implementations").
#pragma once
#include <cstddef>
#include <cstdint>

#include "types.h"

namespace qk {

// All lengths are element counts; k is a multiple of the type's block size.
// Row pointers have no alignment guarantee (ggml blocks are 18, 20, 34 bytes).
using QuantizeRowFn = void (*)(const float* x, uint8_t* y, int64_t k);
using DequantizeRowFn = void (*)(const uint8_t* x, float* y, int64_t k);
// 'q8' precision: w is one weight row, a one activation row already in the
// type's activation format (TypeTraits::act_type).
using VecDotFn = float (*)(int64_t k, const uint8_t* w, const uint8_t* a);
// 'f32' precision: weights dequantized on the fly, float FMA with x.
using VecDotF32Fn = float (*)(int64_t k, const uint8_t* w, const float* x);
// 'q8' precision, a block of dot products in one pass over k: nw (1..8)
// weight rows w + i * w_stride against na (1..4) activation rows
// a + j * a_stride; out[j * out_stride + i] = vec_dot(k, w_i, a_j), each
// block's integer sum exact, only the float summation order may differ.
using VecDotRowsFn = void (*)(int64_t k, const uint8_t* w, size_t w_stride, int nw, const uint8_t* a, size_t a_stride, int na,
                              float* out, size_t out_stride);

// Interleaved ("prepared") weights, see interleave.h: one tile of 16 weight
// rows against na (1..8) activation rows in the type's activation format
// (a + j * a_stride) plus their per-block facts (meta + j * meta_stride:
// {d as float, sum of the 32 int8 levels}); out[j * out_stride + r] for the
// tile's first nvalid rows. Each block's integer sum is exact.
struct ActBlockMeta {
  float d;
  int32_t sum;
};
using TileDotFn = void (*)(int64_t k, const uint8_t* tile, const uint8_t* a, size_t a_stride, const ActBlockMeta* meta,
                           size_t meta_stride, int na, float* out, size_t out_stride, int nvalid);

// interleave_tile (interleave.h) for a whole tile: 16 ggml rows, rb bytes
// apart, of nb blocks each -> one tile. Byte-identical to the generic one.
using InterleaveFullTileFn = void (*)(const uint8_t* rows, size_t rb, int64_t nb, uint8_t* tile);

// Batch tiles (batch_tile.h), a layout made inside one matmul call for
// m >= 8: pack 16 ggml rows (rb bytes apart, nrows of them, the rest zero),
// then one packed tile against na (1..8) activation rows in the type's
// activation format; out[j * out_stride + r] for the first nvalid rows, each
// block's integer sum exact.
using PackBatchTileFn = void (*)(const uint8_t* rows, size_t rb, int nrows, int64_t k, uint8_t* tile);
using BatchTileDotFn = void (*)(int64_t k, const uint8_t* tile, const uint8_t* a, size_t a_stride, int na, float* out,
                                size_t out_stride, int nvalid);

// Importance-weighted quantizer (llama.cpp's quantize_row_*_impl, used when
// an importance matrix is given): importance has k entries, one per column.
using QuantizeRowImportanceFn = void (*)(const float* x, uint8_t* y, int64_t k, const float* importance);

struct TypeKernels {
  QuantizeRowFn quantize_row = nullptr;      // weights: llama.cpp reference quantizer, bit-exact
  QuantizeRowFn quantize_act = nullptr;      // activation formats only: q8_0, q8_1 (127/amax, ties-to-even), q8_k (llama.cpp reference)
  DequantizeRowFn dequantize_row = nullptr;
  VecDotFn vec_dot = nullptr;                // null for float types: they use vec_dot_f32
  VecDotF32Fn vec_dot_f32 = nullptr;
  QuantizeRowImportanceFn quantize_row_importance = nullptr;  // types that support an importance vector
  VecDotRowsFn vec_dot_rows = nullptr;       // optional multi-row vec_dot (matmul uses it when set); last, so
                                             // positional initializers of the fields above stay valid
  TileDotFn tile_dot = nullptr;              // optional kernel for the interleaved layout; without it matmul
                                             // de-interleaves each tile and runs the row kernels above
  InterleaveFullTileFn interleave_full_tile = nullptr;  // optional SIMD form of interleave_tile
  PackBatchTileFn pack_batch_tile = nullptr;  // optional, with batch_tile_dot: matmul's kernel for m >= 8
  BatchTileDotFn batch_tile_dot = nullptr;
  int batch_block_bytes = 0;                  // bytes of one block of a packed 16-row tile
};

// GPTQ/AWQ's double GEMM (dense.cc), one micro-tile over packed panels of
// depth K: a holds K x kGemmMR doubles ([p][i]), b K x kGemmNR ([p][j]);
// acc[i][j] = sum_p a[p][i] * b[p][j] in p order from 0, then
// c[i * ldc + j] += alpha * acc[i][j] for i < mr, j < nr. Every ISA runs the
// same C++ (gemm_micro.h) under its own target, with no FMA contraction, so
// every table gives the same bits; only the vector width differs.
constexpr int kGemmMR = 4;
constexpr int kGemmNR = 8;
using GemmMicroFn = void (*)(int64_t K, const double* a, const double* b, double* c, int64_t ldc, double alpha, int mr,
                             int nr);

enum Isa : int { kIsaScalar = 0, kIsaAvx2, kIsaAvx512, kIsaNeon, kIsaCount };
const char* isa_name(int isa);
int isa_from_name(const char* name);  // -1 when unknown

struct KernelTable {
  int isa = kIsaScalar;
  TypeKernels type[kTypeIdLimit];
  GemmMicroFn gemm_micro = nullptr;  // type-independent kernels
};

// Each fills only what it implements, on top of a table already holding the
// entries of the level below. Defined in kernels_<isa>.cc; the x86 ones exist
// only on x86-64, the NEON one only on aarch64.
void fill_scalar(KernelTable& t);          // kernels_scalar.cc: f32, f16, bf16, q4_0, q4_1, q8_0
void fill_scalar_q5(KernelTable& t);       // kernels_scalar_q5.cc: q5_0, q5_1, importance for the 32-block types
void fill_scalar_kquants(KernelTable& t);  // kernels_scalar_k.cc: q4_k, q5_k, q6_k, q8_k
void fill_avx2(KernelTable& t);
void fill_avx2_kquants(KernelTable& t);                // kernels_avx2_k.cc: q5_0, q5_1, q4_k, q5_k, q6_k, q8_k
void fill_avx512(KernelTable& t, bool vnni);  // on top of avx2; vnni: AVX512_VNNI dot products
void fill_avx512_kquants(KernelTable& t, bool vnni);  // kernels_avx512_k.cc
void fill_avx2_tiles(KernelTable& t);                  // kernels_avx2_tile.cc: interleaved q4_0
void fill_avx2_batch_tiles(KernelTable& t);            // kernels_avx2_batch.cc: batch tiles of q4_K, q5_K, q6_K
void fill_avx512_tiles(KernelTable& t, bool vnni);     // kernels_avx512_tile.cc
void fill_neon(KernelTable& t, bool dotprod);  // dotprod: ARMv8.2 SDOT
void fill_neon_kquants(KernelTable& t, bool dotprod);  // kernels_neon_k.cc
void fill_neon_tiles(KernelTable& t, bool dotprod);     // kernels_neon_tile.cc: interleaved q4_0, q8_0 (SDOT only)
void fill_scalar_gemm(KernelTable& t);  // kernels_scalar_gemm.cc: gemm_micro (the NEON table keeps it)
void fill_avx2_gemm(KernelTable& t);    // kernels_avx2_gemm.cc
void fill_avx512_gemm(KernelTable& t);  // kernels_avx512_gemm.cc

}  // namespace qk

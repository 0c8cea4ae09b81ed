// ggml type ids and block geometry: the one table every native layer reads.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

enum TypeId : int {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kBF16 = 30,
  kTypeIdLimit = 40,  // table size; ids above are not ours
};

struct TypeTraits {
  const char* name;   // nullptr: unsupported id
  int block_size;     // elements per block
  int block_bytes;
  int act_type;       // what activations are quantized to in 'q8' precision (kF32: none)
  bool is_weight;     // usable as a weight type (q8_1 is activations only)
};

const TypeTraits* type_traits(int id);  // nullptr when unknown
int type_from_name(const char* name);    // -1 when unknown

namespace {  // internal linkage, see fp16.h
inline size_t row_bytes(const TypeTraits& t, int64_t k) {
  return static_cast<size_t>(k / t.block_size) * static_cast<size_t>(t.block_bytes);
}
}  // namespace

// Block layouts (ggml-common.h byte for byte). Scales are fp16 bit patterns.
constexpr int QK32 = 32;
struct BlockQ4_0 { uint16_t d; uint8_t qs[QK32 / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[QK32 / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[QK32]; };
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[QK32]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK32 / 2]; };
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[QK32 / 2]; };

// K-quants: 256-element super-blocks.
constexpr int QK_K = 256;
constexpr int K_SCALE_SIZE = 12;
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct BlockQ6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(BlockQ4_0) == 18, "q4_0 block");
static_assert(sizeof(BlockQ5_0) == 22, "q5_0 block");
static_assert(sizeof(BlockQ5_1) == 24, "q5_1 block");
static_assert(sizeof(BlockQ4_K) == 144, "q4_K block");
static_assert(sizeof(BlockQ5_K) == 176, "q5_K block");
static_assert(sizeof(BlockQ6_K) == 210, "q6_K block");
static_assert(sizeof(BlockQ8_K) == 292, "q8_K block");
static_assert(sizeof(BlockQ4_1) == 20, "q4_1 block");
static_assert(sizeof(BlockQ8_0) == 34, "q8_0 block");
static_assert(sizeof(BlockQ8_1) == 36, "q8_1 block");

}  // namespace qk

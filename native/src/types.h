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
  kQ8_0 = 8,
  kQ8_1 = 9,
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

inline size_t row_bytes(const TypeTraits& t, int64_t k) {
  return static_cast<size_t>(k / t.block_size) * static_cast<size_t>(t.block_bytes);
}

// Block layouts (ggml-common.h byte for byte). Scales are fp16 bit patterns.
constexpr int QK32 = 32;
struct BlockQ4_0 { uint16_t d; uint8_t qs[QK32 / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[QK32 / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[QK32]; };
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[QK32]; };
static_assert(sizeof(BlockQ4_0) == 18, "q4_0 block");
static_assert(sizeof(BlockQ4_1) == 20, "q4_1 block");
static_assert(sizeof(BlockQ8_0) == 34, "q8_0 block");
static_assert(sizeof(BlockQ8_1) == 36, "q8_1 block");

}  // namespace qk

#include "types.h"

#include <cstring>

namespace qk {

namespace {
struct Table {
  TypeTraits t[kTypeIdLimit] = {};
  Table() {
    t[kF32] = {"f32", 1, 4, kF32, true};
    t[kF16] = {"f16", 1, 2, kF32, true};
    t[kBF16] = {"bf16", 1, 2, kF32, true};
    t[kQ8_0] = {"q8_0", QK32, 34, kQ8_0, true};
    t[kQ4_0] = {"q4_0", QK32, 18, kQ8_0, true};
    t[kQ4_1] = {"q4_1", QK32, 20, kQ8_1, true};
    t[kQ8_1] = {"q8_1", QK32, 36, kQ8_1, false};
    t[kQ5_0] = {"q5_0", QK32, 22, kQ8_0, true};
    t[kQ5_1] = {"q5_1", QK32, 24, kQ8_1, true};
    t[kQ4_K] = {"q4_k", QK_K, 144, kQ8_K, true};
    t[kQ5_K] = {"q5_k", QK_K, 176, kQ8_K, true};
    t[kQ6_K] = {"q6_k", QK_K, 210, kQ8_K, true};
    t[kQ8_K] = {"q8_k", QK_K, 292, kQ8_K, false};
  }
};
const Table& table() {
  static const Table tb;
  return tb;
}
}  // namespace

const TypeTraits* type_traits(int id) {
  if (id < 0 || id >= kTypeIdLimit) return nullptr;
  const TypeTraits* t = &table().t[id];
  return t->name ? t : nullptr;
}

int type_from_name(const char* name) {
  for (int id = 0; id < kTypeIdLimit; ++id) {
    const TypeTraits& t = table().t[id];
    if (t.name && std::strcmp(t.name, name) == 0) return id;
  }
  return -1;
}

}  // namespace qk

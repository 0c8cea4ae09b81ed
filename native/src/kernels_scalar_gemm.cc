// The portable GEMM micro-kernel (gemm_micro.h) for the scalar table, which
// the NEON table inherits: on aarch64 the compiler vectorises it with
// Advanced SIMD, part of every ARMv8 CPU.
#include <cstdint>

#include "kernels.h"

namespace qk {
namespace {

#include "gemm_micro.h"

}  // namespace

void fill_scalar_gemm(KernelTable& t) { t.gemm_micro = gemm_micro; }

}  // namespace qk

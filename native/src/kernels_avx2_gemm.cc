// The GEMM micro-kernel (gemm_micro.h) compiled for AVX2: the same C++ as
// the scalar one, so the same bits, in wider vectors. Build rules as in
// kernels_avx2.cc (every header before target_avx2_begin.h).
#if defined(__x86_64__) || defined(_M_X64)

#include <cstdint>

#include "kernels.h"

#include "target_avx2_begin.h"

namespace qk {
namespace {

#include "gemm_micro.h"

}  // namespace
}  // namespace qk

#include "target_end.h"

// Outside the target region: this runs on any CPU (it only stores a pointer).
namespace qk {

void fill_avx2_gemm(KernelTable& t) { t.gemm_micro = gemm_micro; }

}  // namespace qk

#endif  // x86-64

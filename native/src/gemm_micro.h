// The GEMM micro-kernel of GPTQ/AWQ (kernels.h GemmMicroFn), one source for
// every ISA. Include it only inside `namespace qk { namespace {`, after the
// file's target pragma (or clang attribute) when there is one, so that it is
// compiled for that file's ISA, as kernels_<isa>_gemm.cc do. The compiler
// vectorises the j loops; -ffp-contract=off (every build's flags) keeps each
// element a separate multiply and add in p order, so the bits do not depend
// on the vector width.
#pragma once

void gemm_micro(int64_t K, const double* a, const double* b, double* c, int64_t ldc, double alpha, int mr, int nr) {
  double acc[kGemmMR][kGemmNR];
  for (int i = 0; i < kGemmMR; ++i)
    for (int j = 0; j < kGemmNR; ++j) acc[i][j] = 0;
  for (int64_t p = 0; p < K; ++p) {
    const double* ap = a + p * kGemmMR;
    const double* bp = b + p * kGemmNR;
    for (int i = 0; i < kGemmMR; ++i) {
      const double ai = ap[i];
      for (int j = 0; j < kGemmNR; ++j) acc[i][j] += ai * bp[j];
    }
  }
  if (mr == kGemmMR && nr == kGemmNR) {
    for (int i = 0; i < kGemmMR; ++i)
      for (int j = 0; j < kGemmNR; ++j) c[i * ldc + j] += alpha * acc[i][j];
  } else {
    for (int i = 0; i < mr; ++i)
      for (int j = 0; j < nr; ++j) c[i * ldc + j] += alpha * acc[i][j];
  }
}

// The dense double-precision linear algebra of GPTQ and AWQ (dense.cc): a
// packed GEMM whose micro-kernel comes from the kernel table (kernels.h
// gemm_micro, the same bits on every ISA), and on top of it, blocked and on
// the pool, the Hessian, Cholesky factor, triangular inverse and GPTQ's damped
// factor (lib/js/linalg.ts is the reference).
#pragma once
#include <cstdint>
#include <vector>

namespace qk {
namespace calib {

// C[i * ldc + j] += alpha * sum_{p < K} A[p * lda + i] * B[p * ldb + j] for
// i < M, j < N: single-threaded (callers split C among the pool's threads).
void gemm_tn(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb, double* C,
             int64_t ldc, double alpha);
// The general form: C[i * ldc + j] += alpha * sum_p a(p, i) b(p, j) with
// a(p, i) = A[p * a_p + i * a_i] and b(p, j) = B[p * b_p + j * b_j] (so a_p = 1
// reads A's rows as the contraction: C = A B^T).
void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t a_p, int64_t a_i, const double* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha);
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_p, int64_t a_i, const float* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha);
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_p, int64_t a_i, const double* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha);

// H = (2/n) X^T X (both triangles) of x (n x k floats), the diagonal summed
// exactly as the reference does; on the pool.
void hessian(const float* x, int64_t n, int64_t k, double* h);

// In place: the lower Cholesky factor of a (k x k row-major; only the lower
// triangle is read), the upper triangle zeroed. False if not positive definite.
bool cholesky_lower(double* a, int64_t k);

// In place: the inverse of a lower-triangular matrix (upper triangle zero).
void invert_lower(double* l, int64_t k);

// r := U with (H_perm + damp * mean(diag) I)^-1 = U^T U, H's rows and columns
// in `order`; false if not positive definite. Computed as the reference does:
// Cholesky of the reversed matrix R = L L^T, then U = reverse(L^-1).
bool damped_factor(const double* h, int64_t k, const std::vector<int32_t>& order, double damp, double* r);

// 4-lane dot product the compiler vectorises (no reassociation needed); one
// summation order for GPTQ's factorization and AWQ's clipping scores alike.
inline double dot(const double* a, const double* b, int64_t n) {
  double s[4] = {0, 0, 0, 0};
  int64_t p = 0;
  for (; p + 4 <= n; p += 4) {
    for (int l = 0; l < 4; ++l) s[l] += a[p + l] * b[p + l];
  }
  double t = (s[0] + s[1]) + (s[2] + s[3]);
  for (; p < n; ++p) t += a[p] * b[p];
  return t;
}

}  // namespace calib
}  // namespace qk

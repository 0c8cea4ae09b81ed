// The dense linear algebra of GPTQ and AWQ (dense.h): the packed GEMM, then
// the blocked factorizations (lib/js/linalg.ts) on the pool.
#include "dense.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "calibrated.h"
#include "dispatch.h"
#include "kernels.h"

namespace qk {
namespace calib {

// ---- the matrix product ----

namespace {

constexpr int kMR = kGemmMR;  // micro-tile rows (of C)
constexpr int kNR = kGemmNR;  // micro-tile columns
constexpr int64_t kKB = 256;  // depth of one packed panel
constexpr int64_t kNB = 256;  // columns of one packed panel of B

// a(p, i) = A[p * a_p + i * a_i], b(p, j) = B[p * b_p + j * b_j]; panels are
// packed (and converted to double) so the micro-kernel reads them contiguously.
template <typename TA, typename TB>
void gemm_t(int64_t M, int64_t N, int64_t K, const TA* A, int64_t a_p, int64_t a_i, const TB* B, int64_t b_p, int64_t b_j,
            double* C, int64_t ldc, double alpha) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  const GemmMicroFn micro = active_kernels().gemm_micro;
  thread_local std::vector<double> pa, pb;
  const int64_t nbw = std::min(N, kNB);
  const int64_t kbd = std::min(K, kKB);
  pb.resize(static_cast<size_t>(((nbw + kNR - 1) / kNR) * kNR * kbd));
  pa.resize(static_cast<size_t>(kMR * kbd));
  for (int64_t k0 = 0; k0 < K; k0 += kKB) {
    const int64_t kb = std::min(kKB, K - k0);
    for (int64_t j0 = 0; j0 < N; j0 += kNB) {
      const int64_t nb = std::min(kNB, N - j0);
      const int64_t nt = (nb + kNR - 1) / kNR;
      // B panel as [tile][p][kNR], zero-padded.
      for (int64_t t = 0; t < nt; ++t) {
        double* dstp = pb.data() + t * kb * kNR;
        const int64_t jj = j0 + t * kNR;
        const int w = static_cast<int>(std::min<int64_t>(kNR, N - jj));
        const TB* src = B + k0 * b_p + jj * b_j;
        if (w == kNR && b_j == 1) {
          for (int64_t p = 0; p < kb; ++p)
            for (int j = 0; j < kNR; ++j) dstp[p * kNR + j] = static_cast<double>(src[p * b_p + j]);
        } else {
          for (int64_t p = 0; p < kb; ++p)
            for (int j = 0; j < kNR; ++j) dstp[p * kNR + j] = j < w ? static_cast<double>(src[p * b_p + j * b_j]) : 0.0;
        }
      }
      for (int64_t i0 = 0; i0 < M; i0 += kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, M - i0));
        const TA* src = A + k0 * a_p + i0 * a_i;
        double* d = pa.data();
        if (mr == kMR && a_i == 1) {
          for (int64_t p = 0; p < kb; ++p)
            for (int i = 0; i < kMR; ++i) d[p * kMR + i] = static_cast<double>(src[p * a_p + i]);
        } else {
          for (int64_t p = 0; p < kb; ++p)
            for (int i = 0; i < kMR; ++i) d[p * kMR + i] = i < mr ? static_cast<double>(src[p * a_p + i * a_i]) : 0.0;
        }
        for (int64_t t = 0; t < nt; ++t) {
          const int64_t jj = j0 + t * kNR;
          const int nr = static_cast<int>(std::min<int64_t>(kNR, N - jj));
          micro(kb, pa.data(), pb.data() + t * kb * kNR, C + i0 * ldc + jj, ldc, alpha, mr, nr);
        }
      }
    }
  }
}

}  // namespace

void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t a_p, int64_t a_i, const double* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha) {
  gemm_t(M, N, K, A, a_p, a_i, B, b_p, b_j, C, ldc, alpha);
}
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_p, int64_t a_i, const float* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha) {
  gemm_t(M, N, K, A, a_p, a_i, B, b_p, b_j, C, ldc, alpha);
}
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_p, int64_t a_i, const double* B, int64_t b_p,
          int64_t b_j, double* C, int64_t ldc, double alpha) {
  gemm_t(M, N, K, A, a_p, a_i, B, b_p, b_j, C, ldc, alpha);
}
void gemm_tn(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb, double* C,
             int64_t ldc, double alpha) {
  gemm_t(M, N, K, A, lda, int64_t{1}, B, ldb, int64_t{1}, C, ldc, alpha);
}

// ---- linear algebra (lib/js/linalg.ts), blocked and on the pool ----

namespace {


constexpr int64_t kFB = 128;  // block of the blocked factorizations

}  // namespace

// H = (2/n) X^T X (both triangles), the diagonal summed exactly as the reference does.
void hessian(const float* x, int64_t n, int64_t k, double* h) {
  constexpr int64_t T = 128;
  const int64_t nt = (k + T - 1) / T;
  std::vector<std::pair<int32_t, int32_t>> tiles;
  for (int64_t bi = 0; bi < nt; ++bi)
    for (int64_t bj = bi; bj < nt; ++bj) tiles.emplace_back(static_cast<int32_t>(bi), static_cast<int32_t>(bj));
  // largest tiles first is moot: all are T x T but the edge ones
  par(static_cast<int64_t>(tiles.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t i0 = tiles[t].first * T, j0 = tiles[t].second * T;
      const int64_t mi = std::min(T, k - i0), mj = std::min(T, k - j0);
      double* c = h + i0 * k + j0;
      for (int64_t i = 0; i < mi; ++i) std::fill(c + i * k, c + i * k + mj, 0.0);
      gemm(mi, mj, n, x + i0, k, 1, x + j0, k, 1, c, k, 1.0);
    }
  });
  // The diagonal (dead columns, act-order's sort) summed in row order, like gram().
  constexpr int64_t CB = 256;
  par((k + CB - 1) / CB, 1, [&](int64_t b, int64_t e) {
    std::vector<double> d(CB);
    for (int64_t cb = b; cb < e; ++cb) {
      const int64_t c0 = cb * CB, m = std::min(CB, k - c0);
      std::fill(d.begin(), d.end(), 0.0);
      for (int64_t s = 0; s < n; ++s) {
        const float* row = x + s * k + c0;
        for (int64_t j = 0; j < m; ++j) d[j] += static_cast<double>(row[j]) * row[j];
      }
      for (int64_t j = 0; j < m; ++j) h[(c0 + j) * k + c0 + j] = d[j];
    }
  });
  const double f = 2.0 / static_cast<double>(n);
  par(k, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t j = i; j < k; ++j) h[i * k + j] *= f;
  });
  par(k, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t j = 0; j < i; ++j) h[i * k + j] = h[j * k + i];
  });
}

// In place: the lower Cholesky factor of a (k x k row-major; only the lower
// triangle is read), the upper triangle zeroed. False if not positive definite.
bool cholesky_lower(double* a, int64_t k) {
  std::vector<double> pt;
  for (int64_t k0 = 0; k0 < k; k0 += kFB) {
    const int64_t b = std::min(kFB, k - k0);
    // the diagonal block, unblocked (the reference's loop)
    for (int64_t j = 0; j < b; ++j) {
      double* rj = a + (k0 + j) * k + k0;
      const double d = rj[j] - dot(rj, rj, j);
      if (!(d > 0)) return false;
      const double ljj = std::sqrt(d);
      rj[j] = ljj;
      for (int64_t i = j + 1; i < b; ++i) {
        double* ri = a + (k0 + i) * k + k0;
        ri[j] = (ri[j] - dot(ri, rj, j)) / ljj;
      }
    }
    const int64_t r0 = k0 + b, m = k - r0;
    if (m == 0) break;
    // the panel below it: L21 = A21 L11^-T, row by row
    pt.assign(static_cast<size_t>(b * m), 0.0);
    par(m, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        double* ri = a + (r0 + i) * k + k0;
        for (int64_t j = 0; j < b; ++j) {
          const double* rj = a + (k0 + j) * k + k0;
          ri[j] = (ri[j] - dot(ri, rj, j)) / rj[j];
        }
        for (int64_t j = 0; j < b; ++j) pt[j * m + i] = ri[j];
      }
    });
    // the trailing matrix: A22 -= L21 L21^T, lower-triangle tiles
    constexpr int64_t T = 128;
    const int64_t nt = (m + T - 1) / T;
    std::vector<std::pair<int32_t, int32_t>> tiles;
    for (int64_t ti = 0; ti < nt; ++ti)
      for (int64_t tj = 0; tj <= ti; ++tj) tiles.emplace_back(static_cast<int32_t>(ti), static_cast<int32_t>(tj));
    par(static_cast<int64_t>(tiles.size()), 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t i0 = tiles[t].first * T, j0 = tiles[t].second * T;
        const int64_t mi = std::min(T, m - i0), mj = std::min(T, m - j0);
        gemm_tn(mi, mj, b, pt.data() + i0, m, pt.data() + j0, m, a + (r0 + i0) * k + r0 + j0, k, -1.0);
      }
    });
  }
  par(k, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) std::fill(a + i * k + i + 1, a + (i + 1) * k, 0.0);
  });
  return true;
}

// In place: the inverse of a lower-triangular matrix (upper triangle zero).
void invert_lower(double* l, int64_t k) {
  std::vector<double> lt, t, xt;
  for (int64_t i0 = 0; i0 < k; i0 += kFB) {
    const int64_t b = std::min(kFB, k - i0);
    // T = L[I, 0:i0] X[0:i0, 0:i0], with X the inverse already in rows < i0
    if (i0 > 0) {
      lt.assign(static_cast<size_t>(i0 * b), 0.0);  // L[I, 0:i0] transposed: [p][i]
      for (int64_t i = 0; i < b; ++i)
        for (int64_t p = 0; p < i0; ++p) lt[p * b + i] = l[(i0 + i) * k + p];
      t.assign(static_cast<size_t>(b * i0), 0.0);
      constexpr int64_t W = 64;
      par((i0 + W - 1) / W, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t jt = lo; jt < hi; ++jt) {
          const int64_t j0 = jt * W, w = std::min(W, i0 - j0);
          // X[p][j] = 0 for p < j: the sum starts at p = j0
          gemm_tn(b, w, i0 - j0, lt.data() + j0 * b, b, l + j0 * k + j0, k, t.data() + j0, i0, 1.0);
        }
      });
    }
    // X_II, unblocked (the reference's loop)
    for (int64_t i = 0; i < b; ++i) {
      double* ri = l + (i0 + i) * k + i0;
      const double inv = 1 / ri[i];
      for (int64_t j = 0; j < i; ++j) {
        double s = 0;
        for (int64_t p = j; p < i; ++p) s += ri[p] * l[(i0 + p) * k + i0 + j];
        ri[j] = -s * inv;
      }
      ri[i] = inv;
    }
    if (i0 == 0) continue;
    // X[I, 0:i0] = -X_II T
    xt.assign(static_cast<size_t>(b * b), 0.0);  // X_II transposed: [q][i]
    for (int64_t i = 0; i < b; ++i)
      for (int64_t q = 0; q <= i; ++q) xt[q * b + i] = l[(i0 + i) * k + i0 + q];
    for (int64_t i = 0; i < b; ++i) std::fill(l + (i0 + i) * k, l + (i0 + i) * k + i0, 0.0);
    constexpr int64_t W = 256;
    par((i0 + W - 1) / W, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t jt = lo; jt < hi; ++jt) {
        const int64_t j0 = jt * W, w = std::min(W, i0 - j0);
        gemm_tn(b, w, b, xt.data(), b, t.data() + j0, i0, l + i0 * k + j0, k, -1.0);
      }
    });
  }
}

// Cholesky of the reversed matrix, its inverse, reversed back (dense.h).
bool damped_factor(const double* h, int64_t k, const std::vector<int32_t>& order, double damp, double* r) {
  double mean = 0;
  for (int64_t i = 0; i < k; ++i) mean += h[i * k + i];
  mean /= static_cast<double>(k);
  const double add = damp * mean;
  par(k, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const double* hi_row = h + static_cast<int64_t>(order[k - 1 - i]) * k;
      double* ri = r + i * k;
      for (int64_t j = 0; j <= i; ++j) ri[j] = hi_row[order[k - 1 - j]];
      ri[i] += add;
    }
  });
  if (!cholesky_lower(r, k)) return false;
  invert_lower(r, k);
  // reverse in place: r[i][j] <-> r[k-1-i][k-1-j]
  const int64_t total = k * k;
  par(k / 2 + (k & 1), 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t x = i * k + j, y = total - 1 - x;
        if (x < y) std::swap(r[x], r[y]);
      }
    }
  });
  return true;
}

}  // namespace calib
}  // namespace qk

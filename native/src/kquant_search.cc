// K-quant scale searches, operation for operation as quant-formats.md 4.1
// describes llama.cpp's (f32 throughout, no fused multiply-add: built with
// -ffp-contract=off). Integers enter float arithmetic through an explicit
// conversion exactly where C's usual arithmetic conversions put one.
#include "kquant_search.h"

#include <cmath>

namespace qk {

namespace {

constexpr float kGroupMaxEps = 1e-15f;

inline float to_f(int v) { return static_cast<float>(v); }

// The weight make_qx_quants uses when no weights are given.
inline float qx_weight(const float* qw, int rmse_type, const float* x, int i) {
  if (qw) return qw[i];
  switch (rmse_type) {
    case 1: return x[i] * x[i];
    case 2: return 1.f;
    case 3: return std::fabs(x[i]);
    default: return std::sqrt(std::fabs(x[i]));
  }
}

inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// make_qkx2_quants and make_qkx3_quants differ only in the default weight
// (x^2 when w is null: qkx3 only) and in the degenerate-range test.
template <bool kQkx3>
float make_qkx_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                      uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  auto wt = [&](int i) { return (kQkx3 && !weights) ? x[i] * x[i] : weights[i]; };
  float mn = x[0];
  float mx = x[0];
  float sum_w = wt(0);
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < mn) mn = x[i];
    if (x[i] > mx) mx = x[i];
    const float w = wt(i);
    sum_w = sum_w + w;
    sum_x = sum_x + w * x[i];
  }
  if (mn > 0.f) mn = 0.f;
  if (kQkx3 ? (mx <= mn) : (mx == mn)) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -mn;
    return 0.f;
  }
  float iscale = to_f(nmax) / (mx - mn);
  float scale = 1.f / iscale;
  float best = 0.f;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - mn));
    L[i] = static_cast<uint8_t>(clamp_int(l, 0, nmax));
    float diff = (scale * to_f(L[i]) + mn) - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best = best + wt(i) * diff;
  }
  if (nstep < 1) {
    *the_min = -mn;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = ((rmin + rdelta * to_f(is)) + to_f(nmax)) / (mx - mn);
    float sum_l = 0.f, sum_l2 = 0.f, sum_xl = 0.f;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - mn)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = wt(i);
      const float wl = w * to_f(l);
      sum_l = sum_l + wl;
      sum_l2 = sum_l2 + wl * to_f(l);
      sum_xl = sum_xl + wl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.f) {
        this_min = 0.f;
        this_scale = sum_xl / sum_l2;
      }
      float cur = 0.f;
      for (int i = 0; i < n; ++i) {
        float diff = (this_scale * to_f(Laux[i]) + this_min) - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur = cur + wt(i) * diff;
      }
      if (cur < best) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best = cur;
        scale = this_scale;
        mn = this_min;
      }
    }
  }
  *the_min = -mn;
  return scale;
}

}  // namespace

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw) {
  float mx = 0.f, amax = 0.f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) { amax = ax; mx = x[i]; }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = to_f(-nmax) / mx;
  if (rmse_type == 0) {
    for (int i = 0; i < n; ++i) {
      const int l = nearest_int(iscale * x[i]);
      L[i] = static_cast<int8_t>(nmax + clamp_int(l, -nmax, nmax - 1));
    }
    return 1.f / iscale;
  }
  bool early = false;
  if (rmse_type < 0) {
    rmse_type = -rmse_type;
    early = true;
  }
  float sumlx = 0.f, suml2 = 0.f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = qx_weight(qw, rmse_type, x, i);
    sumlx = sumlx + (w * x[i]) * to_f(l);
    suml2 = suml2 + (w * to_f(l)) * to_f(l);
  }
  float scale = suml2 != 0.f ? sumlx / suml2 : 0.f;
  if (early) return suml2 > 0.f ? 0.5f * (scale + 1.f / iscale) : 1.f / iscale;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(to_f(nmax) + 0.1f * to_f(is)) / mx;
    sumlx = 0.f;
    suml2 = 0.f;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = qx_weight(qw, rmse_type, x, i);
      sumlx = sumlx + (w * x[i]) * to_f(l);
      suml2 = suml2 + (w * to_f(l)) * to_f(l);
    }
    if (suml2 > 0.f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + clamp_int(l, -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad) {
  return make_qkx_quants<false>(n, nmax, x, w, L, the_min, Laux, rmin, rdelta, nstep, use_mad);
}

float make_qkx3_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad) {
  return make_qkx_quants<true>(n, nmax, x, w, L, the_min, Laux, rmin, rdelta, nstep, use_mad);
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* qw) {
  float mx = 0.f;
  for (int i = 0; i < n; ++i) mx = mx > x[i] ? mx : x[i];
  if (mx < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = to_f(nmax) / mx;
  // ggml stores these first levels unclamped into uint8_t (modulo 256) and
  // measures the error with the stored byte.
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
  const float scale = 1.f / iscale;
  float best = 0.f;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * to_f(L[i]);
    best = best + (qw[i] * diff) * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * to_f(is) + to_f(nmax)) / mx;
    const float scale_is = 1.f / iscale_is;
    float mse = 0.f;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale_is * x[i]);
      if (l > nmax) l = nmax;
      const float diff = x[i] - scale_is * to_f(l);
      mse = mse + (qw[i] * diff) * diff;
    }
    if (mse < best) {
      best = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0.f, suml2 = 0.f;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    if (l > nmax) l = nmax;  // no lower clamp: a negative l is summed as is, stored modulo 256
    L[i] = static_cast<uint8_t>(l);
    const float w = qw[i];
    sumlx = sumlx + (w * x[i]) * to_f(l);
    suml2 = suml2 + (w * to_f(l)) * to_f(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = qw[i];
      const float li = to_f(L[i]);  // the stored byte, as ggml reads it back
      float slx = sumlx - (w * x[i]) * li;
      float sl2 = suml2 - (w * li) * li;
      if (slx > 0.f && sl2 > 0.f) {
        int nl = nearest_int((x[i] * sl2) / slx);
        if (nl > nmax) nl = nmax;
        if (nl != static_cast<int>(L[i])) {
          slx = slx + (w * x[i]) * to_f(nl);
          sl2 = sl2 + (w * to_f(nl)) * to_f(nl);
          if ((slx * slx) * suml2 > (sumlx * sumlx) * sl2) {
            L[i] = static_cast<uint8_t>(nl);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  return suml2 > 0.f ? sumlx / suml2 : 0.f;
}

}  // namespace qk

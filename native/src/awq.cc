// AWQ on one layer (lib/js/awq.ts is the reference, and documents the
// choices): s = mean|x|^r / mean|w|^(1-r) for r = i/grid, scored by the output
// error on min(n, tokens) evenly spaced calibration rows, then per-group
// clipping thresholds, then the final quantize of clip(W diag(s)).
//
// The score of one r needs X (t x cols) times (W - Q(W s)/s)^T: a matrix
// product split over the pool. The clipping search scores each candidate
// threshold by the same quantity as the reference, the squared error of the
// group's share of the outputs sum_i (x_i . (q - w))^2, either directly or,
// when the group is narrower than the t scoring rows, as (q - w)^T G (q - w)
// with G the group's Gram matrix of those rows: the same number in fewer
// operations, summed in another order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "block_grid.h"
#include "calibrated.h"
#include "dense.h"
#include "dispatch.h"
#include "pool.h"
#include "types.h"

namespace qk {
namespace {

using calib::par;


// The quantize-dequantize the clipping search scores one group of g with.
struct StandIn {
  int type;  // CalibParams::type
  int storage;
  bool sym;
  int64_t g;
  QuantizeRowFn quantize_row;
  DequantizeRowFn dequantize_row;

  void operator()(const float* src, float* out) const {
    if (type == kCalibInt4) {
      calib::Int4Params ip;
      calib::int4_params(src, g, sym, &ip);
      for (int64_t e = 0; e < g; ++e) out[e] = static_cast<float>(ip.scale * (calib::int4_level(src[e], ip) - ip.zero));
      return;
    }
    if (type_traits(storage)->block_size == 32) {
      uint8_t bytes[64];
      quantize_row(src, bytes, 32);
      dequantize_row(bytes, out, 32);
      return;
    }
    if (storage == kQ6_K) {
      for (int h = 0; h < 32; h += 16) {
        double amax = 0, vmax = 0;
        for (int e = h; e < h + 16; ++e) {
          if (std::fabs(src[e]) > amax) {
            amax = std::fabs(src[e]);
            vmax = src[e];
          }
        }
        const double scale = vmax / -32;
        for (int e = h; e < h + 16; ++e) {
          out[e] = scale == 0 ? 0.f : static_cast<float>(scale * std::min(31.0, std::max(-32.0, calib::js_round(src[e] / scale))));
        }
      }
      return;
    }
    const double top = storage == kQ4_K ? 15 : 31;
    double lo = 0, hi = -std::numeric_limits<double>::infinity();
    for (int e = 0; e < 32; ++e) {
      lo = std::min<double>(lo, src[e]);
      hi = std::max<double>(hi, src[e]);
    }
    const double scale = (hi - lo) / top;
    for (int e = 0; e < 32; ++e) {
      out[e] = scale == 0 ? static_cast<float>(lo)
                          : static_cast<float>(lo + scale * std::min(top, std::max(0.0, calib::js_round((src[e] - lo) / scale))));
    }
  }
};

}  // namespace

Status awq(const CalibParams& p, const float* weights, size_t weights_len, int64_t rows, int64_t cols, const float* calib_x,
           size_t calib_len, int64_t n, uint8_t* dst, size_t dst_len, float* scales, size_t scales_len, double* ratio_out) {
  using namespace calib;
  int st;
  int64_t group;
  Status s = check_args("awq", p, weights_len, rows, cols, calib_len, n, dst_len, &st, &group);
  if (!s.ok()) return s;
  if (scales_len != static_cast<size_t>(cols)) {
    return Status::Error(kErrLength, "awq: scales must hold exactly cols = " + std::to_string(cols) + " floats, got " + std::to_string(scales_len));
  }
  for (size_t i = 0; i < weights_len; ++i) {
    if (!std::isfinite(weights[i])) return Status::Error(kErrValue, "awq: weights[" + std::to_string(i) + "] is not finite");
  }
  for (size_t i = 0; i < calib_len; ++i) {
    if (!std::isfinite(calib_x[i])) return Status::Error(kErrValue, "awq: calib[" + std::to_string(i) + "] is not finite");
  }
  if (p.given_scales) {
    if (p.given_scales_len != static_cast<size_t>(cols)) {
      return Status::Error(kErrLength, "awq: inputScales must hold exactly cols = " + std::to_string(cols) + " floats, got " + std::to_string(p.given_scales_len));
    }
    for (int64_t j = 0; j < cols; ++j) {
      if (!(p.given_scales[j] > 0 && std::isfinite(p.given_scales[j]))) {
        return Status::Error(kErrValue, "awq: inputScales[" + std::to_string(j) + "] must be finite and > 0, got " + std::to_string(p.given_scales[j]));
      }
    }
  }
  const TypeKernels& kern = active_kernels().type[st];
  if (!kern.quantize_row || !kern.dequantize_row) {
    return Status::Error(kErrType, std::string("awq: ") + type_traits(st)->name + " has no kernels in this build");
  }
  const bool int4 = p.type == kCalibInt4;
  const TypeTraits& tt = *type_traits(st);
  const int64_t rb = static_cast<int64_t>(row_bytes(tt, cols));
  const QuantizeRowFn quantize_row = kern.quantize_row;
  const DequantizeRowFn dequantize_row = kern.dequantize_row;
  auto quantize = [&](const float* src, uint8_t* out) {
    if (int4) quantize_int4_row(src, out, cols, group, p.sym);
    else quantize_row(src, out, cols);
  };

  // the scoring rows: evenly spaced, at most p.tokens
  const int64_t t = std::min(n, p.tokens);
  std::vector<float> xcopy;
  const float* x = calib_x;
  if (n > p.tokens) {
    xcopy.resize(static_cast<size_t>(t * cols));
    for (int64_t i = 0; i < t; ++i) {
      const int64_t src = (i * n) / t;
      std::memcpy(xcopy.data() + i * cols, calib_x + src * cols, static_cast<size_t>(cols) * sizeof(float));
    }
    x = xcopy.data();
  }

  // mean |x| over every calibration row; mean |w| / max|w| of its group over rows
  constexpr int64_t CB = 256;
  std::vector<double> xmean(static_cast<size_t>(cols), 0.0), wmean(static_cast<size_t>(cols), 0.0);
  par((cols + CB - 1) / CB, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t cb = lo; cb < hi; ++cb) {
      const int64_t c0 = cb * CB, m = std::min(CB, cols - c0);
      double* xm = xmean.data() + c0;
      for (int64_t r = 0; r < n; ++r) {
        const float* row = calib_x + r * cols + c0;
        for (int64_t j = 0; j < m; ++j) xm[j] += std::fabs(static_cast<double>(row[j]));
      }
      for (int64_t j = 0; j < m; ++j) xm[j] /= static_cast<double>(n);
    }
  });
  const int64_t mg = int4 ? group : 32;
  par(cols / mg, std::max<int64_t>(1, 256 / mg), [&](int64_t lo, int64_t hi) {
    for (int64_t gi = lo; gi < hi; ++gi) {
      const int64_t c0 = gi * mg;
      double* wm = wmean.data() + c0;
      for (int64_t r = 0; r < rows; ++r) {
        const float* wr = weights + r * cols + c0;
        double m = 0;
        for (int64_t e = 0; e < mg; ++e) m = std::max(m, std::fabs(static_cast<double>(wr[e])));
        for (int64_t e = 0; e < mg; ++e) wm[e] += m > 0 ? std::fabs(static_cast<double>(wr[e])) / m : 0;
      }
      for (int64_t e = 0; e < mg; ++e) wm[e] /= static_cast<double>(rows);
    }
  });

  // the exponent search
  std::vector<double> d(p.given_scales ? 0 : static_cast<size_t>(rows * cols));  // W - Q(W s)/s
  std::vector<double> sv(static_cast<size_t>(cols));
  std::vector<float> sf(static_cast<size_t>(cols)), best(static_cast<size_t>(cols), 1.f);
  double best_loss = std::numeric_limits<double>::infinity();
  double best_ratio = 0;
  if (p.given_scales) {
    std::copy(p.given_scales, p.given_scales + cols, best.begin());
    best_loss = 0;
    best_ratio = -1;
  }
  constexpr int64_t TS = 64, TO = 128;  // loss tiles: scoring rows x outputs
  const int64_t nts = (t + TS - 1) / TS, nto = (rows + TO - 1) / TO;
  std::vector<double> partial(static_cast<size_t>(nts * nto));
  for (int64_t gi = 0; !p.given_scales && gi < p.grid; ++gi) {
    const double ratio = static_cast<double>(gi) / static_cast<double>(p.grid);
    double mx = 0, mn = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < cols; ++j) {
      double v = std::pow(xmean[j], ratio) / (std::pow(wmean[j], 1 - ratio) + 1e-4);
      if (!(v >= 1e-4)) v = 1e-4;
      sv[j] = v;
      mx = std::max(mx, v);
      mn = std::min(mn, v);
    }
    const double norm = std::sqrt(mx * mn);
    for (int64_t j = 0; j < cols; ++j) sf[j] = static_cast<float>(sv[j] / norm);
    par(rows, 4, [&](int64_t lo, int64_t hi) {
      std::vector<float> scaled(static_cast<size_t>(cols)), q(static_cast<size_t>(cols));
      std::vector<uint8_t> scratch(static_cast<size_t>(rb));
      for (int64_t r = lo; r < hi; ++r) {
        const float* wr = weights + r * cols;
        for (int64_t j = 0; j < cols; ++j) scaled[j] = wr[j] * sf[j];
        quantize(scaled.data(), scratch.data());
        dequantize_row(scratch.data(), q.data(), cols);
        double* dr = d.data() + r * cols;
        for (int64_t j = 0; j < cols; ++j) dr[j] = static_cast<double>(wr[j]) - static_cast<double>(q[j] / sf[j]);
      }
    });
    // sum over scoring rows s and outputs o of (x_s . d_o)^2
    par(nts * nto, 1, [&](int64_t lo, int64_t hi) {
      std::vector<double> c(static_cast<size_t>(TS * TO));
      for (int64_t tile = lo; tile < hi; ++tile) {
        const int64_t s0 = (tile / nto) * TS, o0 = (tile % nto) * TO;
        const int64_t ms = std::min(TS, t - s0), mo = std::min(TO, rows - o0);
        std::fill(c.begin(), c.end(), 0.0);
        gemm(ms, mo, cols, x + s0 * cols, 1, cols, d.data() + o0 * cols, 1, cols, c.data(), TO, 1.0);
        double sum = 0;
        for (int64_t i = 0; i < ms; ++i)
          for (int64_t j = 0; j < mo; ++j) sum += c[i * TO + j] * c[i * TO + j];
        partial[tile] = sum;
      }
    });
    double sum = 0;
    for (double v : partial) sum += v;
    const double loss = sum / (static_cast<double>(t) * static_cast<double>(rows));
    if (loss < best_loss) {
      best_loss = loss;
      best_ratio = ratio;
      best = sf;
    }
  }
  if (!std::isfinite(best_loss)) {
    return Status::Error(kErrValue, "awq: no scale gave a finite output error (are the weights or calibration rows too large?)");
  }
  std::vector<double>().swap(d);

  std::vector<float> scaled(static_cast<size_t>(rows * cols));
  par(rows, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r)
      for (int64_t j = 0; j < cols; ++j) scaled[r * cols + j] = weights[r * cols + j] * best[j];
  });

  if (p.clip) {
    const int64_t g = int4 ? group : 32;
    // the scoring rows divided by s, as doubles
    std::vector<double> xs(static_cast<size_t>(t * cols));
    par(t, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        for (int64_t j = 0; j < cols; ++j) xs[i * cols + j] = static_cast<double>(x[i * cols + j] / best[j]);
    });
    const bool gram = g <= t;
    std::vector<double> gm;  // per group: its g x g Gram matrix over the scoring rows
    if (gram) {
      gm.assign(static_cast<size_t>(cols * g), 0.0);
      par(cols / g, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t gi = lo; gi < hi; ++gi) {
          const int64_t c0 = gi * g;
          gemm(g, g, t, xs.data() + c0, cols, 1, xs.data() + c0, cols, 1, gm.data() + c0 * g, g, 1.0);
        }
      });
    }
    const StandIn stand{p.type, st, p.sym, g, quantize_row, dequantize_row};
    par(rows, 4, [&](int64_t lo, int64_t hi) {
      std::vector<float> vals(static_cast<size_t>(g)), qv(static_cast<size_t>(g));
      std::vector<double> dv(static_cast<size_t>(g)), gd(static_cast<size_t>(g));
      for (int64_t r = lo; r < hi; ++r) {
        for (int64_t c0 = 0; c0 < cols; c0 += g) {
          float* w = scaled.data() + r * cols + c0;
          double max = 0;
          for (int64_t e = 0; e < g; ++e) max = std::max(max, std::fabs(static_cast<double>(w[e])));
          if (max == 0) continue;
          double best_err = std::numeric_limits<double>::infinity();
          double best_max = max;
          for (int step = 0; step < 10; ++step) {
            const double m = max * (1 - step / 20.0);
            for (int64_t e = 0; e < g; ++e) vals[e] = static_cast<float>(std::min(m, std::max(-m, static_cast<double>(w[e]))));
            stand(vals.data(), qv.data());
            for (int64_t e = 0; e < g; ++e) dv[e] = static_cast<double>(qv[e]) - static_cast<double>(w[e]);
            double err = 0;
            if (gram) {
              const double* G = gm.data() + c0 * g;
              for (int64_t a = 0; a < g; ++a) gd[a] = calib::dot(G + a * g, dv.data(), g);
              err = calib::dot(gd.data(), dv.data(), g);
            } else {
              for (int64_t i = 0; i < t; ++i) {
                const double y = calib::dot(xs.data() + i * cols + c0, dv.data(), g);
                err += y * y;
              }
            }
            if (err < best_err) {
              best_err = err;
              best_max = m;
            }
          }
          for (int64_t e = 0; e < g; ++e) w[e] = static_cast<float>(std::min(best_max, std::max(-best_max, static_cast<double>(w[e]))));
        }
      }
    });
  }

  par(rows, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) quantize(scaled.data() + r * cols, dst + r * rb);
  });
  std::copy(best.begin(), best.end(), scales);
  *ratio_out = best_ratio;
  return Status::Ok();
}

}  // namespace qk

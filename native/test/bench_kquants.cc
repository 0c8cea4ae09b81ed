// Micro benchmark (and quick parity check) of the K-quant and 5-bit kernels
// against q4_0 / q8_0 / f32: one matrix-vector product y[n] = dot(W[n], x),
// W = N x K (default 11008 x 4096, the llama-7B FFN shape), one thread, per
// x86 ISA variant (avx2, avx512 without VNNI, avx512 with VNNI: the variants
// are built here directly, so the non-VNNI AVX-512 kernels are measured and
// checked on a VNNI CPU too). Standalone (no Node):
//
//   g++ -O3 -ffp-contract=off -std=c++17 -Inative/src
//     $(grep -v addon.cc native/sources.txt) native/test/bench_kquants.cc -o /tmp/bench_kquants
//   /tmp/bench_kquants
//
// Options: --k K --n N --rounds R --cold-mib M (size of the rotating copies
// per type, default 512) --hot-only --cold-only --no-parity --f32 (also time
// the 'f32' precision dots).
//
// Timing is interleaved: every round runs each (type, ISA) matvec once, in
// turn, so that the noise of a shared machine hits every row alike; medians
// and per-round paired ratios (each K-quant against q4_0 / q8_0 of the same
// round and ISA) are reported. 'q8' rows include the activation quantization.
//   cold: each round reads another copy of the matrix (copies >= --cold-mib),
//         so the weights come from DRAM, as with a real model;
//   hot:  always the same copy (whatever fits in cache stays there).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <ctime>
#include <string>
#include <vector>

#include "cpu.h"
#include "fp16.h"
#include "kernels.h"
#include "types.h"

using namespace qk;

namespace {

struct Variant {
  std::string name;
  KernelTable t;
};

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// CPU time of this thread: on a shared machine the time the thread spends
// descheduled (another process's time slice) is not counted, which wall time
// cannot avoid; memory and cache contention still show.
double cpu_s() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
#else
  return now_s();
#endif
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// ---- parity (the test's rules, for the variants test_kernels cannot reach) ----

int g_checks = 0, g_fail = 0;

// |got - want| <= bound, or the same non-finite value (inf - inf is NaN).
bool close_to(float got, float want, double bound) {
  if (!std::isfinite(want)) return std::isnan(want) ? std::isnan(got) : got == want;
  return std::fabs(double(got) - double(want)) <= bound;
}

bool same_bits(float a, float b) {
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y || (std::isnan(a) && std::isnan(b));
}

void parity(const KernelTable& ref, const Variant& v, int type, int64_t k, int pattern, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(k), act(k);
  for (auto& e : x) e = nd(rng);
  for (auto& e : act) e = nd(rng);
  if (pattern == 1) for (int64_t i = 0; i < k; i += 29) x[i] = (i & 1) ? -3e4f : 2.5e4f;   // outliers
  if (pattern == 2) for (int64_t i = 0; i < k; ++i) if ((i / 32) % 3 == 1) x[i] = 0.f;    // zero sub-blocks
  if (pattern == 3) for (auto& e : act) e *= 1e-39f;                                         // subnormal activations
  if (pattern == 4) {  // outliers in weights and activations that never meet: the exact integers cancel to 0
    for (int64_t i = 0; i < k; i += 37) x[i] = (i & 1) ? -3e4f : 2.5e4f;
    for (int64_t i = 6; i < k; i += 37) act[i] = (i & 1) ? -3e4f : 2.5e4f;
  }
  const TypeTraits& tt = *type_traits(type);
  const TypeKernels& r = ref.type[type];
  const TypeKernels& s = v.t.type[type];
  std::vector<uint8_t> w(row_bytes(tt, k) + 1);
  uint8_t* wp = w.data() + 1;  // misaligned on purpose
  r.quantize_row(x.data(), wp, k);
  std::vector<float> dr(k), ds(k);
  r.dequantize_row(wp, dr.data(), k);
  s.dequantize_row(wp, ds.data(), k);
  ++g_checks;
  for (int64_t i = 0; i < k; ++i) {
    if (!same_bits(dr[i], ds[i])) { ++g_fail; std::printf("FAIL dequantize %s %s k=%lld p=%d at %lld\n", v.name.c_str(), tt.name, (long long)k, pattern, (long long)i); break; }
  }
  double mag = 0;
  for (int64_t i = 0; i < k; ++i) mag += std::fabs(double(dr[i]) * act[i]);
  ++g_checks;
  const float fr = r.vec_dot_f32(k, wp, act.data()), fs = s.vec_dot_f32(k, wp, act.data());
  if (!close_to(fs, fr, 1e-5 * mag + 1e-30)) { ++g_fail; std::printf("FAIL vec_dot_f32 %s %s k=%lld p=%d: %g vs %g\n", v.name.c_str(), tt.name, (long long)k, pattern, fs, fr); }
  const TypeTraits& at = *type_traits(tt.act_type);
  std::vector<uint8_t> ar(row_bytes(at, k) + 1), as(row_bytes(at, k) + 1);
  ref.type[tt.act_type].quantize_act(act.data(), ar.data() + 1, k);
  v.t.type[tt.act_type].quantize_act(act.data(), as.data() + 1, k);
  ++g_checks;
  if (ar != as) { ++g_fail; std::printf("FAIL quantize_act %s %s k=%lld p=%d\n", v.name.c_str(), at.name, (long long)k, pattern); }
  // The test's bound: 1e-5 * sum |dequantized activation| * (|w| + 2 |offset|).
  std::vector<float> adq(k);
  if (tt.act_type == kQ8_K) {
    for (int64_t i = 0; i < k; ++i) {
      float d;
      std::memcpy(&d, ar.data() + 1 + (i / QK_K) * sizeof(BlockQ8_K), 4);
      adq[i] = d * static_cast<int8_t>(ar[1 + (i / QK_K) * sizeof(BlockQ8_K) + 4 + i % QK_K]);
    }
  } else {
    const int ab = tt.act_type == kQ8_1 ? 36 : 34;
    for (int64_t i = 0; i < k; ++i) {
      const uint8_t* blk = ar.data() + 1 + (i / 32) * ab;
      adq[i] = fp16_to_f32(static_cast<uint16_t>(blk[0] | (blk[1] << 8))) * static_cast<int8_t>(blk[ab - 32 + i % 32]);
    }
  }
  double qmag = 0;
  for (int64_t i = 0; i < k; ++i) {
    double off = 0;
    if (type == kQ5_1) {
      const uint8_t* blk = wp + (i / 32) * tt.block_bytes;
      off = fp16_to_f32(static_cast<uint16_t>(blk[2] | (blk[3] << 8)));
    } else if (type == kQ4_K || type == kQ5_K) {
      const uint8_t* blk = wp + (i / QK_K) * tt.block_bytes;
      const uint8_t* sc = blk + 4;
      const int j = static_cast<int>((i % QK_K) / 32);
      const int m = j < 4 ? (sc[j + 4] & 63) : ((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
      off = fp16_to_f32(static_cast<uint16_t>(blk[2] | (blk[3] << 8))) * m;
    }
    qmag += std::fabs(double(adq[i])) * (std::fabs(double(dr[i])) + 2 * std::fabs(off));
  }
  ++g_checks;
  const float vr = r.vec_dot(k, wp, ar.data() + 1), vs = s.vec_dot(k, wp, ar.data() + 1);
  if (!close_to(vs, vr, 1e-5 * qmag + 1e-30)) { ++g_fail; std::printf("FAIL vec_dot %s %s k=%lld p=%d: %g vs %g\n", v.name.c_str(), tt.name, (long long)k, pattern, vs, vr); }
}

// ---- timing ---------------------------------------------------------------

struct Opts {
  int64_t k = 4096, n = 11008;
  int rounds = 15;
  size_t cold_bytes = size_t(512) << 20;
  bool hot = true, cold = true, parity = true, f32dots = false;
};

struct Row {
  int type;
  bool q8;
  size_t vi;                 // variant
  std::vector<double> t[2];  // [hot] wall ms per round
  std::vector<double> c[2];  // [hot] thread CPU ms per round
};

struct Matrix {
  std::vector<uint8_t> big;
  size_t mat = 0;
  int copies = 1;
};

// Returns wall ms; *cpu_ms gets the thread CPU ms.
double matvec(const KernelTable& tab, int type, bool q8, const uint8_t* m, const Opts& o, const std::vector<float>& x,
              std::vector<uint8_t>& act, std::vector<float>& y, double* cpu_ms = nullptr) {
  const TypeTraits& tt = *type_traits(type);
  const size_t rb = row_bytes(tt, o.k);
  const TypeKernels& tk = tab.type[type];
  const double c0 = cpu_s(), t0 = now_s();
  if (q8) {
    tab.type[tt.act_type].quantize_act(x.data(), act.data(), o.k);
    for (int64_t i = 0; i < o.n; ++i) y[i] = tk.vec_dot(o.k, m + i * rb, act.data());
  } else {
    for (int64_t i = 0; i < o.n; ++i) y[i] = tk.vec_dot_f32(o.k, m + i * rb, x.data());
  }
  const double t1 = now_s(), c1 = cpu_s();
  if (cpu_ms) *cpu_ms = (c1 - c0) * 1e3;
  return (t1 - t0) * 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--k" && i + 1 < argc) o.k = std::atoll(argv[++i]);
    else if (a == "--n" && i + 1 < argc) o.n = std::atoll(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) o.rounds = std::atoi(argv[++i]);
    else if (a == "--cold-mib" && i + 1 < argc) o.cold_bytes = size_t(std::atoll(argv[++i])) << 20;
    else if (a == "--hot-only") o.cold = false;
    else if (a == "--cold-only") o.hot = false;
    else if (a == "--no-parity") o.parity = false;
    else if (a == "--f32") o.f32dots = true;
    else { std::fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
  }
  if (o.k % QK_K != 0) { std::fprintf(stderr, "k must be a multiple of 256\n"); return 2; }

  KernelTable scalar;
  fill_scalar(scalar);
  std::vector<Variant> vars;
#if defined(__x86_64__) || defined(_M_X64)
  const CpuFeatures& f = cpu_features();
  if (f.avx2) {
    KernelTable t = scalar;
    fill_avx2(t);
    fill_avx2_kquants(t);
    vars.push_back({"avx2", t});
    if (f.avx512) {
      KernelTable t5 = t;
      fill_avx512(t5, false);
      fill_avx512_kquants(t5, false);
      vars.push_back({"avx512", t5});
      if (f.avx512_vnni) {
        KernelTable t6 = t;
        fill_avx512(t6, true);
        fill_avx512_kquants(t6, true);
        vars.push_back({"avx512vnni", t6});
      }
    }
  }
#endif
  if (vars.empty()) { std::printf("no x86 SIMD variant on this CPU\n"); return 0; }

  const int ktypes[] = {kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K};
  if (o.parity) {
    std::mt19937 rng(99);
    for (const Variant& v : vars)
      for (int type : ktypes)
        for (int64_t k : {256, 512, 4096 + 256})
          for (int p = 0; p < 5; ++p) parity(scalar, v, type, k, p, rng);
    std::printf("parity vs scalar (avx2, avx512 [no VNNI], avx512vnni as built here): %d checks, %d failed\n\n", g_checks, g_fail);
  }
  if ((!o.hot && !o.cold) || o.rounds < 1) return g_fail ? 1 : 0;

  // Weights: 128 distinct random rows (N(0, 0.02)) quantized by the scalar
  // quantizers, tiled over the N rows (the data does not change the timing).
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(o.k);
  for (auto& v : x) v = nd(rng);
  const int64_t distinct = std::min<int64_t>(128, o.n);
  std::vector<float> wf(distinct * o.k);
  for (auto& v : wf) v = nd(rng) * 0.02f;

  const int types[] = {kF32, kQ8_0, kQ4_0, kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K};
  std::vector<Matrix> mats(kTypeIdLimit);
  for (int type : types) {
    const TypeTraits& tt = *type_traits(type);
    const size_t rb = row_bytes(tt, o.k);
    Matrix& M = mats[type];
    M.mat = rb * size_t(o.n);
    M.copies = o.cold ? int(std::max<size_t>(2, (o.cold_bytes + M.mat - 1) / M.mat)) : 1;
    M.big.resize(M.mat * M.copies);
    std::vector<uint8_t> uniq(rb * distinct);
    for (int64_t i = 0; i < distinct; ++i) scalar.type[type].quantize_row(wf.data() + i * o.k, uniq.data() + i * rb, o.k);
    for (int64_t i = 0; i < o.n; ++i) std::memcpy(M.big.data() + i * rb, uniq.data() + (i % distinct) * rb, rb);
    for (int c = 1; c < M.copies; ++c) std::memcpy(M.big.data() + c * M.mat, M.big.data(), M.mat);
  }

  std::vector<Row> rows;
  for (int type : types) {
    for (size_t vi = 0; vi < vars.size(); ++vi) {
      if (type == kF32) { rows.push_back({type, false, vi, {}, {}}); continue; }
      rows.push_back({type, true, vi, {}, {}});
    }
  }
  if (o.f32dots) {
    for (int type : types) {
      if (type == kF32) continue;
      for (size_t vi = 0; vi < vars.size(); ++vi) rows.push_back({type, false, vi, {}, {}});
    }
  }

  std::vector<float> y(o.n);
  std::vector<uint8_t> act(row_bytes(*type_traits(kQ8_K), o.k) + row_bytes(*type_traits(kQ8_1), o.k));
  std::printf("matvec %lld x %lld (N x K), 1 thread, %d interleaved rounds; cold = rotating copies >= %zu MiB per type\n",
              (long long)o.n, (long long)o.k, o.rounds, o.cold_bytes >> 20);
  for (int hot = 0; hot < 2; ++hot) {
    if (hot ? !o.hot : !o.cold) continue;
    // Warm-up: one untimed pass over every copy of every row's matrix.
    for (Row& r : rows) {
      const Matrix& M = mats[r.type];
      for (int c = 0; c < (hot ? 1 : M.copies); ++c) matvec(vars[r.vi].t, r.type, r.q8, M.big.data() + c * M.mat, o, x, act, y);
    }
    // Each round in a fresh random order, so that periodic disturbances do
    // not keep hitting the same rows.
    std::vector<size_t> order(rows.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937 shuffle_rng(1234 + hot);
    for (int round = 0; round < o.rounds; ++round) {
      std::shuffle(order.begin(), order.end(), shuffle_rng);
      for (size_t ri : order) {
        Row& r = rows[ri];
        const Matrix& M = mats[r.type];
        const uint8_t* m = M.big.data() + (hot ? 0 : size_t(round % M.copies) * M.mat);
        double cpu = 0;
        r.t[hot].push_back(matvec(vars[r.vi].t, r.type, r.q8, m, o, x, act, y, &cpu));
        r.c[hot].push_back(cpu);
      }
    }
  }

  auto find = [&](int type, bool q8, size_t vi) -> const Row* {
    for (const Row& r : rows) if (r.type == type && r.q8 == q8 && r.vi == vi) return &r;
    return nullptr;
  };
  for (int hot = 0; hot < 2; ++hot) {
    if (hot ? !o.hot : !o.cold) continue;
    std::printf("\n%s: %-7s %-5s %-11s %9s %9s %9s %8s %8s\n", hot ? "HOT " : "COLD", "type", "prec", "isa", "cpu med", "wall med",
                "wall best", "ns/row", "GB/s");
    for (const Row& r : rows) {
      const double cmed = median(r.c[hot]), med = median(r.t[hot]), best = *std::min_element(r.t[hot].begin(), r.t[hot].end());
      const double gbs = double(mats[r.type].mat) / (cmed * 1e-3) / 1e9;
      std::printf("      %-7s %-5s %-11s %9.3f %9.3f %9.3f %8.1f %8.2f\n", type_traits(r.type)->name, r.q8 ? "q8" : "f32",
                  vars[r.vi].name.c_str(), cmed, med, best, cmed * 1e6 / double(o.n), gbs);
    }
    std::printf("  (ms per matvec; ns/row and GB/s from the CPU-time median)\n");
    std::printf("  per-round paired ratios of thread CPU times (median over rounds; < 1: faster than the reference):\n");
    for (size_t vi = 0; vi < vars.size(); ++vi) {
      auto ratio = [&](int a, int b) {
        const Row* ra = find(a, a != kF32, vi);
        const Row* rb = find(b, b != kF32, vi);
        std::vector<double> q;
        for (size_t i = 0; i < ra->c[hot].size(); ++i) q.push_back(ra->c[hot][i] / rb->c[hot][i]);
        return median(q);
      };
      std::printf("    %-11s q4_K/q4_0 %.3f  q5_K/q4_0 %.3f  q6_K/q8_0 %.3f  q5_0/q4_0 %.3f  q5_1/q4_0 %.3f  q4_0/f32 %.3f\n",
                  vars[vi].name.c_str(), ratio(kQ4_K, kQ4_0), ratio(kQ5_K, kQ4_0), ratio(kQ6_K, kQ8_0), ratio(kQ5_0, kQ4_0),
                  ratio(kQ5_1, kQ4_0), ratio(kQ4_0, kF32));
    }
  }
  return g_fail ? 1 : 0;
}

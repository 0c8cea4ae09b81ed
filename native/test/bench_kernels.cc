// Micro benchmark of the kernel tables: one matrix-vector product
// y[n] = dot(W[n], x) with W = N x K (default 11008 x 4096, the llama-7B FFN
// shape), on one thread, per ISA and weight type. Standalone (no Node):
//
//   g++ -O3 -ffp-contract=off -std=c++17 -Inative/src
//     $(ls native/src/*.cc | grep -v addon.cc) native/test/bench_kernels.cc
//     -o /tmp/bench_kernels -lpthread && /tmp/bench_kernels
//
// Options: --k K --n N --reps R (default 12; scalar runs always 3),
// --hot-only, --cold-only, --quick (3 repetitions, 6 headline rounds).
// Times are medians and minima: on a shared machine the minimum is the
// better estimate of what the kernel can do; the closing "headline"
// alternates f32 and q4_0 runs so that both see the same background load.
//
// Two memory regimes per measurement:
//   cold: each repetition reads a different copy of the matrix, the copies
//         totalling >= 1 GiB, so the weights always come from DRAM (the
//         regime of a real model, whose weights never fit in cache);
//   hot:  the same copy every repetition (whatever of it fits in cache stays).
// 'q8' rows time vec_dot on activations quantized once per product (the
// quantize_act time is included); 'f32' rows time vec_dot_f32.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu.h"
#include "kernels.h"
#include "types.h"

using namespace qk;

namespace {

struct Variant {
  std::string name;
  KernelTable t;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Opts {
  int64_t k = 4096, n = 11008;
  int reps = 12;
  bool hot = true, cold = true, quick = false;
};

struct Result {
  double ms = 0;        // median time of one matvec
  double best_ms = 0;   // fastest repetition (the machine's noise only ever adds time)
  double gbps = 0;      // weight bytes / time
  float check = 0;
};

// Times one matvec over copies of the matrix (rotating when cold).
Result run(const TypeKernels& tk, int type, bool q8, const std::vector<uint8_t>& big, size_t mat_bytes, int copies,
           const Opts& o, const std::vector<float>& x, const KernelTable& act_table, int reps, int warm, int start = 0) {
  const TypeTraits& tt = *type_traits(type);
  const size_t rb = row_bytes(tt, o.k);
  std::vector<float> y(static_cast<size_t>(o.n));
  std::vector<uint8_t> act;
  if (q8) act.resize(row_bytes(*type_traits(tt.act_type), o.k));
  std::vector<double> times;
  float check = 0;
  // Untimed warm-up passes first (this VM's memory is slower on the first
  // read after a while idle), then the timed passes, rotating over the copies.
  for (int r = 0; r < warm + reps; ++r) {
    const uint8_t* m = big.data() + static_cast<size_t>((start + r) % copies) * mat_bytes;
    const double t0 = now_s();
    if (q8) {
      act_table.type[tt.act_type].quantize_act(x.data(), act.data(), o.k);
      for (int64_t i = 0; i < o.n; ++i) y[i] = tk.vec_dot(o.k, m + i * rb, act.data());
    } else {
      for (int64_t i = 0; i < o.n; ++i) y[i] = tk.vec_dot_f32(o.k, m + i * rb, x.data());
    }
    const double t1 = now_s();
    if (r >= warm) times.push_back(t1 - t0);
    check = y[0] + y[o.n / 2] + y[o.n - 1];
  }
  std::sort(times.begin(), times.end());
  Result res;
  res.ms = times[times.size() / 2] * 1e3;
  res.best_ms = times[0] * 1e3;
  res.gbps = static_cast<double>(mat_bytes) / (res.ms * 1e-3) / 1e9;
  res.check = check;
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--k" && i + 1 < argc) o.k = std::atoll(argv[++i]);
    else if (a == "--n" && i + 1 < argc) o.n = std::atoll(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) o.reps = std::atoi(argv[++i]);
    else if (a == "--hot-only") o.cold = false;
    else if (a == "--cold-only") o.hot = false;
    else if (a == "--quick") o.quick = true;
    else { std::fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
  }
  if (o.k % 32 != 0) { std::fprintf(stderr, "k must be a multiple of 32\n"); return 2; }

  std::vector<Variant> vars;
  KernelTable scalar;
  fill_scalar(scalar);
  vars.push_back({"scalar", scalar});
#if defined(__x86_64__) || defined(_M_X64)
  const CpuFeatures& f = cpu_features();
  if (f.avx2) {
    KernelTable t = scalar;
    fill_avx2(t);
    vars.push_back({"avx2", t});
    if (f.avx512) {
      KernelTable t5 = t;
      fill_avx512(t5, false);
      vars.push_back({"avx512", t5});
      if (f.avx512_vnni) {
        KernelTable t6 = t;
        fill_avx512(t6, true);
        vars.push_back({"avx512vnni", t6});
      }
    }
  }
#endif
  const KernelTable& best = vars.back().t;

  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(o.k));
  for (auto& v : x) v = nd(rng);
  // One float source matrix, quantized per type.
  std::vector<float> wf(static_cast<size_t>(o.k * o.n));
  for (auto& v : wf) v = nd(rng) * 0.02f;

  std::printf("matvec %lld x %lld (N x K), 1 thread, median of %d; cold = weights from DRAM (>= 1 GiB of copies)\n",
              static_cast<long long>(o.n), static_cast<long long>(o.k), o.reps);
  std::printf("%-7s %-5s %-11s %-5s %10s %10s %10s %9s\n", "type", "prec", "isa", "mem", "median ms", "best ms", "ns/row", "GB/s");

  struct Key { int type; bool q8; };
  const Key keys[] = {{kF32, false}, {kF16, false}, {kBF16, false}, {kQ8_0, true}, {kQ4_0, true}, {kQ4_1, true},
                      {kQ8_0, false}, {kQ4_0, false}, {kQ4_1, false}};
  // results[key][variant][hot?]
  double res_ms[9][8][2] = {}, res_best[9][8][2] = {};
  for (int ki = 0; ki < 9; ++ki) {
    const int type = keys[ki].type;
    const bool q8 = keys[ki].q8;
    const TypeTraits& tt = *type_traits(type);
    const size_t rb = row_bytes(tt, o.k);
    const size_t mat = rb * static_cast<size_t>(o.n);
    const int copies = static_cast<int>(std::max<size_t>(2, ((size_t(1) << 30) + mat - 1) / mat));
    std::vector<uint8_t> big(mat * static_cast<size_t>(o.cold ? copies : 1));
    for (int64_t i = 0; i < o.n; ++i) best.type[type].quantize_row(wf.data() + i * o.k, big.data() + i * rb, o.k);
    for (int c = 1; c < (o.cold ? copies : 1); ++c) std::memcpy(big.data() + c * mat, big.data(), mat);
    for (size_t vi = 0; vi < vars.size(); ++vi) {
      const TypeKernels& tk = vars[vi].t.type[type];
      if (q8 ? !tk.vec_dot : !tk.vec_dot_f32) continue;
      // Skip ISA variants whose entry is the same function as the previous variant's.
      if (vi > 0) {
        const TypeKernels& prev = vars[vi - 1].t.type[type];
        if (q8 ? tk.vec_dot == prev.vec_dot : tk.vec_dot_f32 == prev.vec_dot_f32) continue;
      }
      const bool slow = vars[vi].name == "scalar";
      const int reps = (slow || o.quick) ? 3 : o.reps;
      for (int hot = 0; hot < 2; ++hot) {
        if (hot ? !o.hot : !o.cold) continue;
        // Warm-up: every copy once (compute-bound scalar runs: one pass).
        const int nc = hot ? 1 : copies;
        const Result r = run(tk, type, q8, big, mat, nc, o, x, vars[vi].t, reps, slow ? 1 : nc);
        res_ms[ki][vi][hot] = r.ms;
        res_best[ki][vi][hot] = r.best_ms;
        std::printf("%-7s %-5s %-11s %-5s %10.3f %10.3f %10.1f %9.2f   (check %.4g)\n", tt.name, q8 ? "q8" : "f32",
                    vars[vi].name.c_str(), hot ? "hot" : "cold", r.ms, r.best_ms, r.ms * 1e6 / static_cast<double>(o.n),
                    r.gbps, static_cast<double>(r.check));
        std::fflush(stdout);
      }
    }
  }

  // Ratios: q4_0 'q8' on the best ISA vs the best f32 kernel and vs scalar.
  auto best_of = [&](double (&t)[9][8][2], int ki, int hot) {
    double b = 0;
    for (size_t vi = 1; vi < vars.size(); ++vi) {
      const double v = t[ki][vi][hot];
      if (v > 0 && (b == 0 || v < b)) b = v;
    }
    return b;
  };
  std::printf("\nratios (time of the other / time of q4_0 'q8' on its best ISA), from median | best times:\n");
  for (int hot = 0; hot < 2; ++hot) {
    if (hot ? !o.hot : !o.cold) continue;
    for (int which = 0; which < 2; ++which) {
      double (&t)[9][8][2] = which ? res_best : res_ms;
      const double q40 = best_of(t, 4, hot);
      std::printf("  %-4s %-6s: vs best SIMD f32 %5.2fx | vs scalar q4_0 %5.2fx | vs scalar f32 %5.2fx | q8_0 %.2fx, q4_1 %.2fx\n",
                  hot ? "hot" : "cold", which ? "best" : "median", best_of(t, 0, hot) / q40, t[4][0][hot] / q40,
                  t[0][0][hot] / q40, best_of(t, 3, hot) / q40, best_of(t, 5, hot) / q40);
    }
  }

  // Headline, interleaved so that noise from other processes hits both sides
  // alike: f32 (best SIMD ISA), q4_0 'q8' (best ISA) and q4_0 scalar, cold.
  if (o.cold) {
    const int rounds = o.quick ? 6 : 16;
    struct Side { const char* name; int type; bool q8; const TypeKernels* tk; const KernelTable* tab; std::vector<uint8_t> big; size_t mat; int copies; std::vector<double> t; };
    auto pick = [&](int ki) -> size_t {  // variant with the best median above
      size_t bv = 1;
      for (size_t vi = 1; vi < vars.size(); ++vi) if (res_ms[ki][vi][0] > 0 && (res_ms[ki][bv][0] == 0 || res_ms[ki][vi][0] < res_ms[ki][bv][0])) bv = vi;
      return bv;
    };
    const size_t vf = pick(0), vq = pick(4);
    Side sides[3] = {{"f32 f32", kF32, false, &vars[vf].t.type[kF32], &vars[vf].t, {}, 0, 0, {}},
                     {"q4_0 q8", kQ4_0, true, &vars[vq].t.type[kQ4_0], &vars[vq].t, {}, 0, 0, {}},
                     {"q4_0 q8 scalar", kQ4_0, true, &vars[0].t.type[kQ4_0], &vars[0].t, {}, 0, 0, {}}};
    for (Side& sd : sides) {
      const TypeTraits& tt = *type_traits(sd.type);
      const size_t rb = row_bytes(tt, o.k);
      sd.mat = rb * static_cast<size_t>(o.n);
      sd.copies = static_cast<int>(std::max<size_t>(2, ((size_t(1) << 30) + sd.mat - 1) / sd.mat));
      if (&sd == &sides[2]) { sd.big = sides[1].big; sd.copies = sides[1].copies; continue; }
      sd.big.resize(sd.mat * static_cast<size_t>(sd.copies));
      for (int64_t i = 0; i < o.n; ++i) best.type[sd.type].quantize_row(wf.data() + i * o.k, sd.big.data() + i * rb, o.k);
      for (int c = 1; c < sd.copies; ++c) std::memcpy(sd.big.data() + c * sd.mat, sd.big.data(), sd.mat);
    }
    for (int r = 0; r < rounds; ++r) {
      for (int si = 0; si < 3; ++si) {
        Side& sd = sides[si];
        if (si == 2 && r % 4 != 0) continue;  // the scalar side is slow and compute-bound
        const Result res = run(*sd.tk, sd.type, sd.q8, sd.big, sd.mat, sd.copies, o, x, *sd.tab, 1,
                               r == 0 && si < 2 ? sd.copies : 0, r);
        sd.t.push_back(res.ms);
      }
    }
    std::printf("\nheadline, cold, interleaved (%d rounds): ", rounds);
    double med[3], mn[3];
    for (int si = 0; si < 3; ++si) {
      std::vector<double> t = sides[si].t;
      std::sort(t.begin(), t.end());
      med[si] = t[t.size() / 2];
      mn[si] = t[0];
    }
    std::printf("f32 [%s] %.3f ms (best %.3f), q4_0 [%s] %.3f ms (best %.3f), q4_0 scalar %.3f ms\n",
                vars[vf].name.c_str(), med[0], mn[0], vars[vq].name.c_str(), med[1], mn[1], med[2]);
    std::printf("  q4_0 is %.2fx faster than f32 (best times: %.2fx), %.2fx faster than scalar q4_0; "
                "q4_0 streams %.1f GB/s\n", med[0] / med[1], mn[0] / mn[1], med[2] / med[1],
                static_cast<double>(sides[1].mat) / (med[1] * 1e-3) / 1e9);
  }
  return 0;
}

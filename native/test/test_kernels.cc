// Every SIMD table entry against the scalar table, on every ISA this CPU runs:
// quantizers and dequantizers byte for byte, dot products within
// 1e-5 * sum|x * w| (only the float summation order may differ).
// Also runs under qemu-aarch64 for the NEON kernels.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dispatch.h"
#include "fp16.h"
#include "interleave.h"

using namespace qk;

namespace {

int g_failures = 0;
int g_checks = 0;

void fail(const std::string& what) {
  if (++g_failures <= 30) std::printf("FAIL %s\n", what.c_str());
}

enum Pattern { kNormal, kZeros, kEqual, kOutlier, kSubnormal, kNegZero, kTiny, kMixed, kPatternCount };
const char* pattern_name(int p) {
  static const char* n[] = {"normal", "zeros", "equal", "outlier", "subnormal", "negzero", "tiny", "mixed"};
  return n[p];
}

std::vector<float> make(int pattern, int64_t k, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(k));
  for (auto& v : x) v = nd(rng);
  switch (pattern) {
    case kZeros: for (auto& v : x) v = 0.f; break;
    case kEqual: for (auto& v : x) v = 0.375f; break;
    case kOutlier:
      for (size_t i = 0; i < x.size(); i += 37) x[i] = (i & 1) ? -3.0e4f : 2.5e4f;
      break;
    case kSubnormal: for (auto& v : x) v *= 1e-39f; break;
    case kNegZero: for (size_t i = 0; i < x.size(); ++i) if (i % 3) x[i] = -0.f; break;
    case kTiny: for (auto& v : x) v *= 1e-6f; break;
    case kMixed:
      for (size_t i = 0; i < x.size(); ++i) {
        const size_t blk = (i / 32) % 4;
        if (blk == 1) x[i] = 0.f;
        else if (blk == 2) x[i] = -1.25f;
        else if (blk == 3 && i % 32 == 5) x[i] = 1e3f;
      }
      break;
    default: break;
  }
  return x;
}

bool same_float(float a, float b) {
  uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  return ua == ub || (std::isnan(a) && std::isnan(b));
}

bool close(float got, float want, double bound) {
  if (std::isnan(want) || std::isinf(want)) return same_float(got, want) || (std::isnan(got) && std::isnan(want));
  return std::fabs(static_cast<double>(got) - want) <= bound;
}

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

std::vector<float> dequantize_activations(int act, const uint8_t* a, int64_t k) {
  std::vector<float> out(static_cast<size_t>(k));
  if (act == kQ8_K) {
    for (int64_t b = 0; b < k / QK_K; ++b) {
      const uint8_t* blk = a + b * sizeof(BlockQ8_K);
      float d;
      std::memcpy(&d, blk, 4);
      for (int i = 0; i < QK_K; ++i) out[b * QK_K + i] = static_cast<int8_t>(blk[4 + i]) * d;
    }
    return out;
  }
  const int bytes = act == kQ8_1 ? 36 : 34;
  for (int64_t b = 0; b < k / 32; ++b) {
    const uint8_t* blk = a + b * bytes;
    const float d = fp16_to_f32(u16(blk));
    for (int i = 0; i < 32; ++i) out[b * 32 + i] = static_cast<int8_t>(blk[bytes - 32 + i]) * d;
  }
  return out;
}

// The additive part of each dequantized weight (0 for symmetric formats).
std::vector<float> weight_offsets(int type, const uint8_t* w, int64_t k) {
  std::vector<float> off(static_cast<size_t>(k), 0.f);
  if (type == kQ4_1 || type == kQ5_1) {
    const int bytes = type == kQ4_1 ? 20 : 24;
    for (int64_t i = 0; i < k; ++i) off[i] = fp16_to_f32(u16(w + (i / 32) * bytes + 2));
  } else if (type == kQ4_K || type == kQ5_K) {
    const int bytes = type == kQ4_K ? 144 : 176;
    for (int64_t i = 0; i < k; ++i) {
      const uint8_t* blk = w + (i / QK_K) * bytes;
      const uint8_t* sc = blk + 4;
      const int j = static_cast<int>((i % QK_K) / 32);
      const int m = j < 4 ? (sc[j + 4] & 63) : ((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
      off[i] = fp16_to_f32(u16(blk + 2)) * static_cast<float>(m);
    }
  }
  return off;
}

// One byte of slack in front makes every row pointer misaligned on purpose.
struct Buf {
  std::vector<uint8_t> raw;
  uint8_t* p;
  explicit Buf(size_t n) : raw(n + 1, 0xA5), p(raw.data() + 1) {}
};

void check_type(const KernelTable& ref, const KernelTable& simd, int type, int64_t k, int pattern, std::mt19937& rng) {
  const TypeTraits& tt = *type_traits(type);
  const TypeKernels& r = ref.type[type];
  const TypeKernels& s = simd.type[type];
  char ctx[160];
  std::snprintf(ctx, sizeof ctx, "[%s %s k=%lld %s]", isa_name(simd.isa), tt.name, static_cast<long long>(k), pattern_name(pattern));
  const std::vector<float> x = make(pattern, k, rng);
  const size_t rb = row_bytes(tt, k);

  Buf qr(rb), qs(rb);
  r.quantize_row(x.data(), qr.p, k);
  s.quantize_row(x.data(), qs.p, k);
  ++g_checks;
  if (std::memcmp(qr.p, qs.p, rb) != 0) {
    size_t at = 0;
    while (qr.p[at] == qs.p[at]) ++at;
    fail(std::string("quantize_row ") + ctx + " first differing byte " + std::to_string(at));
  }

  std::vector<float> dr(static_cast<size_t>(k)), ds(static_cast<size_t>(k));
  r.dequantize_row(qr.p, dr.data(), k);
  s.dequantize_row(qr.p, ds.data(), k);
  ++g_checks;
  for (int64_t i = 0; i < k; ++i) {
    if (!same_float(dr[i], ds[i])) { fail(std::string("dequantize_row ") + ctx + " at " + std::to_string(i)); break; }
  }

  // Activations: another random vector (normal or the same pattern).
  const std::vector<float> act = make(pattern == kZeros ? kNormal : pattern, k, rng);
  double mag = 0;
  for (int64_t i = 0; i < k; ++i) mag += std::fabs(static_cast<double>(act[i]) * dr[i]);
  const double bound = 1e-5 * mag + 1e-30;

  ++g_checks;
  const float fr = r.vec_dot_f32(k, qr.p, act.data());
  const float fs = s.vec_dot_f32(k, qr.p, act.data());
  if (!close(fs, fr, bound)) {
    fail(std::string("vec_dot_f32 ") + ctx + " got " + std::to_string(fs) + " want " + std::to_string(fr));
  }

  if (tt.act_type == kF32) return;
  const TypeTraits& at = *type_traits(tt.act_type);
  const size_t ab = row_bytes(at, k);
  Buf ar(ab), as(ab);
  ref.type[tt.act_type].quantize_act(act.data(), ar.p, k);
  simd.type[tt.act_type].quantize_act(act.data(), as.p, k);
  ++g_checks;
  if (std::memcmp(ar.p, as.p, ab) != 0) fail(std::string("quantize_act ") + at.name + " " + ctx);

  // Bound for the integer path: every term is |dequantized activation| times
  // |dequantized weight| plus twice the block's additive offset (q4_1/q5_1 min,
  // K-quant sub-block min), which the kernels dot separately.
  const std::vector<float> adq = dequantize_activations(tt.act_type, ar.p, k);
  const std::vector<float> off = weight_offsets(type, qr.p, k);
  double qmag = 0;
  for (int64_t i = 0; i < k; ++i) qmag += std::fabs(static_cast<double>(adq[i])) * (std::fabs(dr[i]) + 2.0 * std::fabs(off[i]));
  ++g_checks;
  const float vr = r.vec_dot(k, qr.p, ar.p);
  const float vs = s.vec_dot(k, qr.p, ar.p);
  if (!close(vs, vr, 1e-5 * qmag + 1e-30)) {
    fail(std::string("vec_dot ") + ctx + " got " + std::to_string(vs) + " want " + std::to_string(vr));
  }
}

// Worked example TV-2 of the format reference: a q4_0 block from llama.cpp.
void check_golden_block() {
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = (i - 16) / 4.f;
  const uint8_t want[18] = {0x00, 0x38, 0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3,
                            0xc4, 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7, 0xf7, 0xf8};
  for (int isa = 0; isa < kIsaCount; ++isa) {
    if (!isa_supported(isa)) continue;
    uint8_t got[18];
    kernels_for(isa).type[kQ4_0].quantize_row(x, got, 32);
    ++g_checks;
    if (std::memcmp(got, want, 18) != 0) fail(std::string("TV-2 q4_0 block on ") + isa_name(isa));
  }
}

// nw weight rows and na activation rows of one pattern, quantized by the
// reference kernels, with what a block of their dot products is checked with.
struct DotRows {
  static constexpr float kUntouched = 12345.f;  // out entries outside the block must keep it

  DotRows(const KernelTable& ref, int type, int64_t k, int pattern, int nw, int na, std::mt19937& rng)
      : ref(ref), type(type), k(k), tt(*type_traits(type)), rb(row_bytes(tt, k)),
        ab(row_bytes(*type_traits(tt.act_type), k)), w(nw * rb), a(na * ab), dr(nw), adq(na), off(nw) {
    for (int i = 0; i < nw; ++i) {
      const std::vector<float> x = make(pattern, k, rng);
      ref.type[type].quantize_row(x.data(), w.p + i * rb, k);
      dr[i].resize(static_cast<size_t>(k));
      ref.type[type].dequantize_row(w.p + i * rb, dr[i].data(), k);
      off[i] = weight_offsets(type, w.p + i * rb, k);
      if (i >= na) continue;
      const std::vector<float> act = make(pattern == kZeros ? kNormal : pattern, k, rng);
      ref.type[tt.act_type].quantize_act(act.data(), a.p + i * ab, k);
      adq[i] = dequantize_activations(tt.act_type, a.p + i * ab, k);
    }
  }

  // out[j * os + i] (j < na) against the scalar vec_dot of weight row i and
  // activation row j for i < nrows; kUntouched for nrows <= i < os.
  void check(const char* what, const char* ctx, const std::vector<float>& out, size_t os, int nrows, int na) const {
    for (int j = 0; j < na; ++j) {
      for (size_t i = 0; i < os; ++i) {
        const float got = out[j * os + i];
        if (i >= static_cast<size_t>(nrows)) {
          if (got != kUntouched) {
            fail(std::string(what) + " wrote outside its block " + ctx);
            return;
          }
          continue;
        }
        double qmag = 0;
        for (int64_t e = 0; e < k; ++e) qmag += std::fabs(static_cast<double>(adq[j][e])) * (std::fabs(dr[i][e]) + 2.0 * std::fabs(off[i][e]));
        const float want = ref.type[type].vec_dot(k, w.p + i * rb, a.p + j * ab);
        if (!close(got, want, 1e-5 * qmag + 1e-30)) {
          fail(std::string(what) + " " + ctx + " (" + std::to_string(i) + "," + std::to_string(j) + ") got " + std::to_string(got) +
               " want " + std::to_string(want));
          return;
        }
      }
    }
  }

  const KernelTable& ref;
  const int type;
  const int64_t k;
  const TypeTraits& tt;
  const size_t rb, ab;
  Buf w, a;
  std::vector<std::vector<float>> dr, adq, off;
};

// vec_dot_rows (the multi-row entry) against the scalar vec_dot of every
// (weight row, activation row) pair, for nw in 1..8, na in 1..4; out entries outside
// the nw x na block (out_stride > nw) must stay untouched.
void check_vec_dot_rows(const KernelTable& ref, const KernelTable& simd, int type, int64_t k, int pattern, std::mt19937& rng) {
  const TypeKernels& s = simd.type[type];
  if (!s.vec_dot_rows) return;
  const DotRows d(ref, type, k, pattern, 8, 4, rng);
  for (int nw = 1; nw <= 8; ++nw) {
    for (int na = 1; na <= 4; ++na) {
      const size_t os = static_cast<size_t>(nw) + 3;
      std::vector<float> out(os * na, DotRows::kUntouched);
      s.vec_dot_rows(k, d.w.p, d.rb, nw, d.a.p, d.ab, na, out.data(), os);
      ++g_checks;
      char ctx[160];
      std::snprintf(ctx, sizeof ctx, "[%s %s k=%lld %s nw=%d na=%d]", isa_name(simd.isa), d.tt.name, static_cast<long long>(k),
                    pattern_name(pattern), nw, na);
      d.check("vec_dot_rows", ctx, out, os, nw, na);
    }
  }
}

void check_all_vec_dot_rows(const KernelTable& ref, const KernelTable& simd, std::mt19937& rng) {
  const int types[] = {kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K};
  const int64_t block_ks[] = {32, 64, 128, 160, 480, 512, 544, 1024, 2048 + 32, 4096 + 32, 4096 + 480, 11008};
  const int64_t super_ks[] = {256, 512, 768, 2048, 4096 + 256};
  for (int type : types) {
    if (!simd.type[type].vec_dot_rows || !ref.type[type].quantize_row) continue;
    std::printf("  vec_dot_rows %s on %s\n", type_traits(type)->name, isa_name(simd.isa));
    for (int p = 0; p < kPatternCount; ++p) {
      if (type_traits(type)->block_size == QK_K) {
        for (int64_t k : super_ks) check_vec_dot_rows(ref, simd, type, k, p, rng);
      } else {
        for (int64_t k : block_ks) check_vec_dot_rows(ref, simd, type, k, p, rng);
      }
    }
  }
}

// tile_dot (the interleaved layout) against the scalar vec_dot of every
// (weight row, activation row) pair: nvalid 1..16 rows in the tile (the rest
// zero padding, as interleave_tile leaves it), na 1..8; entries outside the
// nvalid x na block must stay untouched. interleave_tile / deinterleave_tile
// must give back the same ggml bytes.
void check_tile_dot(const KernelTable& ref, const KernelTable& simd, int type, int64_t k, int pattern, std::mt19937& rng) {
  const TileDotFn f = simd.type[type].tile_dot;
  const DotRows d(ref, type, k, pattern, kTileRows, 8, rng);
  const TypeTraits& tt = d.tt;
  const TypeTraits& at = *type_traits(tt.act_type);
  const size_t rb = d.rb;
  const int64_t nb = k / tt.block_size;
  const Buf& w = d.w;
  Buf tile(kTileRows * rb), back(kTileRows * rb);
  std::vector<ActBlockMeta> meta(static_cast<size_t>(8 * nb));
  for (int i = 0; i < 8; ++i) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = d.a.p + i * d.ab + b * at.block_bytes;
      uint16_t dd;
      std::memcpy(&dd, blk, 2);
      int32_t sum = 0;
      for (int e = 0; e < QK32; ++e) sum += static_cast<int8_t>(blk[2 + e]);
      meta[static_cast<size_t>(i * nb + b)] = {fp16_to_f32(dd), sum};
    }
  }
  if (const InterleaveFullTileFn full = simd.type[type].interleave_full_tile) {
    Buf fast(kTileRows * rb);
    interleave_tile(tt, w.p, rb, kTileRows, k, tile.p);
    full(w.p, rb, nb, fast.p);
    ++g_checks;
    if (std::memcmp(fast.p, tile.p, kTileRows * rb) != 0) {
      fail(std::string("interleave_full_tile differs from interleave_tile [") + isa_name(simd.isa) + " " + tt.name + " k=" + std::to_string(k) + "]");
    }
  }
  for (int nvalid = 1; nvalid <= kTileRows; ++nvalid) {
    interleave_tile(tt, w.p, rb, nvalid, k, tile.p);
    std::memset(back.p, 0xA5, kTileRows * rb);
    deinterleave_tile(tt, tile.p, k, back.p, rb, nvalid);
    ++g_checks;
    if (std::memcmp(back.p, w.p, nvalid * rb) != 0 || (nvalid < kTileRows && back.p[nvalid * rb] != 0xA5)) {
      fail(std::string("deinterleave_tile(interleave_tile(rows)) differs from rows [") + tt.name + " k=" + std::to_string(k) + "]");
    }
    if (!f) continue;
    for (int na = 1; na <= 8; ++na) {
      const size_t os = kTileRows + 3;
      std::vector<float> out(os * na, DotRows::kUntouched);
      f(k, tile.p, d.a.p, d.ab, meta.data(), static_cast<size_t>(nb), na, out.data(), os, nvalid);
      ++g_checks;
      char ctx[160];
      std::snprintf(ctx, sizeof ctx, "[%s %s k=%lld %s nvalid=%d na=%d]", isa_name(simd.isa), tt.name, static_cast<long long>(k),
                    pattern_name(pattern), nvalid, na);
      d.check("tile_dot", ctx, out, os, nvalid, na);
    }
  }
}

void check_all_tile_dot(const KernelTable& ref, const KernelTable& simd, std::mt19937& rng) {
  const int64_t ks[] = {32, 64, 96, 160, 1024, 4096 + 32, 11008};
  for (int type = 0; type < kTypeIdLimit; ++type) {
    if (!has_interleaved_layout(type)) continue;
    std::printf("  tile_dot %s on %s%s\n", type_traits(type)->name, isa_name(simd.isa),
                simd.type[type].tile_dot ? "" : " (no kernel: layout round trip only)");
    for (int p = 0; p < kPatternCount; ++p)
      for (int64_t k : ks) check_tile_dot(ref, simd, type, k, p, rng);
  }
}

// batch_tile_dot (batch_tile.h) against the scalar vec_dot of every pair:
// nvalid rows packed (the rest zero), na 1..8, and nothing written
// outside the nvalid x na block.
void check_all_batch_tile_dot(const KernelTable& ref, const KernelTable& simd, std::mt19937& rng) {
  // QK_TEST_QUICK (set for the runs under qemu): two sizes instead of five.
  const bool quick = std::getenv("QK_TEST_QUICK") != nullptr;
  const std::vector<int64_t> ks = quick ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{256, 512, 768, 2048, 4096 + 256};
  for (int type = 0; type < kTypeIdLimit; ++type) {
    const TypeKernels& tk = simd.type[type];
    if (!tk.batch_tile_dot) continue;
    std::printf("  batch_tile_dot %s on %s\n", type_traits(type)->name, isa_name(simd.isa));
    for (int p = 0; p < kPatternCount; ++p) {
      for (int64_t k : ks) {
        const DotRows d(ref, type, k, p, kTileRows, 8, rng);
        const size_t tb = static_cast<size_t>(k / d.tt.block_size) * tk.batch_block_bytes;
        Buf tile(tb);
        // Row counts at the edges of the two 8-row halves (every count runs
        // the same code as one of these).
        for (int nvalid : {1, 7, 8, 9, 15, 16}) {
          tk.pack_batch_tile(d.w.p, d.rb, nvalid, k, tile.p);
          for (int na = 1; na <= 8; ++na) {
            const size_t os = kTileRows + 3;
            std::vector<float> out(os * na, DotRows::kUntouched);
            tk.batch_tile_dot(k, tile.p, d.a.p, d.ab, na, out.data(), os, nvalid);
            ++g_checks;
            char ctx[160];
            std::snprintf(ctx, sizeof ctx, "[%s %s k=%lld %s nvalid=%d na=%d]", isa_name(simd.isa), d.tt.name,
                          static_cast<long long>(k), pattern_name(p), nvalid, na);
            d.check("batch_tile_dot", ctx, out, os, nvalid, na);
          }
        }
      }
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  check_golden_block();
  const KernelTable& ref = kernels_for(kIsaScalar);
  const int types[] = {kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K};
  const int64_t block_ks[] = {32, 64, 96, 160, 256, 1024, 4096 + 32, 8192};
  const int64_t super_ks[] = {256, 512, 768, 2048, 4096 + 256, 8192};
  const int64_t float_ks[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 65, 129, 1000, 4099};
  int isas_tested = 0;
  for (int isa = 1; isa < kIsaCount; ++isa) {
    if (!isa_supported(isa)) continue;
    ++isas_tested;
    std::printf("testing %s against scalar\n", isa_name(isa));
    const KernelTable& simd = kernels_for(isa);
    for (int type : types) {
      if (!ref.type[type].quantize_row) {
        std::printf("  %s: no kernels in this build, not tested\n", type_traits(type)->name);
        continue;
      }
      for (int p = 0; p < kPatternCount; ++p) {
        const int bs = type_traits(type)->block_size;
        if (bs == QK_K) {
          for (int64_t k : super_ks) check_type(ref, simd, type, k, p, rng);
        } else {
          for (int64_t k : block_ks) check_type(ref, simd, type, k, p, rng);
        }
        if (bs == 1) {
          for (int64_t k : float_ks) check_type(ref, simd, type, k, p, rng);
        }
      }
    }
    check_all_vec_dot_rows(ref, simd, rng);
    check_all_tile_dot(ref, simd, rng);
    check_all_batch_tile_dot(ref, simd, rng);
  }
  std::printf("testing the interleaved layout on scalar\n");
  check_all_tile_dot(ref, ref, rng);
#if defined(__x86_64__) || defined(_M_X64)
  // The AVX-512 table without VNNI (as on Skylake-X) is built from the same
  // code; run it too when this CPU has VNNI and would otherwise never use it.
  if (isa_supported(kIsaAvx512)) {
    std::printf("testing avx512 without VNNI against scalar\n");
    KernelTable no_vnni = kernels_for(kIsaAvx2);
    fill_avx512(no_vnni, false);
    fill_avx512_kquants(no_vnni, false);
    fill_avx512_tiles(no_vnni, false);
    no_vnni.isa = kIsaAvx512;
    for (int type : types) {
      if (!ref.type[type].quantize_row) continue;
      const int bs = type_traits(type)->block_size;
      for (int p = 0; p < kPatternCount; ++p) {
        if (bs == QK_K) {
          for (int64_t k : super_ks) check_type(ref, no_vnni, type, k, p, rng);
        } else {
          for (int64_t k : block_ks) check_type(ref, no_vnni, type, k, p, rng);
        }
      }
    }
    check_all_vec_dot_rows(ref, no_vnni, rng);
    check_all_tile_dot(ref, no_vnni, rng);
  }
#endif
  std::printf("%d passed, %d failed\n", g_checks - g_failures, g_failures);
  std::printf("isas tested against scalar: %d (best here: %s)\n", isas_tested, isa_name(best_isa()));
  return g_failures ? 1 : 0;
}

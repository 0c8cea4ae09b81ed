#include "dispatch.h"

#include <atomic>
#include <initializer_list>

#include "cpu.h"

namespace qk {

const char* isa_name(int isa) {
  switch (isa) {
    case kIsaScalar: return "scalar";
    case kIsaAvx2: return "avx2";
    case kIsaAvx512: return "avx512";
    case kIsaNeon: return "neon";
    default: return "unknown";
  }
}

int isa_from_name(const char* name) {
  for (int i = 0; i < kIsaCount; ++i) {
    const char* n = isa_name(i);
    int j = 0;
    while (n[j] && n[j] == name[j]) ++j;
    if (n[j] == 0 && name[j] == 0) return i;
  }
  return -1;
}

bool isa_supported(int isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case kIsaScalar: return true;
#if defined(__x86_64__) || defined(_M_X64)
    case kIsaAvx2: return f.avx2;
    case kIsaAvx512: return f.avx512;
#endif
#if defined(__aarch64__)
    case kIsaNeon: return f.neon;
#endif
    default: return false;
  }
}

int best_isa() {
  for (int isa : {kIsaAvx512, kIsaAvx2, kIsaNeon}) {
    if (isa_supported(isa)) return isa;
  }
  return kIsaScalar;
}

namespace {

struct Tables {
  KernelTable t[kIsaCount];
  Tables() {
    const CpuFeatures& f = cpu_features();
    (void)f;
    fill_scalar(t[kIsaScalar]);
    fill_scalar_gemm(t[kIsaScalar]);
#if defined(__x86_64__) || defined(_M_X64)
    t[kIsaAvx2] = t[kIsaScalar];
    fill_avx2(t[kIsaAvx2]);
    fill_avx2_kquants(t[kIsaAvx2]);
    fill_avx2_tiles(t[kIsaAvx2]);
    fill_avx2_batch_tiles(t[kIsaAvx2]);
    fill_avx2_gemm(t[kIsaAvx2]);
    t[kIsaAvx2].isa = kIsaAvx2;
    t[kIsaAvx512] = t[kIsaAvx2];
    fill_avx512(t[kIsaAvx512], f.avx512_vnni);
    fill_avx512_kquants(t[kIsaAvx512], f.avx512_vnni);
    fill_avx512_tiles(t[kIsaAvx512], f.avx512_vnni);
    fill_avx512_gemm(t[kIsaAvx512]);
    t[kIsaAvx512].isa = kIsaAvx512;
#endif
#if defined(__aarch64__)
    t[kIsaNeon] = t[kIsaScalar];
    fill_neon(t[kIsaNeon], f.neon_dotprod);
    fill_neon_kquants(t[kIsaNeon], f.neon_dotprod);
    fill_neon_tiles(t[kIsaNeon], f.neon_dotprod);
    t[kIsaNeon].isa = kIsaNeon;
#endif
  }
};

// Filling a table only stores function pointers; no kernel runs here, so
// building tables for ISAs the CPU lacks is safe.
const Tables& tables() {
  static const Tables tb;
  return tb;
}

std::atomic<int> g_active{-1};

}  // namespace

const KernelTable& kernels_for(int isa) { return tables().t[isa]; }

int active_isa() {
  int a = g_active.load(std::memory_order_acquire);
  if (a < 0) {
    a = best_isa();
    g_active.store(a, std::memory_order_release);
  }
  return a;
}

const KernelTable& active_kernels() { return tables().t[active_isa()]; }

bool set_active_isa(int isa) {
  if (isa < 0 || isa >= kIsaCount || !isa_supported(isa)) return false;
  g_active.store(isa, std::memory_order_release);
  return true;
}

}  // namespace qk

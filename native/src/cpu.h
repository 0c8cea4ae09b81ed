// What the CPU (and the OS, via XGETBV) lets us run.
#pragma once

namespace qk {

struct CpuFeatures {
  bool avx2 = false;        // AVX2 + FMA + F16C, with YMM state saved by the OS
  bool avx512 = false;      // F, BW, VL, DQ, with ZMM/opmask state saved by the OS
  bool avx512_vnni = false;
  bool neon = false;
  bool neon_dotprod = false;
};

const CpuFeatures& cpu_features();  // detected once

}  // namespace qk

// AVX-512 (F, BW, VL, DQ) + AVX2 + FMA + F16C on for the functions that
// follow, up to target_end.h (target_begin.h says how, and what to include
// before it). VNNI is deliberately not in the set: see dpbusd in simd_avx512.h.
#define QK_TARGET_ISA "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"
#include "target_begin.h"

// AVX2 + FMA + F16C on for the functions that follow, up to target_end.h
// (target_begin.h says how, and what to include before it).
#define QK_TARGET_ISA "avx2,fma,f16c"
#include "target_begin.h"

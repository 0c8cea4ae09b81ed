// Whether the NEON kernel files can compile ARMv8.2 SDOT code, and the
// attribute that enables it per function (the kernels are picked at run time,
// so the file itself is built for baseline ARMv8.0). When the baseline already
// has SDOT there is nothing to do; GCC needs the arch= form ("+dotprod" alone
// does not match arm_neon.h's own target pragma); clang before 17 only
// declares vdotq with the feature on globally.
#pragma once

#if defined(__ARM_FEATURE_DOTPROD)
#define QK_HAVE_DOTPROD 1
#define QK_DOTPROD
#elif defined(__clang__)
#if __clang_major__ >= 17
#define QK_HAVE_DOTPROD 1
#define QK_DOTPROD __attribute__((target("dotprod")))
#else
#define QK_HAVE_DOTPROD 0
#endif
#elif defined(__GNUC__)
#define QK_HAVE_DOTPROD 1
#define QK_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#else
#define QK_HAVE_DOTPROD 0
#endif

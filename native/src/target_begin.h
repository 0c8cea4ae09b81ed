// Switches the ISA named by QK_TARGET_ISA (a GCC/clang target string, defined
// by target_<isa>_begin.h just before including this) on for the functions
// that follow, up to target_end.h (one begin/end pair per kernel file, as
// simdjson does). The file keeps the project's global flags: only its kernels
// carry the ISA, and the dispatcher runs them only where CPUID and XGETBV
// allow. Include every other header BEFORE this one, so that no inline
// function shared with other files (fp16.h, the standard library) is compiled
// with the ISA on: the linker could keep that copy for the whole program and
// run it on a CPU without the ISA. No include guard: each kernel file includes
// it once.
#define QK_PRAGMA_TEXT(...) _Pragma(#__VA_ARGS__)
#define QK_PRAGMA(...) QK_PRAGMA_TEXT(__VA_ARGS__)  // expands QK_TARGET_ISA first
#if defined(__clang__)
// clang: the intrinsics header first (its functions carry their own target
// attributes), then the attribute for every function defined below.
#include <immintrin.h>
QK_PRAGMA(clang attribute push(__attribute__((target(QK_TARGET_ISA))), apply_to = function))
#elif defined(__GNUC__)
#pragma GCC push_options
QK_PRAGMA(GCC target(QK_TARGET_ISA))
// GCC 12 reports its own _mm*_undefined_*() self-initialisations inside the
// intrinsics as uninitialised when they are inlined here (false positives).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#if !defined(__clang__)
#include <immintrin.h>  // GCC: after the target pragma; MSVC: needs no flags
#endif
#undef QK_PRAGMA
#undef QK_PRAGMA_TEXT
#undef QK_TARGET_ISA

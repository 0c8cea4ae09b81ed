// Ends the region target_begin.h opened (through target_avx2_begin.h or
// target_avx512_begin.h): what follows (the fill functions) runs on any CPU.
#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

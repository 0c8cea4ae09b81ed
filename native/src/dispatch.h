// Runtime choice of kernel table: built once per ISA, picked from CPUID.
#pragma once
#include "kernels.h"

namespace qk {

bool isa_supported(int isa);          // compiled in and runnable on this CPU
int best_isa();
const KernelTable& kernels_for(int isa);  // isa must be supported
const KernelTable& active_kernels();
// Returns false (and changes nothing) when the ISA is not supported here.
bool set_active_isa(int isa);
int active_isa();

}  // namespace qk

// The machine's memory read bandwidth, measured the way a batch-1 matvec
// reads weights: one streaming pass over a buffer much larger than the caches.
#pragma once
#include <cstddef>

namespace qk {

// Reads a `bytes`-sized buffer `reps` times on the current thread count
// (the pool) and returns the best pass in GB/s (1e9 bytes per second).
// Returns a negative value when the buffer cannot be allocated.
double stream_read_gbs(size_t bytes, int reps);

}  // namespace qk

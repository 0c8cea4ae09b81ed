// The machine's memory read bandwidth, measured the way a batch-1 matvec
// reads weights: one streaming pass over a buffer much larger than the caches.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

// Reads a `bytes`-sized buffer `reps` times on the current thread count
// (the pool) and returns the best pass in GB/s (1e9 bytes per second).
// Returns a negative value when the buffer cannot be allocated.
double stream_read_gbs(size_t bytes, int reps);

// The same passes over a caller's buffer (its whole MiBs from the first
// 8-byte boundary), for callers that measure often: allocating and touching
// the buffer costs far more than reading it (about 0.7 s per 256 MiB on a VM,
// almost all page faults, against 5-10 ms a pass). The buffer is only read,
// so pages the caller never wrote may all map the kernel's zero page and read
// from cache: fill it first. Returns a negative value when it holds less than
// 1 MiB.
double stream_read_gbs(const uint8_t* data, size_t bytes, int reps);

}  // namespace qk

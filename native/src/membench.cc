#include "membench.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "pool.h"

namespace qk {

namespace {

struct ReadJob {
  const uint64_t* data;
  int64_t words_per_task;
  uint64_t sink[64];  // one slot per task chunk so the sums are not optimized away
};

void read_range(void* ctx, int64_t begin, int64_t end) {
  ReadJob& j = *static_cast<ReadJob*>(ctx);
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (int64_t t = begin; t < end; ++t) {
    const uint64_t* p = j.data + t * j.words_per_task;
    // Eight independent 64-bit streams; the compiler widens them to vector loads.
    for (int64_t i = 0; i < j.words_per_task; i += 8) {
      a0 += p[i] ^ p[i + 4];
      a1 += p[i + 1] ^ p[i + 5];
      a2 += p[i + 2] ^ p[i + 6];
      a3 += p[i + 3] ^ p[i + 7];
    }
  }
  j.sink[begin & 63] = a0 + a1 + a2 + a3;
}

}  // namespace

constexpr int64_t kTaskBytes = 1 << 20;

double stream_read_gbs(const uint8_t* data, size_t bytes, int reps) {
  const size_t skip = (8 - reinterpret_cast<uintptr_t>(data) % 8) % 8;
  if (data == nullptr || bytes < skip) return -1.0;
  const int64_t tasks = static_cast<int64_t>((bytes - skip) / kTaskBytes);
  if (tasks < 1 || reps < 1) return -1.0;
  ReadJob job{reinterpret_cast<const uint64_t*>(data + skip), kTaskBytes / 8, {}};
  double best = 0.0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(tasks, 4, read_range, &job);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gbs = static_cast<double>(tasks * kTaskBytes) / s / 1e9;
    if (gbs > best) best = gbs;
  }
  return best;
}

double stream_read_gbs(size_t bytes, int reps) {
  const size_t words = bytes / kTaskBytes * (kTaskBytes / 8);
  if (words == 0 || reps < 1) return -1.0;
  std::unique_ptr<uint64_t[]> buf(new (std::nothrow) uint64_t[words]);
  if (!buf) return -1.0;
  // Touch every page so the timed passes read memory, not zero pages.
  std::memset(buf.get(), 0x5A, words * 8);
  return stream_read_gbs(reinterpret_cast<const uint8_t*>(buf.get()), words * 8, reps);
}

}  // namespace qk

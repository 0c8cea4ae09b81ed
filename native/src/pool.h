// A persistent thread pool: workers are created once (and again only when the
// thread count changes), then woken per job, so a matvec costs no thread
// creation. One job runs at a time; callers from several threads queue up.
#pragma once
#include <cstdint>

namespace qk {

// fn(ctx, begin, end) processes tasks [begin, end). Called from the caller's
// thread and from pool workers concurrently, on disjoint ranges.
using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end);

// Splits [0, n) into chunks of `grain` tasks and runs them on up to
// thread_count() threads, the caller included. Returns when all are done.
void parallel_for(int64_t n, int64_t grain, RangeFn fn, void* ctx);

int thread_count();
void set_thread_count(int n);  // clamped to [1, 256]
int default_thread_count();    // physical cores

}  // namespace qk

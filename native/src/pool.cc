#include "pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include <immintrin.h>  // _mm_pause: SSE2, part of every x86-64
#define QK_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__) && defined(__GNUC__)
#define QK_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define QK_CPU_RELAX() std::this_thread::yield()
#endif

namespace qk {

namespace {

// How long a thread spins before it sleeps, both a worker waiting for the
// next job and the caller waiting for the workers to finish. A decode step
// issues its matvecs tens of microseconds apart; a futex sleep and wake-up
// costs about as much as a small matvec, so they hand over by spinning.
constexpr auto kSpin = std::chrono::microseconds(200);

template <typename Pred>
bool spin_until(Pred done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      QK_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

class Pool {
 public:
  ~Pool() { resize(0); }

  void run(int64_t n, int64_t grain, RangeFn fn, void* ctx, int threads) {
    std::lock_guard<std::mutex> job_lock(job_mu_);
    const int64_t chunks = (n + grain - 1) / grain;
    const int helpers = static_cast<int>(std::min<int64_t>(threads - 1, chunks - 1));
    if (helpers <= 0) {
      fn(ctx, 0, n);
      return;
    }
    if (static_cast<int>(workers_.size()) != threads - 1) resize(threads - 1);
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = fn;
      ctx_ = ctx;
      n_ = n;
      grain_ = grain;
      next_.store(0, std::memory_order_relaxed);
      open_ = true;
      wanted_ = helpers;
      ++generation_;
    }
    wake_.notify_all();
    work();
    // Every chunk is claimed. A worker still inside one usually finishes
    // within microseconds: spin for it, since sleeping on done_ costs a
    // futex wake-up (tens of microseconds on a VM, as long as a 2 MB matvec).
    spin_until([&] { return busy_.load(std::memory_order_acquire) == 0; });
    // Close the job so that a worker the OS has not scheduled yet skips it
    // instead of making the caller wait a time slice for nothing; wait only
    // for workers still inside a chunk.
    std::unique_lock<std::mutex> lk(mu_);
    open_ = false;
    done_.wait(lk, [&] { return busy_ == 0; });
  }

 private:
  void work() {
    for (;;) {
      const int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
      if (begin >= n_) return;
      fn_(ctx_, begin, std::min(n_, begin + grain_));
    }
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_relaxed); });
      {
        std::unique_lock<std::mutex> lk(mu_);
        wake_.wait(lk, [&] { return stop_ || (generation_ != seen && index < wanted_); });
        if (stop_) return;
        seen = generation_;
        if (!open_) continue;  // the caller already finished this job
        busy_.fetch_add(1, std::memory_order_relaxed);
      }
      work();
      std::lock_guard<std::mutex> lk(mu_);
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_.notify_one();
    }
  }

  void resize(int count) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_ = false;
    for (int i = 0; i < count; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }

  std::mutex job_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  bool open_ = false;   // the current job still accepts workers
  std::atomic<uint64_t> generation_{0};  // written under mu_, read by spinning workers without it
  std::atomic<int> busy_{0};             // workers inside work() for the current job (changed under mu_)
  int wanted_ = 0;
  RangeFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  std::atomic<int64_t> next_{0};
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers may outlive static teardown order
  return *p;
}

int detect_physical_cores() {
  std::set<std::pair<std::string, std::string>> cores;  // (physical id, core id)
  std::ifstream in("/proc/cpuinfo");
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_first_of(" \t"));
    const std::string val = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "physical") phys = val;
    else if (key == "core" && line.rfind("core id", 0) == 0) cores.insert({phys, val});
  }
  const int logical = static_cast<int>(std::thread::hardware_concurrency());
  if (!cores.empty()) return static_cast<int>(std::min<size_t>(cores.size(), logical > 0 ? logical : cores.size()));
  return logical > 0 ? logical : 1;
}

std::atomic<int> g_threads{0};

}  // namespace

int default_thread_count() {
  static const int n = detect_physical_cores();
  return n;
}

int thread_count() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : default_thread_count();
}

void set_thread_count(int n) { g_threads.store(std::max(1, std::min(256, n)), std::memory_order_relaxed); }

void parallel_for(int64_t n, int64_t grain, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int threads = thread_count();
  if (threads <= 1 || n <= grain) {
    fn(ctx, 0, n);
    return;
  }
  pool().run(n, grain, fn, ctx, threads);
}

}  // namespace qk

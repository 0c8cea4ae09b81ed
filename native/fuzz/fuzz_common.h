// Shared by the libFuzzer targets of native/fuzz (scripts/fuzz-native.sh): a
// reader of the fuzzer's bytes, and the one way a target reports a broken
// promise (abort with a message: libFuzzer keeps the input as a crash).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dispatch.h"
#include "ops.h"
#include "pool.h"

namespace qkfuzz {

// Takes bytes from the front of the input; past the end every read is 0.
struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t u8() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return u16() | (static_cast<uint32_t>(u16()) << 16); }
  // The next `len` bytes (fewer at the end, the rest zero) into dst.
  void fill(void* dst, size_t len) {
    const size_t k = len < n ? len : n;
    if (k) std::memcpy(dst, p, k);
    if (len > k) std::memset(static_cast<uint8_t*>(dst) + k, 0, len - k);
    p += k;
    n -= k;
  }
};

[[noreturn]] inline void broken(const char* what, const qk::Status& s) {
  std::fprintf(stderr, "fuzz: %s (status %s: %s)\n", what, s.code ? s.code : "ok", s.message.c_str());
  std::abort();
}

// Every Status a failure may carry: a known code and a message.
inline void check_status(const qk::Status& s) {
  if (s.ok()) return;
  const char* known[] = {qk::kErrType, qk::kErrShape, qk::kErrLength, qk::kErrValue, qk::kErrIsa, qk::kErrArg};
  bool ok = false;
  for (const char* k : known) ok = ok || std::strcmp(s.code, k) == 0;
  if (!ok || s.message.empty()) broken("an error Status without a known code or a message", s);
}

// One ISA this CPU runs, picked by a byte; the pool kept small (threads still run).
inline void pick_isa(uint8_t b) {
  static bool once = false;
  if (!once) {
    qk::set_thread_count(2);
    once = true;
  }
  int supported[qk::kIsaCount], k = 0;
  for (int i = 0; i < qk::kIsaCount; ++i)
    if (qk::isa_supported(i)) supported[k++] = i;
  qk::set_active_isa(supported[b % k]);
}

}  // namespace qkfuzz

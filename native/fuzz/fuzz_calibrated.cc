// libFuzzer target: GPTQ and AWQ (native/src/calibrated.h) with small random
// shapes, arbitrary parameters (group sizes, dampening, batch, grid, tokens,
// given input scales) and arbitrary floats (NaN, Inf, huge, subnormal) in the
// weights and the calibration rows. Each call must return an error Status or
// finish (libFuzzer's -timeout catches a hang); every buffer is exactly the
// length the call is told, and one of them may be off by a few elements, which
// must be refused.
//
// Input: method, type, isa, rows, cols, n, parameter bytes, length change, float mode, then floats.
#include <cmath>
#include <limits>
#include <memory>

#include "calibrated.h"
#include "fuzz_common.h"
#include "types.h"

using namespace qk;
using qkfuzz::broken;
using qkfuzz::Bytes;
using qkfuzz::check_status;

namespace {

const int kCalibTypes[] = {kCalibInt4, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ4_K, kQ5_K, kQ6_K};
const float kSpecial[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(), 3.0e38f, -3.0e38f, 1e-40f, -0.f, 0.f, 1e30f, 65504.f};

struct FBuf {
  std::unique_ptr<float[]> p;
  size_t n;
  explicit FBuf(size_t len) : p(len ? new float[len] : nullptr), n(len) {}
};

void fill(FBuf& b, uint8_t mode, Bytes& in) {
  for (size_t i = 0; i < b.n; ++i) {
    float v;
    if (mode % 3 == 0) {
      const uint32_t u = in.u32();
      std::memcpy(&v, &u, 4);
    } else {
      v = static_cast<float>(static_cast<int8_t>(in.u8())) / 8.f;
      if (mode % 3 == 2) {
        const uint8_t r = in.u8();
        if (r < 12) v = kSpecial[r % 10];
      }
    }
    b.p[i] = v;
  }
}

bool g_changed = false;  // a buffer's length really differs from what the shape needs

size_t changed(size_t want, int which, int target, int64_t delta) {
  if (which != target || delta == 0) return want;
  const int64_t v = static_cast<int64_t>(want) + delta;
  const size_t got = v < 0 ? 0 : static_cast<size_t>(v);
  g_changed = g_changed || got != want;
  return got;
}

void run(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  g_changed = false;
  const bool awq_method = in.u8() & 1;
  const uint8_t tb = in.u8();
  CalibParams p;
  p.type = tb < 240 ? kCalibTypes[tb % 9] : (tb & 1 ? kF16 : 99);  // f16 and 99: not calibrated types
  qkfuzz::pick_isa(in.u8());
  const int64_t rows = in.u8() % 9;  // 0 .. 8
  const TypeTraits* t = p.type >= 0 ? type_traits(p.type) : nullptr;
  const int64_t bs = p.type == kCalibInt4 ? 32 : (t ? t->block_size : 32);
  const uint8_t cb = in.u8();
  int64_t cols = bs * (bs == 256 ? 1 : 1 + cb % 4);
  if (cb & 0x80) cols += cb & 7;  // not a multiple of a block or group
  if ((cb & 0x70) == 0x70) cols = -static_cast<int64_t>(cb & 1);
  const int64_t n = in.u8() % 10;  // calibration rows, 0 refused
  const uint8_t g = in.u8();
  const int64_t groups[] = {128, 32, 64, -1, 0, 16, 7, 256, -32, 96};
  p.group_size = groups[g % 10];
  p.sym = g & 0x10;
  p.act_order = g & 0x20;
  p.clip = g & 0x40;
  const double damps[] = {0.01, 0.0, 1.0, -0.5, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), 1e300, 1e-300};
  p.damp = damps[in.u8() % 8];
  const int64_t batches[] = {128, 1, 3, 32, 0, -1};
  p.batch = batches[in.u8() % 6];
  const int64_t grids[] = {2, 3, 1, 0, -1, 20, 5};
  p.grid = grids[in.u8() % 7];
  const int64_t tokens[] = {512, 1, 3, 0, -1, 8};
  p.tokens = tokens[in.u8() % 6];
  const uint8_t ch = in.u8();
  const int which = (ch >> 4) % 4;  // weights, calib, dst, scales
  const int64_t delta = (ch & 0x80) ? ((ch & 7) == 4 ? 3 : static_cast<int64_t>(ch & 7) - 4) : 0;
  const uint8_t mode = in.u8();
  const bool given = awq_method && (mode & 0x40);

  const size_t r = rows > 0 ? static_cast<size_t>(rows) : 0, c = cols > 0 ? static_cast<size_t>(cols) : 0, nn = static_cast<size_t>(n);
  const int storage = p.type == kCalibInt4 ? (p.sym ? kQ4_0 : kQ8_0) : p.type;
  const TypeTraits* st = type_traits(storage);
  const size_t dst_want = st && cols > 0 ? r * row_bytes(*st, cols) : r * 32;
  FBuf w(changed(r * c, which, 0, delta)), x(changed(nn * c, which, 1, delta));
  fill(w, mode, in);
  fill(x, mode >> 2, in);
  std::unique_ptr<uint8_t[]> dst;
  const size_t dst_len = changed(dst_want, which, 2, delta);
  if (dst_len) dst.reset(new uint8_t[dst_len]);
  FBuf scales(changed(c, which, 3, delta));
  FBuf given_scales(given ? c : 0);
  fill(given_scales, mode >> 4, in);
  if (given) {
    p.given_scales = given_scales.p.get();
    p.given_scales_len = given_scales.n;
  }

  Status s;
  if (awq_method) {
    double ratio = 0;
    s = awq(p, w.p.get(), w.n, rows, cols, x.p.get(), x.n, n, dst.get(), dst_len, scales.p.get(), scales.n, &ratio);
  } else {
    double damp_used = 0;
    GptqTimes times;
    s = gptq(p, w.p.get(), w.n, rows, cols, x.p.get(), x.n, n, dst.get(), dst_len, &damp_used, (mode & 1) ? &times : nullptr);
  }
  check_status(s);
  // A shape that is otherwise fine with one exact-length buffer changed must be refused.
  const bool shape_ok = rows >= 0 && cols > 0 && cols % bs == 0 && n >= 1 && (t || p.type == kCalibInt4) && storage != 99;
  const bool exact = which != 3 || awq_method;  // gptq takes no scales
  if (shape_ok && g_changed && exact && s.ok()) {
    broken(awq_method ? "awq took a buffer of the wrong length" : "gptq took a buffer of the wrong length", s);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(data, size);
  return 0;
}

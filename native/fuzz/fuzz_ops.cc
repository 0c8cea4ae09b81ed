// libFuzzer target: the kernels' entry points (native/src/ops.h) over arbitrary
// block bytes, for every type and on every ISA this CPU runs: dequantize, matmul
// (ggml and interleaved layouts, q8 and f32 precision, one or several matrices
// sharing an input), quantize_activations, quantize (with and without an
// importance vector), interleave and deinterleave. fp16 scales are whatever the
// bytes say, or on request NaN / Inf / subnormal / largest / zero patterns.
//
// Every buffer is allocated at exactly the length the call is told (ASan
// flags any byte read or written past it). The shape comes from the first
// bytes; one buffer's length may then be off by a few elements from what the
// shape needs, and then the call must return an error Status.
//
// Input: op, type, isa, rows, cols, cols jitter, m, length change, flags, then payload.
#include <cmath>
#include <memory>

#include "fuzz_common.h"
#include "interleave.h"
#include "types.h"

using namespace qk;
using qkfuzz::broken;
using qkfuzz::Bytes;
using qkfuzz::check_status;

namespace {

const int kTypes[] = {kF32, kF16, kBF16, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ4_K, kQ5_K, kQ6_K, kQ8_1, kQ8_K};
const uint16_t kSpecialHalf[] = {0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0x0001, 0x8001, 0x03FF, 0x7BFF, 0xFBFF, 0x0000, 0x8000, 0x3C00};

// An exactly sized heap buffer (nothing before or after it is ours).
template <typename T>
struct Buf {
  std::unique_ptr<T[]> p;
  size_t n;
  explicit Buf(size_t len) : p(len ? new T[len] : nullptr), n(len) {}
  T* data() { return p.get(); }
};

int pick_type(uint8_t b) {
  if (b < 208) return kTypes[b % (sizeof kTypes / sizeof kTypes[0])];
  // ids that are not weight types: unknown, negative, past the table
  const int odd[] = {-1, -128, 4, 5, 10, 11, 16, 29, 31, 39, 40, 41, 255, 1 << 20, -(1 << 30), 0x7fffffff};
  return odd[b % 16];
}

bool is_weight(int type) {
  const TypeTraits* t = type_traits(type);
  return t && t->is_weight;
}

// One fp16 at p (little-endian).
void put_half(uint8_t* p, uint16_t h) {
  p[0] = static_cast<uint8_t>(h);
  p[1] = static_cast<uint8_t>(h >> 8);
}

// Overwrites the fp16 scales of every block (and every element of f16/bf16
// rows) with special values chosen by the payload.
void special_scales(int type, uint8_t* w, size_t len, Bytes& in) {
  const TypeTraits* t = type_traits(type);
  if (!t || !w) return;
  const size_t bb = static_cast<size_t>(t->block_bytes);
  auto half = [&]() { return kSpecialHalf[in.u8() % (sizeof kSpecialHalf / sizeof kSpecialHalf[0])]; };
  for (size_t at = 0; at + bb <= len; at += bb) {
    uint8_t* b = w + at;
    switch (type) {
      case kF16: case kBF16: put_half(b, half()); break;
      case kQ4_0: case kQ5_0: case kQ8_0: put_half(b, half()); break;
      case kQ4_1: case kQ5_1: case kQ4_K: case kQ5_K: case kQ8_1: put_half(b, half()); put_half(b + 2, half()); break;
      case kQ6_K: put_half(b + offsetof(BlockQ6_K, d), half()); break;
      default: break;
    }
  }
}

// n floats: raw bit patterns (any NaN, Inf, subnormal, huge) or small values.
void fill_floats(float* x, size_t n, bool raw, Bytes& in) {
  for (size_t i = 0; i < n; ++i) {
    if (raw) {
      const uint32_t u = in.u32();
      std::memcpy(&x[i], &u, 4);
    } else {
      x[i] = static_cast<float>(static_cast<int8_t>(in.u8())) / 16.f;
    }
  }
}

// Open bug (test/fixtures/fuzz-crashes/fuzz_ops/open.txt): the scalar q8_0/q8_1
// activation quantizer converts NaN to int (UB) for a non-finite input. Until it
// is fixed, the activations of the q8 paths are made finite unless
// QK_FUZZ_OPEN_BUGS=1, so the campaign keeps looking past it; the fixtures still
// reproduce it. Only the scalar ISA's q8_0/q8_1 activations are affected.
bool open_bugs() {
  static const bool on = [] { const char* e = std::getenv("QK_FUZZ_OPEN_BUGS"); return e && *e == '1'; }();
  return on;
}

// Whether activations for `type` go through that quantizer (type < 0: any type).
bool open_bug_path(int type) {
  if (open_bugs() || active_isa() != kIsaScalar) return false;
  const TypeTraits* t = type >= 0 ? type_traits(type) : nullptr;
  return type < 0 || (t && (t->act_type == kQ8_0 || t->act_type == kQ8_1));
}

void finite_activations(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) x[i] = std::isnan(x[i]) ? 0.f : (x[i] > 0 ? 65504.f : -65504.f);
}

struct Shape {
  int type;
  int64_t rows, cols, m;
  bool valid;  // the type is a weight type and rows/cols fit it (m not included)
};

// Which buffer's length is changed, and by how much (0: none).
struct Change {
  int which;  // 0: weights / src, 1: x / second input, 2: output
  int64_t delta;
};

// Set when a buffer's length really differs from what the shape needs (a
// negative change of an empty buffer leaves it empty).
bool g_changed = false;

size_t changed(size_t want, const Change& c, int which) {
  if (c.which != which || c.delta == 0) return want;
  const int64_t v = static_cast<int64_t>(want) + c.delta;
  const size_t got = v < 0 ? 0 : static_cast<size_t>(v);
  g_changed = g_changed || got != want;
  return got;
}

// With a valid shape, a changed exact-length buffer must be refused.
void expect_refused(const Status& s, const Shape& sh, const Change& c, bool exact_for_which, const char* what) {
  if (!sh.valid || !g_changed) return;
  if (!exact_for_which && c.delta > 0) return;  // a longer output is allowed
  if (s.ok()) broken(what, s);
}

void run(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  g_changed = false;
  const int op = in.u8() % 8;
  Shape sh;
  sh.type = pick_type(in.u8());
  qkfuzz::pick_isa(in.u8());
  sh.rows = in.u8() % 37;  // up to two tiles of 16 and a partial one
  const uint8_t cb = in.u8(), jitter = in.u8();
  const TypeTraits* t = type_traits(sh.type);
  const int bs = t ? t->block_size : 32;
  sh.cols = bs == 1 ? 1 + cb % 80 : static_cast<int64_t>(1 + cb % 4) * bs;
  if (jitter & 0x80) sh.cols += jitter & 7;                    // not a multiple of the block
  if ((jitter & 0x60) == 0x60) sh.cols = -static_cast<int64_t>(jitter & 3);  // 0 or negative
  if ((jitter & 0x70) == 0x50) sh.rows = -1 - (jitter & 3);    // negative rows
  sh.m = in.u8() % 18;                                           // 0 is refused; >= 8 takes the tile paths
  const uint8_t ch = in.u8();
  Change c{(ch >> 4) % 3, (ch & 0x80) ? static_cast<int64_t>(ch & 7) - 4 : 0};
  if (c.delta == 0 && (ch & 0x80)) c.delta = 3;
  const uint8_t flags = in.u8();
  const bool specials = flags & 1, raw = flags & 2;
  const Precision prec = (flags & 4) ? Precision::kF32 : Precision::kQ8;
  sh.valid = is_weight(sh.type) && sh.rows >= 0 && sh.cols > 0 && sh.cols % bs == 0;

  const size_t rb = sh.valid ? row_bytes(*t, sh.cols) : 64;
  const size_t rows_u = sh.rows > 0 ? static_cast<size_t>(sh.rows) : 0, cols_u = sh.cols > 0 ? static_cast<size_t>(sh.cols) : 0;
  const size_t m_u = sh.m;
  const size_t ggml = rows_u * rb;
  const bool tiles_ok = sh.valid && has_interleaved_layout(sh.type);
  const size_t tiled = tiles_ok ? interleaved_bytes(*t, sh.rows, sh.cols) : ggml;

  switch (op) {
    case 0: {  // dequantize
      Buf<uint8_t> w(changed(ggml, c, 0));
      in.fill(w.data(), w.n);
      if (specials) special_scales(sh.type, w.data(), w.n, in);
      Buf<float> out(changed(rows_u * cols_u, c, 2));
      const Status s = dequantize(sh.type, w.data(), w.n, sh.rows, sh.cols, out.data(), out.n);
      check_status(s);
      expect_refused(s, sh, c, c.which == 0, "dequantize took a buffer of the wrong length");
      if (sh.valid && (!g_changed || (c.which == 2 && c.delta > 0)) && !s.ok()) broken("dequantize refused a valid call", s);
      break;
    }
    case 1:
    case 2: {  // matmul, ggml or interleaved layout
      const Layout layout = op == 2 ? Layout::kInterleaved : Layout::kGgml;
      const size_t want_w = op == 2 ? tiled : ggml;
      Buf<uint8_t> w(changed(want_w, c, 0));
      in.fill(w.data(), w.n);
      if (specials && op == 1) special_scales(sh.type, w.data(), w.n, in);
      Buf<float> x(changed(m_u * cols_u, c, 1));
      fill_floats(x.data(), x.n, raw, in);
      if (prec == Precision::kQ8 && open_bug_path(sh.type)) finite_activations(x.data(), x.n);
      Buf<float> out(changed(m_u * rows_u, c, 2));
      const Status s = matmul(sh.type, w.data(), w.n, sh.rows, sh.cols, x.data(), x.n, sh.m, out.data(), out.n, prec, layout);
      check_status(s);
      if (sh.m >= 1 && (op == 1 || tiles_ok)) expect_refused(s, sh, c, c.which != 2, "matmul took a buffer of the wrong length");
      if (sh.m == 0 && s.ok()) broken("matmul took m = 0", s);
      break;
    }
    case 3: {  // quantize_activations
      const size_t ab = activation_bytes(sh.type, sh.m, sh.cols > 0 ? sh.cols : 0);
      Buf<float> x(changed(m_u * cols_u, c, 1));
      fill_floats(x.data(), x.n, raw, in);
      if (open_bug_path(sh.type)) finite_activations(x.data(), x.n);
      Buf<uint8_t> dst(changed(ab, c, 2));
      const Status s = quantize_activations(sh.type, x.data(), x.n, sh.m, sh.cols, dst.data(), dst.n);
      check_status(s);
      if (c.which != 0) expect_refused(s, sh, c, true, "quantize_activations took a buffer of the wrong length");
      break;
    }
    case 4: {  // quantize, maybe with an importance vector
      Buf<float> src(changed(rows_u * cols_u, c, 1));
      fill_floats(src.data(), src.n, raw, in);
      Buf<uint8_t> dst(changed(ggml, c, 2));
      const bool imp = flags & 8;
      Buf<float> importance(imp ? changed(cols_u, c, 0) : 0);
      fill_floats(importance.data(), importance.n, flags & 16, in);
      // nullptr means "no importance": an empty one is still given (a pointer, length 0)
      static float none[1];
      const float* ip = imp ? (importance.n ? importance.data() : none) : nullptr;
      const Status s = quantize(sh.type, src.data(), src.n, sh.rows, sh.cols, dst.data(), dst.n, ip, importance.n);
      check_status(s);
      if (c.which != 0 || imp) expect_refused(s, sh, c, true, "quantize took a buffer of the wrong length");
      break;
    }
    case 5:
    case 6: {  // interleave / deinterleave (arbitrary tile bytes)
      const bool to_tiles = op == 5;
      Buf<uint8_t> src(changed(to_tiles ? ggml : tiled, c, 0));
      in.fill(src.data(), src.n);
      if (specials && to_tiles) special_scales(sh.type, src.data(), src.n, in);
      Buf<uint8_t> dst(changed(to_tiles ? tiled : ggml, c, 2));
      const Status s = to_tiles ? interleave(sh.type, src.data(), src.n, sh.rows, sh.cols, dst.data(), dst.n)
                                : deinterleave(sh.type, src.data(), src.n, sh.rows, sh.cols, dst.data(), dst.n);
      check_status(s);
      if (tiles_ok && c.which != 1) expect_refused(s, sh, c, true, "interleave/deinterleave took a buffer of the wrong length");
      if (tiles_ok && !g_changed && !s.ok()) broken("interleave/deinterleave refused a valid call", s);
      break;
    }
    case 7: {  // several matrices sharing one input
      const int n = 1 + in.u8() % 3;
      MatmulTarget targets[3];
      std::unique_ptr<uint8_t[]> ws[3];
      std::unique_ptr<float[]> outs[3];
      bool all_valid = sh.m >= 1 && sh.valid;
      for (int i = 0; i < n; ++i) {
        // the first target is the shape's type, the others share its cols
        const int type = i == 0 ? sh.type : pick_type(in.u8());
        const int64_t rows = i == 0 ? sh.rows : in.u8() % 20;
        const TypeTraits* ti = type_traits(type);
        const bool vi = is_weight(type) && rows >= 0 && sh.cols > 0 && sh.cols % ti->block_size == 0;
        const Layout layout = (in.u8() & 1) && vi && has_interleaved_layout(type) ? Layout::kInterleaved : Layout::kGgml;
        size_t wl = vi ? (layout == Layout::kInterleaved ? interleaved_bytes(*ti, rows, sh.cols) : static_cast<size_t>(rows) * row_bytes(*ti, sh.cols)) : 32;
        size_t ol = m_u * static_cast<size_t>(rows > 0 ? rows : 0);
        all_valid = all_valid && vi;
        if (i == n - 1) {
          wl = changed(wl, c, 0);
          ol = changed(ol, c, 2);
        }
        ws[i].reset(wl ? new uint8_t[wl] : nullptr);
        in.fill(ws[i].get(), wl);
        if (specials && layout == Layout::kGgml) special_scales(type, ws[i].get(), wl, in);
        outs[i].reset(ol ? new float[ol] : nullptr);
        targets[i] = MatmulTarget{type, ws[i].get(), wl, rows, outs[i].get(), ol, layout};
      }
      Buf<float> x(changed(m_u * cols_u, c, 1));
      fill_floats(x.data(), x.n, raw, in);
      if (prec == Precision::kQ8 && open_bug_path(-1)) finite_activations(x.data(), x.n);
      const Status s = matmul_shared_input(targets, n, sh.cols, x.data(), x.n, sh.m, prec);
      check_status(s);
      Shape all = sh;
      all.valid = all_valid;
      expect_refused(s, all, c, c.which != 2, "matmul_shared_input took a buffer of the wrong length");
      break;
    }
    default: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(data, size);
  return 0;
}

// The operations behind the public API, callable without JavaScript. Every
// entry point re-checks each length and shape it is given, whatever the
// caller already checked, and reports problems as a Status instead of
// touching memory it was not given.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace qk {

struct Status {
  const char* code = nullptr;  // nullptr: success; else a stable ERR_QK_* code
  std::string message;
  bool ok() const { return code == nullptr; }
  static Status Ok() { return Status{}; }
  static Status Error(const char* c, std::string m) { return Status{c, std::move(m)}; }
};

// Codes shared with the TypeScript layer (lib/errors.ts).
extern const char* const kErrType;    // unknown or unsupported type
extern const char* const kErrShape;   // bad rows / cols / m
extern const char* const kErrLength;  // a buffer of the wrong size
extern const char* const kErrValue;   // NaN / Inf where a finite value is required
extern const char* const kErrIsa;     // ISA unknown or not supported by this CPU
extern const char* const kErrArg;     // anything else about an argument

enum class Precision { kQ8, kF32 };
// kGgml: rows in the ggml layout; kInterleaved: tiles of 16 rows (interleave.h).
enum class Layout { kGgml, kInterleaved };

// src: rows*cols floats; dst: rows * row_bytes(type, cols) bytes. importance
// (nullptr for none): cols non-negative finite weights, one per column, for the
// types whose llama.cpp quantizer takes an importance matrix.
Status quantize(int type, const float* src, size_t src_len, int64_t rows, int64_t cols,
                uint8_t* dst, size_t dst_len, const float* importance = nullptr, size_t importance_len = 0);
// src: rows * row_bytes bytes; dst: rows*cols floats.
Status dequantize(int type, const uint8_t* src, size_t src_len, int64_t rows, int64_t cols,
                  float* dst, size_t dst_len);
// y[i][n] = sum_k x[i][k] * W[n][k]; w is rows (N) x cols (K) of `type`,
// x is m x K floats, out m x N floats. Allocation-free once the calling
// thread's scratch has grown to the largest activation it has seen.
Status matmul(int type, const uint8_t* w, size_t w_len, int64_t rows, int64_t cols,
              const float* x, size_t x_len, int64_t m, float* out, size_t out_len, Precision p,
              Layout layout = Layout::kGgml);
// Several matmuls of one input x (m x cols floats), as a decode step has for
// Q, K and V: one quantization of x and one pass of the thread pool for all
// of them when their types share an activation format. Each target is
// checked as matmul checks its arguments.
struct MatmulTarget {
  int type;
  const uint8_t* w;
  size_t w_len;
  int64_t rows;
  float* out;
  size_t out_len;
  Layout layout;
};
Status matmul_shared_input(const MatmulTarget* targets, int n, int64_t cols, const float* x, size_t x_len, int64_t m, Precision p);
// The interleaved layout of a rows x cols ggml matrix and back (prepare() in
// the API); only for the types has_interleaved_layout() names.
Status interleave(int type, const uint8_t* src, size_t src_len, int64_t rows, int64_t cols, uint8_t* dst, size_t dst_len);
Status deinterleave(int type, const uint8_t* src, size_t src_len, int64_t rows, int64_t cols, uint8_t* dst, size_t dst_len);
// The activation quantization used by 'q8' precision, exposed for parity tests:
// m rows of k floats into the activation format of weight type `type`.
Status quantize_activations(int type, const float* x, size_t x_len, int64_t m, int64_t k,
                            uint8_t* dst, size_t dst_len);
// Bytes quantize_activations writes (0 for float types).
size_t activation_bytes(int type, int64_t m, int64_t k);

}  // namespace qk

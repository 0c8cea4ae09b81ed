// A llama-family decoder on the kernels of ops.h: one call runs a whole batch
// of tokens (a prompt chunk, or one token of each of several sequences)
// through every layer, so a decode step never returns to the caller between
// matmuls. The weights are the caller's bytes (a mapped GGUF file, say): the
// runner keeps pointers, never copies, and re-checks every length at init.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "ops.h"

namespace qk {

struct WeightView {
  int type = -1;
  const uint8_t* data = nullptr;
  size_t len = 0;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features
  Layout layout = Layout::kGgml;  // kInterleaved only for matmul weights of has_interleaved_layout() types
};

struct LlamaConfig {
  int64_t hidden = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn = 0;
  int64_t vocab = 0;
  int64_t rope_dims = 0;     // leading dims of each head that RoPE rotates
  float rope_base = 10000.f;
  float rope_freq_scale = 1.f;  // linear scaling: positions are multiplied by it
  float norm_eps = 1e-5f;
  bool rope_neox = false;    // rotate (i, i + rope_dims/2) instead of (2i, 2i+1)
  int64_t max_batch = 0;     // rows one decode() call may carry
};

struct LlamaLayerWeights {
  const float* attn_norm = nullptr;  // hidden floats
  WeightView wq, wk, wv, wo;
  const float* ffn_norm = nullptr;
  WeightView gate, up, down;
};

struct LlamaWeights {
  WeightView tok_embd;  // vocab rows of hidden
  std::vector<LlamaLayerWeights> layers;
  const float* out_norm = nullptr;
  WeightView output;  // vocab x hidden (the embedding again when tied)
  const float* rope_freqs = nullptr;  // rope_dims/2 divisors of the angles (Llama 3.1), or null
  size_t rope_freqs_len = 0;
};

// One sequence's keys and values for every layer, sized once for its context:
// K as [layer][position][kv_dim], V transposed as [layer][kv_dim][position],
// so both attention products read contiguous rows.
// Keys are [layer][pos][kv_dim]; values are transposed, [layer][kv_dim][ctx],
// so attention's weighted sum is a dot product along positions. Every V row
// starts on a 64-byte boundary (the stride rounds ctx up): the f32/f16 dot
// kernels peel to alignment, so an unaligned row would sum in an order that
// depends on the address and the context length, and the same prompt would
// not give the same logits in every sequence.
class KvCache {
 public:
  Status init(const LlamaConfig& c, int64_t context, bool f16);
  int64_t context() const { return context_; }
  bool f16() const { return f16_; }
  bool fits(const LlamaConfig& c) const;
  size_t bytes() const { return 2 * half_; }
  uint8_t* k_row(int64_t layer, int64_t pos) { return k_ + ((layer * context_ + pos) * kv_dim_) * elem_; }
  // values of dimension d of `layer` along positions
  uint8_t* v_row(int64_t layer, int64_t d) { return v_ + ((layer * kv_dim_ + d) * v_stride_) * elem_; }
  size_t elem() const { return elem_; }

 private:
  struct Free { void operator()(uint8_t* p) const; };
  // calloc'd, so that a page becomes resident only when a position is
  // written to it; k_ and v_ are the 64-byte aligned starts inside them
  std::unique_ptr<uint8_t[], Free> k_mem_, v_mem_;
  uint8_t* k_ = nullptr;
  uint8_t* v_ = nullptr;
  size_t half_ = 0;
  int64_t context_ = 0, kv_dim_ = 0, layers_ = 0, v_stride_ = 0;
  size_t elem_ = 4;
  bool f16_ = false;
};

// A batch: row i is token tokens[i] at position positions[i] of the sequence
// whose cache is caches[cache_index[i]]. Rows with want_logits[i] != 0 get
// their logits written, in row order, vocab floats each, to `logits`.
struct LlamaBatch {
  const int32_t* tokens = nullptr;
  const int32_t* positions = nullptr;
  const int32_t* cache_index = nullptr;
  const uint8_t* want_logits = nullptr;
  int64_t n = 0;
  KvCache* const* caches = nullptr;
  int64_t n_caches = 0;
  float* logits = nullptr;
  size_t logits_len = 0;
};

class LlamaRunner {
 public:
  Status init(const LlamaConfig& c, const LlamaWeights& w);
  // Thread-safe: calls are serialized (they would share the pool anyway).
  Status decode(const LlamaBatch& b);
  const LlamaConfig& config() const { return c_; }

 private:
  struct Scratch;
  void attention(const LlamaBatch& b, int64_t layer);
  LlamaConfig c_;
  LlamaWeights w_;
  std::shared_ptr<Scratch> s_;
};

}  // namespace qk

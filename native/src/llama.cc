#include "llama.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "dispatch.h"
#include "fp16.h"
#include "interleave.h"
#include "pool.h"
#include "types.h"

namespace qk {

namespace {

constexpr int64_t kMaxBatch = 4096;
constexpr int64_t kMaxContext = int64_t{1} << 20;

Status check_weight(const WeightView& w, const char* name, int64_t rows, int64_t cols) {
  const TypeTraits* t = type_traits(w.type);
  if (!t || !t->is_weight) return Status::Error(kErrType, std::string(name) + ": type id " + std::to_string(w.type) + " is not a supported weight type");
  if (w.rows != rows || w.cols != cols) {
    return Status::Error(kErrShape, std::string(name) + " is " + std::to_string(w.rows) + " x " + std::to_string(w.cols) + ", expected " +
                                        std::to_string(rows) + " x " + std::to_string(cols));
  }
  if (cols % t->block_size) return Status::Error(kErrShape, std::string(name) + ": " + std::to_string(cols) + " columns is not a multiple of " + t->name + "'s block");
  const bool tiles = w.layout == Layout::kInterleaved;
  if (tiles && !has_interleaved_layout(w.type)) return Status::Error(kErrArg, std::string(name) + ": " + t->name + " has no interleaved layout");
  const size_t want = tiles ? interleaved_bytes(*t, rows, cols) : static_cast<size_t>(rows) * row_bytes(*t, cols);
  if (!w.data || w.len != want) {
    return Status::Error(kErrLength, std::string(name) + " must hold " + std::to_string(want) + " bytes, got " + std::to_string(w.data ? w.len : 0));
  }
  return Status::Ok();
}

template <typename Fn>
void parallel(int64_t n, int64_t grain, Fn& fn) {
  parallel_for(n, grain, [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); }, &fn);
}

// RMSNorm of n rows of `dim`: the sum of squares in double, as ggml does.
void rms_norm(const float* x, const float* g, float* out, int64_t n, int64_t dim, float eps) {
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    double ss = 0;
    // float squares summed in double, as ggml's rms_norm: the same sum to the last bit
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i] * xr[i]);
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(dim)) + eps);
    for (int64_t i = 0; i < dim; ++i) o[i] = (xr[i] * scale) * g[i];
  }
}

}  // namespace

constexpr size_t kCacheAlign = 64;

void KvCache::Free::operator()(uint8_t* p) const { std::free(p); }

namespace {
uint8_t* align_up(uint8_t* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return p + (kCacheAlign - a % kCacheAlign) % kCacheAlign;
}
}  // namespace

bool KvCache::fits(const LlamaConfig& c) const {
  return half_ > 0 && layers_ == c.layers && kv_dim_ == c.kv_heads * c.head_dim;
}

Status KvCache::init(const LlamaConfig& c, int64_t context, bool f16) {
  if (context < 1 || context > kMaxContext) return Status::Error(kErrArg, "the context length must be in [1, 2^20], got " + std::to_string(context));
  const int64_t kv_dim = c.kv_heads * c.head_dim;
  if (kv_dim < 1 || c.layers < 1) return Status::Error(kErrArg, "the KV cache needs a model with layers and KV heads");
  const size_t elem = f16 ? 2 : 4;
  const int64_t per_line = static_cast<int64_t>(kCacheAlign / elem);
  const int64_t v_stride = (context + per_line - 1) / per_line * per_line;
  const double k_bytes = static_cast<double>(c.layers) * static_cast<double>(context) * static_cast<double>(kv_dim) * elem;
  const double v_bytes = static_cast<double>(c.layers) * static_cast<double>(v_stride) * static_cast<double>(kv_dim) * elem;
  if (k_bytes + v_bytes > static_cast<double>(int64_t{1} << 38)) return Status::Error(kErrArg, "a KV cache of " + std::to_string(k_bytes + v_bytes) + " bytes is too large");
  // both halves get the larger size, so that bytes() is simply 2 * half_
  const size_t half = (static_cast<size_t>(v_bytes) + kCacheAlign - 1) / kCacheAlign * kCacheAlign;
  k_mem_.reset(static_cast<uint8_t*>(std::calloc(half + kCacheAlign, 1)));
  v_mem_.reset(static_cast<uint8_t*>(std::calloc(half + kCacheAlign, 1)));
  if (!k_mem_ || !v_mem_) {
    k_mem_.reset();
    v_mem_.reset();
    k_ = v_ = nullptr;
    half_ = 0;
    return Status::Error(kErrArg, "cannot allocate a KV cache of " + std::to_string(2 * half) + " bytes");
  }
  k_ = align_up(k_mem_.get());
  v_ = align_up(v_mem_.get());
  half_ = half;
  elem_ = elem;
  f16_ = f16;
  context_ = context;
  kv_dim_ = kv_dim;
  layers_ = c.layers;
  v_stride_ = v_stride;
  return Status::Ok();
}

namespace {

// A zeroed float buffer whose pages become resident only when written: the
// batch buffers are sized for the largest prompt batch, and a decode step
// touches one row of them (calloc of this size maps fresh zero pages,
// where std::vector would write every byte).
class LazyFloats {
 public:
  bool resize(size_t n) {
    p_.reset(static_cast<float*>(std::calloc(n ? n : 1, sizeof(float))));
    return p_ != nullptr;
  }
  float* data() { return p_.get(); }
  float& operator[](size_t i) { return p_.get()[i]; }

 private:
  struct Free { void operator()(float* p) const { std::free(p); } };
  std::unique_ptr<float, Free> p_;
};

}  // namespace

struct LlamaRunner::Scratch {
  std::mutex mu;
  LazyFloats x, xn, q, k, v, att, proj, gate, up, rope_cs;
  LazyFloats head_rows;  // final-norm rows of the batch rows that want logits
};

Status LlamaRunner::init(const LlamaConfig& c, const LlamaWeights& w) {
  const int64_t ints[] = {c.hidden, c.layers, c.heads, c.kv_heads, c.head_dim, c.ffn, c.vocab, c.max_batch};
  for (int64_t v : ints) {
    if (v < 1 || v > (int64_t{1} << 31)) return Status::Error(kErrArg, "every llama dimension must be a positive integer below 2^31");
  }
  if (c.heads % c.kv_heads) return Status::Error(kErrShape, "head count " + std::to_string(c.heads) + " is not a multiple of the KV head count " + std::to_string(c.kv_heads));
  if (c.rope_dims < 0 || c.rope_dims > c.head_dim || c.rope_dims % 2) {
    return Status::Error(kErrShape, "the RoPE dimension count " + std::to_string(c.rope_dims) + " must be even and at most the head size " + std::to_string(c.head_dim));
  }
  if (c.max_batch > kMaxBatch) return Status::Error(kErrArg, "max batch must be at most " + std::to_string(kMaxBatch));
  if (!(c.rope_base > 0) || !std::isfinite(c.rope_base) || !(c.rope_freq_scale > 0) || !std::isfinite(c.rope_freq_scale) || !(c.norm_eps >= 0) ||
      !std::isfinite(c.norm_eps)) {
    return Status::Error(kErrValue, "RoPE base, frequency scale and norm epsilon must be finite and positive");
  }
  if (static_cast<int64_t>(w.layers.size()) != c.layers) return Status::Error(kErrShape, "weights for " + std::to_string(w.layers.size()) + " layers, expected " + std::to_string(c.layers));
  if (w.rope_freqs && static_cast<int64_t>(w.rope_freqs_len) != c.rope_dims / 2) {
    return Status::Error(kErrShape, "rope_freqs must hold " + std::to_string(c.rope_dims / 2) + " floats");
  }
  const int64_t qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
  Status s;
  if (!(s = check_weight(w.tok_embd, "token_embd.weight", c.vocab, c.hidden)).ok()) return s;
  if (w.tok_embd.layout != Layout::kGgml) return Status::Error(kErrArg, "token_embd.weight must be in the ggml layout (its rows are read one by one)");
  if (!active_kernels().type[w.tok_embd.type].dequantize_row) return Status::Error(kErrType, "token_embd.weight's type has no kernels in this build");
  if (!(s = check_weight(w.output, "output.weight", c.vocab, c.hidden)).ok()) return s;
  if (!w.out_norm) return Status::Error(kErrArg, "output_norm.weight is missing");
  for (int64_t l = 0; l < c.layers; ++l) {
    const LlamaLayerWeights& L = w.layers[static_cast<size_t>(l)];
    const std::string p = "blk." + std::to_string(l) + ".";
    if (!L.attn_norm || !L.ffn_norm) return Status::Error(kErrArg, p + "attn_norm / ffn_norm weight is missing");
    if (!(s = check_weight(L.wq, (p + "attn_q.weight").c_str(), qdim, c.hidden)).ok()) return s;
    if (!(s = check_weight(L.wk, (p + "attn_k.weight").c_str(), kvdim, c.hidden)).ok()) return s;
    if (!(s = check_weight(L.wv, (p + "attn_v.weight").c_str(), kvdim, c.hidden)).ok()) return s;
    if (!(s = check_weight(L.wo, (p + "attn_output.weight").c_str(), c.hidden, qdim)).ok()) return s;
    if (!(s = check_weight(L.gate, (p + "ffn_gate.weight").c_str(), c.ffn, c.hidden)).ok()) return s;
    if (!(s = check_weight(L.up, (p + "ffn_up.weight").c_str(), c.ffn, c.hidden)).ok()) return s;
    if (!(s = check_weight(L.down, (p + "ffn_down.weight").c_str(), c.hidden, c.ffn)).ok()) return s;
  }
  auto sc = std::make_shared<Scratch>();
  const size_t n = static_cast<size_t>(c.max_batch);
  const bool allocated = sc->x.resize(n * c.hidden) && sc->xn.resize(n * c.hidden) && sc->proj.resize(n * c.hidden) &&
                         sc->head_rows.resize(n * c.hidden) && sc->q.resize(n * qdim) && sc->att.resize(n * qdim) &&
                         sc->k.resize(n * kvdim) && sc->v.resize(n * kvdim) && sc->gate.resize(n * c.ffn) && sc->up.resize(n * c.ffn) &&
                         sc->rope_cs.resize(n * static_cast<size_t>(c.rope_dims));
  if (!allocated) return Status::Error(kErrArg, "cannot allocate the decoder's buffers for a batch of " + std::to_string(c.max_batch));
  c_ = c;
  w_ = w;
  s_ = std::move(sc);
  return Status::Ok();
}

namespace {

// cos/sin of every rotated pair of one position, as ggml's rope cache makes
// them: the angle's base advances by a float multiply per pair.
void rope_angles(const LlamaConfig& c, const float* freqs, int32_t pos, float* cs) {
  const int64_t pairs = c.rope_dims / 2;
  const float theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.rope_dims));
  float base = static_cast<float>(pos);
  for (int64_t j = 0; j < pairs; ++j) {
    const float ff = freqs ? freqs[j] : 1.0f;
    const float theta = c.rope_freq_scale * (base / ff);
    cs[2 * j] = std::cos(theta);
    cs[2 * j + 1] = std::sin(theta);
    base *= theta_scale;
  }
}

void rope_apply(const LlamaConfig& c, float* x, int64_t heads, const float* cs) {
  const int64_t pairs = c.rope_dims / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * c.head_dim;
    for (int64_t j = 0; j < pairs; ++j) {
      const int64_t a = c.rope_neox ? j : 2 * j;
      const int64_t b = c.rope_neox ? j + pairs : 2 * j + 1;
      const float x0 = v[a], x1 = v[b], co = cs[2 * j], si = cs[2 * j + 1];
      v[a] = x0 * co - x1 * si;
      v[b] = x0 * si + x1 * co;
    }
  }
}

Status mm(const WeightView& w, const float* x, int64_t m, float* out) {
  return matmul(w.type, w.data, w.len, w.rows, w.cols, x, static_cast<size_t>(m * w.cols), m, out, static_cast<size_t>(m * w.rows),
                Precision::kQ8, w.layout);
}

// Matrices that read the same input (Q, K, V; gate, up): one quantization
// of it and one pass of the pool.
template <int N>
Status mm_shared(const WeightView* const (&ws)[N], const float* x, int64_t m, float* const (&outs)[N]) {
  MatmulTarget t[N];
  for (int i = 0; i < N; ++i) {
    t[i] = {ws[i]->type, ws[i]->data, ws[i]->len, ws[i]->rows, outs[i], static_cast<size_t>(m * ws[i]->rows), ws[i]->layout};
    if (ws[i]->cols != ws[0]->cols) return Status::Error(kErrShape, "matrices of one input must have the same column count");
  }
  return matmul_shared_input(t, N, ws[0]->cols, x, static_cast<size_t>(m * ws[0]->cols), m, Precision::kQ8);
}

}  // namespace

void LlamaRunner::attention(const LlamaBatch& b, int64_t layer) {
  const LlamaConfig& c = c_;
  Scratch& s = *s_;
  const int64_t hd = c.head_dim, qdim = c.heads * hd, group = c.heads / c.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const KernelTable& kt = active_kernels();
  // An f16 cache gets llama.cpp's f16 attention numerics (its non-flash
  // path): ggml's mul_mat converts the f32 operand to the f16 of the other,
  // so the query is rounded to f16 before Q.K and the softmax weights before
  // they weigh V. Rounding them here too keeps the logits within float noise of
  // llama.cpp's on the same cache type.
  auto task = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    thread_local std::vector<float> q16;
    if (static_cast<int64_t>(q16.size()) < hd) q16.resize(static_cast<size_t>(hd));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i = t / c.heads, h = t % c.heads, kvh = h / group;
      KvCache& kv = *b.caches[b.cache_index[i]];
      const int64_t n_kv = static_cast<int64_t>(b.positions[i]) + 1;
      const int cache_type = kv.f16() ? kF16 : kF32;
      const VecDotF32Fn dot = kt.type[cache_type].vec_dot_f32;
      if (static_cast<int64_t>(scores.size()) < n_kv) scores.resize(static_cast<size_t>(n_kv));
      const float* qh = s.q.data() + i * qdim + h * hd;
      if (kv.f16()) {
        for (int64_t d = 0; d < hd; ++d) q16[d] = fp16_to_f32(f32_to_fp16(qh[d]));
        qh = q16.data();
      }
      float mx = -INFINITY;
      for (int64_t p = 0; p < n_kv; ++p) {
        const float d = dot(hd, kv.k_row(layer, p) + kvh * hd * kv.elem(), qh) * scale;
        scores[p] = d;
        mx = std::max(mx, d);
      }
      double sum = 0;
      for (int64_t p = 0; p < n_kv; ++p) {
        const float e = std::exp(scores[p] - mx);
        scores[p] = e;
        sum += e;
      }
      const float inv = static_cast<float>(1.0 / sum);
      if (kv.f16()) {
        for (int64_t p = 0; p < n_kv; ++p) scores[p] = fp16_to_f32(f32_to_fp16(scores[p] * inv));
      } else {
        for (int64_t p = 0; p < n_kv; ++p) scores[p] *= inv;
      }
      float* out = s.att.data() + i * qdim + h * hd;
      for (int64_t d = 0; d < hd; ++d) out[d] = dot(n_kv, kv.v_row(layer, kvh * hd + d), scores.data());
    }
  };
  const int64_t tasks = b.n * c.heads;
  const int64_t cost = std::max<int64_t>(1, (static_cast<int64_t>(b.positions[0]) + 1) * hd * 2);
  parallel(tasks, std::max<int64_t>(1, std::min<int64_t>(c.heads, (int64_t{1} << 15) / cost)), task);
}

Status LlamaRunner::decode(const LlamaBatch& b) {
  if (!s_) return Status::Error(kErrArg, "the model is not initialized");
  const LlamaConfig& c = c_;
  if (b.n < 1 || b.n > c.max_batch) return Status::Error(kErrShape, "a batch holds 1 to " + std::to_string(c.max_batch) + " tokens, got " + std::to_string(b.n));
  if (!b.tokens || !b.positions || !b.cache_index || !b.want_logits || !b.caches || b.n_caches < 1) return Status::Error(kErrArg, "incomplete batch");
  const int64_t kvdim = c.kv_heads * c.head_dim, qdim = c.heads * c.head_dim;
  for (int64_t j = 0; j < b.n_caches; ++j) {
    const KvCache* kv = b.caches[j];
    if (!kv || !kv->fits(c)) {
      return Status::Error(kErrArg, "KV cache " + std::to_string(j) + " does not belong to this model");
    }
  }
  int64_t n_logits = 0;
  for (int64_t i = 0; i < b.n; ++i) {
    const int32_t tok = b.tokens[i], ci = b.cache_index[i];
    if (tok < 0 || tok >= c.vocab) return Status::Error(kErrArg, "token " + std::to_string(tok) + " at batch row " + std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
    if (ci < 0 || ci >= b.n_caches) return Status::Error(kErrArg, "batch row " + std::to_string(i) + " names KV cache " + std::to_string(ci) + " of " + std::to_string(b.n_caches));
    const int32_t pos = b.positions[i];
    if (pos < 0 || pos >= b.caches[ci]->context()) {
      return Status::Error(kErrArg, "position " + std::to_string(pos) + " at batch row " + std::to_string(i) + " is outside the context of " + std::to_string(b.caches[ci]->context()));
    }
    if (b.want_logits[i]) ++n_logits;
  }
  if (n_logits > 0 && (!b.logits || b.logits_len < static_cast<size_t>(n_logits * c.vocab))) {
    return Status::Error(kErrLength, "logits must hold " + std::to_string(n_logits * c.vocab) + " floats, got " + std::to_string(b.logits ? b.logits_len : 0));
  }

  std::lock_guard<std::mutex> lock(s_->mu);
  Scratch& s = *s_;
  const int64_t n = b.n, H = c.hidden, F = c.ffn;
  const DequantizeRowFn embed = active_kernels().type[w_.tok_embd.type].dequantize_row;
  const size_t embd_rb = row_bytes(*type_traits(w_.tok_embd.type), H);
  for (int64_t i = 0; i < n; ++i) embed(w_.tok_embd.data + static_cast<size_t>(b.tokens[i]) * embd_rb, s.x.data() + i * H, H);
  for (int64_t i = 0; i < n; ++i) rope_angles(c, w_.rope_freqs, b.positions[i], s.rope_cs.data() + i * c.rope_dims);

  Status st;
  for (int64_t l = 0; l < c.layers; ++l) {
    const LlamaLayerWeights& L = w_.layers[static_cast<size_t>(l)];
    rms_norm(s.x.data(), L.attn_norm, s.xn.data(), n, H, c.norm_eps);
    if (!(st = mm_shared({&L.wq, &L.wk, &L.wv}, s.xn.data(), n, {s.q.data(), s.k.data(), s.v.data()})).ok()) return st;
    for (int64_t i = 0; i < n; ++i) {
      const float* cs = s.rope_cs.data() + i * c.rope_dims;
      rope_apply(c, s.q.data() + i * qdim, c.heads, cs);
      rope_apply(c, s.k.data() + i * kvdim, c.kv_heads, cs);
      KvCache& kv = *b.caches[b.cache_index[i]];
      const int64_t pos = b.positions[i];
      const float* kr = s.k.data() + i * kvdim;
      const float* vr = s.v.data() + i * kvdim;
      uint8_t* kd = kv.k_row(l, pos);
      if (kv.f16()) {
        uint16_t* k16 = reinterpret_cast<uint16_t*>(kd);
        for (int64_t d = 0; d < kvdim; ++d) {
          k16[d] = f32_to_fp16(kr[d]);
          reinterpret_cast<uint16_t*>(kv.v_row(l, d))[pos] = f32_to_fp16(vr[d]);
        }
      } else {
        float* k32 = reinterpret_cast<float*>(kd);
        for (int64_t d = 0; d < kvdim; ++d) {
          k32[d] = kr[d];
          reinterpret_cast<float*>(kv.v_row(l, d))[pos] = vr[d];
        }
      }
    }
    attention(b, l);
    if (!(st = mm(L.wo, s.att.data(), n, s.proj.data())).ok()) return st;
    for (int64_t i = 0; i < n * H; ++i) s.x[i] += s.proj[i];

    rms_norm(s.x.data(), L.ffn_norm, s.xn.data(), n, H, c.norm_eps);
    if (!(st = mm_shared({&L.gate, &L.up}, s.xn.data(), n, {s.gate.data(), s.up.data()})).ok()) return st;
    for (int64_t i = 0; i < n * F; ++i) {
      const float g = s.gate[i];
      s.gate[i] = (g / (1.0f + std::exp(-g))) * s.up[i];
    }
    if (!(st = mm(L.down, s.gate.data(), n, s.proj.data())).ok()) return st;
    for (int64_t i = 0; i < n * H; ++i) s.x[i] += s.proj[i];
  }
  if (n_logits == 0) return Status::Ok();
  int64_t r = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!b.want_logits[i]) continue;
    rms_norm(s.x.data() + i * H, w_.out_norm, s.head_rows.data() + r * H, 1, H, c.norm_eps);
    ++r;
  }
  return mm(w_.output, s.head_rows.data(), n_logits, b.logits);
}

}  // namespace qk

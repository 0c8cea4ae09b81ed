// Golden-file test of the scalar reference kernels: every tensor of every
// quantized file that llama.cpp's llama-quantize made from the golden f32
// model (shared/golden, see its README) must be reproduced byte for byte by
// the scalar table's quantize_row, row by row. Also checks the worked examples
// of the format reference (quant-formats.md section 12: TV-2b, TV-4, TV-6,
// TV-7, TV-8, TV-9) and a few self-consistency properties of the new kernels
// (q5_0, q5_1, q4_K, q5_K, q6_K, q8_K, importance quantizers), including
// non-finite and subnormal inputs.
//
//   usage: test_golden [path/to/golden/manifest.json]
//          (default: $QK_GOLDEN, else ../shared/golden/manifest.json from the
//           repository root, else /work/shared/golden/manifest.json)
//   build: g++ -O2 -std=c++17 -ffp-contract=off -Wall -Wextra -Inative/src
//          native/src/types.cc native/src/kernels_scalar.cc native/src/kernels_scalar_q5.cc
//          native/src/kernels_scalar_k.cc native/src/kquant_search.cc native/test/test_golden.cc
//   QK_EDGE_DUMP=1 also prints every edge-input output block (for diffing platforms).
// Prints "N passed, N failed"; exit status 1 when anything failed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fp16.h"
#include "kernels.h"

using namespace qk;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_pass;
  } else {
    ++g_fail;
    std::printf("FAIL %s\n", what.c_str());
  }
}

// ---- SHA-256 (FIPS 180-4) -------------------------------------------------

std::string sha256_hex(const uint8_t* data, size_t len) {
  static const uint32_t K[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
      0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
      0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
      0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
      0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
      0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  std::vector<uint8_t> m(data, data + len);
  m.push_back(0x80);
  while (m.size() % 64 != 56) m.push_back(0);
  const uint64_t bits = static_cast<uint64_t>(len) * 8;
  for (int i = 7; i >= 0; --i) m.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  for (size_t off = 0; off < m.size(); off += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (static_cast<uint32_t>(m[off + 4 * i]) << 24) | (static_cast<uint32_t>(m[off + 4 * i + 1]) << 16) |
             (static_cast<uint32_t>(m[off + 4 * i + 2]) << 8) | m[off + 4 * i + 3];
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  char out[65];
  for (int i = 0; i < 8; ++i) std::snprintf(out + 8 * i, 9, "%08x", h[i]);
  return std::string(out, 64);
}

// ---- a minimal JSON reader (objects, arrays, strings, numbers, literals) ---

struct Json {
  enum Kind { kNull, kBool, kNum, kStr, kArr, kObj } kind = kNull;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // keeps file order
  const Json* get(const std::string& key) const {
    for (const auto& kv : obj) if (kv.first == key) return &kv.second;
    return nullptr;
  }
};

struct JsonParser {
  const std::string& s;
  size_t i = 0;
  bool ok = true;
  explicit JsonParser(const std::string& text) : s(text) {}
  void ws() { while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i; }
  std::string string() {
    std::string out;
    ++i;  // opening quote
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\' && i + 1 < s.size()) {
        const char e = s[i + 1];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e;  // \uXXXX is not used by the manifest
        i += 2;
      } else {
        out += s[i++];
      }
    }
    if (i >= s.size()) ok = false;
    ++i;
    return out;
  }
  Json value() {
    Json v;
    ws();
    if (i >= s.size()) { ok = false; return v; }
    const char c = s[i];
    if (c == '{') {
      v.kind = Json::kObj;
      ++i;
      ws();
      if (i < s.size() && s[i] == '}') { ++i; return v; }
      while (ok && i < s.size()) {
        ws();
        if (s[i] != '"') { ok = false; break; }
        std::string key = string();
        ws();
        if (i >= s.size() || s[i] != ':') { ok = false; break; }
        ++i;
        v.obj.emplace_back(key, value());
        ws();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == '}') { ++i; break; }
        ok = false;
      }
    } else if (c == '[') {
      v.kind = Json::kArr;
      ++i;
      ws();
      if (i < s.size() && s[i] == ']') { ++i; return v; }
      while (ok && i < s.size()) {
        v.arr.push_back(value());
        ws();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == ']') { ++i; break; }
        ok = false;
      }
    } else if (c == '"') {
      v.kind = Json::kStr;
      v.str = string();
    } else if (s.compare(i, 4, "true") == 0) {
      v.kind = Json::kBool; v.num = 1; i += 4;
    } else if (s.compare(i, 5, "false") == 0) {
      v.kind = Json::kBool; i += 5;
    } else if (s.compare(i, 4, "null") == 0) {
      i += 4;
    } else {
      v.kind = Json::kNum;
      char* end = nullptr;
      v.num = std::strtod(s.c_str() + i, &end);
      if (end == s.c_str() + i) ok = false;
      i = static_cast<size_t>(end - s.c_str());
    }
    return v;
  }
};

bool read_file(const std::string& path, std::vector<uint8_t>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  out->clear();
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  std::fclose(f);
  return true;
}

std::vector<uint8_t> unhex(const char* h) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (const char* p = h; *p; ++p) {
    int v;
    if (*p >= '0' && *p <= '9') v = *p - '0';
    else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
    else continue;  // spaces and newlines
    if (hi < 0) { hi = v; } else { out.push_back(static_cast<uint8_t>(hi * 16 + v)); hi = -1; }
  }
  return out;
}

std::string hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; ++i) { std::snprintf(b, 3, "%02x", p[i]); s += b; }
  return s;
}

uint32_t bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// quant-formats.md section 12: the deterministic input generator.
std::vector<float> lcg(int n, uint32_t seed, float scale = 1.f) {
  std::vector<float> out;
  uint32_t state = seed % 2147483648u;
  for (int i = 0; i < n; ++i) {
    state = static_cast<uint32_t>((static_cast<uint64_t>(state) * 1103515245u + 12345u) % 2147483648u);
    const int v = static_cast<int>((state >> 8) & 0xFFFF);
    out.push_back(static_cast<float>(v - 32768) / 16384.f * scale);
  }
  return out;
}

// ---- golden files -----------------------------------------------------------

void run_golden(const KernelTable& t, const std::string& manifest_path) {
  std::string dir = manifest_path;
  const size_t slash = dir.find_last_of('/');
  dir = slash == std::string::npos ? std::string(".") : dir.substr(0, slash);
  std::vector<uint8_t> raw;
  if (!read_file(manifest_path, &raw)) {
    check(false, "cannot read " + manifest_path);
    return;
  }
  const std::string text(raw.begin(), raw.end());
  JsonParser jp(text);
  const Json root = jp.value();
  const Json* tensors = root.get("tensors");
  const Json* files = root.get("files");
  if (!jp.ok || !tensors || !files) {
    check(false, "cannot parse " + manifest_path);
    return;
  }
  std::map<std::string, std::vector<float>> src_cache;
  for (const auto& file : files->obj) {
    const Json* ft = file.second.get("tensors");
    if (!ft) { check(false, file.first + ": no tensors"); continue; }
    int file_pass = 0, file_fail = 0;
    for (const auto& tensor : ft->obj) {
      const std::string& name = tensor.first;
      const Json* ty = tensor.second.get("type");
      const Json* bin = tensor.second.get("file");
      const Json* sha = tensor.second.get("sha256");
      const Json* src = tensors->get(name);
      const std::string what = file.first + "/" + name;
      if (!ty || !bin || !src || !src->get("rows") || !src->get("cols") || !src->get("file")) {
        check(false, what + ": incomplete manifest entry");
        ++file_fail;
        continue;
      }
      const int type = type_from_name(ty->str.c_str());
      const TypeTraits* tt = type_traits(type);
      if (!tt || !t.type[type].quantize_row) {
        check(false, what + ": no scalar quantizer for " + ty->str);
        ++file_fail;
        continue;
      }
      const int64_t rows = static_cast<int64_t>(src->get("rows")->num);
      const int64_t cols = static_cast<int64_t>(src->get("cols")->num);
      auto it = src_cache.find(name);
      if (it == src_cache.end()) {
        std::vector<uint8_t> b;
        std::vector<float> f;
        if (read_file(dir + "/" + src->get("file")->str, &b) && b.size() == static_cast<size_t>(rows * cols) * 4) {
          f.resize(static_cast<size_t>(rows * cols));
          std::memcpy(f.data(), b.data(), b.size());
        }
        it = src_cache.emplace(name, std::move(f)).first;
      }
      const std::vector<float>& x = it->second;
      std::vector<uint8_t> want;
      if (x.empty() || !read_file(dir + "/" + bin->str, &want)) {
        check(false, what + ": cannot read source or .bin");
        ++file_fail;
        continue;
      }
      const size_t rb = row_bytes(*tt, cols);
      std::vector<uint8_t> got(rb * static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) t.type[type].quantize_row(x.data() + r * cols, got.data() + r * rb, cols);
      bool ok = got.size() == want.size() && std::memcmp(got.data(), want.data(), got.size()) == 0;
      if (!ok) {
        size_t at = 0;
        while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
        const size_t row = at / rb, blk = (at % rb) / static_cast<size_t>(tt->block_bytes);
        check(false, what + " (" + ty->str + "): first difference at byte " + std::to_string(at) + " (row " +
                         std::to_string(row) + ", block " + std::to_string(blk) + ")");
        ++file_fail;
        continue;
      }
      if (sha && sha->kind == Json::kStr && sha256_hex(got.data(), got.size()) != sha->str) {
        check(false, what + ": bytes match the .bin but not the manifest sha256");
        ++file_fail;
        continue;
      }
      check(true, what);
      ++file_pass;
    }
    std::printf("  %-20s %2d tensors match, %d differ\n", file.first.c_str(), file_pass, file_fail);
  }
}

// ---- worked examples (quant-formats.md section 12) -------------------------

void check_bytes(const uint8_t* got, const std::vector<uint8_t>& want, const std::string& what) {
  const bool ok = std::memcmp(got, want.data(), want.size()) == 0;
  if (!ok) std::printf("  %s got  %s\n  %s want %s\n", what.c_str(), hex(got, want.size()).c_str(), what.c_str(), hex(want.data(), want.size()).c_str());
  check(ok, what);
}

void check_sha(const uint8_t* got, size_t n, const char* want, const std::string& what) {
  const std::string h = sha256_hex(got, n);
  if (h != want) std::printf("  %s sha256 %s\n", what.c_str(), h.c_str());
  check(h == want, what + " sha256");
}

// Decimal values printed with 9 significant digits identify an f32 exactly.
void check_dequant(const KernelTable& t, int type, const uint8_t* blk, const char* want, const std::string& what) {
  std::vector<float> y(QK_K);
  t.type[type].dequantize_row(blk, y.data(), QK_K);
  const char* p = want;
  bool ok = true;
  for (int i = 0; i < 8; ++i) {
    char* end;
    const float w = std::strtof(p, &end);
    if (bits(w) != bits(y[i])) { ok = false; std::printf("  %s dequant[%d] = %.9g, want %.9g\n", what.c_str(), i, y[i], w); }
    p = end;
  }
  check(ok, what + " dequant[0..7]");
}

void run_vectors(const KernelTable& t) {
  // TV-2b: all-zero blocks and constant blocks.
  {
    std::vector<float> z(QK_K, 0.f);
    uint8_t b[292];
    t.type[kQ5_0].quantize_row(z.data(), b, 32);
    check_bytes(b, unhex("0080ffffffff00000000000000000000000000000000"), "TV-2b q5_0 zero block");
    t.type[kQ5_1].quantize_row(z.data(), b, 32);
    check_bytes(b, std::vector<uint8_t>(24, 0), "TV-2b q5_1 zero block");
    for (int type : {kQ4_K, kQ5_K, kQ6_K}) {
      t.type[type].quantize_row(z.data(), b, QK_K);
      check_bytes(b, std::vector<uint8_t>(type_traits(type)->block_bytes, 0), std::string("TV-2b ") + type_traits(type)->name + " zero block");
    }
    std::memset(b, 0xA5, sizeof b);
    t.type[kQ8_K].quantize_act(z.data(), b, QK_K);
    check_bytes(b, std::vector<uint8_t>(292, 0), "TV-2b q8_K zero block");

    std::vector<float> c(QK_K, -0.5f);
    t.type[kQ4_K].quantize_row(c.data(), b, QK_K);
    std::vector<uint8_t> want = unhex("0000 1020 00000000 ffffffff f0f0f0f0");
    want.resize(144, 0);
    check_bytes(b, want, "TV-2b q4_K constant -0.5");
    c.assign(QK_K, 0.75f);
    t.type[kQ4_K].quantize_row(c.data(), b, QK_K);
    want = unhex("8012 0000 ffffffff 00000000 0f0f0f0f");
    want.resize(144, 0xff);
    check_bytes(b, want, "TV-2b q4_K constant 0.75");
  }

  // TV-4: q5_0 and q5_1 of block B = lcg(32, 1).
  {
    const std::vector<float> x = lcg(32, 1);
    uint8_t b[24];
    t.type[kQ5_0].quantize_row(x.data(), b, 32);
    check_bytes(b, unhex("e22fe7de0a34098060cdb9ef2d9fdbdf18bc50137cb1"), "TV-4 q5_0");
    t.type[kQ5_1].quantize_row(x.data(), b, 32);
    check_bytes(b, unhex("0830e2bfe5ce0a34088f60bda9ef2c9fdade17bc5f137cb1"), "TV-4 q5_1");
  }

  // TV-6: K-quants of super-block K = lcg(256, 7), importance (1 + 13i mod 17)/8.
  const std::vector<float> xk = lcg(256, 7);
  std::vector<float> imp(256);
  for (int i = 0; i < 256; ++i) imp[i] = static_cast<float>(1 + (13 * i) % 17) / 8.f;
  uint8_t q4k[144], q6k[210];
  {
    t.type[kQ4_K].quantize_row(xk.data(), q4k, QK_K);
    check_bytes(q4k, unhex(
        "62 1c 06 28 fd fa fa fe ff ff fb fe cf 83 e8 f9 c6 95 d7 09 11 62 22 d3 53 2a 4c 61 fb 71 6e c4"
        "56 96 1c 62 6f 42 5d 4d c8 52 a9 16 b6 70 e9 37 79 90 bd 72 b9 1a 64 8f 0c 93 d7 75 6c cf 38 b9"
        "ff 86 41 90 e4 d6 3d d9 e0 cf 82 bb e2 b9 b5 b5 f0 9c ee 86 49 5d f4 f7 7a 30 9c 24 6d 94 a4 e2"
        "9e fc 5d 58 94 ad 05 11 01 e7 21 f9 f2 f1 ee 66 c9 37 eb d2 7e 1b 5f ba 7e be 09 1a 8e 7e 50 ec"
        "c4 58 0f 57 fc 35 93 c0 f8 38 41 3f 33 84 f4 d8"), "TV-6 q4_K reference bytes");
    check_sha(q4k, 144, "ef4b1e15a9af2bc789f73c32e85d700613770bd520b973cae7c6eee0c887bd47", "TV-6 q4_K reference");
    check_dequant(t, kQ4_K, q4k,
                  "-0.413772583 -0.674858093 -0.152687073 0.369483948 -1.71920013 -1.45811462 -1.45811462 -1.19702911",
                  "TV-6 q4_K");
    uint8_t b[176];
    t.type[kQ4_K].quantize_row_importance(xk.data(), b, QK_K, imp.data());
    check_sha(b, 144, "04f3e7d298942daa546385d0e1b513aa43a3453b3d451dc3f89853ae1003d81c", "TV-6 q4_K importance");
    t.type[kQ5_K].quantize_row(xk.data(), b, QK_K);
    check_sha(b, 176, "0dd9eb6b3bd17a0fa29ed94bd9c532b9c441ba9b08a24bbd30681016ecdbe6d9", "TV-6 q5_K reference");
    check_dequant(t, kQ5_K, b,
                  "-0.314876556 -0.817638397 -0.189186096 0.313575745 -1.69747162 -1.4460907 -1.4460907 -1.32040024",
                  "TV-6 q5_K");
    t.type[kQ5_K].quantize_row_importance(xk.data(), b, QK_K, imp.data());
    check_sha(b, 176, "c87d9fc623f106121436cd1eded760882b97a16b360de2b1a7e125ec311f9925", "TV-6 q5_K importance");
    t.type[kQ6_K].quantize_row(xk.data(), q6k, QK_K);
    check_sha(q6k, 210, "85309b0a6862593d58537384401d12f2d7688c73e7f5e8dc516063221f47cc96", "TV-6 q6_K reference");
    check_bytes(q6k + 192, unhex("6e 7e 82 91 77 86 86 7c 7a 79 64 90 83 87 86 80 13 90"), "TV-6 q6_K scales and d");
    check_dequant(t, kQ6_K, q6k,
                  "-0.328245163 -0.76590538 -0.164122581 0.273537636 -1.69593334 -1.42239571 -1.47710323 -1.25827312",
                  "TV-6 q6_K");
    uint8_t b6[210];
    t.type[kQ6_K].quantize_row_importance(xk.data(), b6, QK_K, imp.data());
    check_sha(b6, 210, "9a20eb6d9c055d8be2ed534c4794503b6e481fa9a642423c5855bd3c50b0fbbd", "TV-6 q6_K importance");
  }

  // TV-7: unpacking the 6-bit scales/mins S = 81 c2 c3 c4 85 46 c7 08 18 12 0c 0f
  // (through dequantize: d = 1, dmin = 0, level 1 gives sc_j; d = 0, dmin = 1,
  // level 0 gives -m_j).
  {
    const std::vector<uint8_t> S = unhex("81c2c3c48546c70818120c0f");
    const int want_sc[8] = {1, 2, 3, 4, 40, 50, 60, 63}, want_m[8] = {5, 6, 7, 8, 33, 17, 48, 0};
    uint8_t b[144] = {};
    std::memcpy(b + 4, S.data(), 12);
    std::vector<float> y(QK_K);
    b[0] = 0x00; b[1] = 0x3C;  // d = 1
    std::memset(b + 16, 0x11, 128);
    t.type[kQ4_K].dequantize_row(b, y.data(), QK_K);
    bool ok = true;
    for (int j = 0; j < 8; ++j) ok = ok && y[32 * j] == static_cast<float>(want_sc[j]) && y[32 * j + 31] == static_cast<float>(want_sc[j]);
    b[0] = 0; b[1] = 0; b[2] = 0x00; b[3] = 0x3C;  // dmin = 1
    std::memset(b + 16, 0, 128);
    t.type[kQ4_K].dequantize_row(b, y.data(), QK_K);
    for (int j = 0; j < 8; ++j) ok = ok && y[32 * j] == -static_cast<float>(want_m[j]);
    check(ok, "TV-7 6-bit scale/min unpacking");
  }

  // TV-8: q8_K of activations A = lcg(256, 99, scale 2).
  const std::vector<float> xa = lcg(256, 99, 2.f);
  uint8_t q8k[292];
  {
    t.type[kQ8_K].quantize_act(xa.data(), q8k, QK_K);
    float d;
    std::memcpy(&d, q8k, 4);
    check(bits(d) == 0xBD001932u, "TV-8 q8_K d bits");
    const int want_qs[16] = {-48, -62, -36, -104, 118, 43, 51, -107, 113, -83, 19, 8, 24, 15, -43, 94};
    const int want_bs[16] = {2, -251, -616, -595, 309, -482, 345, -298, -381, -174, 52, 279, 234, 676, 44, 119};
    bool ok = true;
    for (int i = 0; i < 16; ++i) ok = ok && static_cast<int8_t>(q8k[4 + i]) == want_qs[i];
    for (int g = 0; g < 16; ++g) ok = ok && static_cast<int16_t>(u16(q8k + 260 + 2 * g)) == want_bs[g];
    check(ok, "TV-8 q8_K qs[0..15] and bsums");
    check_sha(q8k, 292, "35232d96b3b164aa8705d8fc0d5ad353d80b4da8c86dcb0e2adf734eef482e0b", "TV-8 q8_K");
  }

  // TV-9: the exact integers of Q4_K.Q8_K and Q6_K.Q8_K, decoded here straight
  // from the layout text of quant-formats.md 4.3/4.5, and the float result in
  // the project's order: acc += (d*dy)*A; acc -= (dmin*dy)*B.
  {
    const int8_t* qy = reinterpret_cast<const int8_t*>(q8k + 4);
    float dy;
    std::memcpy(&dy, q8k, 4);
    long A = 0, B = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* S = q4k + 4;
      const int sc = j < 4 ? (S[j] & 63) : ((S[j + 4] & 0x0F) | ((S[j - 4] >> 6) << 4));
      const int m = j < 4 ? (S[j + 4] & 63) : ((S[j + 4] >> 4) | ((S[j] >> 6) << 4));
      long dot = 0;
      for (int e = 32 * j; e < 32 * j + 32; ++e) {
        const int c = e / 64, l = e % 64;
        const int q = l < 32 ? (q4k[16 + 32 * c + l] & 0xF) : (q4k[16 + 32 * c + l - 32] >> 4);
        dot += q * qy[e];
      }
      A += sc * dot;
      B += m * (static_cast<int16_t>(u16(q8k + 260 + 4 * j)) + static_cast<int16_t>(u16(q8k + 262 + 4 * j)));
    }
    check(A == -373751 && B == -47348, "TV-9 q4_K.q8_K integers A = -373751, B = -47348 (got " + std::to_string(A) + ", " + std::to_string(B) + ")");
    const float want = (fp16_to_f32(u16(q4k)) * dy) * static_cast<float>(A) - (fp16_to_f32(u16(q4k + 2)) * dy) * static_cast<float>(B);
    const float got = t.type[kQ4_K].vec_dot(QK_K, q4k, q8k);
    std::printf("  TV-9 q4_K.q8_K = %.9g (0x%08X); llama.cpp generic 3.48371696, AVX2 3.48371124, f64 3.4837192\n", got, bits(got));
    check(bits(got) == bits(want) && std::fabs(got - 3.4837192) < 1e-5, "TV-9 q4_K.q8_K value in the project's order");

    long A6 = 0;
    for (int j = 0; j < 16; ++j) {
      long dot = 0;
      for (int e = 16 * j; e < 16 * j + 16; ++e) {
        const int h = e / 128, r = e % 128, l = r % 32, part = r / 32;  // 0: ql low, 1: ql+32 low, 2: ql high, 3: ql+32 high
        const uint8_t qlb = q6k[64 * h + l + (part & 1) * 32];
        const int lo = part < 2 ? (qlb & 0xF) : (qlb >> 4);
        const int hi = (q6k[128 + 32 * h + l] >> (2 * part)) & 3;
        dot += ((lo | (hi << 4)) - 32) * qy[e];
      }
      A6 += static_cast<int8_t>(q6k[192 + j]) * dot;
    }
    check(A6 == 231152, "TV-9 q6_K.q8_K integer A = 231152 (got " + std::to_string(A6) + ")");
    const float got6 = t.type[kQ6_K].vec_dot(QK_K, q6k, q8k);
    const float want6 = (fp16_to_f32(u16(q6k + 208)) * dy) * static_cast<float>(A6);
    std::printf("  TV-9 q6_K.q8_K = %.9g (0x%08X); llama.cpp AVX2 3.59530544\n", got6, bits(got6));
    check(bits(got6) == bits(want6) && std::fabs(got6 - 3.59530544) < 1e-5, "TV-9 q6_K.q8_K value in the project's order");
  }
}

// ---- self-consistency of the new kernels -------------------------------------

// vec_dot_f32 must be the chunked dot of dequantize_row's values; vec_dot
// must agree with the float64 dot of the dequantized operands.
void run_consistency(const KernelTable& t) {
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t k = 768;
  const int types[] = {kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K};
  for (int type : types) {
    const TypeTraits& tt = *type_traits(type);
    const TypeKernels& kk = t.type[type];
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> x(k), a(k), imp(k);
      for (auto& v : x) v = nd(rng) * (trial % 3 == 0 ? 0.02f : 1.f);
      for (auto& v : a) v = nd(rng);
      for (auto& v : imp) v = std::fabs(nd(rng)) + 0.1f;
      if (trial == 5) for (int64_t i = 0; i < k; i += 29) x[i] *= 40.f;  // outliers
      if (trial == 6) for (int64_t i = 32; i < 64; ++i) x[i] = 0.f;       // a zero block
      std::vector<uint8_t> q(row_bytes(tt, k));
      std::vector<float> y(k);
      kk.quantize_row(x.data(), q.data(), k);
      kk.dequantize_row(q.data(), y.data(), k);
      // 'f32' dot = chunked order over the dequantized values.
      float acc = 0.f;
      for (int64_t c = 0; c < k; c += 32) {
        float s = 0.f;
        for (int64_t i = c; i < c + 32; ++i) s += y[i] * a[i];
        acc += s;
      }
      const float f = kk.vec_dot_f32(k, q.data(), a.data());
      check(bits(f) == bits(acc), std::string("vec_dot_f32 chunk order ") + tt.name);
      // Quantization error is bounded: mean |x - y| well below mean |x|.
      double err = 0, mag = 0;
      for (int64_t i = 0; i < k; ++i) { err += std::fabs(x[i] - y[i]); mag += std::fabs(x[i]); }
      // (not with an outlier in every block: the outlier sets the step there)
      if (trial != 5) check(err < 0.2 * mag, std::string("quantization error ") + tt.name + " trial " + std::to_string(trial));
      // 'q8' dot against the float64 dot of the dequantized operands.
      const TypeTraits& at = *type_traits(tt.act_type);
      std::vector<uint8_t> qa(row_bytes(at, k));
      t.type[tt.act_type].quantize_act(a.data(), qa.data(), k);
      std::vector<float> ad(k);
      double ref = 0, bound = 0;
      for (int64_t i = 0; i < k; ++i) {
        if (tt.act_type == kQ8_K) {
          const uint8_t* blk = qa.data() + (i / QK_K) * at.block_bytes;
          float d;
          std::memcpy(&d, blk, 4);
          ad[i] = d * static_cast<int8_t>(blk[4 + i % QK_K]);
        } else {
          const uint8_t* blk = qa.data() + (i / 32) * at.block_bytes;
          ad[i] = fp16_to_f32(u16(blk)) * static_cast<int8_t>(blk[at.block_bytes - 32 + i % 32]);
        }
        ref += static_cast<double>(ad[i]) * y[i];
        bound += std::fabs(static_cast<double>(ad[i]) * y[i]) + std::fabs(ad[i]) * 4.0 * (std::fabs(y[i]) + 1.0);
      }
      if (type == kQ5_1) {  // the q8_1 s field is fp16(sum*d): its rounding enters through mx*sy
        ref = 0;
        for (int64_t b = 0; b < k / 32; ++b) {
          const uint8_t* ab = qa.data() + b * 36;
          const uint8_t* wb = q.data() + b * 24;
          const double m = fp16_to_f32(u16(wb + 2));
          for (int i = 0; i < 32; ++i) ref += static_cast<double>(ad[32 * b + i]) * (y[32 * b + i] - m);
          ref += m * fp16_to_f32(u16(ab + 2));
        }
      }
      const float v = kk.vec_dot(k, q.data(), qa.data());
      check(std::fabs(v - ref) <= 1e-5 * bound, std::string("vec_dot vs f64 ") + tt.name + " got " + std::to_string(v) + " want " + std::to_string(ref));
      // Importance quantizer: uniform importance must not be much worse than the
      // reference; a valid block that dequantizes close to x.
      std::vector<uint8_t> qi(row_bytes(tt, k));
      kk.quantize_row_importance(x.data(), qi.data(), k, imp.data());
      std::vector<float> yi(k);
      kk.dequantize_row(qi.data(), yi.data(), k);
      double erri = 0;
      for (int64_t i = 0; i < k; ++i) erri += imp[i] * (x[i] - yi[i]) * (x[i] - yi[i]);
      double errr = 0;
      for (int64_t i = 0; i < k; ++i) errr += imp[i] * (x[i] - y[i]) * (x[i] - y[i]);
      check(erri < 1.5 * errr + 1e-12, std::string("importance error ") + tt.name + " " + std::to_string(erri) + " vs ref " + std::to_string(errr));
    }
  }
  // Importance quantizers of q4_0 and q4_1 likewise.
  for (int type : {kQ4_0, kQ4_1}) {
    const TypeTraits& tt = *type_traits(type);
    const TypeKernels& kk = t.type[type];
    std::vector<float> x(k), imp(k, 1.f);
    for (auto& v : x) v = nd(rng);
    std::vector<uint8_t> q(row_bytes(tt, k)), qi(row_bytes(tt, k));
    kk.quantize_row(x.data(), q.data(), k);
    kk.quantize_row_importance(x.data(), qi.data(), k, imp.data());
    std::vector<float> y(k), yi(k);
    kk.dequantize_row(q.data(), y.data(), k);
    kk.dequantize_row(qi.data(), yi.data(), k);
    double e = 0, ei = 0;
    for (int64_t i = 0; i < k; ++i) { e += (x[i] - y[i]) * (x[i] - y[i]); ei += (x[i] - yi[i]) * (x[i] - yi[i]); }
    check(ei < e, std::string("importance beats reference rmse ") + tt.name + " " + std::to_string(ei) + " < " + std::to_string(e));
  }
}

// Non-finite, subnormal and huge inputs: every quantizer must terminate and
// produce the same bytes twice (no uninitialised reads); q8_K blocks with a
// non-finite scale are all zero.
void run_edge_inputs(const KernelTable& t) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::vector<float>> inputs;
  auto add = [&](auto fill) { std::vector<float> v(512); for (int i = 0; i < 512; ++i) v[i] = fill(i); inputs.push_back(v); };
  add([](int i) { return (i % 7 - 3) * 1e-40f; });                       // subnormal
  add([](int i) { return (i % 5 - 2) * 1e-38f; });                       // tiny normal
  add([&](int i) { return i % 17 == 3 ? inf : (i % 3) * 0.25f; });       // +inf
  add([&](int i) { return i % 19 == 4 ? -inf : (i % 3) * 0.25f - 0.3f; });
  add([&](int i) { return i % 23 == 5 ? nan : (i % 9) * 0.1f - 0.4f; });  // NaN
  add([&](int) { return inf; });
  add([&](int) { return nan; });
  add([](int i) { return (i % 2 ? 1 : -1) * 3.0e38f; });                 // huge: ranges overflow
  add([](int i) { return i % 32 == 0 ? 1e30f : 1e-30f; });
  add([](int) { return -0.f; });
  add([](int i) { return static_cast<float>(i % 4 == 0); });
  // NaNs with payloads and both signs (nearest_int reads payload bits).
  auto nan_bits = [](uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; };
  add([&](int i) { return i % 13 == 1 ? nan_bits(0x7FC00123u + static_cast<uint32_t>(i)) : i % 13 == 7 ? nan_bits(0xFFC00000u) : (i % 5) * 0.3f - 0.6f; });
  add([&](int i) { return i % 64 == 9 ? nan_bits(0xFF800001u) : (i % 5) * 0.3f - 0.6f; });  // signalling NaN
  std::vector<float> imp(512);
  for (int i = 0; i < 512; ++i) imp[i] = i % 11 == 0 ? 0.f : 0.5f + (i % 5);
  std::vector<float> imp0(512, 0.f);
  std::vector<uint8_t> all;  // every output byte, for a cross-platform digest
  int n = 0;
  for (int type : {kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ4_K, kQ5_K, kQ6_K}) {
    const TypeTraits& tt = *type_traits(type);
    const TypeKernels& kk = t.type[type];
    for (size_t s = 0; s < inputs.size(); ++s) {
      const size_t rb = row_bytes(tt, 512);
      std::vector<uint8_t> q1(rb, 0x11), q2(rb, 0x22);
      kk.quantize_row(inputs[s].data(), q1.data(), 512);
      kk.quantize_row(inputs[s].data(), q2.data(), 512);
      check(q1 == q2, std::string("edge input deterministic ") + tt.name + " #" + std::to_string(s));
      all.insert(all.end(), q1.begin(), q1.end());
      if (std::getenv("QK_EDGE_DUMP")) std::printf("EDGE %s #%zu ref %s\n", tt.name, s, hex(q1.data(), q1.size()).c_str());
      if (kk.quantize_row_importance) {
        for (const std::vector<float>* w : {&imp, &imp0}) {
          std::vector<uint8_t> i1(rb, 0x11), i2(rb, 0x22);
          kk.quantize_row_importance(inputs[s].data(), i1.data(), 512, w->data());
          kk.quantize_row_importance(inputs[s].data(), i2.data(), 512, w->data());
          check(i1 == i2, std::string("edge input deterministic (importance) ") + tt.name + " #" + std::to_string(s));
          all.insert(all.end(), i1.begin(), i1.end());
          if (std::getenv("QK_EDGE_DUMP")) std::printf("EDGE %s #%zu imp%d %s\n", tt.name, s, w == &imp ? 1 : 0, hex(i1.data(), i1.size()).c_str());
        }
      }
      std::vector<float> y(512);
      kk.dequantize_row(q1.data(), y.data(), 512);
      ++n;
    }
  }
  for (size_t s = 0; s < inputs.size(); ++s) {
    uint8_t a[2 * 292], b[2 * 292];
    std::memset(a, 0x11, sizeof a);
    std::memset(b, 0x22, sizeof b);
    t.type[kQ8_K].quantize_act(inputs[s].data(), a, 512);
    t.type[kQ8_K].quantize_act(inputs[s].data(), b, 512);
    bool ok = std::memcmp(a, b, sizeof a) == 0;
    for (int blk = 0; blk < 2; ++blk) {
      float d;
      std::memcpy(&d, a + 292 * blk, 4);
      if (!std::isfinite(d)) ok = false;
      if (d == 0.f) for (int i = 4; i < 292; ++i) ok = ok && a[292 * blk + i] == 0;
    }
    check(ok, "edge input q8_K #" + std::to_string(s));
    all.insert(all.end(), a, a + sizeof a);
    if (std::getenv("QK_EDGE_DUMP")) std::printf("EDGE q8_k #%zu act %s\n", s, hex(a, sizeof a).c_str());
  }
  // Subnormal maxima: -127/max overflows, the block must be all zero.
  std::vector<float> sub(256, 1e-39f);
  uint8_t a[292];
  t.type[kQ8_K].quantize_act(sub.data(), a, 256);
  check(std::all_of(a, a + 292, [](uint8_t v) { return v == 0; }), "q8_K subnormal block is all zero");
  (void)n;
  // The same bytes on x86-64 and aarch64 (checked under qemu), at -O0..-O3:
  // update the constant only when the non-finite rules change on purpose.
  const std::string digest = sha256_hex(all.data(), all.size());
  if (digest != "60b98fa39f9a07af9b2e3e912bc6dee9f11075d06aed2f61ff423948ea63d132") std::printf("  edge-input digest %s\n", digest.c_str());
  check(digest == "60b98fa39f9a07af9b2e3e912bc6dee9f11075d06aed2f61ff423948ea63d132", "edge-input bytes digest (non-finite, subnormal, huge inputs)");
}

}  // namespace

int main(int argc, char** argv) {
  // argv[1], else $QK_GOLDEN, else shared/golden beside the repository (run
  // from the repository root), else this workplace's absolute path.
  std::string manifest;
  if (argc > 1) {
    manifest = argv[1];
  } else if (const char* env = std::getenv("QK_GOLDEN")) {
    manifest = env;
  } else {
    for (const char* c : {"../shared/golden/manifest.json", "/work/shared/golden/manifest.json"}) {
      if (FILE* f = std::fopen(c, "rb")) { std::fclose(f); manifest = c; break; }
    }
    if (manifest.empty()) manifest = "../shared/golden/manifest.json";
  }

  static KernelTable t;
  fill_scalar(t);
  // fill_scalar may already call these (the lead wires them in); calling them
  // again is harmless: they only assign entries.
  fill_scalar_q5(t);
  fill_scalar_kquants(t);

  std::printf("golden files (%s):\n", manifest.c_str());
  run_golden(t, manifest);
  std::printf("worked examples:\n");
  run_vectors(t);
  run_consistency(t);
  run_edge_inputs(t);
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}

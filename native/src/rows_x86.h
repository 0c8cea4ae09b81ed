// What the x86 row kernels share whatever their ISA: the unroll pragma, the
// per-stream software prefetch (only _mm_prefetch, SSE), the tail blocks and
// the walk over sets of 4 weight rows. Include it inside
// `namespace qk { namespace {`, after the file's target pragma and its
// simd_*.h (for h2f), like the simd_*.h headers.
#pragma once

// Loops over rows and quartets of a group: fully unrolled, so that their
// vectors stay in registers.
#if !defined(QK_UNROLL)
#if defined(__clang__)
#define QK_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define QK_UNROLL _Pragma("GCC unroll 16")
#else
#define QK_UNROLL
#endif
#endif

// Software prefetch for a kernel that walks 4 weight rows (ws bytes apart)
// side by side, 16 blocks of kBlock bytes a step ("group"), with few
// activation rows: the weights stream from memory as 4 interleaved row
// streams, too short for the hardware prefetcher to follow. Each stream is
// fetched kLeadGroups groups ahead (~9 KiB in all for q4_0), wrapping into
// the next 4 rows (a row's tail blocks count as one more group). Against
// fetching the whole next row set, q4_0 in alternated runs from memory on 2
// threads: k = 11008 +7-19%, k = 1536-3072 +1-12%, k = 4096 +1-3% (on 1
// thread there -7% to +3%); longer leads were no faster. Rows of fewer than
// 3 groups (k <= 1024) fetch the whole next row set, spread over the groups:
// fetching each stream ran 20-30% slower there. Prefetches past the matrix
// are harmless (they never fault). The lead (a row set and a group in it)
// starts at prefetch_lead(nb); the caller carries it from group to group.
constexpr int64_t kLeadGroups = 8;
struct PrefetchLead {
  int64_t groups, set, group;
};
inline PrefetchLead prefetch_lead(int64_t nb) {
  const int64_t groups = nb > 0 ? (nb + 15) / 16 : 1;
  return {groups, kLeadGroups / groups, kLeadGroups % groups};
}

// For group g of ng whole groups of the 4 rows at w.
template <int kBlock>
inline void prefetch_row_set(const uint8_t* w, size_t ws, int64_t g, int64_t ng, PrefetchLead& lead) {
  if (ng < 3) {
    const char* next = reinterpret_cast<const char*>(w + 4 * ws);
    const int64_t lines = static_cast<int64_t>((4 * ws + 63) / 64), per = (lines + ng - 1) / ng;
    for (int64_t c = g * per; c < (g + 1) * per && c < lines; ++c) _mm_prefetch(next + 64 * c, _MM_HINT_T0);
    return;
  }
  const char* ahead = reinterpret_cast<const char*>(w + 4 * lead.set * ws + lead.group * 16 * kBlock);
  QK_UNROLL
  for (int j = 0; j < 4; ++j) {
    QK_UNROLL
    for (int l = 0; l < 16 * kBlock; l += 64) _mm_prefetch(ahead + j * ws + l, _MM_HINT_T0);
  }
  if (++lead.group == lead.groups) {
    lead.group = 0;
    ++lead.set;
  }
}

// Layout facts of the 4- and 5-bit block formats, told apart by their block
// size kW (18, 20, 22, 24 bytes: q4_0, q4_1, q5_0, q5_1).
template <int kW>
struct BlockFmt {
  static constexpr bool kFifthBit = kW == sizeof(BlockQ5_0) || kW == sizeof(BlockQ5_1);
  // q4_0, q5_0: levels - kOffset; q4_1, q5_1: levels * d + m.
  static constexpr int kOffset = kW == sizeof(BlockQ5_0) ? 16 : kW == sizeof(BlockQ4_0) ? 8 : 0;
  static constexpr int kQh = kW == sizeof(BlockQ5_0) ? 2 : 4;  // q5 only
  static constexpr int kQs = kW - 16;                           // the nibbles end each block
  static constexpr int kA = kOffset ? sizeof(BlockQ8_0) : sizeof(BlockQ8_1);  // activations: q8_0 or q8_1
  static constexpr int kYs = kA - 32;
};

// Blocks first..nb-1 of a weight row wr (kW bytes each) against the
// activation row a (kA-byte blocks): the sum of d_w * d_a * S, plus m * s when
// kMin, with S = block_dot(wb, ab) exact; for the row kernels' tails.
template <int kW, int kA, bool kMin, typename BlockDot>
inline float tail_blocks(const uint8_t* wr, const uint8_t* a, int64_t first, int64_t nb, BlockDot block_dot) {
  float tail = 0.f;
  for (int64_t b = first; b < nb; ++b) {
    const uint8_t* wb = wr + b * kW;
    const uint8_t* ab = a + b * kA;
    tail += (h2f(wb) * h2f(ab)) * static_cast<float>(block_dot(wb, ab));
    if (kMin) tail += h2f(wb + 2) * h2f(ab + 2);
  }
  return tail;
}

template <int N>
struct RowCount {
  static constexpr int value = N;
};

// rows(RowCount<R>{}, i) for rows i..i+R-1 of nw: sets of 4, then the 1-3 left.
template <typename Rows>
inline void for_row_sets(int nw, Rows rows) {
  int i = 0;
  for (; i + 4 <= nw; i += 4) rows(RowCount<4>{}, i);
  switch (nw - i) {
    case 3: rows(RowCount<3>{}, i); break;
    case 2: rows(RowCount<2>{}, i); break;
    case 1: rows(RowCount<1>{}, i); break;
    default: break;
  }
}

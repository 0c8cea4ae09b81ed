// The two merge loops of llama.cpp's tokenizers, over a doubly linked list of
// symbols and a heap of candidate pairs (so a merge costs O(log n), not a
// rebuild of the word). A pair in the heap goes stale when either side has
// changed since it was pushed; it is then skipped when popped, which is the
// length check below (a symbol's start never moves, only its length grows).

interface Pair { left: number; right: number; key: number; size: number }

/** Binary heap; `before(a, b)` is true when a must pop first. */
class Heap {
  private readonly items: Pair[] = [];
  constructor(private readonly before: (a: Pair, b: Pair) => boolean) {}
  get size(): number { return this.items.length; }
  push(p: Pair): void {
    const a = this.items;
    let i = a.push(p) - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.before(a[i], a[up])) break;
      [a[i], a[up]] = [a[up], a[i]];
      i = up;
    }
  }
  pop(): Pair {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l], a[m])) m = l;
        if (r < a.length && this.before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Symbols of a word: [start, end) slices of it in UTF-16 units, linked in order. */
class Symbols {
  readonly start: number[] = [];
  readonly len: number[] = [];
  readonly prev: number[] = [];
  readonly next: number[] = [];
  constructor(readonly text: string, bounds: readonly number[]) {
    for (let i = 0; i + 1 < bounds.length; i++) {
      this.start.push(bounds[i]);
      this.len.push(bounds[i + 1] - bounds[i]);
      this.prev.push(i - 1);
      this.next.push(i + 2 < bounds.length ? i + 1 : -1);
    }
  }
  slice(i: number): string { return this.text.substr(this.start[i], this.len[i]); }
  pairText(l: number, r: number): string { return this.text.substr(this.start[l], this.len[l] + this.len[r]); }
  /** Merges r into l; false when the pair went stale. */
  merge(p: Pair): boolean {
    const { left: l, right: r } = p;
    if (this.len[l] === 0 || this.len[r] === 0 || this.len[l] + this.len[r] !== p.size) return false;
    this.len[l] += this.len[r];
    this.len[r] = 0;
    this.next[l] = this.next[r];
    if (this.next[r] >= 0) this.prev[this.next[r]] = l;
    return true;
  }
  /** The surviving symbols' slices, in order. */
  pieces(): string[] {
    const out: string[] = [];
    for (let i = this.start.length > 0 ? 0 : -1; i !== -1; i = this.next[i]) out.push(this.slice(i));
    return out;
  }
}

/** UTF-16 offsets of each code point of `s`, and its length. */
function codePointBounds(s: string): number[] {
  const b: number[] = [];
  for (let i = 0; i < s.length; ) {
    b.push(i);
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
  }
  b.push(s.length);
  return b;
}

/**
 * SentencePiece BPE (llm_tokenizer_spm_session): from single code points,
 * merge the adjacent pair whose concatenation is the vocab token of highest
 * score (ties: the leftmost), until no pair is a token. Returns the pieces.
 */
export function spmMerge(text: string, tokenId: ReadonlyMap<string, number>, scores: ArrayLike<number>): string[] {
  const sym = new Symbols(text, codePointBounds(text));
  const heap = new Heap((a, b) => a.key > b.key || (a.key === b.key && a.left < b.left));
  const tryPair = (l: number, r: number) => {
    if (l < 0 || r < 0) return;
    const t = sym.pairText(l, r);
    const id = tokenId.get(t);
    if (id === undefined) return;
    heap.push({ left: l, right: r, key: scores[id], size: t.length });
  };
  for (let i = 1; i < sym.start.length; i++) tryPair(i - 1, i);
  while (heap.size > 0) {
    const p = heap.pop();
    if (!sym.merge(p)) continue;
    tryPair(sym.prev[p.left], p.left);
    tryPair(p.left, sym.next[p.left]);
  }
  return sym.pieces();
}

/**
 * Byte-level BPE (llm_tokenizer_bpe_session): `word` is in the byte-level
 * alphabet, one UTF-16 unit per byte; merge the adjacent pair of lowest rank
 * (ties: the leftmost) until no pair has a rank. `rank(a, b)` is -1 for none.
 */
export function bpeMerge(word: string, rank: (a: string, b: string) => number): string[] {
  const bounds: number[] = [];
  for (let i = 0; i <= word.length; i++) bounds.push(i);
  const sym = new Symbols(word, bounds);
  const heap = new Heap((a, b) => a.key < b.key || (a.key === b.key && a.left < b.left));
  const tryPair = (l: number, r: number) => {
    if (l < 0 || r < 0) return;
    const k = rank(sym.slice(l), sym.slice(r));
    if (k < 0) return;
    heap.push({ left: l, right: r, key: k, size: sym.len[l] + sym.len[r] });
  };
  for (let i = 1; i < sym.start.length; i++) tryPair(i - 1, i);
  while (heap.size > 0) {
    const p = heap.pop();
    if (!sym.merge(p)) continue;
    tryPair(sym.prev[p.left], p.left);
    tryPair(p.left, sym.next[p.left]);
  }
  return sym.pieces();
}

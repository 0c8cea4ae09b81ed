// Token sampling for the model runner: llama.cpp's default chain
// (common/common.h `common_params_sampling::samplers`, src/llama-sampler.cpp),
//
//   penalties -> top-k -> top-p -> min-p -> temperature -> softmax -> draw
//
// with the same defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
// repeat penalty 1 over the last 64 tokens, frequency/presence penalties 0).
// DRY, typical-p, XTC and top-n-sigma are off in llama.cpp's defaults and are
// not implemented here.
//
// Facts of the chain, as in llama.cpp:
// - penalties: each DISTINCT token among the last `repeatLastN` of the history,
//   seen `count` times there, gets `logit > 0 ? logit / repeatPenalty : logit * repeatPenalty`,
//   then `logit -= count * frequencyPenalty + presencePenalty` (once per token, not per occurrence).
// - top-k keeps the k highest logits; top-p takes the softmax of the logits that
//   remain (before temperature), and keeps the smallest prefix, highest first,
//   whose probability sum reaches p (so at least one token); min-p keeps the
//   tokens with `logit >= maxLogit + ln(minP)`, i.e. p_i >= minP * p_max,
//   again before temperature; the temperature divides the logits of the
//   survivors, and the draw is from their softmax.
// - temperature <= 0 is greedy: the argmax of the penalized logits (top-k,
//   top-p and min-p always keep the argmax, so they cannot change it).
//
// Decisions of this implementation (documented behaviour, tested):
// - Ties are broken by the lower token id everywhere (the order is logit
//   descending, then id ascending), so the candidate set is deterministic:
//   greedy picks the lowest id among equal maxima, top-k at a tie keeps the lower ids.
// - NaN logits are treated as -Infinity; -Infinity tokens are never drawn
//   (they are not candidates at all, even with every filter off). If no token
//   is left (every logit NaN or -Infinity), sample() throws QkError('ERR_QK_VALUE').
// - +Infinity logits: the tokens at +Infinity share the probability equally
//   (the limit of the softmax); every other token gets 0.
// - The caller's logits are never written: penalties go to a private copy.
// - The draw uses its own PRNG (xoshiro128**, seeded by splitmix32 from the
//   seed's low and high 32 bits), 53-bit uniform doubles: the same seed gives
//   the same tokens on every platform and run. One draw per non-greedy sample()
//   (also when a single candidate is left), none in greedy mode.
//
// Hot path: sample() allocates nothing. The index and probability buffers are
// sized for the vocabulary in the constructor; top-k is a bounded heap over one
// scan of the logits (O(n + n log k) worst case, ~n compares for real logits),
// and only the k survivors get sorted; with top-k off, top-p is a quickselect
// on probability mass (expected O(n)) rather than a sort of the vocabulary. Helpers return only small integers
// (results that are doubles go through a Float64Array), so V8 never boxes them.
import { QkError } from '../errors';

export interface SamplingOptions {
  /** Default 0.8; <= 0 means greedy (argmax of the penalized logits; ties -> lowest id). Finite, >= 0. */
  temperature?: number;
  /** Default 40; 0 = off. An integer >= 0 (values above the vocabulary size keep every token). */
  topK?: number;
  /** Default 0.95; 1 = off. In (0, 1]. */
  topP?: number;
  /** Default 0.05; 0 = off. In [0, 1]; 1 keeps only the tokens tied at the maximum. */
  minP?: number;
  /** Default 1.0 (off). Finite, > 0. llama.cpp's: logit > 0 ? logit / penalty : logit * penalty. */
  repeatPenalty?: number;
  /** Default 64; how many of the last history tokens the penalties look at; 0 = penalties off. Integer >= 0. */
  repeatLastN?: number;
  /** Default 0 (off). Finite; subtracted count times (OpenAI-style, like llama.cpp; negative values reward repeats, as OpenAI allows). */
  frequencyPenalty?: number;
  /** Default 0 (off). Finite; subtracted once from every token seen (negative values reward repeats). */
  presencePenalty?: number;
  /** Default: random (see Sampler.seed). An integer in [0, 2^53 - 1]; a given seed makes the sequence reproducible. */
  seed?: number;
}

function argError(message: string): QkError {
  return new QkError('ERR_QK_ARG', message);
}

function describe(v: unknown): string {
  return typeof v === 'number' ? String(v) : typeof v;
}

function numberOption(opts: SamplingOptions, key: keyof SamplingOptions, dflt: number): number {
  const v = (opts as Record<string, unknown>)[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || Number.isNaN(v)) throw argError(`sampler option ${key} must be a number, got ${describe(v)}`);
  return v;
}

function checkSeed(seed: unknown, where: string): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw argError(`${where} must be an integer in [0, 2^53 - 1] or undefined, got ${describe(seed)}`);
  }
  return seed;
}

function randomSeed(): number {
  // 48 random bits: plenty to tell runs apart, and exactly representable.
  return Math.floor(Math.random() * 0x1000000) * 0x1000000 + Math.floor(Math.random() * 0x1000000);
}

/** a before b in the candidate order: higher logit, then lower id. */
function better(src: Float32Array, a: number, b: number): boolean {
  const la = src[a];
  const lb = src[b];
  return la > lb || (la === lb && a < b);
}

/** splitmix32 step on a 32-bit state held in st[0]; writes the output to st[1]. */
function splitmix32(st: Int32Array): void {
  const s = (st[0] + 0x9e3779b9) | 0;
  st[0] = s;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  st[1] = z ^ (z >>> 16);
}

export class Sampler {
  readonly vocabSize: number;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repeatPenalty: number;
  readonly repeatLastN: number;
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
  private seed_: number;

  /** Candidate token ids; [0, n) are the live candidates. */
  private readonly idx: Int32Array;
  /** Probabilities: by token id in top-p's selection, by candidate position in the draw. */
  private readonly prob: Float64Array;
  /** Penalized copy of the logits (only written when a penalty is active). */
  private readonly work: Float32Array;
  /** Per-token counts of the history window; all zero between calls. */
  private readonly counts: Int32Array;
  /** xoshiro128** state. */
  private readonly rng = new Int32Array(4);
  /** Scratch for doubles computed by helpers (index 0: uniform draw; 1: max logit; 2: sum). */
  private readonly f64 = new Float64Array(4);
  private readonly penalize: boolean;

  /** Other keys of `opts` are ignored (the runner passes its whole generate options). */
  constructor(vocabSize: number, opts: SamplingOptions = {}) {
    if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > 0x7fffffff) {
      throw argError(`Sampler: vocabSize must be an integer in [1, 2^31 - 1], got ${describe(vocabSize)}`);
    }
    if (opts === null || typeof opts !== 'object') throw argError(`Sampler: options must be an object, got ${opts === null ? 'null' : typeof opts}`);
    const temperature = numberOption(opts, 'temperature', 0.8);
    if (!Number.isFinite(temperature) || temperature < 0) throw argError(`sampler option temperature must be finite and >= 0 (0 = greedy), got ${temperature}`);
    const topK = numberOption(opts, 'topK', 40);
    if (!Number.isInteger(topK) || topK < 0) throw argError(`sampler option topK must be an integer >= 0 (0 = off), got ${topK}`);
    const topP = numberOption(opts, 'topP', 0.95);
    if (!(topP > 0 && topP <= 1)) throw argError(`sampler option topP must be in (0, 1] (1 = off), got ${topP}`);
    const minP = numberOption(opts, 'minP', 0.05);
    if (!(minP >= 0 && minP <= 1)) throw argError(`sampler option minP must be in [0, 1] (0 = off), got ${minP}`);
    const repeatPenalty = numberOption(opts, 'repeatPenalty', 1);
    if (!Number.isFinite(repeatPenalty) || repeatPenalty <= 0) throw argError(`sampler option repeatPenalty must be finite and > 0 (1 = off), got ${repeatPenalty}`);
    const repeatLastN = numberOption(opts, 'repeatLastN', 64);
    if (!Number.isSafeInteger(repeatLastN) || repeatLastN < 0) throw argError(`sampler option repeatLastN must be an integer >= 0 (0 = penalties off), got ${repeatLastN}`);
    const frequencyPenalty = numberOption(opts, 'frequencyPenalty', 0);
    if (!Number.isFinite(frequencyPenalty)) throw argError(`sampler option frequencyPenalty must be finite (0 = off), got ${frequencyPenalty}`);
    const presencePenalty = numberOption(opts, 'presencePenalty', 0);
    if (!Number.isFinite(presencePenalty)) throw argError(`sampler option presencePenalty must be finite (0 = off), got ${presencePenalty}`);
    const seed = opts.seed === undefined ? randomSeed() : checkSeed(opts.seed, 'sampler option seed');

    this.vocabSize = vocabSize;
    this.temperature = temperature;
    this.topK = topK;
    this.topP = topP;
    this.minP = minP;
    this.repeatPenalty = repeatPenalty;
    this.repeatLastN = repeatLastN;
    this.frequencyPenalty = frequencyPenalty;
    this.presencePenalty = presencePenalty;
    this.penalize = repeatLastN > 0 && (repeatPenalty !== 1 || frequencyPenalty !== 0 || presencePenalty !== 0);
    this.idx = new Int32Array(vocabSize);
    this.prob = new Float64Array(vocabSize);
    this.work = new Float32Array(this.penalize ? vocabSize : 0);
    this.counts = new Int32Array(this.penalize ? vocabSize : 0);
    this.seed_ = seed;
    this.seedRng(seed);
  }

  /** The seed in use (the random one drawn at construction when none was given): log it to replay a run. */
  get seed(): number {
    return this.seed_;
  }

  /** Restarts the random sequence: from `seed` if given (and keeps it), else from the current seed. */
  reset(seed?: number): void {
    if (seed !== undefined) this.seed_ = checkSeed(seed, 'Sampler.reset: seed');
    this.seedRng(this.seed_);
  }

  /**
   * The next token for `logits` (length vocabSize; never modified).
   * `history` holds the tokens so far (prompt and generated) for the penalties;
   * only its first `historyLength` entries count (default: all), and of those
   * the last `repeatLastN`. Every counted entry must be a token id in [0, vocabSize).
   */
  sample(logits: Float32Array, history?: ArrayLike<number>, historyLength?: number): number {
    const V = this.vocabSize;
    if (!(logits instanceof Float32Array)) throw new QkError('ERR_QK_TYPE', `Sampler.sample: logits must be a Float32Array, got ${describe(logits)}`);
    if (logits.length !== V) throw new QkError('ERR_QK_LENGTH', `Sampler.sample: logits has ${logits.length} entries, the vocabulary ${V}`);
    let src = logits;
    if (this.penalize && history !== undefined && history !== null) {
      const len = history.length;
      let hl = len;
      if (historyLength !== undefined) {
        if (typeof historyLength !== 'number' || !Number.isInteger(historyLength) || historyLength < 0 || historyLength > len) {
          throw argError(`Sampler.sample: historyLength must be an integer in [0, ${len}] (the history's length), got ${describe(historyLength)}`);
        }
        hl = historyLength;
      }
      if (hl > 0) {
        this.work.set(logits);
        this.applyPenalties(history, hl);
        src = this.work;
      }
    } else if (historyLength !== undefined && (typeof historyLength !== 'number' || !Number.isInteger(historyLength) || historyLength < 0)) {
      throw argError(`Sampler.sample: historyLength must be an integer >= 0, got ${describe(historyLength)}`);
    }

    if (this.temperature <= 0) return this.argmax(src);

    const idx = this.idx;
    const f = this.f64;
    let n: number;
    let sorted: boolean;
    const topP = this.topP;
    if (this.topK > 0) {
      n = this.selectTop(src, this.topK);
      sorted = true;
    } else {
      n = this.gather(src);
      sorted = false;
    }
    if (n === 0) throw new QkError('ERR_QK_VALUE', 'Sampler.sample: every logit is NaN or -Infinity (NaN counts as -Infinity): no token to sample');

    // top-p, on the softmax of the logits (before temperature)
    if (topP < 1) {
      if (sorted) {
        const m = src[idx[0]];
        let z = 0;
        if (m === Infinity) {
          for (let j = 0; j < n; j++) if (src[idx[j]] === Infinity) z++;
        } else {
          for (let j = 0; j < n; j++) z += Math.exp(src[idx[j]] - m);
        }
        const target = topP * z;
        let cum = 0;
        for (let j = 0; j < n; j++) {
          const l = src[idx[j]];
          cum += m === Infinity ? (l === Infinity ? 1 : 0) : Math.exp(l - m);
          if (cum >= target) {
            n = j + 1;
            break;
          }
        }
        // (rounding can leave the sum a hair under p * z: then every candidate stays)
      } else {
        n = this.topPSelect(src, n, topP);
      }
    }

    // min-p: p_i >= minP * p_max, as logit_i >= maxLogit + ln(minP) (before temperature)
    if (this.minP > 0) {
      let m: number;
      if (sorted) m = src[idx[0]];
      else {
        this.maxOf(src, n);
        m = f[1];
      }
      const threshold = m + Math.log(this.minP);
      if (sorted) {
        let j = 1; // the first always stays
        while (j < n && src[idx[j]] >= threshold) j++;
        n = j;
      } else {
        let w = 0;
        for (let j = 0; j < n; j++) {
          const t = idx[j];
          if (src[t] >= threshold) idx[w++] = t;
        }
        n = w;
      }
    }

    // temperature, softmax, draw
    this.nextDouble();
    const u = f[0];
    if (n === 1) return idx[0];
    let m: number;
    if (sorted) m = src[idx[0]];
    else {
      this.maxOf(src, n);
      m = f[1];
    }
    const invT = 1 / this.temperature;
    const prob = this.prob;
    let z = 0;
    for (let j = 0; j < n; j++) {
      const l = src[idx[j]];
      const p = m === Infinity ? (l === Infinity ? 1 : 0) : Math.exp((l - m) * invT);
      prob[j] = p;
      z += p;
    }
    const target = u * z;
    let cum = 0;
    let lastPositive = idx[0];
    for (let j = 0; j < n; j++) {
      const p = prob[j];
      if (p > 0) {
        lastPositive = idx[j];
        cum += p;
        if (cum > target) return lastPositive;
      }
    }
    return lastPositive; // only reachable through rounding of the sum
  }

  // --- helpers: return only small integers; doubles go through this.f64 ---

  private seedRng(seed: number): void {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    const sm = new Int32Array(2); // once per reset, not on the hot path
    sm[0] = lo | 0;
    const r = this.rng;
    for (let i = 0; i < 4; i++) {
      splitmix32(sm);
      r[i] = sm[1];
    }
    sm[0] = hi ^ 0x5851f42d;
    for (let i = 0; i < 4; i++) {
      splitmix32(sm);
      r[i] ^= Math.imul(sm[1], 0x2545f491);
    }
    if ((r[0] | r[1] | r[2] | r[3]) === 0) r[0] = 1;
  }

  /** xoshiro128**: two 32-bit outputs -> a uniform double in [0, 1) with 53 bits, into f64[0]. */
  private nextDouble(): void {
    const s = this.rng;
    let a = 0;
    let b = 0;
    for (let k = 0; k < 2; k++) {
      const s0 = s[0];
      const s1 = s[1];
      let s2 = s[2];
      let s3 = s[3];
      const x = Math.imul(s1, 5);
      const out = Math.imul((x << 7) | (x >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s[1] = s1 ^ s2;
      s[0] = s0 ^ s3;
      s2 ^= t;
      s[2] = s2;
      s[3] = (s3 << 11) | (s3 >>> 21);
      if (k === 0) a = out >>> 5;
      else b = out >>> 6;
    }
    this.f64[0] = (a * 67108864 + b) / 9007199254740992;
  }

  private applyPenalties(history: ArrayLike<number>, hl: number): void {
    const V = this.vocabSize;
    const counts = this.counts;
    const w = this.work;
    const start = hl > this.repeatLastN ? hl - this.repeatLastN : 0;
    for (let i = start; i < hl; i++) {
      const t = history[i];
      if (!(typeof t === 'number' && t >= 0 && t < V && (t | 0) === t)) {
        // leave counts all zero for the next call
        for (let j = start; j < i; j++) counts[history[j]] = 0;
        throw argError(`Sampler.sample: history[${i}] must be a token id in [0, ${V}), got ${describe(t)}`);
      }
      counts[t]++;
    }
    const rp = this.repeatPenalty;
    const fp = this.frequencyPenalty;
    const pp = this.presencePenalty;
    for (let i = start; i < hl; i++) {
      const t = history[i];
      const c = counts[t];
      if (c === 0) continue; // already done (a repeat)
      counts[t] = 0;
      let l = w[t];
      l = l > 0 ? l / rp : l * rp;
      w[t] = l - (c * fp + pp);
    }
  }

  /** Greedy: the highest logit (NaN skipped), lowest id among ties. */
  private argmax(src: Float32Array): number {
    let best = -1;
    let bl = -Infinity;
    for (let i = 0; i < src.length; i++) {
      const l = src[i];
      if (l > bl) {
        bl = l;
        best = i;
      }
    }
    if (best < 0) throw new QkError('ERR_QK_VALUE', 'Sampler.sample: every logit is NaN or -Infinity (NaN counts as -Infinity): no token to sample');
    return best;
  }

  /**
   * top-p over the unsorted candidates idx[0, n) (top-k off): moves the
   * smallest best-first prefix whose probability reaches p to idx[0, cut) and
   * returns cut. A quickselect on probability mass (expected O(n)) instead of
   * sorting the whole vocabulary; the total order (logit, then id) makes the
   * cut the same as a full sort's.
   */
  private topPSelect(src: Float32Array, n: number, topP: number): number {
    const idx = this.idx;
    const prob = this.prob;
    this.maxOf(src, n);
    const m = this.f64[1];
    let z = 0;
    for (let j = 0; j < n; j++) {
      const t = idx[j];
      const l = src[t];
      const e = m === Infinity ? (l === Infinity ? 1 : 0) : Math.exp(l - m);
      prob[t] = e;
      z += e;
    }
    let need = topP * z; // mass still needed beyond idx[0, lo)
    let lo = 0;
    let hi = n; // the cut is in (lo, hi]
    while (hi - lo > 16) {
      // median of three, moved to hi - 1
      const mid = lo + ((hi - lo) >> 1);
      let a = lo;
      let b = mid;
      let c = hi - 1;
      if (better(src, idx[b], idx[a])) { const x = a; a = b; b = x; }
      if (better(src, idx[c], idx[b])) { const x = b; b = c; c = x; }
      if (better(src, idx[b], idx[a])) { const x = a; a = b; b = x; }
      // b is the median position
      const pv = idx[b];
      idx[b] = idx[hi - 1];
      idx[hi - 1] = pv;
      const pl = src[pv];
      let store = lo;
      let mass = 0;
      for (let j = lo; j < hi - 1; j++) {
        const t = idx[j];
        const l = src[t];
        if (l > pl || (l === pl && t < pv)) {
          idx[j] = idx[store];
          idx[store++] = t;
          mass += prob[t];
        }
      }
      idx[hi - 1] = idx[store];
      idx[store] = pv;
      if (mass >= need) hi = store;
      else if (mass + prob[pv] >= need) return store + 1;
      else {
        need -= mass + prob[pv];
        lo = store + 1;
      }
    }
    // a few left: insertion sort, then walk
    for (let j = lo + 1; j < hi; j++) {
      const t = idx[j];
      let i = j;
      while (i > lo && better(src, t, idx[i - 1])) {
        idx[i] = idx[i - 1];
        i--;
      }
      idx[i] = t;
    }
    for (let j = lo; j < hi; j++) {
      need -= prob[idx[j]];
      if (need <= 0) return j + 1;
    }
    return hi;
  }

  /** Every token with a logit above -Infinity (NaN excluded) into idx, in id order; returns the count. */
  private gather(src: Float32Array): number {
    const idx = this.idx;
    let n = 0;
    for (let i = 0; i < src.length; i++) if (src[i] > -Infinity) idx[n++] = i;
    return n;
  }

  /** max of src over idx[0, n) into f64[1]. */
  private maxOf(src: Float32Array, n: number): void {
    const idx = this.idx;
    let m = -Infinity;
    for (let j = 0; j < n; j++) {
      const l = src[idx[j]];
      if (l > m) m = l;
    }
    this.f64[1] = m;
  }

  /**
   * The best min(k, candidates) tokens into idx[0, n), sorted: logit
   * descending, then id ascending. A heap of the k best with the worst at the
   * root; one scan in id order, so a tie never displaces an earlier (lower) id.
   */
  private selectTop(src: Float32Array, k: number): number {
    const idx = this.idx;
    const V = src.length;
    let n = 0;
    let i = 0;
    for (; i < V && n < k; i++) {
      const l = src[i];
      if (l > -Infinity) {
        // sift up the new leaf
        let c = n++;
        while (c > 0) {
          const p = (c - 1) >> 1;
          const pt = idx[p];
          const pl = src[pt];
          if (pl < l || (pl === l && pt > i)) break; // parent is worse: heap order holds
          idx[c] = pt;
          c = p;
        }
        idx[c] = i;
      }
    }
    if (n === k) {
      let rootL = src[idx[0]];
      for (; i < V; i++) {
        const l = src[i];
        if (l > rootL) {
          idx[0] = i;
          this.siftDown(src, 0, n);
          rootL = src[idx[0]];
        }
      }
    }
    // heap sort: the worst goes to the end each time, so [0, n) ends best first
    for (let end = n - 1; end > 0; end--) {
      const t = idx[0];
      idx[0] = idx[end];
      idx[end] = t;
      this.siftDown(src, 0, end);
    }
    return n;
  }

  /** Min-heap (worst at the root: lower logit, or higher id at equal logits) sift-down of idx[pos] within [0, n). */
  private siftDown(src: Float32Array, pos: number, n: number): void {
    const idx = this.idx;
    const t = idx[pos];
    const l = src[t];
    for (;;) {
      let c = 2 * pos + 1;
      if (c >= n) break;
      let ct = idx[c];
      let cl = src[ct];
      const r = c + 1;
      if (r < n) {
        const rt = idx[r];
        const rl = src[rt];
        if (rl < cl || (rl === cl && rt > ct)) {
          c = r;
          ct = rt;
          cl = rl;
        }
      }
      // stop when t is worse than (or equal to) the worse child
      if (l < cl || (l === cl && t > ct)) break;
      idx[pos] = ct;
      pos = c;
    }
    idx[pos] = t;
  }
}

// Sampler against an independent float64 model of llama.cpp's default chain
// (penalties -> top-k -> top-p -> min-p -> temperature -> softmax -> draw):
// greedy and top-k 1 are the argmax, the candidate sets of top-k / top-p /
// min-p are exactly the ones the definitions give, the empirical distribution
// of many seeded draws matches the truncated softmax, penalties follow
// llama.cpp's rule, seeds replay, options are checked, and sample() allocates
// nothing.
import { PerformanceObserver } from 'perf_hooks';
import { describe, expect, it } from 'vitest';
import { QkError } from '../lib/errors';
import { Sampler, type SamplingOptions } from '../lib/model/sampler';
import { gaussian, rng } from './helpers';

// ---------------------------------------------------------------------------
// The oracle: written from the definitions, in float64, on plain arrays.

/** Candidate order: logit descending, then id ascending; NaN and -Infinity are no candidates. */
function ordered(logits: ArrayLike<number>): number[] {
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) ids.push(i);
  return ids.sort((a, b) => logits[b] - logits[a] || a - b);
}

function softmax(ls: number[], t = 1): number[] {
  const m = Math.max(...ls);
  const e = ls.map((l) => Math.exp((l - m) / t));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

interface Filters { temperature: number; topK: number; topP: number; minP: number }

/** The tokens that survive top-k, top-p and min-p (before temperature), best first. */
function survivors(logits: ArrayLike<number>, f: Filters): number[] {
  let c = ordered(logits);
  if (f.topK > 0) c = c.slice(0, f.topK);
  if (f.topP < 1) {
    // the smallest best-first prefix whose probability reaches p
    const p = softmax(c.map((i) => logits[i]));
    let cum = 0;
    let n = c.length;
    for (let j = 0; j < c.length; j++) {
      cum += p[j];
      if (cum >= f.topP) { n = j + 1; break; }
    }
    c = c.slice(0, n);
  }
  if (f.minP > 0) {
    const max = logits[c[0]];
    c = c.filter((i) => Math.exp(logits[i] - max) >= f.minP); // p_i >= minP * p_max
  }
  return c;
}

/** Probability of each token id under the chain. */
function distribution(logits: ArrayLike<number>, f: Filters): number[] {
  const c = survivors(logits, f);
  const p = softmax(c.map((i) => logits[i]), f.temperature);
  const out = new Array<number>(logits.length).fill(0);
  c.forEach((id, j) => { out[id] = p[j]; });
  return out;
}

/** llama.cpp's penalties over the last `lastN` of history[0, len). */
function penalized(logits: ArrayLike<number>, history: readonly number[], o: { repeatPenalty: number; frequencyPenalty: number; presencePenalty: number; repeatLastN: number }, len = history.length): Float64Array {
  const out = Float64Array.from(logits as ArrayLike<number>);
  const window = history.slice(Math.max(0, len - o.repeatLastN), len);
  const counts = new Map<number, number>();
  for (const t of window) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const [t, c] of counts) {
    let l = Math.fround(logits[t]);
    l = l > 0 ? l / o.repeatPenalty : l * o.repeatPenalty;
    out[t] = l - (c * o.frequencyPenalty + o.presencePenalty);
  }
  return out;
}

function argmax(ls: ArrayLike<number>): number {
  let best = -1;
  for (let i = 0; i < ls.length; i++) if (ls[i] > -Infinity && (best < 0 || ls[i] > ls[best])) best = i;
  return best;
}

function counts(s: Sampler, logits: Float32Array, n: number): number[] {
  const c = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[s.sample(logits)]++;
  return c;
}

/** Pearson's chi-square of observed counts against probabilities; a token of probability 0 must never appear. */
function chiSquare(obs: number[], p: number[]): { chi2: number; df: number } {
  const n = obs.reduce((a, b) => a + b, 0);
  let chi2 = 0;
  let df = -1;
  obs.forEach((o, i) => {
    if (p[i] === 0) {
      expect(o, `token ${i} has probability 0 but was drawn`).toBe(0);
      return;
    }
    chi2 += (o - n * p[i]) ** 2 / (n * p[i]);
    df++;
  });
  return { chi2, df };
}

// 99.99th percentiles of chi-square for df = 1..4: a right sampler fails one seed in 10,000.
const CHI2_LIMIT = [0, 15.1, 18.4, 21.1, 23.5];

const F32 = (a: number[]) => Float32Array.from(a);
const NO_FILTERS = { topK: 0, topP: 1, minP: 0 };

function randomLogits(r: () => number, n: number, quantum = 0, scale = 3): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = gaussian(r) * scale;
    a[i] = quantum > 0 ? Math.round(g / quantum) * quantum : g;
  }
  return a;
}

// ---------------------------------------------------------------------------

describe('greedy', () => {
  it('temperature 0 is the argmax, the lowest id among equal maxima (random logits, many ties)', () => {
    const r = rng(11);
    const s = new Sampler(50, { temperature: 0, seed: 1 });
    for (let trial = 0; trial < 300; trial++) {
      const l = randomLogits(r, 50, trial % 2 ? 1 : 0); // odd trials: integer logits, ties everywhere
      expect(s.sample(l)).toBe(argmax(l));
    }
    expect(new Sampler(5, { temperature: 0 }).sample(F32([0, 3, 1, 3, 3]))).toBe(1);
    expect(new Sampler(3, { temperature: 0 }).sample(F32([-1, -1, -1]))).toBe(0);
  });

  it('NaN counts as -Infinity; +Infinity wins; nothing left is a QkError', () => {
    const s = new Sampler(4, { temperature: 0 });
    expect(s.sample(F32([NaN, 1, 2, NaN]))).toBe(2);
    expect(s.sample(F32([1, Infinity, 2, Infinity]))).toBe(1);
    for (const l of [[NaN, NaN, NaN, NaN], [-Infinity, NaN, -Infinity, -Infinity]]) {
      expect(() => s.sample(F32(l))).toThrow(QkError);
      expect(() => new Sampler(4, { seed: 3 }).sample(F32(l))).toThrow(QkError);
    }
  });

  it('topK 1 is the argmax at any temperature and with any top-p / min-p', () => {
    const r = rng(12);
    for (const temperature of [0.1, 1, 5, 100]) {
      const s = new Sampler(40, { temperature, topK: 1, topP: 0.3, minP: 0, seed: 7 });
      for (let trial = 0; trial < 100; trial++) {
        const l = randomLogits(r, 40, trial % 2 ? 0.5 : 0);
        expect(s.sample(l)).toBe(argmax(l));
      }
    }
  });
});

describe('seeds', () => {
  const l = randomLogits(rng(21), 64);
  const run = (s: Sampler, n = 200) => Array.from({ length: n }, () => s.sample(l));

  it('the same seed gives the same sequence; different seeds differ; reset() replays', () => {
    const opts = { temperature: 1.5, topK: 0, topP: 1, minP: 0 };
    const a = run(new Sampler(64, { ...opts, seed: 42 }));
    expect(run(new Sampler(64, { ...opts, seed: 42 }))).toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(10); // it really is random
    for (const other of [43, 0, 2 ** 32 + 42, 2 ** 53 - 1]) expect(run(new Sampler(64, { ...opts, seed: other }))).not.toEqual(a);
    const s = new Sampler(64, { ...opts, seed: 42 });
    run(s, 37);
    s.reset();
    expect(run(s)).toEqual(a);
    s.reset(7);
    expect(s.seed).toBe(7);
    expect(run(s)).toEqual(run(new Sampler(64, { ...opts, seed: 7 })));
  });

  it('without a seed, one is drawn and reported, and replays the run', () => {
    const s = new Sampler(64, { temperature: 1, topK: 0 });
    expect(Number.isSafeInteger(s.seed)).toBe(true);
    const a = run(s);
    expect(run(new Sampler(64, { temperature: 1, topK: 0, seed: s.seed }))).toEqual(a);
  });
});

// ---------------------------------------------------------------------------

// p = [0.5, 0.3, 0.1, 0.07, 0.03]: prefix masses 0.5, 0.8, 0.9, 0.97, 1
const P5 = [0.5, 0.3, 0.1, 0.07, 0.03];
const L5 = P5.map(Math.log);

describe('candidate sets', () => {
  /** The set of tokens drawn at a temperature high enough that every survivor shows up. */
  const drawnSet = (logits: Float32Array, opts: SamplingOptions, n = 20000) => {
    const s = new Sampler(logits.length, { temperature: 1000, seed: 5, ...opts });
    const c = counts(s, logits, n);
    return c.flatMap((x, i) => (x > 0 ? [i] : []));
  };
  const asSet = (ids: number[]) => [...ids].sort((a, b) => a - b);

  it.each([
    [0.45, [0]], [0.75, [0, 1]], [0.85, [0, 1, 2]], [0.93, [0, 1, 2, 3]], [0.99, [0, 1, 2, 3, 4]], [1, [0, 1, 2, 3, 4]],
  ])('top-p %f keeps the smallest best-first set whose mass >= p (before temperature): %j', (topP, want) => {
    const l = F32(L5);
    expect(asSet(survivors(l, { temperature: 1, topK: 0, topP, minP: 0 }))).toEqual(want); // the oracle agrees
    expect(drawnSet(l, { topK: 0, topP, minP: 0 })).toEqual(want);
    expect(drawnSet(l, { topK: 5, topP, minP: 0 })).toEqual(want); // the sorted (top-k) path too
  });

  // p / p_max = 1, 0.6, 0.2, 0.14, 0.06
  it.each([[0.7, [0]], [0.5, [0, 1]], [0.15, [0, 1, 2]], [0.1, [0, 1, 2, 3]], [0.05, [0, 1, 2, 3, 4]]])(
    'min-p %f drops the tokens with p < minP * p_max: %j', (minP, want) => {
      const l = F32(L5);
      expect(drawnSet(l, { topK: 0, topP: 1, minP })).toEqual(want);
      expect(drawnSet(l, { topK: 4, topP: 1, minP })).toEqual(want.filter((i) => i < 4));
    });

  it('top-k keeps the k best, the lower ids at a tie', () => {
    const l = F32([1, 2, 2, 0, 2, 2]);
    expect(drawnSet(l, { topK: 2, topP: 1, minP: 0 })).toEqual([1, 2]);
    expect(drawnSet(l, { topK: 3, topP: 1, minP: 0 })).toEqual([1, 2, 4]);
    expect(drawnSet(l, { topK: 5, topP: 1, minP: 0 })).toEqual([0, 1, 2, 4, 5]);
    expect(drawnSet(l, { topK: 99, topP: 1, minP: 0 })).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('on 300 random logits (with ties), every filter combination draws exactly the oracle\'s set', () => {
    const r = rng(31);
    const combos: Filters[] = [
      { temperature: 1000, topK: 0, topP: 0.9, minP: 0 }, // quickselect top-p
      { temperature: 1000, topK: 0, topP: 0.5, minP: 0.01 },
      { temperature: 1000, topK: 0, topP: 1, minP: 0.05 },
      { temperature: 1000, topK: 60, topP: 0.95, minP: 0.02 },
      { temperature: 1000, topK: 25, topP: 1, minP: 0 },
    ];
    for (const [k, f] of combos.entries()) {
      const l = randomLogits(r, 300, k % 2 ? 0.25 : 0, 2);
      l[17] = NaN;
      l[18] = -Infinity;
      const want = asSet(survivors(l, f));
      expect(want.length).toBeGreaterThan(3);
      expect(want.length).toBeLessThan(120); // so 40,000 draws show each one (probability of a miss < 1e-100)
      expect(drawnSet(l, f, 40000), JSON.stringify(f)).toEqual(want);
    }
  });
});

describe('the draw follows softmax(logits / T) over the survivors', () => {
  const N = 20000;
  it.each<[string, number[], Filters]>([
    ['plain softmax', [1, 0.5, 0, -0.5, -2], { temperature: 1, ...NO_FILTERS }],
    ['temperature 0.5', [1, 0.5, 0, -0.5, -2], { temperature: 0.5, ...NO_FILTERS }],
    ['temperature 2', [1, 0.5, 0, -0.5, -2], { temperature: 2, ...NO_FILTERS }],
    ['top-k 3, T 0.7', [0.2, 1.4, -0.3, 1.1, 0.9], { temperature: 0.7, topK: 3, topP: 1, minP: 0 }],
    // top-p before temperature keeps {0, 1}; after T = 2 it would keep three
    ['top-p 0.75, T 2', L5, { temperature: 2, topK: 0, topP: 0.75, minP: 0 }],
    ['top-p 0.85, T 1.3', L5, { temperature: 1.3, topK: 0, topP: 0.85, minP: 0 }],
    // min-p before temperature keeps p >= 0.19 * 0.5: {0, 1, 2}; after T = 3 it would keep all five
    ['min-p 0.19, T 3', L5, { temperature: 3, topK: 0, topP: 1, minP: 0.19 }],
    ['defaults (T 0.8, top-k 40, top-p 0.95, min-p 0.05)', [2, 1.5, 1, 0.3, -1], { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 }],
    ['+Infinity logits share the mass', [Infinity, 0, Infinity, 5, -Infinity], { temperature: 1, ...NO_FILTERS }],
  ])('%s', (_, logits, f) => {
    const l = F32(logits);
    const p = logits.some((x) => x === Infinity) ? logits.map((x) => (x === Infinity ? 0.5 : 0)) : distribution(l, f);
    const obs = counts(new Sampler(l.length, { ...f, seed: 2024 }), l, N);
    const { chi2, df } = chiSquare(obs, p);
    expect(df).toBeGreaterThanOrEqual(1);
    expect(chi2, `observed ${obs} for p ${p.map((x) => x.toFixed(4))}`).toBeLessThan(CHI2_LIMIT[df]);
  });

  it('the same draws with penalties follow softmax of the penalized logits', () => {
    const logits = [1.2, 0.8, -0.4, 0.1, -1];
    const hist = [0, 0, 2, 4, 0];
    const o = { repeatPenalty: 1.3, frequencyPenalty: 0.1, presencePenalty: 0.2, repeatLastN: 4 };
    const pl = penalized(logits, hist, o);
    const p = distribution(pl, { temperature: 1, ...NO_FILTERS });
    const s = new Sampler(5, { temperature: 1, ...NO_FILTERS, ...o, seed: 99 });
    const l = F32(logits);
    const h = Int32Array.from(hist);
    const obs = new Array(5).fill(0);
    for (let i = 0; i < N; i++) obs[s.sample(l, h)]++;
    const { chi2, df } = chiSquare(obs, p);
    expect(chi2, `observed ${obs} for p ${p.map((x) => x.toFixed(4))}`).toBeLessThan(CHI2_LIMIT[df]);
    // and not the unpenalized distribution
    expect(chiSquare(obs, distribution(l, { temperature: 1, ...NO_FILTERS })).chi2).toBeGreaterThan(100);
  });
});

// ---------------------------------------------------------------------------

describe('penalties (llama.cpp: logit > 0 ? logit / penalty : logit * penalty, then - count * freq - presence)', () => {
  const greedy = (opts: SamplingOptions, logits: number[], hist: number[], len?: number) =>
    new Sampler(logits.length, { temperature: 0, ...opts }).sample(F32(logits), Int32Array.from(hist), len);

  it('repeat penalty divides positive logits and multiplies negative ones: greedy flips accordingly', () => {
    expect(greedy({ repeatPenalty: 1.1 }, [2, 1.9, 0], [])).toBe(0);
    expect(greedy({ repeatPenalty: 1.1 }, [2, 1.9, 0], [0])).toBe(1); // 2 / 1.1 = 1.82 < 1.9
    expect(greedy({ repeatPenalty: 1.01 }, [2, 1.9, 0], [0])).toBe(0); // 1.98 > 1.9
    // negative: -1 * 1.1 = -1.1 < -1.05 (dividing would give -0.91 and keep token 0)
    expect(greedy({ repeatPenalty: 1.1 }, [-1, -1.05, -3], [0])).toBe(1);
    // a penalty below 1 rewards: -1.05 * 0.9 = -0.945 > -1
    expect(greedy({ repeatPenalty: 0.9 }, [-1, -1.05, -3], [1])).toBe(1);
    // counted once per token however often it repeats (1.9 / 1.1 = 1.727 > 1.7)
    expect(greedy({ repeatPenalty: 1.1 }, [1.9, 1.7, 0], [0, 0, 0, 0])).toBe(0);
  });

  it('only the last repeatLastN of the first historyLength tokens count', () => {
    const o = { repeatPenalty: 1.5 };
    expect(greedy({ ...o, repeatLastN: 3 }, [2, 1.9, 0, 0, 0, 0], [0, 5, 5, 5])).toBe(0);
    expect(greedy({ ...o, repeatLastN: 4 }, [2, 1.9, 0, 0, 0, 0], [0, 5, 5, 5])).toBe(1);
    expect(greedy({ ...o, repeatLastN: 0 }, [2, 1.9, 0, 0, 0, 0], [0, 0, 0])).toBe(0); // 0 = off
    expect(greedy({ ...o, repeatLastN: 64 }, [2, 1.9, 0, 0, 0, 0], [5, 5, 0, 5], 2)).toBe(0); // 0 is past historyLength
    expect(greedy({ ...o, repeatLastN: 64 }, [2, 1.9, 0, 0, 0, 0], [5, 5, 0, 5], 3)).toBe(1);
    expect(greedy({ ...o, repeatLastN: 2 }, [2, 1.9, 0, 0, 0, 0], [0, 5, 5, 0, 5], 3)).toBe(0);
  });

  it('frequency penalty counts occurrences, presence penalty applies once', () => {
    expect(greedy({ frequencyPenalty: 0.2 }, [2, 1.5, 0], [0, 0])).toBe(0); // 1.6
    expect(greedy({ frequencyPenalty: 0.2 }, [2, 1.5, 0], [0, 0, 0])).toBe(1); // 1.4
    expect(greedy({ presencePenalty: 0.4 }, [2, 1.5, 0], [0, 0, 0])).toBe(0); // 1.6 whatever the count
    expect(greedy({ presencePenalty: 0.6 }, [2, 1.5, 0], [0])).toBe(1); // 1.4
    expect(greedy({ frequencyPenalty: -0.5 }, [1, 1.5, 0], [0, 0])).toBe(0); // negative rewards: 2
  });

  it('greedy with random penalties and histories is the argmax of the oracle\'s penalized logits; the caller\'s logits are not written', () => {
    const r = rng(41);
    const V = 30;
    for (let trial = 0; trial < 400; trial++) {
      const o = {
        repeatPenalty: 0.5 + r() * 1.5,
        frequencyPenalty: (r() - 0.3) * 0.6,
        presencePenalty: (r() - 0.3) * 0.6,
        repeatLastN: Math.floor(r() * 12),
      };
      const l = randomLogits(r, V);
      const before = Float32Array.from(l);
      const hist = Array.from({ length: Math.floor(r() * 20) }, () => Math.floor(r() * 8)); // repeats among few ids
      const len = Math.floor(r() * (hist.length + 1));
      const s = new Sampler(V, { temperature: 0, ...o });
      // the sampler penalizes a float32 copy: the oracle's float64 result is rounded the same way
      const want = argmax(Float32Array.from(penalized(l, hist, o, len)));
      expect(s.sample(l, hist, len), JSON.stringify({ o, hist, len })).toBe(want);
      expect(l).toEqual(before);
    }
  });

  it('a bad history entry is a QkError, and leaves no counts behind for the next call', () => {
    // a frequency penalty sees every count, so a count left over from a failed call would show
    const s = new Sampler(4, { temperature: 0, frequencyPenalty: 0.3 });
    const l = F32([2, 1.5, 0, 0]);
    for (const bad of [4, -1, 1.5, NaN]) expect(() => s.sample(l, [0, 0, bad])).toThrow(QkError);
    expect(() => s.sample(l, [0], 2)).toThrow(QkError);
    expect(() => s.sample(l, [0], -1)).toThrow(QkError);
    expect(s.sample(l, [0])).toBe(0); // 2 - 0.3 = 1.7 > 1.5 (a leftover count of 2 would make it 1.1)
    expect(s.sample(l, [0, 0])).toBe(1); // 1.4
  });
});

// ---------------------------------------------------------------------------

describe('bad options and arguments end in a QkError', () => {
  it.each<[string, SamplingOptions]>([
    ['temperature NaN', { temperature: NaN }], ['temperature -1', { temperature: -1 }], ['temperature Infinity', { temperature: Infinity }],
    ['topK -1', { topK: -1 }], ['topK 1.5', { topK: 1.5 }], ['topK NaN', { topK: NaN }],
    ['topP 0', { topP: 0 }], ['topP 1.01', { topP: 1.01 }], ['topP -0.5', { topP: -0.5 }], ['topP NaN', { topP: NaN }],
    ['minP -0.1', { minP: -0.1 }], ['minP 1.5', { minP: 1.5 }], ['minP NaN', { minP: NaN }],
    ['repeatPenalty 0', { repeatPenalty: 0 }], ['repeatPenalty -1', { repeatPenalty: -1 }], ['repeatPenalty NaN', { repeatPenalty: NaN }],
    ['repeatLastN -1', { repeatLastN: -1 }], ['repeatLastN 2.5', { repeatLastN: 2.5 }],
    ['frequencyPenalty Infinity', { frequencyPenalty: Infinity }], ['presencePenalty NaN', { presencePenalty: NaN }],
    ['seed -1', { seed: -1 }], ['seed 1.5', { seed: 1.5 }], ['seed 2^53', { seed: 2 ** 53 }], ['seed NaN', { seed: NaN }],
    ['seed "1"', { seed: '1' as unknown as number }], ['temperature "1"', { temperature: '1' as unknown as number }],
  ])('%s', (_, opts) => {
    let err: unknown;
    try { new Sampler(10, opts); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(QkError);
    expect((err as QkError).code).toBe('ERR_QK_ARG');
  });

  it('a bad vocabulary size, options object or reset seed', () => {
    for (const v of [0, -1, 1.5, NaN, 2 ** 31, '10']) expect(() => new Sampler(v as number)).toThrow(QkError);
    expect(() => new Sampler(10, null as unknown as SamplingOptions)).toThrow(QkError);
    expect(() => new Sampler(10, { seed: 1 }).reset(-3)).toThrow(QkError);
  });

  it('logits of the wrong length or type', () => {
    const s = new Sampler(5, { seed: 1 });
    const code = (fn: () => unknown) => { try { fn(); } catch (e) { expect(e).toBeInstanceOf(QkError); return (e as QkError).code; } return 'none'; };
    expect(code(() => s.sample(new Float32Array(4)))).toBe('ERR_QK_LENGTH');
    expect(code(() => s.sample(new Float32Array(6)))).toBe('ERR_QK_LENGTH');
    expect(code(() => s.sample(new Float64Array(5) as unknown as Float32Array))).toBe('ERR_QK_TYPE');
    expect(code(() => s.sample([1, 2, 3, 4, 5] as unknown as Float32Array))).toBe('ERR_QK_TYPE');
    expect(code(() => s.sample(null as unknown as Float32Array))).toBe('ERR_QK_TYPE');
    expect(code(() => s.sample(new Float32Array(5), [], 1.5))).toBe('ERR_QK_ARG');
  });
});

// ---------------------------------------------------------------------------
// Allocation, measured as test/gc.test.ts does: garbage collections seen by a
// PerformanceObserver during the loop, and heap growth (--expose-gc from
// vitest.config.ts lets the measurement start from an empty young generation).

async function countGcDuring(fn: () => void): Promise<{ gcs: number; heapGrowth: number }> {
  const entries: unknown[] = [];
  const obs = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 20));
  entries.length = 0;
  const before = process.memoryUsage().heapUsed;
  fn();
  const heapGrowth = process.memoryUsage().heapUsed - before;
  await new Promise((r) => setTimeout(r, 50)); // gc entries are delivered asynchronously
  obs.disconnect();
  return { gcs: entries.length, heapGrowth };
}

describe('sample() allocates nothing', () => {
  const V = 32000;
  const r = rng(51);
  const logits = [0, 1, 2, 3].map(() => randomLogits(r, V));
  const history = Int32Array.from({ length: 256 }, () => Math.floor(r() * V));

  it.each<[string, SamplingOptions, number]>([
    ['default options', {}, 5000],
    ['top-k off (quickselect top-p) with every penalty', { topK: 0, repeatPenalty: 1.1, frequencyPenalty: 0.1, presencePenalty: 0.1 }, 600],
    ['greedy with penalties', { temperature: 0, repeatPenalty: 1.3 }, 2000],
  ])('%s on a 32000-token vocabulary: no GC, no heap growth', async (_, opts, calls) => {
    expect(typeof (globalThis as { gc?: unknown }).gc, 'run with --expose-gc (vitest.config.ts)').toBe('function');
    const s = new Sampler(V, { seed: 3, ...opts });
    let sink = 0;
    const run = () => {
      for (let i = 0; i < calls; i++) sink += s.sample(logits[i & 3], history, 64 + (i & 127));
    };
    run(); // warm-up: JIT tiers and on-stack replacement allocate code once
    const first = await countGcDuring(run);
    const second = await countGcDuring(run);
    expect(sink).toBeGreaterThan(0);
    expect(first.gcs + second.gcs, `garbage collections during 2 x ${calls} calls`).toBe(0);
    // The measurement itself shows ~5 KB; one boxed double per call would add calls x 16 bytes (>= 9.6 KB) on top.
    expect(Math.min(first.heapGrowth, second.heapGrowth)).toBeLessThan(8 * 1024 + 2 * calls);
  });
});

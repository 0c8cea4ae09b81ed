// Timing that holds up on a shared, noisy machine: a warm-up call, then
// samples (each a batch of calls long enough for the clock) until a time
// budget is spent; the median sample is the answer. Calls that take seconds
// (scalar C++ or the JS fallback on a big shape) are measured once or twice.
import { PerformanceObserver, constants as perfConstants } from 'perf_hooks';
import * as v8 from 'v8';
import * as vm from 'vm';

export interface Timing {
  /** median milliseconds per call */
  ms: number;
  /** fastest sample, ms per call */
  minMs: number;
  /** samples taken (each of `batch` calls) */
  samples: number;
  /** calls per sample */
  batch: number;
  /** every sample, ms per call */
  all: number[];
}

export interface MeasureOptions {
  /** keep sampling until this many ms are spent (and minSamples are taken) */
  budgetMs: number;
  minSamples?: number;
  maxSamples?: number;
  /** aim for samples at least this long, batching fast calls */
  sampleMs?: number;
  /** a warm-up call longer than this is followed by a single measured call */
  slowMs?: number;
  /** a warm-up call longer than this is the only call (the answer includes warm-up effects) */
  verySlowMs?: number;
  /** one call, no warm-up (a call known to take seconds) */
  single?: boolean;
}

/** Times fn(i) (i counts calls from 0, e.g. to rotate over copies of the weights). */
export function measure(fn: (i: number) => void, o: MeasureOptions): Timing {
  const minSamples = o.minSamples ?? 3;
  const maxSamples = o.maxSamples ?? 500;
  const sampleMs = o.sampleMs ?? 2;
  const slowMs = o.slowMs ?? 1500;
  const verySlowMs = o.verySlowMs ?? 4000;
  let call = 0;
  let t0 = performance.now();
  if (o.single) {
    fn(call++);
    const t = performance.now() - t0;
    return { ms: t, minMs: t, samples: 1, batch: 1, all: [t] };
  }
  fn(call++); // warm-up: JIT, caches, thread pool, scratch buffers, page faults of `out`
  const warm = performance.now() - t0;
  if (warm >= verySlowMs) return { ms: warm, minMs: warm, samples: 1, batch: 1, all: [warm] };
  if (warm >= slowMs) {
    t0 = performance.now();
    fn(call++);
    const t = performance.now() - t0;
    return { ms: t, minMs: t, samples: 1, batch: 1, all: [t] };
  }
  // Calls long against the budget: minSamples single calls, no calibration.
  let batch = 1;
  if (warm * (minSamples + 1) <= o.budgetMs) {
    // A second call calibrates the batch size (the warm-up is often slower).
    t0 = performance.now();
    fn(call++);
    const one = Math.min(warm, performance.now() - t0);
    batch = Math.max(1, Math.min(100_000, Math.ceil(sampleMs / Math.max(one, 1e-4))));
  }
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < maxSamples && (samples.length < minSamples || performance.now() - start < o.budgetMs)) {
    t0 = performance.now();
    for (let b = 0; b < batch; b++) fn(call++);
    samples.push((performance.now() - t0) / batch);
  }
  samples.sort((a, b) => a - b);
  return { ms: median(samples), minMs: samples[0], samples: samples.length, batch, all: samples };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

// ---------------------------------------------------------------------------
// Garbage collections and allocation

let gcFn: (() => void) | null = null;

/** global.gc, exposed at run time when node was started without --expose-gc. */
export function forceGc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}

export interface GcCounts {
  minor: number;
  major: number;
  /** incremental marking and weak-callback passes */
  other: number;
}

const counts: GcCounts = { minor: 0, major: 0, other: 0 };
let observer: PerformanceObserver | null = null;
/** The latest collections, by start time (performance.now() clock), for counting those inside a window. */
const recent: { start: number; kind: keyof GcCounts }[] = [];
const RECENT_MAX = 4096;

/** Starts counting garbage collections (PerformanceObserver 'gc' entries). */
export function startGcCounter(): void {
  if (observer) return;
  observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const code = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      const kind: keyof GcCounts = code === perfConstants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : code === perfConstants.NODE_PERFORMANCE_GC_MAJOR ? 'major' : 'other';
      counts[kind]++;
      recent.push({ start: e.startTime, kind });
      if (recent.length > RECENT_MAX) recent.splice(0, recent.length - RECENT_MAX);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

export function stopGcCounter(): void {
  observer?.disconnect();
  observer = null;
}

/** gc entries arrive asynchronously: let the observer drain. */
export function settle(ms = 15): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function gcSnapshot(): Promise<GcCounts> {
  await settle();
  return { ...counts };
}

/**
 * Collections that started inside [t0, t1] (performance.now() times), once
 * their entries have arrived: unlike two snapshots, this leaves out those that
 * run while the caller waits for the entries (idle-time GC, the observer's own).
 */
export async function gcCountsBetween(t0: number, t1: number): Promise<GcCounts> {
  await settle();
  const c: GcCounts = { minor: 0, major: 0, other: 0 };
  for (const r of recent) if (r.start >= t0 && r.start <= t1) c[r.kind]++;
  return c;
}

export function gcDiff(a: GcCounts, b: GcCounts): GcCounts {
  return { minor: b.minor - a.minor, major: b.major - a.major, other: b.other - a.other };
}

export function gcTotal(g: GcCounts): number {
  return g.minor + g.major + g.other;
}

/** JS heap plus ArrayBuffer backing stores: what a JS caller allocates, in bytes. */
export function allocatedBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

// ---------------------------------------------------------------------------
// Deterministic synthetic data

/** A seed mixed from a base seed and tensor coordinates (so every tensor gets its own stream). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p >>> 0;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d) >>> 0;
  }
  return h >>> 0 || 1;
}

/**
 * Fills `out` with uniform floats of standard deviation `std` (16-bit
 * resolution): two interleaved xorshift32 streams, two values from each
 * 32-bit state, ~1 ns a float.
 */
export function fillUniform(out: Float32Array, seed: number, std: number): Float32Array {
  let s1 = seed | 0 || 1;
  let s2 = (seed ^ 0x5bd1e995) | 0 || 2;
  // A signed 16-bit half is uniform on [-32768, 32768): scale to [-a, a) with a = sqrt(3) * std.
  const scale = (Math.sqrt(3) * std) / 32768;
  const n = out.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s1 ^= s1 << 13;
    s1 ^= s1 >>> 17;
    s1 ^= s1 << 5;
    s2 ^= s2 << 13;
    s2 ^= s2 >>> 17;
    s2 ^= s2 << 5;
    out[i] = (s1 >> 16) * scale;
    out[i + 1] = ((s1 << 16) >> 16) * scale;
    out[i + 2] = (s2 >> 16) * scale;
    out[i + 3] = ((s2 << 16) >> 16) * scale;
  }
  for (; i < n; i++) {
    s1 ^= s1 << 13;
    s1 ^= s1 >>> 17;
    s1 ^= s1 << 5;
    out[i] = (s1 >> 16) * scale;
  }
  return out;
}

// Inverse normal CDF (Acklam's rational approximation, relative error < 1.2e-9).
function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

const QUANTILE_BITS = 12;
let quantiles: Float64Array | null = null;

function quantileTable(): Float64Array {
  if (!quantiles) {
    const n = 1 << QUANTILE_BITS;
    quantiles = new Float64Array(n + 1);
    const eps = 1 / (8 * n);
    for (let j = 0; j <= n; j++) quantiles[j] = normalQuantile(Math.min(1 - eps, Math.max(eps, j / n)));
  }
  return quantiles;
}

/**
 * Deterministic, approximately N(0, std²) floats: xorshift32 through a
 * piecewise-linear inverse normal CDF (4096 pieces; tails end near 4 sigma).
 * Weights that look like trained ones to a quantizer, at ~3 ns a float
 * (Box-Muller's log, cos and sin cost ten times that).
 */
export function fillGaussian(out: Float32Array, seed: number, std = 1): Float32Array {
  const t = quantileTable();
  let s = seed | 0 || 1;
  const n = out.length;
  const fracScale = 1 / (1 << (32 - QUANTILE_BITS));
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = s >>> 0;
    const j = u >>> (32 - QUANTILE_BITS);
    const f = (u & ((1 << (32 - QUANTILE_BITS)) - 1)) * fracScale;
    const lo = t[j];
    out[i] = (lo + f * (t[j + 1] - lo)) * std;
  }
  return out;
}

export function gaussian(n: number, seed: number, std = 1): Float32Array {
  return fillGaussian(new Float32Array(n), seed, std);
}

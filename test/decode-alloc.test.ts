// Allocation regression test for batch-1 decode: the llama-shaped decoder of
// the benchmark (bench/model.ts) must decode without garbage collections and
// with under 1 KB of JS allocation per token, and must compute the right
// thing: its logits are compared with a plain float64 implementation of the
// same network built from the dequantized weights.
import { PerformanceObserver } from 'perf_hooks';
import { describe, expect, it } from 'vitest';
import { backend, dequantize, type QuantizedMatrix, type WeightType } from '../lib/index';
import { generateLlamaWeights, LlamaDecoder, prepareWeights, type LlamaConfig, type LlamaWeights } from '../bench/model';
import { probeTypes } from '../bench/probe';

const CONFIG: LlamaConfig = {
  name: 'test 256 x 8 layers',
  hidden: 256,
  // 128 head-layers: a float boxed once per head and layer (16 bytes) would make 2 KB a token.
  layers: 8,
  heads: 16,
  kvHeads: 4, // grouped-query attention: four query heads per KV head
  ffn: 768,
  vocab: 1000,
  maxTokens: 256,
};
const TOKENS_MEASURED = 200;

// q4_k joins when this build can quantize it (it is probed in a child process, so a crash there cannot take this file down).
const CANDIDATES: WeightType[] = ['q4_0', 'q8_0', 'q4_k'];
const STATUS = probeTypes(CANDIDATES);
const TYPES: string[] = STATUS.filter((s) => s.ok).flatMap((s) => (s.type === 'q4_0' ? ['q4_0', 'q4_0 prepared'] : [s.type]));
for (const s of STATUS) if (!s.ok) console.warn(`decode-alloc: ${s.type} skipped on the ${backend().name} backend: ${s.reason}`);

const gc = (globalThis as { gc?: () => void }).gc;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tokenStream(n: number, seed: number): Int32Array {
  const t = new Int32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    t[i] = s % CONFIG.vocab;
  }
  return t;
}

/** The loop measured, and (identically) the warm-up. */
function decode(dec: LlamaDecoder, tokens: Int32Array, n: number): void {
  dec.reset();
  for (let i = 0; i < n; i++) dec.step(tokens[i]);
}

// ---------------------------------------------------------------------------
// Float64 reference: the same network, written the obvious way (allocating).

interface RefLayer {
  attnNorm: Float64Array;
  wq: Float64Array[];
  wk: Float64Array[];
  wv: Float64Array[];
  wo: Float64Array[];
  ffnNorm: Float64Array;
  wGate: Float64Array[];
  wUp: Float64Array[];
  wDown: Float64Array[];
}

function rowsOf(w: QuantizedMatrix): Float64Array[] {
  const flat = dequantize(w);
  const rows: Float64Array[] = [];
  for (let r = 0; r < w.rows; r++) rows.push(Float64Array.from(flat.subarray(r * w.cols, (r + 1) * w.cols)));
  return rows;
}

function matvec(w: Float64Array[], x: Float64Array): Float64Array {
  return Float64Array.from(w, (row) => row.reduce((s, v, i) => s + v * x[i], 0));
}

function rmsnorm(x: Float64Array, g: Float64Array, eps: number): Float64Array {
  const ms = x.reduce((s, v) => s + v * v, 0) / x.length;
  return x.map((v, i) => (v / Math.sqrt(ms + eps)) * g[i]);
}

function applyRope(x: Float64Array, heads: number, hd: number, pos: number, theta: number): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      const angle = pos / Math.pow(theta, (2 * i) / hd);
      const a = x[h * hd + 2 * i];
      const b = x[h * hd + 2 * i + 1];
      x[h * hd + 2 * i] = a * Math.cos(angle) - b * Math.sin(angle);
      x[h * hd + 2 * i + 1] = a * Math.sin(angle) + b * Math.cos(angle);
    }
  }
}

class Reference {
  private readonly layers: RefLayer[];
  private readonly output: Float64Array[];
  private readonly outNorm: Float64Array;
  private readonly keys: Float64Array[][]; // [layer][pos] -> kv vector
  private readonly values: Float64Array[][];

  constructor(private readonly w: LlamaWeights) {
    this.layers = w.layers.map((l) => ({
      attnNorm: Float64Array.from(l.attnNorm),
      wq: rowsOf(l.wq),
      wk: rowsOf(l.wk),
      wv: rowsOf(l.wv),
      wo: rowsOf(l.wo),
      ffnNorm: Float64Array.from(l.ffnNorm),
      wGate: rowsOf(l.wGate),
      wUp: rowsOf(l.wUp),
      wDown: rowsOf(l.wDown),
    }));
    this.output = rowsOf(w.output);
    this.outNorm = Float64Array.from(w.outNorm);
    this.keys = w.layers.map(() => []);
    this.values = w.layers.map(() => []);
  }

  step(token: number): Float64Array {
    const c = this.w.config;
    const eps = c.normEps ?? 1e-5;
    const theta = c.ropeTheta ?? 10000;
    const hd = c.hidden / c.heads;
    const pos = this.keys[0].length;
    let x = Float64Array.from(this.w.embedding.subarray(token * c.hidden, (token + 1) * c.hidden));
    this.layers.forEach((L, l) => {
      const xn = rmsnorm(x, L.attnNorm, eps);
      const q = matvec(L.wq, xn);
      const k = matvec(L.wk, xn);
      const v = matvec(L.wv, xn);
      applyRope(q, c.heads, hd, pos, theta);
      applyRope(k, c.kvHeads, hd, pos, theta);
      this.keys[l].push(k);
      this.values[l].push(v);
      const att = new Float64Array(c.hidden);
      for (let h = 0; h < c.heads; h++) {
        const kvh = Math.floor(h / (c.heads / c.kvHeads));
        const scores = this.keys[l].map((kt) => {
          let s = 0;
          for (let i = 0; i < hd; i++) s += q[h * hd + i] * kt[kvh * hd + i];
          return s / Math.sqrt(hd);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, b) => a + b, 0);
        this.values[l].forEach((vt, t) => {
          for (let i = 0; i < hd; i++) att[h * hd + i] += (e[t] / sum) * vt[kvh * hd + i];
        });
      }
      const o = matvec(L.wo, att);
      x = x.map((xi, i) => xi + o[i]);
      const xn2 = rmsnorm(x, L.ffnNorm, eps);
      const g = matvec(L.wGate, xn2);
      const u = matvec(L.wUp, xn2);
      const hmid = g.map((gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]);
      const d = matvec(L.wDown, hmid);
      x = x.map((xi, i) => xi + d[i]);
    });
    return matvec(this.output, rmsnorm(x, this.outNorm, eps));
  }
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

function relRms(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  let n = 0;
  for (let i = 0; i < want.length; i++) {
    e += (got[i] - want[i]) ** 2;
    n += want[i] ** 2;
  }
  return Math.sqrt(e / n);
}

// ---------------------------------------------------------------------------

describe.each(TYPES)('llama-shaped decoder, %s weights', (variant) => {
  const type = variant.split(' ')[0] as WeightType;
  const generated = generateLlamaWeights(CONFIG, [type], { seed: 1234 }).get(type)!;
  const weights = variant.endsWith('prepared') ? prepareWeights(generated) : generated;
  if (variant.endsWith('prepared')) expect(weights.layers[0].wq.layout).toBe('interleaved16');
  const tokens = tokenStream(CONFIG.maxTokens, 99);

  it('decode steps match a float64 reference built from the dequantized weights', () => {
    const dec = new LlamaDecoder(weights, 16);
    const ref = new Reference(weights);
    const steps = 8; // enough positions for RoPE and the KV cache to matter
    for (let s = 0; s < steps; s++) {
      const got = dec.step(tokens[s]);
      const want = ref.step(tokens[s]);
      const cos = cosine(got, want);
      const err = relRms(got, want);
      // The only differences: q8 quantization of activations before each matmul, and float32 arithmetic.
      expect(cos, `step ${s}: cosine similarity of the logits`).toBeGreaterThan(0.999);
      expect(err, `step ${s}: relative RMS error of the logits`).toBeLessThan(0.05);
    }
    // The logits really depend on the context: a different history gives a different answer.
    dec.reset();
    for (let s = 0; s < steps - 1; s++) dec.step(tokens[s + 50]);
    const other = Float32Array.from(dec.step(tokens[steps - 1]));
    dec.reset();
    for (let s = 0; s < steps; s++) dec.step(tokens[s]);
    expect(cosine(other, dec.logits)).toBeLessThan(0.999);
    // And a reset decoder is deterministic.
    const again = Float32Array.from(dec.logits);
    decode(dec, tokens, steps);
    expect(Array.from(dec.logits)).toEqual(Array.from(again));
  });

  // A property of the native backend: the TypeScript fallback's kernels return doubles that V8 may box
  // (it is the oracle, not the hot path; test/gc.test.ts draws the same line).
  it.skipIf(backend().name !== 'native')(`${TOKENS_MEASURED} decode steps: no GC, under 1 KB of JS allocation per token`, async () => {
    expect(typeof gc, 'run with --expose-gc (vitest.config.ts)').toBe('function');
    const dec = new LlamaDecoder(weights, CONFIG.maxTokens);
    // Warm up the very code path measured: JIT tiers, matmul scratch buffers, the thread pool.
    decode(dec, tokens, TOKENS_MEASURED);
    decode(dec, tokens, TOKENS_MEASURED);

    const gcs: unknown[] = [];
    const obs = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
    obs.observe({ entryTypes: ['gc'] });
    gc!();
    await sleep(20);
    gcs.length = 0;
    const m0 = process.memoryUsage();
    decode(dec, tokens, TOKENS_MEASURED);
    const m1 = process.memoryUsage();
    await sleep(50); // gc entries are delivered asynchronously
    obs.disconnect();

    // ArrayBuffer frees from earlier collections can land late, so only their growth counts.
    const perToken = (m1.heapUsed - m0.heapUsed + Math.max(0, m1.arrayBuffers - m0.arrayBuffers)) / TOKENS_MEASURED;
    expect(gcs.length, `garbage collections during ${TOKENS_MEASURED} ${type} decode steps`).toBe(0);
    expect(perToken, 'bytes of JS heap and ArrayBuffers allocated per token').toBeLessThan(1024);
  });
});

it('at least q4_0 and q8_0 are tested', () => {
  expect(TYPES).toContain('q4_0');
  expect(TYPES).toContain('q8_0');
});

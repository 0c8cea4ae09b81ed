// A llama-shaped decoder over qkernels matmuls, for batch-1 token generation:
// token embedding, then per layer RMSNorm, q/k/v projections, RoPE, attention
// over a growing KV cache (grouped-query when kvHeads < heads), the output
// projection, RMSNorm and a SwiGLU FFN (gate, up, down), each with a residual;
// a final RMSNorm and the output head (logits).
//
// Every buffer (activations, KV cache for up to maxTokens tokens, attention
// scores, RoPE tables) is allocated by the constructor; step() allocates
// nothing in JS: each projection is matmul(w, x, 1, out) with `out` given and
// the rest is plain loops over preallocated Float32Arrays.
//
// The weights are random (fixed seed, distinct per tensor), made by
// generateLlamaWeights(): each tensor is generated as f32 rows by a fast
// xorshift, quantized to every requested type, and dropped (the f32 model, when
// asked for, keeps its own copy). Conventions: a weight matrix has rows = output
// features, cols = input features (PyTorch Linear / GGUF), RoPE rotates
// adjacent pairs (x[2i], x[2i+1]) of each head (ggml's normal mode), and query
// head h reads KV head floor(h / (heads / kvHeads)).
import { matmul, prepare, quantize, typeInfo, type QuantizedMatrix, type WeightType } from '../lib/index';
import { fillUniform, mixSeed } from './timing';

export interface LlamaConfig {
  name: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** FFN inner size */
  ffn: number;
  vocab: number;
  /** KV cache capacity in tokens */
  maxTokens: number;
  ropeTheta?: number;
  normEps?: number;
}

/** The report's scenario: 512 hidden. */
export const LLAMA_512: LlamaConfig = {
  name: 'llama 512 x 8 layers',
  hidden: 512,
  layers: 8,
  heads: 8,
  kvHeads: 8,
  ffn: 1536,
  vocab: 32000,
  maxTokens: 64,
};

/** TinyLlama 1.1B (hidden 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000). */
export const TINYLLAMA: LlamaConfig = {
  name: 'TinyLlama 1.1B shape',
  hidden: 2048,
  layers: 22,
  heads: 32,
  kvHeads: 4,
  ffn: 5632,
  vocab: 32000,
  maxTokens: 64,
};

export interface LlamaLayer {
  attnNorm: Float32Array;
  wq: QuantizedMatrix;
  wk: QuantizedMatrix;
  wv: QuantizedMatrix;
  wo: QuantizedMatrix;
  ffnNorm: Float32Array;
  wGate: QuantizedMatrix;
  wUp: QuantizedMatrix;
  wDown: QuantizedMatrix;
}

export interface LlamaWeights {
  config: LlamaConfig;
  type: WeightType;
  /** vocab x hidden, f32 (one row is read per token, so its type does not matter to speed) */
  embedding: Float32Array;
  layers: LlamaLayer[];
  outNorm: Float32Array;
  /** vocab x hidden */
  output: QuantizedMatrix;
}

export function headDim(c: LlamaConfig): number {
  return c.hidden / c.heads;
}

/** Checks a config; throws a sentence naming what is wrong. */
export function checkConfig(c: LlamaConfig): void {
  const ints: (keyof LlamaConfig)[] = ['hidden', 'layers', 'heads', 'kvHeads', 'ffn', 'vocab', 'maxTokens'];
  for (const k of ints) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`LlamaConfig.${k} must be a positive integer; got ${String(v)}`);
  }
  if (c.hidden % c.heads) throw new RangeError(`hidden (${c.hidden}) must be a multiple of heads (${c.heads})`);
  if (c.heads % c.kvHeads) throw new RangeError(`heads (${c.heads}) must be a multiple of kvHeads (${c.kvHeads})`);
  if (headDim(c) % 2) throw new RangeError(`the head size (${headDim(c)}) must be even for RoPE`);
}

/** The matrices of one layer, as [name, rows (out), cols (in)]. */
export function layerShapes(c: LlamaConfig): [keyof LlamaLayer, number, number][] {
  const kvDim = c.kvHeads * headDim(c);
  return [
    ['wq', c.hidden, c.hidden],
    ['wk', kvDim, c.hidden],
    ['wv', kvDim, c.hidden],
    ['wo', c.hidden, c.hidden],
    ['wGate', c.ffn, c.hidden],
    ['wUp', c.ffn, c.hidden],
    ['wDown', c.hidden, c.ffn],
  ];
}

/** Matmul weight elements of the model (all layers and the output head). */
export function weightElements(c: LlamaConfig): number {
  let n = 0;
  for (const [, r, k] of layerShapes(c)) n += r * k;
  return n * c.layers + c.vocab * c.hidden;
}

/** Bytes of matmul weights one token streams (every layer's matrices and the output head). */
export function weightBytesPerToken(w: LlamaWeights): number {
  let b = w.output.data.byteLength;
  for (const l of w.layers) b += l.wq.data.byteLength + l.wk.data.byteLength + l.wv.data.byteLength + l.wo.data.byteLength + l.wGate.data.byteLength + l.wUp.data.byteLength + l.wDown.data.byteLength;
  return b;
}

function f32Matrix(src: Float32Array, rows: number, cols: number): QuantizedMatrix {
  return Object.freeze({ type: 'f32' as WeightType, rows, cols, data: new Uint8Array(src.buffer, src.byteOffset, src.byteLength) });
}

export interface GenerateOptions {
  seed?: number;
  /** called after each tensor with (done, total) weight elements */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Random weights for `config`, one model per type in `types`, all from the same
 * f32 values (so the models differ only by their quantization). Each tensor is
 * generated once into a scratch buffer and quantized to every type; only an f32
 * model keeps f32 copies. Throws what quantize throws for an unsupported type.
 */
export function generateLlamaWeights(config: LlamaConfig, types: readonly WeightType[], opts: GenerateOptions = {}): Map<WeightType, LlamaWeights> {
  checkConfig(config);
  for (const t of types) {
    const bs = typeInfo(t).blockSize;
    if (config.hidden % bs || config.ffn % bs) throw new RangeError(`${t} needs hidden (${config.hidden}) and ffn (${config.ffn}) to be multiples of its block size ${bs}`);
  }
  const seed = opts.seed ?? 42;
  const c = config;
  const shapes = layerShapes(c);
  const total = weightElements(c);
  let done = 0;
  let maxElems = c.vocab * c.hidden;
  for (const [, r, k] of shapes) maxElems = Math.max(maxElems, r * k);
  const wantF32 = types.includes('f32');
  const needScratch = types.some((t) => t !== 'f32');
  const scratch = needScratch && !wantF32 ? new Float32Array(maxElems) : null;

  // One tensor: generated, quantized to every type, the f32 source dropped unless the f32 model keeps it.
  const tensor = (tensorSeed: number, rows: number, cols: number): Map<WeightType, QuantizedMatrix> => {
    const n = rows * cols;
    const src = wantF32 ? new Float32Array(n) : scratch!.subarray(0, n);
    fillUniform(src, tensorSeed, 1 / Math.sqrt(cols));
    const out = new Map<WeightType, QuantizedMatrix>();
    for (const t of types) out.set(t, t === 'f32' ? f32Matrix(src, rows, cols) : quantize(src, rows, cols, t));
    done += n;
    opts.onProgress?.(done, total);
    return out;
  };
  const norm = (tensorSeed: number): Float32Array => {
    const v = fillUniform(new Float32Array(c.hidden), tensorSeed, 0.1);
    for (let i = 0; i < v.length; i++) v[i] += 1;
    return v;
  };

  const embedding = fillUniform(new Float32Array(c.vocab * c.hidden), mixSeed(seed, 1), 1);
  const perType = new Map<WeightType, LlamaWeights>();
  for (const t of types) perType.set(t, { config: c, type: t, embedding, layers: [], outNorm: new Float32Array(0), output: null as unknown as QuantizedMatrix });
  for (let l = 0; l < c.layers; l++) {
    const attnNorm = norm(mixSeed(seed, 2, l));
    const ffnNorm = norm(mixSeed(seed, 3, l));
    const mats = new Map<string, Map<WeightType, QuantizedMatrix>>();
    shapes.forEach(([name, rows, cols], i) => mats.set(name, tensor(mixSeed(seed, 4, l, i), rows, cols)));
    for (const t of types) {
      const g = (name: string) => mats.get(name)!.get(t)!;
      perType.get(t)!.layers.push({ attnNorm, wq: g('wq'), wk: g('wk'), wv: g('wv'), wo: g('wo'), ffnNorm, wGate: g('wGate'), wUp: g('wUp'), wDown: g('wDown') });
    }
  }
  const outNorm = norm(mixSeed(seed, 5));
  const output = tensor(mixSeed(seed, 6), c.vocab, c.hidden);
  for (const t of types) {
    const w = perType.get(t)!;
    w.outNorm = outNorm;
    w.output = output.get(t)!;
  }
  return perType;
}

/** The model with every matrix through prepare(), as a server would load it (types without an interleaved layout stay as they are). */
export function prepareWeights(w: LlamaWeights): LlamaWeights {
  const layers = w.layers.map((L) => ({
    ...L,
    wq: prepare(L.wq),
    wk: prepare(L.wk),
    wv: prepare(L.wv),
    wo: prepare(L.wo),
    wGate: prepare(L.wGate),
    wUp: prepare(L.wUp),
    wDown: prepare(L.wDown),
  }));
  return { ...w, layers, output: prepare(w.output) };
}

export class LlamaDecoder {
  readonly config: LlamaConfig;
  readonly weights: LlamaWeights;
  readonly maxTokens: number;
  /** logits of the last step (vocab) */
  readonly logits: Float32Array;
  /** the residual stream after the last step, before the final norm (hidden) */
  readonly hiddenState: Float32Array;
  private position = 0;

  private readonly xn: Float32Array;
  private readonly q: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly att: Float32Array;
  private readonly proj: Float32Array;
  private readonly gate: Float32Array;
  private readonly up: Float32Array;
  private readonly scores: Float32Array;
  private readonly headAcc: Float64Array;
  private readonly keyCache: Float32Array;
  private readonly valueCache: Float32Array;
  private readonly ropeCos: Float32Array;
  private readonly ropeSin: Float32Array;

  constructor(weights: LlamaWeights, maxTokens = weights.config.maxTokens) {
    const c = weights.config;
    checkConfig(c);
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxTokens must be a positive integer; got ${maxTokens}`);
    this.config = c;
    this.weights = weights;
    this.maxTokens = maxTokens;
    const hd = headDim(c);
    const kvDim = c.kvHeads * hd;
    this.hiddenState = new Float32Array(c.hidden);
    this.xn = new Float32Array(c.hidden);
    this.q = new Float32Array(c.hidden);
    this.k = new Float32Array(kvDim);
    this.v = new Float32Array(kvDim);
    this.att = new Float32Array(c.hidden);
    this.proj = new Float32Array(c.hidden);
    this.gate = new Float32Array(c.ffn);
    this.up = new Float32Array(c.ffn);
    this.logits = new Float32Array(c.vocab);
    this.scores = new Float32Array(maxTokens);
    this.headAcc = new Float64Array(hd);
    this.keyCache = new Float32Array(c.layers * maxTokens * kvDim);
    this.valueCache = new Float32Array(c.layers * maxTokens * kvDim);
    const half = hd / 2;
    this.ropeCos = new Float32Array(maxTokens * half);
    this.ropeSin = new Float32Array(maxTokens * half);
    const theta = c.ropeTheta ?? 10000;
    for (let p = 0; p < maxTokens; p++) {
      for (let i = 0; i < half; i++) {
        const a = p * Math.pow(theta, (-2 * i) / hd);
        this.ropeCos[p * half + i] = Math.cos(a);
        this.ropeSin[p * half + i] = Math.sin(a);
      }
    }
  }

  /** Builds a model with random weights of one type (see generateLlamaWeights). */
  static random(config: LlamaConfig, type: WeightType, seed = 42): LlamaDecoder {
    return new LlamaDecoder(generateLlamaWeights(config, [type], { seed }).get(type)!);
  }

  /** Tokens decoded since the last reset (the position of the next token). */
  get pos(): number {
    return this.position;
  }

  /** Empties the KV cache. */
  reset(): void {
    this.position = 0;
  }

  /** Decodes one token at the next position; returns the logits (a buffer reused by every step). */
  step(token: number): Float32Array {
    const c = this.config;
    const pos = this.position;
    if (pos >= this.maxTokens) throw new RangeError(`the KV cache holds ${this.maxTokens} tokens; reset() before decoding more`);
    if (!(token >= 0 && token < c.vocab && token === (token | 0))) throw new RangeError(`token must be an integer in [0, ${c.vocab}); got ${token}`);
    const H = c.hidden;
    const hd = H / c.heads;
    const half = hd >> 1;
    const kvDim = c.kvHeads * hd;
    const group = c.heads / c.kvHeads;
    const eps = c.normEps ?? 1e-5;
    const T = this.maxTokens;
    const x = this.hiddenState;
    const { xn, q, k, v, att, proj, gate, up, scores, headAcc, keyCache, valueCache, ropeCos, ropeSin } = this;
    const w = this.weights;

    const emb = w.embedding;
    const eo = token * H;
    for (let i = 0; i < H; i++) x[i] = emb[eo + i];

    for (let l = 0; l < c.layers; l++) {
      const L = w.layers[l];
      rmsNorm(x, L.attnNorm, xn, H, eps);
      matmul(L.wq, xn, 1, q);
      matmul(L.wk, xn, 1, k);
      matmul(L.wv, xn, 1, v);
      rope(q, c.heads, hd, ropeCos, ropeSin, pos * half);
      rope(k, c.kvHeads, hd, ropeCos, ropeSin, pos * half);
      const layerBase = l * T * kvDim;
      const co = layerBase + pos * kvDim;
      for (let i = 0; i < kvDim; i++) {
        keyCache[co + i] = k[i];
        valueCache[co + i] = v[i];
      }
      // Attention of each query head over positions 0..pos of its KV head.
      for (let h = 0; h < c.heads; h++) {
        const qo = h * hd;
        const ko = layerBase + ((h / group) | 0) * hd;
        attendHead(q, qo, keyCache, valueCache, ko, kvDim, hd, pos, scores, headAcc);
        for (let i = 0; i < hd; i++) att[qo + i] = headAcc[i];
      }
      matmul(L.wo, att, 1, proj);
      for (let i = 0; i < H; i++) x[i] += proj[i];

      rmsNorm(x, L.ffnNorm, xn, H, eps);
      matmul(L.wGate, xn, 1, gate);
      matmul(L.wUp, xn, 1, up);
      const F = c.ffn;
      for (let i = 0; i < F; i++) {
        const g = gate[i];
        gate[i] = (g / (1 + Math.exp(-g))) * up[i];
      }
      matmul(L.wDown, gate, 1, proj);
      for (let i = 0; i < H; i++) x[i] += proj[i];
    }
    rmsNorm(x, w.outNorm, xn, H, eps);
    matmul(w.output, xn, 1, this.logits);
    this.position = pos + 1;
    return this.logits;
  }
}

/**
 * One query head's attention over positions 0..pos of its KV head (keys and
 * values of position t at ko + t * kvDim): the softmax-weighted sum of the
 * values, left in headAcc[0..hd) in float64. Its own function so that V8
 * optimizes it alone, the same way on every run, instead of as part of step();
 * its arguments are typed arrays and small integers only (see scale below).
 */
function attendHead(
  q: Float32Array,
  qo: number,
  keyCache: Float32Array,
  valueCache: Float32Array,
  ko: number,
  kvDim: number,
  hd: number,
  pos: number,
  scores: Float32Array,
  headAcc: Float64Array,
): void {
  // Made here rather than passed in: a float argument to a call V8 does not
  // inline is boxed, 16 bytes of garbage per head and layer.
  const scale = 1 / Math.sqrt(hd);
  let max = -Infinity;
  for (let t = 0; t <= pos; t++) {
    const kt = ko + t * kvDim;
    // Four partial sums: one chain of dependent adds would leave the dot latency-bound.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let i = 0;
    for (; i + 4 <= hd; i += 4) {
      s0 += q[qo + i] * keyCache[kt + i];
      s1 += q[qo + i + 1] * keyCache[kt + i + 1];
      s2 += q[qo + i + 2] * keyCache[kt + i + 2];
      s3 += q[qo + i + 3] * keyCache[kt + i + 3];
    }
    for (; i < hd; i++) s0 += q[qo + i] * keyCache[kt + i];
    const s = (s0 + s1 + s2 + s3) * scale;
    scores[t] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let t = 0; t <= pos; t++) {
    const e = Math.exp(scores[t] - max);
    scores[t] = e;
    sum += e;
  }
  const inv = 1 / sum;
  // Summed in float64 (headAcc), rounded to float32 once per element.
  headAcc.fill(0, 0, hd);
  let t = 0;
  for (; t + 4 <= pos + 1; t += 4) {
    // Four positions per pass over the head: a quarter of the accumulator updates.
    const p0 = scores[t] * inv;
    const p1 = scores[t + 1] * inv;
    const p2 = scores[t + 2] * inv;
    const p3 = scores[t + 3] * inv;
    const v0 = ko + t * kvDim;
    const v1 = v0 + kvDim;
    const v2 = v1 + kvDim;
    const v3 = v2 + kvDim;
    for (let i = 0; i < hd; i++) {
      headAcc[i] += p0 * valueCache[v0 + i] + p1 * valueCache[v1 + i] + p2 * valueCache[v2 + i] + p3 * valueCache[v3 + i];
    }
  }
  for (; t <= pos; t++) {
    const p = scores[t] * inv;
    const vt = ko + t * kvDim;
    for (let i = 0; i < hd; i++) headAcc[i] += p * valueCache[vt + i];
  }
}

function rmsNorm(x: Float32Array, g: Float32Array, out: Float32Array, n: number, eps: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[i] * x[i];
  const r = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) out[i] = x[i] * r * g[i];
}

/** Rotates the pairs (2i, 2i+1) of each head by the angles of one position (tables offset `to`). */
function rope(x: Float32Array, heads: number, hd: number, cos: Float32Array, sin: Float32Array, to: number): void {
  const half = hd >> 1;
  for (let h = 0; h < heads; h++) {
    const o = h * hd;
    for (let i = 0; i < half; i++) {
      const c = cos[to + i];
      const s = sin[to + i];
      const a = x[o + 2 * i];
      const b = x[o + 2 * i + 1];
      x[o + 2 * i] = a * c - b * s;
      x[o + 2 * i + 1] = a * s + b * c;
    }
  }
}

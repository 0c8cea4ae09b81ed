// The llama forward pass in TypeScript on the JS kernels: the oracle for the
// native decoder's parity tests, and the engine where no addon loads. It is
// written for clarity over speed, with the native decoder's numerics
// (native/src/llama.cc): RMSNorm's sum in double, RoPE angles advanced by a
// float multiply per pair as ggml's rope cache does, f16 keys and values
// rounded as the native cache stores them.
//
// Buffers are allocated by the constructor; decodeRow() allocates nothing but
// what the JS matmul does internally.
import type { Backend } from '../backend';
import { jsBackend } from '../js/backend';
import { f16BitsToF32, f32ToF16Bits } from '../js/fp16';
import type { QuantizedMatrix } from '../types';
import type { LlamaHparams } from './config';
import type { ModelWeights } from './weights';

/** One sequence's keys and values, [layer][position][kvDim] each. */
export class ReferenceCache {
  readonly keys: Float32Array;
  readonly values: Float32Array;
  constructor(
    hp: LlamaHparams,
    readonly context: number,
    readonly f16: boolean,
  ) {
    const n = hp.layers * context * hp.kvHeads * hp.headDim;
    this.keys = new Float32Array(n);
    this.values = new Float32Array(n);
  }
}

const f32 = Math.fround;

function roundF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

export class ReferenceDecoder {
  private readonly x: Float32Array;
  private readonly xn: Float32Array;
  private readonly q: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly att: Float32Array;
  private readonly proj: Float32Array;
  private readonly gate: Float32Array;
  private readonly up: Float32Array;
  private readonly cs: Float32Array;
  private scores: Float32Array;
  private readonly embedRow: QuantizedMatrix[];

  constructor(
    readonly hp: LlamaHparams,
    readonly weights: ModelWeights,
    /** whose matmuls it runs: the JS kernels, or (in tests) the native ones, to check everything else bit for bit */
    private readonly kernels: Backend = jsBackend,
  ) {
    const qdim = hp.heads * hp.headDim;
    const kvdim = hp.kvHeads * hp.headDim;
    this.x = new Float32Array(hp.hidden);
    this.xn = new Float32Array(hp.hidden);
    this.q = new Float32Array(qdim);
    this.k = new Float32Array(kvdim);
    this.v = new Float32Array(kvdim);
    this.att = new Float32Array(qdim);
    this.proj = new Float32Array(hp.hidden);
    this.gate = new Float32Array(hp.ffn);
    this.up = new Float32Array(hp.ffn);
    this.cs = new Float32Array(hp.ropeDims);
    this.scores = new Float32Array(64);
    this.embedRow = [];
  }

  /** Token `token` at position `pos` of `cache`; the logits go to `logits` when given. */
  decodeRow(cache: ReferenceCache, token: number, pos: number, logits: Float32Array | null): void {
    const hp = this.hp;
    const w = this.weights;
    const H = hp.hidden;
    const hd = hp.headDim;
    const qdim = hp.heads * hd;
    const kvdim = hp.kvHeads * hd;
    const group = hp.heads / hp.kvHeads;
    const { x, xn, q, k, v, att, proj, gate, up } = this;
    const e = w.tokEmbd;
    const rb = e.data.byteLength / e.rows;
    jsBackend.dequantize(e.type, e.data.subarray(token * rb, (token + 1) * rb), 1, H, x);
    this.ropeAngles(pos);
    if (this.scores.length < pos + 1) this.scores = new Float32Array(Math.max(pos + 1, this.scores.length * 2));
    const scores = this.scores;
    const scale = f32(1 / Math.sqrt(hd));
    const T = cache.context;
    for (let l = 0; l < hp.layers; l++) {
      const L = w.layers[l];
      rmsNorm(x, L.attnNorm, xn, H, hp.normEps);
      this.mm(L.wq, xn, q);
      this.mm(L.wk, xn, k);
      this.mm(L.wv, xn, v);
      this.rope(q, hp.heads);
      this.rope(k, hp.kvHeads);
      const base = l * T * kvdim;
      const at = base + pos * kvdim;
      for (let i = 0; i < kvdim; i++) {
        cache.keys[at + i] = cache.f16 ? roundF16(k[i]) : k[i];
        cache.values[at + i] = cache.f16 ? roundF16(v[i]) : v[i];
      }
      for (let h = 0; h < hp.heads; h++) {
        const qo = h * hd;
        const ko = base + Math.floor(h / group) * hd;
        let mx = -Infinity;
        // an f16 cache takes llama.cpp's f16 attention: query and softmax weights rounded to f16 (see llama.cc)
        if (cache.f16) for (let i = 0; i < hd; i++) q[qo + i] = roundF16(q[qo + i]);
        for (let t = 0; t <= pos; t++) {
          let s = 0;
          const kt = ko + t * kvdim;
          for (let i = 0; i < hd; i++) s += q[qo + i] * cache.keys[kt + i];
          s = f32(f32(s) * scale);
          scores[t] = s;
          if (s > mx) mx = s;
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) {
          const p = f32(Math.exp(scores[t] - mx));
          scores[t] = p;
          sum += p;
        }
        const inv = f32(1 / sum);
        for (let t = 0; t <= pos; t++) scores[t] = cache.f16 ? roundF16(scores[t] * inv) : scores[t] * inv;
        for (let i = 0; i < hd; i++) {
          let s = 0;
          for (let t = 0; t <= pos; t++) s += scores[t] * cache.values[ko + t * kvdim + i];
          att[qo + i] = s;
        }
      }
      this.mm(L.wo, att, proj);
      for (let i = 0; i < H; i++) x[i] += proj[i];
      rmsNorm(x, L.ffnNorm, xn, H, hp.normEps);
      this.mm(L.gate, xn, gate);
      this.mm(L.up, xn, up);
      for (let i = 0; i < hp.ffn; i++) {
        const g = gate[i];
        gate[i] = f32(g / f32(1 + f32(Math.exp(-g)))) * up[i];
      }
      this.mm(L.down, gate, proj);
      for (let i = 0; i < H; i++) x[i] += proj[i];
    }
    if (!logits) return;
    rmsNorm(x, w.outNorm, xn, H, hp.normEps);
    this.mm(w.output, xn, logits);
    void qdim;
  }

  private mm(w: QuantizedMatrix, x: Float32Array, out: Float32Array): void {
    this.kernels.matmul(w.type, w.data, w.rows, w.cols, x, 1, out, 0, w.layout === 'interleaved16' ? 1 : 0);
  }

  private ropeAngles(pos: number): void {
    ropeAngles(this.hp, this.weights.ropeFreqs, pos, this.cs);
  }

  private rope(x: Float32Array, heads: number): void {
    applyRope(this.hp, x, 0, heads, this.cs);
  }
}

/** cos and sin of each rotated pair's angle at `pos`, interleaved into cs (ropeDims floats), as ggml's rope cache computes them. */
export function ropeAngles(hp: LlamaHparams, freqs: Float32Array | null, pos: number, cs: Float32Array): void {
  const pairs = hp.ropeDims / 2;
  const thetaScale = f32(Math.pow(f32(hp.ropeBase), f32(-2 / hp.ropeDims)));
  let base = f32(pos);
  for (let j = 0; j < pairs; j++) {
    const theta = f32(f32(hp.ropeFreqScale) * f32(base / (freqs ? freqs[j] : 1)));
    cs[2 * j] = Math.cos(theta);
    cs[2 * j + 1] = Math.sin(theta);
    base = f32(base * thetaScale);
  }
}

/** Rotates `heads` heads of x starting at x[off] by the angles in cs. */
export function applyRope(hp: LlamaHparams, x: Float32Array, off: number, heads: number, cs: Float32Array): void {
  const pairs = hp.ropeDims / 2;
  for (let h = 0; h < heads; h++) {
    const o = off + h * hp.headDim;
    for (let j = 0; j < pairs; j++) {
      const a = o + (hp.ropeNeox ? j : 2 * j);
      const b = o + (hp.ropeNeox ? j + pairs : 2 * j + 1);
      const x0 = x[a];
      const x1 = x[b];
      x[a] = x0 * cs[2 * j] - x1 * cs[2 * j + 1];
      x[b] = x0 * cs[2 * j + 1] + x1 * cs[2 * j];
    }
  }
}


/** out[o..o+n) = RMSNorm of x[xo..xo+n) times g. */
export function rmsNorm(x: Float32Array, g: Float32Array, out: Float32Array, n: number, eps: number, xo = 0, oo = 0): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += f32(x[xo + i] * x[xo + i]);
  const scale = f32(1 / f32(Math.sqrt(f32(f32(ss / n) + f32(eps)))));
  for (let i = 0; i < n; i++) out[oo + i] = f32(x[xo + i] * scale) * g[i];
}

// GPTQ and AWQ over a whole llama model: runs the model on calibration
// sequences one layer at a time, all tokens at once, collects the inputs of
// each linear layer and quantizes it on them. Memory holds the hidden states
// of the calibration tokens, one layer's weights in f32 and its inputs: never
// the model.
//
// GPTQ runs "true-sequentially" (as AutoGPTQ's default): q, k and v are
// quantized on the layer's input, then the attention runs on the quantized
// q, k, v to give o its inputs, and so on; the next layer sees the quantized
// layer's output, so each layer compensates the error of the ones before.
//
// AWQ follows AutoAWQ: the inputs come from the full-precision layer, and the
// scales are folded so that the model computes the same function before
// quantization: 1/s of q/k/v's shared scales into attn_norm, of gate/up's into
// ffn_norm, of down's into up's rows, and of o's into v's rows where o and v
// have the same width (no grouped-query attention; otherwise o keeps s = 1 and
// only its clipping is searched). q and k are not clipped (AutoAWQ leaves
// them unclipped: attention scores are sensitive to their largest weights).

import { awqAsync, gptqAsync, type CalibratedType } from '../calibrated';
import { QkError } from '../errors';
import { dequantize, matmulAsync, quantize } from '../index';
import { type QuantizedMatrix, TYPES, type WeightType } from '../types';
import type { LlamaHparams } from './config';
import { applyRope, rmsNorm, ropeAngles } from './reference';
import type { ModelWeights } from './weights';

export type CalibrationMethod = 'gptq' | 'awq';

export interface CalibrationProgress {
  readonly layer: number;
  readonly layers: number;
  /** the tensor being quantized, or 'forward' */
  readonly step: string;
  readonly elapsedMs: number;
}

export interface CalibrateOptions {
  readonly method: CalibrationMethod;
  /** The type the recipe gives each tensor, by its GGUF name; types GPTQ/AWQ cannot write (f16...) are quantized plainly. */
  readonly typeOf: (name: string) => WeightType;
  readonly onProgress?: (p: CalibrationProgress) => void;
}

/** What calibration replaces: quantized matrices, and the norms AWQ rescaled (f32). */
export type CalibratedTensors = Map<string, { readonly type: WeightType; readonly data: Uint8Array } | { readonly type: 'norm'; readonly values: Float32Array }>;

const CALIBRATED: readonly string[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k'];

function f32Matrix(w: Float32Array, rows: number, cols: number): QuantizedMatrix {
  return { type: 'f32', rows, cols, data: new Uint8Array(w.buffer, w.byteOffset, w.byteLength) };
}

async function mm(w: QuantizedMatrix, x: Float32Array, n: number): Promise<Float32Array> {
  return matmulAsync(w, x, n);
}

function normRows(x: Float32Array, g: Float32Array, n: number, h: number, eps: number): Float32Array {
  const out = new Float32Array(n * h);
  for (let t = 0; t < n; t++) rmsNorm(x, g, out, h, eps, t * h, t * h);
  return out;
}

/**
 * Runs GPTQ or AWQ on every linear layer of the model, on `sequences` (token
 * ids, each sequence starting at position 0, all of the same length).
 */
export async function calibrateLlama(hp: LlamaHparams, w: ModelWeights, sequences: readonly Int32Array[], opts: CalibrateOptions): Promise<CalibratedTensors> {
  const started = Date.now();
  const S = sequences.length;
  if (S === 0) throw new QkError('ERR_QK_ARG', 'calibration needs at least one sequence of tokens');
  const T = sequences[0].length;
  if (T < 2 || sequences.some((s) => s.length !== T)) throw new QkError('ERR_QK_ARG', 'calibration sequences must all have the same length, at least 2');
  const n = S * T;
  const H = hp.hidden;
  const hd = hp.headDim;
  const qdim = hp.heads * hd;
  const kvdim = hp.kvHeads * hd;
  const out: CalibratedTensors = new Map();

  // The embeddings of every calibration token.
  let x = new Float32Array(n * H);
  const e = w.tokEmbd;
  const erb = e.data.byteLength / e.rows;
  for (let s = 0; s < S; s++) {
    for (let t = 0; t < T; t++) {
      const id = sequences[s][t];
      if (!(id >= 0 && id < e.rows)) throw new QkError('ERR_QK_VALUE', `calibration token ${id} is outside the vocabulary (${e.rows})`);
      x.set(dequantize({ type: e.type, rows: 1, cols: H, data: e.data.subarray(id * erb, (id + 1) * erb) }), (s * T + t) * H);
    }
  }
  // cos/sin per position, shared by every layer.
  const cs = new Float32Array(T * hp.ropeDims);
  for (let t = 0; t < T; t++) ropeAngles(hp, w.ropeFreqs, t, cs.subarray(t * hp.ropeDims, (t + 1) * hp.ropeDims));

  const progress = (layer: number, step: string) => opts.onProgress?.({ layer, layers: hp.layers, step, elapsedMs: Date.now() - started });

  for (let l = 0; l < hp.layers; l++) {
    const L = w.layers[l];
    const name = (t: string) => `blk.${l}.${t}.weight`;
    const fp = (m: QuantizedMatrix) => dequantize(m);
    const W = { q: fp(L.wq), k: fp(L.wk), v: fp(L.wv), o: fp(L.wo), gate: fp(L.gate), up: fp(L.up), down: fp(L.down) };
    const type = {
      q: opts.typeOf(name('attn_q')), k: opts.typeOf(name('attn_k')), v: opts.typeOf(name('attn_v')), o: opts.typeOf(name('attn_output')),
      gate: opts.typeOf(name('ffn_gate')), up: opts.typeOf(name('ffn_up')), down: opts.typeOf(name('ffn_down')),
    };
    const gguf = { q: name('attn_q'), k: name('attn_k'), v: name('attn_v'), o: name('attn_output'), gate: name('ffn_gate'), up: name('ffn_up'), down: name('ffn_down') };
    const put = (key: keyof typeof W, m: QuantizedMatrix) => out.set(gguf[key], { type: m.type, data: m.data });

    if (opts.method === 'gptq') {
      // Layers that read the same input and get the same type are one GPTQ
      // call on their rows stacked: rows never interact in GPTQ (they share
      // the Hessian only), so this is the same result for one Hessian and
      // one factorization instead of three (q, k, v) or two (gate, up).
      const quant = async (keys: (keyof typeof W)[], rowsOf: number[], cols: number, calib: Float32Array): Promise<QuantizedMatrix[]> => {
        const result: QuantizedMatrix[] = new Array(keys.length);
        const byType = new Map<WeightType, number[]>();
        keys.forEach((k, i) => byType.set(type[k], [...(byType.get(type[k]) ?? []), i]));
        for (const [t, members] of byType) {
          progress(l, members.map((i) => gguf[keys[i]]).join('+'));
          const total = members.reduce((a, i) => a + rowsOf[i], 0);
          const stacked = stackRows(members.map((i) => W[keys[i]]));
          const m = CALIBRATED.includes(t) ? (await gptqAsync(stacked, total, cols, calib, { type: t as CalibratedType })).matrix : quantize(stacked, total, cols, t);
          const rb = m.data.byteLength / total;
          let r0 = 0;
          for (const i of members) {
            const part: QuantizedMatrix = Object.freeze({ type: m.type, rows: rowsOf[i], cols, data: m.data.subarray(r0 * rb, (r0 + rowsOf[i]) * rb) });
            r0 += rowsOf[i];
            put(keys[i], part);
            result[i] = part;
          }
        }
        return result;
      };
      const xn = normRows(x, L.attnNorm, n, H, hp.normEps);
      const [qm, km, vm] = await quant(['q', 'k', 'v'], [qdim, kvdim, kvdim], H, xn);
      progress(l, 'forward');
      const att = await attention(hp, await mm(qm, xn, n), await mm(km, xn, n), await mm(vm, xn, n), S, T, cs);
      const [om] = await quant(['o'], [H], qdim, att);
      addInto(x, await mm(om, att, n));
      const hn = normRows(x, L.ffnNorm, n, H, hp.normEps);
      const [gm, um] = await quant(['gate', 'up'], [hp.ffn, hp.ffn], H, hn);
      progress(l, 'forward');
      const act = swiglu(await mm(gm, hn, n), await mm(um, hn, n));
      const [dm] = await quant(['down'], [H], hp.ffn, act);
      addInto(x, await mm(dm, act, n));
      continue;
    }

    // AWQ: every input from the full-precision layer first.
    progress(l, 'forward');
    const xn = normRows(x, L.attnNorm, n, H, hp.normEps);
    const f = (key: keyof typeof W, rows: number, cols: number) => f32Matrix(W[key], rows, cols);
    const att = await attention(hp, await mm(f('q', qdim, H), xn, n), await mm(f('k', kvdim, H), xn, n), await mm(f('v', kvdim, H), xn, n), S, T, cs);
    const x1 = x.slice();
    addInto(x1, await mm(f('o', H, qdim), att, n));
    const hn = normRows(x1, L.ffnNorm, n, H, hp.normEps);
    const act = swiglu(await mm(f('gate', hp.ffn, H), hn, n), await mm(f('up', hp.ffn, H), hn, n));
    const next = x1;
    addInto(next, await mm(f('down', H, hp.ffn), act, n));

    // One scale search for each group of layers sharing an input; each member
    // is then quantized with its own type on those scales.
    const group = async (keys: (keyof typeof W)[], rowsOf: number[], cols: number, calib: Float32Array, clip: (k: keyof typeof W) => boolean, fixed?: Float32Array): Promise<Float32Array> => {
      const lead = keys.find((k) => CALIBRATED.includes(type[k])) ?? keys[0];
      let scales = fixed;
      if (scales === undefined) {
        if (!CALIBRATED.includes(type[lead])) return new Float32Array(cols).fill(1);
        progress(l, keys.map((k) => gguf[k]).join('+'));
        const total = rowsOf.reduce((a, b) => a + b, 0);
        const joint = stackRows(keys.map((k) => W[k]));
        scales = (await awqAsync(joint, total, cols, calib, { type: type[lead] as CalibratedType, clip: false })).inputScales;
      }
      for (const [i, k] of keys.entries()) {
        progress(l, gguf[k]);
        const t = type[k];
        if (CALIBRATED.includes(t)) {
          put(k, (await awqAsync(W[k], rowsOf[i], cols, calib, { type: t as CalibratedType, inputScales: scales, clip: clip(k) })).matrix);
        } else {
          const scaled = W[k].slice();
          for (let r = 0; r < rowsOf[i]; r++) for (let j = 0; j < cols; j++) scaled[r * cols + j] *= scales[j];
          put(k, quantize(scaled, rowsOf[i], cols, t));
        }
      }
      return scales;
    };
    const always = () => true;
    const sDown = await group(['down'], [H], hp.ffn, act, always);
    scaleRows(W.up, hp.ffn, H, sDown);
    if (qdim === kvdim) {
      const sO = await group(['o'], [H], qdim, att, always);
      scaleRows(W.v, kvdim, H, sO);
    } else {
      await group(['o'], [H], qdim, att, always, new Float32Array(qdim).fill(1));
    }
    const sGu = await group(['gate', 'up'], [hp.ffn, hp.ffn], H, hn, always);
    const sQkv = await group(['q', 'k', 'v'], [qdim, kvdim, kvdim], H, xn, (k) => k === 'v');
    out.set(name('attn_norm'), { type: 'norm', values: Float32Array.from(L.attnNorm, (g, j) => g / sQkv[j]) });
    out.set(name('ffn_norm'), { type: 'norm', values: Float32Array.from(L.ffnNorm, (g, j) => g / sGu[j]) });
    x = next;
  }
  return out;
}

/** Row r of w (rows x cols) divided by s[r]: folds the next layer's input scales into this layer's outputs. */
function scaleRows(w: Float32Array, rows: number, cols: number, s: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const inv = 1 / s[r];
    for (let j = 0; j < cols; j++) w[r * cols + j] *= inv;
  }
}

/** The matrices' rows one after another (layers that read one input, as one matrix). */
function stackRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function addInto(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

function swiglu(g: Float32Array, u: Float32Array): Float32Array {
  for (let i = 0; i < g.length; i++) {
    const v = g[i];
    g[i] = Math.fround(v / Math.fround(1 + Math.fround(Math.exp(-v)))) * u[i];
  }
  return g;
}

/**
 * Causal attention of S sequences of T tokens: q (n x qdim), k and v (n x
 * kvdim) before RoPE; the result is n x qdim. Scores and the weighted sums
 * run as f32 matmuls, a head of a sequence at a time.
 */
async function attention(hp: LlamaHparams, q: Float32Array, k: Float32Array, v: Float32Array, S: number, T: number, cs: Float32Array): Promise<Float32Array> {
  const hd = hp.headDim;
  const qdim = hp.heads * hd;
  const kvdim = hp.kvHeads * hd;
  const group = hp.heads / hp.kvHeads;
  const rd = hp.ropeDims;
  for (let i = 0; i < S * T; i++) {
    const c = cs.subarray((i % T) * rd, (i % T + 1) * rd);
    applyRope(hp, q, i * qdim, hp.heads, c);
    applyRope(hp, k, i * kvdim, hp.kvHeads, c);
  }
  const out = new Float32Array(S * T * qdim);
  const qh = new Float32Array(T * hd);
  const kh = new Float32Array(T * hd);
  const vt = new Float32Array(hd * T);
  const scale = 1 / Math.sqrt(hd);
  for (let s = 0; s < S; s++) {
    for (let kv = 0; kv < hp.kvHeads; kv++) {
      for (let t = 0; t < T; t++) {
        const o = (s * T + t) * kvdim + kv * hd;
        kh.set(k.subarray(o, o + hd), t * hd);
        for (let i = 0; i < hd; i++) vt[i * T + t] = v[o + i];
      }
      for (let g = 0; g < group; g++) {
        const h = kv * group + g;
        for (let t = 0; t < T; t++) qh.set(q.subarray((s * T + t) * qdim + h * hd, (s * T + t) * qdim + h * hd + hd), t * hd);
        const p = await matmulAsync(f32Matrix(kh, T, hd), qh, T);
        for (let t = 0; t < T; t++) {
          const row = t * T;
          let mx = -Infinity;
          for (let j = 0; j <= t; j++) mx = Math.max(mx, p[row + j] * scale);
          let sum = 0;
          for (let j = 0; j <= t; j++) {
            const e = Math.exp(p[row + j] * scale - mx);
            p[row + j] = e;
            sum += e;
          }
          for (let j = 0; j <= t; j++) p[row + j] /= sum;
          p.fill(0, row + t + 1, row + T);
        }
        const o = await matmulAsync(f32Matrix(vt, hd, T), p, T);
        for (let t = 0; t < T; t++) out.set(o.subarray(t * hd, t * hd + hd), (s * T + t) * qdim + h * hd);
      }
    }
  }
  return out;
}

/** Bytes of a tensor of `type` with rows x cols elements (for callers checking a replacement). */
export function tensorBytes(type: WeightType, rows: number, cols: number): number {
  const t = TYPES[type];
  return rows * (cols / t.blockSize) * t.blockBytes;
}

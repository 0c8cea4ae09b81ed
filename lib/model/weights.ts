// A llama model's tensors, found by llama.cpp's names in an open GGUF file and
// checked against the hyperparameters: every matrix is the file's own bytes
// (a view on the mapping, or read once into memory), except the matmul
// weights asked for in the interleaved layout (copied once, at load) and the
// 1-D norms (copied, f16/bf16 widened to f32: a few KiB each).
import { QkError } from '../errors';
import type { GgufFile, GgufTensor } from '../gguf/types';
import { jsBackend } from '../js/backend';
import { interleaveMatrix, WeightArena } from '../layout';
import { INTERLEAVED_TYPES, layoutBytes, type QuantizedMatrix, type WeightType } from '../types';
import type { LlamaHparams } from './config';

export interface ModelLayer {
  readonly attnNorm: Float32Array;
  readonly wq: QuantizedMatrix;
  readonly wk: QuantizedMatrix;
  readonly wv: QuantizedMatrix;
  readonly wo: QuantizedMatrix;
  readonly ffnNorm: Float32Array;
  readonly gate: QuantizedMatrix;
  readonly up: QuantizedMatrix;
  readonly down: QuantizedMatrix;
}

export interface ModelWeights {
  /** vocab x hidden: one row is read per token */
  readonly tokEmbd: QuantizedMatrix;
  readonly layers: readonly ModelLayer[];
  readonly outNorm: Float32Array;
  /** vocab x hidden; the embedding itself when the file has no output.weight (tied) */
  readonly output: QuantizedMatrix;
  readonly tiedOutput: boolean;
  /** divisors of the RoPE angles per rotated pair (rope_freqs.weight, Llama 3.1), or null */
  readonly ropeFreqs: Float32Array | null;
}

/** Bytes of the matrices one decoded token reads (every layer's and the output head). */
export function weightBytesPerToken(w: ModelWeights): number {
  let b = w.output.data.byteLength;
  for (const l of w.layers) for (const m of [l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down]) b += m.data.byteLength;
  return b;
}

function shapeError(t: GgufTensor, want: readonly number[]): QkError {
  return new QkError('ERR_QK_SHAPE', `tensor ${t.name} has shape [${t.shape.join(', ')}] but the metadata implies [${want.join(', ')}]`);
}

/**
 * The tensors of a llama file. `hp.vocab` 0 means the metadata did not say;
 * the embedding's row count then decides, and the returned hparams carry it.
 * `copy`: read every tensor into memory once (mmap: false).
 */
export interface LoadWeightsOptions {
  /**
   * Types whose matmul weights get the interleaved layout (a copy made at
   * load, in memory; the file's mapped pages of each are released once
   * copied, so resident memory stays about one copy of the weights). The
   * embedding keeps the file's layout: its rows are read one at a time.
   */
  interleave?: readonly WeightType[];
}

export function loadWeights(file: GgufFile, hp: LlamaHparams, opts: LoadWeightsOptions = {}): { weights: ModelWeights; hparams: LlamaHparams } {
  const interleave = new Set(opts.interleave ?? []);
  const need = (name: string): GgufTensor => {
    const t = file.tensor(name);
    if (!t) throw new QkError('ERR_QK_ARG', `${file.path}: tensor ${name} is missing`);
    return t;
  };
  const embd = need('token_embd.weight');
  let vocab = hp.vocab;
  if (vocab === 0) vocab = embd.rows;
  const hparams: LlamaHparams = vocab === hp.vocab ? hp : Object.freeze({ ...hp, vocab });
  const matrix = (t: GgufTensor, rows: number, cols: number): QuantizedMatrix => {
    if (t.shape.length !== 2 || t.shape[0] !== cols || t.shape[1] !== rows) throw shapeError(t, [cols, rows]);
    if (t.type === null) throw new QkError('ERR_QK_TYPE', `tensor ${t.name} is ${t.typeName}, a type qkernels cannot compute with`);
    const m = t.matrix;
    if (!m || m.data.byteLength !== t.bytes) throw new QkError('ERR_QK_LENGTH', `tensor ${t.name}: its ${t.bytes} bytes could not be read`);
    return m;
  };
  // Weight copies (interleaved, or read from a file that is not mapped) live in huge-page chunks.
  const arena = new WeightArena();
  // A read file's tensor that is interleaved is read here first, one at a time.
  let staging: Uint8Array | null = null;
  // a matmul weight, in the layout it runs fastest in
  const weight = (t: GgufTensor, rows: number, cols: number): QuantizedMatrix => {
    if (t.shape.length !== 2 || t.shape[0] !== cols || t.shape[1] !== rows) throw shapeError(t, [cols, rows]);
    const tiles = t.type !== null && interleave.has(t.type) && INTERLEAVED_TYPES.includes(t.type);
    if (file.mode === 'mmap' && !tiles) return matrix(t, rows, cols);
    if (t.type === null) throw new QkError('ERR_QK_TYPE', `tensor ${t.name} is ${t.typeName}, a type qkernels cannot compute with`);
    if (!tiles) return Object.freeze({ type: t.type, rows, cols, data: t.readInto(arena.take(t.bytes)) });
    let src: Uint8Array;
    if (file.mode === 'read') {
      if (staging === null || staging.byteLength < t.bytes) staging = new Uint8Array(t.bytes);
      src = t.readInto(staging);
    } else {
      src = t.data;
    }
    if (src.byteLength !== t.bytes) throw new QkError('ERR_QK_LENGTH', `tensor ${t.name}: its ${t.bytes} bytes could not be read`);
    const im = interleaveMatrix({ type: t.type, rows, cols, data: src }, arena.take(layoutBytes(t.type, rows, cols, 'interleaved16')));
    file.evict(t);
    return im;
  };
  const vector = (t: GgufTensor, n: number): Float32Array => {
    if (t.shape.length !== 1 || t.shape[0] !== n) throw shapeError(t, [n]);
    const d = t.data;
    if (t.type === 'f32') {
      // Copied and their pages released: read every token, a view would keep
      // the mapping's page (a 2 MiB folio, where the kernel maps the file in
      // large folios) around each of them resident: 78 MB for TinyLlama.
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(d.subarray(0, 4 * n));
      file.evict(t);
      return out;
    }
    if (t.type === 'f16' || t.type === 'bf16') {
      const out = new Float32Array(n);
      jsBackend.dequantize(t.type, d, 1, n, out);
      return out;
    }
    throw new QkError('ERR_QK_TYPE', `tensor ${t.name} is ${t.typeName}; a norm must be f32, f16 or bf16`);
  };
  const qdim = hp.heads * hp.headDim;
  const kvdim = hp.kvHeads * hp.headDim;
  const tokEmbd = matrix(embd, vocab, hp.hidden);
  const layers: ModelLayer[] = [];
  for (let l = 0; l < hp.layers; l++) {
    const p = `blk.${l}.`;
    layers.push(
      Object.freeze({
        attnNorm: vector(need(p + 'attn_norm.weight'), hp.hidden),
        wq: weight(need(p + 'attn_q.weight'), qdim, hp.hidden),
        wk: weight(need(p + 'attn_k.weight'), kvdim, hp.hidden),
        wv: weight(need(p + 'attn_v.weight'), kvdim, hp.hidden),
        wo: weight(need(p + 'attn_output.weight'), hp.hidden, qdim),
        ffnNorm: vector(need(p + 'ffn_norm.weight'), hp.hidden),
        gate: weight(need(p + 'ffn_gate.weight'), hp.ffn, hp.hidden),
        up: weight(need(p + 'ffn_up.weight'), hp.ffn, hp.hidden),
        down: weight(need(p + 'ffn_down.weight'), hp.hidden, hp.ffn),
      }),
    );
  }
  const out = file.tensor('output.weight');
  const freqs = file.tensor('rope_freqs.weight');
  const weights: ModelWeights = Object.freeze({
    tokEmbd,
    layers: Object.freeze(layers),
    outNorm: vector(need('output_norm.weight'), hp.hidden),
    // tied: the embedding serves as the output head too, in its own layout (evicting it would page it in again per token)
    output: out ? weight(out, vocab, hp.hidden) : tokEmbd,
    tiedOutput: !out,
    ropeFreqs: freqs ? vector(freqs, hp.ropeDims / 2) : null,
  });
  return { weights, hparams };
}

// A synthetic llama GGUF: random weights (deterministic from a seed) in
// llama.cpp's tensor names, shapes and metadata keys, each tensor typed by the
// same recipe logic llama-quantize uses (lib/gguf/recipes.ts), with a working
// SentencePiece ("llama") vocabulary. llama.cpp loads and runs it, so a model
// runner can be checked against llama.cpp on any shape up to TinyLlama's and
// beyond without downloading a model.
//
// Memory stays bounded: tensors are generated and quantized one at a time
// inside writeGguf's lazy data callbacks, a few thousand rows at a time into
// the tensor's output buffer, so the f32 model never exists; at most two
// output tensors (the one being written, the next being made) are alive.
//
// Weights (all uniform, so bounded):
// - token_embd: std 1 (untied).
// - matrices: std 1/sqrt(cols) (activations keep their scale through a layer);
//   output.weight std 2/sqrt(hidden), so logits have a std near 2.
// - norms: uniform on [0.9, 1.1).
// - tied embeddings: token_embd std 1/sqrt(hidden) (rows of length ~1) and
//   output_norm 2 ± 0.2, so logits again have a std near 2. With embeddings of
//   std 1, the token's own embedding would dominate the residual stream and the
//   tied head would predict the input token again, forever.
// The f32 values depend only on the spec's shapes and the seed, never on the
// recipe: a q4_0 file and an f32 file of one spec hold the same weights.
import { quantize, rowBytes } from '../index';
import { QkError } from '../errors';
import { TYPES, type WeightType } from '../types';
import { isQuantizeTarget, modelInfo, planQuantization, targetNames, type PlanTensorInfo, type QuantizeTarget } from '../gguf/recipes';
import { ggmlType, type GgufTensorInput, type GgufValue } from '../gguf/types';
import { writeGguf } from '../gguf/writer';

export interface SyntheticLlamaSpec {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** FFN inner size */
  ffn: number;
  /** tokens in the vocabulary (at least 260: <unk>, <s>, </s>, 256 byte tokens and '▁') */
  vocab: number;
  /** llama.context_length; default 2048 */
  contextLength?: number;
  /** llama.rope.freq_base; default 10000 */
  ropeTheta?: number;
  /** llama.attention.layer_norm_rms_epsilon; default 1e-5 */
  normEps?: number;
  /** no output.weight: the head is token_embd (llama.cpp then uses it for both) */
  tiedOutput?: boolean;
  /** default 42 */
  seed?: number;
  /** general.name; default 'synthetic-llama' */
  name?: string;
}

export interface SyntheticLlamaOptions {
  /** after each tensor: bytes of the file written so far, and in all */
  onProgress?(done: number, total: number): void;
}

/** The special token ids of the synthetic vocabulary. */
export const SYNTHETIC_TOKENS = Object.freeze({ unk: 0, bos: 1, eos: 2, firstByte: 3, firstPiece: 259 });

/** The recipes writeSyntheticLlama accepts: lib/gguf/recipes.ts's targets. */
export function syntheticRecipes(): string[] {
  return targetNames();
}

const fail = (msg: string) => new QkError('ERR_QK_ARG', msg);

function checkSpec(s: SyntheticLlamaSpec): void {
  if (typeof s !== 'object' || s === null) throw fail('spec must be an object');
  for (const k of ['hidden', 'layers', 'heads', 'kvHeads', 'ffn', 'vocab'] as const) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw fail(`spec.${k} must be a positive integer; got ${String(v)}`);
  }
  if (s.hidden % s.heads) throw fail(`spec.hidden (${s.hidden}) must be a multiple of spec.heads (${s.heads})`);
  if (s.heads % s.kvHeads) throw fail(`spec.heads (${s.heads}) must be a multiple of spec.kvHeads (${s.kvHeads})`);
  if ((s.hidden / s.heads) % 2) throw fail(`the head size (${s.hidden / s.heads}) must be even for RoPE`);
  if (s.vocab < SYNTHETIC_TOKENS.firstPiece + 1) throw fail(`spec.vocab must be at least ${SYNTHETIC_TOKENS.firstPiece + 1} (3 special tokens, 256 byte tokens, '▁'); got ${s.vocab}`);
  if (s.contextLength !== undefined && !(Number.isInteger(s.contextLength) && s.contextLength >= 1)) throw fail(`spec.contextLength must be a positive integer; got ${String(s.contextLength)}`);
  if (s.ropeTheta !== undefined && !(s.ropeTheta > 0 && Number.isFinite(s.ropeTheta))) throw fail(`spec.ropeTheta must be a positive number; got ${String(s.ropeTheta)}`);
  if (s.normEps !== undefined && !(s.normEps > 0 && Number.isFinite(s.normEps))) throw fail(`spec.normEps must be a positive number; got ${String(s.normEps)}`);
}

// ---- random numbers (the xorshift of bench/timing.ts, kept here so lib does not import bench) ----

/** A 32-bit seed from integer parts (FNV-style mixing, never 0). */
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

/** Uniform on [-a, a) with a = sqrt(3) * std, plus `mean`, from two xorshift32 streams. */
function fillUniform(out: Float32Array, seed: number, std: number, mean = 0): void {
  let s1 = seed | 0 || 1;
  let s2 = (seed ^ 0x5bd1e995) | 0 || 2;
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
    out[i] = (s1 >> 16) * scale + mean;
    out[i + 1] = ((s1 << 16) >> 16) * scale + mean;
    out[i + 2] = (s2 >> 16) * scale + mean;
    out[i + 3] = ((s2 << 16) >> 16) * scale + mean;
  }
  for (; i < n; i++) {
    s1 ^= s1 << 13;
    s1 ^= s1 >>> 17;
    s1 ^= s1 << 5;
    out[i] = (s1 >> 16) * scale + mean;
  }
}

// Rows are generated in chunks of about this many elements, each chunk from its own seed.
const CHUNK_ELEMENTS = 1 << 20;

function chunkRows(cols: number): number {
  return Math.max(1, Math.floor(CHUNK_ELEMENTS / cols));
}

/**
 * Row r0..r1 of a synthetic tensor, as f32 (row-major, `cols` each). The
 * values of a tensor are fixed by (seed, std, mean, cols): chunk c holds rows
 * [c * chunkRows(cols), ...) from seed mixSeed(seed, c). Exposed so a test or
 * runner can regenerate any tensor's exact f32 source.
 */
export function syntheticRows(seed: number, std: number, mean: number, rows: number, cols: number, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(rows * cols);
  const cr = chunkRows(cols);
  for (let r = 0, c = 0; r < rows; r += cr, c++) {
    const n = Math.min(cr, rows - r);
    fillUniform(dst.subarray(r * cols, (r + n) * cols), mixSeed(seed, c), std, mean);
  }
  return dst;
}

// ---- vocabulary ----

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const DIGITS = '0123456789';
const PUNCT = `.,!?'"-:;()/&%$#@*+=<>[]{}_|~^\``;
const WORDS = (
  'the of and to in is it you that he was for on are with as his they be at one have this from or had by hot but some what there ' +
  'we can out other were all your when up use word how said an each she which do their time if will way about many then them ' +
  'would write like so these her long make thing see him two has look more day could go come did my sound no most number who ' +
  'over know water than call first people may down side been now find any new work part take get place made live where after ' +
  'back little only round man year came show every good me give our under name very through just form much great think say ' +
  'help low line before turn cause same mean differ move right boy old too does tell sentence set three want air well also play ' +
  'small end put home read hand port large spell add even land here must big high such follow act why ask men change went light ' +
  'kind off need house picture try us again animal point mother world near build self earth father hello once upon story model ' +
  'token llama quick brown fox jumps lazy dog'
).split(' ');
const SUFFIXES = ['ing', 'ed', 'er', 'es', 'ly', 'tion', 'ment', 'ness', 'est', 'al', 'ous', 'able', 're', 'ar', 'or', 'on', 'an', 'en', 'th', 'st'];

/** Lowercase strings of length n in lexicographic order (n >= 1). */
function* lettersOfLength(n: number): Generator<string> {
  const idx = new Array<number>(n).fill(0);
  for (;;) {
    yield idx.map((i) => LOWER[i]).join('');
    let k = n - 1;
    while (k >= 0 && ++idx[k] === 26) idx[k--] = 0;
    if (k < 0) return;
  }
}

export interface SyntheticVocab {
  tokens: string[];
  scores: Float32Array;
  /** llama_token_type: 1 normal, 2 unknown, 3 control, 6 byte */
  types: Int32Array;
}

/**
 * A SentencePiece vocabulary of exactly n distinct tokens: <unk> (0, unknown),
 * <s> (1) and </s> (2) (control), <0x00>..<0xFF> (3..258, byte fallback),
 * then '▁', letters, digits, punctuation, '▁'+letter, common English words
 * with '▁' and every prefix of them (so llama.cpp's merges can reach them),
 * common suffixes, then two-, three-, four-letter pieces, with and without
 * '▁', until n. Scores: 0 for special and byte tokens, -(rank) for pieces
 * (earlier pieces merge first).
 */
export function syntheticVocab(n: number): SyntheticVocab {
  if (!Number.isInteger(n) || n < SYNTHETIC_TOKENS.firstPiece + 1) throw fail(`a vocabulary needs at least ${SYNTHETIC_TOKENS.firstPiece + 1} tokens; got ${n}`);
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const seen = new Set<string>(tokens);
  const pieces: string[] = [];
  const add = (p: string) => {
    if (tokens.length + pieces.length >= n || seen.has(p)) return;
    seen.add(p);
    pieces.push(p);
  };
  const withPrefixes = (w: string) => {
    // '▁the' needs '▁t' and '▁th' to be reached by pairwise merges.
    for (let i = 2; i <= w.length; i++) add(w.slice(0, i));
  };
  add('▁');
  for (const c of LOWER + UPPER + DIGITS + PUNCT) add(c);
  for (const c of LOWER + UPPER) add('▁' + c);
  for (const w of WORDS) withPrefixes('▁' + w);
  for (const w of WORDS) withPrefixes('▁' + w[0].toUpperCase() + w.slice(1));
  for (const s of SUFFIXES) withPrefixes(s);
  for (let len = 2; tokens.length + pieces.length < n; len++) {
    for (const s of lettersOfLength(len)) {
      add(s);
      add('▁' + s);
      if (tokens.length + pieces.length >= n) break;
    }
  }
  const scores = new Float32Array(n);
  const types = new Int32Array(n);
  types[0] = 2;
  types[1] = 3;
  types[2] = 3;
  types.fill(6, 3, SYNTHETIC_TOKENS.firstPiece);
  for (let i = 0; i < pieces.length; i++) {
    scores[SYNTHETIC_TOKENS.firstPiece + i] = -i;
    types[SYNTHETIC_TOKENS.firstPiece + i] = 1;
  }
  tokens.push(...pieces);
  return { tokens, scores, types };
}

// ---- the model ----

interface SynthTensor {
  name: string;
  /** GGUF order: [cols, rows] or [n] */
  shape: number[];
  seed: number;
  std: number;
  mean: number;
}

/** The tensors of the spec in llama.cpp's names, GGUF shapes and write order (without types). */
export function syntheticTensors(spec: SyntheticLlamaSpec): { name: string; shape: number[] }[] {
  return planTensors(spec).map(({ name, shape }) => ({ name, shape }));
}

function planTensors(spec: SyntheticLlamaSpec): SynthTensor[] {
  const { hidden: H, ffn: F, vocab: V } = spec;
  const kvDim = spec.kvHeads * (H / spec.heads);
  const seed = spec.seed ?? 42;
  const out: SynthTensor[] = [];
  const mat = (name: string, rows: number, cols: number, tensorSeed: number, std = 1 / Math.sqrt(cols)) =>
    out.push({ name, shape: [cols, rows], seed: tensorSeed, std, mean: 0 });
  // Uniform with half-width 0.1 around 1 (std 0.1 / sqrt(3)).
  const norm = (name: string, tensorSeed: number, scale = 1) => out.push({ name, shape: [H], seed: tensorSeed, std: (0.1 / Math.sqrt(3)) * scale, mean: scale });
  const tied = spec.tiedOutput === true;
  mat('token_embd.weight', V, H, mixSeed(seed, 1), tied ? 1 / Math.sqrt(H) : 1);
  for (let l = 0; l < spec.layers; l++) {
    const p = `blk.${l}.`;
    norm(`${p}attn_norm.weight`, mixSeed(seed, 2, l));
    mat(`${p}attn_q.weight`, H, H, mixSeed(seed, 4, l, 0));
    mat(`${p}attn_k.weight`, kvDim, H, mixSeed(seed, 4, l, 1));
    mat(`${p}attn_v.weight`, kvDim, H, mixSeed(seed, 4, l, 2));
    mat(`${p}attn_output.weight`, H, H, mixSeed(seed, 4, l, 3));
    norm(`${p}ffn_norm.weight`, mixSeed(seed, 3, l));
    mat(`${p}ffn_gate.weight`, F, H, mixSeed(seed, 4, l, 4));
    mat(`${p}ffn_up.weight`, F, H, mixSeed(seed, 4, l, 5));
    mat(`${p}ffn_down.weight`, H, F, mixSeed(seed, 4, l, 6));
  }
  norm('output_norm.weight', mixSeed(seed, 5), tied ? 2 : 1);
  if (!tied) mat('output.weight', V, H, mixSeed(seed, 6), 2 / Math.sqrt(H));
  return out;
}

/**
 * The f32 values of one tensor of the spec (for tests and runners that want
 * the exact source of a quantized tensor): rows x cols row-major, a norm as
 * one row. Throws for a name the spec does not have.
 */
export function syntheticTensorF32(spec: SyntheticLlamaSpec, name: string): Float32Array {
  checkSpec(spec);
  const t = planTensors(spec).find((x) => x.name === name);
  if (!t) throw fail(`the synthetic model has no tensor '${name}'`);
  const cols = t.shape[0];
  const rows = t.shape.length > 1 ? t.shape[1] : 1;
  return syntheticRows(t.seed, t.std, t.mean, rows, cols);
}

/**
 * The per-tensor types `recipe` gives the spec's tensors (lib/gguf/recipes.ts,
 * from f32 sources), and the general.file_type it writes.
 */
export function syntheticPlan(spec: SyntheticLlamaSpec, recipe: string): { fileType: number; tensors: { name: string; shape: number[]; ggmlType: number; type: WeightType; reason?: string }[] } {
  checkSpec(spec);
  if (!isQuantizeTarget(recipe)) throw new QkError('ERR_QK_TYPE', `unknown recipe '${String(recipe)}'; expected one of ${targetNames().join(', ')}`);
  const ts = planTensors(spec);
  const infos: PlanTensorInfo[] = ts.map((t) => ({ name: t.name, shape: t.shape, ggmlType: TYPES.f32.ggmlId }));
  const meta = { 'general.architecture': 'llama', 'llama.block_count': spec.layers, 'llama.attention.head_count': spec.heads, 'llama.attention.head_count_kv': spec.kvHeads };
  const plan = planQuantization(recipe as QuantizeTarget, infos, modelInfo(meta, infos));
  return {
    fileType: plan.fileType,
    tensors: ts.map((t, i) => {
      const p = plan.tensors[i];
      const wt = ggmlType(p.ggmlType)?.weightType;
      if (!wt) throw new QkError('ERR_QK_TYPE', `recipe '${recipe}' chose ggml type ${p.ggmlType} for '${t.name}', which qkernels cannot write`);
      return { name: t.name, shape: t.shape, ggmlType: p.ggmlType, type: wt, ...(p.reason ? { reason: p.reason } : {}) };
    }),
  };
}

/** The GGUF metadata of the spec (llama.cpp's keys and value types). */
export function syntheticMetadata(spec: SyntheticLlamaSpec, fileType: number): Record<string, GgufValue> {
  checkSpec(spec);
  const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
  const f32 = (value: number): GgufValue => ({ type: 'float32', value: Math.fround(value) });
  const vocab = syntheticVocab(spec.vocab);
  return {
    'general.architecture': { type: 'string', value: 'llama' },
    'general.name': { type: 'string', value: spec.name ?? 'synthetic-llama' },
    'general.file_type': u32(fileType),
    'general.quantization_version': u32(2),
    'llama.context_length': u32(spec.contextLength ?? 2048),
    'llama.embedding_length': u32(spec.hidden),
    'llama.block_count': u32(spec.layers),
    'llama.feed_forward_length': u32(spec.ffn),
    'llama.attention.head_count': u32(spec.heads),
    'llama.attention.head_count_kv': u32(spec.kvHeads),
    'llama.rope.dimension_count': u32(spec.hidden / spec.heads),
    'llama.rope.freq_base': f32(spec.ropeTheta ?? 10000),
    'llama.attention.layer_norm_rms_epsilon': f32(spec.normEps ?? 1e-5),
    'llama.vocab_size': u32(spec.vocab),
    'tokenizer.ggml.model': { type: 'string', value: 'llama' },
    'tokenizer.ggml.tokens': { type: 'array', itemType: 'string', value: vocab.tokens },
    'tokenizer.ggml.scores': { type: 'array', itemType: 'float32', value: vocab.scores },
    'tokenizer.ggml.token_type': { type: 'array', itemType: 'int32', value: vocab.types },
    'tokenizer.ggml.bos_token_id': u32(SYNTHETIC_TOKENS.bos),
    'tokenizer.ggml.eos_token_id': u32(SYNTHETIC_TOKENS.eos),
    'tokenizer.ggml.unknown_token_id': u32(SYNTHETIC_TOKENS.unk),
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: true },
    'tokenizer.ggml.add_eos_token': { type: 'bool', value: false },
  };
}

function tensorData(t: SynthTensor, type: WeightType): Uint8Array {
  const cols = t.shape[0];
  const rows = t.shape.length > 1 ? t.shape[1] : 1;
  const rb = rowBytes(type, cols);
  const out = new Uint8Array(rows * rb);
  if (type === 'f32') {
    syntheticRows(t.seed, t.std, t.mean, rows, cols, new Float32Array(out.buffer, 0, rows * cols));
    return out;
  }
  const cr = chunkRows(cols);
  const scratch = new Float32Array(Math.min(cr, rows) * cols);
  for (let r = 0, c = 0; r < rows; r += cr, c++) {
    const n = Math.min(cr, rows - r);
    const src = scratch.subarray(0, n * cols);
    fillUniform(src, mixSeed(t.seed, c), t.std, t.mean);
    quantize(src, n, cols, type, { out: out.subarray(r * rb, (r + n) * rb) });
  }
  return out;
}

/**
 * Writes a synthetic llama model to `path` as GGUF v3, typed by `recipe` (any
 * target of lib/gguf/recipes.ts: 'f32', 'f16', 'bf16', 'q8_0', 'q4_0',
 * 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k' applied to every matrix
 * ("pure"), or the llama-quantize recipes 'q4_k_m', 'q4_k_s', 'q5_k_m',
 * 'q6_k', 'q8_0'). Norms are always f32.
 */
export async function writeSyntheticLlama(path: string, spec: SyntheticLlamaSpec, recipe: string, opts?: SyntheticLlamaOptions): Promise<{ path: string; bytes: number }> {
  const plan = syntheticPlan(spec, recipe);
  const ts = planTensors(spec);
  const tensors: GgufTensorInput[] = ts.map((t, i) => {
    const p = plan.tensors[i];
    return { name: t.name, ggmlType: p.ggmlType, shape: t.shape, data: () => tensorData(t, p.type) };
  });
  const onProgress = opts?.onProgress;
  const r = await writeGguf(path, {
    metadata: syntheticMetadata(spec, plan.fileType),
    tensors,
    onProgress: onProgress ? (p) => onProgress(p.bytesDone, p.bytes) : undefined,
  });
  return { path: r.path, bytes: r.bytes };
}

/** TinyLlama 1.1B's shape (hidden 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000). */
export const TINYLLAMA_SPEC: Readonly<SyntheticLlamaSpec> = Object.freeze({ hidden: 2048, layers: 22, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000 });

// The hyperparameters of a llama-family model, read from GGUF metadata
// (`<arch>.*` keys, as llama.cpp's converters write them) and checked against
// one another before any weight is touched.
import { QkError } from '../errors';
import type { GgufPlainValue } from '../gguf/types';

/** Architectures whose graph is llama's: RMSNorm, RoPE, GQA attention, SwiGLU, no biases. */
export const LLAMA_ARCHITECTURES: readonly string[] = Object.freeze(['llama']);

export interface LlamaHparams {
  readonly architecture: string;
  /** the context length the model was trained for (llama.context_length) */
  readonly trainedContext: number;
  readonly hidden: number;
  readonly layers: number;
  readonly ffn: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
  /** leading dimensions of each head RoPE rotates */
  readonly ropeDims: number;
  readonly ropeBase: number;
  /** positions are multiplied by this (linear RoPE scaling: 1 / scaling factor) */
  readonly ropeFreqScale: number;
  /** false: ggml's normal mode, pairs (2i, 2i+1), what llama files use */
  readonly ropeNeox: boolean;
  readonly normEps: number;
}

type Metadata = Readonly<Record<string, GgufPlainValue>>;

function bad(message: string): QkError {
  return new QkError('ERR_QK_ARG', message);
}

function intKey(md: Metadata, key: string, fallback?: number): number {
  const v = md[key];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw bad(`the model's metadata lacks ${key}`);
  }
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 2 ** 31) throw bad(`${key} must be a positive integer below 2^31; got ${String(v)}`);
  return n;
}

function floatKey(md: Metadata, key: string, fallback: number): number {
  const v = md[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(`${key} must be a finite positive number; got ${String(v)}`);
  return v;
}

/** The hyperparameters, or a QkError naming the key that is missing, malformed, or inconsistent. */
export function readHparams(md: Metadata): LlamaHparams {
  const arch = md['general.architecture'];
  if (typeof arch !== 'string') throw bad('the file has no general.architecture: is it a model?');
  if (!LLAMA_ARCHITECTURES.includes(arch)) {
    throw new QkError('ERR_QK_TYPE', `architecture '${arch}' is not supported; qkernels runs ${LLAMA_ARCHITECTURES.join(', ')}`);
  }
  const k = (name: string) => `${arch}.${name}`;
  const hidden = intKey(md, k('embedding_length'));
  const heads = intKey(md, k('attention.head_count'));
  const kvHeads = intKey(md, k('attention.head_count_kv'), heads);
  const headDim = intKey(md, k('attention.key_length'), Math.floor(hidden / heads));
  const valueDim = intKey(md, k('attention.value_length'), headDim);
  if (valueDim !== headDim) throw bad(`${k('attention.value_length')} (${valueDim}) differs from the key length (${headDim}); not supported`);
  if (heads % kvHeads) throw bad(`${k('attention.head_count')} (${heads}) must be a multiple of ${k('attention.head_count_kv')} (${kvHeads})`);
  if (headDim * heads !== hidden && md[k('attention.key_length')] === undefined) {
    throw bad(`${k('embedding_length')} (${hidden}) is not a multiple of ${k('attention.head_count')} (${heads})`);
  }
  const ropeDims = intKey(md, k('rope.dimension_count'), headDim);
  if (ropeDims > headDim || ropeDims % 2) throw bad(`${k('rope.dimension_count')} (${ropeDims}) must be even and at most the head size ${headDim}`);
  const scaling = md[k('rope.scaling.type')];
  let ropeFreqScale = 1;
  if (scaling === 'linear') {
    ropeFreqScale = 1 / floatKey(md, k('rope.scaling.factor'), 1);
  } else if (scaling !== undefined && scaling !== 'none') {
    throw bad(`RoPE scaling '${String(scaling)}' is not supported (linear and none are)`);
  } else if (md[k('rope.scale_linear')] !== undefined) {
    ropeFreqScale = 1 / floatKey(md, k('rope.scale_linear'), 1);
  }
  const tokens = md['tokenizer.ggml.tokens'];
  const vocabFromTokens = Array.isArray(tokens) ? tokens.length : undefined;
  // 0 when the metadata does not say: the embedding's shape decides (weights.ts).
  const vocab = md[k('vocab_size')] !== undefined ? intKey(md, k('vocab_size')) : (vocabFromTokens ?? 0);
  return Object.freeze({
    architecture: arch,
    trainedContext: intKey(md, k('context_length')),
    hidden,
    layers: intKey(md, k('block_count')),
    ffn: intKey(md, k('feed_forward_length')),
    heads,
    kvHeads,
    headDim,
    vocab,
    ropeDims,
    ropeBase: floatKey(md, k('rope.freq_base'), 10000),
    ropeFreqScale,
    ropeNeox: false,
    normEps: floatKey(md, k('attention.layer_norm_rms_epsilon'), 1e-5),
  });
}

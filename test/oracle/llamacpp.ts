// llama.cpp (node-llama-cpp 3.22.1) as the oracle for the model runner's
// tokens and logits.
//
// How each answer is obtained:
// - tokenize: LlamaModel.tokenize(text, special), which is llama.cpp's
//   common_tokenize(vocab, text, add_special = false, parse_special); BOS is
//   prepended here when asked (node-llama-cpp never adds it itself).
// - logits: LlamaContextSequence.controlledEvaluate with generateNext.logits
//   on the last input token gives the raw logits of every token of the
//   vocabulary (a Map sorted by logit; turned into a Float32Array by id). They
//   pass through the sequence's sampler chain first, which with the defaults
//   used here (temperature 0, no repeat penalty, no token bias, no grammar) is
//   the greedy sampler alone and leaves them untouched: these are logits, not
//   log-probabilities.
// - greedy: LlamaContextSequence.evaluate with temperature 0 (llama.cpp's
//   greedy sampler: the first maximum on ties, i.e. the lowest id) and no
//   repeat penalty (the sequence applies none unless given one; LlamaChat is
//   what adds defaults), and yieldEogToken: true, so EOS is yielded like any
//   token and generation goes on after it: exactly n tokens come back.
// Each call makes a context (sized for its tokens, `threads` exactly) and
// disposes it; models are cached per file (path, size and mtime), until
// closeOracle().
import * as fs from 'fs';
import type { LlamaModel } from 'node-llama-cpp';
import { asTokens, exactThreads, llamaCpp, modelVocabSize } from '../../bench/llamacpp';

export { llamaCpp, nodeLlamaCpp, benchPromptTokens } from '../../bench/llamacpp';

export interface OracleOptions {
  /**
   * threads of the evaluation (default 1: on this 2-core VM, 2 ggml threads
   * cost ~10-20 ms of synchronization a token, 20-40x a tiny model's compute)
   */
  threads?: number;
  /** KV cache element type (default 'f16', llama.cpp's default) */
  kvType?: 'f16' | 'f32';
  /** llama.cpp's flash attention (default 'auto', its default: on for the CPU) */
  flashAttention?: boolean | 'auto';
}

const models = new Map<string, Promise<LlamaModel>>();

function defaultThreads(): number {
  return 1;
}

/** The loaded model of a file (cached per path, size and mtime; mapped, CPU only). */
export async function oracleModel(modelPath: string): Promise<LlamaModel> {
  const st = fs.statSync(modelPath);
  const key = `${modelPath}\0${st.size}\0${st.mtimeMs}`;
  let p = models.get(key);
  if (!p) {
    // A file rewritten at the same path replaces the model loaded from the old one.
    for (const [k, old] of models) {
      if (k.startsWith(`${modelPath}\0`)) {
        models.delete(k);
        void old.then((m) => m.dispose()).catch(() => undefined);
      }
    }
    p = llamaCpp().then((llama) => llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true }));
    models.set(key, p);
    p.catch(() => models.delete(key));
  }
  return p;
}

/** Disposes every cached model. */
export async function closeOracle(): Promise<void> {
  const all = [...models.values()];
  models.clear();
  await Promise.all(all.map((p) => p.then((m) => m.dispose()).catch(() => undefined)));
}

/**
 * llama.cpp's tokens of `text`: addBos (default false) puts the model's BOS
 * first; special (default false) lets text such as '<s>' become the special
 * token rather than its characters. With both false this is exactly
 * LlamaModel.tokenize(text).
 */
export async function oracleTokenize(modelPath: string, text: string, opts?: { addBos?: boolean; special?: boolean }): Promise<number[]> {
  const model = await oracleModel(modelPath);
  const ids = model.tokenize(text, opts?.special === true).map(Number);
  if (opts?.addBos) {
    const bos = model.tokens.bos;
    if (bos == null) throw new Error(`${modelPath} has no BOS token`);
    ids.unshift(Number(bos));
  }
  return ids;
}

async function withSequence<T>(modelPath: string, tokens: number, opts: OracleOptions | undefined, fn: (seq: import('node-llama-cpp').LlamaContextSequence) => Promise<T>): Promise<T> {
  const model = await oracleModel(modelPath);
  const contextSize = Math.max(256, tokens + 8);
  const context = await model.createContext({
    contextSize,
    batchSize: Math.min(512, Math.max(32, tokens)),
    sequences: 1,
    threads: exactThreads(opts?.threads ?? defaultThreads()),
    flashAttention: opts?.flashAttention ?? 'auto',
    ...(opts?.kvType === 'f32' ? { experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } : {}),
  });
  try {
    return await fn(context.getSequence());
  } finally {
    await context.dispose();
  }
}

function checkTokens(tokens: readonly number[], what: string): void {
  if (!Array.isArray(tokens) || tokens.length === 0) throw new RangeError(`${what} must be a non-empty array of token ids`);
  for (const t of tokens) if (!Number.isInteger(t) || t < 0) throw new RangeError(`${what} holds ${String(t)}, not a token id`);
}

/**
 * The greedy continuation of promptTokens: exactly n tokens (EOS included
 * wherever it comes; generation does not stop at it), with temperature 0 and
 * no repeat penalty. The prompt is used as given (add BOS yourself).
 */
export async function oracleGreedy(modelPath: string, promptTokens: number[], n: number, opts?: OracleOptions): Promise<number[]> {
  checkTokens(promptTokens, 'promptTokens');
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be an integer >= 0; got ${String(n)}`);
  if (n === 0) return [];
  return withSequence(modelPath, promptTokens.length + n, opts, async (seq) => {
    const out: number[] = [];
    const it = seq.evaluate(asTokens(promptTokens), { temperature: 0, yieldEogToken: true });
    try {
      while (out.length < n) {
        const r = await it.next();
        if (r.done) throw new Error(`llama.cpp stopped after ${out.length} of ${n} tokens`);
        out.push(Number(r.value));
      }
    } finally {
      await it.return();
    }
    return out;
  });
}

/**
 * The raw logits (not log-probabilities) at the last position of `tokens`,
 * evaluated from an empty KV cache in one batch: a Float32Array of the whole
 * vocabulary, indexed by token id.
 */
export async function oracleLastLogits(modelPath: string, tokens: number[], opts?: OracleOptions): Promise<Float32Array> {
  checkTokens(tokens, 'tokens');
  const model = await oracleModel(modelPath);
  const vocab = modelVocabSize(model);
  return withSequence(modelPath, tokens.length, opts, async (seq) => {
    const input = [...asTokens(tokens.slice(0, -1)), [asTokens([tokens[tokens.length - 1]])[0], { generateNext: { logits: true } }] as const];
    const res = await seq.controlledEvaluate(input as Parameters<typeof seq.controlledEvaluate>[0]);
    const logits = res[tokens.length - 1]?.next.logits;
    if (!logits) throw new Error('llama.cpp returned no logits');
    if (logits.size !== vocab) throw new Error(`llama.cpp returned ${logits.size} logits for a vocabulary of ${vocab}`);
    const out = new Float32Array(vocab);
    for (const [t, v] of logits) out[Number(t)] = v;
    return out;
  });
}

/** The first index of the largest value (llama.cpp's greedy choice). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

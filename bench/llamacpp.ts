// llama.cpp (through node-llama-cpp, a devDependency) as the reference engine
// for the model runner: loading it, and timing it on a GGUF file with the
// same token ids our runner sees.
//
// node-llama-cpp is ESM only, and this package compiles to CommonJS: a plain
// `await import()` would be rewritten by tsc into require(), which Node 20
// refuses for ESM, so the import goes through a Function that tsc leaves alone.
//
// What node-llama-cpp does, as used here (3.22.1):
// - threads: LlamaContext's `threads` option; `{ ideal: n, min: n }` makes
//   every evaluation use exactly n (with getLlama's maxThreads 0; otherwise
//   maxThreads caps it).
// - LlamaContextSequence.evaluate(tokens, options) samples with the sequence's
//   own sampler chain: temperature defaults to 0 (llama.cpp's greedy sampler,
//   first maximum on ties), no repeat penalty, token bias, grammar or DRY unless
//   given (those defaults belong to LlamaChat, not to the sequence).
//   `yieldEogToken: true` keeps generating through EOS.
// - Each next() of the evaluate generator after the first decodes the token
//   yielded last and samples the next: one batch-1 decode step.
// - On this 2-core VM, 2 ggml threads cost ~10-20 ms of synchronization a
//   token on a tiny model (0.5 ms on 1 thread): compare tiny models on 1
//   thread; at TinyLlama size 2 threads win (q4_0: 21-24 tokens/s against 14).
import type { Llama, LlamaModel, Token } from 'node-llama-cpp';

export type NodeLlamaCpp = typeof import('node-llama-cpp');

// eslint-disable-next-line @typescript-eslint/no-implied-eval
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

let modulePromise: Promise<NodeLlamaCpp> | null = null;
let llamaPromise: Promise<Llama> | null = null;

/**
 * The node-llama-cpp module (imported once). Compiled by tsc, the Function's
 * import() does it; under vitest, whose module runner gives a Function no
 * import(), the literal import() below does (vitest keeps it an import; tsc
 * would make it a require, but it is never reached there).
 */
export function nodeLlamaCpp(): Promise<NodeLlamaCpp> {
  modulePromise ??= (importEsm('node-llama-cpp') as Promise<NodeLlamaCpp>).catch((e: unknown) => {
    if (e instanceof TypeError && /dynamic import callback/i.test(e.message)) return import('node-llama-cpp');
    throw e;
  });
  modulePromise.catch(() => {
    modulePromise = null;
  });
  return modulePromise;
}

/**
 * The llama.cpp instance, made once per process: CPU only, the prebuilt
 * binaries (never a build), errors only in the log, and maxThreads 0 (no cap:
 * a context's `threads` is then the count it uses; the default cap is
 * max(cpuMathCores, 4)).
 */
export function llamaCpp(): Promise<Llama> {
  llamaPromise ??= (async () => {
    const m = await nodeLlamaCpp();
    return m.getLlama({ gpu: false, build: 'never', logLevel: m.LlamaLogLevel.error, maxThreads: 0 });
  })();
  llamaPromise.catch(() => {
    llamaPromise = null;
  });
  return llamaPromise;
}

/** node-llama-cpp's Token is a branded number. */
export function asTokens(ids: readonly number[]): Token[] {
  return ids as unknown as Token[];
}

/** The context `threads` option that makes llama.cpp use exactly n threads. */
export function exactThreads(n: number): { ideal: number; min: number } {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`threads must be a positive integer; got ${String(n)}`);
  return { ideal: n, min: n };
}

/**
 * A deterministic prompt of n token ids for a vocabulary of `vocab` tokens:
 * BOS (1) first, then ids from a fixed xorshift stream in [259, vocab) (the
 * normal pieces of an SPM vocabulary after <unk>, <s>, </s> and the 256 byte
 * tokens; [3, vocab) for smaller vocabularies). Ids, not text, so that two
 * engines see the same input whatever their tokenizers do.
 */
export function benchPromptTokens(n: number, vocab: number, seed = 1): number[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer; got ${String(n)}`);
  if (!Number.isInteger(vocab) || vocab < 4) throw new RangeError(`vocab must be an integer >= 4; got ${String(vocab)}`);
  const lo = vocab > 300 ? 259 : 3;
  const out = [1];
  let s = (seed >>> 0) || 1;
  while (out.length < n) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out.push(lo + (s % (vocab - lo)));
  }
  return out;
}

/** Tokens in the model's vocabulary (token_embd's rows). */
export function modelVocabSize(model: LlamaModel): number {
  const t = model.fileInfo.tensorInfo?.find((x) => x.name === 'token_embd.weight');
  const n = t ? Number(t.dimensions[1]) : Number(model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length);
  if (!(n > 0)) throw new Error(`cannot tell the vocabulary size of ${model.filename ?? 'the model'}`);
  return n;
}

export interface LlamaCppRun {
  /** generated tokens after the first / their time */
  decodeTokensPerSecond: number;
  /** prompt tokens / time of one evaluation of the prompt (no sampling), on an empty KV cache */
  prefillTokensPerSecond: number;
  /** prompt evaluation + the first sampled token, on an empty KV cache */
  timeToFirstTokenMs: number;
  /**
   * process.memoryUsage().rss after load and generation: the whole process
   * (what earlier runs left included). With mmap, the mapped file's touched
   * pages count, and llama.cpp's CPU "repack" buffer holds a second copy of
   * q4_0/q4_K weights in its interleaved layout: about twice the weights.
   */
  rssBytes: number;
  /** LlamaModel load */
  loadMs: number;
  /** the context's thread count while running */
  threads: number;
  contextSize: number;
  /** the generated token ids (genTokens of them), for a comparison with another engine */
  tokens: number[];
}

export interface LlamaCppBenchOptions {
  threads: number;
  /** map the file (true) or read it into memory (false) */
  mmap: boolean;
  /** prompt length in tokens, e.g. 16 or 128 (ids from benchPromptTokens) */
  promptTokens: number;
  /** tokens to generate (greedy, through EOS), e.g. 64 */
  genTokens: number;
  /** prompt ids to use instead of benchPromptTokens(promptTokens, vocab) */
  prompt?: number[];
}

/**
 * Times llama.cpp on `modelPath`: load, a one-token warm-up, then prefill (the
 * prompt evaluated alone), then, from an empty cache again, the prompt plus
 * genTokens greedy tokens (time to first token, then decode speed).
 */
export async function benchLlamaCpp(modelPath: string, opts: LlamaCppBenchOptions): Promise<LlamaCppRun> {
  const { threads, mmap, genTokens } = opts;
  if (!Number.isInteger(genTokens) || genTokens < 2) throw new RangeError(`genTokens must be an integer >= 2; got ${String(genTokens)}`);
  const llama = await llamaCpp();
  const t0 = performance.now();
  const model: LlamaModel = await llama.loadModel({ modelPath, useMmap: mmap, gpuLayers: 0 });
  const loadMs = performance.now() - t0;
  try {
    const prompt = opts.prompt ?? benchPromptTokens(opts.promptTokens, modelVocabSize(model));
    const contextSize = Math.max(256, prompt.length + genTokens + 8);
    const context = await model.createContext({ contextSize, batchSize: Math.max(prompt.length, 32), sequences: 1, threads: exactThreads(threads) });
    try {
      const seq = context.getSequence();
      // Warm-up: thread pool, compute graph and buffers are made on the first decode.
      await seq.evaluateWithoutGeneratingNewTokens(asTokens(prompt.slice(0, 1)));
      await seq.clearHistory();

      let t = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(asTokens(prompt));
      const prefillMs = performance.now() - t;
      await seq.clearHistory();

      const tokens: number[] = [];
      const it = seq.evaluate(asTokens(prompt), { temperature: 0, yieldEogToken: true });
      t = performance.now();
      const first = await it.next();
      const ttft = performance.now() - t;
      if (first.done) throw new Error('llama.cpp generated nothing');
      tokens.push(first.value);
      t = performance.now();
      while (tokens.length < genTokens) {
        const r = await it.next();
        if (r.done) break;
        tokens.push(r.value);
      }
      const decodeMs = performance.now() - t;
      await it.return();
      const run: LlamaCppRun = {
        decodeTokensPerSecond: ((tokens.length - 1) * 1000) / decodeMs,
        prefillTokensPerSecond: (prompt.length * 1000) / prefillMs,
        timeToFirstTokenMs: ttft,
        rssBytes: process.memoryUsage().rss,
        loadMs,
        threads: context.currentThreads,
        contextSize: context.contextSize,
        tokens,
      };
      return run;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

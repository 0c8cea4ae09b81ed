// One engine timed on one GGUF file, in a process of its own (so that its
// resident memory is its own and neither engine warms the other's pages):
//
//   node dist/bench/runner.js qkernels|llama.cpp FILE THREADS mmap|read
//
// prints one JSON line, an EngineRun. The measures are llama.cpp's
// (bench/llamacpp.ts) and the same for qkernels: load; a one-token warm-up;
// prefill (a 128-token prompt evaluated alone, empty cache); then, from an
// empty cache again, a 16-token prompt with time to first token, and 64
// greedy tokens for the decode speed.
import * as fs from 'fs';
import { loadModel } from '../lib/model/model';
import { benchLlamaCpp, benchPromptTokens } from './llamacpp';

export interface EngineRun {
  engine: 'qkernels' | 'llama.cpp';
  file: string;
  fileBytes: number;
  threads: number;
  mmap: boolean;
  decodeTokensPerSecond: number;
  prefillTokensPerSecond: number;
  timeToFirstTokenMs: number;
  /** process RSS after the run */
  rssBytes: number;
  /** KV cache bytes of the decode sequence (qkernels; llama.cpp's is not reported) */
  kvBytes: number | null;
  loadMs: number;
  /** the 64 greedy tokens after the 16-token prompt */
  tokens: number[];
}

export const PREFILL_TOKENS = 128;
export const PROMPT_TOKENS = 16;
export const DECODE_TOKENS = 64;

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

export async function benchQkernels(file: string, threads: number, mmap: boolean): Promise<EngineRun> {
  const t0 = performance.now();
  const model = await loadModel(file, { threads, mmap, contextLength: 256 });
  const loadMs = performance.now() - t0;
  try {
    const vocab = model.hparams!.vocab;
    const long = benchPromptTokens(PREFILL_TOKENS, vocab);
    const prompt = benchPromptTokens(PROMPT_TOKENS, vocab);
    const warm = model.createSequence({ contextLength: 256 });
    await warm.evaluate(long.slice(0, 1));

    const pre = model.createSequence({ contextLength: 256 });
    let t = performance.now();
    await pre.evaluate(long);
    const prefillMs = performance.now() - t;

    const seq = model.createSequence({ contextLength: 256 });
    const tokens: number[] = [];
    t = performance.now();
    let logits = await seq.evaluate(prompt);
    tokens.push(argmax(logits));
    const ttft = performance.now() - t;
    const one = [0];
    t = performance.now();
    while (tokens.length < DECODE_TOKENS) {
      one[0] = tokens[tokens.length - 1];
      logits = await seq.evaluate(one);
      tokens.push(argmax(logits));
    }
    const decodeMs = performance.now() - t;
    // the warm-up's and the prefill's KV caches are garbage by now
    (globalThis as { gc?: () => void }).gc?.();
    const run: EngineRun = {
      engine: 'qkernels',
      file,
      fileBytes: fs.statSync(file).size,
      threads,
      mmap,
      decodeTokensPerSecond: ((DECODE_TOKENS - 1) * 1000) / decodeMs,
      prefillTokensPerSecond: (PREFILL_TOKENS * 1000) / prefillMs,
      timeToFirstTokenMs: ttft,
      rssBytes: process.memoryUsage().rss,
      kvBytes: seq.cacheBytes,
      loadMs,
      tokens,
    };
    return run;
  } finally {
    model.close();
  }
}

export async function benchEngine(engine: string, file: string, threads: number, mmap: boolean): Promise<EngineRun> {
  if (engine === 'qkernels') return benchQkernels(file, threads, mmap);
  if (engine !== 'llama.cpp') throw new Error(`unknown engine '${engine}'`);
  // Two runs, as llama.cpp's context is made for one prompt length: the
  // 128-token prompt for prefill, the 16-token one for TTFT and decode.
  const pre = await benchLlamaCpp(file, { threads, mmap, promptTokens: PREFILL_TOKENS, genTokens: 2 });
  const run = await benchLlamaCpp(file, { threads, mmap, promptTokens: PROMPT_TOKENS, genTokens: DECODE_TOKENS });
  return {
    engine: 'llama.cpp',
    file,
    fileBytes: fs.statSync(file).size,
    threads,
    mmap,
    decodeTokensPerSecond: run.decodeTokensPerSecond,
    prefillTokensPerSecond: pre.prefillTokensPerSecond,
    timeToFirstTokenMs: run.timeToFirstTokenMs,
    rssBytes: Math.max(pre.rssBytes, run.rssBytes),
    kvBytes: null,
    loadMs: run.loadMs,
    tokens: run.tokens,
  };
}

if (require.main === module) {
  const [engine, file, threads, mode] = process.argv.slice(2);
  benchEngine(engine, file, Number(threads), mode !== 'read').then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (e) => {
      console.error((e as Error).stack ?? String(e));
      process.exit(1);
    },
  );
}

// The llama.cpp oracle (test/oracle/llamacpp.ts) against itself and against
// node-llama-cpp's own calls: on the repository's llama.cpp-written
// golden-q4_k_s.gguf and on a synthetic file. Greedy continuations must be the
// argmax of the one-batch logits, step by step: this checks that the oracle's
// greedy path has no sampler (repeat penalty, top-k...) in it and that its
// logits are the model's, for every position.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticLlama } from '../lib/model/synthetic';
import { benchLlamaCpp, benchPromptTokens } from '../bench/llamacpp';
import { argmax, closeOracle, oracleGreedy, oracleLastLogits, oracleModel, oracleTokenize } from './oracle/llamacpp';

const GOLDEN = path.join(__dirname, 'fixtures', 'gguf', 'golden-q4_k_s.gguf');

let dir: string;
let synthetic: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-oracle-'));
  synthetic = path.join(dir, 'synthetic-q8_0.gguf');
  await writeSyntheticLlama(synthetic, { hidden: 128, layers: 3, heads: 4, kvHeads: 2, ffn: 256, vocab: 1000, seed: 3 }, 'q8_0');
});
afterAll(async () => {
  await closeOracle();
  fs.rmSync(dir, { recursive: true, force: true });
});

const files = () => [
  ['golden-q4_k_s', GOLDEN, 512],
  ['synthetic q8_0', synthetic, 1000],
] as const;

describe.each([0, 1])('llama.cpp oracle (file %i)', (which) => {
  const f = () => files()[which];

  it('tokenizes as the model does; addBos puts BOS first', async () => {
    const [, file] = f();
    const model = await oracleModel(file);
    for (const text of ['Hello world', ' the quick brown fox\njumps', 'é ☃ 123', '<s> and </s>']) {
      const own = model.tokenize(text).map(Number);
      expect(await oracleTokenize(file, text)).toEqual(own);
      expect(await oracleTokenize(file, text, { addBos: true })).toEqual([Number(model.tokens.bos), ...own]);
    }
    // special: the text '<s>' becomes the BOS token itself.
    expect(await oracleTokenize(file, '<s>', { special: true })).toEqual([1]);
    expect(await oracleTokenize(file, '<s>')).not.toContain(1);
  });

  it('greedy is deterministic and is the argmax of the logits at every step', async () => {
    const [, file, vocab] = f();
    const prompt = benchPromptTokens(6, vocab, 5);
    const n = 6;
    const a = await oracleGreedy(file, prompt, n);
    const b = await oracleGreedy(file, prompt, n);
    expect(a).toHaveLength(n);
    expect(b).toEqual(a);
    for (let i = 0; i < n; i++) {
      const logits = await oracleLastLogits(file, [...prompt, ...a.slice(0, i)]);
      expect(logits.length).toBe(vocab);
      const best = argmax(logits);
      // A tie (within float noise between batched and one-token evaluation) may go either way.
      if (best !== a[i]) expect(logits[best] - logits[a[i]], `step ${i}: greedy ${a[i]}, argmax ${best}`).toBeLessThan(1e-4);
    }
  });

  it('logits are finite, with a non-trivial range, and differ between positions', async () => {
    const [, file, vocab] = f();
    const prompt = benchPromptTokens(8, vocab, 9);
    const x = await oracleLastLogits(file, prompt);
    const y = await oracleLastLogits(file, prompt.slice(0, 5));
    expect(x.every(Number.isFinite)).toBe(true);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(hi - lo).toBeGreaterThan(0.5);
    let diff = 0;
    for (let i = 0; i < vocab; i++) diff = Math.max(diff, Math.abs(x[i] - y[i]));
    expect(diff).toBeGreaterThan(1e-3);
    // The same tokens give the same logits.
    expect(await oracleLastLogits(file, prompt)).toEqual(x);
  });
});

describe('oracleGreedy does not stop at EOS', () => {
  it('returns exactly n tokens when greedy decoding reaches EOS, and goes on after it', async () => {
    // A 260-token vocabulary makes EOS a likely greedy pick somewhere: look
    // for a (model, prompt) whose continuation has EOS before its end.
    let found: { out: number[]; prompt: number[]; file: string } | null = null;
    for (const seed of [2, 4, 5, 6, 1, 3]) {
      const file = path.join(dir, `eos-${seed}.gguf`);
      await writeSyntheticLlama(file, { hidden: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, vocab: 260, seed }, 'f32');
      for (let p = 1; p < 10 && !found; p++) {
        const prompt = benchPromptTokens(4, 260, p);
        const out = await oracleGreedy(file, prompt, 30);
        expect(out).toHaveLength(30);
        const i = out.indexOf(2);
        if (i >= 0 && i < 29) found = { out, prompt, file };
      }
      if (found) break;
    }
    expect(found, 'no greedy continuation reached EOS').not.toBeNull();
    const { out, prompt, file } = found!;
    const i = out.indexOf(2);
    // EOS was the argmax there, and what follows is the model's continuation after it.
    expect(argmax(await oracleLastLogits(file, [...prompt, ...out.slice(0, i)]))).toBe(2);
    expect(argmax(await oracleLastLogits(file, [...prompt, ...out.slice(0, i + 1)]))).toBe(out[i + 1]);
  });
});

describe('benchLlamaCpp', () => {
  it('times a small model and generates the oracle\'s greedy tokens', async () => {
    const r = await benchLlamaCpp(synthetic, { threads: 1, mmap: true, promptTokens: 16, genTokens: 8 });
    for (const k of ['decodeTokensPerSecond', 'prefillTokensPerSecond', 'timeToFirstTokenMs', 'rssBytes', 'loadMs'] as const) {
      expect(Number.isFinite(r[k]) && r[k] > 0, k).toBe(true);
    }
    expect(r.threads).toBe(1);
    expect(r.tokens).toEqual(await oracleGreedy(synthetic, benchPromptTokens(16, 1000), 8));
  });
});

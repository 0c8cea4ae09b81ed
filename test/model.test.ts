// The model runner against its own oracles: the native decoder against the
// TypeScript reference forward pass (on the JS kernels) for every weight
// recipe, prompt batches against token-by-token decoding, interleaved
// sequences against separate ones, generation against argmax of evaluate,
// and every malformed model or call ends in a QkError.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGguf } from '../lib/gguf/reader';
import { writeGguf } from '../lib/gguf/writer';
import type { GgufTensorInput, GgufValue } from '../lib/gguf/types';
import { QkError } from '../lib/errors';
import { loadModel, type Model } from '../lib/model/model';
import { writeSyntheticLlama, type SyntheticLlamaSpec } from '../lib/model/synthetic';
import { impl } from '../lib/runtime';

const native = impl.llama !== null;
let dir: string;

// 256-wide so the K-quant recipes apply; GQA (4 heads over 2 KV heads).
const SPEC: SyntheticLlamaSpec = { hidden: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512, vocab: 384, contextLength: 128, seed: 7 };
const RECIPES = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k_m', 'q4_k_s', 'q5_k_m', 'q6_k'];
const files = new Map<string, string>();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-model-'));
  for (const r of RECIPES) {
    const p = path.join(dir, `m-${r}.gguf`);
    await writeSyntheticLlama(p, SPEC, r);
    files.set(r, p);
  }
  const tied = path.join(dir, 'tied.gguf');
  await writeSyntheticLlama(tied, { ...SPEC, tiedOutput: true }, 'q8_0');
  files.set('tied', tied);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function tokens(n: number, vocab: number, seed: number): number[] {
  const out: number[] = [];
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(3 + (s % (vocab - 3)));
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function range(a: Float32Array): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of a) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return hi - lo;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

describe.skipIf(!native)('native decoder vs the TypeScript reference forward pass', () => {
  // With the native kernels under its matmuls, the reference runs everything
  // else (embedding, RMSNorm, RoPE, the KV cache, attention, SwiGLU) its own
  // way. Token by token (so both run the m = 1 kernels) the two differ only in
  // the last bits of attention's and the norms' float sums, which the q8
  // rounding of the next matmul's input mostly absorbs: measured 0 for most
  // recipes, at most 4e-8 of the logit range. 1e-5 catches any real
  // difference in how the runner computes (a wrong RoPE angle, position, cache
  // slot or head mapping moves the logits by percents).
  it.each([...RECIPES, 'tied'])('%s: with the native kernels, the reference gives the native logits', async (r) => {
    const ids = tokens(12, SPEC.vocab, 11);
    const a = await loadModel(files.get(r)!, { engine: 'native', kvType: 'f32', batchSize: 1 });
    const b = await loadModel(files.get(r)!, { engine: 'js', kvType: 'f32', referenceKernels: impl });
    try {
      const la = await a.evaluate(ids);
      const lb = await b.evaluate(ids);
      expect(range(lb)).toBeGreaterThan(0.5);
      expect(maxAbsDiff(la, lb)).toBeLessThan(1e-5 * range(lb));
      expect(argmax(la)).toBe(argmax(lb));
    } finally {
      a.close();
      b.close();
    }
  });

  // On the JS kernels as well, only summation order differs, but a last-bit
  // difference can move an activation across a q8 rounding boundary, and one
  // such step moves the logits by up to ~0.5% of their range (measured: q5_1,
  // 0.056 of 11.3 on this prompt; most recipes agree to 1e-7). The bound
  // catches a wrong kernel or layout in the model's shapes, which moves them
  // by far more.
  it.each([...RECIPES, 'tied'])('%s: on the JS kernels, the reference agrees to quantization noise', async (r) => {
    const ids = tokens(12, SPEC.vocab, 11);
    const a = await loadModel(files.get(r)!, { engine: 'native', kvType: 'f32', batchSize: 5 });
    const b = await loadModel(files.get(r)!, { engine: 'js', kvType: 'f32' });
    try {
      const la = await a.evaluate(ids);
      const lb = await b.evaluate(ids);
      expect(maxAbsDiff(la, lb)).toBeLessThan(1e-2 * range(lb));
    } finally {
      a.close();
      b.close();
    }
  });

  it('f16 KV cache: native and reference round keys and values alike', async () => {
    const ids = tokens(20, SPEC.vocab, 5);
    const a = await loadModel(files.get('q4_0')!, { engine: 'native', kvType: 'f16' });
    const b = await loadModel(files.get('q4_0')!, { engine: 'js', kvType: 'f16' });
    try {
      const la = await a.evaluate(ids);
      const lb = await b.evaluate(ids);
      expect(maxAbsDiff(la, lb)).toBeLessThan(1e-4 * range(lb));
    } finally {
      a.close();
      b.close();
    }
  });
});

describe.skipIf(!native)('batches and sequences', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(files.get('q4_k_m')!, { kvType: 'f32', batchSize: 7 });
  });
  afterAll(() => model.close());

  it('a prompt in batches of 7 gives the logits of token-by-token decoding', async () => {
    const ids = tokens(30, SPEC.vocab, 3);
    const batched = await model.evaluate(ids);
    const seq = model.createSequence();
    let last = new Float32Array(0);
    for (const t of ids) last = (await seq.evaluate([t])).slice();
    expect(seq.position).toBe(30);
    // Different batch sizes take different kernels (tiles, multi-row): summation order only.
    expect(maxAbsDiff(batched, last)).toBeLessThan(1e-4 * range(last));
  });

  it('model.step: prompts and single tokens of several sequences in one batch give each its own logits', async () => {
    const p1 = tokens(4, SPEC.vocab, 41);
    const p2 = tokens(3, SPEC.vocab, 42);
    const s1 = model.createSequence({ contextLength: 64 });
    const s2 = model.createSequence({ contextLength: 64 });
    await model.step([{ sequence: s1, tokens: p1 }, { sequence: s2, tokens: p2 }]);
    expect([s1.position, s2.position]).toEqual([4, 3]);
    expect(maxAbsDiff(s1.lastLogits, await model.evaluate(p1))).toBeLessThan(1e-4 * range(s1.lastLogits));
    expect(maxAbsDiff(s2.lastLogits, await model.evaluate(p2))).toBeLessThan(1e-4 * range(s2.lastLogits));
    // then one token each, as a server's decode step
    await model.step([{ sequence: s2, tokens: [7] }, { sequence: s1, tokens: [9] }]);
    expect(s1.tokens).toEqual([...p1, 9]);
    expect(s2.tokens).toEqual([...p2, 7]);
    expect(maxAbsDiff(s1.lastLogits, await model.evaluate([...p1, 9]))).toBeLessThan(1e-4 * range(s1.lastLogits));
    expect(maxAbsDiff(s2.lastLogits, await model.evaluate([...p2, 7]))).toBeLessThan(1e-4 * range(s2.lastLogits));
  });

  it('model.step rejects bad rows with a QkError and leaves the sequences as they were', async () => {
    const s1 = model.createSequence({ contextLength: 8 });
    const s2 = model.createSequence({ contextLength: 8 });
    await s1.evaluate([5, 6]);
    const other = await loadModel(files.get('q4_k_m')!, { batchSize: 7 });
    try {
      const bad: unknown[] = [
        [],
        [{ sequence: s1, tokens: [] }],
        [{ sequence: s1, tokens: [1] }, { sequence: s1, tokens: [2] }],
        [{ sequence: s1, tokens: [SPEC.vocab] }],
        [{ sequence: s1, tokens: [1, 2, 3, 4, 5, 6, 7] }],
        [{ sequence: s1, tokens: [1, 2, 3] }, { sequence: s2, tokens: [1, 2, 3, 4, 5] }],
        [{ sequence: other.createSequence(), tokens: [1] }],
        [{ sequence: {}, tokens: [1] }],
      ];
      for (const rows of bad) await expect(model.step(rows as never)).rejects.toThrow(QkError);
    } finally {
      other.close();
    }
    expect([s1.position, s2.position]).toEqual([2, 0]);
    expect(s1.tokens).toEqual([5, 6]);
  });

  it('interleaved sequences equal separate ones', async () => {
    const p1 = tokens(9, SPEC.vocab, 21);
    const p2 = tokens(14, SPEC.vocab, 22);
    const s1 = model.createSequence({ contextLength: 64 });
    const s2 = model.createSequence({ contextLength: 64 });
    const [l1, l2] = await Promise.all([s1.evaluate(p1).then((l) => l.slice()), s2.evaluate(p2).then((l) => l.slice())]);
    const alone1 = await model.evaluate(p1);
    const alone2 = await model.evaluate(p2);
    expect(maxAbsDiff(l1, alone1)).toBe(0);
    expect(maxAbsDiff(l2, alone2)).toBe(0);
  });

  it('a prompt gives the same logits in every sequence, whatever its context length or KV type', async () => {
    // Regression: V rows at addresses or strides the dot kernels peel
    // differently summed in another order per cache, so logits wobbled in the
    // last bits between sequences.
    const p = tokens(11, SPEC.vocab, 31);
    for (const kvType of ['f32', 'f16'] as const) {
      const m = await loadModel(files.get('q4_k_m')!, { kvType, batchSize: 7 });
      try {
        const ref = (await m.createSequence({ contextLength: 64 }).evaluate(p)).slice();
        for (const contextLength of [11, 13, 50, 100, 128]) {
          for (let rep = 0; rep < 3; rep++) {
            const l = await m.createSequence({ contextLength }).evaluate(p);
            expect(maxAbsDiff(l, ref)).toBe(0);
          }
        }
      } finally {
        m.close();
      }
    }
  });

  it('greedy generation follows the argmax of the logits step by step', async () => {
    const prompt = tokens(6, SPEC.vocab, 9);
    const r = await model.complete(prompt, { temperature: 0, maxTokens: 12, ignoreEos: true });
    expect(r.generatedTokens).toBe(12);
    expect(r.finishReason).toBe('length');
    const seq = model.createSequence();
    let logits = await seq.evaluate(prompt);
    const want: number[] = [];
    for (let i = 0; i < 12; i++) {
      const t = argmax(logits);
      want.push(t);
      logits = await seq.evaluate([t]);
    }
    expect(r.tokens).toEqual(want);
  });

  it('the same seed gives the same sample; the prefix cache gives the same result', async () => {
    const prompt = tokens(8, SPEC.vocab, 4);
    const a = await model.complete(prompt, { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 99, maxTokens: 10, ignoreEos: true });
    const b = await model.complete(prompt, { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 99, maxTokens: 10, ignoreEos: true });
    expect(b.cachedPromptTokens).toBeGreaterThan(0);
    expect(b.tokens).toEqual(a.tokens);
    const c = await model.complete(prompt, { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 100, maxTokens: 10, ignoreEos: true });
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('an aborted signal ends the generation within one step', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    const it = model.generate(tokens(4, SPEC.vocab, 1), { temperature: 0, maxTokens: 50, signal: ac.signal, ignoreEos: true });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        expect(r.value.finishReason).toBe('abort');
        break;
      }
      seen.push(r.value.token);
      if (seen.length === 3) ac.abort();
    }
    expect(seen.length).toBe(3);
  });

  it('a full context ends the generation with finishReason context', async () => {
    const seq = model.createSequence({ contextLength: 10 });
    const r = await seq.complete(tokens(6, SPEC.vocab, 2), { temperature: 0, ignoreEos: true });
    expect(r.finishReason).toBe('context');
    expect(r.generatedTokens).toBe(5);
    expect(seq.position).toBe(10);
  });

  it('bad calls are QkErrors and leave the sequence usable', async () => {
    const seq = model.createSequence({ contextLength: 16 });
    await expect(seq.evaluate(tokens(17, SPEC.vocab, 1))).rejects.toThrow(/do not fit: the context holds 16/);
    await expect(seq.evaluate([SPEC.vocab])).rejects.toThrow(QkError);
    await expect(seq.evaluate([1.5])).rejects.toThrow(/not a token id/);
    await expect(seq.evaluate([])).rejects.toThrow(QkError);
    expect(seq.position).toBe(0);
    await expect(seq.complete([1, 2], { temperature: -1 })).rejects.toThrow(QkError);
    await expect(seq.complete([1, 2], { maxTokens: -3 })).rejects.toThrow(/maxTokens/);
    expect((await seq.evaluate([1, 2, 3])).length).toBe(SPEC.vocab);
  });
});

describe('malformed models', () => {
  // A copy of a model with its metadata or tensors changed.
  async function variant(name: string, change: (md: Record<string, GgufValue>, ts: GgufTensorInput[]) => GgufTensorInput[] | void): Promise<string> {
    const src = openGguf(files.get('q8_0')!, { mmap: false });
    const md: Record<string, GgufValue> = { ...src.typedMetadata };
    let ts: GgufTensorInput[] = src.tensors.map((t) => ({ name: t.name, ggmlType: t.ggmlType, shape: t.shape, data: t.data }));
    ts = change(md, ts) ?? ts;
    const out = path.join(dir, `${name}.gguf`);
    await writeGguf(out, { metadata: md, tensors: ts });
    src.close();
    return out;
  }

  it('another architecture is named', async () => {
    const p = await variant('arch', (md) => {
      md['general.architecture'] = { type: 'string', value: 'gpt2' };
    });
    await expect(loadModel(p)).rejects.toThrow(/architecture 'gpt2' is not supported/);
  });

  it('a missing tensor is named', async () => {
    const p = await variant('missing', (_md, ts) => ts.filter((t) => t.name !== 'blk.1.ffn_up.weight'));
    await expect(loadModel(p)).rejects.toThrow(/tensor blk\.1\.ffn_up\.weight is missing/);
  });

  it('a shape that disagrees with the metadata is named', async () => {
    const p = await variant('shape', (md) => {
      md['llama.feed_forward_length'] = { type: 'uint32', value: 768 };
    });
    await expect(loadModel(p)).rejects.toThrow(/blk\.0\.ffn_gate\.weight has shape \[256, 512\] but the metadata implies \[256, 768\]/);
  });

  it('a truncated file is a QkError', async () => {
    const bytes = fs.readFileSync(files.get('q4_0')!);
    const p = path.join(dir, 'truncated.gguf');
    fs.writeFileSync(p, bytes.subarray(0, bytes.length - 1000));
    await expect(loadModel(p)).rejects.toThrow(QkError);
    fs.writeFileSync(p, bytes.subarray(0, 200));
    await expect(loadModel(p)).rejects.toThrow(QkError);
  });

  it('a closed model refuses calls; vocabOnly refuses evaluation', async () => {
    const m = await loadModel(files.get('q4_0')!);
    m.close();
    m.close();
    await expect(m.evaluate([1, 2])).rejects.toThrow(/closed/);
    const v = await loadModel(files.get('q4_0')!, { vocabOnly: true });
    expect(v.tokenize('ab', { addBos: false }).length).toBeGreaterThan(0);
    await expect(v.evaluate([1])).rejects.toThrow(/vocabOnly/);
  });

  it('bad options are QkErrors', async () => {
    await expect(loadModel(files.get('q4_0')!, { kvType: 'q8' as 'f16' })).rejects.toThrow(/kvType/);
    await expect(loadModel(files.get('q4_0')!, { contextLength: 0 })).rejects.toThrow(/contextLength/);
    await expect(loadModel(files.get('q4_0')!, { batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(loadModel(path.join(dir, 'nope.gguf'))).rejects.toThrow(QkError);
  });

  // q5_k_m: read straight into the weight arena; q4_0: read into the staging buffer, then interleaved into the arena
  it.each(['q5_k_m', 'q4_0'])('mmap: false reads the weights and gives the mapped logits (%s)', async (recipe) => {
    const ids = tokens(5, SPEC.vocab, 8);
    const a = await loadModel(files.get(recipe)!, { mmap: false });
    const b = await loadModel(files.get(recipe)!);
    try {
      expect(maxAbsDiff(await a.evaluate(ids), await b.evaluate(ids))).toBe(0);
    } finally {
      a.close();
      b.close();
    }
  });
});

// writeSyntheticLlama: files read back by openGguf match the spec and the
// recipe's per-tensor types; llama.cpp loads them, tokenizes with the
// synthetic vocabulary and generates greedily, the same tokens twice.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dequantize, openGguf } from '../lib/index';
import { modelInfo, planQuantization } from '../lib/gguf/recipes';
import {
  SYNTHETIC_TOKENS, syntheticTensorF32, syntheticVocab, writeSyntheticLlama, type SyntheticLlamaSpec,
} from '../lib/model/synthetic';
import { closeOracle, oracleGreedy, oracleLastLogits, oracleTokenize } from './oracle/llamacpp';

const SMALL: SyntheticLlamaSpec = { hidden: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, vocab: 320, seed: 7 };
// K-quants need rows that are multiples of 256.
const SMALL_K: SyntheticLlamaSpec = { ...SMALL, hidden: 256, ffn: 512 };

const CASES: [string, SyntheticLlamaSpec][] = [
  ['f32', SMALL],
  ['f16', SMALL],
  ['q8_0', SMALL],
  ['q4_0', { ...SMALL, tiedOutput: true }],
  ['q4_k_m', SMALL_K],
  ['q4_k_s', SMALL_K],
  ['q5_k_m', { ...SMALL_K, tiedOutput: true }],
  ['q6_k', SMALL_K],
];

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-synthetic-'));
});
afterAll(async () => {
  await closeOracle();
  fs.rmSync(dir, { recursive: true, force: true });
});

function expectedNames(s: SyntheticLlamaSpec): Map<string, number[]> {
  const kv = s.kvHeads * (s.hidden / s.heads);
  const m = new Map<string, number[]>([['token_embd.weight', [s.hidden, s.vocab]]]);
  for (let l = 0; l < s.layers; l++) {
    m.set(`blk.${l}.attn_norm.weight`, [s.hidden]);
    m.set(`blk.${l}.attn_q.weight`, [s.hidden, s.hidden]);
    m.set(`blk.${l}.attn_k.weight`, [s.hidden, kv]);
    m.set(`blk.${l}.attn_v.weight`, [s.hidden, kv]);
    m.set(`blk.${l}.attn_output.weight`, [s.hidden, s.hidden]);
    m.set(`blk.${l}.ffn_norm.weight`, [s.hidden]);
    m.set(`blk.${l}.ffn_gate.weight`, [s.hidden, s.ffn]);
    m.set(`blk.${l}.ffn_up.weight`, [s.hidden, s.ffn]);
    m.set(`blk.${l}.ffn_down.weight`, [s.ffn, s.hidden]);
  }
  m.set('output_norm.weight', [s.hidden]);
  if (!s.tiedOutput) m.set('output.weight', [s.hidden, s.vocab]);
  return m;
}

describe('syntheticVocab', () => {
  it('has exactly n distinct tokens with the SPM special and byte tokens first', () => {
    for (const n of [260, 320, 5000, 32000]) {
      const v = syntheticVocab(n);
      expect(v.tokens.length).toBe(n);
      expect(new Set(v.tokens).size).toBe(n);
      expect(v.scores.length).toBe(n);
      expect(v.types.length).toBe(n);
      expect(v.tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
      expect(v.tokens[258]).toBe('<0xFF>');
      expect(v.tokens[259]).toBe('▁');
      expect([...v.types.subarray(0, 4)]).toEqual([2, 3, 3, 6]);
      expect(v.types[258]).toBe(6);
      expect(v.types.subarray(259).every((t) => t === 1)).toBe(true);
    }
    // Every multi-character piece but a byte/special token is reachable by pairwise merges: its prefix without the last character is a token.
    const v = syntheticVocab(32000);
    const set = new Set(v.tokens);
    for (const t of v.tokens.slice(SYNTHETIC_TOKENS.firstPiece)) if ([...t].length > 1) expect(set.has([...t].slice(0, -1).join(''))).toBe(true);
  });
});

describe('writeSyntheticLlama', () => {
  it.each(CASES)('%s: metadata, shapes and the recipe\'s types', async (recipe, spec) => {
    const file = path.join(dir, `m-${recipe}.gguf`);
    let last = [0, 0];
    const r = await writeSyntheticLlama(file, spec, recipe, { onProgress: (d, t) => (last = [d, t]) });
    expect(r.bytes).toBe(fs.statSync(file).size);
    expect(last).toEqual([r.bytes, r.bytes]);
    const g = openGguf(file);
    try {
      const m = g.metadata;
      expect(m['general.architecture']).toBe('llama');
      expect(typeof m['general.name']).toBe('string');
      expect(m['llama.context_length']).toBe(2048);
      expect(m['llama.embedding_length']).toBe(spec.hidden);
      expect(m['llama.block_count']).toBe(spec.layers);
      expect(m['llama.feed_forward_length']).toBe(spec.ffn);
      expect(m['llama.attention.head_count']).toBe(spec.heads);
      expect(m['llama.attention.head_count_kv']).toBe(spec.kvHeads);
      expect(m['llama.rope.dimension_count']).toBe(spec.hidden / spec.heads);
      expect(m['llama.rope.freq_base']).toBe(10000);
      expect(m['llama.attention.layer_norm_rms_epsilon']).toBe(Math.fround(1e-5));
      expect(m['llama.vocab_size']).toBe(spec.vocab);
      expect(m['tokenizer.ggml.model']).toBe('llama');
      expect((m['tokenizer.ggml.tokens'] as string[]).length).toBe(spec.vocab);
      expect((m['tokenizer.ggml.scores'] as Float32Array).length).toBe(spec.vocab);
      expect((m['tokenizer.ggml.token_type'] as Int32Array).length).toBe(spec.vocab);
      expect(m['tokenizer.ggml.bos_token_id']).toBe(1);
      expect(m['tokenizer.ggml.eos_token_id']).toBe(2);
      expect(m['tokenizer.ggml.unknown_token_id']).toBe(0);
      expect(m['tokenizer.ggml.add_bos_token']).toBe(true);

      const want = expectedNames(spec);
      expect(g.tensors.map((t) => t.name).sort()).toEqual([...want.keys()].sort());
      for (const t of g.tensors) expect(t.shape, t.name).toEqual(want.get(t.name));

      // The types llama-quantize's rules (lib/gguf/recipes.ts) give these tensors from f32.
      const infos = g.tensors.map((t) => ({ name: t.name, shape: t.shape, ggmlType: 0 }));
      const plan = planQuantization(recipe as Parameters<typeof planQuantization>[0], infos, modelInfo(m, infos));
      expect(m['general.file_type']).toBe(plan.fileType);
      g.tensors.forEach((t, i) => expect(t.ggmlType, t.name).toBe(plan.tensors[i].ggmlType));
      for (const t of g.tensors) if (t.name.endsWith('_norm.weight')) expect(t.typeName).toBe('f32');
      if (recipe === 'q4_k_m') {
        // Spot checks of the recipe itself: more bits for the last layer's attn_v and ffn_down, q6_K output.
        expect(g.tensor('output.weight')!.typeName).toBe('q6_K');
        expect(g.tensor('blk.0.attn_q.weight')!.typeName).toBe('q4_K');
        expect(g.tensor('blk.1.attn_v.weight')!.typeName).toBe('q6_K');
        expect(g.tensor('blk.1.ffn_down.weight')!.typeName).toBe('q6_K');
      }

      // The stored values are the synthetic f32 source, through the tensor's type.
      for (const name of ['blk.1.ffn_down.weight', 'token_embd.weight', 'output_norm.weight']) {
        const t = g.tensor(name)!;
        const src = syntheticTensorF32(spec, name);
        const got = t.matrix ? dequantize(t.matrix) : new Float32Array(t.data.buffer, t.data.byteOffset, t.elements);
        expect(got.length).toBe(src.length);
        let err = 0;
        let ss = 0;
        for (let i = 0; i < src.length; i++) {
          err += (got[i] - src[i]) ** 2;
          ss += src[i] ** 2;
        }
        const rel = Math.sqrt(err / ss);
        expect(rel, `${name} (${t.typeName})`).toBeLessThan(t.typeName === 'f32' ? 1e-12 : 0.15);
      }
    } finally {
      g.close();
    }
  });

  it('is deterministic, and the seed changes the weights', async () => {
    const a = path.join(dir, 'seed-a.gguf');
    const b = path.join(dir, 'seed-b.gguf');
    const c = path.join(dir, 'seed-c.gguf');
    await writeSyntheticLlama(a, SMALL, 'q8_0');
    await writeSyntheticLlama(b, SMALL, 'q8_0');
    await writeSyntheticLlama(c, { ...SMALL, seed: 8 }, 'q8_0');
    expect(fs.readFileSync(a).equals(fs.readFileSync(b))).toBe(true);
    expect(fs.readFileSync(a).equals(fs.readFileSync(c))).toBe(false);
    // Distinct tensors get distinct values.
    const q = syntheticTensorF32(SMALL, 'blk.0.attn_q.weight');
    const o = syntheticTensorF32(SMALL, 'blk.0.attn_output.weight');
    expect(q.some((x, i) => x !== o[i])).toBe(true);
  });

  it('refuses bad specs and unknown recipes', async () => {
    const f = path.join(dir, 'bad.gguf');
    await expect(writeSyntheticLlama(f, { ...SMALL, heads: 3 }, 'f32')).rejects.toThrow(/multiple of spec.heads/);
    await expect(writeSyntheticLlama(f, { ...SMALL, vocab: 100 }, 'f32')).rejects.toThrow(/vocab/);
    await expect(writeSyntheticLlama(f, SMALL, 'q3_k_m')).rejects.toThrow(/unknown recipe/);
    expect(fs.existsSync(f)).toBe(false);
  });
});

describe('llama.cpp runs synthetic files', () => {
  it.each([['f32', SMALL], ['q4_0', { ...SMALL, tiedOutput: true }], ['q4_k_m', SMALL_K]] as [string, SyntheticLlamaSpec][])(
    '%s: loads, gives finite logits, generates the same greedy tokens twice',
    async (recipe, spec) => {
      const file = path.join(dir, `m-${recipe}.gguf`);
      if (!fs.existsSync(file)) await writeSyntheticLlama(file, spec, recipe);
      const prompt = await oracleTokenize(file, 'Hello world', { addBos: true });
      expect(prompt[0]).toBe(1);
      const a = await oracleGreedy(file, prompt, 12);
      const b = await oracleGreedy(file, prompt, 12);
      expect(a).toHaveLength(12);
      expect(b).toEqual(a);
      for (const t of a) expect(t >= 0 && t < spec.vocab).toBe(true);
      // Not stuck on one token.
      expect(new Set(a).size).toBeGreaterThan(1);
      const logits = await oracleLastLogits(file, prompt);
      expect(logits.length).toBe(spec.vocab);
      expect(logits.every(Number.isFinite)).toBe(true);
      let sum = 0;
      let sq = 0;
      for (const v of logits) {
        sum += v;
        sq += v * v;
      }
      const std = Math.sqrt(sq / logits.length - (sum / logits.length) ** 2);
      // The weights are scaled for logits of std ~2.
      expect(std).toBeGreaterThan(0.7);
      expect(std).toBeLessThan(6);
    },
  );

  it('tokenizes with the synthetic vocabulary: whole words, byte fallback', async () => {
    const spec: SyntheticLlamaSpec = { ...SMALL, vocab: 2000 };
    const file = path.join(dir, 'vocab2000.gguf');
    await writeSyntheticLlama(file, spec, 'f32');
    const v = syntheticVocab(2000);
    const ids = await oracleTokenize(file, 'Hello world, the quick brown fox\n');
    expect(ids.map((i) => v.tokens[i])).toEqual(['▁Hello', '▁world', ',', '▁the', '▁quick', '▁brown', '▁fox', '<0x0A>']);
    // 'é' is not a piece: its UTF-8 bytes are.
    const e = await oracleTokenize(file, 'é');
    expect(e.map((i) => v.tokens[i])).toEqual(['▁', '<0xC3>', '<0xA9>']);
  });
});

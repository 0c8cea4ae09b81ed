// The per-tensor type choices of the llama.cpp recipes (reference §6), on
// llama-shaped tensor lists and against the choices llama-quantize made for
// the golden files.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { allowsQuantization, layerOf, modelInfo, planQuantization, typeNameOf, type ModelInfo, type PlanTensorInfo, type QuantizeTarget } from '../lib/gguf/recipes';

const F32 = 0, F16 = 1;
const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'golden', 'manifest.json'), 'utf8'));

interface Shape { layers: number; hidden: number; ffn: number; vocab: number; kv?: number; tied?: boolean; experts?: number }

/** A llama model's tensor list (convert_hf_to_gguf order), shapes only: planning needs no weights. */
function llama(s: Shape, type = F32): PlanTensorInfo[] {
  const kv = s.kv ?? s.hidden;
  const t: PlanTensorInfo[] = [{ name: 'token_embd.weight', shape: [s.hidden, s.vocab], ggmlType: type }];
  for (let i = 0; i < s.layers; i++) {
    t.push(
      { name: `blk.${i}.attn_norm.weight`, shape: [s.hidden], ggmlType: F32 },
      { name: `blk.${i}.attn_q.weight`, shape: [s.hidden, s.hidden], ggmlType: type },
      { name: `blk.${i}.attn_k.weight`, shape: [s.hidden, kv], ggmlType: type },
      { name: `blk.${i}.attn_v.weight`, shape: [s.hidden, kv], ggmlType: type },
      { name: `blk.${i}.attn_output.weight`, shape: [s.hidden, s.hidden], ggmlType: type },
      { name: `blk.${i}.ffn_norm.weight`, shape: [s.hidden], ggmlType: F32 },
    );
    if (s.experts) {
      t.push(
        { name: `blk.${i}.ffn_gate_inp.weight`, shape: [s.hidden, s.experts], ggmlType: F32 },
        { name: `blk.${i}.ffn_gate_exps.weight`, shape: [s.hidden, s.ffn, s.experts], ggmlType: type },
        { name: `blk.${i}.ffn_up_exps.weight`, shape: [s.hidden, s.ffn, s.experts], ggmlType: type },
        { name: `blk.${i}.ffn_down_exps.weight`, shape: [s.ffn, s.hidden, s.experts], ggmlType: type },
      );
    } else {
      t.push(
        { name: `blk.${i}.ffn_gate.weight`, shape: [s.hidden, s.ffn], ggmlType: type },
        { name: `blk.${i}.ffn_up.weight`, shape: [s.hidden, s.ffn], ggmlType: type },
        { name: `blk.${i}.ffn_down.weight`, shape: [s.ffn, s.hidden], ggmlType: type },
      );
    }
  }
  t.push({ name: 'output_norm.weight', shape: [s.hidden], ggmlType: F32 });
  if (!s.tied) t.push({ name: 'output.weight', shape: [s.hidden, s.vocab], ggmlType: type });
  return t;
}

const model = (layers: number, extra: Partial<ModelInfo> = {}): ModelInfo => ({ architecture: 'llama', layers, experts: 0, heads: 32, headsKv: 32, ...extra });

function types(target: QuantizeTarget, tensors: PlanTensorInfo[], m: ModelInfo): Record<string, string> {
  const plan = planQuantization(target, tensors, m);
  return Object.fromEntries(plan.tensors.map((p) => [p.name, typeNameOf(p.ggmlType)]));
}

function layersWith(t: Record<string, string>, tensor: string, type: string): number[] {
  return Object.entries(t).filter(([n, ty]) => n.endsWith(`.${tensor}.weight`) && ty === type).map(([n]) => layerOf(n)).sort((a, b) => a - b);
}

// use_more_bits(i, n) from reference §6.4, listed rather than computed.
const MORE_BITS: Record<number, number[]> = {
  22: [0, 1, 4, 7, 10, 13, 16, 19, 20, 21],
  28: [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27],
  32: [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31],
  40: [0, 1, 2, 3, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 35, 36, 37, 38, 39],
};

describe('recipes on llama-shaped models', () => {
  it.each([22, 28, 32, 40])('q4_k_m, %i layers: the worked example of §6.4', (n) => {
    const t = types('q4_k_m', llama({ layers: n, hidden: 4096, ffn: 11008, vocab: 32000 }), model(n));
    expect(t['output.weight']).toBe('q6_K');
    expect(t['token_embd.weight']).toBe('q4_K');
    expect(layersWith(t, 'attn_v', 'q6_K')).toEqual(MORE_BITS[n]);
    expect(layersWith(t, 'ffn_down', 'q6_K')).toEqual(MORE_BITS[n]);
    for (const w of ['attn_q', 'attn_k', 'attn_output', 'ffn_gate', 'ffn_up']) expect(layersWith(t, w, 'q4_K').length, w).toBe(n);
    expect(layersWith(t, 'attn_norm', 'f32').length).toBe(n);
    expect(t['output_norm.weight']).toBe('f32');
  });

  it('q4_k_s, 32 layers: q5_K for the first 4 attn_v and ffn_down', () => {
    const t = types('q4_k_s', llama({ layers: 32, hidden: 4096, ffn: 11008, vocab: 32000 }), model(32));
    expect(layersWith(t, 'attn_v', 'q5_K')).toEqual([0, 1, 2, 3]);
    expect(layersWith(t, 'ffn_down', 'q5_K')).toEqual([0, 1, 2, 3]);
    expect(layersWith(t, 'attn_v', 'q4_K').length).toBe(28);
    expect(t['output.weight']).toBe('q6_K');
  });

  it('q5_k_m, q6_k and q8_0', () => {
    const m = llama({ layers: 32, hidden: 4096, ffn: 11008, vocab: 32000 });
    const t5 = types('q5_k_m', m, model(32));
    expect(layersWith(t5, 'ffn_down', 'q6_K')).toEqual(MORE_BITS[32]);
    expect(layersWith(t5, 'attn_q', 'q5_K').length).toBe(32);
    expect(t5['output.weight']).toBe('q6_K');
    const t6 = types('q6_k', m, model(32));
    expect(new Set(Object.entries(t6).filter(([n]) => !n.includes('norm')).map(([, ty]) => ty))).toEqual(new Set(['q6_K']));
    const t8 = types('q8_0', m, model(32));
    expect(new Set(Object.entries(t8).filter(([n]) => !n.includes('norm')).map(([, ty]) => ty))).toEqual(new Set(['q8_0']));
  });

  it('counts attn_v in layer order, whatever the file order', () => {
    const m = llama({ layers: 8, hidden: 256, ffn: 512, vocab: 100 });
    const shuffled = [...m].reverse();
    expect(types('q4_k_m', shuffled, model(8))).toEqual(types('q4_k_m', m, model(8)));
  });

  it('falls back where rows are not whole super-blocks, as tensor_type_fallback does', () => {
    // ffn 352 = 11 x 32: ffn_down rows of 352 cannot be K-quants.
    const t = types('q4_k_m', llama({ layers: 8, hidden: 256, ffn: 352, vocab: 100 }), model(8));
    expect(layersWith(t, 'ffn_down', 'q8_0')).toEqual([0, 3, 6, 7]); // q6_K -> q8_0 (use_more_bits(i, 8))
    expect(layersWith(t, 'ffn_down', 'q5_0')).toEqual([1, 2, 4, 5]); // q4_K -> q5_0
    const s = types('q4_k_s', llama({ layers: 8, hidden: 256, ffn: 352, vocab: 100 }), model(8));
    expect(layersWith(s, 'ffn_down', 'q5_1')).toEqual([0]); // q5_K -> q5_1
    // hidden 96: output.weight is q8_0 (rows not a multiple of 256); other K tensors fall back.
    const h = types('q4_k_m', llama({ layers: 4, hidden: 96, ffn: 256, vocab: 100 }), model(4));
    expect(h['output.weight']).toBe('q8_0');
    expect(h['blk.0.attn_q.weight']).toBe('q5_0');
    expect(h['blk.0.attn_v.weight']).toBe('q5_0');
    expect(h['blk.3.attn_v.weight']).toBe('q8_0'); // q6_K (use_more_bits(3, 4)) -> q8_0
    // hidden 100: not even 32-element blocks: f16.
    const f = types('q4_k_m', llama({ layers: 2, hidden: 100, ffn: 256, vocab: 100 }), model(2));
    expect(f['blk.0.attn_q.weight']).toBe('f16');
    expect(f['output.weight']).toBe('f16');
    expect(f['blk.0.ffn_down.weight']).toBe('q4_K');
    const plan = planQuantization('q4_k_m', llama({ layers: 2, hidden: 100, ffn: 256, vocab: 100 }), model(2));
    expect(plan.tensors.find((p) => p.name === 'blk.0.attn_q.weight')!.reason).toMatch(/not a multiple of 256: q4_k -> f16/);
  });

  it('puts tied embeddings at the output precision', () => {
    const t = types('q4_k_m', llama({ layers: 2, hidden: 256, ffn: 512, vocab: 100, tied: true }), model(2));
    expect(t['token_embd.weight']).toBe('q6_K');
  });

  it('keeps 1-D tensors, norms, routers and non-weights as they are', () => {
    const keep: PlanTensorInfo[] = [
      { name: 'blk.0.attn_norm.weight', shape: [256], ggmlType: F32 },
      { name: 'blk.0.attn_q.bias', shape: [256, 2], ggmlType: F32 },
      { name: 'blk.0.attn_q_norm.weight', shape: [256, 4], ggmlType: F16 },
      { name: 'blk.0.ffn_gate_inp.weight', shape: [256, 8], ggmlType: F32 },
      { name: 'blk.0.attn_q.weight', shape: [256, 1, 1], ggmlType: F32 }, // ggml_n_dims is 1
      { name: 'position_embd.weight', shape: [256, 8], ggmlType: F32 },
    ];
    for (const t of keep) expect(allowsQuantization(t), t.name).toBe(false);
    const plan = planQuantization('q4_k_m', keep, model(1));
    for (const [i, p] of plan.tensors.entries()) expect([p.ggmlType, p.convert]).toEqual([keep[i].ggmlType, false]);
  });

  it('mixtures of 8 experts: attn_v and attn_k q8_0, attn_output q5_K, ffn_down by the layer in its name', () => {
    const t = types('q4_k_m', llama({ layers: 8, hidden: 256, ffn: 512, vocab: 100, experts: 8 }), model(8, { experts: 8 }));
    expect(layersWith(t, 'attn_v', 'q8_0').length).toBe(8);
    expect(layersWith(t, 'attn_k', 'q8_0').length).toBe(8);
    expect(layersWith(t, 'attn_output', 'q5_K').length).toBe(8);
    expect(layersWith(t, 'ffn_down_exps', 'q6_K')).toEqual([0, 3, 6, 7]);
    expect(t['blk.0.ffn_gate_inp.weight']).toBe('f32');
  });

  it('70B llama (80 layers, GQA): attn_v at least q5_K', () => {
    const t = types('q4_k_s', llama({ layers: 80, hidden: 512, ffn: 512, vocab: 100, kv: 64 }), model(80, { heads: 64, headsKv: 8 }));
    expect(layersWith(t, 'attn_v', 'q5_K').length).toBe(80);
    const same = types('q4_k_s', llama({ layers: 80, hidden: 512, ffn: 512, vocab: 100 }), model(80, { heads: 64, headsKv: 64 }));
    expect(layersWith(same, 'attn_v', 'q5_K').length).toBe(4);
  });

  it('plain weight types put every quantizable tensor in that type ("pure"), with the same fallbacks', () => {
    const t = types('q4_0', llama({ layers: 2, hidden: 256, ffn: 512, vocab: 100 }), model(2));
    expect(t['output.weight']).toBe('q4_0');
    expect(t['blk.1.ffn_down.weight']).toBe('q4_0');
    expect(t['blk.0.attn_norm.weight']).toBe('f32');
    const k = types('q4_k', llama({ layers: 2, hidden: 256, ffn: 352, vocab: 100 }), model(2));
    expect(k['blk.0.ffn_down.weight']).toBe('q5_0');
    expect(k['output.weight']).toBe('q4_K');
    const f = types('f16', llama({ layers: 1, hidden: 100, ffn: 100, vocab: 10 }), model(1));
    expect(f['blk.0.attn_q.weight']).toBe('f16');
  });

  it('writes llama.cpp\'s general.file_type numbers', () => {
    const m = llama({ layers: 1, hidden: 256, ffn: 256, vocab: 10 });
    const ft = (t: QuantizeTarget) => planQuantization(t, m, model(1)).fileType;
    expect([ft('f32'), ft('f16'), ft('q4_0'), ft('q4_1'), ft('q8_0'), ft('q5_0'), ft('q5_1'), ft('q4_k_s'), ft('q4_k_m'), ft('q5_k_m'), ft('q6_k'), ft('bf16')])
      .toEqual([0, 1, 2, 3, 7, 8, 9, 14, 15, 17, 18, 32]);
    expect(() => planQuantization('q3_k' as QuantizeTarget, m, model(1))).toThrow(/unknown quantization type 'q3_k'/);
  });

  it('reads the model facts from metadata, and the layer count from names when it is missing', () => {
    const m = llama({ layers: 3, hidden: 256, ffn: 256, vocab: 10 });
    expect(modelInfo({ 'general.architecture': 'llama', 'llama.block_count': 3, 'llama.attention.head_count': 8 }, m))
      .toEqual({ architecture: 'llama', layers: 3, experts: 0, heads: 8, headsKv: 8 });
    expect(modelInfo({}, m).layers).toBe(3);
    expect(layerOf('blk.12.ffn_down.weight')).toBe(12);
    expect(layerOf('output.weight')).toBe(-1);
  });
});

describe("recipes against llama-quantize's choices for the golden model", () => {
  // The 2-layer model of test/fixtures/golden: its matrices from the manifest, its norms as llama.cpp has them.
  const tensors: PlanTensorInfo[] = Object.entries(manifest.tensors as Record<string, { rows: number; cols: number }>).map(
    ([name, t]) => ({ name, shape: [t.cols, t.rows], ggmlType: F32 }),
  );
  for (const n of ['output_norm.weight', 'blk.0.attn_norm.weight', 'blk.0.ffn_norm.weight', 'blk.1.attn_norm.weight', 'blk.1.ffn_norm.weight']) {
    tensors.push({ name: n, shape: [256], ggmlType: F32 });
  }
  const info = modelInfo({ 'general.architecture': 'llama', 'llama.block_count': 2, 'llama.attention.head_count': 4, 'llama.attention.head_count_kv': 4 }, tensors);

  it.each([['q4_k_m', 'golden-q4_k_m'], ['q4_k_s', 'golden-q4_k_s'], ['q6_k', 'golden-q6_k'], ['q8_0', 'golden-q8_0']] as const)('%s', (target, file) => {
    const want = manifest.files[file] as { file_type: number; tensors: Record<string, { type: string }> };
    const plan = planQuantization(target, tensors, info);
    expect(plan.fileType).toBe(want.file_type);
    for (const p of plan.tensors) {
      const expected = want.tensors[p.name]?.type ?? 'f32';
      expect(typeNameOf(p.ggmlType).toLowerCase(), p.name).toBe(expected);
    }
  });
});

// Converting whole files: a llama-shaped model made here is quantized with a
// recipe and reopened (types as planned, bytes as quantize() makes them,
// metadata unchanged but for the two keys llama-quantize sets), files are
// byte-identical to llama-quantize's where its sources are at hand, and a
// failed conversion leaves nothing behind.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { dequantize, openGguf, QkError, quantize, writeGguf } from '../lib/index';
import { convertGguf } from '../lib/gguf/convert';
import { modelInfo, planQuantization, typeNameOf, visitOrder } from '../lib/gguf/recipes';
import { ggmlType } from '../lib/gguf/types';
import { bytesOf, llamaModel, tempDir } from './fixtures/gguf/model';

const tmp = tempDir();
afterAll(tmp.cleanup);
const p = (name: string) => path.join(tmp.dir, name);
const goldenDir = path.join(__dirname, 'fixtures', 'golden');
const manifest = JSON.parse(fs.readFileSync(path.join(goldenDir, 'manifest.json'), 'utf8'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const noTemps = () => expect(fs.readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

describe('convertGguf (qkernels quantize)', () => {
  // 4 layers; ffn 352 = 11 x 32, so ffn_down exercises the K-quant fallbacks.
  const shape = { layers: 4, hidden: 256, ffn: 352, vocab: 300, heads: 4, headsKv: 2 };
  const model = llamaModel(shape);
  const src = p('llama-f32.gguf');

  it('q4_k_m: the planned type per tensor, quantize()\'s bytes, the same metadata', async () => {
    await writeGguf(src, { metadata: model.metadata, tensors: model.tensors });
    const before = fs.readFileSync(src);
    const seen: number[] = [];
    const r = await convertGguf(src, p('llama-q4_k_m.gguf'), { type: 'q4_k_m', onProgress: (e) => seen.push(e.tensorsDone) });
    expect(Buffer.compare(fs.readFileSync(src), before)).toBe(0);
    expect(seen).toEqual(model.tensors.map((_, i) => i + 1));
    expect(r.fileType).toBe(15);
    const f = openGguf(p('llama-q4_k_m.gguf'));

    // Metadata: the input's, with the two keys llama-quantize sets moved last.
    const { 'general.file_type': _ft, ...rest } = model.metadata;
    expect(f.typedMetadata).toEqual({ ...rest, 'general.quantization_version': { type: 'uint32', value: 2 }, 'general.file_type': { type: 'uint32', value: 15 } });
    expect(Object.keys(f.typedMetadata).slice(-2)).toEqual(['general.quantization_version', 'general.file_type']);

    // Tensors in llama.cpp's order (by layer, then name), with the types the recipe gives.
    expect(f.tensors.map((t) => t.name)).toEqual(visitOrder(model.tensors).map((i) => model.tensors[i].name));
    const expected: Record<string, string> = {
      'token_embd.weight': 'q4_K', 'output.weight': 'q6_K', 'output_norm.weight': 'f32',
      // use_more_bits(i, 4) holds for layers 2 ((2 - 0) % 3 == 2) and 3 (>= 7 * 4 / 8)
      'blk.0.attn_v.weight': 'q4_K', 'blk.1.attn_v.weight': 'q4_K', 'blk.2.attn_v.weight': 'q6_K', 'blk.3.attn_v.weight': 'q6_K',
      // rows of 352: q6_K -> q8_0, q4_K -> q5_0
      'blk.0.ffn_down.weight': 'q5_0', 'blk.1.ffn_down.weight': 'q5_0', 'blk.2.ffn_down.weight': 'q8_0', 'blk.3.ffn_down.weight': 'q8_0',
    };
    for (const t of f.tensors) {
      const want = expected[t.name] ?? (t.shape.length === 1 ? 'f32' : 'q4_K');
      expect(t.typeName, t.name).toBe(want);
      const m = model.tensors.find((x) => x.name === t.name)!;
      expect(t.shape).toEqual(m.shape);
      const bytes = want === 'f32' ? (m.data as Uint8Array) : quantize(m.f32!, m.shape[1], m.shape[0], t.type!).data;
      expect(sha(t.data), t.name).toBe(sha(bytes));
    }
    const fallbacks = r.tensors.filter((t) => t.reason?.includes('not a multiple'));
    expect(fallbacks.map((t) => t.name).sort()).toEqual(['blk.0.ffn_down.weight', 'blk.1.ffn_down.weight', 'blk.2.ffn_down.weight', 'blk.3.ffn_down.weight']);
    expect(r.bitsPerWeightAfter).toBeGreaterThan(4.5);
    expect(r.bitsPerWeightAfter).toBeLessThan(6);
    expect(r.outputFileBytes).toBe(f.fileSize);

    // A file writeGguf writes from what it read is the same file.
    await writeGguf(p('again.gguf'), { metadata: f.typedMetadata, tensors: f.tensors });
    expect(Buffer.compare(fs.readFileSync(p('again.gguf')), fs.readFileSync(p('llama-q4_k_m.gguf')))).toBe(0);
    f.close();
    noTemps();
  });

  it('converts f16 and already quantized inputs; the output can be the input', async () => {
    const f16 = llamaModel({ ...shape, ffn: 256, weightType: 'f16', seed: 7 });
    await writeGguf(p('f16.gguf'), { metadata: f16.metadata, tensors: f16.tensors });
    await convertGguf(p('f16.gguf'), p('q8.gguf'), { type: 'q8_0' });
    const q8 = openGguf(p('q8.gguf'));
    const t = q8.tensor('blk.2.ffn_up.weight')!;
    const srcT = f16.tensors.find((x) => x.name === t.name)!;
    const asF32 = dequantize({ type: 'f16', rows: t.rows, cols: t.cols, data: srcT.data as Uint8Array });
    expect(sha(t.data)).toBe(sha(quantize(asF32, t.rows, t.cols, 'q8_0').data));
    expect(q8.metadata['general.file_type']).toBe(7);

    // q8_0 -> q4_0 in place: the input is replaced only once the output is complete.
    const q8Bytes = q8.tensor('blk.0.attn_q.weight')!.data.slice();
    q8.close();
    await convertGguf(p('q8.gguf'), p('q8.gguf'), { type: 'q4_0' });
    const q4 = openGguf(p('q8.gguf'));
    const w = q4.tensor('blk.0.attn_q.weight')!;
    expect(w.type).toBe('q4_0');
    const deq = dequantize({ type: 'q8_0', rows: w.rows, cols: w.cols, data: q8Bytes });
    expect(sha(w.data)).toBe(sha(quantize(deq, w.rows, w.cols, 'q4_0').data));
    expect(q4.tensor('blk.0.attn_norm.weight')!.type).toBe('f32');
    q4.close();
    noTemps();
  });

  it('fails cleanly: NaN weights, unreadable types; no output, no temporary, the input unchanged', async () => {
    const bad = llamaModel({ layers: 1, hidden: 256, ffn: 256, vocab: 8, seed: 3 });
    const victim = bad.tensors.find((t) => t.name === 'blk.0.ffn_up.weight')!;
    const f32 = victim.f32!.slice();
    f32[300] = NaN;
    victim.data = bytesOf(f32);
    await writeGguf(p('nan.gguf'), { metadata: bad.metadata, tensors: bad.tensors });
    fs.writeFileSync(p('out.gguf'), 'previous');
    const err = await convertGguf(p('nan.gguf'), p('out.gguf'), { type: 'q4_0' }).catch((e) => e);
    expect(err).toBeInstanceOf(QkError);
    expect(err.message).toMatch(/tensor 'blk.0.ffn_up.weight' \(f32 -> q4_0\).*NaN.*row 1, col 44/);
    expect(fs.readFileSync(p('out.gguf'), 'utf8')).toBe('previous');

    await writeGguf(p('iq.gguf'), {
      metadata: { 'general.architecture': 'llama' },
      tensors: [{ name: 'blk.0.attn_q.weight', ggmlType: 20, shape: [32, 2], data: new Uint8Array(36) }],
    });
    await expect(convertGguf(p('iq.gguf'), p('out.gguf'), { type: 'q8_0' })).rejects.toThrow(/'blk.0.attn_q.weight' is iq4_nl, which qkernels cannot read/);
    // Copied as it is when it needs no conversion: a norm-like 1-D tensor of any type.
    await writeGguf(p('iq1d.gguf'), { tensors: [{ name: 'x.weight', ggmlType: 20, shape: [64], data: new Uint8Array(36).fill(5) }] });
    await convertGguf(p('iq1d.gguf'), p('iq1d-q8.gguf'), { type: 'q8_0' });
    const g = openGguf(p('iq1d-q8.gguf'));
    expect([g.tensors[0].typeName, Array.from(g.tensors[0].data.subarray(0, 2))]).toEqual(['iq4_nl', [5, 5]]);
    g.close();
    expect(fs.readFileSync(p('out.gguf'), 'utf8')).toBe('previous');
    await expect(convertGguf(p('missing.gguf'), p('out2.gguf'), { type: 'q8_0' })).rejects.toThrow(/ENOENT/);
    expect(fs.existsSync(p('out2.gguf'))).toBe(false);
    noTemps();
  });
});

describe('byte-identical to llama-quantize', () => {
  // The golden model with the sources the repository carries; the other tensors get random weights.
  const sources = Object.entries(manifest.tensors as Record<string, { rows: number; cols: number; file: string }>);
  const have = sources.filter(([, t]) => fs.existsSync(path.join(goldenDir, t.file))).map(([n]) => n);

  it.each([['q4_0', 'golden-q4_0'], ['q8_0', 'golden-q8_0'], ['q4_k_m', 'golden-q4_k_m'], ['q4_k_s', 'golden-q4_k_s'], ['q6_k', 'golden-q6_k']] as const)(
    '%s: the tensors whose sources are in test/fixtures/golden',
    async (type, file) => {
      expect(have.length).toBeGreaterThan(0);
      const model = llamaModel({ layers: 2, hidden: 256, ffn: 768, vocab: 512 });
      for (const t of model.tensors) {
        const s = manifest.tensors[t.name];
        if (s && have.includes(t.name)) {
          const b = fs.readFileSync(path.join(goldenDir, s.file));
          t.data = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
        }
      }
      model.metadata['llama.attention.head_count'] = { type: 'uint32', value: 4 };
      model.metadata['llama.attention.head_count_kv'] = { type: 'uint32', value: 4 };
      await writeGguf(p(`g-${type}-src.gguf`), { metadata: model.metadata, tensors: model.tensors });
      await convertGguf(p(`g-${type}-src.gguf`), p(`g-${type}.gguf`), { type });
      const f = openGguf(p(`g-${type}.gguf`));
      const want = manifest.files[file].tensors as Record<string, { type: string; sha256: string }>;
      for (const t of f.tensors) {
        if (t.shape.length === 1) continue;
        expect(t.typeName.toLowerCase(), t.name).toBe(want[t.name].type);
        if (have.includes(t.name)) expect(sha(t.data), t.name).toBe(want[t.name].sha256);
      }
      f.close();
    },
  );

  // Where the whole golden set is at hand (the shared folder the fixtures were cut from), whole files must match.
  // CI clones the repo with shared/ beside it.
  const shared = process.env.QKERNELS_GOLDEN_DIR ?? path.join(__dirname, '..', '..', 'shared', 'golden');
  const whole = fs.existsSync(path.join(shared, 'golden-f32.gguf'));
  it.skipIf(!whole).each(['q4_0', 'q4_1', 'q8_0', 'q6_k', 'q4_k_m', 'q4_k_s'] as const)('%s: the whole file', async (type) => {
    await convertGguf(path.join(shared, 'golden-f32.gguf'), p(`whole-${type}.gguf`), { type });
    expect(sha(fs.readFileSync(p(`whole-${type}.gguf`)))).toBe(sha(fs.readFileSync(path.join(shared, `golden-${type}.gguf`))));
  });
});

describe('plan and conversion agree', () => {
  it('the types written are the planned types', async () => {
    const m = llamaModel({ layers: 3, hidden: 256, ffn: 512, vocab: 64, seed: 11 });
    await writeGguf(p('agree.gguf'), { metadata: m.metadata, tensors: m.tensors });
    for (const type of ['q5_k_m', 'q4_1', 'q5_0', 'bf16'] as const) {
      const r = await convertGguf(p('agree.gguf'), p(`agree-${type}.gguf`), { type });
      const f = openGguf(p(`agree-${type}.gguf`));
      const plan = planQuantization(type, m.tensors.map((t) => ({ name: t.name, shape: t.shape, ggmlType: ggmlType(0)!.id })), modelInfo(f.metadata, f.tensors));
      for (const pt of plan.tensors) expect(f.tensor(pt.name)!.typeName, `${type} ${pt.name}`).toBe(typeNameOf(pt.ggmlType));
      expect(r.tensors.length).toBe(m.tensors.length);
      for (const t of f.tensors) if (t.type !== 'f32') expect(dequantize(t.matrix!).length).toBe(t.elements);
      f.close();
    }
  });
});

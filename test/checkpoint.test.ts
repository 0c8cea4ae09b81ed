// GPTQ and AWQ checkpoints: the packer against the reference's worked
// examples (quant-formats.md §12 TV-11, TV-12), then openCheckpoint's
// matrices against the formulas of §9.5 and §10.2 (dequantize exactly, matmul
// within the activation rounding), act-order, config variants and bad input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, parseQuantizationConfig } from '../lib/checkpoint';
import { dequantize, matmul, matmulAsync, prepare, QkError } from '../lib/index';
import { int32Tensor, packAwq, packGptq, writeCheckpoint, type Levels } from './checkpoint-pack';

// IEEE binary16, decoded from its definition (not from the library).
function half(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

const hex = (w: Int32Array | Uint32Array | Uint8Array): string[] => Array.from(new Uint32Array(w.buffer, w.byteOffset, w.byteLength / 4), (v) => v.toString(16).padStart(8, '0'));

// TV-11: K = 16, N = 8, g = 8.
function tv11(): Levels {
  const k = 16, n = 8, groups = 2;
  const q = new Uint8Array(k * n), z = new Uint8Array(groups * n);
  for (let i = 0; i < k; i++) for (let o = 0; o < n; o++) q[i * n + o] = (3 * i + 5 * o + ((i * o) % 7)) % 16;
  for (let g = 0; g < groups; g++) for (let o = 0; o < n; o++) z[g * n + o] = (3 * g + o) % 16;
  const scaleBits = Uint16Array.from([0x211f, 0x21a2, 0x2225, 0x22a8, 0x232b, 0x23ae, 0x2419, 0x245a, 0x251f, 0x2560, 0x25a2, 0x25e3, 0x2625, 0x2666, 0x26a8, 0x26e9]);
  return { k, n, groups, q, z, scaleBits };
}

let seed = 12345;
function rand(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
}

function randomLevels(k: number, n: number, g: number, sym: boolean): Levels {
  const groups = Math.ceil(k / g);
  const q = new Uint8Array(k * n).map(() => Math.floor(rand() * 16));
  const z = new Uint8Array(groups * n).map(() => (sym ? 8 : 1 + Math.floor(rand() * 15)));
  // fp16 scales between about 2^-9 and 2^-5: exponent 6..10, any mantissa
  const scaleBits = new Uint16Array(groups * n).map(() => ((6 + Math.floor(rand() * 5)) << 10) | Math.floor(rand() * 1024));
  return { k, n, groups, q, z, scaleBits };
}

/** §9.5 / §10.2 in float32: W[n][k] = scale[g(k)][n] * (q[k][n] - z[g(k)][n]). */
function reference(l: Levels, groupOf: (k: number) => number): Float32Array {
  const w = new Float32Array(l.n * l.k);
  for (let o = 0; o < l.n; o++) {
    for (let i = 0; i < l.k; i++) {
      const g = groupOf(i);
      w[o * l.k + i] = Math.fround(half(l.scaleBits[g * l.n + o]) * (l.q[i * l.n + o] - l.z[g * l.n + o]));
    }
  }
  return w;
}

/** y = x W^T in float64, and the bound q8_0 activations put on matmul's error: half a step of each 32-block's scale, times the block's |W|. */
function product(w: Float32Array, rows: number, cols: number, x: Float32Array, m: number): { y: Float64Array; bound: Float64Array } {
  const y = new Float64Array(m * rows), bound = new Float64Array(m * rows);
  for (let i = 0; i < m; i++) {
    for (let o = 0; o < rows; o++) {
      let s = 0, b = 0;
      for (let blk = 0; blk < cols; blk += 32) {
        let amax = 0, wabs = 0;
        for (let j = blk; j < blk + 32; j++) {
          s += x[i * cols + j] * w[o * cols + j];
          amax = Math.max(amax, Math.abs(x[i * cols + j]));
          wabs += Math.abs(w[o * cols + j]);
        }
        b += (amax / 127) * 0.5 * wabs * 1.01 + 1e-6 * wabs * amax;
      }
      y[i * rows + o] = s;
      bound[i * rows + o] = b + 1e-5 * Math.abs(s);
    }
  }
  return { y, bound };
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-ckpt-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the tests\' packer, against the reference\'s worked examples', () => {
  it('TV-11: GPTQ qweight and v1/v2 qzeros words', () => {
    const l = tv11();
    const v2 = packGptq(l, 'v2');
    expect(hex(v2.qweight.bytes)).toEqual([
      '52fc9630', 'ad951d95', 'f1c794fa', '45f0ab5f', '99922bb4', 'edcb3219', '31fdb97e', '852fc963',
      'da741eb8', '3f2ea62e', '9461ce94', 'f9a45f0a', '5eee7700', 'b3210876', '186420ec', '0da741eb',
    ]);
    expect(hex(v2.qzeros.bytes)).toEqual(['76543210', 'a9876543']);
    expect(hex(packGptq(l, 'v1').qzeros.bytes)).toEqual(['6543210f', '98765432']);
  });
  it('TV-12: AWQ GEMM qweight and qzeros words', () => {
    const a = packAwq(tv11());
    expect(hex(a.qweight.bytes)).toEqual([
      '39f5e4a0', '61597bf3', '92bd9b46', 'c3a1b299', 'fb05d27c', '2cf9f9cf', '5d5d1912', '8e4a39f5',
      'b6aec048', 'e702e09b', '18f607ee', '405a27c1', '714e4e14', 'a2a26e67', 'd39f8e4a', '0bf3159d',
    ]);
    expect(hex(a.qzeros.bytes)).toEqual(['75316420', 'a8649753']);
  });
});

describe('openCheckpoint', () => {
  // TV-11 is 16 inputs wide: qkernels' blocks need 32, so the worked example
  // is checked on a layer of two TV-11 halves side by side in K.
  function tv11Wide(): Levels {
    const a = tv11();
    const k = 32, n = 8, groups = 4;
    const q = new Uint8Array(k * n);
    q.set(a.q, 0);
    q.set(a.q, 16 * n);
    const z = new Uint8Array(groups * n);
    z.set(a.z, 0);
    z.set(a.z, 2 * n);
    const scaleBits = new Uint16Array(groups * n);
    scaleBits.set(a.scaleBits, 0);
    scaleBits.set(a.scaleBits, 2 * n);
    return { k, n, groups, q, z, scaleBits };
  }

  it('TV-11 act-order (v2 zeros, g_idx of 8-wide groups): the reader refuses groups that are not whole 32-blocks; the tests\' formula gives the reference\'s W values', () => {
    const l = tv11Wide();
    const gIdx = [0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0];
    const fullIdx = [...gIdx, ...gIdx.map((g) => g + 2)];
    // Groups of 8 are not whole 32-blocks: act-order here is checked on the
    // values, with 32-wide groups below for matmul.
    const p = packGptq(l, 'v2');
    const d = path.join(dir, 'tv11-actorder');
    writeCheckpoint(d, { quant_method: 'gptq', bits: 4, group_size: 8, desc_act: true, sym: false, checkpoint_format: 'gptq_v2' }, {
      'l.qweight': p.qweight, 'l.qzeros': p.qzeros, 'l.scales': p.scales, 'l.g_idx': int32Tensor(fullIdx, [32]),
    });
    const ck = openCheckpoint(d);
    try {
      expect(() => ck.matrix('l')).toThrow(/whole blocks of 32/);
    } finally {
      ck.close();
    }
    // The worked values themselves, from the formula the reader implements.
    const w = reference(l, (k) => fullIdx[k]);
    const row0 = Array.from(w.subarray(0, 8));
    expect(row0.map((v) => v.toPrecision(9))).toEqual(['0', '0.0300064087', '0.0600128174', '0.0900192261', '0.120025635', '0.240051270', '-0.0200042725', '0.0500106812'].map((s) => Number(s).toPrecision(9)));
    const row7 = Array.from(w.subarray(7 * 32 + 8, 7 * 32 + 16));
    expect(row7.map((v) => v.toPrecision(9))).toEqual(['0.0269927979', '0.118988037', '-0.242935181', '-0.161956787', '0', '0', '0.0809783936', '-0.118988037'].map((s) => Number(s).toPrecision(9)));
  });

  it('TV-12 sequential groups: the tests\' formula gives the reference\'s dequantized row 0', () => {
    // TV-12's dequantized row 0 (groups k / 8) holds for both packings.
    const l = tv11Wide();
    const w = reference(l, (k) => k >> 3);
    expect(Array.from(w.subarray(0, 8), (v) => v.toPrecision(9))).toEqual(['0', '0.0300064087', '0.0600128174', '0.0900192261', '0.120025635', '0.150032043', '0.0200042725', '0.0500106812'].map((s) => Number(s).toPrecision(9)));
  });

  const CASES = [
    { label: 'GPTQ v1 symmetric, g=128 (q4_0)', method: 'gptq', format: 'v1', sym: true, g: 128, actOrder: false, type: 'q4_0' },
    { label: 'GPTQ v2 asymmetric, g=64 (q8_0)', method: 'gptq', format: 'v2', sym: false, g: 64, actOrder: false, type: 'q8_0' },
    { label: 'GPTQ v1 asymmetric, g=-1 (q8_0)', method: 'gptq', format: 'v1', sym: false, g: -1, actOrder: false, type: 'q8_0' },
    { label: 'GPTQ v1 symmetric act-order, g=32', method: 'gptq', format: 'v1', sym: true, g: 32, actOrder: true, type: 'q4_0' },
    { label: 'GPTQ v2 asymmetric act-order, g=64', method: 'gptq', format: 'v2', sym: false, g: 64, actOrder: true, type: 'q8_0' },
    { label: 'AWQ GEMM, g=128', method: 'awq', format: 'v2', sym: false, g: 128, actOrder: false, type: 'q8_0' },
    { label: 'AWQ GEMM, g=32', method: 'awq', format: 'v2', sym: false, g: 32, actOrder: false, type: 'q8_0' },
  ] as const;

  it.each(CASES)('$label: dequantize equals the formula exactly; matmul within the activation rounding', async (c) => {
    const k = 256, n = 48;
    const l = randomLevels(k, n, c.g === -1 ? k : c.g, c.sym);
    const g = c.g === -1 ? k : c.g;
    // Act-order: g_idx from a random quantization order, each group g members (§9.5).
    const perm = Array.from({ length: k }, (_, i) => i).sort(() => rand() - 0.5);
    const gIdx = new Int32Array(k);
    perm.forEach((col, rank) => (gIdx[col] = Math.floor(rank / g)));
    const groupOf = (i: number): number => (c.actOrder ? gIdx[i] : Math.floor(i / g));
    const d = path.join(dir, c.label.replace(/[^a-z0-9]+/gi, '-'));
    const tensors: Record<string, ReturnType<typeof int32Tensor>> = {};
    if (c.method === 'gptq') {
      const p = packGptq(l, c.format);
      Object.assign(tensors, { 'm.qweight': p.qweight, 'm.qzeros': p.qzeros, 'm.scales': p.scales });
      tensors['m.g_idx'] = int32Tensor(c.actOrder ? gIdx : Array.from({ length: k }, (_, i) => Math.floor(i / g)), [k]);
      writeCheckpoint(d, { quant_method: 'gptq', bits: 4, group_size: c.g, desc_act: c.actOrder, sym: c.sym, checkpoint_format: c.format === 'v1' ? 'gptq' : 'gptq_v2' }, tensors);
    } else {
      const p = packAwq(l);
      writeCheckpoint(d, { quant_method: 'awq', bits: 4, group_size: c.g, zero_point: true, version: 'gemm' }, { 'm.qweight': p.qweight, 'm.qzeros': p.qzeros, 'm.scales': p.scales });
    }
    const ref = reference(l, groupOf);
    for (const mmap of [true, false]) {
      const ck = openCheckpoint(d, { mmap });
      try {
        expect(ck.layers).toEqual(['m']);
        const w = ck.matrix('m');
        expect([w.type, w.rows, w.cols, w.inputOrder !== undefined]).toEqual([c.type, n, k, c.actOrder]);
        expect(Array.from(dequantize(w))).toEqual(Array.from(ref));
        expect(Array.from(dequantize(prepare(w)))).toEqual(Array.from(ref));
        const m = 3;
        const x = new Float32Array(m * k).map(() => rand() * 2 - 1);
        const { y, bound } = product(ref, n, k, x, m);
        for (const got of [matmul(w, x, m), matmul(prepare(w), x, m), await matmulAsync(w, x, m)]) {
          for (let i = 0; i < y.length; i++) expect(Math.abs(got[i] - y[i])).toBeLessThanOrEqual(bound[i]);
        }
        const exact = matmul(w, x, m, undefined, { precision: 'f32' });
        for (let i = 0; i < y.length; i++) expect(Math.abs(exact[i] - y[i])).toBeLessThanOrEqual(1e-5 * (Math.abs(y[i]) + 1));
      } finally {
        ck.close();
      }
    }
  });

  it('a v1 symmetric checkpoint stores 0x77777777 zeros and reads as q4_0 (zero 8)', () => {
    const l = randomLevels(64, 8, 32, true);
    const p = packGptq(l, 'v1');
    expect(hex(p.qzeros.bytes).every((w) => w === '77777777')).toBe(true);
    const d = path.join(dir, 'v1sym');
    writeCheckpoint(d, { quant_method: 'gptq', bits: 4, group_size: 32, sym: true }, { 'a.qweight': p.qweight, 'a.qzeros': p.qzeros, 'a.scales': p.scales });
    const ck = openCheckpoint(path.join(d, 'model.safetensors'));
    try {
      expect(ck.matrix('a').type).toBe('q4_0');
      expect(ck.config).toMatchObject({ method: 'gptq', checkpointFormat: 'gptq', sym: true, groupSize: 32, descAct: false });
    } finally {
      ck.close();
    }
  });

  it('plain tensors come out as f16/f32 matrices, and bad names, shapes and dtypes are QkErrors', () => {
    const l = randomLevels(64, 8, 32, true);
    const p = packGptq(l, 'v2');
    const d = path.join(dir, 'mixed');
    const emb = new Uint16Array([0x3c00, 0x4000, 0xc000, 0x3800, 0, 0x3c00]);
    writeCheckpoint(d, { quant_method: 'gptq', bits: 4, group_size: 32, checkpoint_format: 'gptq_v2' }, {
      'a.qweight': p.qweight, 'a.qzeros': p.qzeros, 'a.scales': p.scales,
      'bad.qweight': p.qweight, 'bad.qzeros': p.qzeros, 'bad.scales': { ...p.scales, shape: [1, 16] },
      'emb.weight': { dtype: 'F16', shape: [2, 3], bytes: new Uint8Array(emb.buffer) },
      'ids': int32Tensor([1, 2], [2]),
    });
    const ck = openCheckpoint(d);
    try {
      const e = ck.matrix('emb.weight');
      expect([e.type, e.rows, e.cols]).toEqual(['f16', 2, 3]);
      expect(Array.from(dequantize(e))).toEqual([1, 2, -2, 0.5, 0, 1]);
      expect(() => ck.matrix('nope')).toThrow(QkError);
      expect(() => ck.matrix('bad')).toThrow(/scales is \[1, 16\], expected \[2, 8\]/);
      expect(() => ck.matrix('ids')).toThrow(/I32 tensors are not matrices/);
    } finally {
      ck.close();
    }
    expect(() => ck.matrix('a')).toThrow(/closed/);
  });

  it('configs: synonyms, defaults, and what is not supported', () => {
    expect(parseQuantizationConfig({ w_bit: 4, q_group_size: 64, zero_point: true, version: 'GEMM' }, 'q.json')).toMatchObject({ method: 'awq', groupSize: 64, sym: false, checkpointFormat: 'awq_gemm' });
    expect(parseQuantizationConfig({ bits: 4, group_size: 128 }, 'q.json')).toMatchObject({ method: 'gptq', sym: true, descAct: false, checkpointFormat: 'gptq' });
    expect(() => parseQuantizationConfig({ quant_method: 'gptq', bits: 3 }, 'q.json')).toThrow(/3-bit weights are not supported/);
    expect(() => parseQuantizationConfig({ quant_method: 'awq', version: 'gemv' }, 'q.json')).toThrow(/version 'gemv' is not supported/);
    expect(() => parseQuantizationConfig({ quant_method: 'gptq', checkpoint_format: 'marlin' }, 'q.json')).toThrow(/marlin/);
    expect(() => parseQuantizationConfig({ quant_method: 'gptq', group_size: 0 }, 'q.json')).toThrow(/group_size/);
    expect(() => parseQuantizationConfig({ quant_method: 'bitsandbytes' }, 'q.json')).toThrow(/not supported/);
    expect(() => parseQuantizationConfig({ quant_method: 'gptq', desc_act: 'yes' }, 'q.json')).toThrow(/desc_act must be a boolean/);
  });

  it('folders without a config or weights, and out-of-range g_idx, are QkErrors', () => {
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    expect(() => openCheckpoint(empty)).toThrow(/no quantization config/);
    fs.writeFileSync(path.join(empty, 'config.json'), JSON.stringify({ quantization_config: { quant_method: 'gptq' } }));
    expect(() => openCheckpoint(empty)).toThrow(/no \.safetensors files/);
    expect(() => openCheckpoint(path.join(dir, 'missing'))).toThrow(QkError);
    const l = randomLevels(32, 8, 32, true);
    const p = packGptq(l, 'v2');
    const d = path.join(dir, 'badidx');
    writeCheckpoint(d, { quant_method: 'gptq', group_size: 32, checkpoint_format: 'gptq_v2' }, { 'a.qweight': p.qweight, 'a.qzeros': p.qzeros, 'a.scales': p.scales, 'a.g_idx': int32Tensor(new Array(32).fill(1), [32]) });
    const ck = openCheckpoint(d);
    try {
      expect(() => ck.matrix('a')).toThrow(/g_idx\[0\] = 1 is not a group/);
    } finally {
      ck.close();
    }
  });

  it('a matrix with a bad inputOrder is refused', () => {
    const base = { type: 'f32' as const, rows: 1, cols: 3, data: new Uint8Array(12) };
    expect(() => matmul({ ...base, inputOrder: new Int32Array([0, 0, 1]) }, new Float32Array(3), 1)).toThrow(/not a permutation/);
    expect(() => matmul({ ...base, inputOrder: new Int32Array([0, 1]) }, new Float32Array(3), 1)).toThrow(/2 entries/);
    const w = { ...base, data: new Uint8Array(new Float32Array([1, 2, 3]).buffer), inputOrder: new Int32Array([2, 0, 1]) };
    // stored column j is input inputOrder[j]: y = 1*x2 + 2*x0 + 3*x1
    expect(Array.from(matmul(w, new Float32Array([10, 100, 1000]), 1))).toEqual([1000 + 20 + 300]);
    expect(Array.from(dequantize(w))).toEqual([2, 3, 1]);
  });
});

// Tests of the TypeScript q5_0 / q5_1 / K-quant / q8_k kernels and the
// importance-weighted quantizers against the worked examples of
// quant-formats.md §12 (TV-2b, TV-4, TV-6 … TV-9), the llama.cpp golden files,
// pinned results for degenerate inputs, and numeric properties.

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { ACTIVATION_BLOCK, TYPES, type WeightType } from '../lib/types';
import { jsKernels, quantizeActivationRow } from '../lib/js/kernels';
import { f16BitsToF32 } from '../lib/js/fp16';
import { getScaleMinK4, kCores, packScalesK4 } from '../lib/js/kquants';
import { makeQxQuants, nearestInt } from '../lib/js/ksearch';
import { sumQ5_0Q8_0, sumQ5_1Q8_1 } from '../lib/js/q5';

// ---------------------------------------------------------------- helpers

/** lcg(n, seed, scale) of §12. BigInt keeps state·1103515245 exact. */
function lcg(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let state = BigInt(seed) % 2n ** 31n;
  for (let i = 0; i < n; i++) {
    state = (state * 1103515245n + 12345n) % 2n ** 31n;
    const v = Number((state >> 8n) & 0xffffn);
    out[i] = ((v - 32768) / 16384) * scale;
  }
  return out;
}

const fr = Math.fround;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const f16At = (b: Uint8Array, o: number) => f16BitsToF32(b[o] | (b[o + 1] << 8));
const f32At = (b: Uint8Array, o: number) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).readFloatLE(o);
const i8s = (b: Uint8Array, o: number, n: number) => Array.from(new Int8Array(b.buffer, b.byteOffset + o, n));
const i16At = (b: Uint8Array, o: number) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).readInt16LE(o);

function rowBytes(t: WeightType, k: number): number {
  return (k / TYPES[t].blockSize) * TYPES[t].blockBytes;
}

function quantize(t: WeightType, x: Float32Array, importance?: Float32Array): Uint8Array {
  const out = new Uint8Array(rowBytes(t, x.length));
  if (importance) jsKernels[t].quantizeRowImportance!(x, 0, out, 0, x.length, importance);
  else jsKernels[t].quantizeRow(x, 0, out, 0, x.length);
  return out;
}

function dequantize(t: WeightType, b: Uint8Array, k: number): Float32Array {
  const out = new Float32Array(k);
  jsKernels[t].dequantizeRow(b, 0, out, 0, k);
  return out;
}

type Act = 'q8_0' | 'q8_1' | 'q8_k';
function quantAct(act: Act, x: Float32Array): Uint8Array {
  const b = ACTIVATION_BLOCK[act];
  const out = new Uint8Array((x.length / b.size) * b.bytes);
  quantizeActivationRow(act, x, 0, out, 0, x.length);
  return out;
}

/** Dequantized activations: d·qs per block. */
function dequantAct(act: Act, a: Uint8Array, k: number): Float64Array {
  const { size, bytes } = ACTIVATION_BLOCK[act];
  const out = new Float64Array(k);
  for (let b = 0; b < k / size; b++) {
    const o = b * bytes;
    const d = act === 'q8_k' ? f32At(a, o) : f16At(a, o);
    const qo = act === 'q8_0' ? 2 : 4;
    for (let i = 0; i < size; i++) out[b * size + i] = d * ((a[o + qo + i] << 24) >> 24);
  }
  return out;
}

/** Deterministic random floats with a per-32-block magnitude spread (xorshift32). */
function randomRow(k: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  const x = new Float32Array(k);
  for (let b = 0; b < k / 32; b++) {
    const mag = 2 ** (next() * 12 - 6);
    const off = next() < 0.3 ? (next() - 0.5) * 4 * mag : 0;
    for (let i = 0; i < 32; i++) x[b * 32 + i] = off + (next() * 2 - 1) * mag;
  }
  return x;
}

function quantizeF16(v: number): Uint8Array {
  const out = new Uint8Array(2);
  jsKernels.f16.quantizeRow(new Float32Array([v]), 0, out, 0, 1);
  return out;
}

const NEW_TYPES = ['q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'] as const;
const K_TYPES = ['q4_k', 'q5_k', 'q6_k'] as const;
const IMPORTANCE_TYPES = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'] as const;

// ---------------------------------------------------------------- nearest_int

describe('nearest_int', () => {
  it('rounds half to even and emulates the bit trick outside its range', () => {
    const rows: [number, number][] = [
      [2.5, 2],
      [-2.5, -2],
      [3.5, 4],
      [-0.5, 0],
      [0.49999997, 0],
      [4194303, 4194303],
      [-4194303, -4194303],
      [1e-40, 0],
    ];
    for (const [v, want] of rows) expect(nearestInt(v) + 0).toBe(want);
    // Beyond 2^22 the C code returns mantissa bits of f32(v + 12582912): emulated, never thrown.
    expect(nearestInt(Infinity)).toBe(-0x400000);
    expect(nearestInt(-Infinity)).toBe(-0x400000);
    expect(nearestInt(NaN)).toBe(0);
    expect(nearestInt(1e30)).toBe((0x7149f2ca & 0x7fffff) - 0x400000); // bits of f32(1e30)
    expect(nearestInt(2 ** 23)).toBe(-0x400000 + 0x200000); // f32(2^23 + 1.5·2^23) = 2.5·2^23
  });
});

// ---------------------------------------------------------------- TV-2b, TV-4

const blockB = lcg(32, 1);

describe('TV-2b all-zero and constant blocks', () => {
  it('q5_0 stores d = -0 and every level 16 (qh all ones)', () => {
    const b = quantize('q5_0', new Float32Array(64));
    expect(hex(b)).toBe(('0080' + 'ffffffff' + '00'.repeat(16)).repeat(2));
    expect(Array.from(dequantize('q5_0', b, 64)).every((v) => v === 0)).toBe(true);
  });
  it.each(['q5_1', 'q4_k', 'q5_k', 'q6_k'] as const)('%s is all zero bytes', (t) => {
    const k = TYPES[t].blockSize * 2;
    const b = quantize(t, new Float32Array(k));
    expect(b.every((v) => v === 0)).toBe(true);
    expect(Array.from(dequantize(t, b, k)).every((v) => v === 0)).toBe(true);
  });
  it('q8_k of zeros: d = 0, qs = 0, bsums = 0 (written, even over garbage)', () => {
    const out = new Uint8Array(584).fill(0xa5);
    quantizeActivationRow('q8_k', new Float32Array(512), 0, out, 0, 512);
    expect(out.every((v) => v === 0)).toBe(true);
  });
  it('q4_k of a constant -0.5 block: d = 0, dmin = 0x2010, mins 63, levels 0', () => {
    const b = quantize('q4_k', new Float32Array(256).fill(-0.5));
    expect(hex(b.subarray(0, 18))).toBe('0000102000000000fffffffff0f0f0f00000');
    expect(b.subarray(16).every((v) => v === 0)).toBe(true);
  });
  it('q4_k of a constant 0.75 block: d = 0x1280, scales 63, dmin = 0, levels 15', () => {
    const b = quantize('q4_k', new Float32Array(256).fill(0.75));
    expect(hex(b.subarray(0, 18))).toBe('80120000ffffffff000000000f0f0f0fffff');
    expect(b.subarray(16).every((v) => v === 0xff)).toBe(true);
  });
});

describe('TV-4 q5_0 / q5_1 of block B', () => {
  it('q5_0', () => {
    expect(hex(quantize('q5_0', blockB))).toBe('e22fe7de0a34098060cdb9ef2d9fdbdf18bc50137cb1');
  });
  it('q5_1', () => {
    expect(hex(quantize('q5_1', blockB))).toBe('0830e2bfe5ce0a34088f60bda9ef2c9fdade17bc5f137cb1');
  });
  it('dequantize follows the project formulas', () => {
    const b0 = quantize('q5_0', blockB);
    const y0 = dequantize('q5_0', b0, 32);
    const b1 = quantize('q5_1', blockB);
    const y1 = dequantize('q5_1', b1, 32);
    const d0 = f16At(b0, 0);
    const d1 = f16At(b1, 0);
    const m1 = f16At(b1, 2);
    const qh0 = b0[2] | (b0[3] << 8) | (b0[4] << 16) | (b0[5] << 24);
    const qh1 = b1[4] | (b1[5] << 8) | (b1[6] << 16) | (b1[7] << 24);
    for (let e = 0; e < 32; e++) {
      const lev0 = (e < 16 ? b0[6 + e] & 15 : b0[6 + e - 16] >> 4) | (((qh0 >>> e) & 1) << 4);
      const lev1 = (e < 16 ? b1[8 + e] & 15 : b1[8 + e - 16] >> 4) | (((qh1 >>> e) & 1) << 4);
      expect(y0[e]).toBe(fr((lev0 - 16) * d0));
      expect(y1[e]).toBe(fr(fr(lev1 * d1) + m1));
      // A full step on the saturated side (as for q4_0), plus the fp16 rounding of d.
      expect(Math.abs(y0[e] - blockB[e])).toBeLessThanOrEqual(Math.abs(d0) + 16 * Math.abs(d0) * 2 ** -11);
      expect(Math.abs(y1[e] - blockB[e])).toBeLessThanOrEqual(0.5 * d1 + 31 * d1 * 2 ** -11 + Math.abs(m1) * 2 ** -11);
    }
  });
});

// ---------------------------------------------------------------- TV-6

const superK = lcg(256, 7);
const tvImportance = Float32Array.from({ length: 256 }, (_, i) => (1 + ((13 * i) % 17)) / 8);

function scaleMins(b: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (let j = 0; j < 8; j++) {
    const v = getScaleMinK4(j, b, 4);
    out.push([v & 0xff, v >> 8]);
  }
  return out;
}

describe('TV-6 K-quants of super-block K', () => {
  it('input', () => {
    const want = [-0.307312012, -0.776428223, -0.182617188, 0.290344238, -1.69433594, -1.41381836, -1.45849609, -1.26708984];
    want.forEach((w, i) => expect(superK[i]).toBeCloseTo(w, 8));
  });

  it('q4_k reference', () => {
    const b = quantize('q4_k', superK);
    expect(hex(b)).toBe(
      '621c0628fdfafafefffffbfecf83e8f9c695d709116222d3532a4c61fb716ec4' +
        '56961c626f425d4dc852a916b670e9377990bd72b91a648f0c93d7756ccf38b9' +
        'ff864190e4d63dd9e0cf82bbe2b9b5b5f09cee86495df4f77a309c246d94a4e2' +
        '9efc5d5894ad051101e721f9f2f1ee66c937ebd27e1b5fba7ebe091a8e7e50ec' +
        'c4580f57fc3593c0f838413f3384f4d8',
    );
    expect(sha(b)).toBe('ef4b1e15a9af2bc789f73c32e85d700613770bd520b973cae7c6eee0c887bd47');
    expect(b[0] | (b[1] << 8)).toBe(0x1c62);
    expect(b[2] | (b[3] << 8)).toBe(0x2806);
    expect(scaleMins(b)).toEqual([
      [61, 63],
      [58, 63],
      [58, 59],
      [62, 62],
      [63, 60],
      [51, 56],
      [56, 62],
      [57, 63],
    ]);
    const y = dequantize('q4_k', b, 256);
    const want = [-0.413772583, -0.674858093, -0.152687073, 0.369483948, -1.71920013, -1.45811462, -1.45811462, -1.19702911];
    want.forEach((w, i) => expect(y[i]).toBeCloseTo(w, 7));
  });

  it('q4_k importance', () => {
    const b = quantize('q4_k', superK, tvImportance);
    expect(hex(b.subarray(0, 32))).toBe('541c0a28fefbfafefffffbfdcf84e9e9c695d709116222d3532a4c61fb716ec4');
    expect(sha(b)).toBe('04f3e7d298942daa546385d0e1b513aa43a3453b3d451dc3f89853ae1003d81c');
  });

  it('q5_k reference', () => {
    const b = quantize('q5_k', superK);
    expect(hex(b.subarray(0, 64))).toBe(
      '16180628fffbfefffefdfefebd96dafde63afea15c5460fe54c97940d76c25ee' +
        'bc7a5118e938858d8b7c0b7c2aacbbc89d29ce0222d454c5b63479c2f7e2cd98',
    );
    expect(sha(b)).toBe('0dd9eb6b3bd17a0fa29ed94bd9c532b9c441ba9b08a24bbd30681016ecdbe6d9');
    expect(f16At(b, 0)).toBeCloseTo(0.00199508667, 10);
    expect(f16At(b, 2)).toBeCloseTo(0.0314331055, 10);
    expect(scaleMins(b)).toEqual([
      [63, 62],
      [59, 61],
      [62, 62],
      [63, 62],
      [61, 59],
      [54, 57],
      [58, 61],
      [61, 63],
    ]);
    const y = dequantize('q5_k', b, 256);
    const want = [-0.314876556, -0.817638397, -0.189186096, 0.313575745, -1.69747162, -1.4460907, -1.4460907, -1.32040024];
    want.forEach((w, i) => expect(y[i]).toBeCloseTo(w, 7));
  });

  it('q5_k importance', () => {
    expect(sha(quantize('q5_k', superK, tvImportance))).toBe('c87d9fc623f106121436cd1eded760882b97a16b360de2b1a7e125ec311f9925');
  });

  it('q6_k reference', () => {
    const b = quantize('q6_k', superK);
    expect(sha(b)).toBe('85309b0a6862593d58537384401d12f2d7688c73e7f5e8dc516063221f47cc96');
    expect(hex(b.subarray(192))).toBe('6e7e82917786867c7a7964908387868013' + '90');
    expect(i8s(b, 192, 16)).toEqual([110, 126, -126, -111, 119, -122, -122, 124, 122, 121, 100, -112, -125, -121, -122, -128]);
    expect(f16At(b, 208)).toBeCloseTo(-0.000497341156, 11);
    const y = dequantize('q6_k', b, 256);
    const want = [-0.328245163, -0.76590538, -0.164122581, 0.273537636, -1.69593334, -1.42239571, -1.47710323, -1.25827312];
    want.forEach((w, i) => expect(y[i]).toBeCloseTo(w, 7));
  });

  it('q6_k importance', () => {
    expect(sha(quantize('q6_k', superK, tvImportance))).toBe('9a20eb6d9c055d8be2ed534c4794503b6e481fa9a642423c5855bd3c50b0fbbd');
  });
});

// ---------------------------------------------------------------- TV-7

describe('TV-7 6-bit scale/min packing', () => {
  it('packs and unpacks', () => {
    const sc = [1, 2, 3, 4, 40, 50, 60, 63];
    const mn = [5, 6, 7, 8, 33, 17, 48, 0];
    const S = new Uint8Array(16);
    packScalesK4(S, 4, sc, mn);
    expect(hex(S.subarray(4))).toBe('81c2c3c48546c708' + '18120c0f');
    for (let j = 0; j < 8; j++) expect(getScaleMinK4(j, S, 4)).toBe(sc[j] | (mn[j] << 8));
  });
});

// ---------------------------------------------------------------- TV-8

const actsA = lcg(256, 99, 2);

describe('TV-8 q8_k of activations A', () => {
  const a = quantAct('q8_k', actsA);
  it('fields and sha256', () => {
    expect(a.length).toBe(292);
    expect(new Uint32Array(new Float32Array([f32At(a, 0)]).buffer)[0]).toBe(0xbd001932);
    expect(i8s(a, 4, 16)).toEqual([-48, -62, -36, -104, 118, 43, 51, -107, 113, -83, 19, 8, 24, 15, -43, 94]);
    const bsums = Array.from({ length: 16 }, (_, g) => i16At(a, 260 + 2 * g));
    expect(bsums).toEqual([2, -251, -616, -595, 309, -482, 345, -298, -381, -174, 52, 279, 234, 676, 44, 119]);
    for (let g = 0; g < 16; g++) expect(i8s(a, 4 + 16 * g, 16).reduce((s, v) => s + v, 0)).toBe(bsums[g]);
    expect(sha(a)).toBe('35232d96b3b164aa8705d8fc0d5ad353d80b4da8c86dcb0e2adf734eef482e0b');
  });
  it('the first strict max |x| gets -127 and d carries the opposite sign', () => {
    let amax = 0;
    let at = 0;
    for (let i = 0; i < 256; i++) if (Math.abs(actsA[i]) > amax) [amax, at] = [Math.abs(actsA[i]), i];
    expect(i8s(a, 4 + at, 1)[0]).toBe(-127);
    expect(Math.sign(f32At(a, 0))).toBe(-Math.sign(actsA[at]));
  });
  it('a block whose iscale overflows (subnormal max) is stored all-zero (project guard)', () => {
    const x = new Float32Array(512);
    for (let i = 0; i < 256; i++) x[i] = actsA[i] * 2 ** -140; // |m| ~ 3e-42: -127/m = -inf
    x.set(actsA, 256);
    const b = quantAct('q8_k', x);
    expect(b.subarray(0, 292).every((v) => v === 0)).toBe(true);
    expect(hex(b.subarray(292))).toBe(hex(a));
    // 1/iscale finite but iscale not: |m| = 1e-37 is normal, yet -127/m overflows.
    const y = new Float32Array(256);
    y[3] = 1e-37;
    expect(quantAct('q8_k', y).every((v) => v === 0)).toBe(true);
    // Just above the threshold the block is quantized normally.
    y[3] = 4e-37;
    const c = quantAct('q8_k', y);
    expect(i8s(c, 4 + 3, 1)[0]).toBe(-127);
    expect(Number.isFinite(f32At(c, 0))).toBe(true);
  });
});

// ---------------------------------------------------------------- TV-9

describe('TV-9 K-quant dot products', () => {
  const a = quantAct('q8_k', actsA);
  const deqA = dequantAct('q8_k', a, 256);

  it('Q4_K · Q8_K integer cores and result', () => {
    const w = quantize('q4_k', superK);
    const { A, B } = kCores('q4_k', w, 0, a, 0);
    expect(A).toBe(-373751);
    expect(B).toBe(-47348);
    const dy = f32At(a, 0);
    let want = fr(0 + fr(fr(f16At(w, 0) * dy) * A));
    want = fr(want - fr(fr(f16At(w, 2) * dy) * B));
    const got = jsKernels.q4_k.dotQ8(w, 0, a, 0, 256);
    expect(got).toBe(want);
    // ggml: generic 3.48371696 (0x405EF538), AVX2 3.48371124; float64 of the dequantized vectors 3.4837192.
    expect(Math.abs(got - 3.48371696)).toBeLessThan(2e-5);
    const w64 = dequantize('q4_k', w, 256);
    let ref = 0;
    for (let i = 0; i < 256; i++) ref += w64[i] * deqA[i];
    expect(ref).toBeCloseTo(3.4837192, 6);
  });

  it('Q6_K · Q8_K integer core and result', () => {
    const w = quantize('q6_k', superK);
    const { A } = kCores('q6_k', w, 0, a, 0);
    expect(A).toBe(231152);
    const got = jsKernels.q6_k.dotQ8(w, 0, a, 0, 256);
    expect(got).toBe(fr(fr(f16At(w, 208) * f32At(a, 0)) * A));
    expect(Math.abs(got - 3.59530544)).toBeLessThan(2e-5); // ggml AVX2: 3.59530544
  });

  it('Q5_K · Q8_K cores match the levels', () => {
    const w = quantize('q5_k', superK);
    const { A, B } = kCores('q5_k', w, 0, a, 0);
    const sm = scaleMins(w);
    let A2 = 0;
    let B2 = 0;
    for (let j = 0; j < 8; j++) {
      let dot = 0;
      for (let l = 0; l < 32; l++) {
        const e = 32 * j + l;
        const q = ((w[48 + 32 * (j >> 1) + l] >> (4 * (j & 1))) & 15) | (((w[16 + l] >> j) & 1) << 4);
        dot += q * i8s(a, 4 + e, 1)[0];
      }
      A2 += sm[j][0] * dot;
      B2 += sm[j][1] * (i16At(a, 260 + 4 * j) + i16At(a, 262 + 4 * j));
    }
    expect([A, B]).toEqual([A2, B2]);
  });
});

// ---------------------------------------------------------------- golden files

// The committed test reads the sources in test/fixtures/golden (a subset); set
// QK_GOLDEN_DIR=/work/shared/golden to run every tensor llama.cpp wrote.
const goldenDir = process.env.QK_GOLDEN_DIR ?? path.join(__dirname, 'fixtures', 'golden');
interface Manifest {
  tensors: Record<string, { rows: number; cols: number; file: string }>;
  files: Record<string, { tensors: Record<string, { type: string; sha256: string; nbytes: number }> }>;
}
const manifest: Manifest = JSON.parse(fs.readFileSync(path.join(goldenDir, 'manifest.json'), 'utf8'));
const goldenCases: { file: string; tensor: string; type: WeightType; sha256: string; nbytes: number }[] = [];
const skipped: string[] = [];
for (const file of ['golden-q4_k-pure', 'golden-q4_k_s', 'golden-q4_k_m', 'golden-q6_k']) {
  for (const [tensor, t] of Object.entries(manifest.files[file].tensors)) {
    if (!(K_TYPES as readonly string[]).includes(t.type)) continue;
    if (fs.existsSync(path.join(goldenDir, manifest.tensors[tensor].file))) {
      goldenCases.push({ file, tensor, type: t.type as WeightType, sha256: t.sha256, nbytes: t.nbytes });
    } else skipped.push(`${file} ${tensor}`);
  }
}
const sourceCache = new Map<string, Float32Array>();
function source(tensor: string): Float32Array {
  let s = sourceCache.get(tensor);
  if (!s) {
    const b = fs.readFileSync(path.join(goldenDir, manifest.tensors[tensor].file));
    s = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    sourceCache.set(tensor, s);
  }
  return s;
}

describe('K-quant golden files from llama.cpp (JS reference quantizers)', () => {
  it('has K-quant cases of every type', () => {
    const types = new Set(goldenCases.map((c) => c.type));
    for (const t of K_TYPES) expect(types.has(t), `no golden ${t} case in ${goldenDir}`).toBe(true);
  });
  it.each(goldenCases.map((c) => [`${c.file} ${c.tensor} (${c.type})`, c] as const))('%s', (_n, c) => {
    const { rows, cols } = manifest.tensors[c.tensor];
    const src = source(c.tensor);
    const rb = rowBytes(c.type, cols);
    const out = new Uint8Array(rows * rb);
    expect(out.length).toBe(c.nbytes);
    for (let r = 0; r < rows; r++) jsKernels[c.type].quantizeRow(src, r * cols, out, r * rb, cols);
    expect(sha(out), `${c.type} bytes of ${c.tensor} differ from llama.cpp's`).toBe(c.sha256);
  });
});

// ---------------------------------------------------------------- degenerate inputs

/** 512 floats of a degenerate pattern (two super-blocks, sixteen 32-blocks). */
function degenerate(name: string): Float32Array {
  const x = lcg(512, 11);
  switch (name) {
    case 'subnormal':
      for (let i = 0; i < 512; i++) x[i] *= 2 ** -130;
      break;
    case 'tiny':
      for (let i = 0; i < 512; i++) x[i] *= 1e-20;
      break;
    case 'huge':
      for (let i = 0; i < 512; i++) x[i] *= 1e30;
      break;
    case 'equal':
      for (let i = 0; i < 512; i++) x[i] = i < 256 ? 0.375 : -0.625;
      break;
    case 'mixed':
      for (let i = 0; i < 512; i++) {
        const b = (i >> 5) % 4;
        if (b === 0) x[i] = 0;
        else if (b === 1) x[i] *= 1e-38;
        else if (b === 2) x[i] = -1.25;
        else if (i % 32 === 5) x[i] = 1e4;
      }
      break;
  }
  return x;
}

// First 16 hex digits of the sha256 of the bytes produced by a transcription of
// ggml-quants.c compiled with GCC 12 -O3 (x86-64, no -march), the same build
// flags as ggml-base; "imp" uses the TV-6 importance pattern over 512 columns.
const DEGENERATE_PINS: Record<string, string> = {
  'subnormal q4_0': '0299ebeab56fa34d',
  'subnormal q4_0 imp': '2d5565fb483d8ea4',
  'subnormal q4_1': '96d2221dd459c7cc',
  'subnormal q4_1 imp': '96d2221dd459c7cc',
  'subnormal q5_0': '48daf4c9911baa87',
  'subnormal q5_0 imp': '627f6149015f853f',
  'subnormal q5_1': 'cea0361f4ca2cf5d',
  'subnormal q5_1 imp': 'cea0361f4ca2cf5d',
  'subnormal q4_k': '2d5565fb483d8ea4',
  'subnormal q4_k imp': '2d5565fb483d8ea4',
  'subnormal q5_k': '627f6149015f853f',
  'subnormal q5_k imp': '627f6149015f853f',
  'subnormal q6_k': 'de1da8f3791deb5e',
  'subnormal q6_k imp': 'de1da8f3791deb5e',
  'tiny q4_0': '8a5ef654401784be',
  'tiny q4_0 imp': '2d5565fb483d8ea4',
  'tiny q4_1': '2184cee03e8b0279',
  'tiny q4_1 imp': '2184cee03e8b0279',
  'tiny q5_0': '0183f6607d1e097d',
  'tiny q5_0 imp': '627f6149015f853f',
  'tiny q5_1': 'e4faeef4c3a620e7',
  'tiny q5_1 imp': 'e4faeef4c3a620e7',
  'tiny q4_k': '58eac6ab5b176853',
  'tiny q4_k imp': '1a2fe3e3390abd31',
  'tiny q5_k': '97ed229e8b6ee3d4',
  'tiny q5_k imp': 'e1b68ebb71d96b58',
  'tiny q6_k': 'de1da8f3791deb5e',
  'tiny q6_k imp': 'de1da8f3791deb5e',
  'huge q4_0': '0ba4d280968cfd05',
  'huge q4_0 imp': 'd52d67fabbb1b03c',
  'huge q4_1': '4817e8a0cde857e8',
  'huge q4_1 imp': '4817e8a0cde857e8',
  'huge q5_0': '7219a37e0229c006',
  'huge q5_0 imp': '73c4b59205348790',
  'huge q5_1': 'fbd3ed7a6aea9e47',
  'huge q5_1 imp': 'fbd3ed7a6aea9e47',
  'huge q4_k': '47557d74d7a0ce40',
  'huge q4_k imp': 'd4986f7886ad6e0f',
  'huge q5_k': '1cc03bd1a517e160',
  'huge q5_k imp': '2f8d4e8c5d4b6518',
  'huge q6_k': 'de1da8f3791deb5e',
  'huge q6_k imp': 'e620044a7eb72382',
  'equal q4_0': '42fed0413a6c8a3f',
  'equal q4_0 imp': 'a428c5f274ec0c3b',
  'equal q4_1': '23d57596ae3e43ed',
  'equal q4_1 imp': '1b7dd5033312b62f',
  'equal q5_0': 'efe7f92cc9784c24',
  'equal q5_0 imp': '22ecb2b95d90a032',
  'equal q5_1': 'aac2da80e89287cd',
  'equal q5_1 imp': '2b45b280f13a9d87',
  'equal q4_k': '702210feb2ea7243',
  'equal q4_k imp': '702210feb2ea7243',
  'equal q5_k': 'bf50ef69e234f5b4',
  'equal q5_k imp': 'bf50ef69e234f5b4',
  'equal q6_k': '4583fbaffcb46f59',
  'equal q6_k imp': '4583fbaffcb46f59',
  'mixed q4_0': '212298a45b2854d5',
  'mixed q4_0 imp': '32e00b83c8dc1383',
  'mixed q4_1': '18d33ca531edba2b',
  'mixed q4_1 imp': '7f4773e723ab916d',
  'mixed q5_0': '30cf35d5475f9a11',
  'mixed q5_0 imp': '80857b0e274eb21c',
  'mixed q5_1': '1caf600763756b31',
  'mixed q5_1 imp': '56c05aace533068e',
  'mixed q4_k': '15c52cc85c39e3d2',
  'mixed q4_k imp': 'd4b977a4a2de19e0',
  'mixed q5_k': '74d0d5c130624641',
  'mixed q5_k imp': 'a43d1c584d5b9df7',
  'mixed q6_k': '6eed9f2ee6bb75b1',
  'mixed q6_k imp': 'cfe67a5ed9200e68',
};

// Pinned from a transcription of ggml's C quantizers built on x86-64, with one
// deliberate difference: where x*x overflows (|x| > ~1.8e19, the 'huge' rows
// with an importance vector) a block scale becomes NaN, whose sign depends on
// the CPU in llama.cpp; qkernels stores it as 0x7E00 everywhere (the C++
// kernels do the same, and the parity suite compares the two).
describe('degenerate inputs: pinned bytes (subnormal, tiny, huge, constant, mixed)', () => {
  const imp512 = Float32Array.from({ length: 512 }, (_, i) => (1 + ((13 * i) % 17)) / 8);
  it.each(Object.keys(DEGENERATE_PINS))('%s', (key) => {
    const [pattern, t, imp] = key.split(' ') as [string, WeightType, string?];
    const b = quantize(t, degenerate(pattern), imp ? imp512 : undefined);
    expect(sha(b).slice(0, 16)).toBe(DEGENERATE_PINS[key]);
  });
});

// ---------------------------------------------------------------- properties

const K = 512;

/** Gaussian rows whose magnitude varies per 256-element super-block, like real weights. */
function gaussRow(k: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  const x = new Float32Array(k);
  for (let b = 0; b < k / 256; b++) {
    const mag = 2 ** (next() * 16 - 8);
    const off = next() < 0.3 ? (next() - 0.5) * mag : 0;
    for (let i = 0; i < 256; i++) {
      const g = Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12))) * Math.cos(2 * Math.PI * next());
      x[b * 256 + i] = off + g * mag;
    }
  }
  return x;
}

/**
 * Error bound of element e: a quantization step of its (sub-)block (the side
 * opposite the largest |x| may saturate, and the K-quant searches may clip),
 * the rounding of the sub-block scale and min to their 6- or 8-bit grids
 * (half a grid step times the largest level), and the fp16 rounding of d.
 */
function boundAt(t: WeightType, b: Uint8Array, e: number): { step: number; bound: number } {
  const bb = TYPES[t].blockBytes;
  const o = Math.floor(e / TYPES[t].blockSize) * bb;
  const u = 2 ** -11;
  switch (t) {
    case 'q5_0': {
      const d = Math.abs(f16At(b, o));
      return { step: d, bound: d + 16 * d * u };
    }
    case 'q5_1': {
      const d = f16At(b, o);
      return { step: d, bound: 0.5 * d + 31 * d * u + Math.abs(f16At(b, o + 2)) * u };
    }
    case 'q4_k':
    case 'q5_k': {
      const sm = getScaleMinK4(Math.floor((e % 256) / 32), b, o + 4);
      const d = f16At(b, o);
      const D = d * (sm & 0xff);
      const nmax = t === 'q4_k' ? 15 : 31;
      return { step: D, bound: 1.5 * D + 0.5 * f16At(b, o + 2) + 0.5 * nmax * d };
    }
    case 'q6_k': {
      const d = Math.abs(f16At(b, o + 208));
      const D = d * Math.abs((b[o + 192 + Math.floor((e % 256) / 16)] << 24) >> 24);
      return { step: D, bound: 2 * D + 16 * d };
    }
    default:
      throw new Error(t);
  }
}

describe('quantize / dequantize round trip', () => {
  it.each(NEW_TYPES)('%s error is within a step of the (sub-)block scale', (t) => {
    let sumErr = 0;
    let sumStep = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const x = TYPES[t].blockSize === 32 ? randomRow(K, seed) : gaussRow(K, seed);
      const b = quantize(t, x);
      const y = dequantize(t, b, K);
      for (let e = 0; e < K; e++) {
        const err = Math.abs(y[e] - x[e]);
        const { step, bound } = boundAt(t, b, e);
        expect(step).toBeGreaterThan(0);
        expect(err).toBeLessThanOrEqual(bound * 1.0001);
        sumErr += err;
        sumStep += step;
      }
    }
    // On average the error is well under half a step.
    expect(sumErr / sumStep).toBeLessThan(0.3);
  });

  it.each(NEW_TYPES)('%s dequantize is the documented formula at unaligned offsets', (t) => {
    const x = randomRow(K, 3);
    const b = quantize(t, x);
    const shifted = new Uint8Array(b.length + 3);
    shifted.set(b, 3);
    const y = new Float32Array(K + 1);
    jsKernels[t].dequantizeRow(shifted, 3, y, 1, K);
    expect(Array.from(y.subarray(1))).toEqual(Array.from(dequantize(t, b, K)));
  });

  it('q8_k activations: error within half a step, bsums exact', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const x = randomRow(K, seed);
      const a = quantAct('q8_k', x);
      for (let b = 0; b < K / 256; b++) {
        const o = b * 292;
        const d = f32At(a, o);
        for (let g = 0; g < 16; g++) {
          const qs = i8s(a, o + 4 + 16 * g, 16);
          expect(qs.reduce((s, v) => s + v, 0)).toBe(i16At(a, o + 260 + 2 * g));
          for (let i = 0; i < 16; i++) {
            expect(qs[i]).toBeGreaterThanOrEqual(-127);
            expect(Math.abs(qs[i] * d - x[b * 256 + 16 * g + i])).toBeLessThanOrEqual(0.5 * Math.abs(d) * 1.0001);
          }
        }
      }
    }
  });
});

describe('importance-weighted quantizers', () => {
  const ones = new Float32Array(K).fill(1);

  it.each(IMPORTANCE_TYPES)('%s with all-ones importance gives a valid block close to the reference', (t) => {
    let errImp = 0;
    let errRef = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const x = randomRow(K, seed);
      const bi = quantize(t, x, ones);
      const br = quantize(t, x);
      const yi = dequantize(t, bi, K);
      const yr = dequantize(t, br, K);
      for (let e = 0; e < K; e++) {
        expect(Number.isFinite(yi[e])).toBe(true);
        errImp += (yi[e] - x[e]) ** 2;
        errRef += (yr[e] - x[e]) ** 2;
      }
    }
    // A different search for the same format: the squared error stays in the same range.
    expect(errImp).toBeLessThan(1.5 * errRef);
    expect(errImp).toBeGreaterThan(0.5 * errRef);
  });

  it.each(IMPORTANCE_TYPES)('%s is invariant to scaling the importance by a power of two', (t) => {
    const x = randomRow(K, 5);
    const w = Float32Array.from({ length: K }, (_, i) => (1 + ((13 * i) % 17)) / 8);
    const w4 = w.map((v) => v * 4);
    expect(hex(quantize(t, x, w4))).toBe(hex(quantize(t, x, w)));
  });

  it.each(IMPORTANCE_TYPES)('%s uses the same importance (one per column) for every row', (t) => {
    const x = randomRow(K, 9);
    const w = Float32Array.from({ length: K }, (_, i) => 0.5 + ((7 * i) % 5));
    const rb = rowBytes(t, K);
    const src = new Float32Array(2 * K + 7);
    src.set(x, 0);
    src.set(x, K + 7);
    const out = new Uint8Array(2 * rb + 5);
    jsKernels[t].quantizeRowImportance!(src, 0, out, 0, K, w);
    jsKernels[t].quantizeRowImportance!(src, K + 7, out, rb + 5, K, w);
    expect(hex(out.subarray(rb + 5))).toBe(hex(out.subarray(0, rb)));
  });

  it('q6_k with importance x·x is exactly the reference quantizer (whose weights are x·x)', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const x = randomRow(K, seed);
      const w = x.map((v) => fr(v * v));
      expect(hex(quantize('q6_k', x, w))).toBe(hex(quantize('q6_k', x)));
    }
  });

  it('q6_k with all-ones importance is make_qx_quants with unit weights (rmse_type 2)', () => {
    const x = randomRow(256, 4);
    const b = quantize('q6_k', x, new Float32Array(256).fill(1));
    const L1 = new Int8Array(16);
    const L2 = new Int8Array(16);
    let maxAbs = 0;
    let maxScale = 0;
    for (let j = 0; j < 16; j++) {
      const s1 = makeQxQuants(16, 32, x, 16 * j, L1, 0, 2, null, 0);
      const s2 = makeQxQuants(16, 32, x, 16 * j, L2, 0, 1, new Float32Array(16).fill(1), 0);
      expect(s1).toBe(s2);
      expect(Array.from(L1)).toEqual(Array.from(L2));
      if (Math.abs(s1) > maxAbs) [maxAbs, maxScale] = [Math.abs(s1), s1];
    }
    // d = fp16(1/iscale) with iscale = -128/max_scale.
    expect(f16At(b, 208)).toBe(f16At(quantizeF16(fr(1 / fr(-128 / maxScale))), 0));
  });

  it('all-zero blocks: q4_0 / q5_0 importance store d = +0 and level 0 (the reference: -0 and the mid level)', () => {
    const z = new Float32Array(64);
    expect(quantize('q4_0', z, new Float32Array(64).fill(1)).every((v) => v === 0)).toBe(true);
    expect(quantize('q5_0', z, new Float32Array(64).fill(1)).every((v) => v === 0)).toBe(true);
    for (const t of ['q4_1', 'q5_1'] as const) expect(quantize(t, z, new Float32Array(64).fill(1)).every((v) => v === 0)).toBe(true);
    for (const t of K_TYPES) expect(quantize(t, new Float32Array(256), new Float32Array(256).fill(1)).every((v) => v === 0)).toBe(true);
  });

  it('q8_0 and the float types have no importance quantizer', () => {
    for (const t of ['q8_0', 'f32', 'f16', 'bf16'] as const) expect(jsKernels[t].quantizeRowImportance).toBeUndefined();
    for (const t of IMPORTANCE_TYPES) expect(typeof jsKernels[t].quantizeRowImportance).toBe('function');
  });
});

describe('dotF32 follows the 32-element chunk rule', () => {
  it.each(NEW_TYPES)('%s equals the chunked sum of fr(w_i·x_i) and the float64 sum within 1e-5', (t) => {
    for (let seed = 1; seed <= 10; seed++) {
      const w = quantize(t, randomRow(K, seed));
      const x = randomRow(K + 32, seed + 100);
      const deq = dequantize(t, w, K);
      let want = 0;
      for (let c = 0; c < K; c += 32) {
        let s = 0;
        for (let i = c; i < c + 32; i++) s = fr(s + fr(deq[i] * x[32 + i]));
        want = fr(want + s);
      }
      let sum = 0;
      let abs = 0;
      for (let i = 0; i < K; i++) {
        sum += deq[i] * x[32 + i];
        abs += Math.abs(deq[i] * x[32 + i]);
      }
      const shifted = new Uint8Array(w.length + 5);
      shifted.set(w, 5);
      const got = jsKernels[t].dotF32(shifted, 5, x, 32, K);
      expect(got).toBe(want);
      expect(Math.abs(got - sum)).toBeLessThanOrEqual(1e-5 * abs);
    }
  });
});

describe('dotQ8 follows the project order and matches float64', () => {
  const cases = [
    ['q5_0', 'q8_0'],
    ['q5_1', 'q8_1'],
    ['q4_k', 'q8_k'],
    ['q5_k', 'q8_k'],
    ['q6_k', 'q8_k'],
  ] as const;

  it.each(cases)('%s · %s', (t, act) => {
    expect(TYPES[t].activation).toBe(act);
    const wb = TYPES[t].blockBytes;
    const { size: as, bytes: ab } = ACTIVATION_BLOCK[act];
    for (let seed = 1; seed <= 10; seed++) {
      const w = quantize(t, randomRow(K, seed));
      const a = quantAct(act, randomRow(K, seed + 1000));
      const deqW = dequantize(t, w, K);
      const deqA = dequantAct(act, a, K);
      let sum = 0;
      let abs = 0;
      for (let i = 0; i < K; i++) {
        sum += deqW[i] * deqA[i];
        abs += Math.abs(deqW[i] * deqA[i]);
      }
      // The project order, recomputed from the integer cores.
      let want = 0;
      for (let b = 0; b < K / TYPES[t].blockSize; b++) {
        const o = b * wb;
        const ao = b * (TYPES[t].blockSize / as) * ab;
        if (t === 'q5_0') want = fr(want + fr(fr(f16At(w, o) * f16At(a, ao)) * sumQ5_0Q8_0(w, o, a, ao)));
        else if (t === 'q5_1') {
          want = fr(want + fr(fr(f16At(w, o) * f16At(a, ao)) * sumQ5_1Q8_1(w, o, a, ao)));
          want = fr(want + fr(f16At(w, o + 2) * f16At(a, ao + 2)));
        } else {
          const { A, B } = kCores(t, w, o, a, ao);
          const dy = f32At(a, ao);
          const d = t === 'q6_k' ? f16At(w, o + 208) : f16At(w, o);
          want = fr(want + fr(fr(d * dy) * A));
          if (t !== 'q6_k') want = fr(want - fr(fr(f16At(w, o + 2) * dy) * B));
        }
      }
      const shifted = new Uint8Array(a.length + 3);
      shifted.set(a, 3); // unaligned f32 d of q8_k
      const got = jsKernels[t].dotQ8(w, 0, shifted, 3, K);
      expect(got).toBe(want);
      // q5_1 / q8_1: s is fp16(d·Σqs), within fp16 rounding of Σ d·qs.
      const tol = t === 'q5_1' ? 1e-3 : 1e-5;
      expect(Math.abs(got - sum)).toBeLessThanOrEqual(tol * abs);
    }
  });

  it('integer cores of q5_0 / q5_1 equal the sums over the stored levels', () => {
    const w0 = quantize('q5_0', blockB);
    const w1 = quantize('q5_1', blockB);
    const a0 = quantAct('q8_0', actsA.subarray(0, 32));
    const a1 = quantAct('q8_1', actsA.subarray(0, 32));
    const d0 = dequantize('q5_0', w0, 32);
    const d1 = dequantize('q5_1', w1, 32);
    let s0 = 0;
    let s1 = 0;
    for (let e = 0; e < 32; e++) {
      s0 += Math.round(d0[e] / f16At(w0, 0)) * i8s(a0, 2 + e, 1)[0];
      s1 += Math.round((d1[e] - f16At(w1, 2)) / f16At(w1, 0)) * i8s(a1, 4 + e, 1)[0];
    }
    expect(sumQ5_0Q8_0(w0, 0, a0, 0)).toBe(s0);
    expect(sumQ5_1Q8_1(w1, 0, a1, 0)).toBe(s1);
  });
});

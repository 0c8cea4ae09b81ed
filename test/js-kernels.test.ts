// Tests of the TypeScript kernels against the worked examples of
// quant-formats.md §12 (TV-1 … TV-5, TV-9) plus numeric property tests.

import { describe, expect, it } from 'vitest';
import { TYPES, WEIGHT_TYPES, ACTIVATION_BLOCK, type WeightType } from '../lib/types';
import { jsKernels, quantizeActivationRow } from '../lib/js/kernels';
import { f32ToF16Bits, f16BitsToF32, f32ToBf16Bits, bf16BitsToF32 } from '../lib/js/fp16';
import { rint, roundf, sumQ4_0Q8_0, sumQ4_1Q8_1, sumQ8_0Q8_0 } from '../lib/js/q32';

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

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const f16At = (b: Uint8Array, o: number) => f16BitsToF32(b[o] | (b[o + 1] << 8));

function rowBytes(t: WeightType, k: number): number {
  return (k / TYPES[t].blockSize) * TYPES[t].blockBytes;
}

function quantize(t: WeightType, x: Float32Array): Uint8Array {
  const out = new Uint8Array(rowBytes(t, x.length));
  jsKernels[t].quantizeRow(x, 0, out, 0, x.length);
  return out;
}

function dequantize(t: WeightType, b: Uint8Array, k: number): Float32Array {
  const out = new Float32Array(k);
  jsKernels[t].dequantizeRow(b, 0, out, 0, k);
  return out;
}

function quantAct(act: 'q8_0' | 'q8_1', x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * ACTIVATION_BLOCK[act].bytes);
  quantizeActivationRow(act, x, 0, out, 0, x.length);
  return out;
}

/** Deterministic random floats with a per-block magnitude spread (xorshift32). */
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

const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];
const fromBits = (u: number) => new Float32Array(new Uint32Array([u >>> 0]).buffer)[0];

// ---------------------------------------------------------------- TV-1

describe('TV-1 fp16 / bf16 scalars', () => {
  const table: [number, number, number][] = [
    [1.0, 0x3c00, 1],
    [0.1, 0x2e66, 0.0999755859375],
    [-2.5, 0xc100, -2.5],
    [65504, 0x7bff, 65504],
    [65519, 0x7bff, 65504],
    [65520, 0x7c00, Infinity],
    [1e-8, 0x0000, 0],
    [3e-8, 0x0001, 2 ** -24],
    [6e-5, 0x03ef, 1007 * 2 ** -24],
    [1 + 2 ** -11, 0x3c00, 1],
    [1 + 3 * 2 ** -11, 0x3c02, 1.001953125],
  ];
  it.each(table)('fp16(%f) = %i', (x, bits, value) => {
    expect(f32ToF16Bits(x)).toBe(bits);
    expect(f16BitsToF32(bits)).toBe(value);
    expect(f32ToF16Bits(-x)).toBe(bits ^ 0x8000);
  });

  it('handles the special cases', () => {
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Bits(1e30)).toBe(0x7c00);
    expect(f32ToF16Bits(NaN) & 0x7fff).toBe(0x7e00);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie to even zero
    expect(f32ToF16Bits(fromBits(f32Bits(2 ** -25) + 1))).toBe(1);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(2); // subnormal tie 1.5 units -> 2
    expect(f32ToF16Bits(5 * 2 ** -25)).toBe(2); // 2.5 units -> 2
    expect(f32ToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the smallest normal
    expect(Number.isNaN(f16BitsToF32(0x7e00))).toBe(true);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  it('round-trips every non-NaN fp16 pattern', () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
    }
  });

  it('rounds every midpoint to even and its f32 neighbours to the nearer side', () => {
    for (let h = 0; h < 0x7bff; h++) {
      const lo = f16BitsToF32(h);
      const mid = (lo + f16BitsToF32(h + 1)) / 2; // exact in f32
      const even = h & 1 ? h + 1 : h;
      expect(f32ToF16Bits(mid)).toBe(even);
      expect(f32ToF16Bits(fromBits(f32Bits(mid) - 1))).toBe(h);
      expect(f32ToF16Bits(fromBits(f32Bits(mid) + 1))).toBe(h + 1);
      expect(f32ToF16Bits(-mid)).toBe(even | 0x8000);
    }
  });

  it('bf16 table', () => {
    expect(f32ToBf16Bits(1.0)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16Bits(-3.14159265)).toBe(0xc049);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(3.4e38)).toBe(0x7f80); // rounds up to inf
    expect(f32ToBf16Bits(NaN) & 0x7fc0).toBe(0x7fc0);
    expect(bf16BitsToF32(0x3f82)).toBe(1 + 2 ** -6);
    expect(bf16BitsToF32(0xc049)).toBe(-3.140625);
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0) continue;
      expect(f32ToBf16Bits(bf16BitsToF32(h))).toBe(h);
    }
  });

  it('rounding helpers', () => {
    const rows: [number, number, number][] = [
      [2.5, 3, 2],
      [-2.5, -3, -2],
      [3.5, 4, 4],
      [-0.5, -1, 0],
      [0.49999997, 0, 0],
      [1.4, 1, 1],
      [-1.6, -2, -2],
    ];
    for (const [v, rf, ri] of rows) {
      expect(roundf(v)).toBe(rf);
      expect(rint(v) + 0).toBe(ri);
    }
    // The Q4_0 idiom rounds a value just below a half up (TV-1).
    expect(Math.trunc(Math.fround(Math.fround(0.49999997) + 8.5)) - 8).toBe(1);
  });
});

// ---------------------------------------------------------------- TV-2 … TV-5

const blockA = Float32Array.from({ length: 32 }, (_, i) => (i - 16) / 4);
const blockB = lcg(32, 1);

describe('lcg', () => {
  it('matches lcg(4, 1)', () => {
    expect(Array.from(lcg(4, 1))).toEqual([1.1014404296875, -0.0205078125, 0.029541015625, -0.31866455078125]);
  });
  it('matches TV-8 x[0..7]', () => {
    const x = lcg(8, 99, 2);
    const want = [1.51611328, 1.93127441, 1.12902832, 3.25769043, -3.70239258, -1.33972168, -1.60974121, 3.34667969];
    want.forEach((w, i) => expect(x[i]).toBeCloseTo(w, 7));
  });
});

describe('TV-2 q4_0 block A', () => {
  it('bytes and dequant', () => {
    const b = quantize('q4_0', blockA);
    expect(hex(b)).toBe('0038809191a2a2b3b3c4c4d5d5e6e6f7f7f8');
    const want = [
      -4, -3.5, -3.5, -3, -3, -2.5, -2.5, -2, -2, -1.5, -1.5, -1, -1, -0.5, -0.5, 0, 0, 0.5, 0.5, 1, 1, 1.5, 1.5, 2, 2, 2.5, 2.5, 3, 3,
      3.5, 3.5, 3.5,
    ];
    expect(Array.from(dequantize('q4_0', b, 32))).toEqual(want);
  });
});

describe('TV-2b all-zero blocks', () => {
  const zeros = new Float32Array(64);
  it('q4_0 stores d = -0 and levels 8', () => {
    expect(hex(quantize('q4_0', zeros))).toBe(('0080' + '88'.repeat(16)).repeat(2));
  });
  it.each(['q4_1', 'q8_0'] as const)('%s is all zero bytes', (t) => {
    const b = quantize(t, zeros);
    expect(b.every((v) => v === 0)).toBe(true);
    expect(Array.from(dequantize(t, b, 64)).every((v) => v === 0)).toBe(true);
  });
  it('activations of zeros are zero', () => {
    expect(quantAct('q8_0', zeros).every((v) => v === 0)).toBe(true);
    expect(quantAct('q8_1', zeros).every((v) => v === 0)).toBe(true);
  });
});

describe('TV-3 q4_0 block B', () => {
  it('bytes and dequant', () => {
    expect(blockB[31]).toBeCloseTo(-0.600463867, 8);
    const b = quantize('q4_0', blockB);
    expect(hex(b)).toBe('e2330cc838e7557f1e4f656f8c6eb8924e69');
    const want = [0.985351562, 0, 0, -0.246337891, -0.739013672, 1.72436523, 1.47802734, 1.72436523];
    const got = dequantize('q4_0', b, 32);
    want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 8));
  });
});

describe('TV-4 block B', () => {
  it('q4_1', () => {
    expect(hex(quantize('q4_1', blockB))).toBe('2a34e2bf0cb738d6547f1e4f656f8b5da7823d58');
  });
  it('q8_0 (reference quantizer)', () => {
    expect(hex(quantize('q8_0', blockB))).toBe('f22347ff02ebcc7c637dd4783e61fc9c62088140b15fd6f28fc7e7e708d92b08bcd9');
  });
});

describe('TV-5 q8_0 rounding variants', () => {
  const x = new Float32Array(32);
  x.set([127, 2.5, -2.5, 3.5, 0.5, -0.5, 1.5, 126.5]);
  const qs = (b: Uint8Array, off: number) => Array.from(new Int8Array(b.buffer, b.byteOffset + off, 8));

  it('weight quantizer uses the reference variant (roundf)', () => {
    const b = quantize('q8_0', x);
    expect(b[0] | (b[1] << 8)).toBe(0x3c00);
    expect(qs(b, 2)).toEqual([127, 3, -3, 4, 1, -1, 2, 127]);
  });
  it('q8_0 activation quantizer uses the AVX variant (127/amax, ties to even)', () => {
    const b = quantAct('q8_0', x);
    expect(b[0] | (b[1] << 8)).toBe(0x3c00);
    expect(qs(b, 2)).toEqual([127, 2, -2, 4, 0, 0, 2, 126]);
  });
  it('q8_1 activation quantizer likewise, with s = fp16(d * sum qs)', () => {
    const b = quantAct('q8_1', x);
    expect(b[0] | (b[1] << 8)).toBe(0x3c00);
    expect(b[2] | (b[3] << 8)).toBe(0x5c0c); // 259
    expect(f16At(b, 2)).toBe(259);
    expect(qs(b, 4)).toEqual([127, 2, -2, 4, 0, 0, 2, 126]);
  });
  it('q8_1 s uses the f32 d, not the fp16 one', () => {
    // amax = 1.3: sum qs = 127; 127·d gives fp16 0x3D33, 127·fp16(d) would give 0x3D34.
    const y = new Float32Array(32);
    y[0] = 1.3;
    const b = quantAct('q8_1', y);
    expect(b[2] | (b[3] << 8)).toBe(0x3d33);
    expect(f32ToF16Bits(Math.fround(127 * f16At(b, 0)))).toBe(0x3d34);
  });
});

// ---------------------------------------------------------------- TV-9

describe('TV-9 Q4_0 · Q8_0', () => {
  const acts = lcg(256, 99, 2).subarray(0, 64);
  const w = new Uint8Array(36);
  w.set(quantize('q4_0', blockA), 0);
  w.set(quantize('q4_0', blockB), 18);
  const a = quantAct('q8_0', acts);

  it('q8_0 activation bytes', () => {
    expect(hex(a)).toBe(
      'e727313f256a88d5cc6c8d54ecf8e8f12ba11e400b78c1e3f8205e1114bc1bc9' +
        'bf7f012836d4ea01237c196e7f0e3a54b81028427b43fd25e1571b655971f8be535dadde',
    );
  });
  it('integer sums and scales', () => {
    expect(sumQ4_0Q8_0(w, 0, a, 0)).toBe(-91);
    expect(sumQ4_0Q8_0(w, 18, a, 34)).toBe(1965);
    expect(f16At(w, 0)).toBe(0.5);
    expect(f16At(w, 18)).toBeCloseTo(0.24633789, 8);
    expect(f16At(a, 0)).toBeCloseTo(0.0308685303, 9);
    expect(f16At(a, 34)).toBeCloseTo(0.0312805176, 9);
  });
  it('dotQ8 follows the project order and lands within 1 ulp of ggml', () => {
    const got = jsKernels.q4_0.dotQ8(w, 0, a, 0, 64);
    const fr = Math.fround;
    let acc = fr(0 + fr(fr(0.5 * f16At(a, 0)) * -91));
    acc = fr(acc + fr(fr(f16At(w, 18) * f16At(a, 34)) * 1965));
    expect(got).toBe(acc);
    const bits = f32Bits(got);
    expect(Math.abs(bits - 0x415bca82)).toBeLessThanOrEqual(1);
  });
});

// ---------------------------------------------------------------- properties

const K = 256;
const Q_TYPES = ['q4_0', 'q4_1', 'q8_0'] as const;

describe('quantize / dequantize round trip', () => {
  it.each(Q_TYPES)('%s error is bounded by the block scale', (t) => {
    for (let seed = 1; seed <= 20; seed++) {
      const x = randomRow(K, seed);
      const b = quantize(t, x);
      const y = dequantize(t, b, K);
      const bb = TYPES[t].blockBytes;
      for (let blk = 0; blk < K / 32; blk++) {
        const d = Math.abs(f16At(b, blk * bb));
        const m = t === 'q4_1' ? Math.abs(f16At(b, blk * bb + 2)) : 0;
        // Half a step for rounding (a full step for q4_0's saturated side), plus the
        // effect of storing d and m as fp16 (levels are chosen with the f32 d).
        const maxLevel = { q4_0: 8, q4_1: 15, q8_0: 127 }[t];
        const bound = (t === 'q4_0' ? 1 : 0.5) * d + maxLevel * d * 2 ** -11 + m * 2 ** -11 + 1e-30;
        for (let i = 0; i < 32; i++) {
          const j = blk * 32 + i;
          expect(Math.abs(y[j] - x[j])).toBeLessThanOrEqual(bound * 1.0001);
        }
      }
    }
  });

  it('activation q8_0 / q8_1 error is bounded by half a step', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const x = randomRow(K, seed);
      for (const act of ['q8_0', 'q8_1'] as const) {
        const b = quantAct(act, x);
        const bb = ACTIVATION_BLOCK[act].bytes;
        const qo = act === 'q8_1' ? 4 : 2;
        for (let blk = 0; blk < K / 32; blk++) {
          const d = f16At(b, blk * bb);
          let sum = 0;
          for (let i = 0; i < 32; i++) {
            const q = (b[blk * bb + qo + i] << 24) >> 24;
            sum += q;
            expect(Math.abs(q * d - x[blk * 32 + i])).toBeLessThanOrEqual(0.5 * d + 127 * d * 2 ** -11);
          }
          // s is fp16(sum * f32 d); compare with the fp16 d within both roundings.
          if (act === 'q8_1') expect(Math.abs(f16At(b, blk * bb + 2) - sum * d)).toBeLessThanOrEqual(Math.abs(sum * d) * 2 ** -10);
        }
      }
    }
  });

  it.each(['f32', 'f16', 'bf16'] as const)('%s row is encoded element-wise', (t) => {
    const x = randomRow(K, 7);
    const b = quantize(t, x);
    const y = dequantize(t, b, K);
    const enc = t === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
    const dec = t === 'f16' ? f16BitsToF32 : bf16BitsToF32;
    for (let i = 0; i < K; i++) expect(y[i]).toBe(t === 'f32' ? x[i] : dec(enc(x[i])));
  });

  it('f32 kernels work at unaligned byte offsets', () => {
    const x = randomRow(64, 3);
    const buf = new Uint8Array(3 + 256 + 5);
    jsKernels.f32.quantizeRow(x, 0, buf, 3, 64);
    expect(hex(buf.subarray(3, 259))).toBe(hex(new Uint8Array(x.buffer)));
    const y = new Float32Array(65);
    jsKernels.f32.dequantizeRow(buf, 3, y, 1, 64);
    expect(Array.from(y.subarray(1))).toEqual(Array.from(x));
    let want = 0;
    for (let i = 0; i < 64; i++) want = Math.fround(want + Math.fround(x[i] * x[i]));
    expect(jsKernels.f32.dotF32(buf, 3, x, 0, 64)).toBe(want);
  });

  it('float types reject dotQ8', () => {
    expect(() => jsKernels.f16.dotQ8(new Uint8Array(64), 0, new Uint8Array(34), 0, 32)).toThrow();
  });
});

describe('dotF32 matches a float64 sum of dequantized products', () => {
  it.each(WEIGHT_TYPES)('%s', (t) => {
    for (let seed = 1; seed <= 10; seed++) {
      const w = quantize(t, randomRow(K, seed));
      const x = randomRow(K + 32, seed + 100);
      const deq = dequantize(t, w, K);
      let sum = 0;
      let abs = 0;
      for (let i = 0; i < K; i++) {
        sum += deq[i] * x[32 + i];
        abs += Math.abs(deq[i] * x[32 + i]);
      }
      // Offsets exercise the row-start arithmetic.
      const shifted = new Uint8Array(w.length + 5);
      shifted.set(w, 5);
      const got = jsKernels[t].dotF32(shifted, 5, x, 32, K);
      expect(Math.abs(got - sum)).toBeLessThanOrEqual(1e-5 * abs);
      expect(got).toBe(Math.fround(got));
    }
  });
});

describe('dotQ8 equals the float64 sum of dx·dy·S_b (+ mx·sy)', () => {
  const cases = [
    ['q4_0', 'q8_0', sumQ4_0Q8_0],
    ['q8_0', 'q8_0', sumQ8_0Q8_0],
    ['q4_1', 'q8_1', sumQ4_1Q8_1],
  ] as const;
  it.each(cases)('%s · %s', (t, act, sumFn) => {
    expect(TYPES[t].activation).toBe(act);
    const wb = TYPES[t].blockBytes;
    const ab = ACTIVATION_BLOCK[act].bytes;
    for (let seed = 1; seed <= 20; seed++) {
      const w = quantize(t, randomRow(K, seed));
      const a = quantAct(act, randomRow(K, seed + 1000));
      let sum = 0;
      let abs = 0;
      for (let b = 0; b < K / 32; b++) {
        const s = sumFn(w, b * wb, a, b * ab);
        // Direct check of the integer core against the stored levels.
        let s2 = 0;
        const deqLevels = levels(t, w, b * wb);
        for (let i = 0; i < 32; i++) s2 += deqLevels[i] * ((a[b * ab + (act === 'q8_1' ? 4 : 2) + i] << 24) >> 24);
        expect(s).toBe(s2);
        const term = f16At(w, b * wb) * f16At(a, b * ab) * s;
        sum += term;
        abs += Math.abs(term);
        if (t === 'q4_1') {
          const mt = f16At(w, b * wb + 2) * f16At(a, b * ab + 2);
          sum += mt;
          abs += Math.abs(mt);
        }
      }
      const got = jsKernels[t].dotQ8(w, 0, a, 0, K);
      expect(Math.abs(got - sum)).toBeLessThanOrEqual(1e-6 * abs);
    }
  });
});

/** The signed levels the integer core multiplies (q − 8 for q4_0, q for q4_1, int8 for q8_0). */
function levels(t: 'q4_0' | 'q4_1' | 'q8_0', w: Uint8Array, o: number): number[] {
  const out: number[] = [];
  if (t === 'q8_0') {
    for (let i = 0; i < 32; i++) out.push((w[o + 2 + i] << 24) >> 24);
    return out;
  }
  const qo = t === 'q4_0' ? 2 : 4;
  const bias = t === 'q4_0' ? 8 : 0;
  for (let i = 0; i < 32; i++) out.push((i < 16 ? w[o + qo + i] & 15 : w[o + qo + i - 16] >> 4) - bias);
  return out;
}

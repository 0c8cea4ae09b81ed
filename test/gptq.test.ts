// GPTQ (lib/calibrated.ts, on whichever backend is active) against three
// oracles: round-to-nearest of the same type on held-out activations (the
// issue's target: at most 0.5x its output error), the type's own quantizer
// when the Hessian is a multiple of the identity (then GPTQ has no error to
// spread and must choose RTN's levels), and the int4 group grid's definition
// (GPTQ's find_params, reference §10).

import { describe, expect, it } from 'vitest';
import { dequantize, gptq, gptqAsync, matmul, quantize, QkError, type WeightType } from '../lib/index';
import { TYPES } from '../lib/types';
import { jsKernels } from '../lib/js/kernels';
import { newGrid, readGrid, readLevels } from '../lib/js/grid';
import { activationSource, gaussianWeights, relativeOutputError, rtn, rtnInt4 } from './calib-data';

const ROWS = 256;
const COLS = 512;
const N = 1024;
const source = activationSource(COLS, 7);
const calib = source.rows(N, 11);
const held = source.rows(256, 12);
const weights = gaussianWeights(ROWS, COLS, 5);

describe('gptq: held-out output error against round-to-nearest', () => {
  const cases: { type: 'q4_0' | 'q4_k' | 'int4'; actOrder: boolean; sym?: boolean }[] = [
    { type: 'q4_0', actOrder: false },
    { type: 'q4_k', actOrder: false },
    { type: 'int4', actOrder: false },
    { type: 'q4_0', actOrder: true },
    { type: 'int4', actOrder: true },
    { type: 'int4', actOrder: false, sym: false },
  ];
  for (const c of cases) {
    it(`${c.type}${c.sym === false ? ' asym' : ''}${c.actOrder ? ' act-order' : ''}: <= 0.5x RTN`, () => {
      const { matrix } = gptq(weights, ROWS, COLS, calib, { type: c.type, actOrder: c.actOrder, sym: c.sym });
      expect(matrix.inputOrder).toBeUndefined();
      const ours = relativeOutputError(held, 256, COLS, weights, dequantize(matrix), ROWS);
      const base = relativeOutputError(held, 256, COLS, weights, c.type === 'int4' ? rtnInt4(weights, ROWS, COLS, 128, c.sym ?? true) : rtn(c.type, weights, ROWS, COLS), ROWS);
      expect(ours / base).toBeLessThanOrEqual(0.5);
    });
  }

  it('matmul on the result computes x W^T of the dequantized weights', () => {
    const { matrix } = gptq(weights, ROWS, COLS, calib, { type: 'q4_0', actOrder: true });
    const x = held.subarray(0, 4 * COLS);
    const y = matmul(matrix, x, 4, undefined, { precision: 'f32' });
    const w = dequantize(matrix);
    for (let i = 0; i < 4; i++) {
      for (let o = 0; o < ROWS; o += 17) {
        let s = 0;
        let mag = 0;
        for (let j = 0; j < COLS; j++) {
          s += x[i * COLS + j] * w[o * COLS + j];
          mag += Math.abs(x[i * COLS + j] * w[o * COLS + j]);
        }
        expect(Math.abs(y[i * ROWS + o] - s)).toBeLessThanOrEqual(1e-5 * mag);
      }
    }
  });
});

describe('gptq: exact oracles', () => {
  // With X = I the Hessian is a multiple of I: no column's error reaches
  // another, the block scales come from the untouched weights, and each level
  // is the nearest one on the stored grid. Round-to-nearest picks the same
  // except where llama.cpp rounds with the scale before its fp16 rounding
  // (q4_1, q5_x, q8_0 do): there GPTQ's level must be at least as close.
  const types: WeightType[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k'];
  const identity = new Float32Array(COLS * COLS);
  for (let j = 0; j < COLS; j++) identity[j * COLS + j] = 1;
  for (const type of types) {
    it(`${type}: an identity Hessian gives round-to-nearest's scales and levels`, () => {
      const w = gaussianWeights(32, COLS, 21);
      const { matrix } = gptq(w, 32, COLS, identity, { type: type as 'q4_0' });
      const plain = quantize(w, 32, COLS, type);
      const { blockSize, blockBytes } = TYPES[type];
      const g1 = newGrid(blockSize);
      const g2 = newGrid(blockSize);
      const l1 = new Int32Array(blockSize);
      const l2 = new Int32Array(blockSize);
      let differ = 0;
      for (let o = 0; o < matrix.data.length; o += blockBytes) {
        readGrid(type as 'q4_0', matrix.data, o, g1);
        readGrid(type as 'q4_0', plain.data, o, g2);
        expect(Array.from(g1.a)).toEqual(Array.from(g2.a));
        expect(Array.from(g1.b)).toEqual(Array.from(g2.b));
        readLevels(type as 'q4_0', matrix.data, o, l1);
        readLevels(type as 'q4_0', plain.data, o, l2);
        const base = (o / blockBytes) * blockSize;
        for (let e = 0; e < blockSize; e++) {
          if (l1[e] === l2[e]) continue;
          differ++;
          expect(Math.abs(l1[e] - l2[e])).toBe(1);
          const x = w[base + e];
          const ours = Math.abs(g1.a[e] * (l1[e] - g1.c[e]) - g1.b[e] - x);
          const theirs = Math.abs(g2.a[e] * (l2[e] - g2.c[e]) - g2.b[e] - x);
          expect(ours).toBeLessThanOrEqual(theirs + 1e-6 * Math.abs(g1.a[e]));
        }
      }
      const limit = type === 'q4_0' || type.endsWith('_k') ? 0.001 : 0.05;
      expect(differ).toBeLessThanOrEqual(Math.ceil(limit * 32 * COLS));
    });
  }

  for (const sym of [true, false]) {
    it(`int4 ${sym ? 'sym' : 'asym'}: every group of 128 columns shares one fp16 scale and lies on its 16 levels`, () => {
      const { matrix } = gptq(weights, ROWS, COLS, calib, { type: 'int4', sym, groupSize: 128 });
      expect(matrix.type).toBe(sym ? 'q4_0' : 'q8_0');
      const t = TYPES[matrix.type];
      const rb = (COLS / 32) * t.blockBytes;
      const g = newGrid(32);
      const l = new Int32Array(32);
      for (let r = 0; r < ROWS; r++) {
        for (let c0 = 0; c0 < COLS; c0 += 128) {
          const scales = new Set<number>();
          let lo = Infinity;
          let hi = -Infinity;
          for (let b = 0; b < 4; b++) {
            const o = r * rb + (c0 / 32 + b) * t.blockBytes;
            scales.add(matrix.data[o] | (matrix.data[o + 1] << 8));
            readGrid(matrix.type as 'q4_0', matrix.data, o, g);
            readLevels(matrix.type as 'q4_0', matrix.data, o, l);
            for (let e = 0; e < 32; e++) {
              const q = l[e] - g.c[e];
              lo = Math.min(lo, q);
              hi = Math.max(hi, q);
            }
          }
          expect(scales.size).toBe(1);
          // symmetric: q - 8 in [-8, 7]; asymmetric: q - zero spans at most 16 levels with 0 among them
          if (sym) {
            expect(lo).toBeGreaterThanOrEqual(-8);
            expect(hi).toBeLessThanOrEqual(7);
          } else {
            expect(hi - lo).toBeLessThanOrEqual(15);
            expect(lo).toBeLessThanOrEqual(0);
            expect(hi).toBeGreaterThanOrEqual(-15);
            expect(lo).toBeGreaterThanOrEqual(-15);
          }
        }
      }
    });
  }

  it('gptqAsync gives the bytes gptq gives', async () => {
    const a = gptq(weights, ROWS, COLS, calib, { type: 'q4_k' });
    const b = await gptqAsync(weights, ROWS, COLS, calib, { type: 'q4_k' });
    expect(Buffer.from(b.matrix.data).equals(Buffer.from(a.matrix.data))).toBe(true);
    expect(b.damp).toBe(a.damp);
  });

  it('a singular Hessian is dampened, and dead columns quantize to zero', () => {
    // Only the first 64 columns ever see input: the rest are dead (GPTQ zeroes them).
    const x = source.rows(256, 31);
    for (let t = 0; t < 256; t++) x.fill(0, t * COLS + 64, (t + 1) * COLS);
    const { matrix, damp } = gptq(weights, ROWS, COLS, x, { type: 'q8_0' });
    expect(damp).toBe(0.01);
    const w = dequantize(matrix);
    for (let r = 0; r < ROWS; r++) for (let j = 64; j < COLS; j++) expect(w[r * COLS + j]).toBe(0);
  });
});

describe('gptq: bad arguments are QkErrors', () => {
  const bad: [string, () => unknown, string][] = [
    ['an unknown type', () => gptq(weights, ROWS, COLS, calib, { type: 'q2_k' as 'q4_0' }), 'ERR_QK_TYPE'],
    ['a group size that does not divide cols', () => gptq(weights, ROWS, COLS, calib, { type: 'int4', groupSize: 96 }), 'ERR_QK_SHAPE'],
    ['a group size for a ggml type', () => gptq(weights, ROWS, COLS, calib, { type: 'q4_0', groupSize: 64 }), 'ERR_QK_ARG'],
    ['cols not a multiple of 256 for q4_k', () => gptq(weights.subarray(0, ROWS * 288), ROWS, 288, calib.subarray(0, 288 * 10), { type: 'q4_k' }), 'ERR_QK_SHAPE'],
    ['short weights', () => gptq(weights.subarray(1), ROWS, COLS, calib), 'ERR_QK_LENGTH'],
    ['calib not a whole number of rows', () => gptq(weights, ROWS, COLS, calib.subarray(1)), 'ERR_QK_LENGTH'],
    ['empty calib', () => gptq(weights, ROWS, COLS, new Float32Array(0)), 'ERR_QK_LENGTH'],
    ['calib of the wrong type', () => gptq(weights, ROWS, COLS, new Float64Array(COLS) as unknown as Float32Array), 'ERR_QK_ARG'],
    ['NaN in calib', () => gptq(weights, ROWS, COLS, Float32Array.from(calib.subarray(0, COLS * 4), (v, i) => (i === 77 ? NaN : v))), 'ERR_QK_VALUE'],
    ['Infinity in weights', () => gptq(Float32Array.from(weights, (v, i) => (i === 5 ? Infinity : v)), ROWS, COLS, calib), 'ERR_QK_VALUE'],
    ['a negative dampening', () => gptq(weights, ROWS, COLS, calib, { damp: -1 }), 'ERR_QK_ARG'],
    ['a batch of 0', () => gptq(weights, ROWS, COLS, calib, { batch: 0 }), 'ERR_QK_ARG'],
    ['zero rows', () => gptq(weights, 0, COLS, calib), 'ERR_QK_SHAPE'],
  ];
  for (const [what, call, code] of bad) {
    it(what, () => {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QkError);
      expect((err as QkError).code).toBe(code);
    });
  }

  it('gptqAsync rejects instead of throwing', async () => {
    await expect(gptqAsync(weights, ROWS, COLS, calib.subarray(3))).rejects.toBeInstanceOf(QkError);
  });

  it('a Hessian that no dampening makes positive definite is refused', () => {
    // Two equal rows: X^T X has rank 1 and a positive diagonal (no dead column),
    // and dampening 0 stays 0 however often it is multiplied.
    const x = new Float32Array(COLS * 2);
    for (let j = 0; j < COLS; j++) {
      x[j] = 1;
      x[COLS + j] = 1;
    }
    let err: unknown;
    try {
      gptq(weights, ROWS, COLS, x, { damp: 0 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QkError);
    expect((err as QkError).code).toBe('ERR_QK_VALUE');
    expect(String((err as Error).message)).toMatch(/positive definite/);
  });
});

// The RTN oracle above is the library's own quantizer; make sure the test's
// int4 RTN (written from the formula) and the ggml RTN agree with the JS row
// kernels they stand for.
it('the test oracles are the formulas they claim', () => {
  const w = gaussianWeights(4, 256, 3);
  const r = rtn('q4_0', w, 4, 256);
  const bytes = new Uint8Array(4 * 8 * 18);
  const back = new Float32Array(4 * 256);
  for (let i = 0; i < 4; i++) {
    jsKernels.q4_0.quantizeRow(w, i * 256, bytes, i * 144, 256);
    jsKernels.q4_0.dequantizeRow(bytes, i * 144, back, i * 256, 256);
  }
  expect(Array.from(r)).toEqual(Array.from(back));
  // int4 symmetric with group 32 keeps max|w| of each group exactly representable up to fp16 rounding of the scale
  const q = rtnInt4(w, 4, 256, 32, true);
  for (let g = 0; g < 32; g++) {
    let m = 0;
    let mq = 0;
    for (let e = 0; e < 32; e++) {
      m = Math.max(m, Math.abs(w[g * 32 + e]));
      mq = Math.max(mq, Math.abs(q[g * 32 + e]));
    }
    expect(Math.abs(mq - m)).toBeLessThanOrEqual(m * 0.07 + 1e-6);
  }
});

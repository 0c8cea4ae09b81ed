// AWQ (lib/calibrated.ts, on whichever backend is active) against
// round-to-nearest on held-out activations (the target: at most 0.6x
// its output error), and against its own definition: without the clipping
// search the matrix is exactly the type's quantizer applied to W diag(s), and
// the scales are mean|x|^r / (mean|w|^(1-r) + 1e-4) normalised by
// sqrt(max * min) for the r it reports.

import { describe, expect, it } from 'vitest';
import { awq, awqAsync, dequantize, matmul, quantize, QkError } from '../lib/index';
import { activationSource, gaussianWeights, relativeOutputError, rtn, rtnInt4 } from './calib-data';

const ROWS = 192;
const COLS = 512;
const N = 768;
const source = activationSource(COLS, 17);
const calib = source.rows(N, 19);
const held = source.rows(192, 23);
const weights = gaussianWeights(ROWS, COLS, 29);

/** W-hat with the input scales undone: what the layer computes on x. */
function effective(m: ReturnType<typeof awq>): Float32Array {
  const w = dequantize(m.matrix);
  for (let r = 0; r < ROWS; r++) for (let j = 0; j < COLS; j++) w[r * COLS + j] /= m.inputScales[j];
  return w;
}

describe('awq: held-out output error against round-to-nearest', () => {
  const cases: { type: 'q4_0' | 'q4_k' | 'int4'; sym?: boolean }[] = [{ type: 'q4_0' }, { type: 'q4_k' }, { type: 'int4', sym: false }];
  for (const c of cases) {
    it(`${c.type}${c.type === 'int4' ? ' (zero points, g128)' : ''}: <= 0.6x RTN`, () => {
      const res = awq(weights, ROWS, COLS, calib, { type: c.type, sym: c.sym });
      const ours = relativeOutputError(held, 192, COLS, weights, effective(res), ROWS);
      const base = relativeOutputError(held, 192, COLS, weights, c.type === 'int4' ? rtnInt4(weights, ROWS, COLS, 128, false) : rtn(c.type, weights, ROWS, COLS), ROWS);
      expect(ours / base).toBeLessThanOrEqual(0.6);
    });
  }

  it('the caller recipe: matmul(matrix, x / inputScales) approximates x W^T better than RTN', () => {
    const res = awq(weights, ROWS, COLS, calib, { type: 'q4_0' });
    const m = 16;
    const x = held.subarray(0, m * COLS);
    const xs = Float32Array.from(x, (v, i) => v / res.inputScales[i % COLS]);
    const y = matmul(res.matrix, xs, m);
    const yr = matmul(quantize(weights, ROWS, COLS, 'q4_0'), x, m);
    let num = 0;
    let numRtn = 0;
    let den = 0;
    for (let i = 0; i < m; i++) {
      for (let o = 0; o < ROWS; o++) {
        let t = 0;
        for (let j = 0; j < COLS; j++) t += x[i * COLS + j] * weights[o * COLS + j];
        num += (y[i * ROWS + o] - t) ** 2;
        numRtn += (yr[i * ROWS + o] - t) ** 2;
        den += t * t;
      }
    }
    expect(Math.sqrt(num / den)).toBeLessThan(0.6 * Math.sqrt(numRtn / den));
  });
});

describe('awq: its definition', () => {
  it('without clipping, the matrix is the type quantizer of W diag(s), and s follows the formula for the reported r', () => {
    const res = awq(weights, ROWS, COLS, calib, { type: 'q4_k', clip: false, grid: 10 });
    expect(res.ratio).not.toBeNull();
    const r = res.ratio as number;
    expect(r * 10).toBeCloseTo(Math.round(r * 10), 12);
    const scaled = Float32Array.from(weights, (v, i) => v * res.inputScales[i % COLS]);
    expect(Buffer.from(res.matrix.data).equals(Buffer.from(quantize(scaled, ROWS, COLS, 'q4_k').data))).toBe(true);
    // s from the statistics, independently
    const xMean = new Float64Array(COLS);
    for (let t = 0; t < N; t++) for (let j = 0; j < COLS; j++) xMean[j] += Math.abs(calib[t * COLS + j]) / N;
    const wMean = new Float64Array(COLS);
    for (let r = 0; r < ROWS; r++) {
      for (let c0 = 0; c0 < COLS; c0 += 32) {
        let mx = 0;
        for (let e = 0; e < 32; e++) mx = Math.max(mx, Math.abs(weights[r * COLS + c0 + e]));
        for (let e = 0; e < 32; e++) wMean[c0 + e] += Math.abs(weights[r * COLS + c0 + e]) / mx / ROWS;
      }
    }
    const s = Array.from(xMean, (x, j) => Math.max(1e-4, x ** r / (wMean[j] ** (1 - r) + 1e-4)));
    const norm = Math.sqrt(Math.max(...s) * Math.min(...s));
    for (let j = 0; j < COLS; j++) expect(res.inputScales[j]).toBeCloseTo(s[j] / norm, 5);
  });

  it('clipping lowers the held-out error on these activations', () => {
    const clipped = awq(weights, ROWS, COLS, calib, { type: 'q4_0' });
    const plain = awq(weights, ROWS, COLS, calib, { type: 'q4_0', clip: false });
    expect(clipped.ratio).toBe(plain.ratio);
    const ec = relativeOutputError(held, 192, COLS, weights, effective(clipped), ROWS);
    const ep = relativeOutputError(held, 192, COLS, weights, effective(plain), ROWS);
    expect(ec).toBeLessThan(ep);
  });

  it('given inputScales, the search is skipped and the rest is the same', () => {
    const searched = awq(weights, ROWS, COLS, calib, { type: 'q4_k' });
    const given = awq(weights, ROWS, COLS, calib, { type: 'q4_k', inputScales: searched.inputScales });
    expect(given.ratio).toBeNull();
    expect(Array.from(given.inputScales)).toEqual(Array.from(searched.inputScales));
    expect(Buffer.from(given.matrix.data).equals(Buffer.from(searched.matrix.data))).toBe(true);
    // and a different type on the same scales: q6_k's quantizer of the clipped W diag(s)
    const other = awq(weights, ROWS, COLS, calib, { type: 'q6_k', inputScales: searched.inputScales, clip: false });
    const scaled = Float32Array.from(weights, (v, i) => v * searched.inputScales[i % COLS]);
    expect(Buffer.from(other.matrix.data).equals(Buffer.from(quantize(scaled, ROWS, COLS, 'q6_k').data))).toBe(true);
  });

  it('a grid of one point is r = 0: scales from the weights alone', () => {
    const res = awq(weights, ROWS, COLS, calib, { type: 'q8_0', grid: 1, clip: false });
    expect(res.ratio).toBe(0);
    for (const v of res.inputScales) expect(Number.isFinite(v) && v > 0).toBe(true);
  });

  it('awqAsync gives the result awq gives', async () => {
    const a = awq(weights, ROWS, COLS, calib, { type: 'int4' });
    const b = await awqAsync(weights, ROWS, COLS, calib, { type: 'int4' });
    expect(a.matrix.type).toBe('q8_0');
    expect(Buffer.from(b.matrix.data).equals(Buffer.from(a.matrix.data))).toBe(true);
    expect(Array.from(b.inputScales)).toEqual(Array.from(a.inputScales));
    expect(b.ratio).toBe(a.ratio);
  });

  it('bad arguments are QkErrors', async () => {
    const calls: [() => unknown, string][] = [
      [() => awq(weights, ROWS, COLS, calib, { grid: 0 }), 'ERR_QK_ARG'],
      [() => awq(weights, ROWS, COLS, calib, { tokens: 1.5 }), 'ERR_QK_ARG'],
      [() => awq(weights, ROWS, COLS, calib, { clip: 1 as unknown as boolean }), 'ERR_QK_ARG'],
      [() => awq(weights, ROWS, 500, calib), 'ERR_QK_SHAPE'],
      [() => awq(weights, ROWS, COLS, calib.subarray(5)), 'ERR_QK_LENGTH'],
      [() => awq(weights, ROWS, COLS, Float32Array.from(calib.subarray(0, COLS), () => NaN)), 'ERR_QK_VALUE'],
      [() => awq(weights, ROWS, COLS, calib, { inputScales: new Float32Array(COLS) }), 'ERR_QK_VALUE'],
      [() => awq(weights, ROWS, COLS, calib, { inputScales: new Float32Array(COLS - 1).fill(1) }), 'ERR_QK_LENGTH'],
    ];
    for (const [call, code] of calls) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QkError);
      expect((err as QkError).code).toBe(code);
    }
    await expect(awqAsync(weights, ROWS, COLS, calib, { type: 'q3_k' as 'q4_0' })).rejects.toBeInstanceOf(QkError);
  });
});

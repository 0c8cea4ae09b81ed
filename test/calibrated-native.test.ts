// The native GPTQ and AWQ (native/src/gptq.cc, awq.cc) against their float64
// references (lib/js/gptq.ts, lib/js/awq.ts), through the backend objects so
// that both run on the same arguments: the same dampening / exponent, the same
// input scales, and dequantized matrices that agree. The native code sums in
// another order (blocked products, 4-lane dot products), so a weight whose
// value falls on a rounding tie of the grid can round the other way and GPTQ
// then spreads a different error; the bytes need not be identical, and the
// checks are: at least 99% of the dequantized elements equal, and the
// held-out relative output error within 2% (relative) of the reference's.
// Every ISA's kernel table gives the same bytes (the GEMM's micro-kernel is
// per ISA). Also: async gives the sync bytes, bad lengths straight to the addon throw a
// QkError instead of crashing, internal failures are QkErrors, and the event
// loop keeps running during gptqAsync.

import { describe, expect, it } from 'vitest';
import type { Backend, CalibParams } from '../lib/backend';
import { QkError } from '../lib/errors';
import { jsBackend } from '../lib/js/backend';
import { loadAddon, loadNative, type NativeAddon } from '../lib/native';
import { TYPES } from '../lib/types';
import { activationSource, gaussianWeights, relativeOutputError } from './calib-data';

const native: Backend = loadNative();
const addon: NativeAddon = loadAddon();

type Target = CalibParams['type'];
interface Case {
  type: Target;
  groupSize: number; // -1: the whole row
  sym: boolean;
}
const CASES: Case[] = [
  { type: 'q4_0', groupSize: 0, sym: true },
  { type: 'q4_k', groupSize: 0, sym: true },
  { type: 'q6_k', groupSize: 0, sym: true },
  { type: 'int4', groupSize: 128, sym: true },
  { type: 'int4', groupSize: 128, sym: false },
  { type: 'int4', groupSize: -1, sym: true },
  { type: 'int4', groupSize: -1, sym: false },
];
// 96 x 512 with 640 calibration rows: AWQ scores on 512 of them, evenly spaced.
const SHAPES = [
  { rows: 64, cols: 256, n: 512 },
  { rows: 96, cols: 512, n: 640 },
];

function params(c: Case, cols: number, extra: Partial<CalibParams> = {}): CalibParams {
  const groupSize = c.type !== 'int4' ? 0 : c.groupSize === -1 ? cols : c.groupSize;
  return { type: c.type, groupSize, sym: c.sym, actOrder: false, damp: 0.01, batch: 128, grid: 20, tokens: 512, clip: true, scales: null, ...extra };
}

function storageOf(c: Pick<Case, 'type' | 'sym'>): keyof typeof TYPES {
  return c.type === 'int4' ? (c.sym ? 'q4_0' : 'q8_0') : c.type;
}

function bytesOf(c: Pick<Case, 'type' | 'sym'>, rows: number, cols: number): number {
  const t = TYPES[storageOf(c)];
  return rows * (cols / t.blockSize) * t.blockBytes;
}

function deq(c: Case, data: Uint8Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  jsBackend.dequantize(storageOf(c), data, rows, cols, out);
  return out;
}

function sameFraction(a: Float32Array, b: Float32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

function scaledWeights(w: Float32Array, rows: number, cols: number, s: Float32Array): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) out[r * cols + j] = w[r * cols + j] * s[j];
  return out;
}

const label = (c: Case) => `${c.type}${c.type === 'int4' ? ` g${c.groupSize} ${c.sym ? 'sym' : 'asym'}` : ''}`;

for (const { rows, cols, n } of SHAPES) {
  const source = activationSource(cols, 7);
  const calib = source.rows(n, 11);
  const held = source.rows(256, 12);
  const weights = gaussianWeights(rows, cols, 5);

  describe(`native gptq = reference, ${rows}x${cols}, ${n} calibration rows`, () => {
    for (const c of CASES) {
      for (const actOrder of [false, true]) {
        it(`${label(c)}${actOrder ? ' act-order' : ''}`, () => {
          const p = params(c, cols, { actOrder });
          const a = new Uint8Array(bytesOf(c, rows, cols));
          const b = new Uint8Array(a.length);
          const dampNative = native.gptq(p, weights, rows, cols, calib, n, a);
          const dampJs = jsBackend.gptq(p, weights, rows, cols, calib, n, b);
          expect(dampNative).toBe(dampJs);
          const va = deq(c, a, rows, cols);
          const vb = deq(c, b, rows, cols);
          expect(sameFraction(va, vb)).toBeGreaterThanOrEqual(0.99);
          const ea = relativeOutputError(held, 256, cols, weights, va, rows);
          const eb = relativeOutputError(held, 256, cols, weights, vb, rows);
          expect(Math.abs(ea - eb) / eb).toBeLessThanOrEqual(0.02);
          // and it did quantize: the error is that of a 4-6 bit grid, not of garbage
          expect(ea).toBeLessThan(0.2);
        });
      }
    }
  });

  describe(`native awq = reference, ${rows}x${cols}, ${n} calibration rows`, () => {
    for (const c of CASES) {
      it(label(c), () => {
        const p = params(c, cols);
        const a = new Uint8Array(bytesOf(c, rows, cols));
        const b = new Uint8Array(a.length);
        const sa = new Float32Array(cols);
        const sb = new Float32Array(cols);
        const ra = native.awq(p, weights, rows, cols, calib, n, a, sa);
        const rb = jsBackend.awq(p, weights, rows, cols, calib, n, b, sb);
        expect(ra).toBe(rb);
        for (let j = 0; j < cols; j++) expect(Math.abs(sa[j] - sb[j])).toBeLessThanOrEqual(1e-6 * Math.abs(sb[j]));
        const va = deq(c, a, rows, cols);
        const vb = deq(c, b, rows, cols);
        expect(sameFraction(va, vb)).toBeGreaterThanOrEqual(0.99);
        // the matrix holds Q(W diag(s)): compare it with W diag(s) on x / s, i.e. X W^T on the held-out rows
        const ws = scaledWeights(weights, rows, cols, sb);
        const heldScaled = new Float32Array(held.length);
        for (let t = 0; t < 256; t++) for (let j = 0; j < cols; j++) heldScaled[t * cols + j] = held[t * cols + j] / sb[j];
        const ea = relativeOutputError(heldScaled, 256, cols, ws, va, rows);
        const eb = relativeOutputError(heldScaled, 256, cols, ws, vb, rows);
        expect(Math.abs(ea - eb) / eb).toBeLessThanOrEqual(0.02);
        expect(ea).toBeLessThan(0.2);
      });
    }
  });
}

// The GEMM under GPTQ and AWQ (native/src/dense.cc) takes its micro-kernel
// from the kernel table of the active ISA (kernels_<isa>_gemm.cc): the same
// C++ without FMA contraction, so every ISA must give the same bits. 70 rows
// and 300 calibration rows leave partial micro-tiles on both sides.
describe('native gptq / awq give the same bytes under every ISA this CPU runs', () => {
  const rows = 70, cols = 512, n = 300;
  const calib = activationSource(cols, 41).rows(n, 42);
  const weights = gaussianWeights(rows, cols, 43);
  const isas = native.info().isas;
  const CROSS: Case[] = [CASES[0], CASES[1], CASES[2], CASES[3], CASES[4], { type: 'q5_1', groupSize: 0, sym: true }];

  function under<T>(isa: string, fn: () => T): T {
    native.setIsa(isa);
    try {
      return fn();
    } finally {
      native.setIsa('auto');
    }
  }

  it('the ISA list has scalar (and the check compares something when there is more)', () => {
    expect(isas).toContain('scalar');
    if (process.arch === 'x64' && isas.length === 1) console.warn('calibrated-native: only scalar on this CPU; the cross-ISA checks compare scalar with itself');
  });

  for (const c of CROSS) {
    for (const actOrder of [false, true]) {
      it(`gptq ${label(c)}${actOrder ? ' act-order' : ''}`, () => {
        const p = params(c, cols, { actOrder });
        const run = (isa: string) =>
          under(isa, () => {
            const dst = new Uint8Array(bytesOf(c, rows, cols));
            const damp = native.gptq(p, weights, rows, cols, calib, n, dst);
            return { damp, bytes: Buffer.from(dst) };
          });
        const ref = run('scalar');
        expect(ref.bytes.some((v) => v !== 0)).toBe(true);
        for (const isa of isas) {
          const r = run(isa);
          expect(r.damp, isa).toBe(ref.damp);
          expect(r.bytes.equals(ref.bytes), `${isa} bytes = scalar bytes`).toBe(true);
        }
        // and scalar is the native answer the reference tests above accept
        if (!actOrder && c.type !== 'q5_1') {
          const b = new Uint8Array(ref.bytes.length);
          expect(jsBackend.gptq(p, weights, rows, cols, calib, n, b)).toBe(ref.damp);
          expect(sameFraction(deq(c, new Uint8Array(ref.bytes), rows, cols), deq(c, b, rows, cols))).toBeGreaterThanOrEqual(0.99);
        }
      });
    }
    it(`awq ${label(c)}`, () => {
      const p = params(c, cols);
      const run = (isa: string) =>
        under(isa, () => {
          const dst = new Uint8Array(bytesOf(c, rows, cols));
          const scales = new Float32Array(cols);
          const ratio = native.awq(p, weights, rows, cols, calib, n, dst, scales);
          return { ratio, bytes: Buffer.from(dst), scales: Buffer.from(scales.buffer) };
        });
      const ref = run('scalar');
      expect(ref.bytes.some((v) => v !== 0)).toBe(true);
      for (const isa of isas) {
        const r = run(isa);
        expect(r.ratio, isa).toBe(ref.ratio);
        expect(r.scales.equals(ref.scales), `${isa} scales = scalar scales`).toBe(true);
        expect(r.bytes.equals(ref.bytes), `${isa} bytes = scalar bytes`).toBe(true);
      }
    });
  }
});

describe('native awq with given input scales', () => {
  it('skips the search (ratio -1), uses the scales, and matches the reference', () => {
    const rows = 64, cols = 256, n = 300;
    const calib = activationSource(cols, 3).rows(n, 4);
    const weights = gaussianWeights(rows, cols, 9);
    const given = new Float32Array(cols);
    for (let j = 0; j < cols; j++) given[j] = 0.5 + (j % 7) / 4;
    const c: Case = { type: 'int4', groupSize: 128, sym: false };
    const p = params(c, cols, { scales: given });
    const a = new Uint8Array(bytesOf(c, rows, cols));
    const b = new Uint8Array(a.length);
    const sa = new Float32Array(cols);
    const sb = new Float32Array(cols);
    expect(native.awq(p, weights, rows, cols, calib, n, a, sa)).toBe(-1);
    expect(jsBackend.awq(p, weights, rows, cols, calib, n, b, sb)).toBe(-1);
    expect(Array.from(sa)).toEqual(Array.from(given));
    expect(sameFraction(deq(c, a, rows, cols), deq(c, b, rows, cols))).toBeGreaterThanOrEqual(0.99);
  });
});

describe('native async variants', () => {
  const rows = 96, cols = 512, n = 640;
  const calib = activationSource(cols, 21).rows(n, 22);
  const weights = gaussianWeights(rows, cols, 23);

  it('gptqAsync gives the bytes and dampening gptq gives', async () => {
    for (const c of [CASES[1], CASES[4]]) {
      const p = params(c, cols, { actOrder: true });
      const a = new Uint8Array(bytesOf(c, rows, cols));
      const b = new Uint8Array(a.length);
      const d1 = native.gptq(p, weights, rows, cols, calib, n, a);
      const d2 = await native.gptqAsync(p, weights, rows, cols, calib, n, b);
      expect(d2).toBe(d1);
      expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
      expect(a.some((v) => v !== 0)).toBe(true);
    }
  });

  it('awqAsync gives the bytes, scales and ratio awq gives', async () => {
    const c = CASES[2];
    const p = params(c, cols);
    const a = new Uint8Array(bytesOf(c, rows, cols));
    const b = new Uint8Array(a.length);
    const sa = new Float32Array(cols);
    const sb = new Float32Array(cols);
    const r1 = native.awq(p, weights, rows, cols, calib, n, a, sa);
    const r2 = await native.awqAsync(p, weights, rows, cols, calib, n, b, sb);
    expect(r2).toBe(r1);
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
    expect(Array.from(sb)).toEqual(Array.from(sa));
  });

  it('the event loop keeps ticking during gptqAsync on a 1024x2048 layer', async () => {
    const R = 1024, C = 2048, N = 2048;
    const x = activationSource(C, 31).rows(N, 32);
    const w = gaussianWeights(R, C, 33);
    const c = CASES[3];
    const dst = new Uint8Array(bytesOf(c, R, C));
    let ticks = 0;
    let settled = false;
    const timer = setInterval(() => {
      if (!settled) ticks++;
    }, 5);
    const t0 = performance.now();
    try {
      const damp = await native.gptqAsync(params(c, C), w, R, C, x, N, dst);
      settled = true;
      expect(damp).toBe(0.01);
    } finally {
      clearInterval(timer);
    }
    const ms = performance.now() - t0;
    // the job must be long enough for the check to mean something, and the loop ran meanwhile
    expect(ms).toBeGreaterThan(50);
    expect(ticks).toBeGreaterThanOrEqual(Math.min(5, Math.floor(ms / 5 / 4)));
    expect(ticks).toBeGreaterThanOrEqual(3);
    expect(dst.some((v) => v !== 0)).toBe(true);
  }, 60_000);
});

describe('native gptq / awq reject bad arguments with a QkError', () => {
  const rows = 8, cols = 64, n = 16;
  const w = gaussianWeights(rows, cols, 1);
  const x = activationSource(cols, 2).rows(n, 3);
  const q40 = 2; // ggml ids
  const dst = new Uint8Array(rows * 2 * 18);
  const scales = new Float32Array(cols);

  const gptqCall = (over: { type?: number; group?: number; w?: Float32Array; rows?: number; cols?: number; x?: Float32Array; n?: number; dst?: Uint8Array; times?: Float64Array }) =>
    addon.gptq(over.type ?? q40, over.group ?? 0, true, false, 0.01, 128, over.w ?? w, over.rows ?? rows, over.cols ?? cols, over.x ?? x, over.n ?? n, over.dst ?? dst, over.times);
  const awqCall = (over: { type?: number; group?: number; w?: Float32Array; x?: Float32Array; n?: number; dst?: Uint8Array; scales?: Float32Array; given?: Float32Array | null }) =>
    addon.awq(over.type ?? q40, over.group ?? 0, true, 20, 512, true, over.w ?? w, rows, cols, over.x ?? x, over.n ?? n, over.dst ?? dst, over.scales ?? scales, over.given ?? null);

  function expectQkError(fn: () => unknown, code: string): void {
    let err: unknown = null;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QkError);
    expect((err as QkError).code).toBe(code);
  }

  it('the valid call works (so the failures below are the arguments)', () => {
    expect(gptqCall({})).toBe(0.01);
    expect(awqCall({})).toBeGreaterThanOrEqual(0);
  });

  it('wrong buffer lengths', () => {
    expectQkError(() => gptqCall({ w: w.subarray(1) }), 'ERR_QK_LENGTH');
    expectQkError(() => gptqCall({ x: x.subarray(0, x.length - 1) }), 'ERR_QK_LENGTH');
    expectQkError(() => gptqCall({ n: n + 1 }), 'ERR_QK_LENGTH');
    expectQkError(() => gptqCall({ dst: dst.subarray(1) }), 'ERR_QK_LENGTH');
    expectQkError(() => gptqCall({ dst: new Uint8Array(dst.length + 1) }), 'ERR_QK_LENGTH');
    expectQkError(() => gptqCall({ rows: rows + 1 }), 'ERR_QK_LENGTH');
    expectQkError(() => gptqCall({ times: new Float64Array(2) }), 'ERR_QK_LENGTH');
    expectQkError(() => awqCall({ scales: new Float32Array(cols - 1) }), 'ERR_QK_LENGTH');
    expectQkError(() => awqCall({ given: new Float32Array(cols + 1).fill(1) }), 'ERR_QK_LENGTH');
    expectQkError(() => awqCall({ dst: new Uint8Array(3) }), 'ERR_QK_LENGTH');
  });

  it('bad shapes, types and groups', () => {
    expectQkError(() => gptqCall({ cols: 48 }), 'ERR_QK_SHAPE');
    expectQkError(() => gptqCall({ type: 12 }), 'ERR_QK_SHAPE'); // q4_K needs cols % 256
    expectQkError(() => gptqCall({ type: 0 }), 'ERR_QK_TYPE'); // f32 is not a calibrated grid
    expectQkError(() => gptqCall({ type: 99 }), 'ERR_QK_TYPE');
    expectQkError(() => gptqCall({ type: -1, group: 48 }), 'ERR_QK_SHAPE');
    expectQkError(() => gptqCall({ type: -1, group: 128 }), 'ERR_QK_SHAPE'); // does not divide 64
    expectQkError(() => awqCall({ type: -1, group: 40 }), 'ERR_QK_SHAPE');
    expectQkError(() => gptqCall({ n: 0, x: new Float32Array(0) }), 'ERR_QK_SHAPE');
  });

  it('wrong argument kinds', () => {
    expectQkError(() => addon.gptq(q40, 0, true, false, 0.01, 128, new Float64Array(rows * cols) as unknown as Float32Array, rows, cols, x, n, dst), 'ERR_QK_ARG');
    expectQkError(() => addon.gptq(q40, 0, 1 as unknown as boolean, false, 0.01, 128, w, rows, cols, x, n, dst), 'ERR_QK_ARG');
    expectQkError(() => addon.gptq(q40, 0, true, false, Number.NaN, 128, w, rows, cols, x, n, dst), 'ERR_QK_ARG');
    expectQkError(() => addon.gptq(q40, 0, true, false, 0.01, 0, w, rows, cols, x, n, dst), 'ERR_QK_ARG');
    expectQkError(() => awqCall({ given: new Float32Array(cols) }), 'ERR_QK_VALUE'); // scales must be > 0
    const nan = w.slice();
    nan[5] = Number.NaN;
    expectQkError(() => gptqCall({ w: nan }), 'ERR_QK_VALUE');
  });

  it('the async forms reject the same way', async () => {
    await expect(addon.gptqAsync(q40, 0, true, false, 0.01, 128, w.subarray(1), rows, cols, x, n, dst)).rejects.toBeInstanceOf(QkError);
    await expect(addon.awqAsync(q40, 0, true, 20, 512, true, w, rows, cols, x, n, dst, new Float32Array(1), null)).rejects.toMatchObject({ code: 'ERR_QK_LENGTH' });
    expect(() => addon.gptqAsync(q40, 0, true, false, 0.01, 128, w, rows, cols, x, n, 'no' as unknown as Uint8Array)).toThrow(QkError);
  });

  it('a Hessian that stays singular is ERR_QK_VALUE, as in the reference', () => {
    // two identical columns of ones in one of two rows: H has the exact 2x2 block [[1,1],[1,1]]; no dampening
    const xs = new Float32Array(2 * cols);
    xs[0] = 1;
    xs[1] = 1;
    const p = params({ type: 'q4_0', groupSize: 0, sym: true }, cols, { damp: 0 });
    let ours: unknown = null;
    try {
      native.gptq(p, w, rows, cols, xs, 2, new Uint8Array(dst.length));
    } catch (e) {
      ours = e;
    }
    expect(ours).toBeInstanceOf(QkError);
    expect((ours as QkError).code).toBe('ERR_QK_VALUE');
    expect((ours as Error).message).toMatch(/not positive definite/);
    expect(() => jsBackend.gptq(p, w, rows, cols, xs, 2, new Uint8Array(dst.length))).toThrow(/not positive definite/);
  });

  it('a block scale beyond fp16 is ERR_QK_VALUE, as in the reference', () => {
    const big = w.slice();
    big[3] = 1e7; // q4_0's d = max / -8 overflows fp16
    const p = params({ type: 'q4_0', groupSize: 0, sym: true }, cols);
    let ours: unknown = null;
    try {
      native.gptq(p, big, rows, cols, x, n, new Uint8Array(dst.length));
    } catch (e) {
      ours = e;
    }
    expect(ours).toBeInstanceOf(QkError);
    expect((ours as QkError).code).toBe('ERR_QK_VALUE');
    expect((ours as Error).message).toMatch(/row 0's block at column 0 has a scale beyond fp16's range/);
    expect(() => jsBackend.gptq(p, big, rows, cols, x, n, new Uint8Array(dst.length))).toThrow(/row 0's block at column 0/);
  });
});

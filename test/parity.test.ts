// Native (every ISA this CPU runs) against the TypeScript oracle: quantize,
// dequantize and activation quantization byte for byte; matmul within
// 1e-5 * sum_k |x[k] * W[n][k]| (only the float summation order differs).
import { describe, expect, it } from 'vitest';
import type { Backend } from '../lib/backend';
import { activationRowBytes, INTERLEAVED_TYPES, layoutBytes, TYPES, WEIGHT_TYPES, type WeightType } from '../lib/types';
import { jsBackend, makeInput, nativeBackend, PATTERNS, type Pattern } from './helpers';

const native = nativeBackend();
if (!native) throw new Error('the native addon did not load: build it with `npm install` (node-gyp) before running the parity suite');
const nat: Backend = native;

const rowBytes = (t: WeightType, k: number) => (k / TYPES[t].blockSize) * TYPES[t].blockBytes;

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function quantizeWith(b: Backend, t: WeightType, x: Float32Array, rows: number, cols: number): Uint8Array {
  const out = new Uint8Array(rows * rowBytes(t, cols));
  b.quantize(t, x, rows, cols, out, null);
  return out;
}

const IMPORTANCE_TYPES = new Set<WeightType>(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k']);

/** The activation row as the integer kernels see it: int8 levels times the block scale. */
function dequantizeActivations(t: WeightType, act: Uint8Array, m: number, cols: number): Float64Array {
  const out = new Float64Array(m * cols);
  const kind = TYPES[t].activation;
  const dv = new DataView(act.buffer, act.byteOffset, act.byteLength);
  if (kind === 'q8_k') {
    for (let b = 0; b < (m * cols) / 256; b++) {
      const o = b * 292;
      const d = dv.getFloat32(o, true);
      for (let j = 0; j < 256; j++) out[b * 256 + j] = dv.getInt8(o + 4 + j) * d;
    }
    return out;
  }
  const ab = kind === 'q8_1' ? 36 : 34;
  for (let b = 0; b < (m * cols) / 32; b++) {
    const o = b * ab;
    const d = halfToFloat(dv.getUint16(o, true));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = dv.getInt8(o + ab - 32 + j) * d;
  }
  return out;
}

/** The additive part of each dequantized weight (q4_1/q5_1 block min, K-quant sub-block min), else 0. */
function weightOffsets(t: WeightType, wq: Uint8Array, rows: number, cols: number): Float64Array {
  const off = new Float64Array(rows * cols);
  const dv = new DataView(wq.buffer, wq.byteOffset, wq.byteLength);
  const bb = TYPES[t].blockBytes;
  for (let i = 0; i < rows * cols; i++) {
    if (t === 'q4_1' || t === 'q5_1') {
      off[i] = halfToFloat(dv.getUint16(Math.floor(i / 32) * bb + 2, true));
    } else if (t === 'q4_k' || t === 'q5_k') {
      const o = Math.floor(i / 256) * bb;
      const j = Math.floor((i % 256) / 32);
      const sc = (n: number) => wq[o + 4 + n];
      const mn = j < 4 ? sc(j + 4) & 63 : (sc(j + 4) >> 4) | ((sc(j) >> 6) << 4);
      off[i] = halfToFloat(dv.getUint16(o + 2, true)) * mn;
    }
  }
  return off;
}

/** Per-term magnitude bound of the 'q8' dot products: |xq| * (|w| + 2|offset|). */
function q8Bound(t: WeightType, w: Float32Array, wq: Uint8Array, act: Uint8Array, rows: number, cols: number, m: number): Float64Array {
  const xq = dequantizeActivations(t, act, m, cols);
  const off = weightOffsets(t, wq, rows, cols);
  const bound = new Float64Array(m * rows);
  for (let n = 0; n < rows; n++) {
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += Math.abs(xq[i * cols + k]) * (Math.abs(w[n * cols + k]) + 2 * Math.abs(off[n * cols + k]));
      bound[i * rows + n] = s;
    }
  }
  return bound;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function f32Bound(w: Float32Array, x: Float32Array, rows: number, cols: number, m: number): Float64Array {
  const bound = new Float64Array(m * rows);
  for (let n = 0; n < rows; n++) {
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += Math.abs(w[n * cols + k] * x[i * cols + k]);
      bound[i * rows + n] = s;
    }
  }
  return bound;
}

function expectClose(got: Float32Array, want: Float32Array, bound: Float64Array, what: string): void {
  let worst = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (!Number.isFinite(w) && g === w) continue;
    if (!(Math.abs(g - w) <= 1e-5 * bound[i] + 1e-35)) {
      worst = i;
      break;
    }
  }
  if (worst >= 0) {
    expect.fail(`${what}: out[${worst}] = ${got[worst]}, oracle ${want[worst]}, allowed ${1e-5 * bound[worst]}`);
  }
}

// Shapes: m in 1..17, odd N, K from one block to 8192.
interface Shape {
  m: number;
  n: number;
  k: number;
}
const BLOCK_SHAPES: Shape[] = [
  { m: 1, n: 1, k: 32 },
  { m: 2, n: 3, k: 64 },
  { m: 3, n: 5, k: 96 },
  { m: 17, n: 7, k: 256 },
  { m: 4, n: 9, k: 512 },
  { m: 5, n: 3, k: 1024 },
  { m: 1, n: 11, k: 4096 },
  { m: 9, n: 3, k: 4160 },
  { m: 1, n: 5, k: 8192 },
  { m: 16, n: 33, k: 128 },
  { m: 8, n: 1, k: 2048 },
];
const SUPER_SHAPES: Shape[] = [
  { m: 1, n: 1, k: 256 },
  { m: 2, n: 3, k: 512 },
  { m: 17, n: 5, k: 768 },
  { m: 3, n: 7, k: 2048 },
  { m: 1, n: 9, k: 4096 },
  { m: 5, n: 3, k: 4352 },
  { m: 1, n: 3, k: 8192 },
];
const FLOAT_SHAPES: Shape[] = [...BLOCK_SHAPES, { m: 3, n: 5, k: 1 }, { m: 2, n: 3, k: 7 }, { m: 1, n: 7, k: 33 }, { m: 6, n: 5, k: 129 }, { m: 1, n: 3, k: 4099 }];

const isas = nat.info().isas;

describe.each(isas)('native %s vs the TypeScript oracle', (isa) => {
  describe.each(WEIGHT_TYPES as WeightType[])('%s', (t) => {
    const bs = TYPES[t].blockSize;
    const shapes = bs === 1 ? FLOAT_SHAPES : bs === 256 ? SUPER_SHAPES : BLOCK_SHAPES;
    it.each(PATTERNS as readonly Pattern[])('pattern %s', (pattern) => {
      nat.setIsa(isa);
      let seed = 7;
      for (const { m, n, k } of shapes) {
        const what = `${isa} ${t} ${pattern} m=${m} n=${n} k=${k}`;
        const wf = makeInput(pattern, n * k, seed++);
        const x = makeInput(pattern === 'zeros' ? 'normal' : pattern, m * k, seed++);

        const qn = quantizeWith(nat, t, wf, n, k);
        const qj = quantizeWith(jsBackend, t, wf, n, k);
        const at = firstDiff(qn, qj);
        if (at >= 0) expect.fail(`${what}: quantize differs at byte ${at} (native ${qn[at]}, js ${qj[at]})`);

        if (IMPORTANCE_TYPES.has(t)) {
          // Importance as llama.cpp's imatrix gives it: mean squared activations, with some zero columns.
          const imp = makeInput('normal', k, seed++).map((v, i) => (i % 11 === 3 ? 0 : v * v));
          const inn = new Uint8Array(qn.length);
          const ijs = new Uint8Array(qn.length);
          nat.quantize(t, wf, n, k, inn, imp);
          jsBackend.quantize(t, wf, n, k, ijs, imp);
          const iat = firstDiff(inn, ijs);
          if (iat >= 0) expect.fail(`${what}: importance quantize differs at byte ${iat} (native ${inn[iat]}, js ${ijs[iat]})`);
        }

        const dn = new Float32Array(n * k);
        const dj = new Float32Array(n * k);
        nat.dequantize(t, qj, n, k, dn);
        jsBackend.dequantize(t, qj, n, k, dj);
        const dat = firstDiff(new Uint8Array(dn.buffer), new Uint8Array(dj.buffer));
        if (dat >= 0) expect.fail(`${what}: dequantize differs at element ${dat >> 2} (native ${dn[dat >> 2]}, js ${dj[dat >> 2]})`);

        const yn = new Float32Array(m * n);
        const yj = new Float32Array(m * n);
        nat.matmul(t, qj, n, k, x, m, yn, 1, 0);
        jsBackend.matmul(t, qj, n, k, x, m, yj, 1, 0);
        expectClose(yn, yj, f32Bound(dj, x, n, k, m), `${what} precision f32`);

        // The 'interleaved16' layout: native and TypeScript make the same bytes, and
        // both backends' matmul on it agree with the ggml-layout oracle.
        const tiled = INTERLEAVED_TYPES.includes(t);
        let pn = new Uint8Array(0);
        let pj = new Uint8Array(0);
        if (tiled) {
          pn = new Uint8Array(layoutBytes(t, n, k, 'interleaved16'));
          pj = new Uint8Array(pn.length);
          nat.relayout(t, qj, n, k, pn, true);
          jsBackend.relayout(t, qj, n, k, pj, true);
          const pat = firstDiff(pn, pj);
          if (pat >= 0) expect.fail(`${what}: interleaved layout differs at byte ${pat} (native ${pn[pat]}, js ${pj[pat]})`);
          const back = new Uint8Array(qj.length);
          nat.relayout(t, pn, n, k, back, false);
          if (firstDiff(back, qj) >= 0) expect.fail(`${what}: native de-interleave does not give the ggml bytes back`);
          const py = new Float32Array(m * n);
          nat.matmul(t, pn, n, k, x, m, py, 1, 1);
          expectClose(py, yj, f32Bound(dj, x, n, k, m), `${what} interleaved, precision f32`);
        }

        if (TYPES[t].activation !== 'f32') {
          const ab = m * activationRowBytes(t, k);
          const an = new Uint8Array(ab);
          const aj = new Uint8Array(ab);
          nat.quantizeActivations(t, x, m, k, an);
          jsBackend.quantizeActivations(t, x, m, k, aj);
          const aat = firstDiff(an, aj);
          if (aat >= 0) expect.fail(`${what}: activation quantization differs at byte ${aat} (native ${an[aat]}, js ${aj[aat]})`);
          nat.matmul(t, qj, n, k, x, m, yn, 0, 0);
          jsBackend.matmul(t, qj, n, k, x, m, yj, 0, 0);
          expectClose(yn, yj, q8Bound(t, dj, qj, aj, n, k, m), `${what} precision q8`);
          if (tiled) {
            const py = new Float32Array(m * n);
            nat.matmul(t, pn, n, k, x, m, py, 0, 1);
            expectClose(py, yj, q8Bound(t, dj, qj, aj, n, k, m), `${what} interleaved, precision q8`);
            jsBackend.matmul(t, pj, n, k, x, m, py, 0, 1);
            expectClose(py, yj, q8Bound(t, dj, qj, aj, n, k, m), `${what} interleaved on the js backend, precision q8`);
          }
        } else {
          // Float weights take f32 activations in both precisions.
          nat.matmul(t, qj, n, k, x, m, yn, 0, 0);
          expectClose(yn, yj, f32Bound(dj, x, n, k, m), `${what} precision q8 (float type)`);
        }
      }
      nat.setIsa('auto');
    });
  });
});

describe('parity setup', () => {
  it('runs on every ISA the CPU reports, and the best one by default', () => {
    nat.setIsa('auto');
    expect(isas[0]).toBe(nat.info().isa);
    expect(isas).toContain('scalar');
  });
});

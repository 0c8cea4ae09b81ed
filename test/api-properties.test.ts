// Property tests (fast-check) of the public API on the native backend against
// the same API on the JS backend (the oracle): random types, shapes, thread
// counts, inputs with NaN / Inf / subnormals / signed zeros, views at offsets
// into larger buffers, SharedArrayBuffer-backed arrays, and detached buffers.
// Every case must agree with the oracle (bytes for quantize and dequantize,
// within a bound for matmul) or end in a QkError on both.
import * as fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { WEIGHT_TYPES, TYPES, type WeightType } from '../lib/types';
import { gaussian, loadApi, rng, type Api } from './helpers';

const RUNS = Number(process.env.QKERNELS_PROPERTY_RUNS ?? 300);
let nat: Api;
let js: Api;
beforeAll(async () => {
  nat = await loadApi('native');
  js = await loadApi('js');
  expect(nat.backend().name).toBe('native');
  expect(js.backend().name).toBe('js');
});

type Backing = 'plain' | 'offset' | 'shared';

/** values in a Float32Array made the given way: a fresh array, a view at an offset into a larger one, or over a SharedArrayBuffer */
function f32(values: number[], backing: Backing, shift: number): Float32Array {
  if (backing === 'plain') return Float32Array.from(values);
  const buf = backing === 'shared' ? new SharedArrayBuffer(4 * (values.length + shift + 3)) : new ArrayBuffer(4 * (values.length + shift + 3));
  const a = new Float32Array(buf, 4 * shift, values.length);
  a.set(values);
  return a;
}

function u8(bytes: Uint8Array, backing: Backing, shift: number): Uint8Array {
  if (backing === 'plain') return bytes.slice();
  const buf = backing === 'shared' ? new SharedArrayBuffer(bytes.length + shift + 7) : new ArrayBuffer(bytes.length + shift + 7);
  const a = new Uint8Array(buf, shift, bytes.length);
  a.set(bytes);
  return a;
}

const SPECIAL = [0, -0, 1e-40, -1e-45, 3.4e38, -3.4e38, 65504, 1e-8, NaN, Infinity, -Infinity];
// values from a seed (cheap to shrink: fast-check shrinks the seed and the few special positions, not thousands of floats)
function values(n: number, seed: number, scale: number, specials: [number, number][]): number[] {
  const r = rng(seed);
  const out = Array.from({ length: n }, () => scale * gaussian(r));
  for (const [at, which] of specials) out[at % n] = SPECIAL[which % SPECIAL.length];
  return out;
}

const caseArb = fc.record({
  type: fc.constantFrom(...(WEIGHT_TYPES as WeightType[])),
  rows: fc.integer({ min: 1, max: 24 }),
  blocks: fc.integer({ min: 1, max: 3 }),
  m: fc.integer({ min: 1, max: 4 }),
  threads: fc.integer({ min: 1, max: 3 }),
  backing: fc.constantFrom<Backing>('plain', 'offset', 'shared'),
  shift: fc.integer({ min: 1, max: 5 }),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  scale: fc.constantFrom(1, 1e-3, 1e-20, 300, 1e4),
  specials: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }),
});

function outcome<T>(fn: () => T): { ok: true; value: T } | { ok: false; code: string } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (!(e instanceof nat.QkError) && !(e instanceof js.QkError)) throw e;
    return { ok: false, code: (e as InstanceType<Api['QkError']>).code };
  }
}

describe('the public API against the JS oracle', () => {
  it('quantize, dequantize and matmul on random cases agree with the JS backend, or both throw QkError', () => {
    const counts = { agreed: 0, refused: 0 };
    fc.assert(
      fc.property(caseArb, (c) => {
        const bs = TYPES[c.type].blockSize;
        const cols = bs === 1 ? 8 * c.blocks : bs * c.blocks;
        const n = c.rows * cols;
        const w = values(n, c.seed, c.scale, c.specials);
        const x = values(c.m * cols, c.seed + 1, 1, []);
        nat.setThreads(c.threads);
        const src = f32(w, c.backing, c.shift);
        const qn = outcome(() => nat.quantize(src, c.rows, cols, c.type));
        const qj = outcome(() => js.quantize(Float32Array.from(w), c.rows, cols, c.type));
        expect(qn.ok, `${c.type} quantize: native ${qn.ok ? 'ok' : (qn as { code: string }).code}, js ${qj.ok ? 'ok' : (qj as { code: string }).code}`).toBe(qj.ok);
        if (!qn.ok || !qj.ok) {
          counts.refused++;
          return;
        }
        expect(Buffer.from(qn.value.data).equals(Buffer.from(qj.value.data)), `${c.type} quantize bytes`).toBe(true);
        // the matrix's bytes at an offset, or shared
        const wm = { type: c.type, rows: c.rows, cols, data: u8(qj.value.data, c.backing, c.shift) };
        const dn = nat.dequantize(wm);
        const dj = js.dequantize(qj.value);
        expect(Buffer.from(dn.buffer, dn.byteOffset, dn.byteLength).equals(Buffer.from(dj.buffer, dj.byteOffset, dj.byteLength)), `${c.type} dequantize`).toBe(true);
        const xs = f32(x, c.backing, c.shift);
        for (const precision of ['f32', 'q8'] as const) {
          const yn = nat.matmul(wm, xs, c.m, undefined, { precision });
          const yj = js.matmul(qj.value, Float32Array.from(x), c.m, undefined, { precision });
          for (let i = 0; i < c.m; i++) {
            for (let o = 0; o < c.rows; o++) {
              let mag = 0;
              for (let j = 0; j < cols; j++) mag += Math.abs(dj[o * cols + j] * x[i * cols + j]);
              const a = yn[i * c.rows + o];
              const b = yj[i * c.rows + o];
              if (!Number.isFinite(a) || !Number.isFinite(b) || !Number.isFinite(mag)) {
                // a non-finite scale (from finite but huge weights) poisons both alike
                expect(Number.isFinite(a), `${c.type} ${precision} row ${o}: native ${a}, js ${b}`).toBe(Number.isFinite(b));
                continue;
              }
              expect(Math.abs(a - b), `${c.type} ${precision} row ${o}`).toBeLessThanOrEqual(1e-4 * mag + 1e-30);
            }
          }
        }
        counts.agreed++;
      }),
      { numRuns: RUNS, seed: 0x51a7 },
    );
    nat.setThreads(nat.backend().threads);
    expect(counts.agreed).toBeGreaterThan(0);
    expect(counts.refused).toBeGreaterThan(0);
  }, 300_000);

  it('detached buffers are QkErrors on both backends, for every argument', () => {
    fc.assert(
      fc.property(fc.constantFrom(...(WEIGHT_TYPES as WeightType[])), fc.constantFrom('src', 'data', 'x', 'out'), (type, which) => {
        const cols = TYPES[type].blockSize === 1 ? 32 : TYPES[type].blockSize;
        const w = new Float32Array(2 * cols).map((_, i) => Math.sin(i));
        for (const api of [nat, js]) {
          const m = api.quantize(w, 2, cols, type);
          const detach = <T extends ArrayBufferView>(a: T): T => {
            structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
            return a;
          };
          const x = new Float32Array(cols).fill(0.5);
          const out = new Float32Array(2);
          let call: () => unknown;
          if (which === 'src') call = () => api.quantize(detach(w.slice()), 2, cols, type);
          else if (which === 'data') call = () => api.matmul({ ...m, data: detach(m.data.slice()) }, x, 1, out);
          else if (which === 'x') call = () => api.matmul(m, detach(x.slice()), 1, out);
          else call = () => api.matmul(m, x, 1, detach(new Float32Array(2)));
          const r = outcome(call);
          expect(r.ok, `${api.backend().name} ${type} detached ${which}`).toBe(false);
        }
      }),
      { numRuns: 60, seed: 0xdead },
    );
  });
});

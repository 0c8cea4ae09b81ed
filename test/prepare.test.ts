// prepare(): the interleaved layout as the public API sees it, on both
// backends. The layout's bytes and the kernels on it are checked against the
// TypeScript oracle, ISA by ISA, in parity.test.ts; here: what prepare and
// unprepare return, that every entry point accepts a prepared matrix and
// gives what the ggml matrix gives, and that bad layouts are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectQkError, loadApi, makeInput, nativeBackend, type Api } from './helpers';

/** Largest |a - b| relative to the largest |b|. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    n = Math.max(n, Math.abs(b[i]));
  }
  return d / n;
}

describe.each(['native', 'js'] as const)('%s backend', (name) => {
  let q: Api;
  beforeAll(async () => {
    q = await loadApi(name);
    expect(q.backend().name).toBe(name);
  });
  afterAll(() => q.setIsa('auto'));

  // Row counts around the 16-row tile; k with an odd block count (the unpaired last block).
  const shapes = [
    { n: 1, k: 32 },
    { n: 15, k: 96 },
    { n: 16, k: 256 },
    { n: 17, k: 160 },
    { n: 40, k: 1024 },
  ];

  const cases = (['q4_0', 'q8_0'] as const).flatMap((t) => shapes.map((s) => ({ t, ...s })));
  it.each(cases)('%o: prepare gives whole tiles, unprepare the ggml bytes back, dequantize the same floats', ({ t, n, k }) => {
    const w = q.quantize(makeInput('normal', n * k, n + k), n, k, t);
    const p = q.prepare(w);
    expect(p.layout).toBe('interleaved16');
    expect(p.type).toBe(t);
    expect([p.rows, p.cols]).toEqual([n, k]);
    expect(p.data.length).toBe(Math.ceil(n / 16) * 16 * q.rowBytes(t, k));
    expect(Object.isFrozen(p)).toBe(true);
    // A different order of the same bytes (plus zero padding rows).
    expect(Buffer.from(p.data.subarray(0, w.data.length)).equals(Buffer.from(w.data))).toBe(false);
    expect([...p.data].reduce((s, v) => s + v, 0)).toBe([...w.data].reduce((s, v) => s + v, 0));
    const u = q.unprepare(p);
    expect(u.layout ?? 'ggml').toBe('ggml');
    expect(Buffer.from(u.data).equals(Buffer.from(w.data))).toBe(true);
    expect(Buffer.from(q.dequantize(p).buffer).equals(Buffer.from(q.dequantize(w).buffer))).toBe(true);
    // Already prepared, or already ggml: unchanged.
    expect(q.prepare(p)).toBe(p);
    expect(q.unprepare(w)).toBe(w);
  });

  it('prepare on native aligns the tiles to a cache line', () => {
    if (name !== 'native') return;
    const w = q.quantize(makeInput('normal', 64 * 256, 3), 64, 256, 'q4_0');
    const p = q.prepare(w);
    // The view's offset inside its own ArrayBuffer is what prepare chose to reach alignment: < 64.
    expect(p.data.byteOffset).toBeLessThan(64);
    expect(p.data.buffer.byteLength).toBe(p.data.length + 64);
    expect(nativeBackend()!.misalignment(p.data), 'address of the first tile, modulo 64').toBe(0);
  });

  const batches = (['q4_0', 'q8_0'] as const).flatMap((t) => [1, 3, 8, 9, 33].map((m) => ({ t, m })));
  it.each(batches)('matmul and matmulAsync on a prepared matrix give the ggml result %o', async ({ t, m }) => {
    const n = 37;
    const k = 4096 + 32;
    const w = q.quantize(makeInput('normal', n * k, m), n, k, t);
    const p = q.prepare(w);
    const x = makeInput('normal', m * k, 100 + m);
    for (const precision of ['q8', 'f32'] as const) {
      const want = q.matmul(w, x, m, undefined, { precision });
      const got = q.matmul(p, x, m, undefined, { precision });
      // Same integer per block; only the float summation order may differ.
      expect(relDiff(got, want), `precision ${precision}`).toBeLessThan(1e-5);
      const out = new Float32Array(m * n).fill(Number.NaN);
      const viaAsync = await q.matmulAsync(p, x, m, out, { precision });
      expect(viaAsync).toBe(out);
      expect(relDiff(out, want), `async, precision ${precision}`).toBeLessThan(1e-5);
    }
  });

  it('every ISA runs prepared matrices (with a tile kernel or by de-interleaving tiles)', () => {
    const n = 21;
    const k = 512;
    for (const t of ['q4_0', 'q8_0'] as const) {
      const w = q.quantize(makeInput('mixed', n * k, 5), n, k, t);
      const p = q.prepare(w);
      const x = makeInput('normal', 3 * k, 6);
      for (const isa of q.backend().isas) {
        q.setIsa(isa as 'auto');
        const want = q.matmul(w, x, 3);
        expect(relDiff(q.matmul(p, x, 3), want), `${t} ${isa}`).toBeLessThan(1e-5);
      }
    }
    q.setIsa('auto');
  });

  it('types without an interleaved layout come back unchanged', () => {
    for (const t of ['q4_1', 'q4_k', 'q6_k', 'f32'] as const) {
      const w = q.quantize(makeInput('normal', 4 * 256, 1), 4, 256, t);
      expect(q.prepare(w)).toBe(w);
    }
    expect(q.INTERLEAVED_TYPES).toEqual(['q4_0', 'q8_0']);
  });

  it('refuses unknown layouts, layouts a type lacks, and prepared data of the wrong size', () => {
    const w = q.quantize(makeInput('normal', 3 * 64, 1), 3, 64, 'q4_0');
    const x = new Float32Array(64);
    expectQkError(() => q.matmul({ ...w, layout: 'tiled' as never }, x, 1), 'ERR_QK_ARG', /w\.layout/, /'tiled'/);
    const w8 = q.quantize(makeInput('normal', 3 * 64, 1), 3, 64, 'q4_1');
    expectQkError(() => q.matmul({ ...w8, layout: 'interleaved16' }, x, 1), 'ERR_QK_ARG', /interleaved16/, /q4_1/);
    const p = q.prepare(w);
    // 3 rows take one whole tile of 16: the ggml size is refused.
    expectQkError(() => q.matmul({ ...p, data: w.data }, x, 1), 'ERR_QK_LENGTH', /w\.data/, /exactly 576/, /got 108/);
    expectQkError(() => q.dequantize({ ...p, data: p.data.subarray(1) }), 'ERR_QK_LENGTH', /w\.data/);
    expectQkError(() => q.unprepare({ ...p, rows: 17 }), 'ERR_QK_LENGTH', /w\.data/);
  });
});

describe('native layer re-checks the layout arguments', () => {
  it('refuses bad layout codes, layouts a type lacks and short buffers', () => {
    const nat = nativeBackend();
    expect(nat, 'native addon').not.toBeNull();
    if (!nat) return;
    const x = new Float32Array(64);
    const out = new Float32Array(2);
    const tile = new Uint8Array(16 * 36);
    expectQkError(() => nat.matmul('q4_0', tile, 2, 64, x, 1, out, 0, 2 as never), 'ERR_QK_ARG', /layout/);
    expectQkError(() => nat.matmul('q4_1', new Uint8Array(16 * 40), 2, 64, x, 1, out, 0, 1), 'ERR_QK_TYPE', /interleaved/);
    expectQkError(() => nat.matmul('q4_0', tile.subarray(1), 2, 64, x, 1, out, 0, 1), 'ERR_QK_LENGTH', /w\.data/);
    expectQkError(() => nat.relayout('q4_0', new Uint8Array(72), 2, 64, new Uint8Array(16 * 36 - 1), true), 'ERR_QK_LENGTH', /dst/);
    expectQkError(() => nat.relayout('q4_0', new Uint8Array(71), 2, 64, tile, true), 'ERR_QK_LENGTH', /data/);
    expectQkError(() => nat.relayout('q4_1', new Uint8Array(80), 2, 64, new Uint8Array(16 * 40), true), 'ERR_QK_TYPE', /interleaved/);
    expectQkError(() => nat.relayout('q4_0', tile, 2, 64, new Uint8Array(71), false), 'ERR_QK_LENGTH', /dst/);
  });
});

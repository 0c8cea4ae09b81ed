// The thread pool: every row of a matmul is computed by one thread with the
// same kernel whatever the split, so any thread count must give the
// single-thread result bit for bit, over many back-to-back calls (the
// hand-off between caller and workers) and with async calls in flight.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gaussian, loadApi, rng, type Api } from './helpers';

describe('native thread pool', () => {
  let q: Api;
  beforeAll(async () => {
    q = await loadApi('native');
  });
  afterAll(() => q.setThreads(q.backend().threads));

  const K = 2048;
  const N = 1000; // 2M multiply-adds a row of x: above the size that goes to the pool
  const r = rng(11);
  const w32 = Float32Array.from({ length: N * K }, () => gaussian(r) * 0.05);
  const xs = Array.from({ length: 6 }, (_, i) => Float32Array.from({ length: 9 * K }, () => gaussian(r) + i));

  const cases = [
    { type: 'q4_0', m: 1, prepared: false },
    { type: 'q4_0', m: 9, prepared: false }, // tiles made on the fly
    { type: 'q4_0', m: 3, prepared: true },
    { type: 'q8_0', m: 1, prepared: false },
    { type: 'f32', m: 1, prepared: false },
  ] as const;

  it.each(cases)('%o: 2, 3, 5 and 8 threads give the 1-thread result, 200 calls in a row', ({ type, m, prepared }) => {
    const w0 = q.quantize(w32, N, K, type);
    const w = prepared ? q.prepare(w0) : w0;
    q.setThreads(1);
    const want = xs.map((x) => q.matmul(w, x.subarray(0, m * K), m));
    for (const t of [2, 3, 5, 8]) {
      q.setThreads(t);
      const out = new Float32Array(m * N);
      let mismatches = 0;
      for (let i = 0; i < 200; i++) {
        q.matmul(w, xs[i % xs.length].subarray(0, m * K), m, out);
        if (Buffer.compare(Buffer.from(out.buffer), Buffer.from(want[i % xs.length].buffer)) !== 0) mismatches++;
      }
      expect(mismatches, `${t} threads`).toBe(0);
    }
  });

  it('async calls in flight together each give the 1-thread result', async () => {
    const w = q.quantize(w32, N, K, 'q4_0');
    q.setThreads(1);
    const want = xs.map((x) => q.matmul(w, x.subarray(0, K), 1));
    q.setThreads(2);
    for (let round = 0; round < 20; round++) {
      const got = await Promise.all(xs.map((x) => q.matmulAsync(w, x.subarray(0, K), 1)));
      got.forEach((g, i) => expect(Buffer.compare(Buffer.from(g.buffer), Buffer.from(want[i].buffer))).toBe(0));
    }
  });
});

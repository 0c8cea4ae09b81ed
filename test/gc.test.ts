// The hot path allocates nothing: 10,000 matmul calls with a preallocated
// `out` must not trigger a single garbage collection, on the native backend
// and on the JS fallback (whose matmul loop calls kernels that write their
// result instead of returning it: a float returned through a call site that
// sees every type is boxed, a heap number per output element).
import { PerformanceObserver } from 'perf_hooks';
import { describe, expect, it } from 'vitest';
import { loadApi, makeInput } from './helpers';

async function countGcDuring(fn: () => void): Promise<{ gcs: number; heapGrowth: number }> {
  const entries: unknown[] = [];
  const obs = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  // Start from an empty young generation, so that only the loop's own allocations could trigger a collection.
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 20));
  entries.length = 0;
  const before = process.memoryUsage().heapUsed;
  fn();
  const heapGrowth = process.memoryUsage().heapUsed - before;
  // gc entries are delivered asynchronously: let the observer drain.
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return { gcs: entries.length, heapGrowth };
}

describe.each(['native', 'js'] as const)('%s backend', (name) => {
  it.each(['q4_0', 'q4_0 prepared', 'q8_0', 'q4_1', 'q4_k', 'q6_k', 'f16', 'f32'] as const)('10,000 %s matmuls with `out` given: no GC', async (name_) => {
    const type = name_.split(' ')[0] as 'q4_0' | 'q8_0' | 'q4_1' | 'q4_k' | 'q6_k' | 'f16' | 'f32';
    expect(typeof (globalThis as { gc?: unknown }).gc, 'run with --expose-gc (vitest.config.ts)').toBe('function');
    const q = await loadApi(name);
    const K = 256;
    // the JS kernels are ~100x slower: fewer rows keep the same 20,000 calls short
    const N = name === 'js' ? 16 : 64;
    const w0 = q.quantize(makeInput('normal', N * K, 1), N, K, type);
    const w = name_.endsWith('prepared') ? q.prepare(w0) : w0;
    if (name_.endsWith('prepared')) expect(w.layout).toBe('interleaved16');
    const x = makeInput('normal', K, 2);
    const out = new Float32Array(N);
    const f32Opts = { precision: 'f32' } as const;
    const run = () => {
      for (let i = 0; i < 5000; i++) q.matmul(w, x, 1, out);
      for (let i = 0; i < 5000; i++) q.matmul(w, x, 1, out, f32Opts);
    };
    // Warm up the very function measured (JIT and on-stack replacement allocate code once), the scratch buffers and the thread pool.
    run();
    run();
    // Two measured runs; heap growth counts the smaller (V8 may still add code or feedback once).
    const first = await countGcDuring(run);
    const second = await countGcDuring(run);
    const gcs = first.gcs + second.gcs;
    const heapGrowth = Math.min(first.heapGrowth, second.heapGrowth);
    expect(gcs, `garbage collections during 2 x 10,000 ${type} matmuls on ${name}`).toBe(0);
    // Slack for the observer and test harness; one boxed number per call (10,000 x 16 B) would exceed it.
    expect(heapGrowth).toBeLessThan(128 * 1024);
  });
});

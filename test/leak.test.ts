// Leak regressions. openGguf(file).close() in a synchronous loop grew the JS
// heap by ~160 bytes a cycle, for ever: the mapped source tracked its views
// with WeakRefs, and V8 keeps a WeakRef's target alive until the current job
// ends, so no view (and nothing it reached) of any file closed in the loop
// could be collected. The addon now tracks the views with weak N-API
// references. Heap is measured after gc() inside the same synchronous job,
// which is where the old code grew.
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { openGguf } from '../lib/index';

const FILE = path.join(__dirname, 'fixtures', 'gguf', 'golden-q4_k_s.gguf');
const gc = (globalThis as { gc?: () => void }).gc!;

describe('openGguf/close', () => {
  it.each([true, false])('mmap %s: the JS heap stays flat over a synchronous loop of open/close', (mmap) => {
    expect(typeof gc).toBe('function');
    const cycle = (n: number) => {
      for (let i = 0; i < n; i++) {
        const f = openGguf(FILE, { mmap });
        // touch a tensor, as a caller would
        if (f.tensors[0].data.byteLength !== f.tensors[0].bytes) throw new Error('short tensor');
        f.close();
      }
    };
    cycle(1000);
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    cycle(5000);
    gc();
    gc();
    const perCycle = (process.memoryUsage().heapUsed - before) / 5000;
    // was ~160 B a cycle with mmap; a few bytes of noise remain
    expect(perCycle).toBeLessThan(16);
  });

  it('close() still detaches a view the caller kept', () => {
    const f = openGguf(FILE);
    const data = f.tensors[0].data;
    expect(data.byteLength).toBeGreaterThan(0);
    f.close();
    expect(data.byteLength).toBe(0);
  });
});

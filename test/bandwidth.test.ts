// memoryBandwidth: the figure is machine-dependent (never asserted on), but
// its two forms, what it does to a caller's buffer and its bad input are not.
import { describe, expect, it } from 'vitest';
import { expectQkError, loadApi } from './helpers';

const MiB = 2 ** 20;

describe.each(['native', 'js'] as const)('%s backend', (name) => {
  it('measures through a buffer of its own or the caller\'s, and only reads the caller\'s', async () => {
    const q = await loadApi(name);
    const buf = new Uint8Array(3 * MiB);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 27;
    const copy = buf.slice();
    const own = q.memoryBandwidth(2 * MiB, 2);
    const caller = q.memoryBandwidth(buf, 3);
    // An odd start: the loop begins at the first 8-byte boundary and still has 1 MiB.
    const odd = q.memoryBandwidth(buf.subarray(3, 3 + MiB + 8), 1);
    if (name === 'js') {
      expect([own, caller, odd]).toEqual([null, null, null]);
    } else {
      for (const gbs of [own, caller, odd]) {
        expect(typeof gbs).toBe('number');
        expect(Number.isFinite(gbs) && (gbs as number) > 0).toBe(true);
      }
    }
    expect(Buffer.compare(buf, copy)).toBe(0);
  });

  it('rejects bad sizes, buffers and repetition counts', async () => {
    const q = await loadApi(name);
    expectQkError(() => q.memoryBandwidth(MiB - 1, 1), 'ERR_QK_ARG', /1 MiB/);
    expectQkError(() => q.memoryBandwidth(2 ** 34 + 1, 1), 'ERR_QK_ARG', /16 GiB/);
    expectQkError(() => q.memoryBandwidth(1.5 * MiB + 0.5, 1), 'ERR_QK_ARG', /byte count/);
    expectQkError(() => q.memoryBandwidth(NaN, 1), 'ERR_QK_ARG', /byte count/);
    expectQkError(() => q.memoryBandwidth('1GiB' as never, 1), 'ERR_QK_ARG', /Uint8Array/);
    expectQkError(() => q.memoryBandwidth(new Float32Array(MiB) as never, 1), 'ERR_QK_ARG', /Uint8Array/);
    expectQkError(() => q.memoryBandwidth(new Uint8Array(MiB - 1), 1), 'ERR_QK_LENGTH', /buffer/, /1048576/);
    for (const reps of [0, -1, 2.5, NaN]) expectQkError(() => q.memoryBandwidth(MiB, reps), 'ERR_QK_SHAPE', /reps/);
    expectQkError(() => q.memoryBandwidth(MiB, 1001), 'ERR_QK_ARG', /reps/, /1000/);
    const gone = new Uint8Array(2 * MiB);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    expectQkError(() => q.memoryBandwidth(gone, 1), 'ERR_QK_ARG', /buffer/, /detached/);
    if (name === 'native') {
      // Exactly 1 MiB from an odd start leaves less than 1 MiB after the 8-byte boundary.
      const backing = new Uint8Array(MiB + 16);
      expectQkError(() => q.memoryBandwidth(backing.subarray(1, 1 + MiB), 1), 'ERR_QK_LENGTH', /8-byte/);
    }
  });
});

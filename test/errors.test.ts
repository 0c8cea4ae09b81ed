// Bad input ends in a QkError with a code and a message that names the
// argument and what was expected, on both backends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectQkError, loadApi, type Api } from './helpers';

describe.each(['native', 'js'] as const)('%s backend', (name) => {
  let q: Api;
  beforeAll(async () => {
    q = await loadApi(name);
    expect(q.backend().name).toBe(name);
  });
  afterAll(() => q.setIsa('auto'));

  const K = 64;
  const N = 3;
  const src = () => Float32Array.from({ length: N * K }, (_, i) => Math.sin(i));

  it('errors are instances of the exported QkError', () => {
    try {
      q.quantize(src(), N, 63, 'q4_0');
      expect.fail('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(q.QkError);
    }
  });

  it('rejects unknown types', () => {
    expectQkError(() => q.quantize(src(), N, K, 'q3_x' as never), 'ERR_QK_TYPE', /type/, /q4_0/);
    expectQkError(() => q.rowBytes('nope' as never, 32), 'ERR_QK_TYPE', /type/);
    expectQkError(() => q.typeInfo(7 as never), 'ERR_QK_TYPE');
    const w = q.quantize(src(), N, K, 'q4_0');
    expectQkError(() => q.matmul({ ...w, type: 'q9' as never }, new Float32Array(K), 1), 'ERR_QK_TYPE', /w\.type/);
  });

  it('rejects K that is not a multiple of the block', () => {
    expectQkError(() => q.quantize(new Float32Array(N * 48), N, 48, 'q4_0'), 'ERR_QK_SHAPE', /cols/, /multiple of 32/, /48/);
    expectQkError(() => q.rowBytes('q8_0', 33), 'ERR_QK_SHAPE', /multiple of 32/);
    expect(q.rowBytes('f16', 33)).toBe(66);
  });

  it('rejects non-integer, negative and non-number sizes', () => {
    expectQkError(() => q.quantize(src(), 1.5, K, 'q8_0'), 'ERR_QK_SHAPE', /rows/, /integer/, /1\.5/);
    expectQkError(() => q.quantize(src(), -3, K, 'q8_0'), 'ERR_QK_SHAPE', /rows/, /-3/);
    expectQkError(() => q.quantize(src(), N, '64' as never, 'q8_0'), 'ERR_QK_SHAPE', /cols/);
    expectQkError(() => q.quantize(src(), N, NaN, 'q8_0'), 'ERR_QK_SHAPE', /cols/);
    const w = q.quantize(src(), N, K, 'q4_0');
    expectQkError(() => q.matmul(w, new Float32Array(K), 0), 'ERR_QK_SHAPE', /\bm\b/);
    expectQkError(() => q.matmul(w, new Float32Array(K), 2.5), 'ERR_QK_SHAPE', /\bm\b/);
    expectQkError(() => q.matmul({ ...w, rows: 2 }, new Float32Array(K), 1), 'ERR_QK_LENGTH', /w\.data/, /exactly 72/, /got 108/);
  });

  it('rejects wrong lengths with the expected value in the message', () => {
    expectQkError(() => q.quantize(new Float32Array(N * K - 1), N, K, 'q4_0'), 'ERR_QK_LENGTH', /src/, new RegExp(`${N * K}`), new RegExp(`${N * K - 1}`));
    const w = q.quantize(src(), N, K, 'q4_0');
    expectQkError(() => q.matmul(w, new Float32Array(K + 1), 1), 'ERR_QK_LENGTH', /\bx\b/, /64/);
    expectQkError(() => q.matmul(w, new Float32Array(K), 1, new Float32Array(N - 1)), 'ERR_QK_LENGTH', /out/, /at least 3/);
    expectQkError(() => q.dequantize(w, new Float32Array(N * K - 1)), 'ERR_QK_LENGTH', /out/);
    expectQkError(() => q.quantize(src(), N, K, 'q4_0', { out: new Uint8Array(10) }), 'ERR_QK_LENGTH', /opts\.out/, /108/);
  });

  it('rejects wrong argument types', () => {
    const w = q.quantize(src(), N, K, 'q4_0');
    expectQkError(() => q.quantize(Array.from(src()) as never, N, K, 'q4_0'), 'ERR_QK_ARG', /src/, /Float32Array/);
    expectQkError(() => q.matmul(w, new Float64Array(K) as never, 1), 'ERR_QK_ARG', /\bx\b/, /Float32Array/);
    expectQkError(() => q.matmul({ ...w, data: new Int8Array(w.data.length) as never }, new Float32Array(K), 1), 'ERR_QK_ARG', /w\.data/, /Uint8Array/);
    expectQkError(() => q.matmul(null as never, new Float32Array(K), 1), 'ERR_QK_ARG', /QuantizedMatrix/);
    expectQkError(() => q.matmul(w, new Float32Array(K), 1, undefined, { precision: 'q4' as never }), 'ERR_QK_ARG', /precision/);
  });

  it('rejects NaN and Inf in quantize input, naming the position', () => {
    for (const type of ['q4_0', 'q4_1', 'q8_0', 'f16', 'bf16', 'f32'] as const) {
      const x = src();
      x[K + 5] = NaN;
      expectQkError(() => q.quantize(x, N, K, type), 'ERR_QK_VALUE', /NaN/, /row 1/, /col 5/);
      x[K + 5] = -Infinity;
      expectQkError(() => q.quantize(x, N, K, type), 'ERR_QK_VALUE', /infinite/);
    }
  });

  it('rejects detached buffers', () => {
    const x = src();
    const ab = x.buffer;
    structuredClone(ab, { transfer: [ab] });
    expectQkError(() => q.quantize(x, N, K, 'q4_0'), 'ERR_QK_ARG', /src/, /detached/);
    const w = q.quantize(src(), N, K, 'q4_0');
    const data = new Uint8Array(w.data);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    expectQkError(() => q.matmul({ ...w, data }, new Float32Array(K), 1), 'ERR_QK_ARG', /w\.data/, /detached/);
    const out = new Float32Array(N);
    structuredClone(out.buffer, { transfer: [out.buffer] });
    expectQkError(() => q.matmul(w, new Float32Array(K), 1, out), 'ERR_QK_ARG', /out/, /detached/);
  });

  it('rejects unknown and unsupported ISAs, and bad thread counts', () => {
    expectQkError(() => q.setIsa('sse9' as never), 'ERR_QK_ISA', /sse9/);
    if (name === 'native') {
      const arm = process.arch === 'arm64';
      expectQkError(() => q.setIsa(arm ? 'avx2' : 'neon'), 'ERR_QK_ISA', /not supported/);
    } else {
      expectQkError(() => q.setIsa('avx2'), 'ERR_QK_ISA', /js backend/);
    }
    expectQkError(() => q.setThreads(0), 'ERR_QK_ARG', /threads/);
    expectQkError(() => q.setThreads(1.5), 'ERR_QK_ARG', /threads/);
  });

  it('rejects bad input to matmulAsync through the promise', async () => {
    const w = q.quantize(src(), N, K, 'q4_0');
    await expect(q.matmulAsync(w, new Float32Array(K - 1), 1)).rejects.toMatchObject({ name: 'QkError', code: 'ERR_QK_LENGTH' });
  });

  it('accepts subarray views at an offset (reads data + byteOffset)', () => {
    const big = new Float32Array(N * K + 7);
    big.set(src(), 7);
    const view = big.subarray(7);
    const a = q.quantize(view, N, K, 'q8_0');
    const b = q.quantize(src(), N, K, 'q8_0');
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    const x = Float32Array.from({ length: K + 3 }, (_, i) => Math.cos(i)).subarray(3);
    const y1 = q.matmul(a, x, 1);
    const y2 = q.matmul(a, Float32Array.from(x), 1);
    expect(Array.from(y1)).toEqual(Array.from(y2));
  });
});

describe('the native layer re-checks what it is given', () => {
  it('refuses lengths that do not match, even when called directly', async () => {
    const { loadNative } = await import('../lib/native');
    const nat = loadNative();
    expectQkError(() => nat.quantize('q4_0', new Float32Array(64), 2, 64, new Uint8Array(72), null), 'ERR_QK_LENGTH', /src/, /128/);
    expectQkError(() => nat.matmul('q4_0', new Uint8Array(72), 2, 64, new Float32Array(64), 1, new Float32Array(1), 0, 0), 'ERR_QK_LENGTH', /out/);
    expectQkError(() => nat.matmul('q4_0', new Uint8Array(71), 2, 64, new Float32Array(64), 1, new Float32Array(2), 0, 0), 'ERR_QK_LENGTH', /w\.data/);
    expectQkError(() => nat.dequantize('q4_0', new Uint8Array(36), 2, 48, new Float32Array(96)), 'ERR_QK_SHAPE', /multiple of 32/);
    expectQkError(() => nat.matmul('q4_0', new Uint8Array(72), 2, 64, new Float32Array(64), 1.5, new Float32Array(2), 0, 0), 'ERR_QK_SHAPE', /\bm\b/);
  });
});

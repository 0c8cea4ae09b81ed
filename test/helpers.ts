// Inputs shared by the suites: deterministic, with the edge cases that break kernels.
import { expect, vi } from 'vitest';
import { jsBackend } from '../lib/js/backend';
import { loadNative } from '../lib/native';
import type { Backend } from '../lib/backend';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32, mapped to [0, 1)
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

export const PATTERNS = ['normal', 'zeros', 'equal', 'outliers', 'subnormal', 'negzero', 'mixed', 'huge'] as const;
export type Pattern = (typeof PATTERNS)[number];

/** n floats of a pattern; outliers stay where fp16 scales cannot overflow (|x| < 8 * 65504). */
export function makeInput(pattern: Pattern, n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = gaussian(r);
  switch (pattern) {
    case 'zeros':
      x.fill(0);
      break;
    case 'equal':
      for (let i = 0; i < n; i++) x[i] = Math.floor(i / 32) % 2 ? -0.625 : 0.375;
      break;
    case 'outliers':
      for (let i = 0; i < n; i += 37) x[i] = i % 2 ? -3.0e4 : 2.5e4;
      break;
    case 'subnormal':
      for (let i = 0; i < n; i++) x[i] *= 1e-39;
      break;
    case 'negzero':
      for (let i = 0; i < n; i++) if (i % 3) x[i] = -0;
      break;
    case 'huge':
      // Squares overflow f32 here: exercises the quantizers' non-finite intermediate paths.
      for (let i = 0; i < n; i++) x[i] *= i % 5 === 0 ? 1e30 : 1e18;
      break;
    case 'mixed':
      for (let i = 0; i < n; i++) {
        const blk = Math.floor(i / 32) % 4;
        if (blk === 1) x[i] = 0;
        else if (blk === 2) x[i] = -1.25;
        else if (blk === 3 && i % 32 === 5) x[i] = 1e3;
      }
      break;
    default:
      break;
  }
  return x;
}

let native: Backend | null | undefined;
/** The native backend, or null when the addon is not built (then native suites are skipped loudly). */
export function nativeBackend(): Backend | null {
  if (native === undefined) {
    try {
      native = loadNative();
    } catch {
      native = null;
    }
  }
  return native;
}

export { jsBackend };

export type Api = typeof import('../lib/index');

/** A fresh copy of the public API on the chosen backend (QKERNELS_BACKEND is read at import). */
export async function loadApi(backend: 'native' | 'js'): Promise<Api> {
  vi.resetModules();
  process.env.QKERNELS_BACKEND = backend;
  const api = await import('../lib/index');
  delete process.env.QKERNELS_BACKEND;
  return api;
}

/** fn throws a QkError with this code and a message matching every one of `words`. */
export function expectQkError(fn: () => unknown, code: string, ...words: (string | RegExp)[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a throw').toBeInstanceOf(Error);
  const e = caught as Error & { code?: string };
  expect(e.name).toBe('QkError');
  expect(e.code).toBe(code);
  for (const w of words) expect(e.message).toMatch(w);
}

// Row kernels for unquantized weights: f32 (raw LE float32 bytes), f16, bf16.
// Byte order: the f32 path reinterprets bytes through typed-array aliases, which is
// little-endian on every platform Node supports.

import { f16BitsToF32, f32ToF16Bits, bf16BitsToF32, f32ToBf16Bits } from './fp16';

// Scratch alias used to reassemble a float32 from 4 bytes at any (unaligned) offset.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function readF32(b: Uint8Array, o: number): number {
  scratchU32[0] = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
  return scratchF32[0];
}

function notQ8(): never {
  throw new Error('dotQ8 is not defined for float weights (their activation type is f32): use dotF32');
}

// ---- f32 ----

export function quantizeRowF32(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  // A byte view copies the bits verbatim (a value round trip could canonicalize NaN payloads).
  dst.set(new Uint8Array(src.buffer, src.byteOffset + srcOff * 4, k * 4), dstOff);
}

export function dequantizeRowF32(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  const out = new Uint8Array(dst.buffer, dst.byteOffset + dstOff * 4, k * 4);
  const n = k * 4;
  for (let i = 0; i < n; i++) out[i] = src[srcOff + i];
}

// The 'f32' dot products sum 32 products at a time into a partial sum, then
// add it to the row accumulator: the same order as the scalar C++ kernels (so
// the two agree bit for bit), and an error that grows with k/32, not k.
const CHUNK = 32;

export function dotF32F32(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let c = 0; c < k; c += CHUNK) {
    const e = Math.min(k, c + CHUNK);
    let s = 0;
    for (let i = c; i < e; i++) s = Math.fround(s + Math.fround(readF32(w, wOff + 4 * i) * x[xOff + i]));
    acc = Math.fround(acc + s);
  }
  out[at] = acc;
}

// ---- f16 ----

export function quantizeRowF16(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let i = 0; i < k; i++) {
    const h = f32ToF16Bits(src[srcOff + i]);
    dst[dstOff + 2 * i] = h & 0xff;
    dst[dstOff + 2 * i + 1] = h >>> 8;
  }
}

export function dequantizeRowF16(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let i = 0; i < k; i++) {
    const o = srcOff + 2 * i;
    dst[dstOff + i] = f16BitsToF32(src[o] | (src[o + 1] << 8));
  }
}

export function dotF32F16(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let c = 0; c < k; c += CHUNK) {
    const e = Math.min(k, c + CHUNK);
    let s = 0;
    for (let i = c; i < e; i++) {
      const o = wOff + 2 * i;
      s = Math.fround(s + Math.fround(f16BitsToF32(w[o] | (w[o + 1] << 8)) * x[xOff + i]));
    }
    acc = Math.fround(acc + s);
  }
  out[at] = acc;
}

// ---- bf16 ----

export function quantizeRowBF16(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let i = 0; i < k; i++) {
    const h = f32ToBf16Bits(src[srcOff + i]);
    dst[dstOff + 2 * i] = h & 0xff;
    dst[dstOff + 2 * i + 1] = h >>> 8;
  }
}

export function dequantizeRowBF16(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let i = 0; i < k; i++) {
    const o = srcOff + 2 * i;
    dst[dstOff + i] = bf16BitsToF32(src[o] | (src[o + 1] << 8));
  }
}

export function dotF32BF16(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let c = 0; c < k; c += CHUNK) {
    const e = Math.min(k, c + CHUNK);
    let s = 0;
    for (let i = c; i < e; i++) {
      const o = wOff + 2 * i;
      s = Math.fround(s + Math.fround(bf16BitsToF32(w[o] | (w[o + 1] << 8)) * x[xOff + i]));
    }
    acc = Math.fround(acc + s);
  }
  out[at] = acc;
}

export const dotQ8Float = notQ8 as (w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, o: number) => void;

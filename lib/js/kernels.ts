// Pure-TypeScript row kernels: the fallback backend and the oracle for native parity tests.

import type { WeightType } from '../types';
import * as fl from './float';
import * as q from './q32';
import * as q5 from './q5';
import * as kq from './kquants';

export interface RowKernels {
  /** weights: the llama.cpp reference quantizer (quantize_row_*_ref), bit-exact. k is a multiple of the block size. For f32: copy bytes; f16/bf16: encode each element. */
  quantizeRow(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void;
  dequantizeRow(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void;
  /** 'f32' precision: sum_k f32(dequant(w[k])) * x[k], accumulated with Math.fround per step (any order is acceptable, but keep it simple: per block, sum of products, then add to row accumulator). */
  dotF32(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number): number;
  /** 'q8' precision: a is the activation row already quantized to TYPES[type].activation (q8_0, q8_1 or q8_k layout); for float types (activation 'f32') this is not used (matmul calls dotF32). */
  dotQ8(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number): number;
  /**
   * dotF32 and dotQ8 writing their result to out[o]. The matmul loop calls
   * these: its call site sees every type, so V8 cannot inline the kernel, and
   * a float returned from a call that is not inlined is boxed, one heap
   * number (garbage) per output element.
   */
  dotF32Into(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, o: number): void;
  dotQ8Into(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, o: number): void;
  /**
   * llama.cpp's importance-weighted quantizer (quantize_row_*_impl, what `llama-quantize --imatrix` runs), bit-exact.
   * k is exactly one row (the 32-block types use a per-row statistic); importance has k entries, one per column,
   * the same array for every row. Absent for types whose llama.cpp quantizer takes no importance (q8_0, floats).
   */
  quantizeRowImportance?(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, importance: Float32Array): void;
}

type DotInto<X> = (w: Uint8Array, wOff: number, x: X, xOff: number, k: number, out: Float32Array, o: number) => void;

// The returning forms, for callers outside the matmul loop (tests, one-off dots).
const one = new Float32Array(1);
function dots(f32: DotInto<Float32Array>, q8: DotInto<Uint8Array>): Pick<RowKernels, 'dotF32' | 'dotQ8' | 'dotF32Into' | 'dotQ8Into'> {
  return {
    dotF32Into: f32,
    dotQ8Into: q8,
    dotF32: (w, wOff, x, xOff, k) => {
      f32(w, wOff, x, xOff, k, one, 0);
      return one[0];
    },
    dotQ8: (w, wOff, a, aOff, k) => {
      q8(w, wOff, a, aOff, k, one, 0);
      return one[0];
    },
  };
}

export const jsKernels: Record<WeightType, RowKernels> = Object.freeze({
  f32: { quantizeRow: fl.quantizeRowF32, dequantizeRow: fl.dequantizeRowF32, ...dots(fl.dotF32F32, fl.dotQ8Float) },
  f16: { quantizeRow: fl.quantizeRowF16, dequantizeRow: fl.dequantizeRowF16, ...dots(fl.dotF32F16, fl.dotQ8Float) },
  bf16: { quantizeRow: fl.quantizeRowBF16, dequantizeRow: fl.dequantizeRowBF16, ...dots(fl.dotF32BF16, fl.dotQ8Float) },
  q8_0: { quantizeRow: q.quantizeRowQ8_0, dequantizeRow: q.dequantizeRowQ8_0, ...dots(q.dotF32Q8_0, q.dotQ8Q8_0) },
  q4_0: {
    quantizeRow: q.quantizeRowQ4_0,
    dequantizeRow: q.dequantizeRowQ4_0,
    ...dots(q.dotF32Q4_0, q.dotQ8Q4_0),
    quantizeRowImportance: q.quantizeRowQ4_0Importance,
  },
  q4_1: {
    quantizeRow: q.quantizeRowQ4_1,
    dequantizeRow: q.dequantizeRowQ4_1,
    ...dots(q.dotF32Q4_1, q.dotQ8Q4_1),
    quantizeRowImportance: q.quantizeRowQ4_1Importance,
  },
  q5_0: {
    quantizeRow: q5.quantizeRowQ5_0,
    dequantizeRow: q5.dequantizeRowQ5_0,
    ...dots(q5.dotF32Q5_0, q5.dotQ8Q5_0),
    quantizeRowImportance: q5.quantizeRowQ5_0Importance,
  },
  q5_1: {
    quantizeRow: q5.quantizeRowQ5_1,
    dequantizeRow: q5.dequantizeRowQ5_1,
    ...dots(q5.dotF32Q5_1, q5.dotQ8Q5_1),
    quantizeRowImportance: q5.quantizeRowQ5_1Importance,
  },
  q4_k: {
    quantizeRow: kq.quantizeRowQ4_K,
    dequantizeRow: kq.dequantizeRowQ4_K,
    ...dots(kq.dotF32Q4_K, kq.dotQ8Q4_K),
    quantizeRowImportance: kq.quantizeRowQ4_KImportance,
  },
  q5_k: {
    quantizeRow: kq.quantizeRowQ5_K,
    dequantizeRow: kq.dequantizeRowQ5_K,
    ...dots(kq.dotF32Q5_K, kq.dotQ8Q5_K),
    quantizeRowImportance: kq.quantizeRowQ5_KImportance,
  },
  q6_k: {
    quantizeRow: kq.quantizeRowQ6_K,
    dequantizeRow: kq.dequantizeRowQ6_K,
    ...dots(kq.dotF32Q6_K, kq.dotQ8Q6_K),
    quantizeRowImportance: kq.quantizeRowQ6_KImportance,
  },
});

/**
 * Quantize one activation row of k floats into q8_0 (34-byte blocks of 32), q8_1 (36-byte blocks of 32)
 * or q8_k (292-byte blocks of 256; k multiple of 256).
 */
export function quantizeActivationRow(act: 'q8_0' | 'q8_1' | 'q8_k', src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  if (act === 'q8_1') q.quantizeActivationQ8_1(src, srcOff, dst, dstOff, k);
  else if (act === 'q8_k') kq.quantizeActivationQ8_K(src, srcOff, dst, dstOff, k);
  else q.quantizeActivationQ8_0(src, srcOff, dst, dstOff, k);
}

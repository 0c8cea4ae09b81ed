// Pure-TypeScript row kernels: the fallback backend and the oracle for native parity tests.

import type { WeightType } from '../types';
import * as fl from './float';
import * as q from './q32';

export interface RowKernels {
  /** weights: the llama.cpp reference quantizer (quantize_row_*_ref), bit-exact. k is a multiple of the block size. For f32: copy bytes; f16/bf16: encode each element. */
  quantizeRow(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void;
  dequantizeRow(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void;
  /** 'f32' precision: sum_k f32(dequant(w[k])) * x[k], accumulated with Math.fround per step (any order is acceptable, but keep it simple: per block, sum of products, then add to row accumulator). */
  dotF32(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number): number;
  /** 'q8' precision: a is the activation row already quantized to TYPES[type].activation (q8_0 or q8_1 layout); for float types (activation 'f32') this is not used (matmul calls dotF32). */
  dotQ8(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number): number;
}

export const jsKernels: Record<WeightType, RowKernels> = Object.freeze({
  f32: { quantizeRow: fl.quantizeRowF32, dequantizeRow: fl.dequantizeRowF32, dotF32: fl.dotF32F32, dotQ8: fl.dotQ8Float },
  f16: { quantizeRow: fl.quantizeRowF16, dequantizeRow: fl.dequantizeRowF16, dotF32: fl.dotF32F16, dotQ8: fl.dotQ8Float },
  bf16: { quantizeRow: fl.quantizeRowBF16, dequantizeRow: fl.dequantizeRowBF16, dotF32: fl.dotF32BF16, dotQ8: fl.dotQ8Float },
  q8_0: { quantizeRow: q.quantizeRowQ8_0, dequantizeRow: q.dequantizeRowQ8_0, dotF32: q.dotF32Q8_0, dotQ8: q.dotQ8Q8_0 },
  q4_0: { quantizeRow: q.quantizeRowQ4_0, dequantizeRow: q.dequantizeRowQ4_0, dotF32: q.dotF32Q4_0, dotQ8: q.dotQ8Q4_0 },
  q4_1: { quantizeRow: q.quantizeRowQ4_1, dequantizeRow: q.dequantizeRowQ4_1, dotF32: q.dotF32Q4_1, dotQ8: q.dotQ8Q4_1 },
});

/** Quantize one activation row of k floats (k multiple of 32) into q8_0 (34-byte blocks) or q8_1 (36-byte blocks). */
export function quantizeActivationRow(act: 'q8_0' | 'q8_1', src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  if (act === 'q8_1') q.quantizeActivationQ8_1(src, srcOff, dst, dstOff, k);
  else q.quantizeActivationQ8_0(src, srcOff, dst, dstOff, k);
}

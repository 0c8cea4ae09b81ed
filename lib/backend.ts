import type { WeightType } from './types';

/** 0 = 'q8', 1 = 'f32': the addon takes an integer so the hot path passes no strings. */
export type PrecisionCode = 0 | 1;

/** 0 = 'ggml', 1 = 'interleaved16'. */
export type LayoutCode = 0 | 1;

export interface BackendInfo {
  isa: string;
  isas: string[];
  threads: number;
}

/**
 * What the public API needs from an implementation. Arguments arrive already
 * validated by lib/validate.ts; the native backend re-checks them anyway.
 */
export interface Backend {
  readonly name: 'native' | 'js';
  /** importance: null, or cols finite non-negative weights (llama.cpp's importance-matrix quantizers) */
  quantize(type: WeightType, src: Float32Array, rows: number, cols: number, dst: Uint8Array, importance: Float32Array | null): void;
  dequantize(type: WeightType, data: Uint8Array, rows: number, cols: number, out: Float32Array): void;
  matmul(type: WeightType, w: Uint8Array, rows: number, cols: number, x: Float32Array, m: number, out: Float32Array, precision: PrecisionCode, layout: LayoutCode): void;
  matmulAsync(type: WeightType, w: Uint8Array, rows: number, cols: number, x: Float32Array, m: number, out: Float32Array, precision: PrecisionCode, layout: LayoutCode): Promise<Float32Array>;
  /** ggml rows -> 'interleaved16' tiles (toTiles) or back; dst holds the other layout's bytes. */
  relayout(type: WeightType, src: Uint8Array, rows: number, cols: number, dst: Uint8Array, toTiles: boolean): void;
  quantizeActivations(type: WeightType, x: Float32Array, m: number, k: number, dst: Uint8Array): void;
  /** The view's start address modulo 64 (0 where addresses do not matter, the js backend). */
  misalignment(data: Uint8Array): number;
  info(): BackendInfo;
  setIsa(isa: string): void;
  setThreads(n: number): void;
  /** Best streaming-read GB/s over a new buffer of `source` bytes, or over the caller's buffer (native only; null on the js backend). */
  memoryBandwidth(source: number | Uint8Array, reps: number): number | null;
}

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

/** The native llama decoder (native/src/llama.h); opaque handles. */
export interface NativeLlama {
  create(config: NativeLlamaConfig, weights: NativeLlamaWeights): unknown;
  createCache(model: unknown, context: number, f16: boolean): unknown;
  decode(model: unknown, caches: unknown[], tokens: Int32Array, positions: Int32Array, cacheIndex: Int32Array, wantLogits: Uint8Array, logits: Float32Array): void;
  decodeAsync(model: unknown, caches: unknown[], tokens: Int32Array, positions: Int32Array, cacheIndex: Int32Array, wantLogits: Uint8Array, logits: Float32Array): Promise<void>;
}

export interface NativeLlamaConfig {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  ropeDims: number;
  ropeBase: number;
  ropeFreqScale: number;
  normEps: number;
  ropeNeox: boolean;
  maxBatch: number;
}

/** A matrix as the addon takes it: ggml type id, ggml-layout bytes. */
export interface NativeMatrix {
  type: number;
  rows: number;
  cols: number;
  data: Uint8Array;
  /** 0: ggml, 1: interleaved (LayoutCode) */
  layout: LayoutCode;
}

export interface NativeLlamaWeights {
  tokEmbd: NativeMatrix;
  output: NativeMatrix;
  outNorm: Float32Array;
  ropeFreqs?: Float32Array;
  layers: { attnNorm: Float32Array; ffnNorm: Float32Array; wq: NativeMatrix; wk: NativeMatrix; wv: NativeMatrix; wo: NativeMatrix; gate: NativeMatrix; up: NativeMatrix; down: NativeMatrix }[];
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
  /** Transparent huge pages for the buffer's aligned 2 MiB pages, asked before they are written (native on Linux; else 0); the bytes advised. */
  adviseHugePages(data: Uint8Array): number;
  info(): BackendInfo;
  setIsa(isa: string): void;
  setThreads(n: number): void;
  /** Best streaming-read GB/s over a new buffer of `source` bytes, or over the caller's buffer (native only; null on the js backend). */
  memoryBandwidth(source: number | Uint8Array, reps: number): number | null;
  /** The whole-model decoder; null on the js backend (lib/model runs its reference forward pass there). */
  readonly llama: NativeLlama | null;
  /**
   * GPTQ on one layer (lib/js/gptq.ts is the reference): weights rows x cols,
   * calib n x cols, dst rows * rowBytes(storage type) bytes. Returns the
   * dampening fraction used (the requested one, or 10x/100x more if the
   * Hessian needed it).
   */
  gptq(p: CalibParams, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array): number;
  gptqAsync(p: CalibParams, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array): Promise<number>;
  /** AWQ on one layer (lib/js/awq.ts is the reference): dst as for gptq, scales cols floats. Returns the chosen exponent, or -1 when p.scales were given. */
  awq(p: CalibParams, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array, scales: Float32Array): number;
  awqAsync(p: CalibParams, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array, scales: Float32Array): Promise<number>;
}

/**
 * Everything GPTQ and AWQ are told, already validated. `type` is the output
 * grid: a ggml block type, or 'int4' (GPTQ's 4-bit groups, stored as q4_0
 * when sym, else as q8_0 of q - zero).
 */
export interface CalibParams {
  readonly type: 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q4_k' | 'q5_k' | 'q6_k' | 'int4';
  /** int4: columns per group (a multiple of 32 dividing cols) */
  readonly groupSize: number;
  readonly sym: boolean;
  /** gptq */
  readonly actOrder: boolean;
  readonly damp: number;
  readonly batch: number;
  /** awq */
  readonly grid: number;
  readonly tokens: number;
  readonly clip: boolean;
  /** awq: given input scales (cols floats > 0): no scale search, only clipping and quantization */
  readonly scales: Float32Array | null;
}

// Format facts shared by both backends: ggml type ids, block geometry, and the
// activation format each weight type is dotted against in 'q8' precision.

export type WeightType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k';
export type ActivationType = 'f32' | 'q8_0' | 'q8_1' | 'q8_k';
export type Precision = 'q8' | 'f32';

export interface QuantizedMatrix {
  readonly type: WeightType;
  /** N: output features */
  readonly rows: number;
  /** K: input features; a multiple of the type's block size */
  readonly cols: number;
  /** rows * rowBytes(type, cols) bytes in the ggml layout (whole tiles of 16 rows when interleaved); a view, never a copy */
  readonly data: Uint8Array;
  /** Absent or 'ggml': the ggml layout. 'interleaved16': made by prepare(), for matmul. */
  readonly layout?: Layout;
  /**
   * Where the stored columns come from: column j holds input feature
   * inputOrder[j] (a permutation of 0..cols-1). matmul gathers x in this order
   * and dequantize scatters back, so callers always see the original order.
   * Set by GPTQ act-order checkpoints, whose groups are contiguous only after
   * the permutation.
   */
  readonly inputOrder?: Int32Array;
}


export interface TypeInfo {
  readonly name: WeightType;
  /** ggml_type id, as written in GGUF files */
  readonly ggmlId: number;
  /** elements per block (1 for float types) */
  readonly blockSize: number;
  /** bytes per block */
  readonly blockBytes: number;
  readonly bitsPerWeight: number;
  /** what activations are quantized to in 'q8' precision ('f32': not quantized) */
  readonly activation: ActivationType;
}

function info(name: WeightType, ggmlId: number, blockSize: number, blockBytes: number, activation: ActivationType): TypeInfo {
  return Object.freeze({ name, ggmlId, blockSize, blockBytes, bitsPerWeight: (blockBytes * 8) / blockSize, activation });
}

export const TYPES: Readonly<Record<WeightType, TypeInfo>> = Object.freeze({
  f32: info('f32', 0, 1, 4, 'f32'),
  f16: info('f16', 1, 1, 2, 'f32'),
  bf16: info('bf16', 30, 1, 2, 'f32'),
  q8_0: info('q8_0', 8, 32, 34, 'q8_0'),
  q4_0: info('q4_0', 2, 32, 18, 'q8_0'),
  q4_1: info('q4_1', 3, 32, 20, 'q8_1'),
  q5_0: info('q5_0', 6, 32, 22, 'q8_0'),
  q5_1: info('q5_1', 7, 32, 24, 'q8_1'),
  q4_k: info('q4_k', 12, 256, 144, 'q8_k'),
  q5_k: info('q5_k', 13, 256, 176, 'q8_k'),
  q6_k: info('q6_k', 14, 256, 210, 'q8_k'),
});

/**
 * Activation block geometry: q8_0 = {fp16 d, int8 qs[32]}, q8_1 = {fp16 d, fp16 s, int8 qs[32]},
 * q8_k = {f32 d, int8 qs[256], int16 bsums[16]}.
 */
export const ACTIVATION_BLOCK: Readonly<Record<Exclude<ActivationType, 'f32'>, { size: number; bytes: number }>> = Object.freeze({
  q8_0: { size: 32, bytes: 34 },
  q8_1: { size: 32, bytes: 36 },
  q8_k: { size: 256, bytes: 292 },
});

/** Bytes of one activation row of k elements in the activation format of `type` (0 for float types). */
export function activationRowBytes(type: WeightType, k: number): number {
  const act = TYPES[type].activation;
  if (act === 'f32') return 0;
  const b = ACTIVATION_BLOCK[act];
  return (k / b.size) * b.bytes;
}

export const WEIGHT_TYPES = Object.freeze(Object.keys(TYPES) as WeightType[]);

export function isWeightType(t: unknown): t is WeightType {
  return typeof t === 'string' && Object.prototype.hasOwnProperty.call(TYPES, t);
}

/**
 * How a matrix's bytes are ordered. 'ggml': row after row of ggml blocks, the
 * format of files, quantize and dequantize. 'interleaved16': made by
 * prepare(), tiles of 16 rows whose blocks are interleaved so that SIMD
 * kernels process 16 rows per instruction (see native/src/interleave.h).
 */
export type Layout = 'ggml' | 'interleaved16';

/** Rows per tile of the 'interleaved16' layout. */
export const TILE_ROWS = 16;

/** The types prepare() interleaves; it returns the others unchanged. */
export const INTERLEAVED_TYPES: readonly WeightType[] = Object.freeze(['q4_0', 'q8_0'] as WeightType[]);

/** Bytes of a rows x cols matrix of `type` in `layout` (whole tiles of 16 rows when interleaved). */
export function layoutBytes(type: WeightType, rows: number, cols: number, layout: Layout): number {
  const t = TYPES[type];
  const rb = (cols / t.blockSize) * t.blockBytes;
  return layout === 'ggml' ? rows * rb : Math.ceil(rows / TILE_ROWS) * TILE_ROWS * rb;
}

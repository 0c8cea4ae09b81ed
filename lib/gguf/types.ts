// GGUF facts (reference §7) and the shapes of what openGguf returns and
// writeGguf takes. Every ggml type id a file may carry is listed, so tensors
// of types qkernels cannot compute with are still sized, checked and listed.
import type { QuantizedMatrix } from '../types';
import { TYPES, type WeightType } from '../types';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME is 64 bytes including the terminator. */
export const GGUF_MAX_TENSOR_NAME = 63;
/** GGML_MAX_DIMS */
export const GGUF_MAX_DIMS = 4;
/** Arrays of arrays deeper than this are refused: recursion must stay bounded. */
export const GGUF_MAX_ARRAY_DEPTH = 16;
/** general.alignment above this is refused (ggml: a power of two; nothing real uses more than a page). */
export const GGUF_MAX_ALIGNMENT = 1 << 20;

export type GgufScalarType =
  | 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32'
  | 'bool' | 'string' | 'uint64' | 'int64' | 'float64';
export type GgufValueType = GgufScalarType | 'array';

/** Value type ids in file order (reference §7.1). */
export const GGUF_VALUE_TYPES: readonly GgufValueType[] = Object.freeze([
  'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64',
]);
export const GGUF_VALUE_TYPE_ID: Readonly<Record<GgufValueType, number>> = Object.freeze(
  Object.fromEntries(GGUF_VALUE_TYPES.map((t, i) => [t, i])) as Record<GgufValueType, number>,
);

/** Bytes of one fixed-size value; strings and arrays are variable. */
export const GGUF_SCALAR_BYTES: Readonly<Partial<Record<GgufValueType, number>>> = Object.freeze({
  uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, bool: 1, uint64: 8, int64: 8, float64: 8,
});

/**
 * An array's elements: numbers in a typed array of the element type (64-bit
 * ones as BigInt64Array / BigUint64Array), booleans and strings in plain
 * arrays, nested arrays as arrays of GgufArray.
 */
export type GgufArrayItems =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array | boolean[] | string[] | GgufArray[];

export interface GgufArray {
  readonly type: 'array';
  readonly itemType: GgufValueType;
  readonly value: GgufArrayItems;
}

/**
 * A metadata value with its GGUF type, so a file can be rewritten exactly.
 * 64-bit integers are numbers while they are safe integers (|v| <= 2^53 - 1), else bigints.
 */
export type GgufValue =
  | { readonly type: 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64'; readonly value: number }
  | { readonly type: 'uint64' | 'int64'; readonly value: number | bigint }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | GgufArray;

/** A metadata value without its type: what `metadata[key]` holds. */
export type GgufPlainValue = number | bigint | boolean | string | GgufArrayItems | GgufPlainValue[];

export interface GgmlTypeInfo {
  readonly id: number;
  /** ggml's name ('q4_K', 'iq2_xxs', ...) */
  readonly name: string;
  readonly blockSize: number;
  readonly blockBytes: number;
  /** the qkernels type with this id, or null when qkernels cannot compute with it */
  readonly weightType: WeightType | null;
}

// id -> [ggml name, elements per block, bytes per block] (reference §2). Ids not
// here (removed types 4, 5, 31-33, 36-38 and any newer than 39) are refused.
const GGML: Record<number, [string, number, number]> = {
  0: ['f32', 1, 4], 1: ['f16', 1, 2], 2: ['q4_0', 32, 18], 3: ['q4_1', 32, 20],
  6: ['q5_0', 32, 22], 7: ['q5_1', 32, 24], 8: ['q8_0', 32, 34], 9: ['q8_1', 32, 36],
  10: ['q2_K', 256, 84], 11: ['q3_K', 256, 110], 12: ['q4_K', 256, 144], 13: ['q5_K', 256, 176],
  14: ['q6_K', 256, 210], 15: ['q8_K', 256, 292], 16: ['iq2_xxs', 256, 66], 17: ['iq2_xs', 256, 74],
  18: ['iq3_xxs', 256, 98], 19: ['iq1_s', 256, 50], 20: ['iq4_nl', 32, 18], 21: ['iq3_s', 256, 110],
  22: ['iq2_s', 256, 82], 23: ['iq4_xs', 256, 136], 24: ['i8', 1, 1], 25: ['i16', 1, 2], 26: ['i32', 1, 4],
  27: ['i64', 1, 8], 28: ['f64', 1, 8], 29: ['iq1_m', 256, 56], 30: ['bf16', 1, 2],
  34: ['tq1_0', 256, 54], 35: ['tq2_0', 256, 66], 39: ['mxfp4', 32, 17],
};

const byId = new Map<number, WeightType>(Object.values(TYPES).map((t) => [t.ggmlId, t.name]));

const GGML_TYPES = new Map<number, GgmlTypeInfo>(
  Object.entries(GGML).map(([id, [name, blockSize, blockBytes]]) => {
    const n = Number(id);
    return [n, Object.freeze({ id: n, name, blockSize, blockBytes, weightType: byId.get(n) ?? null })];
  }),
);

/** The ggml type with this id, or undefined for an id no ggml file may carry. */
export function ggmlType(id: number): GgmlTypeInfo | undefined {
  return GGML_TYPES.get(id);
}

/** ggml type by qkernels name ('q4_k') or ggml name ('q4_K'). */
export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  for (const t of GGML_TYPES.values()) if (t.name === name || t.weightType === name) return t;
  return undefined;
}

export interface GgufTensor {
  readonly name: string;
  /** ggml type id as stored in the file */
  readonly ggmlType: number;
  /** ggml type name ('q4_K', 'iq2_xxs') */
  readonly typeName: string;
  /** the qkernels type, or null when qkernels cannot compute with this type */
  readonly type: WeightType | null;
  /** ne, in GGUF order: shape[0] is the contiguous dimension (K of a weight matrix) */
  readonly shape: readonly number[];
  /** elements */
  readonly elements: number;
  /** absolute byte offset of the data in the file */
  readonly offset: number;
  readonly bytes: number;
  /** rows = product of shape[1..], cols = shape[0] */
  readonly rows: number;
  readonly cols: number;
  /**
   * The tensor's bytes: a view on the mapped file (no copy), or, when the file
   * is read instead of mapped, freshly read from disk. Works for every type.
   */
  readonly data: Uint8Array;
  /**
   * The tensor's bytes without a fresh buffer: read into `into` (at least
   * `bytes` long; the returned view is its first `bytes`) when the file is
   * read, the mapped view (and `into` untouched) when it is mapped.
   */
  readInto(into: Uint8Array): Uint8Array;
  /** A QuantizedMatrix over `data` (rows = N, cols = K); null for types qkernels does not support. */
  readonly matrix: QuantizedMatrix | null;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  readonly alignment: number;
  /** absolute offset of the data section (tensor offsets in the file are relative to it) */
  readonly dataOffset: number;
  /** 'mmap': views on a mapping of the file; 'read': tensors read on demand */
  readonly mode: 'mmap' | 'read';
  /** metadata values without types, in file order */
  readonly metadata: Readonly<Record<string, GgufPlainValue>>;
  /** the same values with their GGUF types (what writeGguf needs to rewrite them exactly) */
  readonly typedMetadata: Readonly<Record<string, GgufValue>>;
  readonly tensors: readonly GgufTensor[];
  tensor(name: string): GgufTensor | undefined;
  /**
   * Paging hints for a tensor's bytes, or bytes [start, end) of it (mapped
   * files only; no-ops otherwise): prefetch reads ahead, evict drops the pages
   * from this process (a later read pages them in again).
   */
  prefetch(t: GgufTensor): void;
  evict(t: GgufTensor, start?: number, end?: number): void;
  /**
   * Throws a QkError if a mapped file shrank under its mapping (another
   * process truncated or rewrote it in place). Reads past the new end do not
   * kill the process with SIGBUS: they read zeros, and this is how to know.
   * Model and quantize call it after every step; a read file never needs it.
   */
  checkIntact(): void;
  /** Unmaps the file (every view then has length 0) or closes the descriptor. Idempotent. */
  close(): void;
}

export interface OpenGgufOptions {
  /** false: read tensors on demand even where the file could be mapped. Default true. */
  mmap?: boolean;
}

/** A tensor for writeGguf: a QuantizedMatrix, or a type, shape and bytes. */
export interface GgufTensorInput {
  readonly name: string;
  /** ggml type id; wins over `type` (so a GgufTensor of any type can be copied as is) */
  readonly ggmlType?: number;
  readonly type?: WeightType | null;
  /** GGUF order (shape[0] contiguous); default [matrix.cols, matrix.rows] */
  readonly shape?: readonly number[];
  /** the bytes, or a function giving them when the writer reaches this tensor (so a model never sits in memory whole) */
  readonly data?: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
  readonly matrix?: QuantizedMatrix | null;
}

export type GgufMetadataInput =
  | Readonly<Record<string, GgufValue | GgufPlainValue>>
  | ReadonlyMap<string, GgufValue | GgufPlainValue>;

export interface WriteGgufOptions {
  metadata?: GgufMetadataInput;
  tensors?: readonly GgufTensorInput[];
  /** data alignment; default general.alignment from the metadata, else 32 */
  alignment?: number;
  /** called after each tensor is written */
  onProgress?: (p: WriteProgress) => void;
}

export interface WriteProgress {
  readonly tensorsDone: number;
  readonly tensors: number;
  readonly bytesDone: number;
  readonly bytes: number;
  readonly name: string;
}

export interface WriteGgufResult {
  readonly path: string;
  readonly bytes: number;
  readonly tensors: number;
  /** temporary files of earlier writes to this path whose process is gone (killed mid-write), removed first */
  readonly staleRemoved: readonly string[];
}

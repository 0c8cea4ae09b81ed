// qkernels: quantized LLM weight kernels for Node.js.
import type { Backend, LayoutCode, PrecisionCode } from './backend';
import { QkError } from './errors';
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from './native';
import { alignedBytes, interleaveMatrix } from './layout';
import { impl } from './runtime';
import { activationRowBytes, INTERLEAVED_TYPES, layoutBytes, TYPES, type Layout, type Precision, type QuantizedMatrix, type TypeInfo, type WeightType } from './types';
import { checkCols, checkCount, checkF32, checkLayout, checkMatrix, checkType, checkU8 } from './validate';

export { QkError } from './errors';
export type { QkErrorCode } from './errors';
export type { WeightType, TypeInfo, Precision, ActivationType, Layout, QuantizedMatrix } from './types';
export { WEIGHT_TYPES, INTERLEAVED_TYPES } from './types';


export interface MatmulOptions {
  /** 'q8' (default): activations quantized per block and dotted in integers, as llama.cpp; 'f32': weights dequantized on the fly. */
  precision?: Precision;
}

export type Isa = 'avx512' | 'avx2' | 'neon' | 'scalar' | 'js';

export interface BackendReport {
  name: 'native' | 'js';
  isa: Isa;
  isas: string[];
  threads: number;
  version: string;
}

const VERSION: string = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;


export function typeInfo(type: WeightType): TypeInfo {
  return checkType(type);
}

export function rowBytes(type: WeightType, cols: number): number {
  const t = checkType(type);
  return (checkCols(t, cols, 'cols') / t.blockSize) * t.blockBytes;
}

export interface QuantizeOptions {
  /** Write into this buffer (exactly rows * rowBytes(type, cols) bytes) instead of allocating. */
  out?: Uint8Array;
  /**
   * Per-column importance (cols finite values >= 0, e.g. a llama.cpp imatrix
   * entry): selects llama.cpp's importance-weighted quantizer. Supported by
   * q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k.
   */
  importance?: Float32Array;
}

/** Quantizes a rows x cols row-major matrix with llama.cpp's reference quantizer for `type`. */
export function quantize(src: Float32Array, rows: number, cols: number, type: WeightType, opts?: QuantizeOptions): QuantizedMatrix {
  const t = checkType(type);
  checkCount(rows, 'rows', 0);
  checkCols(t, cols, 'cols');
  checkF32(src, 'src', rows * cols, true);
  const bytes = rows * (cols / t.blockSize) * t.blockBytes;
  const data = opts?.out !== undefined ? checkU8(opts.out, 'opts.out', bytes, true) : new Uint8Array(bytes);
  let importance: Float32Array | null = null;
  if (opts?.importance !== undefined) importance = checkF32(opts.importance, 'opts.importance', cols, true);
  if (impl.name === 'js') {
    // The native layer scans for NaN itself; the JS kernels need it done here.
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v - v !== 0) {
        throw new QkError('ERR_QK_VALUE', `src[${i}] is ${Number.isNaN(v) ? 'NaN' : 'infinite'} (row ${Math.floor(i / cols)}, col ${i % cols}); quantize needs finite values`);
      }
    }
    if (importance) {
      for (let i = 0; i < importance.length; i++) {
        const v = importance[i];
        if (!(v >= 0 && v < Infinity)) throw new QkError('ERR_QK_VALUE', `importance[${i}] must be finite and >= 0, got ${v}`);
      }
    }
  }
  impl.quantize(t.name, src, rows, cols, data, importance);
  return Object.freeze({ type: t.name, rows, cols, data });
}

/** Expands a matrix to float32 (rows x cols, row-major). */
export function dequantize(w: QuantizedMatrix, out?: Float32Array): Float32Array {
  const t = checkMatrix(w);
  const n = w.rows * w.cols;
  const dst = out !== undefined ? checkF32(out, 'out', n, false) : new Float32Array(n);
  const ggml = checkLayout(w) === 'ggml' ? w : unprepare(w);
  impl.dequantize(t.name, ggml.data, w.rows, w.cols, dst);
  const order = w.inputOrder;
  if (order !== undefined) {
    // Back to the original column order, one row at a time in place.
    const row = new Float32Array(w.cols);
    for (let r = 0; r < w.rows; r++) {
      const o = r * w.cols;
      row.set(dst.subarray(o, o + w.cols));
      for (let j = 0; j < w.cols; j++) dst[o + order[j]] = row[j];
    }
  }
  return dst;
}

// x's columns in a matrix's stored order (w.inputOrder): into a buffer kept
// between synchronous calls, so that the hot path allocates only when it grows.
let gathered = new Float32Array(0);
function gatherInputs(order: Int32Array, x: Float32Array, m: number, into?: Float32Array): Float32Array {
  const k = order.length;
  let g = into;
  if (g === undefined) {
    if (gathered.length < m * k) gathered = new Float32Array(m * k);
    g = gathered.subarray(0, m * k);
  }
  for (let i = 0; i < m; i++) {
    const o = i * k;
    for (let j = 0; j < k; j++) g[o + j] = x[o + order[j]];
  }
  return g;
}

function withOrder(result: QuantizedMatrix, w: QuantizedMatrix): QuantizedMatrix {
  if (w.inputOrder === undefined || result === w) return result;
  return Object.freeze({ ...result, inputOrder: w.inputOrder });
}

/**
 * The matrix in the layout matmul runs fastest on, made once (at load) and
 * then passed to matmul/matmulAsync in place of `w`. For q4_0 that is
 * 'interleaved16': tiles of 16 rows whose blocks are interleaved, so that a
 * SIMD register holds the same bytes of 16 rows (a copy of the same size,
 * rounded up to whole tiles). Types without such a layout, and matrices
 * already prepared, come back unchanged. Files, quantize and dequantize keep
 * the ggml layout; unprepare() gives it back.
 */
export function prepare(w: QuantizedMatrix): QuantizedMatrix {
  const t = checkMatrix(w);
  if (checkLayout(w) !== 'ggml' || !INTERLEAVED_TYPES.includes(t.name)) return w;
  return withOrder(interleaveMatrix(w), w);
}

/**
 * A zeroed buffer of `bytes` bytes whose first byte sits on a 64-byte cache
 * line (on the native backend; V8 itself aligns large buffers to 16 only):
 * where to put prepared matrices that are built or copied by hand.
 */
export function allocAligned(bytes: number): Uint8Array {
  checkCount(bytes, 'bytes', 0);
  return alignedBytes(bytes);
}

/** A prepared matrix back in the ggml layout (a new buffer); a ggml matrix comes back unchanged. */
export function unprepare(w: QuantizedMatrix): QuantizedMatrix {
  const t = checkMatrix(w);
  if (checkLayout(w) === 'ggml') return w;
  const data = new Uint8Array(layoutBytes(t.name, w.rows, w.cols, 'ggml'));
  impl.relayout(t.name, w.data, w.rows, w.cols, data, false);
  return withOrder(Object.freeze({ type: t.name, rows: w.rows, cols: w.cols, data }), w);
}

function layoutCode(w: QuantizedMatrix): LayoutCode {
  return w.layout === 'interleaved16' ? 1 : 0;
}

function precisionCode(opts: MatmulOptions | undefined): PrecisionCode {
  if (opts === undefined || opts.precision === undefined || opts.precision === 'q8') return 0;
  if (opts.precision === 'f32') return 1;
  throw new QkError('ERR_QK_ARG', `opts.precision must be 'q8' or 'f32'; got '${String(opts.precision)}'`);
}

/** y = x · Wᵀ: x is m x K, the result m x N (row-major). Allocation-free when `out` is given. */
export function matmul(w: QuantizedMatrix, x: Float32Array, m: number, out?: Float32Array, opts?: MatmulOptions): Float32Array {
  const t = checkMatrix(w);
  checkCount(m, 'm', 1);
  checkF32(x, 'x', m * w.cols, true);
  const y = out !== undefined ? checkF32(out, 'out', m * w.rows, false) : new Float32Array(m * w.rows);
  const xs = w.inputOrder === undefined ? x : gatherInputs(w.inputOrder, x, m);
  impl.matmul(t.name, w.data, w.rows, w.cols, xs, m, y, precisionCode(opts), layoutCode(w));
  return y;
}

/** matmul on a worker thread; the buffers must not be modified until it settles. */
export function matmulAsync(w: QuantizedMatrix, x: Float32Array, m: number, out?: Float32Array, opts?: MatmulOptions): Promise<Float32Array> {
  try {
    const t = checkMatrix(w);
    checkCount(m, 'm', 1);
    checkF32(x, 'x', m * w.cols, true);
    const y = out !== undefined ? checkF32(out, 'out', m * w.rows, false) : new Float32Array(m * w.rows);
    // A buffer of its own: the shared one may be overwritten before the worker reads it.
    const xs = w.inputOrder === undefined ? x : gatherInputs(w.inputOrder, x, m, new Float32Array(m * w.cols));
    return impl.matmulAsync(t.name, w.data, w.rows, w.cols, xs, m, y, precisionCode(opts), layoutCode(w));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * The activation quantization 'q8' precision applies before integer dot
 * products (q8_0 blocks for q4_0/q5_0/q8_0 weights, q8_1 for q4_1/q5_1, q8_k
 * for the K-quants), in the ggml layout. Exposed for tests and for callers that want to inspect it.
 */
export function quantizeActivations(type: WeightType, x: Float32Array, m: number, k: number): Uint8Array {
  const t = checkType(type);
  if (t.activation === 'f32') throw new QkError('ERR_QK_TYPE', `${type} weights take f32 activations; there is nothing to quantize`);
  checkCount(m, 'm', 1);
  checkCols(t, k, 'k');
  checkF32(x, 'x', m * k, true);
  const dst = new Uint8Array(m * activationRowBytes(t.name, k));
  impl.quantizeActivations(t.name, x, m, k, dst);
  return dst;
}

export function backend(): BackendReport {
  const i = impl.info();
  return { name: impl.name, isa: i.isa as Isa, isas: i.isas, threads: i.threads, version: VERSION };
}

/** Forces a kernel set ('auto' = the best this CPU runs); throws QkError for one the CPU lacks. */
export function setIsa(isa: 'auto' | Isa): void {
  if (typeof isa !== 'string') throw new QkError('ERR_QK_ISA', `isa must be a string; got ${typeof isa}`);
  impl.setIsa(isa);
}

export function setThreads(n: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 256) {
    throw new QkError('ERR_QK_ARG', `threads must be an integer in [1, 256]; got ${String(n)}`);
  }
  impl.setThreads(n);
}

/**
 * The machine's memory read bandwidth in GB/s: the best of `reps` streaming
 * passes on the current thread count. This is the ceiling of a batch-1
 * matvec; null on the js backend.
 *
 * `source` is either a byte count (default 1 GiB): a buffer of that size is
 * allocated, written and freed by each call; or a Uint8Array of at least
 * 1 MiB that is only read (its whole MiBs), for callers that measure
 * often. Making a buffer costs far more than reading it (about 0.7 s per
 * 256 MiB on a VM, almost all first-touch page faults, against 5-10 ms a
 * pass). Fill a buffer of your own before the first call: pages never
 * written all map one zero page and would be read from cache.
 */
export function memoryBandwidth(source: number | Uint8Array = 2 ** 30, reps = 5): number | null {
  checkCount(reps, 'reps', 1);
  if (reps > 1000) throw new QkError('ERR_QK_ARG', `reps must be at most 1000; got ${reps}`);
  if (source instanceof Uint8Array) {
    const buf = checkU8(source, 'buffer', 1 << 20, false);
    const gbs = impl.memoryBandwidth(buf, reps);
    if (gbs !== null && gbs < 0) throw new QkError('ERR_QK_LENGTH', 'buffer must hold at least 1 MiB from its first 8-byte-aligned byte');
    return gbs;
  }
  if (typeof source !== 'number' || !Number.isInteger(source) || source < 2 ** 20 || source > 2 ** 34) {
    throw new QkError('ERR_QK_ARG', `memoryBandwidth takes a byte count in [1 MiB, 16 GiB] or a Uint8Array; got ${typeof source === 'number' ? source : typeof source}`);
  }
  const gbs = impl.memoryBandwidth(source, reps);
  if (gbs !== null && gbs < 0) throw new QkError('ERR_QK_ARG', `could not allocate ${source} bytes for the bandwidth measurement`);
  return gbs;
}

export { TYPES };

// ---- GGUF files ----
export { openGguf } from './gguf/reader';
export { writeGguf } from './gguf/writer';
export type {
  GgufFile, GgufTensor, GgufValue, GgufValueType, GgufScalarType, GgufArray, GgufArrayItems, GgufPlainValue,
  GgufTensorInput, GgufMetadataInput, OpenGgufOptions, WriteGgufOptions, WriteGgufResult, WriteProgress,
} from './gguf/types';

// ---- models ----
export { loadModel, Model, Sequence } from './model/model';
export type {
  LoadModelOptions, GenerateOptions, GeneratedPiece, FinishReason, GenerationResult, Completion, SequenceOptions, StepRow,
} from './model/model';
export type { LlamaHparams } from './model/config';
export { Tokenizer } from './model/tokenizer';
export type { TokenizeOptions, DetokenizeOptions, Decoder } from './model/tokenizer';
export { Sampler } from './model/sampler';
export type { SamplingOptions } from './model/sampler';
export { StopMatcher } from './model/stop';

export { openSafetensors } from './safetensors';
export type { SafetensorsFile, SafetensorsTensor } from './safetensors';
export { openCheckpoint } from './checkpoint';
export type { Checkpoint, CheckpointTensor, QuantizationConfig, OpenCheckpointOptions } from './checkpoint';

export { gptq, gptqAsync, awq, awqAsync } from './calibrated';
export type { CalibratedType, CalibratedOptions, GptqOptions, AwqOptions, GptqResult, AwqResult } from './calibrated';

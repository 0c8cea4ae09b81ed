// The whole API on the TypeScript kernels: the fallback where no native build
// loads, and the oracle the native backend is tested against.
import type { Backend, CalibParams, LayoutCode, PrecisionCode } from '../backend';
import { awqReference } from './awq';
import { gptqReference } from './gptq';
import { QkError } from '../errors';
import { activationRowBytes, TILE_ROWS, TYPES, type WeightType } from '../types';
import { deinterleaveTile, relayout } from './interleave';
import { jsKernels, quantizeActivationRow } from './kernels';

// Grows to the largest activation seen, then is reused: matmul allocates nothing.
let scratch = new Uint8Array(0);

function activationScratch(bytes: number): Uint8Array {
  if (scratch.length < bytes) scratch = new Uint8Array(Math.max(bytes, scratch.length * 2));
  return scratch;
}

function rowBytes(type: WeightType, cols: number): number {
  const t = TYPES[type];
  return (cols / t.blockSize) * t.blockBytes;
}

function quantizeActivations(type: WeightType, x: Float32Array, m: number, k: number, dst: Uint8Array): void {
  const act = TYPES[type].activation;
  if (act === 'f32') throw new QkError('ERR_QK_TYPE', `${type} weights take f32 activations; there is nothing to quantize`);
  const ab = activationRowBytes(type, k);
  for (let i = 0; i < m; i++) quantizeActivationRow(act, x, i * k, dst, i * ab, k);
}

// One tile of an 'interleaved16' matrix back in ggml rows, reused.
let tileRows = new Uint8Array(0);

function matmul(type: WeightType, w: Uint8Array, rows: number, cols: number, x: Float32Array, m: number, out: Float32Array, precision: PrecisionCode, layout: LayoutCode): void {
  const rb = rowBytes(type, cols);
  const act = TYPES[type].activation;
  const q8 = precision === 0 && act !== 'f32';
  const ab = q8 ? activationRowBytes(type, cols) : 0;
  const a = activationScratch(m * ab);
  if (q8) for (let i = 0; i < m; i++) quantizeActivationRow(act, x, i * cols, a, i * ab, cols);
  if (layout === 0) {
    matmulRows(type, w, rows, cols, x, m, out, q8 ? a : null, 0, rows);
    return;
  }
  if (tileRows.length < TILE_ROWS * rb) tileRows = new Uint8Array(TILE_ROWS * rb);
  for (let n0 = 0; n0 < rows; n0 += TILE_ROWS) {
    const count = Math.min(TILE_ROWS, rows - n0);
    deinterleaveTile(type, w, n0 * rb, count, cols, tileRows, 0);
    matmulRows(type, tileRows, rows, cols, x, m, out, q8 ? a : null, n0, count);
  }
}

/**
 * Outputs n0..n0+count-1 of every activation row, from those rows of W in
 * the ggml layout at the start of wb: integer dots against the quantized activations
 * `act` when given, else float dots against x.
 */
function matmulRows(type: WeightType, wb: Uint8Array, rows: number, cols: number, x: Float32Array, m: number, out: Float32Array, act: Uint8Array | null, n0: number, count: number): void {
  const kern = jsKernels[type];
  const rb = rowBytes(type, cols);
  const ab = act ? activationRowBytes(type, cols) : 0;
  for (let i = 0; i < m; i++) {
    const yo = i * rows + n0;
    for (let n = 0; n < count; n++) {
      if (act) kern.dotQ8Into(wb, n * rb, act, i * ab, cols, out, yo + n);
      else kern.dotF32Into(wb, n * rb, x, i * cols, cols, out, yo + n);
    }
  }
}

export const jsBackend: Backend = {
  name: 'js',
  quantize(type, src, rows, cols, dst, importance) {
    const kern = jsKernels[type];
    const rb = rowBytes(type, cols);
    if (importance) {
      const qi = kern.quantizeRowImportance;
      if (!qi) throw new QkError('ERR_QK_ARG', `an importance vector is not used by ${type} (llama.cpp's ${type} quantizer takes none); omit opts.importance`);
      for (let r = 0; r < rows; r++) qi(src, r * cols, dst, r * rb, cols, importance);
      return;
    }
    for (let r = 0; r < rows; r++) kern.quantizeRow(src, r * cols, dst, r * rb, cols);
  },
  dequantize(type, data, rows, cols, out) {
    const kern = jsKernels[type];
    const rb = rowBytes(type, cols);
    for (let r = 0; r < rows; r++) kern.dequantizeRow(data, r * rb, out, r * cols, cols);
  },
  matmul,
  matmulAsync(type, w, rows, cols, x, m, out, precision, layout) {
    try {
      matmul(type, w, rows, cols, x, m, out, precision, layout);
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  },
  relayout,
  quantizeActivations,
  misalignment: () => 0,
  adviseHugePages: () => 0,
  info: () => ({ isa: 'js', isas: ['js'], threads: 1 }),
  setIsa(isa) {
    if (isa !== 'auto' && isa !== 'js') {
      throw new QkError('ERR_QK_ISA', `isa '${isa}' is not available on the js backend; expected 'auto' or 'js'`);
    }
  },
  setThreads() {
    /* the TypeScript kernels run on the calling thread */
  },
  memoryBandwidth: () => null,
  llama: null,
  gptq: (p, weights, rows, cols, calib, n, dst) => runGptq(p, weights, rows, cols, calib, n, dst),
  gptqAsync: (p, weights, rows, cols, calib, n, dst) => later(() => runGptq(p, weights, rows, cols, calib, n, dst)),
  awq: (p, weights, rows, cols, calib, n, dst, scales) => runAwq(p, weights, rows, cols, calib, n, dst, scales),
  awqAsync: (p, weights, rows, cols, calib, n, dst, scales) => later(() => runAwq(p, weights, rows, cols, calib, n, dst, scales)),
};

// The js backend has no worker threads: its async variants run on the next
// turn of the event loop, so callers at least see the same promise shape.
function later<T>(fn: () => T): Promise<T> {
  return new Promise((resolve, reject) => setImmediate(() => {
    try {
      resolve(fn());
    } catch (e) {
      reject(e);
    }
  }));
}

function runGptq(p: CalibParams, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array): number {
  const r = gptqReference(weights, rows, cols, calib, n, p);
  dst.set(r.data);
  return r.damp;
}

function runAwq(p: CalibParams, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array, scales: Float32Array): number {
  const r = awqReference(weights, rows, cols, calib, n, p);
  dst.set(r.data);
  scales.set(r.inputScales);
  return r.ratio;
}

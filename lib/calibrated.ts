// Calibrated quantization of one linear layer: GPTQ and AWQ, on the layer's
// own inputs. The algorithms live behind the backend (native on the pool,
// lib/js/gptq.ts and lib/js/awq.ts as the reference); this file checks the
// arguments and shapes the results.

import type { CalibParams } from './backend';
import { QkError } from './errors';
import { storageType } from './js/gptq';
import { impl } from './runtime';
import { TYPES, type QuantizedMatrix, type WeightType } from './types';
import { checkCount, checkF32 } from './validate';

/** The grids GPTQ and AWQ can write: ggml block types, or 'int4', GPTQ's 4-bit groups. */
export type CalibratedType = 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q4_k' | 'q5_k' | 'q6_k' | 'int4';
const CALIBRATED_TYPES: readonly CalibratedType[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k', 'int4'];

export interface CalibratedOptions {
  /**
   * The output grid (default 'int4'). A ggml type gives a matrix of that
   * type, with its block scales chosen by the type's own quantizer, that any
   * GGUF reader accepts. 'int4' is the GPTQ/AWQ checkpoint grid: 4-bit levels
   * with one fp16 scale (and zero point, unless `sym`) per `groupSize`
   * columns; it is stored as q4_0 when symmetric and as q8_0 otherwise.
   */
  type?: CalibratedType;
  /** 'int4' only: columns per group, a multiple of 32 that divides cols, or -1 for whole rows (default 128). */
  groupSize?: number;
  /** 'int4' only: symmetric groups (GPTQ's default, true) or a zero point per group (AWQ's default, false). */
  sym?: boolean;
}

export interface GptqOptions extends CalibratedOptions {
  /** Quantize columns in order of decreasing Hessian diagonal (GPTQ's desc_act); the result keeps the original column order. Default false. */
  actOrder?: boolean;
  /** Added to the Hessian's diagonal, as a fraction of its mean (default 0.01). */
  damp?: number;
  /** Columns per lazy batch update (default 128). */
  batch?: number;
}

export interface AwqOptions extends CalibratedOptions {
  /** Points of the scale exponent grid (default 20). */
  grid?: number;
  /** Calibration rows the searches score on, evenly spaced (default 512). */
  tokens?: number;
  /** Search per-group clipping thresholds (default true). */
  clip?: boolean;
  /**
   * Use these input scales (cols finite values > 0) instead of searching: how
   * layers that read the same input (q, k and v; gate and up) share the
   * scales one search found for all of them, when their types differ.
   */
  inputScales?: Float32Array;
}

export interface GptqResult {
  readonly matrix: QuantizedMatrix;
  /** The dampening used: opts.damp, or 10x/100x it when the Hessian needed more. */
  readonly damp: number;
}

export interface AwqResult {
  /** Q(W diag(s)): multiply by x / inputScales (or fold 1/s into the operation before). */
  readonly matrix: QuantizedMatrix;
  /** s, one per input column */
  readonly inputScales: Float32Array;
  /** the exponent r of s = mean|x|^r / mean|w|^(1-r) the search chose; null when opts.inputScales were given */
  readonly ratio: number | null;
}

interface Job {
  p: CalibParams;
  n: number;
  storage: WeightType;
  dst: Uint8Array;
}

function prepareJob(what: 'gptq' | 'awq', weights: unknown, rows: unknown, cols: unknown, calib: unknown, opts: (GptqOptions & AwqOptions) | undefined): Job {
  const o = opts ?? {};
  if (typeof o !== 'object') throw new QkError('ERR_QK_ARG', `${what}: opts must be an object`);
  const type = o.type ?? 'int4';
  if (!CALIBRATED_TYPES.includes(type)) throw new QkError('ERR_QK_TYPE', `${what}: opts.type must be one of ${CALIBRATED_TYPES.join(', ')}; got ${String(type)}`);
  const r = checkCount(rows, 'rows', 1);
  const c = checkCount(cols, 'cols', 1);
  const sym = bool(o.sym, what === 'gptq', `${what}: opts.sym`);
  let groupSize = 0;
  if (type === 'int4') {
    groupSize = o.groupSize ?? 128;
    if (groupSize === -1) groupSize = c;
    if (!Number.isInteger(groupSize) || groupSize < 32 || groupSize % 32 !== 0 || c % groupSize !== 0) {
      throw new QkError('ERR_QK_SHAPE', `${what}: opts.groupSize must be -1 or a multiple of 32 that divides cols (${c}); got ${String(o.groupSize)}`);
    }
  } else {
    if (o.groupSize !== undefined) throw new QkError('ERR_QK_ARG', `${what}: opts.groupSize applies to type 'int4' only; ${type}'s blocks are fixed`);
    const bs = TYPES[type].blockSize;
    if (c % bs !== 0) throw new QkError('ERR_QK_SHAPE', `${what}: cols must be a multiple of ${bs} for ${type}; got ${c}`);
  }
  if (c % 32 !== 0) throw new QkError('ERR_QK_SHAPE', `${what}: cols must be a multiple of 32; got ${c}`);
  const w = checkF32(weights, 'weights', r * c, true);
  if (!(calib instanceof Float32Array)) throw new QkError('ERR_QK_ARG', `${what}: calib must be a Float32Array of n x cols inputs`);
  if (calib.length === 0 || calib.length % c !== 0) throw new QkError('ERR_QK_LENGTH', `${what}: calib must hold n x cols (${c}) floats, n >= 1; got ${calib.length}`);
  finite(w, `${what}: weights`, c);
  finite(calib, `${what}: calib`, c);
  const damp = num(o.damp, 0.01, `${what}: opts.damp`, 0, 10);
  const batch = int(o.batch, 128, `${what}: opts.batch`, 1, 1 << 16);
  const grid = int(o.grid, 20, `${what}: opts.grid`, 1, 1000);
  const tokens = int(o.tokens, 512, `${what}: opts.tokens`, 1, 1 << 24);
  let scales: Float32Array | null = null;
  if (o.inputScales !== undefined) {
    if (what !== 'awq') throw new QkError('ERR_QK_ARG', `${what}: opts.inputScales is an awq option`);
    scales = checkF32(o.inputScales, 'awq: opts.inputScales', c, true);
    for (let j = 0; j < c; j++) {
      if (!(scales[j] > 0 && scales[j] < Infinity)) throw new QkError('ERR_QK_VALUE', `awq: opts.inputScales[${j}] must be finite and > 0; got ${scales[j]}`);
    }
  }
  const p: CalibParams = { type, groupSize, sym, actOrder: bool(o.actOrder, false, `${what}: opts.actOrder`), damp, batch, grid, tokens, clip: bool(o.clip, true, `${what}: opts.clip`), scales };
  const storage: WeightType = storageType(p);
  const t = TYPES[storage];
  return { p, n: calib.length / c, storage, dst: new Uint8Array(r * (c / t.blockSize) * t.blockBytes) };
}

function finite(a: Float32Array, name: string, cols: number): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v - v !== 0) throw new QkError('ERR_QK_VALUE', `${name}[${i}] is ${Number.isNaN(v) ? 'NaN' : 'infinite'} (row ${Math.floor(i / cols)}, col ${i % cols})`);
  }
}

function bool(v: unknown, dflt: boolean, name: string): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new QkError('ERR_QK_ARG', `${name} must be a boolean; got ${typeof v}`);
  return v;
}

function num(v: unknown, dflt: number, name: string, lo: number, hi: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new QkError('ERR_QK_ARG', `${name} must be a number in [${lo}, ${hi}]; got ${String(v)}`);
  return v;
}

function int(v: unknown, dflt: number, name: string, lo: number, hi: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new QkError('ERR_QK_ARG', `${name} must be an integer in [${lo}, ${hi}]; got ${String(v)}`);
  return v;
}

function matrixOf(job: Job, rows: number, cols: number): QuantizedMatrix {
  return Object.freeze({ type: job.storage, rows, cols, data: job.dst });
}

/**
 * GPTQ (Frantar et al., 2022) on one linear layer: `weights` is rows x cols
 * (row o holds output o's weights), `calib` n x cols of the layer's inputs.
 * The rounding error of each column is spread over the columns not yet
 * quantized, weighted by the inverse Hessian of the inputs, so the layer's
 * outputs on inputs like `calib` move less than with round-to-nearest.
 */
export function gptq(weights: Float32Array, rows: number, cols: number, calib: Float32Array, opts?: GptqOptions): GptqResult {
  const job = prepareJob('gptq', weights, rows, cols, calib, opts);
  const damp = impl.gptq(job.p, weights, rows, cols, calib, job.n, job.dst);
  return Object.freeze({ matrix: matrixOf(job, rows, cols), damp });
}

/** gptq on the worker pool; the buffers must not change until it settles. */
export async function gptqAsync(weights: Float32Array, rows: number, cols: number, calib: Float32Array, opts?: GptqOptions): Promise<GptqResult> {
  const job = prepareJob('gptq', weights, rows, cols, calib, opts);
  const damp = await impl.gptqAsync(job.p, weights, rows, cols, calib, job.n, job.dst);
  return Object.freeze({ matrix: matrixOf(job, rows, cols), damp });
}

/**
 * AWQ (Lin et al., 2023) on one linear layer: per-input-channel scales that
 * protect the weights of the channels with large activations, searched for
 * the smallest output error on `calib`, then per-group clipping. The matrix
 * holds Q(W diag(s)); feed it x / inputScales.
 */
export function awq(weights: Float32Array, rows: number, cols: number, calib: Float32Array, opts?: AwqOptions): AwqResult {
  const job = prepareJob('awq', weights, rows, cols, calib, opts);
  const inputScales = new Float32Array(cols);
  const ratio = impl.awq(job.p, weights, rows, cols, calib, job.n, job.dst, inputScales);
  return Object.freeze({ matrix: matrixOf(job, rows, cols), inputScales, ratio: ratio < 0 ? null : ratio });
}

export async function awqAsync(weights: Float32Array, rows: number, cols: number, calib: Float32Array, opts?: AwqOptions): Promise<AwqResult> {
  const job = prepareJob('awq', weights, rows, cols, calib, opts);
  const inputScales = new Float32Array(cols);
  const ratio = await impl.awqAsync(job.p, weights, rows, cols, calib, job.n, job.dst, inputScales);
  return Object.freeze({ matrix: matrixOf(job, rows, cols), inputScales, ratio: ratio < 0 ? null : ratio });
}

// AWQ (Lin et al., 2023, "AWQ: Activation-aware Weight Quantization for LLM
// Compression and Acceleration"; reference §9) on one layer, as AutoAWQ runs it
// for a linear layer: per-input-channel scales s = mean|x|^r / mean|w|^(1-r)
// with r searched on a grid of 20 for the smallest output error, then for each
// group of each row the clipping threshold (1 - i/20 of its max|w|, i < 10)
// with the smallest error of that group's share of the output. The layer then
// stores Q(clip(W diag(s))) and its caller divides its input by s, or folds
// 1/s into the operation before it.
//
// Both searches quantize with the output type's own quantizer. The clipping
// search works on 32-column groups for the ggml types (on the int4 group for
// 'int4'); K-quant blocks are 256 wide with a scale per 32 (16 for q6_k) that
// depends on the whole block, so there a 32-column stand-in of the sub-block
// grid scores the thresholds (min-max with q4_k's 16 / q5_k's 32 levels and a
// zero-or-negative minimum; symmetric 6-bit for q6_k).

import { QkError } from '../errors';
import { TYPES } from '../types';
import type { BlockType } from './grid';
import { type GptqTarget, paramBlock, storageType } from './gptq';
import { type Int4Params, int4Level, int4Params, quantizeInt4Row } from './int4';
import { jsKernels } from './kernels';

export interface AwqParams {
  readonly type: GptqTarget;
  readonly groupSize: number;
  readonly sym: boolean;
  /** grid points of the scale exponent search */
  readonly grid: number;
  /** calibration rows the searches score on at most (evenly spaced) */
  readonly tokens: number;
  /** run the clipping search */
  readonly clip: boolean;
  /** given scales: skip the search (ratio -1) */
  readonly scales: Float32Array | null;
}

export interface AwqResult {
  readonly type: BlockType;
  readonly data: Uint8Array;
  readonly inputScales: Float32Array;
  /** the chosen exponent r; -1 when the scales were given */
  readonly ratio: number;
}

/** Quantize-dequantize of whole rows with the target's quantizer. */
function roundTrip(p: AwqParams, src: Float32Array, rows: number, cols: number, out: Float32Array, scratch: Uint8Array): void {
  const type = storageType(p);
  const rb = (cols / TYPES[type].blockSize) * TYPES[type].blockBytes;
  const group = paramBlock(p, cols);
  for (let r = 0; r < rows; r++) {
    if (p.type === 'int4') quantizeInt4Row(src, r * cols, scratch, 0, cols, group, p.sym);
    else jsKernels[type].quantizeRow(src, r * cols, scratch, 0, cols);
    jsKernels[type].dequantizeRow(scratch, 0, out, r * cols, cols);
  }
}

/** Evenly spaced rows of calib, at most `max` of them. */
function sampleRows(calib: Float32Array, n: number, cols: number, max: number): { x: Float32Array; t: number } {
  if (n <= max) return { x: calib.subarray(0, n * cols), t: n };
  const x = new Float32Array(max * cols);
  for (let i = 0; i < max; i++) x.set(calib.subarray(Math.floor((i * n) / max) * cols, Math.floor((i * n) / max) * cols + cols), i * cols);
  return { x, t: max };
}

/** mean over rows t and outputs o of (x_t . (w_o - v_o))^2 */
function outputLoss(x: Float32Array, t: number, cols: number, w: Float32Array, v: Float32Array, rows: number, d: Float64Array): number {
  let sum = 0;
  for (let o = 0; o < rows; o++) {
    for (let j = 0; j < cols; j++) d[j] = w[o * cols + j] - v[o * cols + j];
    for (let s = 0; s < t; s++) {
      let e = 0;
      const xo = s * cols;
      for (let j = 0; j < cols; j++) e += x[xo + j] * d[j];
      sum += e * e;
    }
  }
  return sum / (t * rows);
}

export function awqReference(weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, p: AwqParams): AwqResult {
  const type = storageType(p);
  const group = paramBlock(p, cols);
  const { x, t } = sampleRows(calib, n, cols, p.tokens);

  // Activation statistic over every calibration row; weight statistic: |w|
  // over its group's max|w|, averaged over output rows.
  const xMean = new Float64Array(cols);
  for (let s = 0; s < n; s++) for (let j = 0; j < cols; j++) xMean[j] += Math.abs(calib[s * cols + j]);
  for (let j = 0; j < cols; j++) xMean[j] /= n;
  const wMean = new Float64Array(cols);
  const meanGroup = p.type === 'int4' ? group : 32;
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += meanGroup) {
      let m = 0;
      for (let e = 0; e < meanGroup; e++) m = Math.max(m, Math.abs(weights[r * cols + c0 + e]));
      for (let e = 0; e < meanGroup; e++) wMean[c0 + e] += m > 0 ? Math.abs(weights[r * cols + c0 + e]) / m : 0;
    }
  }
  for (let j = 0; j < cols; j++) wMean[j] /= rows;

  const scaled = new Float32Array(rows * cols);
  const q = new Float32Array(rows * cols);
  const scratch = new Uint8Array((cols / TYPES[type].blockSize) * TYPES[type].blockBytes);
  const d = new Float64Array(cols);
  const s = new Float64Array(cols);
  const best = new Float32Array(cols).fill(1);
  let bestLoss = Infinity;
  let bestRatio = 0;
  if (p.scales !== null) {
    best.set(p.scales);
    bestLoss = 0;
    bestRatio = -1;
  }
  for (let gi = 0; p.scales === null && gi < p.grid; gi++) {
    const ratio = gi / p.grid;
    let mx = 0;
    let mn = Infinity;
    for (let j = 0; j < cols; j++) {
      let v = Math.pow(xMean[j], ratio) / (Math.pow(wMean[j], 1 - ratio) + 1e-4);
      if (!(v >= 1e-4)) v = 1e-4;
      s[j] = v;
      mx = Math.max(mx, v);
      mn = Math.min(mn, v);
    }
    const norm = Math.sqrt(mx * mn);
    for (let j = 0; j < cols; j++) s[j] = Math.fround(s[j] / norm);
    for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) scaled[r * cols + j] = weights[r * cols + j] * s[j];
    roundTrip(p, scaled, rows, cols, q, scratch);
    for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) q[r * cols + j] /= s[j];
    const loss = outputLoss(x, t, cols, weights, q, rows, d);
    if (loss < bestLoss) {
      bestLoss = loss;
      bestRatio = ratio;
      for (let j = 0; j < cols; j++) best[j] = s[j];
    }
  }
  if (!Number.isFinite(bestLoss)) throw new QkError('ERR_QK_VALUE', 'awq: no scale gave a finite output error (are the weights or calibration rows too large?)');

  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) scaled[r * cols + j] = weights[r * cols + j] * best[j];
  if (p.clip) {
    const xs = new Float32Array(t * cols);
    for (let i = 0; i < t; i++) for (let j = 0; j < cols; j++) xs[i * cols + j] = x[i * cols + j] / best[j];
    clipSearch(p, scaled, rows, cols, xs, t, p.type === 'int4' ? group : 32);
  }
  const rb = scratch.length;
  const data = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    if (p.type === 'int4') quantizeInt4Row(scaled, r * cols, data, r * rb, cols, group, p.sym);
    else jsKernels[type].quantizeRow(scaled, r * cols, data, r * rb, cols);
  }
  return { type, data, inputScales: best, ratio: bestRatio };
}

/** In place: each group of each row of w clipped to the threshold whose quantized group best reproduces its share of x w^T. */
function clipSearch(p: AwqParams, w: Float32Array, rows: number, cols: number, x: Float32Array, t: number, g: number): void {
  const vals = new Float32Array(g);
  const qv = new Float32Array(g);
  const ref = new Float64Array(t);
  const stand = standIn(p, g);
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += g) {
      const wo = r * cols + c0;
      let max = 0;
      for (let e = 0; e < g; e++) max = Math.max(max, Math.abs(w[wo + e]));
      if (max === 0) continue;
      for (let i = 0; i < t; i++) {
        let y = 0;
        for (let e = 0; e < g; e++) y += x[i * cols + c0 + e] * w[wo + e];
        ref[i] = y;
      }
      let bestErr = Infinity;
      let bestMax = max;
      for (let step = 0; step < 10; step++) {
        const m = max * (1 - step / 20);
        for (let e = 0; e < g; e++) vals[e] = Math.min(m, Math.max(-m, w[wo + e]));
        stand(vals, qv);
        let err = 0;
        for (let i = 0; i < t; i++) {
          let y = 0;
          for (let e = 0; e < g; e++) y += x[i * cols + c0 + e] * qv[e];
          err += (y - ref[i]) * (y - ref[i]);
        }
        if (err < bestErr) {
          bestErr = err;
          bestMax = m;
        }
      }
      for (let e = 0; e < g; e++) w[wo + e] = Math.min(bestMax, Math.max(-bestMax, w[wo + e]));
    }
  }
}

type StandIn = (src: Float32Array, out: Float32Array) => void;

/** The quantize-dequantize the clipping search scores one group with. */
function standIn(p: AwqParams, g: number): StandIn {
  if (p.type === 'int4') {
    const ip: Int4Params = { bits: 0, scale: 0, zero: 0 };
    return (src, out) => {
      int4Params(src, 0, g, p.sym, ip);
      for (let e = 0; e < g; e++) out[e] = Math.fround(ip.scale * (int4Level(src[e], ip) - ip.zero));
    };
  }
  const type = p.type;
  if (TYPES[type].blockSize === 32) {
    const k = jsKernels[type];
    const bytes = new Uint8Array(TYPES[type].blockBytes);
    return (src, out) => {
      k.quantizeRow(src, 0, bytes, 0, 32);
      k.dequantizeRow(bytes, 0, out, 0, 32);
    };
  }
  if (type === 'q6_k') {
    return (src, out) => {
      for (let h = 0; h < 32; h += 16) {
        let amax = 0;
        let vmax = 0;
        for (let e = h; e < h + 16; e++) if (Math.abs(src[e]) > amax) (amax = Math.abs(src[e])), (vmax = src[e]);
        const scale = vmax / -32;
        for (let e = h; e < h + 16; e++) out[e] = scale === 0 ? 0 : scale * Math.min(31, Math.max(-32, Math.round(src[e] / scale)));
      }
    };
  }
  const top = type === 'q4_k' ? 15 : 31;
  return (src, out) => {
    let lo = 0;
    let hi = -Infinity;
    for (let e = 0; e < 32; e++) {
      lo = Math.min(lo, src[e]);
      hi = Math.max(hi, src[e]);
    }
    const scale = (hi - lo) / top;
    for (let e = 0; e < 32; e++) out[e] = scale === 0 ? lo : lo + scale * Math.min(top, Math.max(0, Math.round((src[e] - lo) / scale)));
  };
}

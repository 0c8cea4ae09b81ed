// GPTQ (Frantar et al., 2022, "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers"; reference §10) in float64: the
// reference the native implementation is checked against.
//
// The output is an ordinary matrix of a qkernels type. Each block's scales are
// chosen first, by the type's own quantizer on the block's current (already
// error-compensated) weights, the first time the column loop reaches one of
// the block's columns; GPTQ then picks every weight's level on that grid and
// spreads the rounding error over the columns not yet quantized. 'int4' is the
// GPTQ checkpoint's group format: a scale (and zero, unless symmetric) per
// group of input columns, stored the way openCheckpoint stores it (symmetric:
// q4_0 with the scale as d; asymmetric: q8_0 holding q - zero).
//
// Where this differs from the reference implementation, on purpose: group
// parameters come from the updated weights at the group's first column for
// every group size (the reference does so only when the group fits in its
// batch of 128 columns), a symmetric group's range is always [-max|w|, max|w|]
// (the reference widens it to [0, max] for an all-non-negative group), and
// act-order keeps the stored columns in their original order (a block's
// parameters are fixed when its first column in importance order is reached)
// so that every output, act-order included, is a plain ggml matrix.

import { QkError } from '../errors';
import { TYPES } from '../types';
import { type BlockGrid, type BlockType, levelValue, nearestLevel, newGrid, readGrid, readLevels, writeLevels } from './grid';
import { jsKernels } from './kernels';
import { type Int4Params, int4Params, writeInt4Scales } from './int4';
import { gram, inverseCholeskyUpper } from './linalg';

export type GptqTarget = BlockType | 'int4';

export interface GptqParams {
  /** the output grid */
  readonly type: GptqTarget;
  /** 'int4' only: input columns per group, a multiple of 32, or -1 for one group per row */
  readonly groupSize: number;
  /** 'int4' only: symmetric groups (no zero point) */
  readonly sym: boolean;
  /** quantize columns in order of decreasing Hessian diagonal */
  readonly actOrder: boolean;
  /** dampening added to the Hessian diagonal, as a fraction of its mean */
  readonly damp: number;
  /** columns per lazy batch update */
  readonly batch: number;
}

export interface GptqResult {
  readonly type: BlockType;
  readonly data: Uint8Array;
  /** the dampening fraction that made the Hessian positive definite */
  readonly damp: number;
}

/** The ggml type that stores a target. */
export function storageType(p: Pick<GptqParams, 'type' | 'sym'>): BlockType {
  return p.type === 'int4' ? (p.sym ? 'q4_0' : 'q8_0') : p.type;
}

/** Input columns that share one set of block parameters. */
export function paramBlock(p: Pick<GptqParams, 'type' | 'groupSize'>, cols: number): number {
  if (p.type !== 'int4') return TYPES[p.type].blockSize;
  return p.groupSize === -1 ? cols : p.groupSize;
}

/** The Hessian H = (2/n) X^T X, with dead columns (zero diagonal) marked and set to 1 on the diagonal. */
export function hessian(calib: Float32Array, n: number, cols: number): { h: Float64Array; dead: Uint8Array } {
  const h = gram(calib, n, cols);
  const f = 2 / n;
  for (let i = 0; i < h.length; i++) h[i] *= f;
  const dead = new Uint8Array(cols);
  for (let i = 0; i < cols; i++) {
    if (h[i * cols + i] === 0) {
      dead[i] = 1;
      h[i * cols + i] = 1;
    }
  }
  return { h, dead };
}

/** Columns by decreasing Hessian diagonal (ties in column order), or the identity. */
export function columnOrder(h: Float64Array, cols: number, actOrder: boolean): Int32Array {
  const order = new Int32Array(cols);
  for (let j = 0; j < cols; j++) order[j] = j;
  if (!actOrder) return order;
  return Int32Array.from(Array.from(order).sort((a, b) => h[b * cols + b] - h[a * cols + a] || a - b));
}

/** U with (H_perm + damp * mean(diag) I)^-1 = U^T U, H's rows and columns taken in `order`; null if not positive definite. */
export function dampedFactor(h: Float64Array, cols: number, order: Int32Array, damp: number): Float64Array | null {
  let mean = 0;
  for (let i = 0; i < cols; i++) mean += h[i * cols + i];
  mean /= cols;
  const a = new Float64Array(cols * cols);
  for (let i = 0; i < cols; i++) {
    const oi = order[i] * cols;
    for (let j = 0; j < cols; j++) a[i * cols + j] = h[oi + order[j]];
    a[i * cols + i] += damp * mean;
  }
  return inverseCholeskyUpper(a, cols);
}

/**
 * GPTQ on one layer: weights rows x cols (row o is output o), calib n x cols.
 * Tries the requested dampening, then ten and a hundred times more, before
 * giving up on a Hessian that is not positive definite.
 */
export function gptqReference(weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, p: GptqParams): GptqResult {
  const { h, dead } = hessian(calib, n, cols);
  const order = columnOrder(h, cols, p.actOrder);
  let u = null;
  let damp = p.damp;
  for (let attempt = 0; attempt < 3; attempt++, damp *= 10) {
    u = dampedFactor(h, cols, order, damp);
    if (u !== null) break;
  }
  if (u === null) throw new QkError('ERR_QK_VALUE', `gptq: the calibration Hessian is not positive definite even with dampening ${damp / 10} of its mean diagonal`);

  const type = storageType(p);
  const { blockSize, blockBytes } = TYPES[type];
  const group = paramBlock(p, cols);
  const rowBytes = (cols / blockSize) * blockBytes;
  const data = new Uint8Array(rows * rowBytes);

  // w: the weights being compensated, columns in processing order.
  const w = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      const c = order[q];
      w[r * cols + q] = dead[c] ? 0 : weights[r * cols + c];
    }
  }
  const pos = new Int32Array(cols); // original column -> processing position
  for (let q = 0; q < cols; q++) pos[order[q]] = q;

  // Per element: its grid (what the block parameters make of a level) and level.
  const ga = new Float64Array(rows * cols);
  const gb = new Float64Array(rows * cols);
  const gc = new Int16Array(rows * cols);
  const glo = new Int16Array(rows * cols);
  const ghi = new Int16Array(rows * cols);
  const level = new Int32Array(rows * cols);
  const fixed = new Uint8Array(cols / group);

  const grid = newGrid(blockSize);
  const levels = new Int32Array(blockSize);
  const vals = new Float32Array(group);
  const ip: Int4Params = { bits: 0, scale: 0, zero: 0 };

  const fixGroup = (gi: number) => {
    const c0 = gi * group;
    for (let r = 0; r < rows; r++) {
      for (let e = 0; e < group; e++) vals[e] = w[r * cols + pos[c0 + e]];
      // The asymmetric int4 grid is q8_0's narrowed to the levels q - zero for q in 0..15.
      let zero = -1;
      if (p.type === 'int4') {
        zero = int4Params(vals, 0, group, p.sym, ip).zero;
        writeInt4Scales(data, r * rowBytes + (c0 / 32) * blockBytes, group, p.sym, ip);
      } else jsKernels[type].quantizeRow(vals, 0, data, r * rowBytes + (c0 / blockSize) * blockBytes, group);
      for (let b = 0; b < group / blockSize; b++) {
        const o = r * rowBytes + (c0 / blockSize + b) * blockBytes;
        readGrid(type, data, o, grid);
        readLevels(type, data, o, levels);
        for (let e = 0; e < blockSize; e++) {
          if (!Number.isFinite(grid.a[e])) throw new QkError('ERR_QK_VALUE', `gptq: row ${r}'s block at column ${c0 + b * blockSize} has a scale beyond fp16's range`);
          const i = r * cols + c0 + b * blockSize + e;
          ga[i] = grid.a[e];
          gb[i] = grid.b[e];
          gc[i] = grid.c[e];
          glo[i] = type === 'q8_0' && zero >= 0 ? -zero : grid.lo[e];
          ghi[i] = type === 'q8_0' && zero >= 0 ? 15 - zero : grid.hi[e];
          level[i] = levels[e];
        }
      }
    }
    fixed[gi] = 1;
  };

  const one = newGrid(1);
  const B = Math.max(1, p.batch);
  const err = new Float64Array(rows * B);
  for (let i1 = 0; i1 < cols; i1 += B) {
    const i2 = Math.min(i1 + B, cols);
    for (let q = i1; q < i2; q++) {
      const c = order[q];
      const gi = Math.floor(c / group);
      if (!fixed[gi]) fixGroup(gi);
      const uqq = u[q * cols + q];
      for (let r = 0; r < rows; r++) {
        const i = r * cols + c;
        one.a[0] = ga[i];
        one.b[0] = gb[i];
        one.c[0] = gc[i];
        one.lo[0] = glo[i];
        one.hi[0] = ghi[i];
        const wv = w[r * cols + q];
        const lv = nearestLevel(one, 0, wv);
        level[i] = lv;
        const e = (wv - levelValue(one, 0, lv)) / uqq;
        err[r * B + (q - i1)] = e;
        const wr = r * cols;
        const uq = q * cols;
        for (let j = q + 1; j < i2; j++) w[wr + j] -= e * u[uq + j];
      }
    }
    // The batch's errors reach the remaining columns in one pass.
    for (let r = 0; r < rows; r++) {
      const wr = r * cols;
      for (let k = 0; k < i2 - i1; k++) {
        const e = err[r * B + k];
        if (e === 0) continue;
        const uk = (i1 + k) * cols;
        for (let j = i2; j < cols; j++) w[wr + j] -= e * u[uk + j];
      }
    }
  }

  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < cols / blockSize; b++) {
      for (let e = 0; e < blockSize; e++) levels[e] = level[r * cols + b * blockSize + e];
      writeLevels(type, data, r * rowBytes + b * blockBytes, levels);
    }
  }
  return { type, data, damp };
}

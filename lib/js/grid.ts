// The value grid of one quantized block, read from its bytes, and the writing
// of new integer levels into it. GPTQ and AWQ choose a block's scales first
// (with the type's own quantizer) and then pick each weight's level on that
// grid themselves; this is the one place that knows where every type keeps
// its scales and its levels (reference §3, §4).
//
// Element e of a block dequantizes to a[e] * (q - c[e]) - b[e] for an integer
// level q in [lo[e], hi[e]]; a and b are what the dequantizer multiplies and
// subtracts in float32 (for K-quants the products d*sc and dmin*m).

import type { WeightType } from '../types';
import { getF16, i8 } from './q32';
import { getScaleMinK4 } from './kquants';

export type BlockType = 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q4_k' | 'q5_k' | 'q6_k';
export const BLOCK_TYPES: readonly BlockType[] = Object.freeze(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k'] as BlockType[]);

export function isBlockType(t: WeightType): t is BlockType {
  return (BLOCK_TYPES as readonly string[]).includes(t);
}

export interface BlockGrid {
  readonly a: Float64Array;
  readonly b: Float64Array;
  readonly c: Int32Array;
  readonly lo: Int32Array;
  readonly hi: Int32Array;
}

export function newGrid(blockSize: number): BlockGrid {
  return { a: new Float64Array(blockSize), b: new Float64Array(blockSize), c: new Int32Array(blockSize), lo: new Int32Array(blockSize), hi: new Int32Array(blockSize) };
}

const fr = Math.fround;

function fill(g: BlockGrid, from: number, to: number, a: number, b: number, c: number, lo: number, hi: number): void {
  for (let e = from; e < to; e++) {
    g.a[e] = a;
    g.b[e] = b;
    g.c[e] = c;
    g.lo[e] = lo;
    g.hi[e] = hi;
  }
}

/** The grid of the block at data[o]. */
export function readGrid(type: BlockType, data: Uint8Array, o: number, g: BlockGrid): void {
  switch (type) {
    case 'q4_0':
      return fill(g, 0, 32, getF16(data, o), 0, 8, 0, 15);
    case 'q4_1':
      return fill(g, 0, 32, getF16(data, o), -getF16(data, o + 2), 0, 0, 15);
    case 'q5_0':
      return fill(g, 0, 32, getF16(data, o), 0, 16, 0, 31);
    case 'q5_1':
      return fill(g, 0, 32, getF16(data, o), -getF16(data, o + 2), 0, 0, 31);
    case 'q8_0':
      return fill(g, 0, 32, getF16(data, o), 0, 0, -128, 127);
    case 'q4_k':
    case 'q5_k': {
      const d = getF16(data, o);
      const dmin = getF16(data, o + 2);
      const top = type === 'q4_k' ? 15 : 31;
      for (let j = 0; j < 8; j++) {
        const sm = getScaleMinK4(j, data, o + 4);
        fill(g, 32 * j, 32 * j + 32, fr(d * (sm & 0xff)), fr(dmin * (sm >> 8)), 0, 0, top);
      }
      return;
    }
    case 'q6_k': {
      const d = getF16(data, o + 208);
      for (let j = 0; j < 16; j++) fill(g, 16 * j, 16 * j + 16, fr(d * i8(data[o + 192 + j])), 0, 32, 0, 63);
      return;
    }
  }
}

/** The integer levels of the block at data[o] (the inverse of writeLevels). */
export function readLevels(type: BlockType, data: Uint8Array, o: number, q: Int32Array): void {
  switch (type) {
    case 'q4_0':
    case 'q4_1': {
      const s = o + (type === 'q4_0' ? 2 : 4);
      for (let j = 0; j < 16; j++) {
        q[j] = data[s + j] & 15;
        q[j + 16] = data[s + j] >> 4;
      }
      return;
    }
    case 'q5_0':
    case 'q5_1': {
      const h = o + (type === 'q5_0' ? 2 : 4);
      const qh = data[h] | (data[h + 1] << 8) | (data[h + 2] << 16) | (data[h + 3] << 24);
      for (let j = 0; j < 16; j++) {
        q[j] = (data[h + 4 + j] & 15) | (((qh >>> j) & 1) << 4);
        q[j + 16] = (data[h + 4 + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      }
      return;
    }
    case 'q8_0':
      for (let j = 0; j < 32; j++) q[j] = i8(data[o + 2 + j]);
      return;
    case 'q4_k':
    case 'q5_k': {
      const qs = o + (type === 'q4_k' ? 16 : 48);
      for (let e = 0; e < 256; e++) {
        const j = e >> 5;
        let v = (data[qs + 32 * (j >> 1) + (e & 31)] >> (4 * (j & 1))) & 15;
        if (type === 'q5_k') v |= ((data[o + 16 + (e & 31)] >> j) & 1) << 4;
        q[e] = v;
      }
      return;
    }
    case 'q6_k':
      for (let e = 0; e < 256; e++) {
        const h = e >> 7;
        const g = (e >> 5) & 3;
        const l = e & 31;
        const lo = (data[o + 64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15;
        const hi = (data[o + 128 + 32 * h + l] >> (2 * g)) & 3;
        q[e] = lo | (hi << 4);
      }
      return;
  }
}

/** Replaces the levels of the block at data[o], leaving its scales as they are. Levels must lie in the grid's range. */
export function writeLevels(type: BlockType, data: Uint8Array, o: number, q: Int32Array): void {
  switch (type) {
    case 'q4_0':
    case 'q4_1': {
      const s = o + (type === 'q4_0' ? 2 : 4);
      for (let j = 0; j < 16; j++) data[s + j] = q[j] | (q[j + 16] << 4);
      return;
    }
    case 'q5_0':
    case 'q5_1': {
      const h = o + (type === 'q5_0' ? 2 : 4);
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        data[h + 4 + j] = (q[j] & 15) | ((q[j + 16] & 15) << 4);
        qh |= ((q[j] >> 4) << j) | ((q[j + 16] >> 4) << (j + 16));
      }
      data[h] = qh & 0xff;
      data[h + 1] = (qh >>> 8) & 0xff;
      data[h + 2] = (qh >>> 16) & 0xff;
      data[h + 3] = qh >>> 24;
      return;
    }
    case 'q8_0':
      for (let j = 0; j < 32; j++) data[o + 2 + j] = q[j] & 0xff;
      return;
    case 'q4_k':
    case 'q5_k': {
      const qs = o + (type === 'q4_k' ? 16 : 48);
      for (let c = 0; c < 4; c++) {
        for (let l = 0; l < 32; l++) data[qs + 32 * c + l] = (q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4);
      }
      if (type === 'q5_k') {
        for (let l = 0; l < 32; l++) {
          let h = 0;
          for (let j = 0; j < 8; j++) h |= (q[32 * j + l] >> 4) << j;
          data[o + 16 + l] = h;
        }
      }
      return;
    }
    case 'q6_k':
      for (let h = 0; h < 2; h++) {
        for (let l = 0; l < 32; l++) {
          const e = 128 * h + l;
          const q1 = q[e], q2 = q[e + 32], q3 = q[e + 64], q4 = q[e + 96];
          data[o + 64 * h + l] = (q1 & 15) | ((q3 & 15) << 4);
          data[o + 64 * h + 32 + l] = (q2 & 15) | ((q4 & 15) << 4);
          data[o + 128 + 32 * h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
      }
      return;
  }
}

/** The grid level nearest to w for element e (halves round up), clamped to the grid's range. */
export function nearestLevel(g: BlockGrid, e: number, w: number): number {
  const a = g.a[e];
  if (a === 0) return Math.min(Math.max(g.c[e], g.lo[e]), g.hi[e]);
  const q = Math.round((w + g.b[e]) / a + g.c[e]);
  return q < g.lo[e] ? g.lo[e] : q > g.hi[e] ? g.hi[e] : q;
}

/** What element e of the block holds at level q (float64; dequantize rounds the same products to float32). */
export function levelValue(g: BlockGrid, e: number, q: number): number {
  return g.a[e] * (q - g.c[e]) - g.b[e];
}

// The block grids that GPTQ and AWQ round onto (lib/js/grid.ts) against the
// type's own dequantizer: for every block type and input pattern, the grid read
// from a block's bytes with its levels gives the values dequantizeRow gives,
// the levels write back to the same bytes, and the nearest level to a
// dequantized value is the level it came from.

import { describe, expect, it } from 'vitest';
import { TYPES } from '../lib/types';
import { jsKernels } from '../lib/js/kernels';
import { BLOCK_TYPES, levelValue, nearestLevel, newGrid, readGrid, readLevels, writeLevels } from '../lib/js/grid';
import { PATTERNS, makeInput } from './helpers';

const COLS = 512;

describe('block grids', () => {
  for (const type of BLOCK_TYPES) {
    it(`${type}: grid and levels reproduce dequantize and the bytes`, () => {
      const { blockSize, blockBytes } = TYPES[type];
      const k = jsKernels[type];
      const g = newGrid(blockSize);
      const q = new Int32Array(blockSize);
      const back = new Int32Array(blockSize);
      let checked = 0;
      for (const [pi, pattern] of PATTERNS.entries()) {
        const src = makeInput(pattern, COLS, 100 + pi);
        const bytes = new Uint8Array((COLS / blockSize) * blockBytes);
        k.quantizeRow(src, 0, bytes, 0, COLS);
        const deq = new Float32Array(COLS);
        k.dequantizeRow(bytes, 0, deq, 0, COLS);
        for (let b = 0; b < COLS / blockSize; b++) {
          const o = b * blockBytes;
          readGrid(type, bytes, o, g);
          readLevels(type, bytes, o, q);
          for (let e = 0; e < blockSize; e++) {
            const want = deq[b * blockSize + e];
            expect(q[e]).toBeGreaterThanOrEqual(g.lo[e]);
            expect(q[e]).toBeLessThanOrEqual(g.hi[e]);
            const got = levelValue(g, e, q[e]);
            checked++;
            if (!Number.isFinite(want) || !Number.isFinite(g.a[e])) {
              // 'huge' inputs overflow the fp16 scale: the grid must say so too
              expect(Number.isFinite(got) && Number.isFinite(want)).toBe(false);
              continue;
            }
            // float64 products against float32 ones: a few ulps of the block's largest term
            const bound = 4 * 2 ** -24 * (Math.abs(g.a[e]) * Math.max(Math.abs(g.lo[e] - g.c[e]), Math.abs(g.hi[e] - g.c[e])) + Math.abs(g.b[e]));
            expect(Math.abs(got - want)).toBeLessThanOrEqual(bound);
            if (g.a[e] !== 0) expect(levelValue(g, e, nearestLevel(g, e, want))).toBeCloseTo(got, 12);
          }
          const copy = bytes.slice(o, o + blockBytes);
          const blank = copy.slice();
          // Zero the level bits by writing zero levels, then write the read levels back.
          writeLevels(type, blank, 0, new Int32Array(blockSize));
          readLevels(type, blank, 0, back);
          expect(Array.from(back)).toEqual(new Array(blockSize).fill(0));
          writeLevels(type, blank, 0, q);
          expect(Buffer.from(blank).equals(Buffer.from(copy))).toBe(true);
        }
      }
      expect(checked).toBe(PATTERNS.length * COLS);
    });
  }

  it('nearestLevel clamps to the range and maps a zero scale to the zero level', () => {
    const g = newGrid(32);
    readGrid('q4_0', new Uint8Array(18), 0, g);
    expect(g.a[0]).toBe(0);
    expect(nearestLevel(g, 0, 5)).toBe(8);
    const d = new Uint8Array(18);
    d[0] = 0x00;
    d[1] = 0x3c; // fp16 1.0
    readGrid('q4_0', d, 0, g);
    expect(nearestLevel(g, 3, 100)).toBe(15);
    expect(nearestLevel(g, 3, -100)).toBe(0);
    expect(nearestLevel(g, 3, 2.4)).toBe(10);
    expect(nearestLevel(g, 3, -2.6)).toBe(5);
  });
});

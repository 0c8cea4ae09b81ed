// The 'interleaved16' layout in TypeScript, written from the byte layout in
// native/src/interleave.h: for each block of a tile of 16 rows, the 16 fp16
// scales, and each 4-byte group of the payload for the 16 rows in turn.
import { TILE_ROWS, TYPES, type WeightType } from '../types';

const SCALE_BYTES = 2;

/** n bytes between rows[ri] and tile[ti], toward the tile or back. */
function move(rows: Uint8Array, ri: number, tile: Uint8Array, ti: number, n: number, toTile: boolean): void {
  for (let i = 0; i < n; i++) {
    if (toTile) tile[ti + i] = rows[ri + i];
    else rows[ri + i] = tile[ti + i];
  }
}

/**
 * Moves every piece of nrows ggml rows (at rows[rowsOff]) to its place in the
 * tile at tile[tileOff], or back (toTile false). Blocks go in pairs
 * [scales b | scales b+1 | payload b | payload b+1], an odd last block alone
 * as [scales | payload].
 */
function copyTile(type: WeightType, rows: Uint8Array, rowsOff: number, tile: Uint8Array, tileOff: number, nrows: number, cols: number, toTile: boolean): void {
  const t = TYPES[type];
  const bb = t.blockBytes;
  const nb = cols / t.blockSize;
  const rb = nb * bb;
  const groups = (bb - SCALE_BYTES) / 4;
  for (let b = 0; b < nb; b++) {
    const pair = b >> 1;
    const start = tileOff + pair * 2 * TILE_ROWS * bb;
    const ts = start + (b & 1) * TILE_ROWS * SCALE_BYTES;
    const tp = start + Math.min(2, nb - 2 * pair) * TILE_ROWS * SCALE_BYTES + (b & 1) * TILE_ROWS * (bb - SCALE_BYTES);
    for (let r = 0; r < nrows; r++) {
      const row = rowsOff + r * rb + b * bb;
      move(rows, row, tile, ts + SCALE_BYTES * r, SCALE_BYTES, toTile);
      for (let g = 0; g < groups; g++) move(rows, row + SCALE_BYTES + 4 * g, tile, tp + g * 4 * TILE_ROWS + 4 * r, 4, toTile);
    }
  }
}

/** nrows ggml rows starting at src[srcOff] -> one tile at dst[dstOff] (padding rows zeroed). */
export function interleaveTile(type: WeightType, src: Uint8Array, srcOff: number, nrows: number, cols: number, dst: Uint8Array, dstOff: number): void {
  const t = TYPES[type];
  dst.fill(0, dstOff, dstOff + TILE_ROWS * (cols / t.blockSize) * t.blockBytes);
  copyTile(type, src, srcOff, dst, dstOff, nrows, cols, true);
}

/** One tile at src[srcOff] -> its first nrows ggml rows at dst[dstOff]. */
export function deinterleaveTile(type: WeightType, src: Uint8Array, srcOff: number, nrows: number, cols: number, dst: Uint8Array, dstOff: number): void {
  copyTile(type, dst, dstOff, src, srcOff, nrows, cols, false);
}

/** A whole rows x cols matrix between the layouts; `toTiles` picks the direction. */
export function relayout(type: WeightType, src: Uint8Array, rows: number, cols: number, dst: Uint8Array, toTiles: boolean): void {
  const t = TYPES[type];
  const rb = (cols / t.blockSize) * t.blockBytes;
  for (let r0 = 0; r0 < rows; r0 += TILE_ROWS) {
    const n = Math.min(TILE_ROWS, rows - r0);
    if (toTiles) interleaveTile(type, src, r0 * rb, n, cols, dst, r0 * rb);
    else deinterleaveTile(type, src, r0 * rb, n, cols, dst, r0 * rb);
  }
}

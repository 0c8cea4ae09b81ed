// The 'interleaved16' layout in TypeScript, written from the byte layout in
// native/src/interleave.h: for each block of a tile of 16 rows, the 16 fp16
// scales, and each 4-byte group of the payload for the 16 rows in turn.
import { TILE_ROWS, TYPES, type WeightType } from '../types';

const SCALE_BYTES = 2;

/**
 * Offsets in a tile of block b's 16 scales and of its payload: blocks go in
 * pairs [scales b | scales b+1 | payload b | payload b+1], an odd last block
 * alone as [scales | payload].
 */
function placeScales(b: number, nb: number, bb: number): number {
  return (b >> 1) * 2 * TILE_ROWS * bb + (b & 1) * TILE_ROWS * SCALE_BYTES;
}

function placePayload(b: number, nb: number, bb: number): number {
  const pair = b >> 1;
  const count = Math.min(2, nb - 2 * pair);
  return pair * 2 * TILE_ROWS * bb + count * TILE_ROWS * SCALE_BYTES + (b & 1) * TILE_ROWS * (bb - SCALE_BYTES);
}

/** nrows ggml rows starting at src[srcOff] -> one tile at dst[dstOff] (padding rows zeroed). */
export function interleaveTile(type: WeightType, src: Uint8Array, srcOff: number, nrows: number, cols: number, dst: Uint8Array, dstOff: number): void {
  const t = TYPES[type];
  const bb = t.blockBytes;
  const nb = cols / t.blockSize;
  const rb = nb * bb;
  const groups = (bb - SCALE_BYTES) / 4;
  dst.fill(0, dstOff, dstOff + TILE_ROWS * rb);
  for (let b = 0; b < nb; b++) {
    const ts = dstOff + placeScales(b, nb, bb);
    const tp = dstOff + placePayload(b, nb, bb);
    for (let r = 0; r < nrows; r++) {
      const s = srcOff + r * rb + b * bb;
      dst[ts + SCALE_BYTES * r] = src[s];
      dst[ts + SCALE_BYTES * r + 1] = src[s + 1];
      for (let g = 0; g < groups; g++) {
        const d = tp + g * 4 * TILE_ROWS + 4 * r;
        const p = s + SCALE_BYTES + 4 * g;
        dst[d] = src[p];
        dst[d + 1] = src[p + 1];
        dst[d + 2] = src[p + 2];
        dst[d + 3] = src[p + 3];
      }
    }
  }
}

/** One tile at src[srcOff] -> its first nrows ggml rows at dst[dstOff]. */
export function deinterleaveTile(type: WeightType, src: Uint8Array, srcOff: number, nrows: number, cols: number, dst: Uint8Array, dstOff: number): void {
  const t = TYPES[type];
  const bb = t.blockBytes;
  const nb = cols / t.blockSize;
  const rb = nb * bb;
  const groups = (bb - SCALE_BYTES) / 4;
  for (let b = 0; b < nb; b++) {
    const ts = srcOff + placeScales(b, nb, bb);
    const tp = srcOff + placePayload(b, nb, bb);
    for (let r = 0; r < nrows; r++) {
      const d = dstOff + r * rb + b * bb;
      dst[d] = src[ts + SCALE_BYTES * r];
      dst[d + 1] = src[ts + SCALE_BYTES * r + 1];
      for (let g = 0; g < groups; g++) {
        const s = tp + g * 4 * TILE_ROWS + 4 * r;
        const p = d + SCALE_BYTES + 4 * g;
        dst[p] = src[s];
        dst[p + 1] = src[s + 1];
        dst[p + 2] = src[s + 2];
        dst[p + 3] = src[s + 3];
      }
    }
  }
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

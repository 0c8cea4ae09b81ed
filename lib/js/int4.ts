// The GPTQ checkpoint's 4-bit group grid as qkernels stores it (reference §10):
// a group of input columns shares one fp16 scale and, unless symmetric, one
// zero point. Symmetric groups are q4_0 blocks whose d is the scale (level 8
// is zero); asymmetric ones are q8_0 blocks holding q - zero. GPTQ's quantizer
// (find_params with 4 bits) picks the parameters; GPTQ and AWQ both use it.

import { f16BitsToF32, f32ToF16Bits } from './fp16';

export interface Int4Params {
  /** fp16 bits of the scale */
  bits: number;
  scale: number;
  /** the level that stands for zero: 8 when symmetric */
  zero: number;
}

export function int4Params(v: Float32Array, off: number, count: number, sym: boolean, out: Int4Params): Int4Params {
  let lo = 0;
  let hi = 0;
  for (let e = off; e < off + count; e++) {
    if (v[e] < lo) lo = v[e];
    if (v[e] > hi) hi = v[e];
  }
  if (sym) {
    hi = Math.max(-lo, hi);
    lo = -hi;
  }
  if (lo === 0 && hi === 0) {
    lo = -1;
    hi = 1;
  }
  out.bits = f32ToF16Bits((hi - lo) / 15);
  out.scale = f16BitsToF32(out.bits);
  // a range too small for an fp16 scale rounds to scale 0: every level is 0 then, and so is the zero point
  out.zero = sym ? 8 : out.scale > 0 ? Math.min(15, Math.max(0, Math.round(-lo / out.scale))) : 0;
  return out;
}

export function int4Level(w: number, p: Int4Params): number {
  if (p.scale === 0) return p.zero;
  const q = Math.round(w / p.scale) + p.zero;
  return q < 0 ? 0 : q > 15 ? 15 : q;
}

/** Writes the scale of the count/32 storage blocks at dst[o] (q4_0 when sym, else q8_0) and sets their levels to zero. */
export function writeInt4Scales(dst: Uint8Array, o: number, count: number, sym: boolean, p: Int4Params): void {
  const blockBytes = sym ? 18 : 34;
  for (let b = 0; b < count / 32; b++) {
    const bo = o + b * blockBytes;
    dst[bo] = p.bits & 0xff;
    dst[bo + 1] = p.bits >>> 8;
    dst.fill(sym ? 0x88 : 0, bo + 2, bo + blockBytes);
  }
}

/** Round-to-nearest of one row (k a multiple of group, group a multiple of 32) into storage blocks. */
export function quantizeInt4Row(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, group: number, sym: boolean): void {
  const p: Int4Params = { bits: 0, scale: 0, zero: 0 };
  const blockBytes = sym ? 18 : 34;
  for (let c0 = 0; c0 < k; c0 += group) {
    int4Params(src, srcOff + c0, group, sym, p);
    const go = dstOff + (c0 / 32) * blockBytes;
    writeInt4Scales(dst, go, group, sym, p);
    for (let e = 0; e < group; e++) {
      const q = int4Level(src[srcOff + c0 + e], p);
      const bo = go + (e >> 5) * blockBytes;
      const l = e & 31;
      if (sym) {
        const i = bo + 2 + (l & 15);
        dst[i] = l < 16 ? (dst[i] & 0xf0) | q : (dst[i] & 0x0f) | (q << 4);
      } else {
        dst[bo + 2 + l] = (q - p.zero) & 0xff;
      }
    }
  }
}

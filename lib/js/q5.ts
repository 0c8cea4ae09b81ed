// 32-element 5-bit block kernels: q5_0 (22 B) and q5_1 (24 B) weights
// (reference §3.3, §3.4, §5). Same conventions as q32.ts: every f32 operation is
// wrapped in Math.fround in the order the reference writes it.
//
// Layout: q5_0 = {fp16 d, u32 qh, u8 qs[16]}, q5_1 = {fp16 d, fp16 m, u32 qh, u8 qs[16]}.
// Element j (< 16) is the low nibble of qs[j], element j+16 the high nibble;
// bit i of the little-endian qh is the 5th bit (value 16) of element i.

import { castLevel, getF16, i8, putF16 } from './q32';
import { importanceWeights, makeQkx3Quants, makeQxQuants, rowSigma2, type MinOut } from './ksearch';

const QK = 32;
const fr = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

/** Level (0..31) of element e (0..31) of the block whose qh word starts at qhOff and qs at qsOff. */
function level5(b: Uint8Array, qhOff: number, qsOff: number, e: number): number {
  const q = e < 16 ? b[qsOff + e] & 15 : b[qsOff + e - 16] >> 4;
  return q | (((b[qhOff + (e >> 3)] >> (e & 7)) & 1) << 4);
}

/** Packs 32 levels (only their low 5 bits are kept, as the C stores do) into qh at o and qs at o + 4. */
function pack5(dst: Uint8Array, o: number, L: ArrayLike<number>): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const x0 = L[j] & 0xff;
    const x1 = L[j + 16] & 0xff;
    dst[o + 4 + j] = (x0 & 15) | ((x1 & 15) << 4);
    qh |= ((x0 >> 4) & 1) << j;
    qh |= ((x1 >> 4) & 1) << (j + 16);
  }
  dst[o] = qh & 0xff;
  dst[o + 1] = (qh >>> 8) & 0xff;
  dst[o + 2] = (qh >>> 16) & 0xff;
  dst[o + 3] = qh >>> 24;
}

const levels = new Int32Array(QK);

// ---------------------------------------------------------------- q5_0

export function quantizeRowQ5_0(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 22;
    let amax = 0;
    let m = 0;
    for (let i = 0; i < QK; i++) {
      const v = src[x0 + i];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        m = v;
      }
    }
    const d = fr(m / -16); // m = 0 gives -0.0 (0x8000) and every level 16 (qh = 0xFFFFFFFF)
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(dst, o, d);
    // C: (uint8_t)MIN(31, (int8_t)(x*id + 16.5f)).
    for (let i = 0; i < QK; i++) levels[i] = Math.min(31, i8(castLevel(fr(fr(src[x0 + i] * id) + 16.5))));
    pack5(dst, o + 2, levels);
  }
}

export function dequantizeRowQ5_0(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const o = srcOff + b * 22;
    const y = dstOff + b * QK;
    const d = getF16(src, o);
    for (let e = 0; e < QK; e++) dst[y + e] = (level5(src, o + 2, o + 6, e) - 16) * d;
  }
}

/** Exact integer core of one Q5_0 x Q8_0 block pair: sum (level - 16) * qy. */
export function sumQ5_0Q8_0(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number): number {
  let s = 0;
  for (let e = 0; e < QK; e++) s += (level5(w, wOff + 2, wOff + 6, e) - 16) * i8(a[aOff + 2 + e]);
  return s;
}

export function dotF32Q5_0(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 22;
    const xb = xOff + b * QK;
    const d = getF16(w, o);
    let s = 0;
    for (let e = 0; e < QK; e++) s = fr(s + fr(fr((level5(w, o + 2, o + 6, e) - 16) * d) * x[xb + e]));
    acc = fr(acc + s);
  }
  out[at] = acc;
}

export function dotQ8Q5_0(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 22;
    const ao = aOff + b * 34;
    const s = sumQ5_0Q8_0(w, o, a, ao);
    acc = fr(acc + fr(fr(getF16(w, o) * getF16(a, ao)) * s));
  }
  out[at] = acc;
}

// ---------------------------------------------------------------- q5_1

export function quantizeRowQ5_1(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 24;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let i = 0; i < QK; i++) {
      const v = src[x0 + i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(dst, o, d);
    putF16(dst, o + 2, min);
    // C: (uint8_t)(x + 0.5f), no clamp (cannot exceed 31 for finite id).
    for (let i = 0; i < QK; i++) levels[i] = castLevel(fr(fr(fr(src[x0 + i] - min) * id) + 0.5));
    pack5(dst, o + 4, levels);
  }
}

export function dequantizeRowQ5_1(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const o = srcOff + b * 24;
    const y = dstOff + b * QK;
    const d = getF16(src, o);
    const m = getF16(src, o + 2);
    for (let e = 0; e < QK; e++) dst[y + e] = fr(level5(src, o + 4, o + 8, e) * d) + m;
  }
}

/** Exact integer core of one Q5_1 x Q8_1 block pair: sum level * qy. */
export function sumQ5_1Q8_1(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number): number {
  let s = 0;
  for (let e = 0; e < QK; e++) s += level5(w, wOff + 4, wOff + 8, e) * i8(a[aOff + 4 + e]);
  return s;
}

export function dotF32Q5_1(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 24;
    const xb = xOff + b * QK;
    const d = getF16(w, o);
    const m = getF16(w, o + 2);
    let s = 0;
    for (let e = 0; e < QK; e++) s = fr(s + fr(fr(fr(level5(w, o + 4, o + 8, e) * d) + m) * x[xb + e]));
    acc = fr(acc + s);
  }
  out[at] = acc;
}

export function dotQ8Q5_1(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 24;
    const ao = aOff + b * 36;
    const s = sumQ5_1Q8_1(w, o, a, ao);
    acc = fr(acc + fr(fr(getF16(w, o) * getF16(a, ao)) * s));
    acc = fr(acc + fr(getF16(w, o + 2) * getF16(a, ao + 2)));
  }
  out[at] = acc;
}

// ---------------------------------------------------------------- importance-weighted

// quantize_row_q5_0_impl / quantize_row_q5_1_impl: k is exactly one row (sigma2 is
// a per-row statistic); importance[j] weighs column j.
const impW = new Float32Array(QK);
const impLs = new Int8Array(QK);
const impLu = new Uint8Array(QK);
const impLaux = new Uint8Array(QK);
const impMin: MinOut = { min: 0 };
const RMIN3 = fr(-0.9);
const RDELTA3 = fr(0.05);

export function quantizeRowQ5_0Importance(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, importance: Float32Array): void {
  const sigma2 = rowSigma2(src, srcOff, k);
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 22;
    importanceWeights(QK, src, x0, importance, b * QK, sigma2, impW);
    // An all-zero block gives d = +0 and levels 0 (the reference stores -0 and 16).
    const d = makeQxQuants(QK, 16, src, x0, impLs, 0, 1, impW, 0);
    putF16(dst, o, d);
    pack5(dst, o + 2, impLs);
  }
}

export function quantizeRowQ5_1Importance(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, importance: Float32Array): void {
  const sigma2 = rowSigma2(src, srcOff, k);
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 24;
    importanceWeights(QK, src, x0, importance, b * QK, sigma2, impW);
    const d = makeQkx3Quants(QK, 31, src, x0, impW, 0, impLu, 0, impLaux, RMIN3, RDELTA3, 36, false, impMin);
    putF16(dst, o, d);
    putF16(dst, o + 2, -impMin.min);
    pack5(dst, o + 4, impLu);
  }
}

// K-quant super-block kernels (QK_K = 256): q4_k (144 B), q5_k (176 B), q6_k (210 B)
// weights and the q8_k (292 B) activation quantizer (reference §4, §5).
// Every f32 operation is wrapped in Math.fround in the order llama.cpp writes it:
// these kernels are the bit-exact oracle for the native ones.
//
// Layouts:
//   q4_k: fp16 d @0, fp16 dmin @2, scales[12] @4 (§4.2), qs[128] @16
//   q5_k: fp16 d @0, fp16 dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
//   q6_k: ql[128] @0, qh[64] @128, int8 scales[16] @192, fp16 d @208
//   q8_k: f32 d @0, int8 qs[256] @4, int16 bsums[16] @260 (all little-endian)
//
// C truthiness differs from JS on NaN (`if (!d)` does not skip a NaN d in C), so
// those tests are written as `=== 0`.

import { getF16, i8, putF16 } from './q32';
import { GROUP_MAX_EPS, makeQkx2Quants, makeQkx3Quants, makeQpQuants, makeQxQuants, nearestInt, type MinOut } from './ksearch';

const QK_K = 256;
const fr = Math.fround;

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function readF32(b: Uint8Array, o: number): number {
  scratchU32[0] = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
  return scratchF32[0];
}

function writeF32(b: Uint8Array, o: number, v: number): void {
  scratchF32[0] = v;
  const u = scratchU32[0];
  b[o] = u & 0xff;
  b[o + 1] = (u >>> 8) & 0xff;
  b[o + 2] = (u >>> 16) & 0xff;
  b[o + 3] = u >>> 24;
}

// ---------------------------------------------------------------- 6-bit scale packing (§4.2)

/** get_scale_min_k4: scale of sub-block j in the low byte, min in the next byte. */
export function getScaleMinK4(j: number, q: Uint8Array, o: number): number {
  if (j < 4) return (q[o + j] & 63) | ((q[o + j + 4] & 63) << 8);
  const sc = (q[o + j + 4] & 0x0f) | ((q[o + j - 4] >> 6) << 4);
  const m = (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4);
  return sc | (m << 8);
}

/**
 * Packs eight scales and mins into the 12 bytes at dst[o]. Values are taken as
 * uint8 (as in C) and the C stores' truncation to 8 bits is kept, so an
 * out-of-range level (only reachable from degenerate searches) packs like ggml.
 */
export function packScalesK4(dst: Uint8Array, o: number, ls: ArrayLike<number>, lm: ArrayLike<number>): void {
  for (let j = 0; j < 8; j++) {
    const s = ls[j] & 0xff;
    const m = lm[j] & 0xff;
    if (j < 4) {
      dst[o + j] = s;
      dst[o + j + 4] = m;
    } else {
      dst[o + j + 4] = (s & 0xf) | ((m & 0xf) << 4);
      dst[o + j - 4] |= (s >> 4) << 6;
      dst[o + j] |= (m >> 4) << 6;
    }
  }
}

// ---------------------------------------------------------------- shared quantizer state

// Module-level scratch (quantizers are synchronous, so one set suffices).
const Lu = new Uint8Array(QK_K); // q4_k / q5_k levels
const Ls8 = new Int8Array(QK_K); // q6_k levels (int8_t in C)
const Laux = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(16);
const mins = new Float32Array(8);
const sw = new Float32Array(8);
const Ls = new Uint8Array(8);
const Lm = new Uint8Array(8);
const minOut: MinOut = { min: 0 };

const RMIN3 = fr(-0.9);
const RDELTA3 = fr(0.05);
const TENTH = fr(0.1);

/**
 * Sub-block search of quantize_row_q{4,5}_K_ref for the super-block at x0, then
 * the 6-bit scale/min levels, d and dmin (written at o, o+2, scales at o+4).
 * Leaves the search's levels in Lu.
 */
function scalesRefK(nmax: number, rmin: number, nstep: number, x: Float32Array, x0: number, dst: Uint8Array, o: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const xs = x0 + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xs + l] * x[xs + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[xs + l]));
    const s = makeQkx2Quants(32, nmax, x, xs, weights, 0, Lu, 32 * j, Laux, rmin, TENTH, nstep, false, minOut);
    scales[j] = s;
    mins[j] = minOut.min;
    if (s > maxScale) maxScale = s;
    if (minOut.min > maxMin) maxMin = minOut.min;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    // uint8_t ls = nearest_int(...); ls = MIN(63, ls): the byte truncation comes first.
    Ls[j] = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
    Lm[j] = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
  }
  packScalesK4(dst, o + 4, Ls, Lm);
  putF16(dst, o, fr(maxScale / 63));
  putF16(dst, o + 2, fr(maxMin / 63));
}

/**
 * Sub-block search of quantize_row_q{4,5}_K_impl (importance qw[qwOff..+256]),
 * make_qp_quants for the scale/min levels, d and dmin. Leaves levels in Lu.
 * clamp63: q5_K applies MIN(63, ·) to the make_qp_quants levels, q4_K does not.
 */
function scalesImpK(nmax: number, clamp63: boolean, x: Float32Array, x0: number, qw: Float32Array, qwOff: number, dst: Uint8Array, o: number): void {
  let sumX2 = 0;
  for (let l = 0; l < QK_K; l++) sumX2 = fr(sumX2 + fr(x[x0 + l] * x[x0 + l]));
  const sigma2 = fr(fr(2 * sumX2) / QK_K);
  for (let j = 0; j < 8; j++) {
    const xs = x0 + 32 * j;
    for (let l = 0; l < 32; l++) weights[l] = fr(qw[qwOff + 32 * j + l] * fr(Math.sqrt(fr(sigma2 + fr(x[xs + l] * x[xs + l])))));
    let sumw = 0;
    for (let l = 0; l < 32; l++) sumw = fr(sumw + weights[l]);
    sw[j] = sumw;
    scales[j] = makeQkx3Quants(32, nmax, x, xs, weights, 0, Lu, 32 * j, Laux, RMIN3, RDELTA3, 36, false, minOut);
    mins[j] = minOut.min;
  }
  const dBlock = makeQpQuants(8, 63, scales, 0, Ls, 0, sw, 0);
  const mBlock = makeQpQuants(8, 63, mins, 0, Lm, 0, sw, 0);
  if (clamp63) {
    for (let j = 0; j < 8; j++) {
      Ls[j] = Math.min(63, Ls[j]);
      Lm[j] = Math.min(63, Lm[j]);
    }
  }
  packScalesK4(dst, o + 4, Ls, Lm);
  putF16(dst, o, dBlock);
  putF16(dst, o + 2, mBlock);
}

/** Final level pass of Q4_K/Q5_K: levels from the stored (rounded) d, dmin and 6-bit values. */
function finalLevelsK(nmax: number, x: Float32Array, x0: number, dst: Uint8Array, o: number): void {
  const d = getF16(dst, o);
  const dmin = getF16(dst, o + 2);
  for (let j = 0; j < 8; j++) {
    const sm = getScaleMinK4(j, dst, o + 4);
    const D = fr(d * (sm & 0xff));
    if (D === 0) continue; // the search's levels stay
    const dm = fr(dmin * (sm >> 8));
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[x0 + 32 * j + ii] + dm) / D));
      Lu[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
}

function packQ4K(dst: Uint8Array, o: number): void {
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) dst[o + 16 + 32 * c + l] = Lu[64 * c + l] | (Lu[64 * c + 32 + l] << 4);
  }
}

function packQ5K(dst: Uint8Array, o: number): void {
  const qh = o + 16;
  const ql = o + 48;
  for (let j = 0; j < 32; j++) dst[qh + j] = 0;
  for (let c = 0; c < 4; c++) {
    const m1 = 1 << (2 * c);
    const m2 = 2 << (2 * c);
    for (let j = 0; j < 32; j++) {
      let l1 = Lu[64 * c + j];
      if (l1 > 15) {
        l1 -= 16;
        dst[qh + j] |= m1;
      }
      let l2 = Lu[64 * c + 32 + j];
      if (l2 > 15) {
        l2 -= 16;
        dst[qh + j] |= m2;
      }
      dst[ql + 32 * c + j] = l1 | (l2 << 4);
    }
  }
}

// ---------------------------------------------------------------- q4_k

export function quantizeRowQ4_K(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK_K; b++) {
    const x0 = srcOff + b * QK_K;
    const o = dstOff + b * 144;
    scalesRefK(15, -1, 20, src, x0, dst, o);
    finalLevelsK(15, src, x0, dst, o);
    packQ4K(dst, o);
  }
}

export function quantizeRowQ4_KImportance(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, importance: Float32Array): void {
  for (let b = 0; b < k / QK_K; b++) {
    const x0 = srcOff + b * QK_K;
    const o = dstOff + b * 144;
    scalesImpK(15, false, src, x0, importance, b * QK_K, dst, o);
    finalLevelsK(15, src, x0, dst, o);
    packQ4K(dst, o);
  }
}

export function dequantizeRowQ4_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK_K; b++) {
    const o = srcOff + b * 144;
    const y = dstOff + b * QK_K;
    const d = getF16(src, o);
    const dmin = getF16(src, o + 2);
    for (let j = 0; j < 8; j++) {
      const sm = getScaleMinK4(j, src, o + 4);
      const D = fr(d * (sm & 0xff));
      const M = fr(dmin * (sm >> 8));
      const q = o + 16 + 32 * (j >> 1);
      const sh = (j & 1) * 4;
      for (let l = 0; l < 32; l++) dst[y + 32 * j + l] = fr(D * ((src[q + l] >> sh) & 15)) - M;
    }
  }
}

export function dotF32Q4_K(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK_K; b++) {
    const o = wOff + b * 144;
    const xb = xOff + b * QK_K;
    const d = getF16(w, o);
    const dmin = getF16(w, o + 2);
    for (let j = 0; j < 8; j++) {
      const sm = getScaleMinK4(j, w, o + 4);
      const D = fr(d * (sm & 0xff));
      const M = fr(dmin * (sm >> 8));
      const q = o + 16 + 32 * (j >> 1);
      const sh = (j & 1) * 4;
      const xj = xb + 32 * j;
      let s = 0;
      for (let l = 0; l < 32; l++) s = fr(s + fr(fr(fr(D * ((w[q + l] >> sh) & 15)) - M) * x[xj + l]));
      acc = fr(acc + s);
    }
  }
  out[at] = acc;
}

/** Exact integer cores of one Q4_K x Q8_K super-block pair; B is left in coreB. */
let coreB = 0;

function coreQ4K(w: Uint8Array, o: number, a: Uint8Array, ao: number): number {
  let A = 0;
  let B = 0;
  for (let j = 0; j < 8; j++) {
    const sm = getScaleMinK4(j, w, o + 4);
    const q = o + 16 + 32 * (j >> 1);
    const sh = (j & 1) * 4;
    const qy = ao + 4 + 32 * j;
    let dot = 0;
    for (let l = 0; l < 32; l++) dot += ((w[q + l] >> sh) & 15) * i8(a[qy + l]);
    A += (sm & 0xff) * dot;
    B += (sm >> 8) * (bsum(a, ao, 2 * j) + bsum(a, ao, 2 * j + 1));
  }
  coreB = B;
  return A;
}

function bsum(a: Uint8Array, ao: number, g: number): number {
  const p = ao + 260 + 2 * g;
  return ((a[p] | (a[p + 1] << 8)) << 16) >> 16;
}

export function dotQ8Q4_K(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK_K; b++) {
    const o = wOff + b * 144;
    const ao = aOff + b * 292;
    const A = coreQ4K(w, o, a, ao);
    const dy = readF32(a, ao);
    acc = fr(acc + fr(fr(getF16(w, o) * dy) * A));
    acc = fr(acc - fr(fr(getF16(w, o + 2) * dy) * coreB));
  }
  out[at] = acc;
}

// ---------------------------------------------------------------- q5_k

export function quantizeRowQ5_K(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK_K; b++) {
    const x0 = srcOff + b * QK_K;
    const o = dstOff + b * 176;
    scalesRefK(31, fr(-0.5), 15, src, x0, dst, o);
    finalLevelsK(31, src, x0, dst, o);
    packQ5K(dst, o);
  }
}

export function quantizeRowQ5_KImportance(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, importance: Float32Array): void {
  for (let b = 0; b < k / QK_K; b++) {
    const x0 = srcOff + b * QK_K;
    const o = dstOff + b * 176;
    scalesImpK(31, true, src, x0, importance, b * QK_K, dst, o);
    finalLevelsK(31, src, x0, dst, o);
    packQ5K(dst, o);
  }
}

export function dequantizeRowQ5_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK_K; b++) {
    const o = srcOff + b * 176;
    const y = dstOff + b * QK_K;
    const d = getF16(src, o);
    const dmin = getF16(src, o + 2);
    for (let j = 0; j < 8; j++) {
      const sm = getScaleMinK4(j, src, o + 4);
      const D = fr(d * (sm & 0xff));
      const M = fr(dmin * (sm >> 8));
      const q = o + 48 + 32 * (j >> 1);
      const sh = (j & 1) * 4;
      for (let l = 0; l < 32; l++) {
        const u = ((src[q + l] >> sh) & 15) | (((src[o + 16 + l] >> j) & 1) << 4);
        dst[y + 32 * j + l] = fr(D * u) - M;
      }
    }
  }
}

export function dotF32Q5_K(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK_K; b++) {
    const o = wOff + b * 176;
    const xb = xOff + b * QK_K;
    const d = getF16(w, o);
    const dmin = getF16(w, o + 2);
    for (let j = 0; j < 8; j++) {
      const sm = getScaleMinK4(j, w, o + 4);
      const D = fr(d * (sm & 0xff));
      const M = fr(dmin * (sm >> 8));
      const q = o + 48 + 32 * (j >> 1);
      const sh = (j & 1) * 4;
      const xj = xb + 32 * j;
      let s = 0;
      for (let l = 0; l < 32; l++) {
        const u = ((w[q + l] >> sh) & 15) | (((w[o + 16 + l] >> j) & 1) << 4);
        s = fr(s + fr(fr(fr(D * u) - M) * x[xj + l]));
      }
      acc = fr(acc + s);
    }
  }
  out[at] = acc;
}

function coreQ5K(w: Uint8Array, o: number, a: Uint8Array, ao: number): number {
  let A = 0;
  let B = 0;
  for (let j = 0; j < 8; j++) {
    const sm = getScaleMinK4(j, w, o + 4);
    const q = o + 48 + 32 * (j >> 1);
    const sh = (j & 1) * 4;
    const qy = ao + 4 + 32 * j;
    let dot = 0;
    for (let l = 0; l < 32; l++) dot += (((w[q + l] >> sh) & 15) | (((w[o + 16 + l] >> j) & 1) << 4)) * i8(a[qy + l]);
    A += (sm & 0xff) * dot;
    B += (sm >> 8) * (bsum(a, ao, 2 * j) + bsum(a, ao, 2 * j + 1));
  }
  coreB = B;
  return A;
}

export function dotQ8Q5_K(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK_K; b++) {
    const o = wOff + b * 176;
    const ao = aOff + b * 292;
    const A = coreQ5K(w, o, a, ao);
    const dy = readF32(a, ao);
    acc = fr(acc + fr(fr(getF16(w, o) * dy) * A));
    acc = fr(acc - fr(fr(getF16(w, o + 2) * dy) * coreB));
  }
  out[at] = acc;
}

// ---------------------------------------------------------------- q6_k

/** Level u (0..63) of element e (0..255) of the Q6_K block at o. */
function levelQ6K(w: Uint8Array, o: number, e: number): number {
  const h = e >> 7;
  const g = (e >> 5) & 3;
  const l = e & 31;
  const lo = (w[o + 64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15;
  const hi = (w[o + 128 + 32 * h + l] >> (2 * g)) & 3;
  return lo | (hi << 4);
}

function quantizeQ6K(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, qw: Float32Array | null): void {
  for (let b = 0; b < k / QK_K; b++) {
    const x0 = srcOff + b * QK_K;
    const o = dstOff + b * 210;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      // Importance path: the 16 importance values are the weights directly (no sigma2 term).
      const s = makeQxQuants(16, 32, src, x0 + 16 * ib, Ls8, 16 * ib, 1, qw, b * QK_K + 16 * ib);
      scales[ib] = s;
      const as = Math.abs(s);
      if (as > maxAbsScale) {
        maxAbsScale = as;
        maxScale = s;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      dst.fill(0, o, o + 210);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    putF16(dst, o + 208, fr(1 / iscale));
    // int8_t = MIN(127, nearest_int(...)): the store wraps anything below -128.
    for (let ib = 0; ib < 16; ib++) dst[o + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib])));
    const d = getF16(dst, o + 208);
    for (let j = 0; j < 16; j++) {
      const D = fr(d * i8(dst[o + 192 + j]));
      if (D === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(src[x0 + 16 * j + ii] / D));
        Ls8[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    for (let h = 0; h < 2; h++) {
      const L0 = 128 * h;
      for (let l = 0; l < 32; l++) {
        const a = Ls8[L0 + l];
        const bq = Ls8[L0 + l + 32];
        const c = Ls8[L0 + l + 64];
        const e = Ls8[L0 + l + 96];
        dst[o + 64 * h + l] = (a & 15) | ((c & 15) << 4);
        dst[o + 64 * h + 32 + l] = (bq & 15) | ((e & 15) << 4);
        dst[o + 128 + 32 * h + l] = (a >> 4) | ((bq >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
  }
}

export function quantizeRowQ6_K(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  quantizeQ6K(src, srcOff, dst, dstOff, k, null);
}

export function quantizeRowQ6_KImportance(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, importance: Float32Array): void {
  quantizeQ6K(src, srcOff, dst, dstOff, k, importance);
}

export function dequantizeRowQ6_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK_K; b++) {
    const o = srcOff + b * 210;
    const y = dstOff + b * QK_K;
    const d = getF16(src, o + 208);
    for (let j = 0; j < 16; j++) {
      const D = fr(d * i8(src[o + 192 + j]));
      for (let i = 0; i < 16; i++) {
        const e = 16 * j + i;
        dst[y + e] = D * (levelQ6K(src, o, e) - 32);
      }
    }
  }
}

export function dotF32Q6_K(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK_K; b++) {
    const o = wOff + b * 210;
    const xb = xOff + b * QK_K;
    const d = getF16(w, o + 208);
    for (let c = 0; c < 8; c++) {
      let s = 0;
      for (let half = 0; half < 2; half++) {
        const j = 2 * c + half;
        const D = fr(d * i8(w[o + 192 + j]));
        for (let i = 0; i < 16; i++) {
          const e = 16 * j + i;
          s = fr(s + fr(fr(D * (levelQ6K(w, o, e) - 32)) * x[xb + e]));
        }
      }
      acc = fr(acc + s);
    }
  }
  out[at] = acc;
}

function coreQ6K(w: Uint8Array, o: number, a: Uint8Array, ao: number): number {
  let A = 0;
  for (let j = 0; j < 16; j++) {
    let dot = 0;
    for (let i = 0; i < 16; i++) {
      const e = 16 * j + i;
      dot += (levelQ6K(w, o, e) - 32) * i8(a[ao + 4 + e]);
    }
    A += i8(w[o + 192 + j]) * dot;
  }
  return A;
}

export function dotQ8Q6_K(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK_K; b++) {
    const o = wOff + b * 210;
    const ao = aOff + b * 292;
    const A = coreQ6K(w, o, a, ao);
    acc = fr(acc + fr(fr(getF16(w, o + 208) * readF32(a, ao)) * A));
  }
  out[at] = acc;
}

/** Exact integer cores (A, and B for q4_k/q5_k; B = 0 for q6_k) of the weight super-block at wOff and the q8_k block at aOff (for tests). */
export function kCores(type: 'q4_k' | 'q5_k' | 'q6_k', w: Uint8Array, wOff: number, a: Uint8Array, aOff: number): { A: number; B: number } {
  if (type === 'q6_k') return { A: coreQ6K(w, wOff, a, aOff), B: 0 };
  const A = type === 'q4_k' ? coreQ4K(w, wOff, a, aOff) : coreQ5K(w, wOff, a, aOff);
  return { A, B: coreB };
}

// ---------------------------------------------------------------- q8_k activations

/**
 * quantize_row_q8_K_ref (every llama.cpp backend uses it unchanged): iscale =
 * -127/m with m the signed first strict max |x|, qs = MIN(127, nearest_int(iscale*x))
 * as int8, bsums = sums of 16, d = 1/iscale (f32). An all-zero block stores d = 0,
 * qs = 0 and (unlike ggml, which leaves them unwritten) bsums = 0.
 * Project guard, shared with the C++ kernels: when iscale or 1/iscale is not
 * finite (|m| below ~3.7e-37, e.g. subnormal blocks) the block is stored as an
 * all-zero block too, the same rule as the q8_0/q8_1 activation quantizers.
 */
export function quantizeActivationQ8_K(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK_K; b++) {
    const x0 = srcOff + b * QK_K;
    const o = dstOff + b * 292;
    let max = 0;
    let amax = 0;
    for (let j = 0; j < QK_K; j++) {
      const ax = Math.abs(src[x0 + j]);
      if (ax > amax) {
        amax = ax;
        max = src[x0 + j];
      }
    }
    const iscale = amax !== 0 ? fr(-127 / max) : 0;
    const d = amax !== 0 ? fr(1 / iscale) : 0;
    if (amax === 0 || !Number.isFinite(iscale) || !Number.isFinite(d)) {
      dst.fill(0, o, o + 292);
      continue;
    }
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let ii = 0; ii < 16; ii++) {
        const j = 16 * g + ii;
        const q = i8(Math.min(127, nearestInt(fr(iscale * src[x0 + j]))));
        dst[o + 4 + j] = q & 0xff;
        sum += q;
      }
      dst[o + 260 + 2 * g] = sum & 0xff;
      dst[o + 261 + 2 * g] = (sum >> 8) & 0xff;
    }
    writeF32(dst, o, d);
  }
}

// 32-element block kernels: q4_0 (18 B), q4_1 (20 B), q8_0 (34 B) weights, the
// q8_0 (34 B) / q8_1 (36 B) activation quantizers (reference §3.1, §3.2, §3.5, §3.6, §5),
// and the importance-weighted q4_0 / q4_1 quantizers (searches in ksearch.ts).
// Every f32 operation is wrapped in Math.fround in the order the reference writes it:
// these kernels are the bit-exact oracle for the native ones.

import { f16BitsToF32, f32ToF16Bits } from './fp16';
import { importanceWeights, makeQkx3Quants, makeQxQuants, rowSigma2, type MinOut } from './ksearch';

const QK = 32;
const fr = Math.fround;

/** Stores a block scale; a NaN scale (only from overflowing finite input) is stored as 0x7E00 on every platform, as in C++. */
export function putF16(b: Uint8Array, o: number, v: number): void {
  const h = v !== v ? 0x7e00 : f32ToF16Bits(v);
  b[o] = h & 0xff;
  b[o + 1] = h >>> 8;
}

export function getF16(b: Uint8Array, o: number): number {
  return f16BitsToF32(b[o] | (b[o + 1] << 8));
}

export function i8(v: number): number {
  return (v << 24) >> 24;
}

/** C roundf: halves away from zero. */
export function roundf(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/**
 * C's float-to-integer cast as llama.cpp's x86 build executes it: NaN or a
 * value outside int32 becomes INT_MIN, whose low byte (the stored level) is 0.
 * Reached only when a subnormal scale makes 1/d infinite; the golden files
 * record level 0 there.
 */
export function castLevel(v: number): number {
  return Math.abs(v) < 2147483648 ? Math.trunc(v) : 0;
}

/** Round half to even (_mm256_round_ps nearest / vcvtnq): Math.round breaks ties upward. */
export function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

// ---------------------------------------------------------------- q4_0

export function quantizeRowQ4_0(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 18;
    let amax = 0;
    let m = 0;
    for (let i = 0; i < QK; i++) {
      const v = src[x0 + i];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        m = v;
      }
    }
    const d = fr(m / -8); // m = 0 gives -0.0, stored as 0x8000 like ggml
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(dst, o, d);
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, castLevel(fr(fr(src[x0 + j] * id) + 8.5)));
      const hi = Math.min(15, castLevel(fr(fr(src[x0 + j + 16] * id) + 8.5)));
      dst[o + 2 + j] = lo | (hi << 4);
    }
  }
}

export function dequantizeRowQ4_0(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const o = srcOff + b * 18;
    const y = dstOff + b * QK;
    const d = getF16(src, o);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      dst[y + j] = ((q & 15) - 8) * d;
      dst[y + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/** Exact integer core of one Q4_0 x Q8_0 block pair: sum (q - 8) * qy. */
export function sumQ4_0Q8_0(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number): number {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const q = w[wOff + 2 + j];
    s += ((q & 15) - 8) * i8(a[aOff + 2 + j]) + ((q >> 4) - 8) * i8(a[aOff + 18 + j]);
  }
  return s;
}

export function dotF32Q4_0(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 18;
    const xb = xOff + b * QK;
    const d = getF16(w, o);
    let s = 0;
    for (let j = 0; j < 16; j++) s = fr(s + fr(fr(((w[o + 2 + j] & 15) - 8) * d) * x[xb + j]));
    for (let j = 0; j < 16; j++) s = fr(s + fr(fr(((w[o + 2 + j] >> 4) - 8) * d) * x[xb + 16 + j]));
    acc = fr(acc + s);
  }
  out[at] = acc;
}

export function dotQ8Q4_0(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 18;
    const ao = aOff + b * 34;
    const s = sumQ4_0Q8_0(w, o, a, ao);
    acc = fr(acc + fr(fr(getF16(w, o) * getF16(a, ao)) * s));
  }
  out[at] = acc;
}

// ---------------------------------------------------------------- q4_1

export function quantizeRowQ4_1(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  const FLT_MAX = 3.4028234663852886e38;
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 20;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let i = 0; i < QK; i++) {
      const v = src[x0 + i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 15);
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(dst, o, d);
    putF16(dst, o + 2, min);
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, castLevel(fr(fr(fr(src[x0 + j] - min) * id) + 0.5)));
      const hi = Math.min(15, castLevel(fr(fr(fr(src[x0 + j + 16] - min) * id) + 0.5)));
      dst[o + 4 + j] = lo | (hi << 4);
    }
  }
}

export function dequantizeRowQ4_1(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const o = srcOff + b * 20;
    const y = dstOff + b * QK;
    const d = getF16(src, o);
    const m = getF16(src, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 4 + j];
      dst[y + j] = fr((q & 15) * d) + m;
      dst[y + j + 16] = fr((q >> 4) * d) + m;
    }
  }
}

/** Exact integer core of one Q4_1 x Q8_1 block pair: sum q * qy. */
export function sumQ4_1Q8_1(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number): number {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const q = w[wOff + 4 + j];
    s += (q & 15) * i8(a[aOff + 4 + j]) + (q >> 4) * i8(a[aOff + 20 + j]);
  }
  return s;
}

export function dotF32Q4_1(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 20;
    const xb = xOff + b * QK;
    const d = getF16(w, o);
    const m = getF16(w, o + 2);
    let s = 0;
    for (let j = 0; j < 16; j++) s = fr(s + fr(fr(fr((w[o + 4 + j] & 15) * d) + m) * x[xb + j]));
    for (let j = 0; j < 16; j++) s = fr(s + fr(fr(fr((w[o + 4 + j] >> 4) * d) + m) * x[xb + 16 + j]));
    acc = fr(acc + s);
  }
  out[at] = acc;
}

export function dotQ8Q4_1(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 20;
    const ao = aOff + b * 36;
    const s = sumQ4_1Q8_1(w, o, a, ao);
    acc = fr(acc + fr(fr(getF16(w, o) * getF16(a, ao)) * s));
    acc = fr(acc + fr(getF16(w, o + 2) * getF16(a, ao + 2)));
  }
  out[at] = acc;
}

// ---------------------------------------------------------------- q8_0 weights

export function quantizeRowQ8_0(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 34;
    let amax = 0;
    for (let i = 0; i < QK; i++) {
      const v = Math.abs(src[x0 + i]);
      amax = amax > v ? amax : v;
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(dst, o, d);
    for (let i = 0; i < QK; i++) dst[o + 2 + i] = castLevel(roundf(fr(src[x0 + i] * id))) & 0xff;
  }
}

export function dequantizeRowQ8_0(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, k: number): void {
  for (let b = 0; b < k / QK; b++) {
    const o = srcOff + b * 34;
    const y = dstOff + b * QK;
    const d = getF16(src, o);
    for (let i = 0; i < QK; i++) dst[y + i] = i8(src[o + 2 + i]) * d;
  }
}

/** Exact integer core of one Q8_0 x Q8_0 block pair: sum qx * qy. */
export function sumQ8_0Q8_0(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number): number {
  let s = 0;
  for (let i = 0; i < QK; i++) s += i8(w[wOff + 2 + i]) * i8(a[aOff + 2 + i]);
  return s;
}

export function dotF32Q8_0(w: Uint8Array, wOff: number, x: Float32Array, xOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 34;
    const xb = xOff + b * QK;
    const d = getF16(w, o);
    let s = 0;
    for (let i = 0; i < QK; i++) s = fr(s + fr(fr(i8(w[o + 2 + i]) * d) * x[xb + i]));
    acc = fr(acc + s);
  }
  out[at] = acc;
}

export function dotQ8Q8_0(w: Uint8Array, wOff: number, a: Uint8Array, aOff: number, k: number, out: Float32Array, at: number): void {
  let acc = 0;
  for (let b = 0; b < k / QK; b++) {
    const o = wOff + b * 34;
    const ao = aOff + b * 34;
    const s = sumQ8_0Q8_0(w, o, a, ao);
    acc = fr(acc + fr(fr(getF16(w, o) * getF16(a, ao)) * s));
  }
  out[at] = acc;
}

// ---------------------------------------------------------------- activations

/**
 * x86 AVX variant of the activation quantizer (§5.2): id = 127/amax (not 1/d) and
 * ties to even. withSum selects q8_1 (d @0, s @2, qs @4) over q8_0 (d @0, qs @2).
 */
function quantizeActivationBlocks(withSum: boolean, src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  const bytes = withSum ? 36 : 34;
  const qOff = withSum ? 4 : 2;
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * bytes;
    let amax = 0;
    for (let i = 0; i < QK; i++) {
      const v = Math.abs(src[x0 + i]);
      if (v > amax) amax = v;
    }
    const d = fr(amax / 127);
    // 127/amax overflows for an all-zero block and for amax < ~3.7e-37; the
    // fp16 scale is 0 there anyway, so levels are 0 (same rule in C++).
    let id = fr(127 / amax);
    if (!(id < Infinity)) id = 0;
    putF16(dst, o, d);
    let sum = 0;
    for (let i = 0; i < QK; i++) {
      const q = rint(fr(src[x0 + i] * id));
      sum += q;
      dst[o + qOff + i] = q & 0xff;
    }
    // s uses the unrounded f32 d, not the stored fp16 one.
    if (withSum) putF16(dst, o + 2, fr(sum * d));
  }
}

export function quantizeActivationQ8_0(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  quantizeActivationBlocks(false, src, srcOff, dst, dstOff, k);
}

export function quantizeActivationQ8_1(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number): void {
  quantizeActivationBlocks(true, src, srcOff, dst, dstOff, k);
}

// ---------------------------------------------------------------- importance-weighted q4_0 / q4_1

// quantize_row_q4_0_impl / quantize_row_q4_1_impl (reference §3.1, §3.2), used by
// llama.cpp when an importance vector is given. k is exactly one row: sigma2 is a
// per-row statistic. importance[j] weighs column j (k entries, shared by all rows).
const impW = new Float32Array(QK);
const impLs = new Int8Array(QK);
const impLu = new Uint8Array(QK);
const impLaux = new Uint8Array(QK);
const impMin: MinOut = { min: 0 };
const RMIN3 = fr(-0.9);
const RDELTA3 = fr(0.05);

export function quantizeRowQ4_0Importance(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, importance: Float32Array): void {
  const sigma2 = rowSigma2(src, srcOff, k);
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 18;
    importanceWeights(QK, src, x0, importance, b * QK, sigma2, impW);
    // An all-zero block gives d = +0 and levels 0 here (the reference stores -0 and 8).
    const d = makeQxQuants(QK, 8, src, x0, impLs, 0, 1, impW, 0);
    putF16(dst, o, d);
    for (let j = 0; j < 16; j++) dst[o + 2 + j] = (impLs[j] | (impLs[j + 16] << 4)) & 0xff;
  }
}

export function quantizeRowQ4_1Importance(src: Float32Array, srcOff: number, dst: Uint8Array, dstOff: number, k: number, importance: Float32Array): void {
  const sigma2 = rowSigma2(src, srcOff, k);
  for (let b = 0; b < k / QK; b++) {
    const x0 = srcOff + b * QK;
    const o = dstOff + b * 20;
    importanceWeights(QK, src, x0, importance, b * QK, sigma2, impW);
    const d = makeQkx3Quants(QK, 15, src, x0, impW, 0, impLu, 0, impLaux, RMIN3, RDELTA3, 36, false, impMin);
    putF16(dst, o, d);
    putF16(dst, o + 2, -impMin.min);
    for (let j = 0; j < 16; j++) dst[o + 4 + j] = impLu[j] | (impLu[j + 16] << 4);
  }
}

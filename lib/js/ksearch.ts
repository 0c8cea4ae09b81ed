// Scale/level searches shared by the K-quant and importance-weighted quantizers
// (reference §4.1): nearest_int, make_qx_quants, make_qkx2_quants,
// make_qkx3_quants, make_qp_quants.
//
// Every f32 operation is wrapped in Math.fround in the order llama.cpp writes it
// (`a*b*c` is `(a*b)*c`, `s += a*b` is `s = s + (a*b)`, nothing fused). Level
// arrays are typed exactly like the C ones (int8_t or uint8_t), because a few
// degenerate paths store values outside the nominal range and rely on the
// truncation of the store.
//
// C truthiness differs from JS on NaN (`if (!d)` is false for NaN in C, true in
// JS), so every such test is written as an explicit comparison with 0.

const fr = Math.fround;

/** GROUP_MAX_EPS = 1e-15f */
export const GROUP_MAX_EPS = fr(1e-15);

const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);

/**
 * nearest_int(fval): val = f32(fval + 12582912); reinterpret val as int32 i;
 * return (i & 0x7FFFFF) - 0x400000. Ties go to even (the f32 add rounds).
 * For |fval| < 2^22 this is the rounded integer; beyond, the C code returns
 * garbage derived from the mantissa bits of val, which is emulated exactly here
 * (+-inf give -4194304; every NaN that x86 arithmetic produces has mantissa
 * 0x400000, so NaN gives 0 — stated explicitly rather than relying on how the
 * JS engine canonicalizes NaN bits).
 */
export function nearestInt(fval: number): number {
  const val = fr(fval + 12582912);
  // Fast path: val in [2^23, 2^24) is an integer whose mantissa bits are val - 2^23.
  if (val >= 8388608 && val < 16777216) return val - 12582912;
  if (val !== val) return 0;
  scratchF32[0] = val;
  return (scratchI32[0] & 0x007fffff) - 0x00400000;
}

/** Level buffers: int8_t (make_qx_quants) or uint8_t (the others). */
type Levels = Int8Array | Uint8Array;

/**
 * make_qx_quants(n, nmax, x, L, rmse_type, qw): symmetric levels L[i] in
 * [0, 2*nmax-1] (signed value L - nmax). Returns the scale (sign opposite to
 * the largest-|x| element). qw === null selects the rmse_type weights.
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  xOff: number,
  L: Levels,
  lOff: number,
  rmseType: number,
  qw: Float32Array | null,
  qwOff: number,
): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xOff + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xOff + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lOff + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  if (rmseType === 0) {
    for (let i = 0; i < n; i++) {
      const l = nearestInt(fr(iscale * x[xOff + i]));
      L[lOff + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
    }
    return fr(1 / iscale);
  }
  let returnEarly = false;
  if (rmseType < 0) {
    rmseType = -rmseType;
    returnEarly = true;
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xOff + i];
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lOff + i] = l + nmax;
    const w = qxWeight(qw, qwOff + i, xi, rmseType);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  if (returnEarly) return suml2 > 0 ? fr(fr(0.5) * fr(scale + fr(1 / iscale))) : fr(1 / iscale);
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(TENTH * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xOff + i];
      let l = nearestInt(fr(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = qxWeight(qw, qwOff + i, xi, rmseType);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[xOff + i]));
        L[lOff + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** 0.1f */
const TENTH = fr(0.1);

function qxWeight(qw: Float32Array | null, i: number, xi: number, rmseType: number): number {
  if (qw) return qw[i];
  switch (rmseType) {
    case 1:
      return fr(xi * xi);
    case 2:
      return 1;
    case 3:
      return Math.abs(xi);
    default:
      return fr(Math.sqrt(Math.abs(xi)));
  }
}

/** Second result of make_qkx2_quants / make_qkx3_quants (the C `*the_min`). */
export interface MinOut {
  min: number;
}

/**
 * make_qkx2_quants (weights given) and make_qkx3_quants (w === null: weights
 * x*x; degenerate test `max <= min`). Asymmetric levels L in [0, nmax], value
 * scale*L - theMin; returns scale and writes theMin (= -min >= 0) to out.min.
 * Laux is a caller-provided n-byte scratch.
 */
function makeQkxQuants(
  v3: boolean,
  n: number,
  nmax: number,
  x: Float32Array,
  xOff: number,
  w: Float32Array | null,
  wOff: number,
  L: Uint8Array,
  lOff: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
  out: MinOut,
): number {
  let min = x[xOff];
  let max = x[xOff];
  let sumW = w ? w[wOff] : fr(x[xOff] * x[xOff]);
  let sumX = fr(sumW * x[xOff]);
  for (let i = 1; i < n; i++) {
    const xi = x[xOff + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const wi = w ? w[wOff + i] : fr(xi * xi);
    sumW = fr(sumW + wi);
    sumX = fr(sumX + fr(wi * xi));
  }
  if (min > 0) min = 0;
  if (v3 ? max <= min : max === min) {
    for (let i = 0; i < n; i++) L[lOff + i] = 0;
    out.min = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xOff + i];
    const l = nearestInt(fr(iscale * fr(xi - min)));
    const li = Math.max(0, Math.min(nmax, l));
    L[lOff + i] = li;
    let diff = fr(fr(fr(scale * li) + min) - xi);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr((w ? w[wOff + i] : fr(xi * xi)) * diff));
  }
  if (nstep < 1) {
    out.min = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // min moves to the best this_min found so far: both the range and the offset
    // of the later steps use the updated value (as the C code does).
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xOff + i];
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      Laux[i] = l;
      const wi = w ? w[wOff + i] : fr(xi * xi);
      const wl = fr(wi * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        const xi = x[xOff + i];
        let diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - xi);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        cur = fr(cur + fr((w ? w[wOff + i] : fr(xi * xi)) * diff));
      }
      if (cur < bestError) {
        for (let i = 0; i < n; i++) L[lOff + i] = Laux[i];
        bestError = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  out.min = -min;
  return scale;
}

export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xOff: number,
  w: Float32Array,
  wOff: number,
  L: Uint8Array,
  lOff: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
  out: MinOut,
): number {
  return makeQkxQuants(false, n, nmax, x, xOff, w, wOff, L, lOff, Laux, rmin, rdelta, nstep, useMad, out);
}

export function makeQkx3Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xOff: number,
  w: Float32Array | null,
  wOff: number,
  L: Uint8Array,
  lOff: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
  out: MinOut,
): number {
  return makeQkxQuants(true, n, nmax, x, xOff, w, wOff, L, lOff, Laux, rmin, rdelta, nstep, useMad, out);
}

/**
 * make_qp_quants(n, nmax, x >= 0, L, qw): unsigned levels for the sub-block
 * scales/mins of the importance K-quants. L is uint8_t as in C: a negative
 * level (only for negative x, i.e. a degenerate search result) is stored
 * wrapped (l & 0xFF) and the wrapped value is what later steps read back.
 */
export function makeQpQuants(n: number, nmax: number, x: Float32Array, xOff: number, L: Uint8Array, lOff: number, qw: Float32Array, qwOff: number): number {
  let max = 0;
  // MAX(a, b) = a > b ? a : b: a NaN x[i] replaces max.
  for (let i = 0; i < n; i++) max = max > x[xOff + i] ? max : x[xOff + i];
  if (max < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lOff + i] = 0;
    return 0;
  }
  let iscale = fr(nmax / max);
  for (let i = 0; i < n; i++) L[lOff + i] = nearestInt(fr(iscale * x[xOff + i]));
  const scale = fr(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = fr(x[xOff + i] - fr(scale * L[lOff + i]));
    bestMse = fr(bestMse + fr(fr(qw[qwOff + i] * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = fr(fr(fr(TENTH * is) + nmax) / max);
    const scaleIs = fr(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(fr(iscaleIs * x[xOff + i])));
      const diff = fr(x[xOff + i] - fr(scaleIs * l));
      mse = fr(mse + fr(fr(qw[qwOff + i] * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xOff + i];
    const w = qw[qwOff + i];
    const l = Math.min(nmax, nearestInt(fr(iscale * xi)));
    L[lOff + i] = l;
    // The sums use the int l, not the (possibly wrapped) stored byte.
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let nChanged = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xOff + i];
      const w = qw[qwOff + i];
      const li = L[lOff + i];
      let slx = fr(sumlx - fr(fr(w * xi) * li));
      let sl2 = fr(suml2 - fr(fr(w * li) * li));
      if (slx > 0 && sl2 > 0) {
        const newL = Math.min(nmax, nearestInt(fr(fr(xi * sl2) / slx)));
        if (newL !== li) {
          slx = fr(slx + fr(fr(w * xi) * newL));
          sl2 = fr(sl2 + fr(fr(w * newL) * newL));
          if (fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lOff + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            nChanged++;
          }
        }
      }
    }
    if (nChanged === 0) break;
  }
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

// ---------------------------------------------------------------- importance weights

/** sigma2 of the 32-block importance quantizers: f32(S / k), S the sequential f32 sum of x*x over the row. */
export function rowSigma2(x: Float32Array, xOff: number, k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s = fr(s + fr(x[xOff + i] * x[xOff + i]));
  return fr(s / k);
}

/** w[j] = qw[j] * sqrtf(sigma2 + x[j]*x[j]) for j < n. */
export function importanceWeights(n: number, x: Float32Array, xOff: number, qw: Float32Array, qwOff: number, sigma2: number, w: Float32Array): void {
  for (let j = 0; j < n; j++) {
    const xj = x[xOff + j];
    w[j] = fr(qw[qwOff + j] * fr(Math.sqrt(fr(sigma2 + fr(xj * xj)))));
  }
}

// The GPTQ and AWQ tests' data and oracles: the LLM-like activations of
// bench/calib-data.ts (shared with bench/gptq.ts), the layer-output error, and
// round-to-nearest written from its formula as the baseline.

import { TYPES } from '../lib/types';
import { jsKernels } from '../lib/js/kernels';
import { f16BitsToF32, f32ToF16Bits } from '../lib/js/fp16';
export { activationSource, gaussianWeights, type Source } from '../bench/calib-data';

/** ||X W^T - X V^T||_F / ||X W^T||_F, in float64. */
export function relativeOutputError(x: Float32Array, n: number, cols: number, w: Float32Array, v: Float32Array, rows: number): number {
  let num = 0;
  let den = 0;
  const d = new Float64Array(cols);
  for (let o = 0; o < rows; o++) {
    for (let j = 0; j < cols; j++) d[j] = w[o * cols + j] - v[o * cols + j];
    for (let t = 0; t < n; t++) {
      let y = 0;
      let e = 0;
      for (let j = 0; j < cols; j++) {
        const xv = x[t * cols + j];
        y += xv * w[o * cols + j];
        e += xv * d[j];
      }
      num += e * e;
      den += y * y;
    }
  }
  return Math.sqrt(num / den);
}

/** Round-to-nearest of a ggml type, dequantized. */
export function rtn(type: keyof typeof TYPES, w: Float32Array, rows: number, cols: number): Float32Array {
  const k = jsKernels[type];
  const rb = (cols / TYPES[type].blockSize) * TYPES[type].blockBytes;
  const bytes = new Uint8Array(rows * rb);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    k.quantizeRow(w, r * cols, bytes, r * rb, cols);
    k.dequantizeRow(bytes, r * rb, out, r * cols, cols);
  }
  return out;
}

/** Round-to-nearest with GPTQ's 4-bit group parameters (find_params; fp16 scale), dequantized. */
export function rtnInt4(w: Float32Array, rows: number, cols: number, group: number, sym: boolean): Float32Array {
  const out = new Float32Array(rows * cols);
  const g = group === -1 ? cols : group;
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += g) {
      let lo = 0;
      let hi = 0;
      for (let e = 0; e < g; e++) {
        lo = Math.min(lo, w[r * cols + c0 + e]);
        hi = Math.max(hi, w[r * cols + c0 + e]);
      }
      if (sym) {
        hi = Math.max(hi, -lo);
        lo = -hi;
      }
      if (lo === 0 && hi === 0) {
        lo = -1;
        hi = 1;
      }
      const scale = f16BitsToF32(f32ToF16Bits((hi - lo) / 15));
      const zero = sym ? 8 : Math.min(15, Math.max(0, Math.round(-lo / scale)));
      for (let e = 0; e < g; e++) {
        const q = Math.min(15, Math.max(0, Math.round(w[r * cols + c0 + e] / scale) + zero));
        out[r * cols + c0 + e] = Math.fround(scale * (q - zero));
      }
    }
  }
  return out;
}

// Float64 dense linear algebra for the calibrated quantizers: the Gram matrix of
// the calibration inputs and the Cholesky factors GPTQ needs. Plain loops in an
// order that walks rows contiguously; these are the reference the native code
// is checked against, not the fast path.

/** G = X^T X (k x k, both triangles) for X of n rows of k floats. */
export function gram(x: Float32Array, n: number, k: number): Float64Array {
  const g = new Float64Array(k * k);
  const row = new Float64Array(k);
  for (let s = 0; s < n; s++) {
    for (let j = 0; j < k; j++) row[j] = x[s * k + j];
    for (let i = 0; i < k; i++) {
      const xi = row[i];
      if (xi === 0) continue;
      const o = i * k;
      for (let j = i; j < k; j++) g[o + j] += xi * row[j];
    }
  }
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) g[j * k + i] = g[i * k + j];
  return g;
}

/** In place: the lower Cholesky factor L of a (a = L L^T), upper triangle zeroed. False if a is not positive definite. */
export function choleskyLower(a: Float64Array, k: number): boolean {
  for (let j = 0; j < k; j++) {
    const oj = j * k;
    let d = a[oj + j];
    for (let p = 0; p < j; p++) d -= a[oj + p] * a[oj + p];
    if (!(d > 0)) return false;
    const ljj = Math.sqrt(d);
    a[oj + j] = ljj;
    for (let i = j + 1; i < k; i++) {
      const oi = i * k;
      let s = a[oi + j];
      for (let p = 0; p < j; p++) s -= a[oi + p] * a[oj + p];
      a[oi + j] = s / ljj;
    }
  }
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) a[i * k + j] = 0;
  return true;
}

/** In place: the inverse of a lower-triangular matrix. */
export function invertLower(l: Float64Array, k: number): void {
  // Column by column of the inverse, bottom-up is not needed: row i of L^-1
  // depends only on rows < i, so forward order overwrites nothing still read.
  for (let i = 0; i < k; i++) {
    const oi = i * k;
    const inv = 1 / l[oi + i];
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let p = j; p < i; p++) s += l[oi + p] * l[p * k + j];
      l[oi + j] = -s * inv;
    }
    l[oi + i] = inv;
  }
}

/**
 * The upper factor U of H^-1 = U^T U, which GPTQ's column loop reads, computed
 * without forming H^-1: Cholesky of H with rows and columns reversed gives
 * H = V V^T with V upper triangular, so H^-1 = V^-T V^-1 and U = V^-1.
 * H is consumed. Null if H is not positive definite.
 */
export function inverseCholeskyUpper(h: Float64Array, k: number): Float64Array | null {
  const r = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) r[i * k + j] = h[(k - 1 - i) * k + (k - 1 - j)];
  if (!choleskyLower(r, k)) return null;
  invertLower(r, k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) h[i * k + j] = r[(k - 1 - i) * k + (k - 1 - j)];
  return h;
}

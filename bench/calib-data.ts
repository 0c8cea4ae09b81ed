// Synthetic LLM-like layer inputs, for the GPTQ and AWQ tests and bench/gptq.ts:
// what makes real activations hard for round-to-nearest, in a form a run can
// regenerate. Channels have a heavy-tailed scale spread (log-normal, plus about
// 1% outlier channels at 20-100x the median scale) and are correlated through a
// low-rank component, as the hidden states of transformer layers are. A Source
// draws any number of rows from one fixed distribution, so held-out rows come
// from the same layer as the calibration rows without being them.

/** xorshift32, mapped to [0, 1) (the tests' generator, test/helpers.ts) */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

export interface Source {
  readonly cols: number;
  readonly scales: Float64Array;
  rows(n: number, seed: number): Float32Array;
}

export function activationSource(cols: number, seed: number, rank = 8): Source {
  const r = rng(seed);
  const scales = new Float64Array(cols);
  for (let j = 0; j < cols; j++) scales[j] = Math.exp(0.6 * gaussian(r));
  const outliers = Math.max(2, Math.round(cols / 100));
  for (let k = 0; k < outliers; k++) scales[Math.floor(r() * cols)] = 20 + 80 * r();
  const basis = new Float64Array(rank * cols);
  for (let i = 0; i < basis.length; i++) basis[i] = gaussian(r) / Math.sqrt(rank);
  return {
    cols,
    scales,
    rows(n: number, rowSeed: number): Float32Array {
      const q = rng(rowSeed);
      const x = new Float32Array(n * cols);
      const f = new Float64Array(rank);
      for (let t = 0; t < n; t++) {
        for (let l = 0; l < rank; l++) f[l] = gaussian(q);
        for (let j = 0; j < cols; j++) {
          let v = 0.4 * gaussian(q);
          for (let l = 0; l < rank; l++) v += f[l] * basis[l * cols + j];
          x[t * cols + j] = scales[j] * v;
        }
      }
      return x;
    },
  };
}

export function gaussianWeights(rows: number, cols: number, seed: number, sigma = 0.02): Float32Array {
  const r = rng(seed);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = sigma * gaussian(r);
  return w;
}

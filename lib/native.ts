// Loads the N-API addon (a prebuild when one matches, else the local build).
import * as fs from 'fs';
import * as path from 'path';
import type { Backend, BackendInfo, CalibParams, LayoutCode, NativeLlama, PrecisionCode } from './backend';
import { QkError } from './errors';
import { TYPES, type WeightType } from './types';

interface Addon {
  quantize(type: number, src: Float32Array, rows: number, cols: number, dst: Uint8Array, importance: Float32Array | null): void;
  dequantize(type: number, data: Uint8Array, rows: number, cols: number, out: Float32Array): void;
  matmul(type: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, m: number, out: Float32Array, precision: number, layout: number): void;
  matmulAsync(type: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, m: number, out: Float32Array, precision: number, layout: number): Promise<Float32Array>;
  interleave(type: number, src: Uint8Array, rows: number, cols: number, dst: Uint8Array): void;
  deinterleave(type: number, src: Uint8Array, rows: number, cols: number, dst: Uint8Array): void;
  quantizeActivations(type: number, x: Float32Array, m: number, k: number, dst: Uint8Array): void;
  misalignment(data: Uint8Array): number;
  adviseHugePages(data: Uint8Array): number;
  info(): BackendInfo & { bestIsa: string; defaultThreads: number };
  setIsa(isa: string): void;
  setThreads(n: number): void;
  setErrorClass(cls: new (code: string, message: string) => Error): void;
  memoryBandwidth(source: number | Uint8Array, reps: number): number;
  llamaCreate: NativeLlama['create'];
  kvCreate: NativeLlama['createCache'];
  llamaDecode: NativeLlama['decode'];
  llamaDecodeAsync: NativeLlama['decodeAsync'];
  // type: a ggml block type id, or -1 for 'int4'. times (optional): seconds of
  // the Hessian, the factorization and the column loop, written on success.
  gptq(type: number, groupSize: number, sym: boolean, actOrder: boolean, damp: number, batch: number, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array, times?: Float64Array): number;
  gptqAsync(type: number, groupSize: number, sym: boolean, actOrder: boolean, damp: number, batch: number, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array, times?: Float64Array): Promise<number>;
  awq(type: number, groupSize: number, sym: boolean, grid: number, tokens: number, clip: boolean, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array, scales: Float32Array, inputScales: Float32Array | null): number;
  awqAsync(type: number, groupSize: number, sym: boolean, grid: number, tokens: number, clip: boolean, weights: Float32Array, rows: number, cols: number, calib: Float32Array, n: number, dst: Uint8Array, scales: Float32Array, inputScales: Float32Array | null): Promise<number>;
}

/** The addon's integer for a calibrated grid: the ggml type id, or -1 for 'int4'. */
export function calibTypeId(t: CalibParams['type']): number {
  return t === 'int4' ? -1 : TYPES[t].ggmlId;
}

/** The package root: the nearest folder above this file whose package.json is ours. */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'qkernels') return dir;
      } catch {
        /* keep looking */
      }
    }
    dir = path.dirname(dir);
  }
  return path.join(__dirname, '..', '..');
}

/**
 * The addon module, untyped: the file QKERNELS_ADDON names when it is set (an
 * absolute path, or relative to the working directory: e.g. the sanitizer build
 * that scripts/test-sanitize.sh makes in build-asan/), else node-gyp-build's
 * pick for this package (prebuilds/, build/Release/).
 */
export function requireAddon(): unknown {
  const file = process.env.QKERNELS_ADDON;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  if (file) return require(path.resolve(file));
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('node-gyp-build') as (dir: string) => unknown)(packageRoot());
}

/** The addon itself (for benchmarks and tests that call it directly), with QkError as its error class. */
export function loadAddon(): Addon {
  const addon = requireAddon() as Addon;
  addon.setErrorClass(QkError as unknown as new (code: string, message: string) => Error);
  return addon;
}

export type { Addon as NativeAddon };

export function loadNative(): Backend {
  const addon = loadAddon();
  const id = (t: WeightType) => TYPES[t].ggmlId;
  return {
    name: 'native',
    quantize: (t, src, rows, cols, dst, importance) => addon.quantize(id(t), src, rows, cols, dst, importance),
    dequantize: (t, data, rows, cols, out) => addon.dequantize(id(t), data, rows, cols, out),
    matmul: (t, w, rows, cols, x, m, out, p: PrecisionCode, l: LayoutCode) => addon.matmul(id(t), w, rows, cols, x, m, out, p, l),
    matmulAsync: (t, w, rows, cols, x, m, out, p: PrecisionCode, l: LayoutCode) => addon.matmulAsync(id(t), w, rows, cols, x, m, out, p, l),
    relayout: (t, src, rows, cols, dst, toTiles) => (toTiles ? addon.interleave : addon.deinterleave)(id(t), src, rows, cols, dst),
    quantizeActivations: (t, x, m, k, dst) => addon.quantizeActivations(id(t), x, m, k, dst),
    misalignment: (data) => addon.misalignment(data),
    adviseHugePages: (data) => addon.adviseHugePages(data),
    info: () => {
      const i = addon.info();
      return { isa: i.isa, isas: i.isas, threads: i.threads };
    },
    setIsa: (isa) => addon.setIsa(isa),
    setThreads: (n) => addon.setThreads(n),
    memoryBandwidth: (source, reps) => addon.memoryBandwidth(source, reps),
    gptq: (p, weights, rows, cols, calib, n, dst) => addon.gptq(calibTypeId(p.type), p.groupSize, p.sym, p.actOrder, p.damp, p.batch, weights, rows, cols, calib, n, dst),
    gptqAsync: (p, weights, rows, cols, calib, n, dst) => addon.gptqAsync(calibTypeId(p.type), p.groupSize, p.sym, p.actOrder, p.damp, p.batch, weights, rows, cols, calib, n, dst),
    awq: (p, weights, rows, cols, calib, n, dst, scales) => addon.awq(calibTypeId(p.type), p.groupSize, p.sym, p.grid, p.tokens, p.clip, weights, rows, cols, calib, n, dst, scales, p.scales),
    awqAsync: (p, weights, rows, cols, calib, n, dst, scales) => addon.awqAsync(calibTypeId(p.type), p.groupSize, p.sym, p.grid, p.tokens, p.clip, weights, rows, cols, calib, n, dst, scales, p.scales),
    llama: {
      create: addon.llamaCreate,
      createCache: addon.kvCreate,
      decode: addon.llamaDecode,
      decodeAsync: addon.llamaDecodeAsync,
    },
  };
}

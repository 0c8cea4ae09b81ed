// Loads the N-API addon (a prebuild when one matches, else the local build).
import * as fs from 'fs';
import * as path from 'path';
import type { Backend, BackendInfo, LayoutCode, NativeLlama, PrecisionCode } from './backend';
import { QkError } from './errors';
import { jsBackend } from './js/backend';
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

export function loadNative(): Backend {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const load = require('node-gyp-build') as (dir: string) => Addon;
  const addon = load(packageRoot());
  addon.setErrorClass(QkError as unknown as new (code: string, message: string) => Error);
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
    // Until the native GPTQ/AWQ land, the reference runs here too.
    gptq: jsBackend.gptq,
    gptqAsync: jsBackend.gptqAsync,
    awq: jsBackend.awq,
    awqAsync: jsBackend.awqAsync,
    llama: {
      create: addon.llamaCreate,
      createCache: addon.kvCreate,
      decode: addon.llamaDecode,
      decodeAsync: addon.llamaDecodeAsync,
    },
  };
}

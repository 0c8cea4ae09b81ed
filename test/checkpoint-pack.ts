// The tests' own GPTQ/AWQ packer and safetensors writer, written from the
// format reference (shared/reference/quant-formats.md §8 safetensors, §9.3-9.4
// GPTQ packing and zeros, §10.2 AWQ GEMM packing), never from a checkpoint
// reader: checkpoint.test.ts checks it against the reference's TV-11/TV-12
// words before it trusts it.
import * as fs from 'fs';
import * as path from 'path';
import { safetensorsBytes, type StTensor } from './fixtures/safetensors';

export interface PackTensor {
  dtype: 'I32' | 'F16' | 'F32' | 'BF16';
  shape: number[];
  bytes: Uint8Array;
}

/** A safetensors file of these tensors, in this order (the fixture writer, §8). */
export function writeSafetensors(file: string, tensors: Record<string, PackTensor>, metadata?: Record<string, string>): void {
  const st: Record<string, StTensor> = {};
  for (const [name, t] of Object.entries(tensors)) st[name] = { dtype: t.dtype, shape: t.shape, data: t.bytes };
  fs.writeFileSync(file, safetensorsBytes(st, metadata));
}

/** Levels q[k][n] (K x N, 0..15), zeros z[g][n] (0..15), scales as fp16 bits [g][n]. */
export interface Levels {
  k: number;
  n: number;
  groups: number;
  q: Uint8Array;
  z: Uint8Array;
  scaleBits: Uint16Array;
}

function i32(words: Uint32Array): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
}

/** §9.3: qweight [K/8, N] along K; qzeros [G, N/8] along N; v1 stores zero - 1 (masked to 4 bits). */
export function packGptq(l: Levels, format: 'v1' | 'v2'): { qweight: PackTensor; qzeros: PackTensor; scales: PackTensor } {
  const qw = new Uint32Array((l.k / 8) * l.n);
  for (let k = 0; k < l.k; k++) for (let n = 0; n < l.n; n++) qw[(k >> 3) * l.n + n] |= l.q[k * l.n + n] << (4 * (k & 7));
  const qz = new Uint32Array(l.groups * (l.n / 8));
  for (let g = 0; g < l.groups; g++) {
    for (let n = 0; n < l.n; n++) {
      const zs = format === 'v1' ? (l.z[g * l.n + n] - 1) & 15 : l.z[g * l.n + n];
      qz[g * (l.n / 8) + (n >> 3)] |= zs << (4 * (n & 7));
    }
  }
  return {
    qweight: { dtype: 'I32', shape: [l.k / 8, l.n], bytes: i32(qw) },
    qzeros: { dtype: 'I32', shape: [l.groups, l.n / 8], bytes: i32(qz) },
    scales: { dtype: 'F16', shape: [l.groups, l.n], bytes: new Uint8Array(l.scaleBits.slice().buffer) },
  };
}

const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];

/** §10.2: qweight [K, N/8] and qzeros [G, N/8] along N, nibble i holding output 8c + ORDER[i]; zeros as they are. */
export function packAwq(l: Levels): { qweight: PackTensor; qzeros: PackTensor; scales: PackTensor } {
  const n8 = l.n / 8;
  const qw = new Uint32Array(l.k * n8);
  for (let k = 0; k < l.k; k++) for (let c = 0; c < n8; c++) for (let i = 0; i < 8; i++) qw[k * n8 + c] |= l.q[k * l.n + 8 * c + AWQ_ORDER[i]] << (4 * i);
  const qz = new Uint32Array(l.groups * n8);
  for (let g = 0; g < l.groups; g++) for (let c = 0; c < n8; c++) for (let i = 0; i < 8; i++) qz[g * n8 + c] |= l.z[g * l.n + 8 * c + AWQ_ORDER[i]] << (4 * i);
  return {
    qweight: { dtype: 'I32', shape: [l.k, n8], bytes: i32(qw) },
    qzeros: { dtype: 'I32', shape: [l.groups, n8], bytes: i32(qz) },
    scales: { dtype: 'F16', shape: [l.groups, l.n], bytes: new Uint8Array(l.scaleBits.slice().buffer) },
  };
}

export function int32Tensor(values: ArrayLike<number>, shape: number[]): PackTensor {
  return { dtype: 'I32', shape, bytes: new Uint8Array(Int32Array.from(values).buffer) };
}

/** A checkpoint folder: config.json with quantization_config, and one model.safetensors. */
export function writeCheckpoint(dir: string, quantizationConfig: Record<string, unknown>, tensors: Record<string, PackTensor>): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], quantization_config: quantizationConfig }));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}

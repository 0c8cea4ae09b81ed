// GPTQ and AWQ 4-bit checkpoints (safetensors files and their config). Each
// quantized Linear comes out as a QuantizedMatrix in a ggml block type that
// holds the checkpoint's weights exactly, so matmul, matmulAsync and
// dequantize take it as they take any other matrix:
// - symmetric groups (zero 8 everywhere, the usual GPTQ checkpoint) are q4_0
//   blocks: q4_0 is d * (nibble - 8), with d the group's fp16 scale as stored;
// - asymmetric groups (AWQ, GPTQ sym=false) are q8_0 blocks of q - z, exact
//   too; a 4-bit type with a zero per block that is exact would need its own
//   kernel (q4_1 keeps -scale * zero in fp16, which rounds).
// Blocks are 32 columns, so groups must come in multiples of 32 columns.
// Act-order (g_idx not monotone) is undone once, here: the columns are sorted
// by group and the matrix records the permutation (inputOrder), which matmul
// applies to x.
import * as fs from 'fs';
import * as path from 'path';
import { QkError } from './errors';
import { openSafetensors, type SafetensorsFile, type SafetensorsTensor } from './safetensors';
import type { QuantizedMatrix, WeightType } from './types';

export interface QuantizationConfig {
  readonly method: 'gptq' | 'awq';
  readonly bits: number;
  /** input features per group; -1: one group per row */
  readonly groupSize: number;
  readonly descAct: boolean;
  readonly sym: boolean;
  /** GPTQ zeros as stored: 'gptq' (v1, zero - 1) or 'gptq_v2'; AWQ: 'awq_gemm' */
  readonly checkpointFormat: 'gptq' | 'gptq_v2' | 'awq_gemm';
  /** which file the config came from */
  readonly source: string;
}

export interface CheckpointTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

export interface Checkpoint {
  readonly path: string;
  readonly config: QuantizationConfig;
  /** the quantized linear layers, by the prefix of their tensors ('model.layers.0.self_attn.q_proj') */
  readonly layers: readonly string[];
  /** every tensor of the files, quantized layers' parts included */
  readonly tensorNames: readonly string[];
  /** A quantized layer by prefix, or a plain 2-D f16/bf16/f32 tensor by name. */
  matrix(name: string): QuantizedMatrix;
  tensor(name: string): CheckpointTensor;
  close(): void;
}

export interface OpenCheckpointOptions {
  /** map the files (default) or read what is asked for */
  mmap?: boolean;
}

const CONFIG_FILES = ['quantize_config.json', 'quant_config.json', 'config.json'];

function fail(code: 'ERR_QK_VALUE' | 'ERR_QK_TYPE' | 'ERR_QK_SHAPE' | 'ERR_QK_ARG', msg: string): never {
  throw new QkError(code, msg);
}

function readJson(file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail('ERR_QK_VALUE', `${file}: not readable JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('ERR_QK_VALUE', `${file}: expected a JSON object`);
  return v as Record<string, unknown>;
}

// AutoGPTQ looks in quantize_config.json, then quant_config.json, then
// config.json's quantization_config; AutoAWQ's own files spell the fields
// w_bit and q_group_size.
function findConfig(dir: string): { raw: Record<string, unknown>; source: string } {
  for (const f of CONFIG_FILES) {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) continue;
    const j = readJson(p);
    if (f !== 'config.json') return { raw: j, source: p };
    const q = j.quantization_config;
    if (typeof q === 'object' && q !== null && !Array.isArray(q)) return { raw: q as Record<string, unknown>, source: `${p} (quantization_config)` };
  }
  return fail('ERR_QK_VALUE', `${dir}: no quantization config (looked for ${CONFIG_FILES.join(', ')} with quantization_config)`);
}

function field<T>(raw: Record<string, unknown>, names: string[], kind: 'number' | 'boolean' | 'string', where: string): T | undefined {
  for (const n of names) {
    if (raw[n] === undefined || raw[n] === null) continue;
    if (typeof raw[n] !== kind) fail('ERR_QK_VALUE', `${where}: ${n} must be a ${kind}; got ${JSON.stringify(raw[n])}`);
    return raw[n] as T;
  }
  return undefined;
}

export function parseQuantizationConfig(raw: Record<string, unknown>, source: string): QuantizationConfig {
  let method = field<string>(raw, ['quant_method', 'method'], 'string', source)?.toLowerCase();
  if (method === undefined) method = raw.w_bit !== undefined || raw.zero_point !== undefined ? 'awq' : 'gptq';
  if (method !== 'gptq' && method !== 'awq') fail('ERR_QK_TYPE', `${source}: quant_method '${method}' is not supported (gptq or awq)`);
  const bits = field<number>(raw, ['bits', 'w_bit'], 'number', source) ?? 4;
  if (bits !== 4) fail('ERR_QK_TYPE', `${source}: ${bits}-bit weights are not supported (4-bit only)`);
  const groupSize = field<number>(raw, ['group_size', 'q_group_size'], 'number', source) ?? (method === 'awq' ? 128 : -1);
  if (!Number.isInteger(groupSize) || (groupSize !== -1 && groupSize < 1)) fail('ERR_QK_VALUE', `${source}: group_size must be -1 or a positive integer; got ${groupSize}`);
  if (method === 'awq') {
    const version = (field<string>(raw, ['version'], 'string', source) ?? 'gemm').toLowerCase();
    if (version !== 'gemm') fail('ERR_QK_TYPE', `${source}: AWQ version '${version}' is not supported (gemm only)`);
    const zeroPoint = field<boolean>(raw, ['zero_point'], 'boolean', source) ?? true;
    return Object.freeze({ method, bits, groupSize, descAct: false, sym: !zeroPoint, checkpointFormat: 'awq_gemm' as const, source });
  }
  const format = (field<string>(raw, ['checkpoint_format', 'format'], 'string', source) ?? 'gptq').toLowerCase();
  if (format !== 'gptq' && format !== 'gptq_v2') fail('ERR_QK_TYPE', `${source}: checkpoint_format '${format}' is not supported (gptq or gptq_v2)`);
  const descAct = field<boolean>(raw, ['desc_act'], 'boolean', source) ?? false;
  const sym = field<boolean>(raw, ['sym'], 'boolean', source) ?? true;
  return Object.freeze({ method, bits, groupSize, descAct, sym, checkpointFormat: format, source });
}

// The safetensors files of a checkpoint: the shards an index names, else
// every .safetensors file of the folder.
function weightFiles(dir: string, file: string | null): string[] {
  if (file !== null) return [file];
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    const map = readJson(index).weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) fail('ERR_QK_VALUE', `${index}: weight_map must be an object`);
    const names = new Set<string>();
    for (const [t, f] of Object.entries(map as Record<string, unknown>)) {
      if (typeof f !== 'string' || f.includes('/') || f.includes('\\') || f === '..') fail('ERR_QK_VALUE', `${index}: weight_map['${t}'] must be a file name in the folder`);
      names.add(f);
    }
    return [...names].sort().map((f) => path.join(dir, f));
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
  if (files.length === 0) fail('ERR_QK_VALUE', `${dir}: no .safetensors files`);
  return files.map((f) => path.join(dir, f));
}

export function openCheckpoint(dirOrFile: string, opts: OpenCheckpointOptions = {}): Checkpoint {
  if (typeof dirOrFile !== 'string') fail('ERR_QK_ARG', `openCheckpoint expects a folder or a .safetensors file; got ${typeof dirOrFile}`);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dirOrFile);
  } catch (e) {
    return fail('ERR_QK_ARG', `${dirOrFile}: ${(e as Error).message}`);
  }
  const dir = stat.isDirectory() ? dirOrFile : path.dirname(dirOrFile);
  const { raw, source } = findConfig(dir);
  const config = parseQuantizationConfig(raw, source);
  const files: SafetensorsFile[] = [];
  const where = new Map<string, { file: SafetensorsFile; t: SafetensorsTensor }>();
  try {
    for (const f of weightFiles(dir, stat.isDirectory() ? null : dirOrFile)) {
      const st = openSafetensors(f, { mmap: opts.mmap ?? true });
      files.push(st);
      for (const t of st.tensors.values()) {
        if (where.has(t.name)) fail('ERR_QK_VALUE', `${f}: tensor ${t.name} is also in ${where.get(t.name)!.file.path}`);
        where.set(t.name, { file: st, t });
      }
    }
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
  return new OpenedCheckpoint(dirOrFile, config, files, where);
}

class OpenedCheckpoint implements Checkpoint {
  readonly layers: readonly string[];
  readonly tensorNames: readonly string[];
  private closed = false;

  constructor(
    readonly path: string,
    readonly config: QuantizationConfig,
    private readonly files: SafetensorsFile[],
    private readonly where: Map<string, { file: SafetensorsFile; t: SafetensorsTensor }>,
  ) {
    this.tensorNames = Object.freeze([...where.keys()]);
    this.layers = Object.freeze(this.tensorNames.filter((n) => n.endsWith('.qweight')).map((n) => n.slice(0, -'.qweight'.length)));
  }

  tensor(name: string): CheckpointTensor {
    if (this.closed) fail('ERR_QK_ARG', `${this.path}: the checkpoint is closed`);
    const e = this.where.get(name);
    if (e === undefined) fail('ERR_QK_ARG', `${this.path}: no tensor '${name}'`);
    return { name, dtype: e.t.dtype, shape: e.t.shape, data: e.file.data(e.t) };
  }

  private maybe(name: string): CheckpointTensor | undefined {
    return this.where.has(name) ? this.tensor(name) : undefined;
  }

  matrix(name: string): QuantizedMatrix {
    if (this.closed) fail('ERR_QK_ARG', `${this.path}: the checkpoint is closed`);
    if (this.where.has(`${name}.qweight`)) {
      const parts = { qweight: this.tensor(`${name}.qweight`), qzeros: this.tensor(`${name}.qzeros`), scales: this.tensor(`${name}.scales`), gIdx: this.maybe(`${name}.g_idx`) };
      return this.config.method === 'gptq' ? gptqMatrix(name, this.config, parts) : awqMatrix(name, this.config, parts);
    }
    const t = this.tensor(name);
    return plainMatrix(t);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.files) f.close();
  }
}

const PLAIN: Record<string, { type: WeightType; bytes: number }> = { F32: { type: 'f32', bytes: 4 }, F16: { type: 'f16', bytes: 2 }, BF16: { type: 'bf16', bytes: 2 } };

function plainMatrix(t: CheckpointTensor): QuantizedMatrix {
  const p = PLAIN[t.dtype];
  if (p === undefined) fail('ERR_QK_TYPE', `${t.name}: ${t.dtype} tensors are not matrices (f32, f16 or bf16)`);
  if (t.shape.length !== 2 && t.shape.length !== 1) fail('ERR_QK_SHAPE', `${t.name}: shape [${t.shape.join(', ')}] is not a matrix`);
  const rows = t.shape.length === 2 ? t.shape[0] : 1;
  const cols = t.shape[t.shape.length - 1];
  // A view the kernels can read as elements of its type.
  const data = t.data.byteOffset % p.bytes === 0 ? t.data : t.data.slice();
  return Object.freeze({ type: p.type, rows, cols, data });
}

interface Parts {
  qweight: CheckpointTensor;
  qzeros: CheckpointTensor;
  scales: CheckpointTensor;
  gIdx?: CheckpointTensor;
}

function words(t: CheckpointTensor, name: string): Int32Array {
  if (t.dtype !== 'I32') fail('ERR_QK_TYPE', `${name}: ${t.name.slice(name.length + 1)} is ${t.dtype}, expected I32`);
  const b = t.data.byteOffset % 4 === 0 ? t.data : t.data.slice();
  return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function halves(t: CheckpointTensor, name: string): Uint16Array {
  if (t.dtype !== 'F16') fail('ERR_QK_TYPE', `${name}: scales are ${t.dtype}; qkernels reads fp16 scales (its blocks store them as they are)`);
  const b = t.data.byteOffset % 2 === 0 ? t.data : t.data.slice();
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
}

function expectShape(t: CheckpointTensor, want: number[], name: string): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    fail('ERR_QK_SHAPE', `${name}: ${t.name.slice(name.length + 1)} is [${t.shape.join(', ')}], expected [${want.join(', ')}]`);
  }
}

/** The matrix's facts, decoded: level(k, n), zero(group, n), scale bits(group, n), group of input k. */
interface Decoded {
  rows: number; // N
  cols: number; // K
  groups: number;
  level(k: number, n: number): number;
  zero(g: number, n: number): number;
  scale: Uint16Array; // [groups, N]
  groupOf: Int32Array; // [K]
}

function gptqMatrix(name: string, c: QuantizationConfig, p: Parts): QuantizedMatrix {
  if (p.qweight.shape.length !== 2) fail('ERR_QK_SHAPE', `${name}: qweight must be 2-D [K/8, N]`);
  const [k8, n] = p.qweight.shape;
  const k = 8 * k8;
  const g = c.groupSize === -1 ? k : c.groupSize;
  const groups = Math.ceil(k / g);
  if (n % 8 !== 0) fail('ERR_QK_SHAPE', `${name}: ${n} outputs, not a multiple of 8 (qzeros packs 8 per word)`);
  expectShape(p.scales, [groups, n], name);
  expectShape(p.qzeros, [groups, n / 8], name);
  const qw = words(p.qweight, name), qz = words(p.qzeros, name), scale = halves(p.scales, name);
  const groupOf = new Int32Array(k);
  if (p.gIdx !== undefined) {
    expectShape(p.gIdx, [k], name);
    const gi = words(p.gIdx, name);
    for (let i = 0; i < k; i++) {
      if (gi[i] < 0 || gi[i] >= groups) fail('ERR_QK_VALUE', `${name}: g_idx[${i}] = ${gi[i]} is not a group (0..${groups - 1})`);
      groupOf[i] = gi[i];
    }
  } else {
    for (let i = 0; i < k; i++) groupOf[i] = Math.floor(i / g);
  }
  // v1 stores zero - 1; decoded as nibble + 1 without masking, so that a
  // stored 15 (an asymmetric zero of 0 that overflowed when it was packed)
  // reads as 16, as the exllama-style kernels read it.
  const offset = c.checkpointFormat === 'gptq' ? 1 : 0;
  return toBlocks(name, {
    rows: n,
    cols: k,
    groups,
    level: (i, o) => (qw[(i >> 3) * n + o] >>> (4 * (i & 7))) & 15,
    zero: (gr, o) => ((qz[gr * (n / 8) + (o >> 3)] >>> (4 * (o & 7))) & 15) + offset,
    scale,
    groupOf,
  });
}

// AWQ's GEMM packing puts output 8c + j in nibble REV[j] of word c.
const AWQ_NIBBLE = [0, 4, 1, 5, 2, 6, 3, 7];

function awqMatrix(name: string, c: QuantizationConfig, p: Parts): QuantizedMatrix {
  if (p.qweight.shape.length !== 2) fail('ERR_QK_SHAPE', `${name}: qweight must be 2-D [K, N/8]`);
  const [k, n8] = p.qweight.shape;
  const n = 8 * n8;
  const g = c.groupSize === -1 ? k : c.groupSize;
  if (k % g !== 0) fail('ERR_QK_SHAPE', `${name}: ${k} inputs are not whole groups of ${g}`);
  const groups = k / g;
  expectShape(p.scales, [groups, n], name);
  expectShape(p.qzeros, [groups, n8], name);
  const qw = words(p.qweight, name), qz = words(p.qzeros, name), scale = halves(p.scales, name);
  const groupOf = new Int32Array(k);
  for (let i = 0; i < k; i++) groupOf[i] = Math.floor(i / g);
  return toBlocks(name, {
    rows: n,
    cols: k,
    groups,
    level: (i, o) => (qw[i * n8 + (o >> 3)] >>> (4 * AWQ_NIBBLE[o & 7])) & 15,
    zero: (gr, o) => (qz[gr * n8 + (o >> 3)] >>> (4 * AWQ_NIBBLE[o & 7])) & 15,
    scale,
    groupOf,
  });
}

const BLOCK = 32;

function toBlocks(name: string, d: Decoded): QuantizedMatrix {
  const { rows: n, cols: k } = d;
  if (k % BLOCK !== 0) fail('ERR_QK_SHAPE', `${name}: ${k} inputs, not a multiple of ${BLOCK}`);
  // Columns sorted by group (stable): the identity unless act-order.
  let order: Int32Array | undefined;
  for (let i = 1; i < k; i++) {
    if (d.groupOf[i] < d.groupOf[i - 1]) {
      order = stableOrderByGroup(d.groupOf, d.groups);
      break;
    }
  }
  const col = (j: number): number => (order === undefined ? j : order[j]);
  const nb = k / BLOCK;
  const blockGroup = new Int32Array(nb);
  for (let b = 0; b < nb; b++) {
    const gr = d.groupOf[col(b * BLOCK)];
    for (let j = 1; j < BLOCK; j++) {
      if (d.groupOf[col(b * BLOCK + j)] !== gr) fail('ERR_QK_SHAPE', `${name}: its groups do not come in whole blocks of ${BLOCK} inputs, which qkernels' block formats need`);
    }
    blockGroup[b] = gr;
  }
  let sym = true;
  for (let gr = 0; gr < d.groups && sym; gr++) for (let o = 0; o < n && sym; o++) sym = d.zero(gr, o) === 8;
  const type: WeightType = sym ? 'q4_0' : 'q8_0';
  const blockBytes = sym ? 18 : 34;
  const data = new Uint8Array(n * nb * blockBytes);
  const q = new Int32Array(BLOCK);
  for (let o = 0; o < n; o++) {
    for (let b = 0; b < nb; b++) {
      const gr = blockGroup[b];
      const at = (o * nb + b) * blockBytes;
      const s = d.scale[gr * n + o];
      data[at] = s & 0xff;
      data[at + 1] = s >> 8;
      for (let j = 0; j < BLOCK; j++) q[j] = d.level(col(b * BLOCK + j), o);
      if (sym) {
        for (let j = 0; j < 16; j++) data[at + 2 + j] = q[j] | (q[j + 16] << 4);
      } else {
        const z = d.zero(gr, o);
        for (let j = 0; j < BLOCK; j++) data[at + 2 + j] = (q[j] - z) & 0xff;
      }
    }
  }
  const m = { type, rows: n, cols: k, data };
  return Object.freeze(order === undefined ? m : { ...m, inputOrder: order });
}

function stableOrderByGroup(groupOf: Int32Array, groups: number): Int32Array {
  const start = new Int32Array(groups + 1);
  for (let i = 0; i < groupOf.length; i++) start[groupOf[i] + 1]++;
  for (let g = 0; g < groups; g++) start[g + 1] += start[g];
  const order = new Int32Array(groupOf.length);
  for (let i = 0; i < groupOf.length; i++) order[start[groupOf[i]]++] = i;
  return order;
}

// Which type each tensor gets when a model is quantized: llama.cpp's
// llama-quantize rules for llama-like models (reference §6), for the recipes
// q4_k_m, q4_k_s, q5_k_m, q6_k and q8_0, and for plain weight types ("pure":
// every quantizable tensor in that type). Only the type choice lives here.
import { QkError } from '../errors';
import { isWeightType, TYPES, WEIGHT_TYPES, type WeightType } from '../types';
import { ggmlType } from './types';

export const RECIPES = ['q4_k_m', 'q4_k_s', 'q5_k_m', 'q6_k', 'q8_0'] as const;
export type Recipe = (typeof RECIPES)[number];
/** A recipe, or a weight type applied to every quantizable tensor. */
export type QuantizeTarget = Recipe | WeightType;

// llama_ftype numbers written as general.file_type (reference §6.2).
const FILE_TYPE: Record<QuantizeTarget, number> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, bf16: 32,
  q4_k_s: 14, q4_k_m: 15, q5_k_m: 17, q6_k: 18,
  // llama-quantize --pure with Q4_K_M / Q5_K_M writes these numbers too.
  q4_k: 15, q5_k: 17,
};

const RECIPE_DEFAULT: Record<Recipe, WeightType> = { q4_k_m: 'q4_k', q4_k_s: 'q4_k', q5_k_m: 'q5_k', q6_k: 'q6_k', q8_0: 'q8_0' };

export function isQuantizeTarget(t: unknown): t is QuantizeTarget {
  return typeof t === 'string' && ((RECIPES as readonly string[]).includes(t) || isWeightType(t));
}

export function targetNames(): string[] {
  return [...RECIPES, ...WEIGHT_TYPES.filter((t) => !(RECIPES as readonly string[]).includes(t))];
}

/** What a plan needs to know about a tensor. */
export interface PlanTensorInfo {
  readonly name: string;
  /** GGUF order: shape[0] is the row length */
  readonly shape: readonly number[];
  /** ggml type id of the tensor as it is now */
  readonly ggmlType: number;
}

/** What a plan needs to know about the model (from its metadata). */
export interface ModelInfo {
  architecture: string;
  /** {arch}.block_count */
  layers: number;
  /** {arch}.expert_count (0: not a mixture of experts) */
  experts: number;
  /** {arch}.attention.head_count and head_count_kv (0: unknown) */
  heads: number;
  headsKv: number;
}

export interface PlannedType {
  readonly name: string;
  /** the ggml type id the tensor will have */
  readonly ggmlType: number;
  /** false: the tensor is copied as it is */
  readonly convert: boolean;
  /** set when a rule or a fallback chose something other than the default */
  readonly reason?: string;
}

export interface Plan {
  readonly fileType: number;
  readonly tensors: readonly PlannedType[];
}

function num(v: unknown): number {
  // Per-layer values are arrays in some models; the recipes only use scalars.
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : NaN;
}

/** Model facts from GGUF metadata; missing layer counts are taken from the tensor names. */
export function modelInfo(metadata: Readonly<Record<string, unknown>>, tensors: readonly PlanTensorInfo[]): ModelInfo {
  const arch = typeof metadata['general.architecture'] === 'string' ? (metadata['general.architecture'] as string) : 'llama';
  let layers = num(metadata[`${arch}.block_count`]);
  if (!(layers >= 0)) layers = tensors.reduce((n, t) => Math.max(n, layerOf(t.name) + 1), 0);
  const experts = num(metadata[`${arch}.expert_count`]);
  const heads = num(metadata[`${arch}.attention.head_count`]);
  const headsKv = num(metadata[`${arch}.attention.head_count_kv`]);
  return {
    architecture: arch,
    layers,
    experts: experts >= 0 ? experts : 0,
    heads: heads >= 0 ? heads : 0,
    headsKv: headsKv >= 0 ? headsKv : heads >= 0 ? heads : 0,
  };
}

/** The layer of "blk.N...." (as sscanf("blk.%d.") reads it), else -1. */
export function layerOf(name: string): number {
  const m = /^blk\.\s*([+-]?\d+)/.exec(name);
  if (!m) return -1;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && Math.abs(n) <= 0x7fffffff ? n : -1;
}

/** llama.cpp's visiting order: by layer (names without one first), then by name bytes. */
export function visitOrder(tensors: readonly { name: string }[]): number[] {
  const keys = tensors.map((t) => ({ layer: layerOf(t.name), bytes: Buffer.from(t.name, 'utf8') }));
  return tensors.map((_, i) => i).sort((a, b) => keys[a].layer - keys[b].layer || Buffer.compare(keys[a].bytes, keys[b].bytes));
}

/** ggml_n_dims: trailing dimensions of 1 do not count. */
function nDims(shape: readonly number[]): number {
  let n = shape.length;
  while (n > 1 && shape[n - 1] === 1) n--;
  return Math.max(n, 1);
}

// Substrings of tensors llama.cpp never quantizes (small, or used in ways that need full precision).
const KEEP_SUBSTRINGS = [
  '_norm.weight', 'ffn_gate_inp.weight', 'ffn_gate_tid2eid.weight', 'altup', 'laurel', 'per_layer_model_proj',
  'ssm_conv1d', 'shortconv.conv.weight', 'indexer.k_proj.weight', 'indexer.q_proj.weight',
  'time_mix_first.weight', 'time_mix_w0.weight', 'time_mix_w1.weight', 'time_mix_w2.weight', 'time_mix_v0.weight',
  'time_mix_v1.weight', 'time_mix_v2.weight', 'time_mix_a0.weight', 'time_mix_a1.weight', 'time_mix_a2.weight',
  'time_mix_g1.weight', 'time_mix_g2.weight', 'time_mix_decay_w1.weight', 'time_mix_decay_w2.weight',
  'time_mix_lerp_fused.weight', 'attn_rel_b.weight', '.position_embd', 'sam.pos_embd', 'sam.neck.', 'sam.net_',
  '.rel_pos', '.patch_embd', '.patch_merger', 'a.rvq.codebook', 'mm.a.code_embd',
];

/** llama.cpp's tensor_allows_quantization for the default parameters (reference §6.1). */
export function allowsQuantization(t: PlanTensorInfo): boolean {
  if (nDims(t.shape) < 2) return false;
  const n = t.name;
  if (!n.endsWith('weight')) return false;
  if (n === 'position_embd.weight' || n === 'token_types.weight') return false;
  return !KEEP_SUBSTRINGS.some((s) => n.includes(s));
}

type Category = 'output' | 'token_embd' | 'attn_v' | 'attn_k' | 'attn_q' | 'attn_output' | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'other';

function category(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  // Fused QKV and MLA's kv_b count as attn_v (they carry V).
  if (name.includes('attn_qkv.weight') || name.includes('attn_kv_b.weight') || name.includes('attn_v.weight')) return 'attn_v';
  if (name.includes('attn_k.weight')) return 'attn_k';
  if (name.includes('attn_q.weight')) return 'attn_q';
  if (name.includes('attn_output.weight')) return 'attn_output';
  if (name.includes('ffn_up')) return 'ffn_up';
  if (name.includes('ffn_gate')) return 'ffn_gate';
  if (name.includes('ffn_down')) return 'ffn_down';
  return 'other';
}

function useMoreBits(i: number, n: number): boolean {
  const n8 = Math.trunc(n / 8);
  // C's % keeps the sign of the dividend, as JavaScript's does.
  return i < n8 || i >= Math.trunc((7 * n) / 8) || (i - n8) % 3 === 2;
}

// tensor_type_fallback: a row length the block size does not divide.
const FALLBACK: Partial<Record<WeightType, WeightType>> = { q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0' };

function blockSize(t: WeightType): number {
  return TYPES[t].blockSize;
}

function fallback(t: WeightType, cols: number): { type: WeightType; reason?: string } {
  if (cols % blockSize(t) === 0) return { type: t };
  let f = FALLBACK[t];
  if (!f || cols % blockSize(f) !== 0) f = 'f16';
  return { type: f, reason: `rows of ${cols} are not a multiple of ${blockSize(t)}: ${t} -> ${f}` };
}

/**
 * The type of every tensor for `target`, in the order given. Counters
 * (i_attention_wv, the ffn_down layer) run in llama.cpp's visiting order.
 */
export function planQuantization(target: QuantizeTarget, tensors: readonly PlanTensorInfo[], model: ModelInfo): Plan {
  if (!isQuantizeTarget(target)) {
    throw new QkError('ERR_QK_TYPE', `unknown quantization type '${String(target)}'; expected one of ${targetNames().join(', ')}`);
  }
  const recipe = (RECIPES as readonly string[]).includes(target) ? (target as Recipe) : null;
  const def: WeightType = recipe ? RECIPE_DEFAULT[recipe] : (target as WeightType);
  const quantizedDefault = TYPES[def].blockSize > 1;
  const ftype = recipe ?? def;
  const falcon = model.architecture === 'falcon';
  const cats = tensors.map((t) => category(t.name));
  const nAttnV = cats.filter((c) => c === 'attn_v').length;
  const tied = !cats.includes('output');
  const is70B = model.architecture === 'llama' && model.layers === 80 && model.heads > 0 && model.heads !== model.headsKv;
  let iAttnV = 0;
  let iFfnDown = 0;

  const out: PlannedType[] = new Array(tensors.length);
  for (const i of visitOrder(tensors)) {
    const t = tensors[i];
    const cat = cats[i];
    if (!allowsQuantization(t)) {
      out[i] = { name: t.name, ggmlType: t.ggmlType, convert: false };
      continue;
    }
    const cols = t.shape[0];
    let type = def;
    let reason: string | undefined;
    const rule = (ty: WeightType, why: string) => {
      if (ty !== type) reason = why;
      type = ty;
    };
    if (quantizedDefault && recipe) {
      if (cat === 'output' || (tied && cat === 'token_embd')) {
        const what = cat === 'output' ? 'output.weight' : 'tied token embeddings';
        if (falcon || cols % blockSize(def) !== 0) rule('q8_0', `${what}: q8_0`);
        else if (def !== 'q8_0') rule('q6_k', `${what}: q6_k`);
      } else if (cat === 'attn_v') {
        if ((ftype === 'q4_k_m' || ftype === 'q5_k_m') && useMoreBits(iAttnV, nAttnV)) rule('q6_k', `attn_v #${iAttnV} of ${nAttnV}: more bits`);
        else if (ftype === 'q4_k_s' && iAttnV < 4) rule('q5_k', `attn_v #${iAttnV} < 4`);
        if (is70B && type === 'q4_k') rule('q5_k', '70B GQA attn_v');
        if (model.experts === 8) rule('q8_0', '8-expert attn_v');
        iAttnV++;
      } else if (cat === 'attn_k') {
        if (model.experts === 8) rule('q8_0', '8-expert attn_k');
      } else if (cat === 'ffn_down') {
        let layer = iFfnDown;
        const n = model.layers;
        if (model.experts > 1) {
          layer = layerOf(t.name);
          if (layer < 0 || layer >= n) throw new QkError('ERR_QK_VALUE', `cannot tell the layer of '${t.name}' (of ${n} layers) for the ${ftype} recipe`);
        }
        if (ftype === 'q4_k_m') {
          if (falcon) {
            if (layer < Math.trunc(n / 16)) rule('q6_k', `ffn_down layer ${layer} < n/16`);
            else if (useMoreBits(layer, n)) rule('q5_k', `ffn_down layer ${layer}: more bits`);
          } else if (useMoreBits(layer, n)) rule('q6_k', `ffn_down layer ${layer} of ${n}: more bits`);
        } else if (ftype === 'q5_k_m' && useMoreBits(layer, n)) rule('q6_k', `ffn_down layer ${layer} of ${n}: more bits`);
        else if (ftype === 'q4_k_s' && !falcon && layer < Math.trunc(n / 8)) rule('q5_k', `ffn_down layer ${layer} < n/8`);
        iFfnDown++;
      } else if (cat === 'attn_output') {
        if (!falcon && model.experts === 8 && (ftype === 'q4_k_s' || ftype === 'q4_k_m')) rule('q5_k', '8-expert attn_output');
      }
    }
    if (quantizedDefault) {
      const f = fallback(type, cols);
      if (f.type !== type) reason = f.reason;
      type = f.type;
    }
    const id = TYPES[type].ggmlId;
    out[i] = { name: t.name, ggmlType: id, convert: id !== t.ggmlType, ...(reason ? { reason } : {}) };
  }
  return { fileType: FILE_TYPE[ftype], tensors: out };
}

/** ggml name of a type id, for messages. */
export function typeNameOf(id: number): string {
  return ggmlType(id)?.name ?? `type ${id}`;
}

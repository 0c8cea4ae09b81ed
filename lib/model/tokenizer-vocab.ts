// A vocabulary read from GGUF metadata the way llama.cpp's llama_vocab::load
// reads it: the defaults of each tokenizer model and pre-tokenizer, the
// special ids, the token attributes (with llama.cpp's fix-ups by token text),
// and the set of end-of-generation tokens.
import { QkError } from '../errors';
import { PRE_REGEXES, type PreFamily } from './tokenizer-pretok';

// llama_token_attr bits
export const A_UNKNOWN = 1 << 0;
export const A_UNUSED = 1 << 1;
export const A_NORMAL = 1 << 2;
export const A_CONTROL = 1 << 3;
export const A_USER_DEFINED = 1 << 4;
export const A_BYTE = 1 << 5;
export const A_LSTRIP = 1 << 7;
export const A_RSTRIP = 1 << 8;

// GGUF token_type (llama_token_type) -> attribute; 0 and unknown types are "undefined" (no bit).
const TYPE_ATTR: Record<number, number> = { 1: A_NORMAL, 2: A_UNKNOWN, 3: A_CONTROL, 4: A_USER_DEFINED, 5: A_UNUSED, 6: A_BYTE };

interface PreConfig { family: PreFamily; clean: boolean; ignoreMerges?: boolean; addBos?: boolean; noBos?: boolean }

const LLAMA3: PreConfig = { family: 'llama3', clean: true, ignoreMerges: true, addBos: true };
const GPT2: PreConfig = { family: 'gpt2', clean: true };
const STARCODER: PreConfig = { family: 'starcoder', clean: true };
const QWEN2: PreConfig = { family: 'qwen2', clean: false };

/** tokenizer.ggml.pre names llama.cpp knows whose regexes this tokenizer implements (llama_vocab::impl::load). */
const PRE: Record<string, PreConfig> = {
  default: { family: 'default', clean: true },
  llama3: LLAMA3, 'llama-v3': LLAMA3, 'llama-bpe': LLAMA3, falcon3: LLAMA3, 'falcon-h1': LLAMA3, pixtral: LLAMA3,
  'midm-2.0': LLAMA3, lfm2: LLAMA3, 'jina-v5-nano': LLAMA3,
  dbrx: { family: 'llama3', clean: true }, 'smaug-bpe': { family: 'llama3', clean: true },
  glm4: { family: 'llama3', clean: true, noBos: true }, 'chatglm-bpe': { family: 'llama3', clean: true, noBos: true },
  'deepseek-llm': { family: 'deepseek-llm', clean: false },
  'deepseek-coder': { family: 'deepseek-coder', clean: false },
  falcon: { family: 'falcon', clean: true },
  'gpt-2': GPT2, 'phi-2': GPT2, gigachat: GPT2, 'a.x-4.0': GPT2, mellum: GPT2, exaone4: GPT2,
  mpt: GPT2, olmo: GPT2, jais: GPT2,
  trillion: { family: 'gpt2', clean: false }, 'granite-docling': { family: 'gpt2', clean: false },
  starcoder: STARCODER, refact: STARCODER, codeshell: STARCODER, exaone: STARCODER, 'minerva-7b': STARCODER, mellum2: STARCODER,
  'command-r': { family: 'starcoder', clean: false }, smollm: { family: 'starcoder', clean: false },
  qwen2: QWEN2, 'deepseek-r1-qwen': QWEN2, kormo: QWEN2, f2llmv2: QWEN2, hunyuan: QWEN2, 'solar-open': QWEN2,
  megrez: { family: 'qwen2', clean: true }, stablelm2: { family: 'qwen2', clean: true },
  qwen35: { family: 'qwen35', clean: false },
};

export const SUPPORTED_PRE: readonly string[] = Object.keys(PRE);

// Token texts llama.cpp takes as end-of-generation (llama_vocab::impl::load).
const EOG_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>',
  '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
]);
// Texts by which llama.cpp finds special tokens the metadata does not name.
const FIND_BY_TEXT: readonly [key: SpecialKey, texts: readonly string[]][] = [
  ['eot', ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>']],
  ['eom', ['<|eom_id|>']],
  ['fimPre', ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>']],
  ['fimSuf', ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>']],
  ['fimMid', ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>']],
  ['fimPad', ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]']],
  ['fimRep', ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>']],
  ['fimSep', ['<|file_sep|>']],
];

type SpecialKey = 'bos' | 'eos' | 'eot' | 'eom' | 'unk' | 'sep' | 'pad' | 'mask' | 'fimPre' | 'fimSuf' | 'fimMid' | 'fimPad' | 'fimRep' | 'fimSep';
const SPECIAL_KEYS: readonly [SpecialKey, string][] = [
  ['bos', 'bos_token_id'], ['eos', 'eos_token_id'], ['eot', 'eot_token_id'], ['eom', 'eom_token_id'],
  ['unk', 'unknown_token_id'], ['sep', 'seperator_token_id'], ['pad', 'padding_token_id'], ['mask', 'mask_token_id'],
  ['fimPre', 'fim_pre_token_id'], ['fimSuf', 'fim_suf_token_id'], ['fimMid', 'fim_mid_token_id'],
  ['fimPad', 'fim_pad_token_id'], ['fimRep', 'fim_rep_token_id'], ['fimSep', 'fim_sep_token_id'],
  ['fimPre', 'prefix_token_id'], ['fimSuf', 'suffix_token_id'], ['fimMid', 'middle_token_id'],
];

export interface Vocab {
  readonly model: 'llama' | 'gpt2';
  readonly pre: string;
  readonly regexes: readonly string[];
  readonly tokens: readonly string[];
  /** text -> id; the last of duplicate texts wins, as in llama.cpp */
  readonly tokenId: ReadonlyMap<string, number>;
  readonly scores: Float32Array;
  readonly attrs: Uint16Array;
  /** "first\0second" -> rank; the first of duplicate merges wins */
  readonly ranks: ReadonlyMap<string, number>;
  readonly special: Readonly<Record<SpecialKey, number | null>>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  readonly ignoreMerges: boolean;
  readonly eog: ReadonlySet<number>;
  /** control, user-defined and unknown tokens, longest text first: what tokenize splits out before merging */
  readonly specialTokens: readonly number[];
}

const bad = (msg: string) => new QkError('ERR_QK_ARG', msg);

export function loadVocab(md: Readonly<Record<string, unknown>>): Vocab {
  const model = md['tokenizer.ggml.model'];
  if (model === undefined) throw bad('metadata has no tokenizer.ggml.model: not a GGUF file with a tokenizer');
  if (model !== 'llama' && model !== 'gpt2') {
    throw bad(`tokenizer.ggml.model '${String(model)}' is not supported (supported: 'llama' (SentencePiece), 'gpt2' (byte-level BPE))`);
  }
  const preRaw = md['tokenizer.ggml.pre'];
  // llama.cpp reads no pre-tokenizer for SentencePiece, and takes 'default' when a BPE vocab names none.
  const pre = typeof preRaw === 'string' && preRaw.length > 0 ? preRaw : 'default';
  let preConfig: PreConfig | undefined;
  if (model === 'gpt2') {
    preConfig = Object.prototype.hasOwnProperty.call(PRE, pre) ? PRE[pre] : undefined;
    if (!preConfig) throw bad(`tokenizer.ggml.pre '${pre}' is not a supported pre-tokenizer (supported: ${SUPPORTED_PRE.join(', ')})`);
  }

  const rawTokens = md['tokenizer.ggml.tokens'];
  if (!Array.isArray(rawTokens) || rawTokens.some((t) => typeof t !== 'string')) throw bad('tokenizer.ggml.tokens must be an array of strings');
  const n = rawTokens.length;
  // llama.cpp renames empty tokens so that every text maps back to one id
  const tokens = (rawTokens as string[]).map((t, i) => (t.length > 0 ? t : `[EMPTY_${i}]`));
  const tokenId = new Map<string, number>();
  tokens.forEach((t, i) => tokenId.set(t, i));

  // copied: metadata arrays may be views on a mapping that GgufFile.close() empties
  const scoreValues = numberArray(md['tokenizer.ggml.scores'], 'tokenizer.ggml.scores', n);
  const scores = scoreValues ? Float32Array.from({ length: n }, (_, i) => scoreValues[i]) : new Float32Array(n);
  const types = numberArray(md['tokenizer.ggml.token_type'], 'tokenizer.ggml.token_type', n);
  const attrs = new Uint16Array(n);
  for (let i = 0; i < n; i++) attrs[i] = types ? TYPE_ATTR[types[i]] ?? 0 : A_NORMAL;

  const ranks = new Map<string, number>();
  if (model === 'gpt2') {
    const merges = md['tokenizer.ggml.merges'];
    if (!Array.isArray(merges)) throw bad('tokenizer.ggml.merges is missing: a gpt2 (BPE) vocab needs its merges');
    merges.forEach((m: unknown, i) => {
      const s = String(m);
      const at = s.indexOf(' ', 1);
      const key = at >= 0 ? s.slice(0, at) + '\0' + s.slice(at + 1) : '\0';
      if (!ranks.has(key)) ranks.set(key, i);
    });
  }

  const special: Record<SpecialKey, number | null> = {
    bos: null, eos: null, eot: null, eom: null, unk: null, sep: null, pad: null, mask: null,
    fimPre: null, fimSuf: null, fimMid: null, fimPad: null, fimRep: null, fimSep: null,
  };
  if (model === 'llama') Object.assign(special, { bos: 1, eos: 2, unk: 0 });
  else Object.assign(special, { bos: preConfig!.noBos ? null : 11, eos: 11 });
  for (const [key, name] of SPECIAL_KEYS) {
    const cur = special[key];
    if (cur !== null && cur >= n) special[key] = null;
    const v = md['tokenizer.ggml.' + name];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < n) special[key] = v;
  }

  const flag = (key: string, dflt: boolean) => (typeof md[key] === 'boolean' ? (md[key] as boolean) : dflt);
  const spm = model === 'llama';
  const addBos = flag('tokenizer.ggml.add_bos_token', spm || preConfig?.addBos === true);
  const addEos = flag('tokenizer.ggml.add_eos_token', false);
  const addSpacePrefix = flag('tokenizer.ggml.add_space_prefix', spm);

  fixAttributes(tokens, attrs, special);
  const eog = eogSet(tokens, tokenId, attrs, special);

  const specialTokens: number[] = [];
  for (let i = 0; i < n; i++) if (attrs[i] & (A_CONTROL | A_USER_DEFINED | A_UNKNOWN)) specialTokens.push(i);
  // llama.cpp's std::sort leaves the order of equal lengths unspecified; ids ascending here
  specialTokens.sort((a, b) => tokens[b].length - tokens[a].length || a - b);

  // per-model attributes llama.cpp sets by general.name (phi-3: special tokens eat the spaces after them)
  const name = typeof md['general.name'] === 'string' ? (md['general.name'] as string).toLowerCase() : '';
  if (name.includes('phi-3') || name.includes('phi3')) {
    for (const id of specialTokens) attrs[id] |= A_RSTRIP;
    const set = (t: string, on: boolean) => {
      const id = tokenId.get(t);
      if (id !== undefined) attrs[id] = on ? attrs[id] | A_RSTRIP : attrs[id] & ~A_RSTRIP;
    };
    set('</s>', true);
    for (const t of ['<unk>', '<s>', '<|endoftext|>']) set(t, false);
  }

  return {
    model, pre, regexes: preConfig ? PRE_REGEXES[preConfig.family] : [], tokens, tokenId, scores, attrs, ranks, special,
    addBos, addEos, addSpacePrefix, cleanSpaces: preConfig?.clean ?? false, ignoreMerges: preConfig?.ignoreMerges ?? false,
    eog, specialTokens,
  };
}

function numberArray(v: unknown, key: string, n: number): ArrayLike<number> | null {
  if (v === undefined) return null;
  const ok = v instanceof Float32Array || v instanceof Int32Array || v instanceof Float64Array || v instanceof Uint32Array
    || (Array.isArray(v) && v.every((x) => typeof x === 'number'));
  if (!ok) throw bad(`${key} must be an array of numbers`);
  const a = v as ArrayLike<number>;
  if (a.length < n) throw bad(`${key} has ${a.length} entries for ${n} tokens`);
  return a;
}

/** llama.cpp marks special-looking tokens control (finding eot/eom/fim by text) and control tokens named "unused" unused. */
function fixAttributes(tokens: readonly string[], attrs: Uint16Array, special: Record<SpecialKey, number | null>): void {
  // llama.cpp walks an unordered_map here; with several candidates for one role the first id wins in this port
  for (const [key, texts] of FIND_BY_TEXT) {
    if (special[key] !== null) continue;
    const found = new Set(texts);
    const id = tokens.findIndex((t) => found.has(t));
    if (id >= 0) { special[key] = id; attrs[id] |= A_CONTROL; }
  }
  tokens.forEach((t, i) => {
    if (attrs[i] & A_CONTROL && t.includes('unused')) attrs[i] |= A_UNUSED;
  });
}

function eogSet(
  tokens: readonly string[], tokenId: ReadonlyMap<string, number>, attrs: Uint16Array, special: Record<SpecialKey, number | null>,
): Set<number> {
  const eog = new Set<number>();
  for (const k of ['fimPad', 'fimRep', 'fimSep'] as const) if (special[k] !== null) eog.add(special[k]!);
  for (const [t, id] of tokenId) {
    if (EOG_TEXTS.has(t)) { eog.add(id); attrs[id] |= A_CONTROL; }
  }
  // gpt-oss: these always render
  for (const t of ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>']) {
    const id = tokenId.get(t);
    if (id !== undefined) attrs[id] = A_USER_DEFINED;
  }
  for (const k of ['eos', 'eot', 'eom'] as const) if (special[k] !== null) eog.add(special[k]!);
  const has = (t: string) => [...eog].some((id) => tokens[id] === t);
  // o200k_harmony and solar-open end a message with <|end|> but generation with <|return|> / <|call|>
  const endId = [...eog].find((id) => tokens[id] === '<|end|>');
  if (endId !== undefined && ((has('<|return|>') && (has('<|call|>') || has('<|calls|>'))) || (has('<|flush|>') && (has('<|call|>') || has('<|calls|>'))))) {
    eog.delete(endId);
    attrs[endId] = A_USER_DEFINED;
  }
  const sId = [...eog].find((id) => tokens[id] === '</s>');
  if (sId !== undefined && has('<|tool_response>')) { eog.delete(sId); attrs[sId] = A_NORMAL; }
  return eog;
}

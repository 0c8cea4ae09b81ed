// Tokenizers from GGUF metadata with llama.cpp's semantics (src/llama-vocab.cpp):
// 'llama' vocabs are SentencePiece BPE (score-driven merges, byte fallback,
// "▁" for spaces and a leading one), 'gpt2' vocabs are byte-level BPE (a
// pre-tokenizer splits words, ranked merges join their bytes). Special tokens
// are split out of the text first, as llama_tokenize does.
import { QkError } from '../errors';
import { bpeMerge, spmMerge } from './tokenizer-merge';
import { preSplit } from './tokenizer-pretok';
import { byteEncode, CHAR_TO_BYTE, codePoints, utf8, wellFormed } from './tokenizer-unicode';
import {
  A_BYTE, A_CONTROL, A_LSTRIP, A_NORMAL, A_RSTRIP, A_UNKNOWN, A_USER_DEFINED, loadVocab, type Vocab,
} from './tokenizer-vocab';

export { SUPPORTED_PRE } from './tokenizer-vocab';

export interface TokenizeOptions {
  /** prepend BOS; default: the vocab's add_bos_token (llama_tokenize's add_special) */
  addBos?: boolean;
  /** append EOS; default: the vocab's add_eos_token */
  addEos?: boolean;
  /** split control and unknown tokens' texts out of the text (llama_tokenize's parse_special); default false. User-defined tokens are always split out. */
  parseSpecial?: boolean;
}

export interface DetokenizeOptions {
  /** drop a leading BOS and a trailing EOS the vocab adds itself (llama_detokenize's remove_special); default false */
  removeSpecial?: boolean;
  /** render control tokens as their text (unparse_special); default false: they render as nothing */
  unparseSpecial?: boolean;
}

export interface Decoder {
  /** the text that token completes: never half a UTF-8 character, and held back while a later token may still change it */
  push(id: number): string;
  /** whatever was held back */
  flush(): string;
}

const SPM_SPACE = '\u2581';
const UNK_ATTRS = A_UNKNOWN | A_CONTROL;
const WORD_CACHE_LIMIT = 50_000;

type Fragment = { start: number; end: number } | { id: number };

export class Tokenizer {
  readonly model: 'llama' | 'gpt2';
  readonly pre: string;
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number | null;
  readonly eot: number | null;
  readonly unk: number | null;
  readonly addBos: boolean;
  readonly addEos: boolean;
  private readonly v: Vocab;
  private readonly pieces: (Uint8Array | undefined)[];
  private readonly words = new Map<string, number[]>();

  private constructor(v: Vocab) {
    this.v = v;
    this.model = v.model;
    this.pre = v.pre;
    this.vocabSize = v.tokens.length;
    this.bos = v.special.bos;
    this.eos = v.special.eos;
    this.eot = v.special.eot;
    this.unk = v.special.unk;
    this.addBos = v.addBos;
    this.addEos = v.addEos;
    this.pieces = new Array(v.tokens.length);
  }

  /** Throws QkError('ERR_QK_ARG') naming what is missing or unsupported. */
  static fromMetadata(md: Readonly<Record<string, unknown>>): Tokenizer {
    if (md === null || typeof md !== 'object') throw new QkError('ERR_QK_ARG', 'metadata must be an object (GgufFile.metadata)');
    return new Tokenizer(loadVocab(md));
  }

  /** End of generation: eos, eot, eom and the other tokens llama.cpp stops at. */
  isEog(id: number): boolean {
    return this.v.eog.has(id);
  }

  /** The token's text in the vocabulary, as stored (▁ for spaces, byte-level characters). */
  tokenText(id: number): string {
    this.check(id);
    return this.v.tokens[id];
  }

  /** Whether a token is control or unknown: rendered as nothing unless asked for. */
  isControl(id: number): boolean {
    this.check(id);
    return (this.v.attrs[id] & UNK_ATTRS) !== 0;
  }

  tokenize(text: string, opts: TokenizeOptions = {}): number[] {
    if (typeof text !== 'string') throw new QkError('ERR_QK_ARG', `text must be a string; got ${typeof text}`);
    text = wellFormed(text);
    const v = this.v;
    const out: number[] = [];
    if (opts.addBos ?? v.addBos) {
      if (v.special.bos === null) throw new QkError('ERR_QK_ARG', 'addBos: this vocab has no BOS token');
      out.push(v.special.bos);
    }
    const fragments = this.partition(text, opts.parseSpecial ?? false);
    if (v.model === 'llama') {
      let afterSpecial = true; // the text start counts as after a special token
      for (const f of fragments) {
        if ('id' in f) { out.push(f.id); afterSpecial = true; continue; }
        let s = text.slice(f.start, f.end);
        if (v.addSpacePrefix && afterSpecial) s = ' ' + s;
        this.spm(s.replaceAll(' ', SPM_SPACE), out);
        afterSpecial = false;
      }
    } else {
      for (const f of fragments) {
        if ('id' in f) out.push(f.id);
        else this.bpe(text.slice(f.start, f.end), out);
      }
    }
    if (opts.addEos ?? v.addEos) {
      if (v.special.eos === null) throw new QkError('ERR_QK_ARG', 'addEos: this vocab has no EOS token');
      out.push(v.special.eos);
    }
    return out;
  }

  detokenize(ids: readonly number[], opts: DetokenizeOptions = {}): string {
    const d = new ByteDecoder(this, opts);
    // push() hands out whatever is final at once; flush() only the held-back tail
    let text = '';
    for (const id of ids) text += d.push(id);
    return text + d.flush();
  }

  /** The bytes one token stands for; control and unknown tokens are empty unless `special`. */
  tokenBytes(id: number, opts: { special?: boolean } = {}): Uint8Array {
    this.check(id);
    if (!opts.special && this.v.attrs[id] & UNK_ATTRS) return new Uint8Array(0);
    return this.piece(id).slice();
  }

  /** Incremental detokenize: the pieces of pushed ids, concatenated, equal detokenize of all of them. */
  createDecoder(opts: DetokenizeOptions = {}): Decoder {
    return new ByteDecoder(this, opts);
  }

  /** @internal the piece of a token with special=true (llama.cpp's token_to_piece cache) */
  piece(id: number): Uint8Array {
    let p = this.pieces[id];
    if (p === undefined) {
      const attr = this.v.attrs[id];
      const text = this.v.tokens[id];
      if (attr & (UNK_ATTRS | A_USER_DEFINED)) p = utf8(text);
      else if (attr & A_NORMAL) p = this.model === 'llama' ? utf8(text.replaceAll(SPM_SPACE, ' ')) : byteDecode(text);
      else if (attr & A_BYTE) p = Uint8Array.of(parseInt(text.slice(3, 5), 16) || 0);
      else p = new Uint8Array(0); // unused and undefined tokens render as nothing
      this.pieces[id] = p;
    }
    return p;
  }

  /** @internal */
  check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new QkError('ERR_QK_ARG', `token id ${id} is out of range [0, ${this.vocabSize})`);
    }
  }

  /** @internal */
  get facts(): Vocab { return this.v; }

  // llama.cpp's tokenizer_st_partition: each special token in turn (longest
  // first) is cut out of every text fragment left by the ones before.
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    const v = this.v;
    let frags: Fragment[] = text.length > 0 ? [{ start: 0, end: text.length }] : [];
    for (const id of v.specialTokens) {
      const attr = v.attrs[id];
      if (!parseSpecial && attr & UNK_ATTRS) continue;
      const tok = v.tokens[id];
      if (!frags.some((f) => 'start' in f && text.indexOf(tok, f.start) >= 0 && text.indexOf(tok, f.start) + tok.length <= f.end)) continue;
      const next: Fragment[] = [];
      for (const f of frags) {
        if ('id' in f) { next.push(f); continue; }
        let { start, end } = f;
        for (;;) {
          const m = text.indexOf(tok, start);
          if (m < 0 || m + tok.length > end) break;
          let leftEnd = m;
          if (attr & A_LSTRIP) while (leftEnd > start && isSpace(text.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > start) next.push({ start, end: leftEnd });
          next.push({ id });
          start = m + tok.length;
          if (attr & A_RSTRIP) while (start < end && isSpace(text.charCodeAt(start))) start++;
        }
        if (start < end) next.push({ start, end });
      }
      frags = next;
    }
    return frags;
  }

  private spm(text: string, out: number[]): void {
    const v = this.v;
    for (const piece of spmMerge(text, v.tokenId, v.scores)) {
      const id = v.tokenId.get(piece);
      if (id !== undefined) { out.push(id); continue; }
      // byte fallback: <0xXX> tokens, else a token spelled as the byte itself
      for (const b of utf8(piece)) {
        const hex = '<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>';
        const byteId = v.tokenId.get(hex) ?? (b < 0x80 ? v.tokenId.get(String.fromCharCode(b)) : undefined);
        if (byteId !== undefined) out.push(byteId);
        else if (v.special.unk !== null) out.push(v.special.unk); // llama.cpp throws here (std::map::at)
        else throw new QkError('ERR_QK_VALUE', `byte 0x${b.toString(16)} has no token in this vocab and there is no unknown token`);
      }
    }
  }

  private bpe(text: string, out: number[]): void {
    const cpts = codePoints(text);
    // UTF-16 offset of each code point, to cut words out of the text rather than rebuild them
    const offsets = new Array<number>(cpts.length + 1);
    offsets[0] = 0;
    for (let i = 0; i < cpts.length; i++) offsets[i + 1] = offsets[i] + (cpts[i] > 0xffff ? 2 : 1);
    let at = 0;
    for (const len of preSplit(cpts, this.v.regexes)) {
      const word = text.slice(offsets[at], offsets[at + len]);
      at += len;
      for (const id of this.bpeWord(word)) out.push(id);
    }
  }

  private bpeWord(word: string): number[] {
    let ids = this.words.get(word);
    if (ids) return ids;
    const v = this.v;
    const encoded = byteEncode(word);
    const whole = v.ignoreMerges ? v.tokenId.get(encoded) : undefined;
    const pieces = whole !== undefined ? [encoded] : bpeMerge(encoded, (a, b) => v.ranks.get(a + '\0' + b) ?? -1);
    ids = [];
    for (const p of pieces) {
      const id = v.tokenId.get(p);
      if (id !== undefined) { ids.push(id); continue; }
      // llama.cpp looks each byte of the piece's UTF-8 up as a one-byte token; only ASCII ones can exist
      for (const b of utf8(p)) {
        const byteId = b < 0x80 ? v.tokenId.get(String.fromCharCode(b)) : undefined;
        if (byteId !== undefined) ids.push(byteId);
      }
    }
    if (this.words.size >= WORD_CACHE_LIMIT) this.words.clear();
    this.words.set(word, ids);
    return ids;
  }
}

const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** A byte-level token's characters back to bytes (llama_decode_text). */
function byteDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch.codePointAt(0)!);
    if (b !== undefined) { out.push(b); continue; }
    const hex = Array.from(utf8(ch), (x) => x.toString(16).padStart(2, '0')).join('');
    out.push(...utf8(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return Uint8Array.from(out);
}

const APOS = 0x27, SPACE = 0x20;

/**
 * llama_detokenize as a stream. The leading space of the first piece goes
 * when the vocab adds one (add_space_prefix) and no BOS was dropped before it;
 * a trailing EOS is dropped on flush; clean_up_tokenization_spaces is applied
 * up to a point no later byte can change; UTF-8 is decoded in stream mode.
 */
class ByteDecoder implements Decoder {
  private first = true;
  private stripSpace: boolean;
  private heldEos = false;
  private pending: number[] = [];
  // ignoreBOM: a U+FEFF the tokens spell is text (llama.cpp copies its bytes), not a byte-order mark to drop
  private readonly utf = new TextDecoder('utf-8', { ignoreBOM: true });
  private readonly removeSpecial: boolean;
  private readonly special: boolean;

  constructor(private readonly t: Tokenizer, opts: DetokenizeOptions) {
    this.removeSpecial = opts.removeSpecial ?? false;
    this.special = opts.unparseSpecial ?? false;
    this.stripSpace = t.facts.addSpacePrefix;
  }

  push(id: number): string {
    this.t.check(id);
    const v = this.t.facts;
    let out = '';
    if (this.heldEos) { this.heldEos = false; out += this.emit(v.special.eos!); }
    if (this.first && this.removeSpecial && v.addBos && id === v.special.bos) {
      this.first = false;
      this.stripSpace = false;
      return out;
    }
    this.first = false;
    if (this.removeSpecial && v.addEos && id === v.special.eos) { this.heldEos = true; return out; }
    return out + this.emit(id);
  }

  flush(): string {
    this.heldEos = false;
    const bytes = this.t.facts.cleanSpaces ? cleanSpaces(this.pending) : this.pending;
    this.pending = [];
    return this.utf.decode(Uint8Array.from(bytes));
  }

  private emit(id: number): string {
    const attr = this.t.facts.attrs[id];
    let p = !this.special && attr & UNK_ATTRS ? new Uint8Array(0) : this.t.piece(id);
    if (this.stripSpace && p.length > 0 && p[0] === SPACE) p = p.subarray(1);
    this.stripSpace = false;
    if (!this.t.facts.cleanSpaces) return this.utf.decode(p, { stream: true });
    for (const b of p) this.pending.push(b);
    // Cleaning looks at most two bytes back across a cut that follows two
    // bytes that are neither a space nor an apostrophe; everything before such a cut is final.
    const q = this.pending;
    let cut = q.length;
    while (cut >= 2 && (isCleanByte(q[cut - 1]) || isCleanByte(q[cut - 2]))) cut--;
    if (cut < 2) return '';
    const done = cleanSpaces(q.slice(0, cut));
    this.pending = q.slice(cut);
    return this.utf.decode(Uint8Array.from(done), { stream: true });
  }
}

const isCleanByte = (b: number) => b === SPACE || b === APOS;

/** llama_detokenize's clean_spaces: " ?" " !" " ." " ," lose the space, " ' " becomes "'", " 's" " 'm" " 're" " 've" lose the space. */
function cleanSpaces(text: readonly number[]): number[] {
  const Q = 0x3f, EXCL = 0x21, DOT = 0x2e, COMMA = 0x2c;
  let a = text.slice();
  // pass 1
  let b: number[] = a.length ? [a[0]] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i];
    if (a[i - 1] === SPACE && (x === Q || x === EXCL || x === DOT || x === COMMA)) b.pop();
    b.push(x);
  }
  // pass 2: the space after the apostrophe is skipped, and no longer counts as the space before the next byte
  a = b;
  b = a.length ? [a[0]] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i];
    if (x === APOS && i + 1 < a.length && a[i - 1] === SPACE && a[i + 1] === SPACE) {
      b.pop();
      a[i + 1] = 0;
      b.push(x);
      i++;
      continue;
    }
    b.push(x);
  }
  // pass 3
  a = b;
  b = a.length ? [a[0]] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i];
    if (a[i - 1] === SPACE && x === APOS && i + 1 < a.length) {
      const x1 = a[i + 1];
      if (x1 === 0x73 || x1 === 0x6d) b.pop(); // 's 'm
      else if (x1 !== 0x74 && x1 !== 0x64 && i + 2 < a.length) {
        const x2 = a[i + 2];
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) b.pop(); // 're 've
      }
    }
    b.push(x);
  }
  return b;
}

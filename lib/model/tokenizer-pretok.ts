// BPE pre-tokenizers: the text is cut into words before any merge, by a list
// of regexes applied one after the other (llama.cpp's unicode_regex_split).
// Each regex cuts every piece the previous ones left, and the unmatched runs
// between its matches stay pieces of their own. Pieces are lengths in code
// points.
//
// llama.cpp runs four of its regexes through hand-written scanners (GPT-2,
// LLAMA3, QWEN2, QWEN3.5) and the others through std::regex, after replacing
// every non-ASCII code point by one byte naming its category when the regex
// uses \p{..}. Both paths are reproduced, quirks included: a std::regex sees
// `\p{L}` as "ASCII letter or any non-ASCII letter", and non-ASCII whitespace
// as \v.
import {
  cptFlags, F_CATEGORIES, F_LETTER, F_MARK, F_NUMBER, F_PUNCTUATION, F_SYMBOL, F_WHITESPACE,
} from './tokenizer-unicode';

const GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const LLAMA3_RE = CONTRACTIONS + '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const QWEN2_RE = CONTRACTIONS + '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const QWEN35_RE = CONTRACTIONS + '|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const CJK_RE = '[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+';

/** The regex lists of llama.cpp's llm_tokenizer_bpe, by pre-tokenizer family. */
export const PRE_REGEXES = {
  default: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_RE, '\\p{N}+', '[0-9][0-9][0-9]'],
  gpt2: [GPT2_RE],
  llama3: [LLAMA3_RE],
  qwen2: [QWEN2_RE],
  qwen35: [QWEN35_RE],
  falcon: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2_RE, '[0-9][0-9][0-9]'],
  starcoder: ['\\p{N}', GPT2_RE],
  'deepseek-llm': [
    '[\r\n]',
    '\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\ud801\udc00-\ud801\udc4f\ud801\udcb0-\ud801\udcd3\ud801\udcd8-\ud801\udcfb\ud803\udc80-\ud803\udcb2\ud803\udcc0-\ud803\udcf2\ud806\udca0-\ud806\udcdf\ud83a\udd00-\ud83a\udd43]+',
    '\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+',
    '\\s+$',
    CJK_RE,
    '\\p{N}+',
  ],
  'deepseek-coder': ['[\r\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', CJK_RE, '\\p{N}'],
} as const satisfies Record<string, readonly string[]>;

export type PreFamily = keyof typeof PRE_REGEXES;

type Splitter = (cpts: readonly number[], pieces: readonly number[]) => number[];

/** Cuts `cpts` into words with the regex list; returns the words' lengths in code points. */
export function preSplit(cpts: readonly number[], regexes: readonly string[]): number[] {
  let pieces: number[] = cpts.length > 0 ? [cpts.length] : [];
  for (const re of regexes) pieces = splitterFor(re)(cpts, pieces);
  return pieces;
}

const splitters = new Map<string, Splitter>();
function splitterFor(re: string): Splitter {
  let s = splitters.get(re);
  if (!s) {
    s = re === GPT2_RE ? scanGpt2
      : re === LLAMA3_RE ? (c, p) => scanLlama3(c, p, 3, false)
      : re === QWEN2_RE ? (c, p) => scanLlama3(c, p, 1, false)
      : re === QWEN35_RE ? (c, p) => scanLlama3(c, p, 1, true)
      : regexSplitter(re);
    splitters.set(re, s);
  }
  return s;
}

// ---- the hand-written scanners (llama.cpp's unicode_regex_split_custom_*) ----

const APOS = 0x27, SPACE = 0x20, CR = 0x0d, LF = 0x0a;
const lowerAscii = (c: number) => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);

/** Length of a contraction ('s 't 're 've 'm 'll 'd) at pos, or 0. */
function contraction(cpts: readonly number[], pos: number, end: number, caseless: boolean): number {
  if (cpts[pos] !== APOS || pos + 1 >= end) return 0;
  const low = caseless ? lowerAscii : (c: number) => c;
  const a = low(cpts[pos + 1]);
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return 2; // s t m d
  if (pos + 2 >= end) return 0;
  const b = low(cpts[pos + 2]);
  return (a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c) ? 3 : 0; // re ve ll
}

/** Runs `scan` over each piece, with flags that read 0 outside it (the scanners' "out of range"). */
function eachPiece(
  cpts: readonly number[], pieces: readonly number[],
  scan: (pos: number, end: number, flags: (p: number) => number, out: number[]) => void,
): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of pieces) {
    const ini = start, end = start + len;
    start = end;
    scan(ini, end, (p) => (p >= ini && p < end ? cptFlags(cpts[p]) : 0), out);
  }
  return out;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
function scanGpt2(cpts: readonly number[], pieces: readonly number[]): number[] {
  return eachPiece(cpts, pieces, (pos, end, flags, out) => {
    let prev = pos;
    const cut = (at: number) => { if (at > prev) out.push(at - prev); prev = at; pos = at; };
    while (pos < end) {
      const c = cpts[pos];
      const k = contraction(cpts, pos, end, false);
      if (k > 0) { cut(pos + k); continue; }
      const f2 = c === SPACE ? flags(pos + 1) : flags(pos);
      const run = (keep: (f: number) => boolean) => {
        let p = pos + (c === SPACE ? 1 : 0);
        while (keep(flags(p))) p++;
        cut(p);
      };
      if (f2 & F_LETTER) { run((f) => (f & F_LETTER) !== 0); continue; }
      if (f2 & F_NUMBER) { run((f) => (f & F_NUMBER) !== 0); continue; }
      const other = (f: number) => f !== 0 && (f & (F_WHITESPACE | F_LETTER | F_NUMBER)) === 0;
      if (other(f2)) { run(other); continue; }
      if (whitespaceRun(pos, end, flags, cpts, false, cut)) continue;
      cut(pos + 1);
    }
  });
}

// LLAMA3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// QWEN2 takes one digit at a time; QWEN3.5 also counts marks (\p{M}) as letters.
function scanLlama3(cpts: readonly number[], pieces: readonly number[], maxDigits: number, marks: boolean): number[] {
  const LETTERISH = marks ? F_LETTER | F_MARK : F_LETTER;
  return eachPiece(cpts, pieces, (pos, end, flags, out) => {
    let prev = pos;
    const cut = (at: number) => { if (at > prev) out.push(at - prev); prev = at; pos = at; };
    while (pos < end) {
      const c = cpts[pos];
      const f = flags(pos);
      const k = contraction(cpts, pos, end, true);
      if (k > 0) { cut(pos + k); continue; }
      if (c !== CR && c !== LF && !(f & F_NUMBER) && ((f | flags(pos + 1)) & LETTERISH)) {
        let p = pos + 1;
        while (flags(p) & LETTERISH) p++;
        cut(p);
        continue;
      }
      if (f & F_NUMBER) {
        let p = pos, n = 0;
        while (flags(p) & F_NUMBER) {
          p++;
          if (++n >= maxDigits) { cut(p); n = 0; }
        }
        cut(p);
        continue;
      }
      // ' ?[^\s\p{L}\p{N}]+[\r\n]*' -- llama.cpp tests the flags of the space
      // itself here, so a space at the end of the piece is taken alone.
      const NOT = F_WHITESPACE | LETTERISH | F_NUMBER;
      const f2 = c === SPACE ? flags(pos + 1) : f;
      if (!(f2 & NOT) && f !== 0) {
        let p = pos + (c === SPACE ? 1 : 0);
        while (flags(p) !== 0 && !(flags(p) & NOT)) p++;
        while (p < end && (cpts[p] === CR || cpts[p] === LF)) p++;
        cut(p);
        continue;
      }
      if (whitespaceRun(pos, end, flags, cpts, true, cut)) continue;
      cut(pos + 1);
    }
  });
}

/** \s*[\r\n]+ (when `newlines`), then \s+(?!\S), then \s+ at pos; false when pos is not whitespace. */
function whitespaceRun(
  pos: number, end: number, flags: (p: number) => number, cpts: readonly number[], newlines: boolean, cut: (at: number) => void,
): boolean {
  let n = 0, lastNewline = -1;
  while (flags(pos + n) & F_WHITESPACE) {
    const c = cpts[pos + n];
    if (c === CR || c === LF) lastNewline = pos + n + 1;
    n++;
  }
  if (newlines && lastNewline >= 0) { cut(lastNewline); return true; }
  // followed by a non-space inside the piece: leave the last space to it
  if (n > 1 && pos + n < end) { cut(pos + n - 1); return true; }
  if (n > 0) { cut(pos + n); return true; }
  return false;
}

// ---- the std::regex path ----

const CATEGORY_NAMES: Record<string, number> = {
  N: F_NUMBER, L: F_LETTER, P: F_PUNCTUATION, M: F_MARK, S: F_SYMBOL, Lu: F_LETTER, Ll: F_LETTER, Lt: F_LETTER, Lm: F_LETTER, Lo: F_LETTER,
};
// The byte llama.cpp writes for a non-ASCII code point of a category, and the ASCII members of it.
const CATEGORY_BYTE: Record<number, number> = { [F_NUMBER]: 0xd1, [F_LETTER]: 0xd2, [F_PUNCTUATION]: 0xd3, [F_MARK]: 0xd4, [F_SYMBOL]: 0xd5 };
const CATEGORY_ASCII: Record<number, string> = {
  [F_NUMBER]: '0-9', [F_LETTER]: 'A-Za-z', [F_PUNCTUATION]: '!-#%-*,-/:-;?-@\\[-\\]_\\{\\}', [F_MARK]: '', [F_SYMBOL]: '\\$\\+<->\\^`\\|~',
};
const CATEGORY_RE = /\\p\{(N|L|P|M|S|Lu|Ll|Lt|Lm|Lo)\}/;

function collapsedChar(cpt: number): string {
  if (cpt < 128) return String.fromCharCode(cpt);
  const f = cptFlags(cpt);
  if (f & F_WHITESPACE) return '\x0b';
  return String.fromCharCode(CATEGORY_BYTE[f & F_CATEGORIES] ?? 0xd0);
}

/**
 * The regex rewritten for JavaScript: \p{X} as the category byte plus its
 * ASCII members (when `collapse`), and \s / \S as C's isspace set, which is
 * what std::regex matches (JavaScript's \s also takes U+FEFF and, without
 * the u flag, U+00A0).
 */
function translate(re: string, collapse: boolean): string {
  let out = '';
  let inside = false;
  for (let i = 0; i < re.length; i++) {
    const ch = re[i];
    if (ch === '[' && (i === 0 || re[i - 1] !== '\\')) { inside = true; out += ch; continue; }
    if (inside && ch === ']' && re[i - 1] !== '\\') { inside = false; out += ch; continue; }
    if (ch === '\\' && i + 1 < re.length) {
      const next = re[i + 1];
      if (collapse && next === 'p') {
        const m = CATEGORY_RE.exec(re.slice(i, i + 11));
        if (m && m.index === 0) {
          const cat = CATEGORY_NAMES[m[1]];
          const body = '\\x' + CATEGORY_BYTE[cat].toString(16) + CATEGORY_ASCII[cat];
          out += inside ? body : '[' + body + ']';
          i += m[0].length - 1;
          continue;
        }
      }
      if (next === 's') { out += inside ? '\\t\\n\\v\\f\\r ' : '[\\t\\n\\v\\f\\r ]'; i++; continue; }
      if (next === 'S' && !inside) { out += '[^\\t\\n\\v\\f\\r ]'; i++; continue; }
      out += ch + next;
      i++;
      continue;
    }
    out += ch;
  }
  return out;
}

function regexSplitter(re: string): Splitter {
  const collapse = CATEGORY_RE.test(re);
  const rx = new RegExp(translate(re, collapse), collapse ? 'g' : 'gu');
  return (cpts, pieces) => {
    const out: number[] = [];
    let start = 0;
    for (const len of pieces) {
      // One string per piece, so ^, $ and lookaheads stop at its ends as std::regex_iterator's range does.
      let s = '';
      // UTF-16 index -> code point index, for the u-flag path where astral code points take two units
      const cpAt: number[] = [];
      for (let i = start; i < start + len; i++) {
        const c = cpts[i];
        const piece = collapse ? collapsedChar(c) : c > 0x7f && (cptFlags(c) & F_WHITESPACE) ? '\x0b' : String.fromCodePoint(c);
        for (let u = 0; u < piece.length; u++) cpAt.push(i - start);
        s += piece;
      }
      cpAt.push(len);
      rx.lastIndex = 0;
      let done = 0;
      for (let m = rx.exec(s); m !== null; m = rx.exec(s)) {
        const a = cpAt[m.index], b = cpAt[m.index + m[0].length];
        if (a > done) out.push(a - done);
        out.push(b - a);
        done = b;
        if (m[0].length === 0) rx.lastIndex++;
      }
      if (done < len) out.push(len - done);
      start += len;
    }
    return out;
  };
}

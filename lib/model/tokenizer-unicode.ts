// Code point classes as llama.cpp's unicode.cpp sees them, and GPT-2's
// byte-level alphabet. llama.cpp ships its own tables generated from
// UnicodeData.txt; here the general categories come from the JavaScript
// engine's \p{..} classes (its Unicode version may differ from llama.cpp's
// for code points assigned recently), and whitespace is llama.cpp's own list
// (it is not JavaScript's \s: U+0085 is in, U+FEFF is out).

export const F_UNDEFINED = 0x01; // Cn: every assigned code point has a category below instead
export const F_NUMBER = 0x02;
export const F_LETTER = 0x04;
export const F_SEPARATOR = 0x08;
export const F_MARK = 0x10;
export const F_PUNCTUATION = 0x20;
export const F_SYMBOL = 0x40;
export const F_CONTROL = 0x80;
export const F_CATEGORIES = 0xff;
export const F_WHITESPACE = 0x100;

const WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

const CATEGORY_TESTS: readonly [RegExp, number][] = [
  [/\p{L}/u, F_LETTER], [/\p{N}/u, F_NUMBER], [/\p{M}/u, F_MARK], [/\p{P}/u, F_PUNCTUATION],
  [/\p{S}/u, F_SYMBOL], [/\p{Z}/u, F_SEPARATOR], [/\p{Cn}/u, F_UNDEFINED],
];

// 0 = not looked up yet (every code point has at least one flag), so the
// table fills lazily with only the code points texts actually contain.
const flagCache = new Uint16Array(0x110000);

/** llama.cpp's unicode_cpt_flags_from_cpt as a bit set; 0 for code points out of range. */
export function cptFlags(cpt: number): number {
  if (cpt < 0 || cpt >= 0x110000) return 0;
  let f = flagCache[cpt];
  if (f !== 0) return f;
  const s = String.fromCodePoint(cpt);
  f = F_CONTROL; // Cc, Cf, Co, Cs: what no other class claims
  for (const [re, flag] of CATEGORY_TESTS) {
    if (re.test(s)) { f = flag; break; }
  }
  if (WHITESPACE.has(cpt)) f |= F_WHITESPACE;
  flagCache[cpt] = f;
  return f;
}

/** The string with lone surrogates replaced by U+FFFD, as UTF-8 encoding would. */
export function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** Code points of a string; lone surrogates become U+FFFD as they would in UTF-8. */
export function codePoints(text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text.codePointAt(i)!;
    if (c >= 0xd800 && c <= 0xdfff) { out.push(0xfffd); i++; } else { out.push(c); i += c > 0xffff ? 2 : 1; }
  }
  return out;
}

const encoder = new TextEncoder();
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
// the other 68 bytes are shifted to U+0100 upwards in byte order.
function byteAlphabet(): string[] {
  const map: string[] = new Array(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return map;
}

/** byte -> its one-character stand-in in byte-level BPE vocabularies */
export const BYTE_TO_CHAR: readonly string[] = byteAlphabet();
/** stand-in character code -> byte */
export const CHAR_TO_BYTE: ReadonlyMap<number, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c.charCodeAt(0), b]));

/** A word's UTF-8 bytes spelled in the byte-level alphabet (one UTF-16 unit per byte). */
export function byteEncode(word: string): string {
  const bytes = utf8(word);
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

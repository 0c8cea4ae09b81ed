// A safetensors file is untrusted input, like a GGUF one: its header is
// checked whole before any tensor is handed out, and whatever is wrong with it
// ends in a QkError naming the file and the tensor or field.
// Layout: uint64 LE header length N, N bytes of JSON, then the tensor bytes.
import { QkError, type QkErrorCode } from './errors';
import { openSource, type ByteSource } from './gguf/source';

export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** absolute byte offset in the file */
  readonly offset: number;
  readonly byteLength: number;
}

export interface SafetensorsFile {
  readonly path: string;
  readonly mode: 'mmap' | 'read';
  readonly metadata: Readonly<Record<string, string>>;
  /** in file order (sorted by offset) */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** the tensor's bytes: a view when mapped, else a fresh copy; throws QkError for an unknown name */
  data(t: SafetensorsTensor | string): Uint8Array;
  /** idempotent; data() after close throws QkError */
  close(): void;
}

export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1, U8: 1, I8: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8, C64: 8,
  F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1, F8_E4M3FNUZ: 1, F8_E5M2FNUZ: 1,
});

// Packed several to a byte: a tensor of them has no whole-byte length to check or slice.
const SUB_BYTE_DTYPES = new Set(['F4', 'F6_E2M3', 'F6_E3M2']);

/** The reference reader's limit: a larger header is refused before it is read. */
const MAX_HEADER = 100_000_000;
const METADATA_KEY = '__metadata__';
const ENTRY_FIELDS = ['data_offsets', 'dtype', 'shape'];

function fail(code: QkErrorCode, path: string, problem: string): never {
  throw new QkError(code, `${path}: ${problem}`);
}

/** N from the first 8 bytes, checked against the limit and the file size. */
function headerLength(prefix: Uint8Array, fileSize: number, path: string): number {
  if (fileSize < 8) fail('ERR_QK_LENGTH', path, `${fileSize} bytes is too short for a safetensors file (the header length alone takes 8)`);
  if (prefix.length < 8) fail('ERR_QK_LENGTH', path, `only ${prefix.length} of the 8 bytes of the header length were given`);
  // Two 32-bit halves: a forged length near 2^64 is still reported exactly.
  const dv = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = BigInt(dv.getUint32(0, true)) | (BigInt(dv.getUint32(4, true)) << 32n);
  if (n > BigInt(MAX_HEADER)) fail('ERR_QK_VALUE', path, `header length ${n} is over the limit of ${MAX_HEADER} bytes`);
  const len = Number(n);
  if (8 + len > fileSize) fail('ERR_QK_LENGTH', path, `header length ${len} runs past the end of the ${fileSize}-byte file`);
  return len;
}

/** A key that occurs twice in one object (JSON.parse silently keeps the last), or null. `text` must be valid JSON. */
function duplicateKey(text: string): { key: string; topLevel: boolean } | null {
  // One key set per open object (null for an open array), so a nested key never collides with an outer one.
  const open: (Set<string> | null)[] = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const keys = open[open.length - 1];
      if (keyNext && keys) {
        // Decoded, so "a" and "\u0061" are the same key.
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return { key, topLevel: open.length === 1 };
        keys.add(key);
      }
      keyNext = false;
      i = j;
    } else if (c === '{') {
      open.push(new Set());
      keyNext = true;
    } else if (c === '[') {
      open.push(null);
    } else if (c === '}' || c === ']') {
      open.pop();
    } else if (c === ',') {
      keyNext = open[open.length - 1] != null;
    }
  }
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A value as it appears in the header, cut short for a message. */
function shown(v: unknown): string {
  // JSON.parse turns 1e400 into Infinity, which JSON.stringify would show as null.
  if (typeof v === 'number') return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? s.slice(0, 40) + '…' : s;
}

interface Entry {
  t: SafetensorsTensor;
  begin: number;
  end: number;
}

function parseEntry(name: string, e: unknown, dataStart: number, fileSize: number, path: string): Entry {
  const where = `tensor '${name}'`;
  if (!isObject(e)) fail('ERR_QK_VALUE', path, `${where}: expected an object of dtype, shape and data_offsets, got ${shown(e)}`);
  const keys = Object.keys(e);
  for (const k of keys) if (!ENTRY_FIELDS.includes(k)) fail('ERR_QK_VALUE', path, `${where}: unexpected field '${k}'`);
  for (const k of ENTRY_FIELDS) if (!keys.includes(k)) fail('ERR_QK_VALUE', path, `${where}: missing field '${k}'`);

  const dtype = e.dtype;
  if (typeof dtype !== 'string') fail('ERR_QK_VALUE', path, `${where}: dtype must be a string, got ${shown(dtype)}`);
  if (SUB_BYTE_DTYPES.has(dtype)) fail('ERR_QK_TYPE', path, `${where}: unsupported dtype ${dtype} (sub-byte types are not read)`);
  // hasOwn: "toString" or "__proto__" must not find something on the prototype.
  if (!Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) fail('ERR_QK_TYPE', path, `${where}: unknown dtype ${shown(dtype)}`);

  const shape = e.shape;
  if (!Array.isArray(shape)) fail('ERR_QK_VALUE', path, `${where}: shape must be an array, got ${shown(shape)}`);
  let numel = 1;
  shape.forEach((d: unknown, i) => {
    if (!isCount(d)) fail('ERR_QK_VALUE', path, `${where}: shape[${i}] must be a non-negative integer, got ${shown(d)}`);
    numel *= d;
  });
  // Past 2^53 the product is no longer exact; with a zero dimension it is 0 whatever came before.
  if (shape.includes(0)) numel = 0;
  const bytes = numel * SAFETENSORS_DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(bytes)) fail('ERR_QK_VALUE', path, `${where}: shape [${shape.join(', ')}] of ${dtype} is more bytes than a safe integer holds`);

  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !isCount(off[0]) || !isCount(off[1])) {
    fail('ERR_QK_VALUE', path, `${where}: data_offsets must be [BEGIN, END] of non-negative integers, got ${shown(off)}`);
  }
  const [begin, end] = off as [number, number];
  if (end < begin) fail('ERR_QK_VALUE', path, `${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (dataStart + end > fileSize) fail('ERR_QK_LENGTH', path, `${where}: data_offsets [${begin}, ${end}] end at byte ${dataStart + end}, past the end of the ${fileSize}-byte file`);
  if (end - begin !== bytes) fail('ERR_QK_VALUE', path, `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape [${shape.join(', ')}] of ${dtype} takes ${bytes}`);

  const t: SafetensorsTensor = Object.freeze({ name, dtype, shape: Object.freeze(shape.slice() as number[]), offset: dataStart + begin, byteLength: bytes });
  return { t, begin, end };
}

/**
 * Checks a header. `bytes` is the start of the file (at least the 8-byte length
 * and the header; the whole file will do), `fileSize` the whole file's size.
 * The tensors come back sorted by offset.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, path: string): { metadata: Record<string, string>; tensors: SafetensorsTensor[]; dataStart: number } {
  const n = headerLength(bytes, fileSize, path);
  const dataStart = 8 + n;
  if (bytes.length < dataStart) fail('ERR_QK_LENGTH', path, `only ${bytes.length - 8} of the ${n} header bytes were given`);
  const raw = bytes.subarray(8, dataStart);
  if (raw[0] !== 0x7b) fail('ERR_QK_VALUE', path, `the header does not start with '{' (${n === 0 ? 'it is empty' : `its first byte is 0x${raw[0].toString(16).padStart(2, '0')}`})`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    fail('ERR_QK_VALUE', path, `the ${n}-byte header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail('ERR_QK_VALUE', path, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) fail('ERR_QK_VALUE', path, 'the header is not a JSON object');
  const dup = duplicateKey(text);
  if (dup) fail('ERR_QK_VALUE', path, dup.topLevel ? `the header names '${dup.key}' twice (duplicate key)` : `duplicate key '${dup.key}' in an object of the header`);

  // No prototype: a key such as "__proto__" stays a plain key.
  const metadata: Record<string, string> = Object.create(null);
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isObject(value)) fail('ERR_QK_VALUE', path, `${METADATA_KEY} must be an object of strings, got ${shown(value)}`);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') fail('ERR_QK_VALUE', path, `${METADATA_KEY} '${k}' must be a string, got ${shown(v)}`);
        metadata[k] = v;
      }
    } else {
      entries.push(parseEntry(name, value, dataStart, fileSize, path));
    }
  }

  // Zero-sized tensors sort before a tensor that starts where they do.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: string | null = null;
  for (const { t, begin, end } of entries) {
    if (begin > at) fail('ERR_QK_VALUE', path, `a gap of ${begin - at} bytes in the data before tensor '${t.name}' (its data_offsets begin at ${begin}, ${prev === null ? 'the data at 0' : `'${prev}' ends at ${at}`})`);
    if (begin < at) fail('ERR_QK_VALUE', path, `tensor '${t.name}' (data_offsets begin at ${begin}) overlaps '${prev}', which ends at ${at}`);
    at = end;
    prev = t.name;
  }
  if (dataStart + at !== fileSize) {
    fail('ERR_QK_VALUE', path, `the tensors end at byte ${dataStart + at}, but the file has ${fileSize} bytes (${fileSize - dataStart - at} bytes at the end that no tensor covers)`);
  }
  return { metadata, tensors: entries.map((e) => e.t), dataStart };
}

class Safetensors implements SafetensorsFile {
  readonly mode: 'mmap' | 'read';
  private closed = false;
  constructor(
    readonly path: string,
    private readonly source: ByteSource,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: ReadonlyMap<string, SafetensorsTensor>,
  ) {
    this.mode = source.mode;
  }

  data(t: SafetensorsTensor | string): Uint8Array {
    const name = typeof t === 'string' ? t : t?.name;
    if (this.closed) fail('ERR_QK_ARG', this.path, `the file was closed; tensor '${name}' can no longer be read`);
    const e = this.tensors.get(name);
    if (e === undefined) fail('ERR_QK_ARG', this.path, `no tensor named ${shown(name)}`);
    // Only this file's own ranges are read: a forged offset could reach the header or past the end.
    if (typeof t !== 'string' && (t.offset !== e.offset || t.byteLength !== e.byteLength)) {
      fail('ERR_QK_ARG', this.path, `tensor '${name}' was given with another offset or length than this file's`);
    }
    return e.byteLength === 0 ? new Uint8Array(0) : this.source.read(e.offset, e.byteLength);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.source.close();
  }
}

export function openSafetensors(path: string, opts: { mmap?: boolean } = {}): SafetensorsFile {
  const source = openSource(path, opts.mmap ?? true);
  try {
    // The length first, so a forged one is refused before anything that long is read.
    const n = headerLength(source.size >= 8 ? source.read(0, 8) : new Uint8Array(0), source.size, path);
    const { metadata, tensors } = parseSafetensorsHeader(source.read(0, 8 + n), source.size, path);
    return new Safetensors(path, source, Object.freeze(metadata), new Map(tensors.map((t) => [t.name, t])));
  } catch (e) {
    source.close();
    throw e;
  }
}

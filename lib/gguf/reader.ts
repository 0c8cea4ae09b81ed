// openGguf: parses and checks a GGUF v2/v3 file (reference §7), then hands
// out its tensors as views on the file's bytes.
import type { QuantizedMatrix } from '../types';
import { QkError } from '../errors';
import { Cursor } from './cursor';
import { BAD, GgufError, SHORT, TYPE } from './errors';
import { openSource, type ByteSource } from './source';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_ALIGNMENT, GGUF_MAX_DIMS, GGUF_MAX_TENSOR_NAME, ggmlType,
  type GgmlTypeInfo, type GgufFile, type GgufPlainValue, type GgufTensor, type GgufValue, type OpenGgufOptions,
} from './types';
import { plainOf, readValue } from './values';

interface TensorInfo {
  name: string;
  type: GgmlTypeInfo;
  shape: number[];
  elements: number;
  bytes: number;
  /** relative to the data section, as stored */
  relOffset: number;
  /** where this tensor's info record starts, for error messages */
  infoAt: number;
}

export interface ParsedHeader {
  version: number;
  alignment: number;
  dataOffset: number;
  typedMetadata: Record<string, GgufValue>;
  tensors: TensorInfo[];
}

// Smallest encodings: a KV is a key of >= 1 byte (8 + 1), a type (4) and a value
// of >= 1 byte; a tensor info is a name (8), n_dims (4), type (4) and offset (8).
const MIN_KV_BYTES = 14;
const MIN_TENSOR_INFO_BYTES = 24;

function readHeader(cur: Cursor): ParsedHeader {
  const magic = cur.u32('the magic number');
  if (magic !== GGUF_MAGIC) {
    const got = Buffer.alloc(4);
    got.writeUInt32LE(magic);
    cur.fail(BAD, 0, `not a GGUF file: the magic is ${JSON.stringify(got.toString('latin1'))} (${got.toString('hex')}), expected "GGUF"`);
  }
  const version = cur.u32('the version');
  if ((version & 0xffff) === 0 && version !== 0) cur.fail(BAD, 4, `version field ${version} looks byte-swapped: big-endian GGUF files are not supported`);
  if (version === 1) cur.fail(BAD, 4, 'GGUF version 1 (32-bit counts) is obsolete and not supported; versions 2 and 3 are');
  if (version !== 2 && version !== 3) cur.fail(BAD, 4, `unsupported GGUF version ${version}; versions 2 and 3 are supported`);
  const nTensors = cur.count('the tensor count', MIN_TENSOR_INFO_BYTES);
  const nKv = cur.count('the metadata count', MIN_KV_BYTES);
  if (nTensors * MIN_TENSOR_INFO_BYTES + nKv * MIN_KV_BYTES > cur.remaining) {
    cur.fail(SHORT, 8, `${nTensors} tensors and ${nKv} metadata entries cannot fit in the ${cur.remaining} bytes after the header`);
  }

  const typedMetadata: Record<string, GgufValue> = Object.create(null);
  let alignmentAt = -1;
  for (let i = 0; i < nKv; i++) {
    const at = cur.pos;
    const key = cur.string(`the key of metadata entry ${i}`);
    if (key.length === 0) cur.fail(BAD, at, `metadata entry ${i} has an empty key`);
    if (key in typedMetadata) cur.fail(BAD, at, `metadata key '${key}' appears twice`);
    if (key === 'general.alignment') alignmentAt = at;
    typedMetadata[key] = readValue(cur, key);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = typedMetadata['general.alignment'];
  if (al !== undefined) {
    if (al.type !== 'uint32') cur.fail(BAD, alignmentAt, `general.alignment must be a uint32; it is a ${al.type}`);
    const a = al.value;
    if (a === 0 || (a & (a - 1)) !== 0 || a > GGUF_MAX_ALIGNMENT) {
      cur.fail(BAD, alignmentAt, `general.alignment is ${a}; it must be a power of two no larger than ${GGUF_MAX_ALIGNMENT}`);
    }
    alignment = a;
  }

  const tensors: TensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) tensors.push(readTensorInfo(cur, i, names, alignment));

  const dataOffset = Math.ceil(cur.pos / alignment) * alignment;
  checkPlacement(cur, tensors, dataOffset);
  return { version, alignment, dataOffset, typedMetadata, tensors };
}

function readTensorInfo(cur: Cursor, i: number, names: Set<string>, alignment: number): TensorInfo {
  const infoAt = cur.pos;
  const name = cur.string(`the name of tensor ${i}`);
  const nameBytes = cur.pos - infoAt - 8;
  if (nameBytes > GGUF_MAX_TENSOR_NAME) cur.fail(BAD, infoAt, `tensor ${i}'s name is ${nameBytes} bytes; ggml allows at most ${GGUF_MAX_TENSOR_NAME}`);
  if (names.has(name)) cur.fail(BAD, infoAt, `tensor name '${name}' appears twice`);
  names.add(name);
  const dimsAt = cur.pos;
  const nDims = cur.u32(`the dimension count of '${name}'`);
  if (nDims > GGUF_MAX_DIMS) cur.fail(BAD, dimsAt, `'${name}' has ${nDims} dimensions; ggml allows at most ${GGUF_MAX_DIMS}`);
  const shape: number[] = [];
  let elements = 1;
  for (let d = 0; d < nDims; d++) {
    const at = cur.pos;
    const ne = cur.u64(`dimension ${d} of '${name}'`);
    // No tensor in a file of < 2^53 bytes can have a dimension that large, unless another is 0.
    if (typeof ne === 'bigint') cur.fail(BAD, at, `dimension ${d} of '${name}' is ${ne}, beyond any file`);
    shape.push(ne);
  }
  for (const ne of shape) {
    if (ne === 0) elements = 0;
  }
  if (elements !== 0) {
    for (const ne of shape) {
      if (elements > Number.MAX_SAFE_INTEGER / ne) cur.fail(BAD, dimsAt, `'${name}' has shape [${shape.join(', ')}]: more elements than 2^53`);
      elements *= ne;
    }
  }
  const typeAt = cur.pos;
  const typeId = cur.u32(`the type of '${name}'`);
  const type = ggmlType(typeId);
  if (!type) cur.fail(TYPE, typeAt, `'${name}' has type id ${typeId}, which is not a ggml tensor type this reader knows`);
  if (shape.length > 0 && shape[0] % type.blockSize !== 0) {
    cur.fail(BAD, dimsAt, `'${name}' is ${type.name} with rows of ${shape[0]} elements; ${type.name} rows must be a multiple of ${type.blockSize}`);
  }
  if (shape.length === 0 && type.blockSize !== 1) cur.fail(BAD, dimsAt, `'${name}' has no dimensions but ${type.name} needs rows of ${type.blockSize}`);
  const bytes = (elements / type.blockSize) * type.blockBytes;
  const offAt = cur.pos;
  const off = cur.u64(`the data offset of '${name}'`);
  if (typeof off === 'bigint' || off > cur.size) cur.fail(SHORT, offAt, `'${name}' has data offset ${off}, past the end of the ${cur.size}-byte file`);
  if (off % alignment !== 0) cur.fail(BAD, offAt, `'${name}' has data offset ${off}, not a multiple of the alignment ${alignment}`);
  return { name, type, shape, elements, bytes, relOffset: off, infoAt };
}

function checkPlacement(cur: Cursor, tensors: TensorInfo[], dataOffset: number): void {
  for (const t of tensors) {
    const end = dataOffset + t.relOffset + t.bytes;
    if (end > cur.size) {
      cur.fail(SHORT, t.infoAt, `tensor '${t.name}' (${t.bytes} bytes at ${dataOffset + t.relOffset}) ends at byte ${end}, past the end of the ${cur.size}-byte file`);
    }
  }
  const sorted = tensors.filter((t) => t.bytes > 0).sort((a, b) => a.relOffset - b.relOffset);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1], b = sorted[i];
    if (b.relOffset < a.relOffset + a.bytes) {
      cur.fail(BAD, b.infoAt, `tensors '${a.name}' (data ${a.relOffset}..${a.relOffset + a.bytes}) and '${b.name}' (data from ${b.relOffset}) overlap`);
    }
  }
}

/** Parses the header, metadata and tensor infos of a source and checks every tensor's place in the file. */
export function parseGguf(src: ByteSource, path: string): ParsedHeader {
  return readHeader(new Cursor(src, path));
}

class Tensor implements GgufTensor {
  readonly name: string;
  readonly ggmlType: number;
  readonly typeName: string;
  readonly type: GgufTensor['type'];
  readonly shape: readonly number[];
  readonly elements: number;
  readonly offset: number;
  readonly bytes: number;
  readonly rows: number;
  readonly cols: number;
  // A mapped file's view is kept (a window on the mapping: it holds no
  // memory, and close() detaches it). A read file's bytes are not: the file
  // object must not keep a copy of every tensor read, so each access reads
  // again. (Not WeakRefs: V8 keeps a WeakRef's target alive until the current
  // job ends, so a synchronous loop over files kept every tensor it touched.)
  private cachedData: Uint8Array | null = null;
  private cachedMatrix: QuantizedMatrix | null = null;

  constructor(
    private readonly src: ByteSource,
    info: TensorInfo,
    dataOffset: number,
  ) {
    this.name = info.name;
    this.ggmlType = info.type.id;
    this.typeName = info.type.name;
    this.type = info.type.weightType;
    this.shape = Object.freeze(info.shape.slice());
    this.elements = info.elements;
    this.offset = dataOffset + info.relOffset;
    this.bytes = info.bytes;
    this.cols = info.shape.length > 0 ? info.shape[0] : 1;
    this.rows = this.cols === 0 ? 0 : info.elements / this.cols;
  }

  get data(): Uint8Array {
    const cached = this.cachedData;
    if (cached !== null && cached.byteLength === this.bytes) return cached;
    const d = this.src.read(this.offset, this.bytes);
    if (this.src.mode === 'mmap') this.cachedData = d;
    return d;
  }

  readInto(into: Uint8Array): Uint8Array {
    return this.src.readInto(this.offset, this.bytes, into);
  }

  get matrix(): QuantizedMatrix | null {
    if (this.type === null || this.cols === 0) return null;
    const cached = this.cachedMatrix;
    if (cached !== null && cached.data.byteLength === this.bytes) return cached;
    const m: QuantizedMatrix = Object.freeze({ type: this.type, rows: this.rows, cols: this.cols, data: this.data });
    if (this.src.mode === 'mmap') this.cachedMatrix = m;
    return m;
  }

  toJSON(): object {
    const { name, ggmlType, typeName, type, shape, elements, offset, bytes, rows, cols } = this;
    return { name, ggmlType, typeName, type, shape, elements, offset, bytes, rows, cols };
  }
}

class File implements GgufFile {
  readonly mode: 'mmap' | 'read';
  readonly fileSize: number;
  readonly version: number;
  readonly alignment: number;
  readonly dataOffset: number;
  readonly metadata: Readonly<Record<string, GgufPlainValue>>;
  readonly typedMetadata: Readonly<Record<string, GgufValue>>;
  readonly tensors: readonly GgufTensor[];
  private readonly byName: Map<string, GgufTensor>;

  constructor(
    readonly path: string,
    private readonly src: ByteSource,
    h: ParsedHeader,
  ) {
    this.mode = src.mode;
    this.fileSize = src.size;
    this.version = h.version;
    this.alignment = h.alignment;
    this.dataOffset = h.dataOffset;
    // No prototype: a key such as "__proto__" in a file is just a key.
    const plain: Record<string, GgufPlainValue> = Object.create(null);
    const typed: Record<string, GgufValue> = Object.create(null);
    for (const k of Object.keys(h.typedMetadata)) {
      typed[k] = h.typedMetadata[k];
      plain[k] = plainOf(h.typedMetadata[k]);
    }
    this.metadata = Object.freeze(plain);
    this.typedMetadata = Object.freeze(typed);
    this.tensors = Object.freeze(h.tensors.map((t) => new Tensor(src, t, h.dataOffset)));
    this.byName = new Map(this.tensors.map((t) => [t.name, t]));
  }

  tensor(name: string): GgufTensor | undefined {
    return this.byName.get(name);
  }
  prefetch(t: GgufTensor): void {
    this.src.prefetch(t.offset, t.bytes);
  }
  evict(t: GgufTensor, start = 0, end = t.bytes): void {
    const a = Math.max(0, Math.min(start, t.bytes)), b = Math.max(a, Math.min(end, t.bytes));
    this.src.evict(t.offset + a, b - a);
  }
  checkIntact(): void {
    this.src.checkIntact();
  }
  close(): void {
    this.src.close();
  }
}

/**
 * Opens a GGUF v2/v3 file: metadata, tensor infos, and each tensor's bytes as
 * a view on the file (mapped by the native addon where it loads; read on
 * demand otherwise). Throws a QkError naming the problem and its byte offset
 * for any malformed or truncated file.
 */
export function openGguf(path: string, opts?: OpenGgufOptions): GgufFile {
  if (typeof path !== 'string' || path.length === 0) throw new QkError('ERR_QK_ARG', `path must be a non-empty string; got ${typeof path}`);
  const src = openSource(path, opts?.mmap !== false);
  try {
    const f = new File(path, src, parseGguf(src, path));
    src.checkIntact();
    return f;
  } catch (e) {
    src.close();
    if (e instanceof QkError) throw e;
    // Nothing else should escape the checks; if something does, it is still this file's fault.
    throw new GgufError(BAD, path, -1, `cannot be read: ${(e as Error).message}`);
  }
}

// Metadata values: decoding from a file, the typed <-> plain views, the
// writer's type inference for plain JavaScript values, and encoding.
import { QkError } from '../errors';
import { Cursor } from './cursor';
import { BAD, TYPE } from './errors';
import {
  GGUF_MAX_ARRAY_DEPTH, GGUF_SCALAR_BYTES, GGUF_VALUE_TYPES, GGUF_VALUE_TYPE_ID,
  type GgufArray, type GgufArrayItems, type GgufPlainValue, type GgufValue, type GgufValueType,
} from './types';

type NumericArrayCtor =
  | Uint8ArrayConstructor | Int8ArrayConstructor | Uint16ArrayConstructor | Int16ArrayConstructor
  | Uint32ArrayConstructor | Int32ArrayConstructor | Float32ArrayConstructor | Float64ArrayConstructor
  | BigUint64ArrayConstructor | BigInt64ArrayConstructor;

const ARRAY_CTOR: Partial<Record<GgufValueType, NumericArrayCtor>> = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array,
  int32: Int32Array, float32: Float32Array, float64: Float64Array, uint64: BigUint64Array, int64: BigInt64Array,
};

/** Smallest encoding of one item, used to bound counts before anything is allocated. */
function minItemBytes(t: GgufValueType): number {
  return GGUF_SCALAR_BYTES[t] ?? (t === 'string' ? 8 : 12);
}

function valueType(cur: Cursor, what: string): GgufValueType {
  const at = cur.pos;
  const id = cur.u32(what);
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined) cur.fail(TYPE, at, `${what} is ${id}; GGUF value types are 0 to ${GGUF_VALUE_TYPES.length - 1}`);
  return t;
}

function safeBig(v: bigint): number | bigint {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

export function readValue(cur: Cursor, key: string): GgufValue {
  const type = valueType(cur, `the value type of '${key}'`);
  return readTyped(cur, type, key, 0);
}

function readTyped(cur: Cursor, type: GgufValueType, key: string, depth: number): GgufValue {
  const what = `the value of '${key}'`;
  switch (type) {
    case 'array':
      return readArray(cur, key, depth + 1);
    case 'string':
      return { type, value: cur.string(what) };
    case 'bool': {
      const at = cur.pos;
      const b = cur.u8(what);
      if (b > 1) cur.fail(BAD, at, `${what} is a bool stored as ${b}; a bool is 0 or 1`);
      return { type, value: b === 1 };
    }
    case 'uint64':
      return { type, value: cur.u64(what) };
    case 'int64':
      return { type, value: cur.i64(what) };
    default: {
      const n = cur.numbers(new ARRAY_CTOR[type]!(1), GGUF_SCALAR_BYTES[type]!, what);
      return { type, value: n[0] as number } as GgufValue;
    }
  }
}

function readArray(cur: Cursor, key: string, depth: number): GgufArray {
  const at = cur.pos;
  if (depth > GGUF_MAX_ARRAY_DEPTH) cur.fail(BAD, at, `'${key}' nests arrays more than ${GGUF_MAX_ARRAY_DEPTH} deep`);
  const itemType = valueType(cur, `the item type of array '${key}'`);
  const n = cur.count(`the item count of array '${key}'`, minItemBytes(itemType));
  const what = `the items of array '${key}'`;
  const ctor = ARRAY_CTOR[itemType];
  if (ctor) {
    const w = GGUF_SCALAR_BYTES[itemType]!;
    return { type: 'array', itemType, value: cur.numbers(new ctor(n), w, what) };
  }
  if (itemType === 'bool') {
    const start = cur.pos;
    const b = cur.bytes(n, what);
    const out: boolean[] = new Array(n);
    for (let i = 0; i < n; i++) {
      if (b[i] > 1) cur.fail(BAD, start + i, `item ${i} of array '${key}' is a bool stored as ${b[i]}; a bool is 0 or 1`);
      out[i] = b[i] === 1;
    }
    return { type: 'array', itemType, value: out };
  }
  // Strings and arrays are pushed one by one: each has proven its bytes before it exists.
  if (itemType === 'string') {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(cur.string(`item ${i} of array '${key}'`));
    return { type: 'array', itemType, value: out };
  }
  const out: GgufArray[] = [];
  for (let i = 0; i < n; i++) out.push(readArray(cur, key, depth + 1));
  return { type: 'array', itemType, value: out };
}

export function plainOf(v: GgufValue): GgufPlainValue {
  if (v.type !== 'array') return v.value;
  if (v.itemType === 'array') return (v.value as GgufArray[]).map(plainOf);
  return v.value;
}

// ---- the writer's side ----

function argError(key: string, problem: string): QkError {
  return new QkError('ERR_QK_ARG', `metadata '${key}': ${problem}`);
}

const INT_RANGE: Partial<Record<GgufValueType, [number, number]>> = {
  uint8: [0, 0xff], int8: [-0x80, 0x7f], uint16: [0, 0xffff], int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff], int32: [-0x80000000, 0x7fffffff],
};

function isTyped(v: unknown): v is GgufValue {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v) &&
    typeof (v as { type?: unknown }).type === 'string' && 'value' in v
  );
}

function arrayItemTypeOf(a: ArrayBufferView): GgufValueType | null {
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigUint64Array) return 'uint64';
  if (a instanceof BigInt64Array) return 'int64';
  return null;
}

/**
 * A metadata value as writeGguf will store it. Typed values ({type, value}) are
 * checked; plain ones get a type the way llama.cpp's files use them: strings,
 * bools, non-negative integers as uint32 (int32 if negative, 64-bit beyond),
 * other numbers as float32, bigints as uint64/int64, typed arrays by their
 * element type, integer arrays as int32 (int64 beyond), other number arrays as
 * float32, nested arrays as arrays of arrays.
 */
export function toTyped(key: string, v: unknown, depth = 0): GgufValue {
  if (depth > GGUF_MAX_ARRAY_DEPTH) throw argError(key, `arrays nest more than ${GGUF_MAX_ARRAY_DEPTH} deep`);
  if (isTyped(v)) return checkTyped(key, v, depth);
  switch (typeof v) {
    case 'string':
      return { type: 'string', value: v };
    case 'boolean':
      return { type: 'bool', value: v };
    case 'bigint':
      return checkTyped(key, { type: v < 0n ? 'int64' : 'uint64', value: v }, depth);
    case 'number':
      if (Number.isInteger(v) && !Object.is(v, -0)) {
        if (v >= 0 && v <= 0xffffffff) return { type: 'uint32', value: v };
        if (v < 0 && v >= -0x80000000) return { type: 'int32', value: v };
        if (Number.isSafeInteger(v)) return { type: v < 0 ? 'int64' : 'uint64', value: v };
      }
      return { type: 'float32', value: v };
  }
  if (ArrayBuffer.isView(v)) {
    const t = arrayItemTypeOf(v);
    if (!t) throw argError(key, `${v.constructor.name} is not a GGUF array type`);
    return { type: 'array', itemType: t, value: v as GgufArrayItems };
  }
  if (Array.isArray(v)) return inferArray(key, v, depth);
  throw argError(key, `${v === null ? 'null' : typeof v} is not a GGUF value (string, number, bigint, boolean, array, typed array or {type, value})`);
}

function inferArray(key: string, a: unknown[], depth: number): GgufArray {
  if (a.every((x) => typeof x === 'string')) return { type: 'array', itemType: 'string', value: a as string[] };
  if (a.every((x) => typeof x === 'boolean')) return { type: 'array', itemType: 'bool', value: a as boolean[] };
  if (a.every((x) => typeof x === 'number')) {
    const nums = a as number[];
    if (nums.every((x) => Number.isInteger(x) && x >= -0x80000000 && x <= 0x7fffffff && !Object.is(x, -0))) {
      return { type: 'array', itemType: 'int32', value: Int32Array.from(nums) };
    }
    if (nums.every((x) => Number.isSafeInteger(x))) return { type: 'array', itemType: 'int64', value: BigInt64Array.from(nums, (x) => BigInt(x)) };
    return { type: 'array', itemType: 'float32', value: Float32Array.from(nums) };
  }
  if (a.every((x) => typeof x === 'bigint')) {
    const big = a as bigint[];
    return big.some((x) => x < 0n)
      ? checkTyped(key, { type: 'array', itemType: 'int64', value: BigInt64Array.from(big) }, depth) as GgufArray
      : checkTyped(key, { type: 'array', itemType: 'uint64', value: BigUint64Array.from(big) }, depth) as GgufArray;
  }
  const inner = a.map((x) => toTyped(key, x, depth + 1));
  if (inner.every((x) => x.type === 'array')) return { type: 'array', itemType: 'array', value: inner as GgufArray[] };
  throw argError(key, 'an array must hold items of one kind (all strings, all numbers, all bools, all bigints or all arrays)');
}

function checkTyped(key: string, v: GgufValue, depth: number): GgufValue {
  const { type } = v;
  const value = (v as { value: unknown }).value;
  if (!(GGUF_VALUE_TYPES as readonly string[]).includes(type)) throw argError(key, `unknown GGUF type '${type}'`);
  const bad = (want: string) => argError(key, `a ${type} value must be ${want}; got ${typeof value === 'bigint' ? `${value}n` : String(value)}`);
  switch (type) {
    case 'string':
      if (typeof value !== 'string') throw bad('a string');
      return v;
    case 'bool':
      if (typeof value !== 'boolean') throw bad('a boolean');
      return v;
    case 'float32':
    case 'float64':
      if (typeof value !== 'number') throw bad('a number');
      return v;
    case 'uint64':
    case 'int64': {
      const lo = type === 'uint64' ? 0n : -(2n ** 63n);
      const hi = type === 'uint64' ? 2n ** 64n - 1n : 2n ** 63n - 1n;
      if (typeof value === 'number' && Number.isSafeInteger(value) && BigInt(value) >= lo) return v;
      if (typeof value === 'bigint' && value >= lo && value <= hi) return v;
      throw bad(`an integer in [${lo}, ${hi}]`);
    }
    case 'array':
      return checkArray(key, v as GgufArray, depth);
    default: {
      const [lo, hi] = INT_RANGE[type]!;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) throw bad(`an integer in [${lo}, ${hi}]`);
      return v;
    }
  }
}

function checkArray(key: string, v: GgufArray, depth: number): GgufArray {
  const { itemType, value } = v;
  if (!(GGUF_VALUE_TYPES as readonly string[]).includes(itemType)) throw argError(key, `unknown GGUF array item type '${itemType}'`);
  const ctor = ARRAY_CTOR[itemType];
  if (ctor) {
    if (value instanceof ctor) return v;
    if (!Array.isArray(value)) throw argError(key, `an array of ${itemType} must be a ${ctor.name} or an array of numbers`);
    // A plain array of numbers: converted after a range check of every item.
    const items = value.map((x) => checkTyped(key, { type: itemType, value: x } as GgufValue, depth).value as number | bigint);
    const big = itemType === 'uint64' || itemType === 'int64';
    return { type: 'array', itemType, value: big ? (ctor as BigUint64ArrayConstructor).from(items, (x) => BigInt(x)) : (ctor as Float64ArrayConstructor).from(items as number[]) } as GgufArray;
  }
  if (!Array.isArray(value)) throw argError(key, `an array of ${itemType} must be a JavaScript array`);
  if (itemType === 'array') {
    return { type: 'array', itemType, value: value.map((x) => {
      const t = toTyped(key, x, depth + 1);
      if (t.type !== 'array') throw argError(key, 'an array of arrays holds only arrays');
      return t;
    }) };
  }
  for (const x of value) checkTyped(key, { type: itemType, value: x } as GgufValue, depth);
  return v;
}

// ---- encoding ----

/** Grows as needed; used for the header and metadata, which are small next to tensor data. */
export class ByteWriter {
  private buf: Uint8Array = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.length + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // reserve() may replace buf and view, so it is called before either is read.
  u8(v: number): void {
    const at = this.reserve(1);
    this.buf[at] = v;
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  zeros(n: number): void {
    const at = this.reserve(n);
    this.buf.fill(0, at, this.length);
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function scalar(w: ByteWriter, type: GgufValueType, value: unknown): void {
  switch (type) {
    case 'string':
      return w.string(value as string);
    case 'bool':
      return w.u8(value ? 1 : 0);
    case 'uint64':
    case 'int64':
      return w.u64(value as number | bigint);
    default: {
      const a = new ARRAY_CTOR[type]!(1) as Float64Array;
      a[0] = value as number;
      return w.bytes(littleEndian(a, GGUF_SCALAR_BYTES[type]!));
    }
  }
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndian(a: ArrayBufferView, width: number): Uint8Array {
  const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (HOST_LE || width === 1) return b;
  const c = Uint8Array.from(b);
  for (let i = 0; i < c.length; i += width) c.subarray(i, i + width).reverse();
  return c;
}

/** Encodes a value already passed through toTyped: type id, then the value. */
export function encodeValue(w: ByteWriter, v: GgufValue): void {
  w.u32(GGUF_VALUE_TYPE_ID[v.type]);
  encodeBody(w, v);
}

function encodeBody(w: ByteWriter, v: GgufValue): void {
  if (v.type !== 'array') return scalar(w, v.type, v.value);
  w.u32(GGUF_VALUE_TYPE_ID[v.itemType]);
  w.u64(v.value.length);
  if (ARRAY_CTOR[v.itemType]) {
    w.bytes(littleEndian(v.value as ArrayBufferView, GGUF_SCALAR_BYTES[v.itemType]!));
  } else if (v.itemType === 'array') {
    for (const x of v.value as GgufArray[]) encodeBody(w, x);
  } else {
    for (const x of v.value as unknown[]) scalar(w, v.itemType, x);
  }
}

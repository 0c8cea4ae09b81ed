// Argument checks shared by both backends. They build strings only when they
// fail, so a valid call allocates nothing here.
import { QkError } from './errors';
import { INTERLEAVED_TYPES, isWeightType, layoutBytes, TYPES, WEIGHT_TYPES, type Layout, type TypeInfo, type WeightType } from './types';

const MAX_DIM = 2 ** 40;

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `'${v}'`;
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

export function checkType(type: unknown, name = 'type'): TypeInfo {
  if (!isWeightType(type)) {
    throw new QkError('ERR_QK_TYPE', `${name} must be one of ${WEIGHT_TYPES.join(', ')}; got ${describe(type)}`);
  }
  return TYPES[type];
}

export function checkCount(v: unknown, name: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > MAX_DIM) {
    throw new QkError('ERR_QK_SHAPE', `${name} must be an integer >= ${min}; got ${describe(v)}`);
  }
  return v;
}

export function checkCols(t: TypeInfo, cols: unknown, name: string): number {
  const c = checkCount(cols, name, 1);
  if (c % t.blockSize !== 0) {
    throw new QkError('ERR_QK_SHAPE', `${name} must be a multiple of ${t.blockSize} for ${t.name} (its block size); got ${c}`);
  }
  return c;
}

function isDetached(buf: ArrayBufferLike): boolean {
  const d = (buf as { detached?: boolean }).detached;
  return d === true || buf.byteLength === 0;
}

export function checkF32(a: unknown, name: string, want: number, exact: boolean): Float32Array {
  if (!(a instanceof Float32Array)) throw new QkError('ERR_QK_ARG', `${name} must be a Float32Array; got ${describe(a)}`);
  return checkLength(a, name, want, exact, 'floats') as Float32Array;
}

export function checkU8(a: unknown, name: string, want: number, exact: boolean): Uint8Array {
  if (!(a instanceof Uint8Array)) throw new QkError('ERR_QK_ARG', `${name} must be a Uint8Array; got ${describe(a)}`);
  return checkLength(a, name, want, exact, 'bytes') as Uint8Array;
}

function checkLength(a: Float32Array | Uint8Array, name: string, want: number, exact: boolean, unit: string): Float32Array | Uint8Array {
  const n = a.length;
  if (exact ? n === want : n >= want) return a;
  if (want > 0 && isDetached(a.buffer)) throw new QkError('ERR_QK_ARG', `${name}'s ArrayBuffer is detached (expected ${want} ${unit})`);
  throw new QkError('ERR_QK_LENGTH', `${name} must hold ${exact ? 'exactly' : 'at least'} ${want} ${unit}; got ${n}`);
}

export interface MatrixLike {
  readonly type: WeightType;
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
  readonly layout?: Layout;
  readonly inputOrder?: Int32Array;
}

/** The matrix's layout: absent means 'ggml'. */
export function checkLayout(w: MatrixLike): Layout {
  const l = w.layout;
  if (l === undefined || l === 'ggml') return 'ggml';
  if (l === 'interleaved16') {
    if (!INTERLEAVED_TYPES.includes(w.type)) throw new QkError('ERR_QK_ARG', `w.layout 'interleaved16' does not exist for ${w.type}; only prepare() makes it`);
    return l;
  }
  throw new QkError('ERR_QK_ARG', `w.layout must be 'ggml' or 'interleaved16'; got ${describe(l)}`);
}

export function checkMatrix(w: unknown): TypeInfo {
  if (typeof w !== 'object' || w === null) throw new QkError('ERR_QK_ARG', `w must be a QuantizedMatrix {type, rows, cols, data}; got ${describe(w)}`);
  const m = w as MatrixLike;
  const t = checkType(m.type, 'w.type');
  const rows = checkCount(m.rows, 'w.rows', 0);
  const cols = checkCols(t, m.cols, 'w.cols');
  const layout = checkLayout(m);
  checkU8(m.data, 'w.data', layoutBytes(t.name, rows, cols, layout), true);
  if (m.inputOrder !== undefined) checkInputOrder(m.inputOrder, cols);
  return t;
}

// An order is checked once (O(cols) and a scratch array), then remembered:
// matmul sees the same matrix on every call and must not allocate.
const CHECKED_ORDERS = new WeakMap<Int32Array, number>();
function checkInputOrder(order: unknown, cols: number): void {
  if (!(order instanceof Int32Array)) throw new QkError('ERR_QK_ARG', `w.inputOrder must be an Int32Array; got ${describe(order)}`);
  if (CHECKED_ORDERS.get(order) === cols) return;
  if (order.length !== cols) throw new QkError('ERR_QK_LENGTH', `w.inputOrder has ${order.length} entries; w.cols is ${cols}`);
  const seen = new Uint8Array(cols);
  for (let j = 0; j < cols; j++) {
    const k = order[j];
    if (k < 0 || k >= cols || seen[k]) throw new QkError('ERR_QK_VALUE', `w.inputOrder is not a permutation of 0..${cols - 1} (entry ${j} is ${k})`);
    seen[k] = 1;
  }
  CHECKED_ORDERS.set(order, cols);
}

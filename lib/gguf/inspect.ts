// What `qkernels inspect` prints: metadata and a tensor table, as text for
// people or as JSON for machines (bigints as decimal strings).
import type { GgufArray, GgufFile, GgufValue } from './types';

export interface InspectOptions {
  /** list every array item (default: the first few) */
  full?: boolean;
}

const TEXT_ITEMS = 8;
const JSON_ITEMS = 64;

/** The shortest decimal that reads back as the same float32. */
export function f32String(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  for (let p = 1; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(v);
}

function numberText(type: string, v: number | bigint): string {
  return type === 'float32' && typeof v === 'number' ? f32String(v) : String(v);
}

function itemsOf(a: GgufArray): unknown[] {
  const v = a.value as ArrayLike<unknown>;
  return Array.prototype.slice.call(v, 0, v.length) as unknown[];
}

function valueText(v: GgufValue, full: boolean): string {
  switch (v.type) {
    case 'string':
      return JSON.stringify(v.value.length > 200 && !full ? v.value.slice(0, 200) + '…' : v.value);
    case 'array': {
      const n = v.value.length;
      const limit = full ? n : Math.min(n, TEXT_ITEMS);
      const shown: string[] = [];
      const items = v.value as ArrayLike<unknown>;
      for (let i = 0; i < limit; i++) {
        const x = items[i];
        shown.push(
          v.itemType === 'array' ? valueText(x as GgufArray, full)
          : v.itemType === 'string' ? JSON.stringify(x)
          : numberText(v.itemType, x as number | bigint),
        );
      }
      return `[${v.itemType} x ${n}] [${shown.join(', ')}${limit < n ? ', …' : ''}]`;
    }
    default:
      return typeof v.value === 'boolean' ? String(v.value) : numberText(v.type, v.value);
  }
}

// JSON has no bigints, NaN or infinities: those become strings.
function jsonNumber(type: string, x: number | bigint): number | string {
  if (typeof x === 'bigint') return x.toString();
  if (!Number.isFinite(x)) return String(x);
  return type === 'float32' ? Number(f32String(x)) : x;
}

function jsonValue(v: GgufValue, full: boolean): unknown {
  if (v.type !== 'array') {
    const value = typeof v.value === 'string' || typeof v.value === 'boolean' ? v.value : jsonNumber(v.type, v.value);
    return { type: v.type, value };
  }
  const n = v.value.length;
  const limit = full ? n : Math.min(n, JSON_ITEMS);
  const items = itemsOf(v).slice(0, limit).map((x) =>
    v.itemType === 'array' ? jsonValue(x as GgufArray, full)
    : typeof x === 'number' || typeof x === 'bigint' ? jsonNumber(v.itemType, x)
    : x,
  );
  return { type: 'array', itemType: v.itemType, length: n, value: items, ...(limit < n ? { truncated: true } : {}) };
}

export function groupDigits(n: number): string {
  return n.toLocaleString('en-US');
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(n >= 100 ? 1 : 2)} ${units[u]}`;
}

function summary(f: GgufFile) {
  const elements = f.tensors.reduce((s, t) => s + t.elements, 0);
  const bytes = f.tensors.reduce((s, t) => s + t.bytes, 0);
  const types = new Map<string, number>();
  for (const t of f.tensors) types.set(t.typeName, (types.get(t.typeName) ?? 0) + 1);
  return { elements, bytes, bitsPerWeight: elements > 0 ? (bytes * 8) / elements : 0, types: Object.fromEntries(types) };
}

export function inspectJson(f: GgufFile, opts: InspectOptions = {}): object {
  const metadata: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(f.typedMetadata)) metadata[k] = jsonValue(v, opts.full === true);
  return {
    path: f.path,
    version: f.version,
    fileSize: f.fileSize,
    alignment: f.alignment,
    dataOffset: f.dataOffset,
    metadata,
    tensors: f.tensors.map((t) => ({
      name: t.name, type: t.typeName, ggmlType: t.ggmlType, supported: t.type !== null,
      shape: t.shape, elements: t.elements, offset: t.offset, bytes: t.bytes,
    })),
    summary: summary(f),
  };
}

export function table(rows: string[][], right: boolean[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (right[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

export function inspectText(f: GgufFile, opts: InspectOptions = {}): string {
  const full = opts.full === true;
  const s = summary(f);
  const out: string[] = [];
  out.push(`${f.path}: GGUF v${f.version}, ${groupDigits(f.fileSize)} bytes (${humanBytes(f.fileSize)}), alignment ${f.alignment}, data at byte ${f.dataOffset}`);
  const keys = Object.keys(f.typedMetadata);
  out.push('', `metadata (${keys.length}):`);
  if (keys.length > 0) {
    out.push(table(keys.map((k) => {
      const v = f.typedMetadata[k];
      return ['  ' + k, v.type === 'array' ? 'array' : v.type, valueText(v, full)];
    }), [false, false, false]));
  }
  out.push('', `tensors (${f.tensors.length}):`);
  if (f.tensors.length > 0) {
    const rows = [['  name', 'type', 'shape', 'bytes']];
    for (const t of f.tensors) rows.push(['  ' + t.name, t.type === null ? `${t.typeName}*` : t.typeName, `[${t.shape.join(', ')}]`, groupDigits(t.bytes)]);
    out.push(table(rows, [false, false, false, true]));
    if (f.tensors.some((t) => t.type === null)) out.push('  * a type qkernels lists but cannot compute with');
  }
  const types = Object.entries(s.types).map(([t, n]) => `${t} x ${n}`).join(', ');
  out.push(
    '',
    `total: ${f.tensors.length} tensors, ${groupDigits(s.elements)} weights, ${humanBytes(s.bytes)}, ${s.bitsPerWeight.toFixed(2)} bits per weight${types ? ` (${types})` : ''}`,
  );
  return out.join('\n');
}

// What `qkernels inspect` prints for a safetensors file, in the style of the
// GGUF output (lib/gguf/inspect.ts): the header, the metadata, a tensor table.
import { groupDigits, humanBytes, table } from './gguf/inspect';
import type { SafetensorsFile } from './safetensors';

export interface SafetensorsInspectOptions {
  /** metadata values in full (default: the first 200 characters) */
  full?: boolean;
}

const TEXT_CHARS = 200;

/**
 * Whether a file's first bytes look like safetensors: a header length below
 * 2^32 (the limit is 1e8), then '{'. GGUF's magic and version make bytes 4-7 non-zero.
 */
export function looksLikeSafetensors(first9: Uint8Array): boolean {
  return first9.length >= 9 && first9[4] === 0 && first9[5] === 0 && first9[6] === 0 && first9[7] === 0 && first9[8] === 0x7b;
}

function summary(f: SafetensorsFile, fileSize: number) {
  const tensors = [...f.tensors.values()];
  const bytes = tensors.reduce((s, t) => s + t.byteLength, 0);
  const elements = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  const dtypes = new Map<string, number>();
  for (const t of tensors) dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + 1);
  // The reader checked that the tensors tile the buffer up to the file's end, so the data starts here.
  const dataOffset = fileSize - bytes;
  return { tensors, bytes, elements, dtypes: Object.fromEntries(dtypes), dataOffset, headerLength: dataOffset - 8 };
}

export function inspectSafetensorsJson(f: SafetensorsFile, fileSize: number): object {
  const s = summary(f, fileSize);
  return {
    path: f.path,
    format: 'safetensors',
    fileSize,
    headerLength: s.headerLength,
    dataOffset: s.dataOffset,
    metadata: { ...f.metadata },
    tensors: s.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, offset: t.offset, bytes: t.byteLength })),
    summary: { tensors: s.tensors.length, elements: s.elements, bytes: s.bytes, dtypes: s.dtypes },
  };
}

export function inspectSafetensorsText(f: SafetensorsFile, fileSize: number, opts: SafetensorsInspectOptions = {}): string {
  const s = summary(f, fileSize);
  const out: string[] = [];
  out.push(`${f.path}: safetensors, ${groupDigits(fileSize)} bytes (${humanBytes(fileSize)}), header ${groupDigits(s.headerLength)} bytes, data at byte ${s.dataOffset}`);
  const keys = Object.keys(f.metadata);
  out.push('', `metadata (${keys.length}):`);
  if (keys.length > 0) {
    out.push(table(keys.map((k) => {
      const v = f.metadata[k];
      return ['  ' + k, JSON.stringify(v.length > TEXT_CHARS && opts.full !== true ? v.slice(0, TEXT_CHARS) + '…' : v)];
    }), [false, false]));
  }
  out.push('', `tensors (${s.tensors.length}):`);
  if (s.tensors.length > 0) {
    const rows = [['  name', 'dtype', 'shape', 'bytes']];
    for (const t of s.tensors) rows.push(['  ' + t.name, t.dtype, `[${t.shape.join(', ')}]`, groupDigits(t.byteLength)]);
    out.push(table(rows, [false, false, false, true]));
  }
  const dtypes = Object.entries(s.dtypes).map(([t, n]) => `${t} x ${n}`).join(', ');
  out.push('', `total: ${s.tensors.length} tensors, ${groupDigits(s.bytes)} bytes (${humanBytes(s.bytes)}), ${groupDigits(s.elements)} elements${dtypes ? ` (${dtypes})` : ''}`);
  return out.join('\n');
}

// writeGguf: GGUF v3 as llama.cpp writes it (reference §7.3): header, metadata,
// tensor infos, zero padding to the alignment, then each tensor padded to it.
// Tensor data is streamed: each tensor's bytes are fetched only when the
// writer reaches it, and the next one is fetched while the last is written.
// Everything goes to a temporary file renamed into place at the end, so a
// failure never leaves a truncated file at `path`.
import * as fs from 'fs';
import * as nodePath from 'path';
import { QkError } from '../errors';
import { isWeightType, TYPES } from '../types';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_ALIGNMENT, GGUF_MAX_DIMS, GGUF_MAX_TENSOR_NAME, ggmlType,
  type GgmlTypeInfo, type GgufMetadataInput, type GgufTensorInput, type GgufValue, type WriteGgufOptions, type WriteGgufResult,
} from './types';
import { ByteWriter, encodeValue, toTyped } from './values';

interface PlannedTensor {
  input: GgufTensorInput;
  name: string;
  type: GgmlTypeInfo;
  shape: number[];
  bytes: number;
  offset: number; // relative to the data section
}

const arg = (msg: string) => new QkError('ERR_QK_ARG', msg);

function metadataEntries(m: GgufMetadataInput | undefined): [string, GgufValue][] {
  if (m === undefined) return [];
  if (typeof m !== 'object' || m === null) throw arg(`metadata must be an object or a Map; got ${m === null ? 'null' : typeof m}`);
  const entries = m instanceof Map ? [...m.entries()] : Object.entries(m);
  return entries.map(([k, v]) => {
    if (typeof k !== 'string' || k.length === 0) throw arg('metadata keys must be non-empty strings');
    if (Buffer.byteLength(k, 'utf8') > 65535) throw arg(`metadata key '${k.slice(0, 40)}...' is longer than 65535 bytes`);
    return [k, toTyped(k, v)];
  });
}

function resolveAlignment(entries: [string, GgufValue][], requested: number | undefined): number {
  const i = entries.findIndex(([k]) => k === 'general.alignment');
  const check = (a: unknown, what: string): number => {
    if (typeof a !== 'number' || !Number.isInteger(a) || a < 1 || a > GGUF_MAX_ALIGNMENT || (a & (a - 1)) !== 0) {
      throw arg(`${what} must be a power of two in [1, ${GGUF_MAX_ALIGNMENT}]; got ${String(a)}`);
    }
    return a;
  };
  if (i >= 0) {
    const v = entries[i][1];
    if (v.type !== 'uint32') throw arg(`metadata 'general.alignment' must be a uint32 (llama.cpp rejects other types); it is a ${v.type}`);
    const a = check(v.value, "metadata 'general.alignment'");
    if (requested !== undefined && requested !== a) throw arg(`alignment ${requested} disagrees with metadata general.alignment = ${a}`);
    return a;
  }
  if (requested === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const a = check(requested, 'alignment');
  // Readers assume 32 unless told, so any other alignment must be in the file.
  if (a !== GGUF_DEFAULT_ALIGNMENT) entries.push(['general.alignment', { type: 'uint32', value: a }]);
  return a;
}

function planTensor(t: GgufTensorInput, i: number, names: Set<string>): Omit<PlannedTensor, 'offset'> {
  if (typeof t !== 'object' || t === null) throw arg(`tensors[${i}] must be an object`);
  const name = t.name;
  if (typeof name !== 'string' || name.length === 0) throw arg(`tensors[${i}].name must be a non-empty string`);
  if (Buffer.byteLength(name, 'utf8') > GGUF_MAX_TENSOR_NAME) throw arg(`tensor name '${name}' is longer than ${GGUF_MAX_TENSOR_NAME} bytes (ggml's limit)`);
  if (names.has(name)) throw arg(`tensor name '${name}' is used twice`);
  names.add(name);

  let type: GgmlTypeInfo | undefined;
  if (t.ggmlType !== undefined && t.ggmlType !== null) {
    type = typeof t.ggmlType === 'number' ? ggmlType(t.ggmlType) : undefined;
    if (!type) throw new QkError('ERR_QK_TYPE', `tensor '${name}': ggmlType ${String(t.ggmlType)} is not a ggml type id`);
  } else {
    const wt = t.type ?? (t.shape === undefined ? t.matrix?.type : undefined);
    if (!isWeightType(wt)) throw new QkError('ERR_QK_TYPE', `tensor '${name}': type must be a qkernels weight type or ggmlType an id; got ${String(wt)}`);
    type = ggmlType(TYPES[wt].ggmlId)!;
  }

  // The shape comes from `shape`, else from the matrix; `matrix` is only read
  // here when there is no shape, so a file-backed tensor is not touched early.
  let shape: number[];
  if (t.shape !== undefined) {
    if (!Array.isArray(t.shape)) throw arg(`tensor '${name}': shape must be an array`);
    shape = t.shape.slice();
  } else if (t.matrix) {
    shape = [t.matrix.cols, t.matrix.rows];
  } else {
    throw arg(`tensor '${name}' needs a shape (or a matrix)`);
  }
  if (shape.length > GGUF_MAX_DIMS) throw new QkError('ERR_QK_SHAPE', `tensor '${name}' has ${shape.length} dimensions; ggml allows at most ${GGUF_MAX_DIMS}`);
  let elements = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new QkError('ERR_QK_SHAPE', `tensor '${name}': dimensions must be integers >= 0; got [${shape.join(', ')}]`);
    elements *= d;
  }
  if (!Number.isSafeInteger(elements)) throw new QkError('ERR_QK_SHAPE', `tensor '${name}' of shape [${shape.join(', ')}] has more than 2^53 elements`);
  const cols = shape.length > 0 ? shape[0] : 1;
  if (cols % type.blockSize !== 0) {
    throw new QkError('ERR_QK_SHAPE', `tensor '${name}': ${type.name} rows must be a multiple of ${type.blockSize} elements; shape[0] is ${cols}`);
  }
  return { input: t, name, type, shape, bytes: (elements / type.blockSize) * type.blockBytes };
}

function encodeHeader(meta: [string, GgufValue][], tensors: PlannedTensor[], alignment: number): Uint8Array {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const [k, v] of meta) {
    w.string(k);
    encodeValue(w, v);
  }
  for (const t of tensors) {
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of t.shape) w.u64(d);
    w.u32(t.type.id);
    w.u64(t.offset);
  }
  w.zeros(pad(w.length, alignment));
  return w.result();
}

function pad(n: number, alignment: number): number {
  return (alignment - (n % alignment)) % alignment;
}

async function tensorBytes(t: PlannedTensor): Promise<Uint8Array> {
  const src = t.input;
  let d: unknown;
  try {
    // Read the property once: on a file-backed tensor, each read is a disk read.
    const raw = src.data;
    d = raw === undefined ? src.matrix?.data : typeof raw === 'function' ? await raw() : raw;
  } catch (e) {
    if (e instanceof QkError) throw e;
    throw arg(`tensor '${t.name}': its data function failed: ${(e as Error).message}`);
  }
  if (!(d instanceof Uint8Array)) throw arg(`tensor '${t.name}': data must be a Uint8Array (or a function returning one); got ${d === null ? 'null' : typeof d}`);
  if (d.byteLength !== t.bytes) {
    throw new QkError('ERR_QK_LENGTH', `tensor '${t.name}' (${t.type.name}, shape [${t.shape.join(', ')}]) needs exactly ${t.bytes} bytes; its data has ${d.byteLength}`);
  }
  return d;
}

// One write call moves at most this much; larger buffers are written in parts.
const WRITE_CHUNK = 1 << 30;

async function writeAll(fh: fs.promises.FileHandle, b: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < b.byteLength) {
    const n = Math.min(b.byteLength - done, WRITE_CHUNK);
    const { bytesWritten } = await fh.write(b, done, n, position + done);
    if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten}`);
    done += bytesWritten;
  }
}

// Temporary files being written. If the process exits first (process.exit, or
// a signal handler that calls it, as the CLI's do), they are removed.
const pending = new Set<string>();
let exitHookInstalled = false;

function track(tmp: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of pending) {
        try {
          fs.unlinkSync(p);
        } catch {
          /* already gone */
        }
      }
    });
  }
  pending.add(tmp);
}

/**
 * Removes the temporary files that earlier writes to `path` left when their
 * process was killed (SIGKILL, a crash, power loss): `.<name>.<pid>.<random>.tmp`
 * beside it, whose pid is no longer running. Returns what it removed.
 */
function removeStaleTemps(path: string): string[] {
  const dir = nodePath.dirname(path);
  const prefix = `.${nodePath.basename(path)}.`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix) || !n.endsWith('.tmp')) continue;
    const m = /^(\d+)\.[a-z0-9]+\.tmp$/.exec(n.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    try {
      fs.unlinkSync(nodePath.join(dir, n));
      removed.push(nodePath.join(dir, n));
    } catch {
      /* gone already, or not ours to remove */
    }
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tempPathFor(path: string): string {
  const dir = nodePath.dirname(path);
  const base = nodePath.basename(path);
  return nodePath.join(dir, `.${base}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
}

/**
 * Writes a GGUF v3 file. Tensor data may be given as bytes, a QuantizedMatrix,
 * or a function called when the writer reaches the tensor, so a model can be
 * written (or converted) without ever being in memory whole. Arrays of arrays
 * are written as the GGUF spec allows, but llama.cpp's reader refuses them.
 */
export async function writeGguf(path: string, opts: WriteGgufOptions): Promise<WriteGgufResult> {
  if (typeof path !== 'string' || path.length === 0) throw arg('path must be a non-empty string');
  if (typeof opts !== 'object' || opts === null) throw arg('writeGguf needs { metadata, tensors }');
  const meta = metadataEntries(opts.metadata);
  const alignment = resolveAlignment(meta, opts.alignment);
  const inputs = opts.tensors ?? [];
  if (!Array.isArray(inputs)) throw arg('tensors must be an array');
  const names = new Set<string>();
  let rel = 0;
  const tensors: PlannedTensor[] = inputs.map((t, i) => {
    const p = planTensor(t, i, names);
    const planned = { ...p, offset: rel };
    rel += p.bytes + pad(p.bytes, alignment);
    return planned;
  });
  const header = encodeHeader(meta, tensors, alignment);
  const total = header.byteLength + rel;
  const zeros = new Uint8Array(alignment);

  const staleRemoved = removeStaleTemps(path);
  const tmp = tempPathFor(path);
  let fh: fs.promises.FileHandle | null = null;
  try {
    // tracked before it exists: a signal while the open is in flight must still remove it
    track(tmp);
    fh = await fs.promises.open(tmp, 'wx');
    await writeAll(fh, header, 0);
    let pos = header.byteLength;
    let bytesDone = pos;
    let next: Promise<Uint8Array> | null = tensors.length > 0 ? tensorBytes(tensors[0]) : null;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const data = await next!;
      const writing = writeAll(fh, data, pos);
      // Produce the next tensor while this one is on its way to the disk.
      next = i + 1 < tensors.length ? tensorBytes(tensors[i + 1]) : null;
      // A rejection of `next` is handled when it is awaited; this keeps it from being reported as unhandled meanwhile.
      next?.catch(() => undefined);
      await writing;
      const p = pad(t.bytes, alignment);
      if (p > 0) await writeAll(fh, zeros.subarray(0, p), pos + t.bytes);
      pos += t.bytes + p;
      bytesDone = pos;
      opts.onProgress?.({ tensorsDone: i + 1, tensors: tensors.length, bytesDone, bytes: total, name: t.name });
    }
    if (pos !== total) throw new Error(`wrote ${pos} bytes, planned ${total}`);
    await fh.datasync();
    await fh.close();
    fh = null;
    await fs.promises.rename(tmp, path);
    pending.delete(tmp);
    return { path, bytes: total, tensors: tensors.length, staleRemoved };
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    pending.delete(tmp);
    if (e instanceof QkError) throw e;
    const err = new QkError('ERR_QK_ARG', `cannot write '${path}': ${(e as Error).message}`);
    (err as { cause?: unknown }).cause = e;
    throw err;
  }
}

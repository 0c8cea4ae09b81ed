// Where a GGUF file's bytes come from: a mapping made by the native addon
// (views, no copies, paged in on demand) or a descriptor read on demand.
import { constants as bufferConstants } from 'buffer';
import * as fs from 'fs';
import { QkError } from '../errors';
import { requireAddon } from '../native';
import { GgufError, SHORT } from './errors';

export interface ByteSource {
  readonly mode: 'mmap' | 'read';
  readonly size: number;
  /** Bytes [offset, offset + length), already checked to lie in the file: a view when mapped, else a fresh copy. */
  read(offset: number, length: number): Uint8Array;
  /** As read, but a read file's bytes go into `into` (at least `length` long) instead of a fresh copy; the bytes are returned. */
  readInto(offset: number, length: number, into: Uint8Array): Uint8Array;
  prefetch(offset: number, length: number): void;
  evict(offset: number, length: number): void;
  /** Throws a QkError if the file shrank under its mapping since it was opened (reads past the new end gave zeros). */
  checkIntact(): void;
  close(): void;
}

interface MapAddon {
  mapFile(path: string): [object, number];
  mappedView(handle: object, offset: number, length: number): ArrayBuffer | null;
  /** detaches every view still alive, then unmaps */
  unmapFile(handle: object): void;
  adviseMapped(handle: object, offset: number, length: number, willNeed: boolean): void;
  mappingFaulted(handle: object): boolean;
}

let addon: MapAddon | null | undefined;

/** The addon's mapping functions, or null where they are not to be used (QKERNELS_BACKEND=js) or do not load. */
function mapAddon(): MapAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.QKERNELS_BACKEND === 'js') return addon;
  try {
    const a = requireAddon() as Partial<MapAddon>;
    if (['mapFile', 'mappedView', 'unmapFile', 'adviseMapped', 'mappingFaulted'].every((f) => typeof a[f as keyof MapAddon] === 'function')) addon = a as MapAddon;
  } catch {
    // No native build here: the file is read instead.
  }
  return addon;
}

/** A Uint8Array of `length` bytes, or a QkError where the runtime cannot make one that long (4 GiB in Node 20). */
function allocate(path: string, offset: number, length: number): Uint8Array {
  try {
    return new Uint8Array(length);
  } catch (e) {
    throw new GgufError(SHORT, path, offset, `a tensor of ${length} bytes is longer than the Uint8Array this JavaScript runtime can make (${(e as Error).message})`);
  }
}

// Node makes an external ArrayBuffer through a Buffer, so one view is at most this long.
const MAX_VIEW = bufferConstants.MAX_LENGTH;
const COPY_CHUNK = 1 << 30;

class MappedSource implements ByteSource {
  readonly mode = 'mmap' as const;
  private closed = false;
  constructor(
    private readonly path: string,
    private readonly a: MapAddon,
    private readonly handle: object,
    readonly size: number,
  ) {}

  private view(offset: number, length: number): ArrayBuffer {
    const ab = this.a.mappedView(this.handle, offset, length);
    if (ab === null) throw new QkError('ERR_QK_BACKEND', `${this.path}: this runtime no longer allows external buffers`);
    return ab;
  }

  read(offset: number, length: number): Uint8Array {
    if (this.closed) throw new QkError('ERR_QK_ARG', `${this.path}: the file was closed; its tensors can no longer be read`);
    if (length <= MAX_VIEW) return new Uint8Array(this.view(offset, length));
    // Larger than one external buffer may be: copied, through views of 1 GiB.
    const out = allocate(this.path, offset, length);
    for (let done = 0; done < length; done += COPY_CHUNK) {
      const n = Math.min(COPY_CHUNK, length - done);
      out.set(new Uint8Array(this.view(offset + done, n)), done);
    }
    return out;
  }
  readInto(offset: number, length: number): Uint8Array {
    return this.read(offset, length);
  }
  prefetch(offset: number, length: number): void {
    if (!this.closed && length > 0) this.a.adviseMapped(this.handle, offset, length, true);
  }
  evict(offset: number, length: number): void {
    if (!this.closed && length > 0) this.a.adviseMapped(this.handle, offset, length, false);
  }
  checkIntact(): void {
    if (!this.closed && this.a.mappingFaulted(this.handle)) {
      throw new QkError('ERR_QK_LENGTH', `${this.path} shrank while mapped (another process truncated or rewrote it): reads past its new end gave zeros, so nothing read from it can be trusted; reopen it`);
    }
  }
  close(): void {
    if (this.closed) return;
    // the addon tracks the views itself and detaches those still alive
    this.a.unmapFile(this.handle);
    this.closed = true;
  }
}

// A read source's descriptor is closed by close() or, failing that, once the
// source (held by the file and by every tensor) is collected.
const fdCloser = new FinalizationRegistry<{ fd: number; open: boolean }>((s) => {
  if (s.open) {
    s.open = false;
    try {
      fs.closeSync(s.fd);
    } catch {
      /* already gone */
    }
  }
});

// fs.readSync takes at most 2 GiB - 1 per call.
const MAX_READ = 0x7ffff000;

class FileSource implements ByteSource {
  readonly mode = 'read' as const;
  private readonly state: { fd: number; open: boolean };
  constructor(
    private readonly path: string,
    fd: number,
    readonly size: number,
  ) {
    this.state = { fd, open: true };
    fdCloser.register(this, this.state, this);
  }
  read(offset: number, length: number): Uint8Array {
    return this.readInto(offset, length, allocate(this.path, offset, length));
  }
  readInto(offset: number, length: number, into: Uint8Array): Uint8Array {
    if (!this.state.open) throw new QkError('ERR_QK_ARG', `${this.path}: the file was closed; its tensors can no longer be read`);
    if (into.byteLength < length) throw new QkError('ERR_QK_LENGTH', `${this.path}: a buffer of ${into.byteLength} bytes cannot take ${length}`);
    const out = into.byteLength === length ? into : into.subarray(0, length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.state.fd, out, done, Math.min(length - done, MAX_READ), offset + done);
      if (n <= 0) {
        // The file shrank after it was opened.
        throw new GgufError(SHORT, this.path, offset + done, `the file ended while reading ${length} bytes at ${offset}; was it truncated while open?`);
      }
      done += n;
    }
    return out;
  }
  prefetch(): void {}
  evict(): void {}
  // a read file's short reads already fail (readInto)
  checkIntact(): void {}
  close(): void {
    if (!this.state.open) return;
    this.state.open = false;
    fdCloser.unregister(this);
    fs.closeSync(this.state.fd);
  }
}

function ioError(path: string, e: unknown): QkError {
  const err = new QkError('ERR_QK_ARG', `cannot open '${path}': ${(e as Error).message}`);
  (err as { cause?: unknown }).cause = e;
  return err;
}

export function openSource(path: string, mmap: boolean): ByteSource {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (e) {
    throw ioError(path, e);
  }
  if (!st.isFile()) throw new QkError('ERR_QK_ARG', `cannot open '${path}': not a regular file`);
  const a = mmap ? mapAddon() : null;
  if (a) {
    let handle: object, size: number;
    try {
      [handle, size] = a.mapFile(path);
    } catch (e) {
      throw ioError(path, e);
    }
    // Where external buffers are forbidden (Electron) the file is read instead.
    if (size === 0 || a.mappedView(handle, 0, 1) !== null) return new MappedSource(path, a, handle, size);
    a.unmapFile(handle);
  }
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw ioError(path, e);
  }
  try {
    return new FileSource(path, fd, fs.fstatSync(fd).size);
  } catch (e) {
    fs.closeSync(fd);
    throw ioError(path, e);
  }
}

// Sequential little-endian reads over a ByteSource, through a window so that
// a read file costs one system call per MiB, not one per field. Every read
// first checks that the file holds the bytes; nothing is sized from a count
// the file has not been shown to justify.
import { BAD, GgufError, SHORT } from './errors';
import type { ByteSource } from './source';

// Reads start small (most headers are a few KiB) and grow for large tokenizers.
const FIRST_WINDOW = 1 << 16;
const MAX_WINDOW = 1 << 24;
const TWO32 = 2 ** 32;
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private start = 0; // file offset of buf[0]
  private window = FIRST_WINDOW;

  constructor(
    readonly src: ByteSource,
    readonly path: string,
  ) {}

  get size(): number {
    return this.src.size;
  }

  get remaining(): number {
    return this.src.size - this.pos;
  }

  fail(code: typeof BAD | typeof SHORT | 'ERR_QK_TYPE', offset: number, problem: string): never {
    throw new GgufError(code, this.path, offset, problem);
  }

  /** Makes [pos, pos + n) readable from the window; `what` names the field for the error. */
  private need(n: number, what: string): number {
    if (n > this.src.size - this.pos) {
      this.fail(SHORT, this.pos, `the file ends (${this.src.size} bytes) inside ${what}, which needs ${n} bytes here`);
    }
    const at = this.pos - this.start;
    if (at < 0 || at + n > this.buf.length) {
      const len = Math.min(Math.max(n, this.window), this.src.size - this.pos);
      this.window = Math.min(this.window * 2, MAX_WINDOW);
      this.buf = this.src.read(this.pos, len);
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      this.start = this.pos;
      return 0;
    }
    return at;
  }

  u8(what: string): number {
    const at = this.need(1, what);
    this.pos += 1;
    return this.buf[at];
  }
  u32(what: string): number {
    const at = this.need(4, what);
    this.pos += 4;
    return this.view.getUint32(at, true);
  }
  /** A uint64 as a number when it is at most 2^53 - 1, else as a bigint (which no count or length can be). */
  u64(what: string): number | bigint {
    const at = this.need(8, what);
    this.pos += 8;
    const lo = this.view.getUint32(at, true);
    const hi = this.view.getUint32(at + 4, true);
    if (hi < 0x200000) return hi * TWO32 + lo;
    return this.view.getBigUint64(at, true);
  }
  i64(what: string): number | bigint {
    const v = this.u64(what);
    const b = typeof v === 'bigint' ? BigInt.asIntN(64, v) : v;
    return typeof b === 'bigint' && b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b;
  }

  /**
   * A uint64 count of items of at least `minBytes` each that must still fit in
   * the file; this is what keeps a forged count from allocating or looping.
   */
  count(what: string, minBytes: number): number {
    const at = this.pos;
    const n = this.u64(what);
    if (typeof n === 'bigint' || n * minBytes > this.remaining) {
      this.fail(SHORT, at, `${what} is ${n}, but the ${this.remaining} bytes left in the file hold at most ${Math.floor(this.remaining / minBytes)}`);
    }
    return n;
  }

  /** Raw bytes [pos, pos + n) (a view into the window; copy what must outlive the next read). */
  bytes(n: number, what: string): Uint8Array {
    const at = this.need(n, what);
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }

  /** A GGUF string: uint64 length, then that many UTF-8 bytes. */
  string(what: string): string {
    const n = this.count(`the length of ${what}`, 1);
    const b = this.bytes(n, what);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  }

  /** n little-endian numbers of `width` bytes copied into `out`'s buffer (any host byte order). */
  numbers<T extends ArrayBufferView>(out: T, width: number, what: string): T {
    const n = out.byteLength;
    const b = this.bytes(n, what);
    const dst = new Uint8Array(out.buffer, out.byteOffset, n);
    dst.set(b);
    if (!HOST_LE && width > 1) {
      for (let i = 0; i < n; i += width) dst.subarray(i, i + width).reverse();
    }
    return out;
  }
}

// Matrix layouts made in memory: the interleaved layout prepare() gives (for
// the public API and for the model loader alike) and the cache-line-aligned
// buffers it lives in. Arguments are already checked by the callers.
import { impl } from './runtime';
import { layoutBytes, type Layout, type QuantizedMatrix } from './types';

/** A zeroed buffer whose first byte sits on a 64-byte cache line (on the native backend; V8 aligns large buffers to 16 only). */
export function alignedBytes(bytes: number): Uint8Array {
  const buf = new ArrayBuffer(bytes + 64);
  return new Uint8Array(buf, (64 - impl.misalignment(new Uint8Array(buf, 0, 1))) % 64, bytes);
}

/**
 * `w` (ggml layout, a type of INTERLEAVED_TYPES) in the 'interleaved16' layout: in `into` (exactly the
 * layout's bytes, on a cache line) or in a new aligned buffer.
 */
export function interleaveMatrix(w: QuantizedMatrix, into?: Uint8Array): QuantizedMatrix {
  // Tiles start on a cache line, so the kernels' 64-byte loads never straddle two.
  const data = into ?? alignedBytes(layoutBytes(w.type, w.rows, w.cols, 'interleaved16'));
  impl.relayout(w.type, w.data, w.rows, w.cols, data, true);
  return Object.freeze({ type: w.type, rows: w.rows, cols: w.cols, data, layout: 'interleaved16' as Layout });
}

/**
 * Buffers for a model's weight copies (interleaved at load, or read with
 * mmap: false), cut from large zeroed chunks whose 2 MiB pages are asked to be
 * huge pages before anything is written to them. A chunk's unused tail is
 * never written, so it never becomes resident.
 */
export class WeightArena {
  private chunk: Uint8Array | null = null;
  private used = 0;
  constructor(private readonly chunkBytes = 256 * 2 ** 20) {}

  /** `bytes` zeroed bytes starting on a 64-byte line. */
  take(bytes: number): Uint8Array {
    if (this.chunk === null || this.used + bytes > this.chunk.byteLength) {
      this.chunk = alignedBytes(Math.max(this.chunkBytes, bytes + 64));
      impl.adviseHugePages(this.chunk);
      this.used = 0;
    }
    const out = this.chunk.subarray(this.used, this.used + bytes);
    this.used += Math.ceil(bytes / 64) * 64;
    return out;
  }
}

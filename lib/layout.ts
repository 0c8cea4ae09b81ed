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

/** `w` (ggml layout, a type of INTERLEAVED_TYPES) in the 'interleaved16' layout, in a new aligned buffer. */
export function interleaveMatrix(w: QuantizedMatrix): QuantizedMatrix {
  // Tiles start on a cache line, so the kernels' 64-byte loads never straddle two.
  const data = alignedBytes(layoutBytes(w.type, w.rows, w.cols, 'interleaved16'));
  impl.relayout(w.type, w.data, w.rows, w.cols, data, true);
  return Object.freeze({ type: w.type, rows: w.rows, cols: w.cols, data, layout: 'interleaved16' as Layout });
}

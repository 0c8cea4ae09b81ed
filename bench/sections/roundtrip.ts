// A. Quantization round trip: quantize then dequantize square matrices of
// synthetic N(0, 0.02²) weights with the allocating API (as a loader would),
// every type: time, bytes allocated, garbage collections, compression ratio
// and the round-trip error (RMS of the error relative to the RMS of the input).
import { dequantize, quantize, typeInfo, WEIGHT_TYPES, type QuantizedMatrix, type WeightType } from '../../lib/index';
import { usable, type Context, type SectionReport } from '../context';
import { fmt, fmtMs, fmtX, type Table } from '../format';
import { allocatedBytes, fillGaussian, forceGc, gcDiff, gcSnapshot, measure, mixSeed, settle, type GcCounts } from '../timing';

export interface RoundTripRecord {
  size: number;
  type: WeightType;
  quantizeMs: number;
  dequantizeMs: number;
  roundTripMs: number;
  /** the same calls writing into preallocated buffers (opts.out / out): the kernels without the allocation */
  quantizeIntoMs: number;
  dequantizeIntoMs: number;
  /** bytes one round trip allocates (JS heap + ArrayBuffers): the quantized copy and the f32 result */
  allocatedBytes: number;
  /** collections during the timed round trips */
  gcs: GcCounts;
  roundTrips: number;
  compression: number;
  relRmse: number;
  bitsPerWeight: number;
}

function relRmse(x: Float32Array, y: Float32Array): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - y[i];
    e += d * d;
    s += x[i] * x[i];
  }
  return Math.sqrt(e / s);
}

export async function runRoundTrip(ctx: Context): Promise<{ report: SectionReport; records: RoundTripRecord[] }> {
  const quick = ctx.args.quick;
  const sizes = quick ? [128, 256, 512] : [128, 256, 512, 1024, 4096];
  const types = usable(ctx, WEIGHT_TYPES);
  const budgetMs = quick ? 15 : 60;
  const records: RoundTripRecord[] = [];
  const notes: string[] = [];
  const total = sizes.reduce((a, s) => a + s * s, 0) * types.length;
  let done = 0;
  for (const size of sizes) {
    const src = fillGaussian(new Float32Array(size * size), mixSeed(7, size), 0.02);
    for (const type of types) {
      ctx.progress.update('A', done / total, `A: ${size}x${size} ${type}`);
      done += size * size;
      try {
        // Allocation of one round trip, measured alone from a collected heap.
        forceGc();
        await settle(); // ArrayBuffers freed by the collection are released a moment later
        const before = allocatedBytes();
        const once = quantize(src, size, size, type);
        const back = dequantize(once);
        const allocated = allocatedBytes() - before;
        const err = relRmse(src, back);

        const g0 = await gcSnapshot();
        let w: QuantizedMatrix = once;
        let trips = 0;
        const tq = measure(() => {
          w = quantize(src, size, size, type);
          trips++;
        }, { budgetMs, minSamples: 3, slowMs: 700, verySlowMs: 1500 });
        const td = measure(() => {
          dequantize(w);
        }, { budgetMs, minSamples: 3, slowMs: 700, verySlowMs: 1500 });
        const g = gcDiff(g0, await gcSnapshot());
        const qOut = new Uint8Array(once.data.byteLength);
        const dOut = new Float32Array(size * size);
        const tqi = measure(() => quantize(src, size, size, type, { out: qOut }), { budgetMs: budgetMs / 2, minSamples: 3, slowMs: 700, single: tq.ms > 700 });
        const tdi = measure(() => dequantize(w, dOut), { budgetMs: budgetMs / 2, minSamples: 3, slowMs: 700, single: td.ms > 700 });
        records.push({
          size,
          type,
          quantizeMs: tq.ms,
          dequantizeMs: td.ms,
          roundTripMs: tq.ms + td.ms,
          quantizeIntoMs: tqi.ms,
          dequantizeIntoMs: tdi.ms,
          allocatedBytes: allocated,
          gcs: g,
          roundTrips: trips,
          compression: (size * size * 4) / once.data.byteLength,
          relRmse: err,
          bitsPerWeight: (once.data.byteLength * 8) / (size * size),
        });
      } catch (e) {
        const bs = typeInfo(type).blockSize;
        notes.push(size % bs ? `${size}x${size} ${type}: not applicable (rows of ${size} are not a multiple of its ${bs}-weight block)` : `${size}x${size} ${type}: skipped, ${(e as Error).message}`);
      }
    }
  }
  ctx.progress.done('A');

  const tables: Table[] = sizes.map((size) => ({
    title: `${size}x${size} (${fmt((size * size * 4) / 1e6)} MB of f32)`,
    headers: ['type', 'quantize ms', 'dequantize ms', 'round trip ms', 'MB allocated', 'GCs minor/major', 'round trips', 'q. into ms', 'deq. into ms', 'compression', 'rel. RMSE'],
    rows: records
      .filter((r) => r.size === size)
      .map((r) => [
        r.type,
        fmtMs(r.quantizeMs),
        fmtMs(r.dequantizeMs),
        fmtMs(r.roundTripMs),
        fmt(r.allocatedBytes / 1e6),
        `${r.gcs.minor}/${r.gcs.major}`,
        String(r.roundTrips),
        fmtMs(r.quantizeIntoMs),
        fmtMs(r.dequantizeIntoMs),
        fmtX(r.compression),
        r.type === 'f32' ? '0' : fmt(r.relRmse, 4),
      ]),
  }));
  const intro = [
    `quantize() and dequantize() as a model loader calls them (each allocates its result); median of repeated calls (~${budgetMs} ms each). ` +
      'MB allocated: JS heap and ArrayBuffer bytes of one round trip (the quantized copy plus the f32 result); GCs: collections during all the timed calls; ' +
      '"into" columns: the same calls writing into preallocated buffers (`quantize(..., { out })`, `dequantize(w, out)`): the kernels without the allocation and first-touch page faults of a fresh result. ' +
      'rel. RMSE: RMS of (x - dequantize(quantize(x))) over RMS of x.',
    'These allocations are load-time costs; the inference path (B, D) passes preallocated outputs and allocates nothing.',
  ];
  return { report: { id: 'A', title: 'A. Quantization round trip', intro, tables, notes, records: records as unknown as Record<string, unknown>[] }, records };
}

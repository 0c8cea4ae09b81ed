// B. Quantized vs f32 matmul: the seed report's four shapes and the shapes of
// a 7B model (batch 1, 64 tokens, 512-token prefill), every weight type, on
// the best ISA with 1 and all threads: time, GFLOPS, weight GB/s, the speedup
// over f32 and the output's error against the f32 product.
//
// Batch-1 shapes whose weights a cache could hold between calls are measured
// "cold": the calls rotate over copies of the weights filling 256 MiB, so
// every call streams its weights from memory, as in a model's decode step.
import { allocAligned, INTERLEAVED_TYPES, matmul, memoryBandwidth, prepare, setIsa, setThreads, type QuantizedMatrix, type WeightType, WEIGHT_TYPES } from '../../lib/index';
import { usable, type Context, type SectionReport } from '../context';
import { fmt, fmtMB, fmtMs, fmtX, type Table } from '../format';
import { flops, HEADLINE_SHAPE, MATMUL_SHAPES, operands, streamsFromMemory, type MatShape } from '../shapes';
import { measure, median } from '../timing';

export interface MatmulRecord {
  shape: string;
  role: string;
  m: number;
  k: number;
  n: number;
  /** the weight type, or 'q4_0 prepared' for q4_0 in the layout prepare() makes */
  type: string;
  layout: 'ggml' | 'interleaved16';
  threads: number;
  isa: string;
  /** median ms per call */
  ms: number;
  minMs: number;
  samples: number;
  gflops: number;
  weightBytes: number;
  /** weight bytes / time, GB/s */
  weightGBs: number;
  /** weightGBs over the measured bandwidth at this thread count (batch-1 shapes) */
  bwShare: number | null;
  /** the same for the fastest call: the bandwidth is the best of its passes, so best against best */
  bwShareBest: number | null;
  /**
   * Batch-1 cold shapes: the read bandwidth paired with this cell's calls, GB/s (median). Kernel
   * calls alternate with section E's streaming-read loop over another copy of the same matrix, so
   * each ratio compares the kernel and the memory within a millisecond of each other, over the same
   * bytes and pages: the machine's drift over a run (this 2-core VM has gone from 39 to 75 GB/s)
   * cancels out of it.
   */
  pairedReadGBs: number | null;
  /** median over the pairs of (kernel GB/s / read GB/s) */
  bwSharePaired: number | null;
  /** pairs behind bwSharePaired */
  pairs: number;
  /** f32 time / this time */
  vsF32: number | null;
  /** ||y - y_f32|| / ||y_f32|| */
  relErr: number | null;
  /** weights rotated over copies so that each call streams them from memory */
  cold: boolean;
  copies: number;
}

const QUICK_TYPES: WeightType[] = ['f32', 'q8_0', 'q4_0', 'q4_k'];
/** The rows of the tables: every type, and each type with an interleaved layout once more after prepare(). */
export function matmulVariants(types: readonly WeightType[]): string[] {
  return types.flatMap((t) => (INTERLEAVED_TYPES.includes(t) ? [t, `${t} prepared`] : [t]));
}
/** Pairs of (kernel call, read of the same bytes) per pass of a batch-1 cold cell. */
export function pairsPerPass(quick: boolean): number {
  return quick ? 8 : 20;
}
/** A matrix this large outgrows any cache by itself (Zen 5: 32 MB of L3 per CCD): no copies needed. */
const UNCACHEABLE_BYTES = 64 * 2 ** 20;

/** Copies of a matrix laid end to end in one reused buffer, so that calls can rotate over them. */
class Arena {
  private buf: Uint8Array | null = null;

  constructor(private readonly bytes: number) {}

  copies(w: QuantizedMatrix, maxCopies = 256): QuantizedMatrix[] {
    const bytes = w.data.byteLength;
    if (bytes >= UNCACHEABLE_BYTES) return [w];
    const stride = Math.ceil(bytes / 4096) * 4096;
    // Cache-line aligned, as prepare() makes its matrices (the copies are 4 KiB apart).
    if (!this.buf) this.buf = allocAligned(this.bytes);
    const count = Math.max(2, Math.min(maxCopies, Math.floor(this.buf.byteLength / stride)));
    const out: QuantizedMatrix[] = [];
    for (let i = 0; i < count; i++) {
      const data = this.buf.subarray(i * stride, i * stride + bytes);
      data.set(w.data);
      out.push(Object.freeze({ type: w.type, rows: w.rows, cols: w.cols, data, layout: w.layout }));
    }
    return out;
  }

  free(): void {
    this.buf = null;
  }
}

/** Cells slower than this a call are not memory-bound: no pairs. */
const PAIRED_MAX_MS = 50;

interface Pair {
  kernelGBs: number;
  readGBs: number;
}

/**
 * Alternates kernel calls with section E's streaming-read loop over the same bytes, timed alike
 * (in JS, around one call each), the order swapped every pair. `views` are the copies the kernel
 * rotates over (or the one matrix when it outgrows every cache). The two take turns along the
 * copies, so every copy is read again only after all the others: both stream from memory.
 * At least 4 pairs, then until `count` or the budget.
 */
function measurePairs(call: (i: number) => void, views: QuantizedMatrix[], count: number, budgetMs: number): Pair[] {
  const c = views.length;
  const bytes = views[0].data.byteLength;
  // The loop reads whole MiBs from the first 8-byte boundary (V8 backing stores are 8-aligned).
  const readView = (i: number) => {
    const d = views[i % c].data;
    const skip = (8 - (d.byteOffset % 8)) % 8;
    return d.subarray(skip, skip + Math.floor((d.byteLength - skip) / 2 ** 20) * 2 ** 20);
  };
  if (readView(0).byteLength === 0) return [];
  // One untimed sweep sets the order: whatever the cell's last calls left in cache is gone after it.
  for (let i = 0; i < c; i++) memoryBandwidth(readView(i), 1);
  const out: Pair[] = [];
  const start = performance.now();
  const timed = (f: () => void): number => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  for (let p = 0; p < count && (out.length < 4 || performance.now() - start < budgetMs); p++) {
    // Copies 2p and 2p + 1 in turn; the kernel takes the first on even pairs, the read on odd ones.
    const kernelFirst = p % 2 === 0;
    const rv = readView(kernelFirst ? 2 * p + 1 : 2 * p);
    let tk = kernelFirst ? timed(() => call(2 * p)) : 0;
    const tr = timed(() => memoryBandwidth(rv, 1));
    if (!kernelFirst) tk = timed(() => call(2 * p + 1));
    out.push({ kernelGBs: bytes / (tk * 1e6), readGBs: rv.byteLength / (tr * 1e6) });
  }
  return out;
}

function relError(y: Float32Array, ref: Float32Array): number {
  let e = 0;
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = y[i] - ref[i];
    e += d * d;
    n += ref[i] * ref[i];
  }
  return Math.sqrt(e / n);
}

export interface MatmulResult {
  report: SectionReport;
  records: MatmulRecord[];
}

export function runMatmul(ctx: Context): MatmulResult {
  const quick = ctx.args.quick;
  const types = usable(ctx, quick ? QUICK_TYPES : WEIGHT_TYPES);
  const budgetMs = quick ? 60 : 200;
  const minSamples = quick ? 2 : 3;
  const arenaMiB = quick ? 128 : 256;
  const arena = new Arena(arenaMiB * 2 ** 20);
  const records: MatmulRecord[] = [];
  const skippedCells: string[] = [];
  const tables: Table[] = [];
  const notes: string[] = [];
  const shapes = MATMUL_SHAPES;
  // ms per multiply-accumulate by type and threads, from the shapes measured so far: slow kernels
  // (types with no SIMD path yet) are measured with one call, or not at all, on the big shapes.
  const perMac = new Map<string, number>();
  const singleCallMs = quick ? 200 : 1500;
  const skipMs = ctx.args.long ? Infinity : quick ? 2000 : 6000;
  const variants = matmulVariants(types);
  const cellsTotal = shapes.length * variants.length * ctx.threadCounts.length;
  let cells = 0;
  const pairsEach = pairsPerPass(quick);
  setIsa('auto');
  const isa = ctx.info.isa;

  for (const s of shapes) {
    ctx.progress.update('B', cells / cellsTotal, `B: ${s.label}: generating and quantizing the weights`);
    const op = operands(s, types);
    for (const [t, msg] of op.failed) notes.push(`${s.label}: ${t} skipped, quantize threw: ${msg}`);
    const prepared = new Map<string, QuantizedMatrix>();
    for (const t of types) {
      const w = op.w.get(t);
      if (w && INTERLEAVED_TYPES.includes(t)) prepared.set(`${t} prepared`, prepare(w));
    }
    const weightsOf = (v: string): QuantizedMatrix | undefined => prepared.get(v) ?? op.w.get(v as WeightType);
    const out = new Float32Array(s.m * s.n);
    const ref = new Float32Array(s.m * s.n);
    setThreads(ctx.threads);
    matmul(op.w.get('f32')!, op.x, s.m, ref);
    const cold = streamsFromMemory(s);
    const byKey = new Map<string, MatmulRecord>();
    const samples = new Map<string, number[]>();
    const paired = new Map<string, Pair[]>();
    const macs = s.m * s.k * s.n;
    // Two passes over the types, half the budget each, samples pooled: a burst of load on a shared
    // machine then spreads over the types instead of landing on one (the ratios are what matters).
    // Calls too long to batch (more than a few per half budget) get the first pass only.
    for (const pass of [0, 1]) {
      for (const t of variants) {
        const w = weightsOf(t);
        if (!w) {
          if (pass === 0) cells += ctx.threadCounts.length;
          continue;
        }
        const wanted = ctx.threadCounts.filter((th) => {
          if (pass === 0) return true;
          const r = byKey.get(`${t}|${th}`);
          return r !== undefined && r.ms * (minSamples + 1) < budgetMs / 2;
        });
        if (wanted.length === 0) continue;
        const views = cold ? arena.copies(w) : [w];
        const c = views.length;
        for (const threads of wanted) {
          const key = `${t}|${threads}`;
          ctx.progress.update('B', cells / cellsTotal, `B: ${s.label} ${t} x${threads}${pass ? ' (second pass)' : ''}`);
          setThreads(threads);
          const predicted = (perMac.get(key) ?? 0) * macs;
          if (pass === 0 && predicted > skipMs) {
            skippedCells.push(`${s.label} ${t} x${threads} (~${fmt(predicted / 1000)} s a call)`);
            cells++;
            continue;
          }
          const tm = measure((i) => matmul(views[i % c], op.x, s.m, out), {
            budgetMs: budgetMs / 2,
            minSamples,
            slowMs: quick ? 250 : 1500,
            single: pass === 0 && predicted > singleCallMs,
          });
          const all = [...(samples.get(key) ?? []), ...tm.all];
          samples.set(key, all);
          const ms = median(all);
          if (cold && s.m === 1 && ms < PAIRED_MAX_MS) {
            ctx.progress.update('B', cells / cellsTotal, `B: ${s.label} ${t} x${threads}: paired with reads of the same bytes`);
            const got = measurePairs((i) => matmul(views[i % c], op.x, s.m, out), views, pairsEach, budgetMs / 2);
            paired.set(key, [...(paired.get(key) ?? []), ...got]);
          }
          const pairs = paired.get(key) ?? [];
          perMac.set(key, ms / macs);
          const weightGBs = w.data.byteLength / (ms * 1e6);
          const r: MatmulRecord = {
            shape: s.label,
            role: s.role,
            m: s.m,
            k: s.k,
            n: s.n,
            type: t,
            layout: w.layout ?? 'ggml',
            threads,
            isa,
            ms,
            minMs: Math.min(...all),
            samples: all.length,
            gflops: flops(s) / (ms * 1e6),
            weightBytes: w.data.byteLength,
            weightGBs,
            bwShare: null, // set from the final bandwidth (section E)
            bwShareBest: null,
            pairedReadGBs: pairs.length ? median(pairs.map((p) => p.readGBs)) : null,
            bwSharePaired: pairs.length ? median(pairs.map((p) => p.kernelGBs / p.readGBs)) : null,
            pairs: pairs.length,
            vsF32: null,
            relErr: t === 'f32' ? 0 : relError(out, ref),
            cold,
            copies: c,
          };
          const prev = byKey.get(key);
          if (prev) Object.assign(prev, r);
          else {
            records.push(r);
            byKey.set(key, r);
            cells++;
          }
        }
      }
    }
    for (const r of byKey.values()) {
      const f = byKey.get(`f32|${r.threads}`);
      r.vsF32 = f ? f.ms / r.ms : null;
    }
    tables.push(shapeTable(ctx, s, variants, byKey, cold));
  }
  arena.free();
  setThreads(ctx.threads);
  ctx.progress.done('B');
  if (skippedCells.length) {
    notes.push(`Not run (predicted from the smaller shapes to take more than ${fmt(skipMs / 1000)} s a call): ${skippedCells.join('; ')}.`);
  }

  tables.push(...overviewTables(ctx, variants, records));
  const intro = [
    `Best ISA (${isa}), 'q8' precision (activations quantized to 8 bits once per call, integer dot products; f32/f16/bf16 take f32 activations). ` +
      `Synthetic N(0, 0.02²) weights and N(0, 1) activations, fixed seed; median of repeated calls (~${budgetMs} ms of calls per cell, in two passes over the types).`,
    '"prepared": the same weights after prepare() (tiles of 16 interleaved rows, made once; the ggml bytes stay the file format). ' +
      'Batches of 8 rows and more use the same kernels on ggml-layout q4_0/q8_0 too, interleaving on the fly. ' +
      'GFLOPS = 2·m·k·n / time; GB/s = bytes of weights / time (as a share of the memory bandwidth in section E); "vs f32" = f32 time / this time (above 1: faster than f32); ' +
      'err = RMS error of the output relative to the f32 product (weight quantization plus 8-bit activations).',
    `Shapes of 4096x4096 and larger are measured cold: calls rotate over copies of the weights filling ${arenaMiB} MiB (matrices of 64 MiB and more need none), so each call streams its weights from memory as in a model's decode step; ` +
      "the report's small shapes stay in cache, as they did in the report.",
  ];
  return { report: { id: 'B', title: 'B. Quantized vs f32 matmul', intro, tables, notes, records: records as unknown as Record<string, unknown>[] }, records };
}

function shapeTable(ctx: Context, s: MatShape, types: string[], byKey: Map<string, MatmulRecord>, cold: boolean): Table {
  const tc = ctx.threadCounts;
  const headers = ['type', 'MB'];
  for (const th of tc) {
    headers.push(`ms x${th}`, `GFLOPS x${th}`, `GB/s x${th}`, `vs f32 x${th}`);
  }
  headers.push('err');
  const rows: string[][] = [];
  for (const t of types) {
    const first = tc.map((th) => byKey.get(`${t}|${th}`)).find((r) => r !== undefined);
    if (!first) continue;
    const row = [t, fmtMB(first.weightBytes)];
    for (const th of tc) {
      const r = byKey.get(`${t}|${th}`);
      if (!r) {
        row.push('(not run)', '-', '-', '-');
        continue;
      }
      row.push(fmtMs(r.ms), fmt(r.gflops), fmt(r.weightGBs), t === 'f32' ? '1' : fmtX(r.vsF32));
    }
    row.push(t === 'f32' ? '-' : fmt(first.relErr, 4));
    rows.push(row);
  }
  return {
    title: `${s.label}  (${s.role}${cold ? '; cold weights' : ''})`,
    headers,
    rows,
  };
}

function overviewTables(ctx: Context, types: string[], records: MatmulRecord[]): Table[] {
  const quantized = types.filter((t) => t !== 'f32');
  const out: Table[] = [];
  for (const th of [...ctx.threadCounts].reverse()) {
    const rows: string[][] = [];
    for (const s of MATMUL_SHAPES) {
      const f = records.find((r) => r.shape === s.label && r.type === 'f32' && r.threads === th);
      if (!f) continue;
      rows.push([s.label, fmtMs(f.ms), ...quantized.map((t) => fmtX(records.find((r) => r.shape === s.label && r.type === t && r.threads === th)?.vsF32))]);
    }
    out.push({
      title: `Speedup over f32, ${th} thread${th > 1 ? 's' : ''} (f32 time / type time; above 1x the quantized type is faster)`,
      headers: ['shape', 'f32 ms', ...quantized],
      rows,
    });
  }
  return out;
}

// F. matmulAsync and the event loop: a server-like loop issues back-to-back
// batch-1 matvecs (1x4096 @ 4096x11008 q4_0) while perf_hooks'
// monitorEventLoopDelay samples how late the event loop runs its timers.
// With matmulAsync the work runs off the main thread and the loop stays free;
// with sync matmul every call blocks the loop for its whole duration (the
// loop still turns between calls: one call per macrotask, as a request
// handler would).
import { monitorEventLoopDelay } from 'perf_hooks';
import { matmul, matmulAsync, setThreads, type QuantizedMatrix } from '../../lib/index';
import type { Context, SectionReport } from '../context';
import { fmt, fmtMs, type Table, threadsLabel } from '../format';
import { HEADLINE_SHAPE, MATMUL_SHAPES, operands } from '../shapes';

export interface LoopDelayRecord {
  mode: 'idle' | 'async' | 'sync';
  /** matvecs per macrotask (sync) */
  perTask: number;
  threads: number;
  calls: number;
  seconds: number;
  msPerCall: number;
  /** event-loop delay percentiles, ms: how late the 1 ms sampling timer fired (the histogram's value minus the 1 ms interval) */
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

const immediate = () => new Promise<void>((r) => setImmediate(r));

const RESOLUTION_MS = 1;
/** matvecs a request handler runs before it returns to the event loop (the second sync row) */
const PER_REQUEST = 8;

async function run(mode: 'idle' | 'async' | 'sync', perTask: number, w: QuantizedMatrix, x: Float32Array, out: Float32Array, ms: number, threads: number): Promise<LoopDelayRecord> {
  // Warm-up outside the measurement.
  for (let i = 0; i < 3; i++) await matmulAsync(w, x, 1, out);
  for (let i = 0; i < 3; i++) matmul(w, x, 1, out);
  setThreads(threads);
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  await immediate();
  h.enable();
  const t0 = performance.now();
  const end = t0 + ms;
  let calls = 0;
  if (mode === 'idle') {
    await new Promise((r) => setTimeout(r, ms));
  } else if (mode === 'async') {
    while (performance.now() < end) {
      await matmulAsync(w, x, 1, out);
      calls++;
    }
  } else {
    while (performance.now() < end) {
      for (let i = 0; i < perTask; i++) matmul(w, x, 1, out);
      calls += perTask;
      await immediate();
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  h.disable();
  // The histogram records the time between two firings of a timer that should fire every RESOLUTION_MS.
  const toMs = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  return {
    mode,
    perTask: mode === 'sync' ? perTask : 1,
    threads,
    calls,
    seconds,
    msPerCall: calls ? (seconds * 1000) / calls : NaN,
    p50: toMs(h.percentile(50)),
    p99: toMs(h.percentile(99)),
    max: toMs(h.max),
    mean: toMs(h.mean),
  };
}

export async function runEventLoop(ctx: Context): Promise<{ report: SectionReport; records: LoopDelayRecord[] }> {
  const ms = ctx.args.quick ? 600 : 2000;
  const shape = MATMUL_SHAPES.find((s) => s.label === HEADLINE_SHAPE)!;
  const op = operands(shape, ['q4_0']);
  const w = op.w.get('q4_0');
  const records: LoopDelayRecord[] = [];
  const notes: string[] = [];
  if (!w) {
    notes.push(`not measured: q4_0 quantize failed: ${op.failed.get('q4_0')}`);
  } else {
    const out = new Float32Array(shape.n);
    const runs: ['idle' | 'async' | 'sync', number][] = [
      ['idle', 1],
      ['async', 1],
      ['sync', 1],
      ['sync', PER_REQUEST],
    ];
    for (const [i, [mode, perTask]] of runs.entries()) {
      ctx.progress.update('F', i / runs.length, `F: event-loop delay, ${mode}${mode === 'sync' ? `, ${perTask} per task` : ''}`);
      records.push(await run(mode, perTask, w, op.x, out, mode === 'idle' ? ms / 2 : ms, ctx.threads));
    }
    setThreads(ctx.threads);
  }
  ctx.progress.done('F');
  const tables: Table[] = [
    {
      title: `Event-loop delay while issuing back-to-back 1x4096 @ 4096x11008 q4_0 matvecs, ${threadsLabel(ctx.threads)}, ${fmt(ms / 1000)} s each`,
      headers: ['loop', 'matvecs', 'ms/matvec', 'delay p50 ms', 'delay p99 ms', 'delay max ms', 'delay mean ms'],
      rows: records.map((r) => [
        r.mode === 'async'
          ? 'await matmulAsync() each'
          : r.mode === 'sync'
            ? r.perTask === 1
              ? 'matmul(), yield after each'
              : `${r.perTask} x matmul() per task`
            : 'idle (baseline)',
        String(r.calls),
        fmtMs(r.msPerCall),
        fmtMs(r.p50),
        fmtMs(r.p99),
        fmtMs(r.max),
        fmtMs(r.mean),
      ]),
    },
  ];
  const intro = [
    'perf_hooks.monitorEventLoopDelay (1 ms resolution) over the whole run: how late the event loop serves a timer while the calls go on ' +
      '(the histogram holds the time between firings of a 1 ms timer; 1 ms is subtracted). ' +
      'With matmulAsync the calls run on the worker threads and the event loop stays free between completions. The sync rows yield to the event loop after every call (the best case: a timer waits for at most one call, ' +
      `about as long as the 1 ms sampling interval, so this histogram barely sees it) or after ${PER_REQUEST} calls, as a request handler that runs a few matvecs before it returns.`,
  ];
  return { report: { id: 'F', title: 'F. matmulAsync and the event loop', intro, tables, notes, records: records as unknown as Record<string, unknown>[] }, records };
}

// E. The limit: the machine's memory read bandwidth, measured by the benchmark
// itself with the addon's native streaming-read loop on 1 and all threads.
// A batch-1 matvec must stream every weight byte once, so bytes of weights per
// second over this figure says how close a kernel gets to the physical limit.
import { memoryBandwidth, setThreads } from '../../lib/index';
import type { Bandwidth, Context, SectionReport } from '../context';
import { fmt, fmtPct, type Table, threadsLabel } from '../format';
import { pairsPerPass, type MatmulRecord } from './matmul';
import type { DecodeRecord } from './decode';

/**
 * Measures the bandwidth on each thread count. Called at the start and again
 * at the end of the run: the limit is the better of the two (a shared machine
 * can be busy during one of them); both are kept.
 */
export function measureBandwidth(ctx: Context, stage: string, when: 'start' | 'middle' | 'end'): void {
  const bytes = ctx.args.quick ? 256 * 2 ** 20 : 2 ** 30;
  const reps = ctx.args.quick ? 2 : 4;
  ctx.threadCounts.forEach((threads, i) => {
    ctx.progress.update(stage, i / ctx.threadCounts.length, `E: memory bandwidth (${when} of the run), ${threads} thread${threads > 1 ? 's' : ''}`);
    setThreads(threads);
    const gbs = memoryBandwidth(bytes, reps);
    const prev = ctx.bandwidth.get(threads);
    const passes = [...(prev?.passes ?? []), ...(gbs === null ? [] : [{ when, gbs }])];
    const best = passes.length ? Math.max(...passes.map((p) => p.gbs)) : null;
    const bw: Bandwidth = { threads, gbs: best, bytes, reps, passes };
    ctx.bandwidth.set(threads, bw);
  });
  setThreads(ctx.threads);
  ctx.progress.done(stage);
}

/** Recomputes every share of the limit with the final bandwidth figures. */
export function applyBandwidth(ctx: Context, matmuls: MatmulRecord[], decodes: DecodeRecord[]): void {
  for (const r of matmuls) {
    const bw = ctx.bandwidth.get(r.threads)?.gbs ?? null;
    r.bwShare = r.m === 1 && r.cold && bw ? r.weightGBs / bw : null;
    r.bwShareBest = r.m === 1 && r.cold && bw ? r.weightBytes / (r.minMs * 1e6) / bw : null;
  }
  for (const r of decodes) {
    const bw = ctx.bandwidth.get(r.threads)?.gbs ?? null;
    r.bwShare = bw ? r.weightGBs / bw : null;
  }
}

export function bandwidthSection(ctx: Context, matmuls: MatmulRecord[], decodes: DecodeRecord[]): SectionReport {
  const bws = [...ctx.bandwidth.values()];
  const intro: string[] = [];
  const tables: Table[] = [];
  if (bws.length === 0 || bws.every((b) => b.gbs === null)) {
    intro.push('Not measured: the native addon is not loaded (the js backend has no streaming-read loop).');
    return { id: 'E', title: 'E. The limit: memory read bandwidth', intro, tables, notes: [], records: [] };
  }
  intro.push(
    'Streaming reads of one buffer (native loop in the addon, `memoryBandwidth()` after `setThreads`), best pass of ' +
      `${bws[0].reps} over ${fmt(bws[0].bytes / 2 ** 20)} MiB, measured at the start, ${ctx.args.quick ? '' : 'the middle '}and the end of the run; the limit is the best of them.`,
  );
  const whens = [...new Set(bws.flatMap((b) => b.passes.map((p) => p.when)))];
  tables.push({
    title: 'Measured memory read bandwidth, GB/s',
    headers: ['threads', ...whens.map((w) => `${w} of run`), 'limit'],
    rows: bws.map((b) => [String(b.threads), ...whens.map((w) => fmt(b.passes.find((p) => p.when === w)?.gbs)), fmt(b.gbs)]),
  });
  const bw = (t: number) => ctx.bandwidth.get(t)?.gbs ?? null;
  const [t1, tn] = [ctx.threadCounts[0], ctx.threadCounts[ctx.threadCounts.length - 1]];
  const both = ctx.threadCounts.length > 1;

  // Batch-1 matmuls whose weights stream from memory (section B rotates over copies of them).
  const cold = matmuls.filter((r) => r.m === 1 && r.cold);
  const keys = [...new Set(cold.map((r) => `${r.shape}|${r.type}`))];
  if (keys.length) {
    const rows = keys.map((key) => {
      const [shape, type] = key.split('|');
      const r1 = cold.find((r) => r.shape === shape && r.type === type && r.threads === t1);
      const rn = cold.find((r) => r.shape === shape && r.type === type && r.threads === tn);
      const along = (r: MatmulRecord | undefined) => (r?.pairedReadGBs ? `${fmtPct(r.bwSharePaired)} of ${fmt(r.pairedReadGBs)}` : '-');
      const cells = [shape, type, fmt(r1?.weightGBs), fmtPct(r1?.bwShare ?? null), fmtPct(r1?.bwShareBest ?? null), along(r1)];
      if (both) cells.push(fmt(rn?.weightGBs), fmtPct(rn?.bwShare ?? null), fmtPct(rn?.bwShareBest ?? null), along(rn));
      return cells;
    });
    const headers = ['batch-1 matmul (B)', 'type', `GB/s x${t1}`, `% of ${fmt(bw(t1))}`, 'best call', 'paired'];
    if (both) headers.push(`GB/s x${tn}`, `% of ${fmt(bw(tn))}`, 'best call', 'paired');
    tables.push({ title: 'Batch-1 matmul: weight bytes streamed per second, as a share of the limit', headers, rows, align: ['l', 'l'] });
  }
  if (decodes.length) {
    tables.push({
      title: `Batch-1 decode (D), ${threadsLabel(tn)}: weight bytes per second, as a share of the limit`,
      headers: ['model', 'type', 'ms/token', 'weight GB/s', `% of ${fmt(bw(tn))} GB/s`],
      align: ['l', 'l'],
      rows: decodes.map((d) => [d.model, d.type, fmt(d.msPerToken), fmt(d.weightGBs), fmtPct(d.bwShare)]),
    });
  }
  const notes = [
    'GB/s and % are of the median call; "best call" is the fastest call against the same limit, which is itself the best pass: best against best. ' +
      'Both compare a call at one moment with the memory at its best moment of the run; on a shared machine whose bandwidth drifts, they bracket what the kernel does.',
    `"paired": the kernel against the memory at the same moments. In section B, each cell's calls alternate with the same streaming-read loop over another copy of the same matrix ` +
      `(whole MiBs of it; up to ${pairsPerPass(false)} pairs in each of the cell's two passes, --quick ${pairsPerPass(true)} in each, the order swapped every pair, both timed in JS around one call): ` +
      'the median over the pairs of kernel GB/s / read GB/s, and the median read GB/s. Drift slower than a millisecond cancels out of each pair.',
    'A share near 100% means the kernel is as fast as the memory: the 4-bit path wins because it streams ~7x fewer bytes than f32, not because it computes faster.',
  ];
  const records = bws.map((b) => ({ ...b }));
  return { id: 'E', title: 'E. The limit: memory read bandwidth', intro, tables, notes, records };
}

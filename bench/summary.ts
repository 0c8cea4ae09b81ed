// The report's "what must show" figures, in a few lines at the end of the run.
import type { Context } from './context';
import { fmt, fmtMs, fmtPct, fmtX, threadsLabel } from './format';
import type { DecodeRecord } from './sections/decode';
import type { LoopDelayRecord } from './sections/eventloop';
import type { MatmulRecord } from './sections/matmul';
import type { SimdRecord } from './sections/simd';
import type { VsLlamaRecord } from './sections/vsllama';
import { HEADLINE_SHAPE, MATMUL_SHAPES } from './shapes';

export interface Summary {
  lines: string[];
  figures: Record<string, number | null>;
}

export function buildSummary(ctx: Context, b: MatmulRecord[], c: SimdRecord[], d: DecodeRecord[], f: LoopDelayRecord[], g: VsLlamaRecord[] = []): Summary {
  const lines: string[] = [];
  const fig: Record<string, number | null> = {};
  const t1 = 1;
  const tn = ctx.threads;
  const bw = (t: number) => ctx.bandwidth.get(t)?.gbs ?? null;
  const mm = (shape: string, type: string, threads: number) => b.find((r) => r.shape === shape && r.type === type && r.threads === threads);

  if (bw(tn) !== null) {
    lines.push(`Memory read bandwidth (the limit): ${ctx.threadCounts.map((t) => `${fmt(bw(t))} GB/s on ${t} thread${t > 1 ? 's' : ''}`).join(', ')}.`);
    fig.bandwidthGBs1 = bw(t1);
    fig.bandwidthGBsAll = bw(tn);
  }

  const ffn = HEADLINE_SHAPE;
  const q = mm(ffn, 'q4_0', tn);
  const f32 = mm(ffn, 'f32', tn);
  if (q) {
    const q1 = mm(ffn, 'q4_0', t1);
    const f1 = mm(ffn, 'f32', t1);
    lines.push(
      `q4_0 ${ffn}, ${threadsLabel(tn)}: ${fmtMs(q.ms)} ms (median), ${fmt(q.weightGBs)} GB/s of weights; ` +
        `paired with reads of the same bytes at the same moments, ${fmtPct(q.bwSharePaired)} of the memory's read speed (${fmt(q.pairedReadGBs)} GB/s, ${q.pairs} pairs); ` +
        `against the run's best bandwidth pass, ${fmtPct(q.bwShare)} (fastest call ${fmtMs(q.minMs)} ms: ${fmtPct(q.bwShareBest)}); ` +
        `${fmtX(q.vsF32)} faster than f32 (${fmtMs(f32?.ms)} ms)` +
        (q1 && tn !== t1 ? `. 1 thread: ${fmtMs(q1.ms)} ms, ${fmtPct(q1.bwSharePaired)} paired, ${fmtPct(q1.bwShare)} of the best pass, ${fmtX(q1.vsF32)} vs f32 (${fmtMs(f1?.ms)} ms).` : '.'),
    );
    const qp = mm(ffn, 'q4_0 prepared', tn);
    if (qp) lines[lines.length - 1] += ` Prepared q4_0: ${fmtMs(qp.ms)} ms, ${fmtPct(qp.bwSharePaired)} paired, ${fmtPct(qp.bwShare)} of the best pass, ${fmtX(qp.vsF32)} vs f32.`;
    // The shares disagree when the machine's bandwidth moved between section E's passes and this cell: say which way.
    const limit = bw(tn);
    if (q.pairedReadGBs && limit && q.pairedReadGBs > limit) {
      lines[lines.length - 1] +=
        ` Note: the memory was faster during this cell (${fmt(q.pairedReadGBs)} GB/s) than in any of the limit's passes (${fmt(limit)}), so the share of the limit flatters the kernel.`;
    }
    fig.q4_0_prepared_ffn_bwShare = qp?.bwShare ?? null;
    fig.q4_0_ffn_bwShareBest = q.bwShareBest;
    fig.q4_0_ffn_bwSharePaired = q.bwSharePaired;
    fig.q4_0_ffn_pairedReadGBs = q.pairedReadGBs;
    fig.q4_0_ffn_bwSharePaired1 = q1?.bwSharePaired ?? null;
    fig.q4_0_ffn_ms = q.ms;
    fig.q4_0_ffn_bwShare = q.bwShare;
    fig.q4_0_ffn_vsF32 = q.vsF32;
  }

  // Prefill: q4_0 as quantize() leaves it and after prepare(); per token against batch 1 of the same variant.
  const prefill = '512x4096 @ 4096x4096';
  const batch1 = '1x4096 @ 4096x4096';
  for (const v of ['q4_0', 'q4_0 prepared']) {
    const p1 = mm(prefill, v, t1);
    const pn = mm(prefill, v, tn);
    const m1 = mm(batch1, v, tn);
    if (!p1 && !pn) continue;
    const perTok = pn ? pn.ms / 512 : null;
    const gain = perTok !== null && m1 ? m1.ms / perTok : null;
    const f = mm(prefill, 'f32', tn);
    lines.push(
      `${v} ${prefill}: ${fmt(p1?.gflops)} GFLOPS on 1 thread, ${fmt(pn?.gflops)} GFLOPS on ${threadsLabel(tn)}; ` +
        `per token, batch 512 runs at ${fmtX(gain)} the speed of batch 1 (${fmtMs(perTok)} vs ${fmtMs(m1?.ms)} ms a token at ${batch1}, ${threadsLabel(tn)})` +
        (f && pn ? `; f32 at the same shape: ${fmt(f.gflops)} GFLOPS (${v} ${fmtX(pn.vsF32)} its speed).` : '.'),
    );
    const key = v === 'q4_0' ? 'q4_0' : 'q4_0_prepared';
    fig[`${key}_prefill_gflops1`] = p1?.gflops ?? null;
    fig[`${key}_prefill_gflopsAll`] = pn?.gflops ?? null;
    fig[`${key}_prefill_perTokenSpeedup`] = gain;
  }

  const tiny = d.find((r) => r.model.startsWith('TinyLlama') && r.type === 'q4_0');
  if (tiny) {
    const tf = d.find((r) => r.model === tiny.model && r.type === 'f32');
    lines.push(
      `TinyLlama-shaped decode, q4_0, ${tiny.threads} threads: ${fmt(tiny.tokensPerS)} tokens/s (${fmt(tiny.msPerToken)} ms/token), ` +
        `${fmt(tiny.weightGBs)} GB/s of weights = ${fmtPct(tiny.bwShare)} of the measured bandwidth` +
        (tf ? `; f32: ${fmt(tf.tokensPerS)} tokens/s (q4_0 ${fmtX(tiny.vsF32)} faster)` : '') +
        `; ${fmt(tiny.allocBytesPerToken)} JS bytes/token, ${tiny.gcs.minor + tiny.gcs.major} GCs.`,
    );
    const tp = d.find((r) => r.model === tiny.model && r.type === 'q4_0 prepared');
    if (tp) {
      lines.push(
        `TinyLlama-shaped decode, q4_0 prepared at load: ${fmt(tp.tokensPerS)} tokens/s (${fmt(tp.msPerToken)} ms/token), ` +
          `${fmt(tp.weightGBs)} GB/s = ${fmtPct(tp.bwShare)} of the measured bandwidth; ${fmt(tp.allocBytesPerToken)} JS bytes/token, ${tp.gcs.minor + tp.gcs.major} GCs.`,
      );
      fig.tinyllama_q4_0_prepared_tokensPerS = tp.tokensPerS;
      fig.tinyllama_q4_0_prepared_bwShare = tp.bwShare;
    }
    fig.tinyllama_q4_0_tokensPerS = tiny.tokensPerS;
    fig.tinyllama_q4_0_weightGBs = tiny.weightGBs;
    fig.tinyllama_q4_0_bwShare = tiny.bwShare;
  }

  // The native hot path's budget: no GC and under 1 KB of JS allocation per decoded token.
  const over = ctx.info.name === 'native' ? d.filter((r) => r.allocBytesPerToken >= 1024 || r.gcs.minor + r.gcs.major > 0) : [];
  if (over.length) {
    lines.push(
      `OVER THE DECODE BUDGET (no GC, under 1 KB of JS per token): ` +
        over.map((r) => `${r.model} ${r.type}: ${fmt(r.allocBytesPerToken)} B/token, ${r.gcs.minor + r.gcs.major} GCs`).join('; ') +
        '.',
    );
  }
  fig.decodeRowsOverBudget = over.length;

  const report = MATMUL_SHAPES.filter((s) => s.report);
  const rq = (th: number) => report.map((s) => mm(s.label, 'q4_0', th)?.vsF32 ?? null);
  if (rq(t1).some((v) => v !== null)) {
    lines.push(
      `The report's four shapes (${report.map((s) => s.label).join(', ')}), q4_0 vs f32: ` +
        ctx.threadCounts.map((th) => `${rq(th).map(fmtX).join(', ')} on ${th} thread${th > 1 ? 's' : ''}`).join('; ') +
        ' (the report: 0.31x, 0.31x, 0.56x, 0.21x). These shapes take microseconds and stay in cache.',
    );
  }

  const best = ctx.info.isa;
  const simdAt = (shape: string, impl: string) => c.find((r) => r.shape === shape && r.type === 'q4_0' && r.impl === impl)?.ms ?? null;
  for (const shape of ['1x4096 @ 4096x4096', '1x1024 @ 1024x1024']) {
    const s = simdAt(shape, best);
    const sc = simdAt(shape, 'scalar');
    const js = simdAt(shape, 'js');
    if (s !== null && (sc !== null || js !== null)) {
      lines.push(`q4_0 ${shape}, 1 thread: ${best} ${fmtX(sc !== null ? sc / s : null)} faster than scalar C++, ${fmtX(js !== null ? js / s : null)} faster than the JS fallback (the report: SIMD 0.84x of scalar).`);
      fig.q4_0_simdVsScalar = sc !== null ? sc / s : null;
      fig.q4_0_simdVsJs = js !== null ? js / s : null;
      break;
    }
  }

  const fa = f.find((r) => r.mode === 'async');
  const fs = f.find((r) => r.mode === 'sync' && r.perTask === 1);
  const fs8 = f.find((r) => r.mode === 'sync' && r.perTask > 1);
  const idle = f.find((r) => r.mode === 'idle');
  if (fa && fs) {
    const d = (r: LoopDelayRecord) => `p99 ${fmtMs(r.p99)} ms (p50 ${fmtMs(r.p50)}, max ${fmtMs(r.max)})`;
    lines.push(
      `Event-loop delay during back-to-back 1x4096 @ 4096x11008 q4_0 matvecs, ${threadsLabel(fa.threads)}: matmulAsync ${d(fa)}; ` +
        `sync matmul yielding after each call ${d(fs)}` +
        (fs8 ? `, after every ${fs8.perTask} calls ${d(fs8)}` : '') +
        (idle ? `; idle loop p99 ${fmtMs(idle.p99)} ms.` : '.'),
    );
    fig.asyncDelayP99 = fa.p99;
    fig.syncDelayP99 = fs.p99;
    fig.syncBatchDelayP99 = fs8?.p99 ?? null;
  }
  for (const r of g) {
    if (!r.qkernels || !r.llamacpp || !r.mmap) continue;
    const key = `${r.recipe}_${r.threads}t`;
    lines.push(
      `TinyLlama-shaped ${r.recipe}, ${threadsLabel(r.threads)}, mmap, vs llama.cpp in the same run: decode ${fmt(r.qkernels.decodeTokensPerSecond)} vs ${fmt(r.llamacpp.decodeTokensPerSecond)} tokens/s (${fmtX(r.decodeRatio)}), ` +
        `prefill ${fmt(r.qkernels.prefillTokensPerSecond)} vs ${fmt(r.llamacpp.prefillTokensPerSecond)} (${fmtX(r.prefillRatio)}), TTFT ${`${Math.round(r.qkernels.timeToFirstTokenMs)} ms`} vs ${`${Math.round(r.llamacpp.timeToFirstTokenMs)} ms`}, ` +
        `RSS ${fmt(r.qkernels.rssBytes / 2 ** 20)} vs ${fmt(r.llamacpp.rssBytes / 2 ** 20)} MiB.`,
    );
    fig[`vsllama_${key}_decodeRatio`] = r.decodeRatio;
    fig[`vsllama_${key}_prefillRatio`] = r.prefillRatio;
  }
  return { lines, figures: fig };
}

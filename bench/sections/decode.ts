// D. Realistic inference: batch-1 decode through the library's model runner
// (loadModel, Sequence.evaluate of one token at a time) on llama-shaped GGUF
// files with random weights (bench/models.ts), at hidden 512 (8 layers) and
// at the TinyLlama 1.1B shape, for q4_0 (in the file's layout and interleaved
// at load), q4_k_m, q8_0 and f32, on all threads: ms/token, tokens/s, weight
// GB/s (and its share of the measured bandwidth), JS bytes allocated per
// token, garbage collections.
import * as fs from 'fs';
import { setThreads } from '../../lib/index';
import { loadModel, type Model, type Sequence } from '../../lib/model/model';
import { weightBytesPerToken } from '../../lib/model/weights';
import type { Context, SectionReport } from '../context';
import { fmt, fmtBytes, fmtX, type Table } from '../format';
import { benchModelFile, LLAMA_512, TINYLLAMA, type BenchModel } from '../models';
import { forceGc, gcCountsBetween, median, settle, type GcCounts } from '../timing';

export interface DecodeRecord {
  model: string;
  /** the recipe, or 'q4_0 prepared' for q4_0 interleaved at load (loadModel's default) */
  type: string;
  threads: number;
  tokens: number;
  runs: number;
  /** median over runs of (run time / tokens) */
  msPerToken: number;
  /** each run's ms/token */
  runMsPerToken: number[];
  tokensPerS: number;
  weightBytesPerToken: number;
  weightGBs: number;
  bwShare: number | null;
  /** JS heap + ArrayBuffer growth per token (the smallest over runs; includes the measuring itself, a few bytes) */
  allocBytesPerToken: number;
  gcs: GcCounts;
  /** seconds to write the model file (0: an earlier run wrote it) */
  buildSeconds: number;
  vsF32: number | null;
}

const TOKENS = 50;

interface Variant {
  type: string;
  recipe: string;
  interleave: boolean;
}

const VARIANTS: Variant[] = [
  { type: 'q4_0', recipe: 'q4_0', interleave: false },
  { type: 'q4_0 prepared', recipe: 'q4_0', interleave: true },
  { type: 'q4_k_m', recipe: 'q4_k_m', interleave: true },
  { type: 'q8_0', recipe: 'q8_0', interleave: true },
  { type: 'f32', recipe: 'f32', interleave: true },
];

function heapAndBuffers(): { heap: number; buffers: number } {
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}

/** The measured loop: one token at a time, the one-element array reused. */
async function decodeRun(seq: Sequence, one: number[], vocab: number): Promise<void> {
  seq.reset();
  for (let i = 0; i < TOKENS; i++) {
    one[0] = 3 + ((i * 7919) % (vocab - 3));
    await seq.evaluate(one);
  }
}

export async function runDecode(ctx: Context): Promise<{ report: SectionReport; records: DecodeRecord[] }> {
  const quick = ctx.args.quick;
  const notes: string[] = [];
  const plans: { model: BenchModel; variants: Variant[]; runs: number }[] = [{ model: LLAMA_512, variants: VARIANTS, runs: quick ? 3 : 5 }];
  if (quick) {
    plans.push({ model: TINYLLAMA, variants: VARIANTS.filter((v) => v.recipe === 'q4_0'), runs: 1 });
    notes.push('--quick: the TinyLlama shape with q4_0 only.');
  } else {
    // f32 at the TinyLlama shape is a 4.4 GB file: --long only.
    plans.push({ model: TINYLLAMA, variants: VARIANTS.filter((v) => ctx.args.long || v.recipe !== 'f32'), runs: 3 });
    if (!ctx.args.long) notes.push('The TinyLlama shape without f32 (a 4.4 GB file): `--long` includes it.');
  }
  const threads = ctx.threads;
  setThreads(threads);
  const records: DecodeRecord[] = [];
  const total = plans.reduce((a, p) => a + p.variants.length * p.runs, 0);
  let done = 0;
  for (const plan of plans) {
    const c = plan.model;
    const files = new Map<string, { file: string; writeSeconds: number | null }>();
    for (const v of plan.variants) {
      if (!files.has(v.recipe)) {
        files.set(v.recipe, await benchModelFile(c, v.recipe, () => ctx.progress.update('D', done / total, `D: ${c.name}: writing the ${v.recipe} file (once)`)));
      }
    }
    const states: { v: Variant; model: Model; seq: Sequence; ms: number[]; allocs: number[]; gcs: GcCounts }[] = [];
    try {
      for (const v of plan.variants) {
        const model = await loadModel(files.get(v.recipe)!.file, { threads, interleave: v.interleave, contextLength: TOKENS + 8 });
        const seq = model.createSequence();
        states.push({ v, model, seq, ms: [], allocs: [], gcs: { minor: 0, major: 0, other: 0 } });
        // warm-up on the very path measured: JIT tiers, scratch buffers, the pool, the mapped pages
        await decodeRun(seq, [0], c.spec.vocab);
      }
      // Runs interleaved across types, so that a burst of load on a shared machine spreads over them.
      for (let r = 0; r < plan.runs; r++) {
        for (const st of states) {
          ctx.progress.update('D', done / total, `D: ${c.name} ${st.v.type}: decoding ${TOKENS} tokens (run ${r + 1}/${plan.runs})`);
          const one = [0];
          forceGc();
          await settle(60);
          const a0 = heapAndBuffers();
          const t1 = performance.now();
          await decodeRun(st.seq, one, c.spec.vocab);
          const t2 = performance.now();
          const a1 = heapAndBuffers();
          const g = await gcCountsBetween(t1, t2);
          st.gcs = { minor: st.gcs.minor + g.minor, major: st.gcs.major + g.major, other: st.gcs.other + g.other };
          st.ms.push((t2 - t1) / TOKENS);
          st.allocs.push((a1.heap - a0.heap + Math.max(0, a1.buffers - a0.buffers)) / TOKENS);
          done++;
        }
      }
      const perType: DecodeRecord[] = [];
      for (const st of states) {
        const ms = median(st.ms);
        const bytes = weightBytesPerToken(st.model.weights!);
        const rec: DecodeRecord = {
          model: c.name,
          type: st.v.type,
          threads,
          tokens: TOKENS,
          runs: st.ms.length,
          msPerToken: ms,
          runMsPerToken: st.ms,
          tokensPerS: 1000 / ms,
          weightBytesPerToken: bytes,
          weightGBs: bytes / (ms * 1e6),
          bwShare: null, // set from the final bandwidth (section E)
          allocBytesPerToken: Math.min(...st.allocs),
          gcs: st.gcs,
          buildSeconds: files.get(st.v.recipe)!.writeSeconds ?? 0,
          vsF32: null,
        };
        perType.push(rec);
        records.push(rec);
      }
      const f32 = perType.find((r) => r.type === 'f32');
      for (const r of perType) r.vsF32 = f32 ? f32.msPerToken / r.msPerToken : null;
    } finally {
      for (const st of states) st.model.close();
      forceGc();
    }
    for (const [recipe, f] of files) {
      notes.push(`${c.name} ${recipe}: ${(fs.statSync(f.file).size / 1e6).toFixed(0)} MB file${f.writeSeconds === null ? ' (written by an earlier run)' : `, written in ${fmt(f.writeSeconds)} s`}.`);
    }
  }
  ctx.progress.done('D');

  const tables: Table[] = [
    {
      title: `Batch-1 decode, ${TOKENS} tokens, ${threads} thread${threads > 1 ? 's' : ''}`,
      headers: ['model', 'type', 'weights MB', 'ms/token', 'tokens/s', 'vs f32', 'weight GB/s', 'JS bytes/token', 'GCs minor/major', 'runs'],
      align: ['l', 'l'],
      rows: records.map((r) => [
        r.model,
        r.type,
        fmt(r.weightBytesPerToken / 1e6),
        fmt(r.msPerToken),
        fmt(r.tokensPerS),
        r.vsF32 === null ? '-' : r.type === 'f32' ? '1' : fmtX(r.vsF32),
        fmt(r.weightGBs),
        fmtBytes(r.allocBytesPerToken),
        `${r.gcs.minor}/${r.gcs.major}`,
        String(r.runs),
      ]),
    },
  ];
  const shapes = plans.map(
    (p) => `${p.model.name}: hidden ${p.model.spec.hidden}, ${p.model.spec.layers} layers, ${p.model.spec.heads} heads (${p.model.spec.kvHeads} KV), FFN ${p.model.spec.ffn}, vocab ${p.model.spec.vocab}.`,
  );
  const intro = [
    'The library\'s model runner: loadModel() on a GGUF file, then Sequence.evaluate() of one token at a time (one native call a token: every layer, attention over the KV cache, the output head, on the thread pool). ' +
      '"q4_0": the file\'s layout (loadModel interleave: false); "q4_0 prepared": the default, q4_0 matmul weights interleaved at load (prepare()\'s layout); q4_k_m: llama.cpp\'s recipe (q4_K and q6_K).',
    ...shapes,
    `ms/token: median over runs of ${TOKENS} tokens (after a warm-up run); weight GB/s: bytes of all matmul weights (each read once per token) / time, as a share of the memory bandwidth in section E; ` +
      'JS bytes/token: JS heap (and ArrayBuffer) growth over a run, the smallest run, measuring included; GCs: collections that started during the runs, all runs together.',
  ];
  return { report: { id: 'D', title: 'D. Realistic inference: batch-1 decode', intro, tables, notes, records: records as unknown as Record<string, unknown>[] }, records };
}

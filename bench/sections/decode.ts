// D. Realistic inference: batch-1 decode of 50 tokens through a llama-shaped
// stack (bench/model.ts) with random weights, at hidden 512 (8 layers) and at
// the TinyLlama 1.1B shape, for q4_0, q4_k (when this build has it), q8_0 and
// f32, on all threads: ms/token, tokens/s, weight GB/s (and its share of the
// measured bandwidth), JS bytes allocated per token, garbage collections.
import { quantize, rowBytes, setThreads, type WeightType } from '../../lib/index';
import { usable, type Context, type SectionReport } from '../context';
import { fmt, fmtBytes, fmtX, type Table } from '../format';
import { generateLlamaWeights, LLAMA_512, LlamaDecoder, prepareWeights, TINYLLAMA, weightBytesPerToken, weightElements, type LlamaConfig, type LlamaWeights } from '../model';
import { fillUniform, forceGc, gcCountsBetween, median, settle, type GcCounts } from '../timing';

export interface DecodeRecord {
  model: string;
  config: LlamaConfig;
  /** the weight type, or 'q4_0 prepared' for q4_0 weights through prepare() */
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
  /** seconds to generate and quantize the weights of all the types of this model */
  buildSeconds: number;
  vsF32: number | null;
}

const TOKENS = 50;

function tokenIds(n: number, vocab: number, seed: number): Int32Array {
  const t = new Int32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    t[i] = s % vocab;
  }
  return t;
}

/**
 * Brings LlamaDecoder.step to optimized code before anything is measured: the
 * interpreter and baseline tiers box every float, and a 50-token run is too
 * short for V8 to get past them. A tiny model is enough (the code is shared).
 */
function warmUpJit(): void {
  const tiny: LlamaConfig = { name: 'warm-up', hidden: 64, layers: 1, heads: 2, kvHeads: 1, ffn: 64, vocab: 64, maxTokens: 32 };
  const dec = new LlamaDecoder(generateLlamaWeights(tiny, ['f32']).get('f32')!);
  const tokens = tokenIds(32, tiny.vocab, 3);
  for (let r = 0; r < 40; r++) decodeRun(dec, tokens);
}

/** JS heap growth; ArrayBuffers only when they grew (their frees land late, after a collection). */
function heapAndBuffers(): { heap: number; buffers: number } {
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}

/** Seconds a type's quantizer would take over `weights` weights, from one 1M-weight tensor. */
function predictQuantizeSeconds(t: WeightType, weights: number): number {
  if (t === 'f32') return 0;
  const rows = 512;
  const cols = 2048;
  const src = fillUniform(new Float32Array(rows * cols), 5, 0.02);
  const out = new Uint8Array(rows * rowBytes(t, cols));
  const t0 = performance.now();
  quantize(src, rows, cols, t, { out });
  return ((performance.now() - t0) / 1000) * (weights / (rows * cols));
}

/** The measured loop: kept tiny, so the decoder is the only thing that could allocate. */
function decodeRun(dec: LlamaDecoder, tokens: Int32Array): void {
  dec.reset();
  for (let i = 0; i < tokens.length; i++) dec.step(tokens[i]);
}

interface Plan {
  config: LlamaConfig;
  types: WeightType[];
  runs: (t: WeightType) => number;
}

export async function runDecode(ctx: Context): Promise<{ report: SectionReport; records: DecodeRecord[] }> {
  const quick = ctx.args.quick;
  const types = usable(ctx, ['q4_0', 'q4_k', 'q8_0', 'f32']);
  const notes: string[] = [];
  if (!types.includes('q4_k')) notes.push(`q4_k: not measured, ${ctx.typeStatus.find((s) => s.type === 'q4_k')?.reason ?? 'not available'}.`);
  const plans: Plan[] = [{ config: LLAMA_512, types, runs: () => (quick ? 3 : 5) }];
  if (quick) {
    if (types.includes('q4_0')) plans.push({ config: TINYLLAMA, types: ['q4_0'], runs: () => 1 });
    notes.push('--quick: TinyLlama shape with q4_0 only (the full run adds q8_0, f32 at 4.4 GB, and q4_k when its quantizer is fast enough).');
  } else {
    // A quantizer that would take minutes over the 1.03 G weights (K-quants with llama.cpp's searches, without
    // SIMD) keeps its type out of the TinyLlama shape in the default run; --long keeps everything.
    const limitS = 45;
    const tinyTypes = types.filter((t) => {
      if (ctx.args.long) return true;
      const s = predictQuantizeSeconds(t, weightElements(TINYLLAMA));
      if (s <= limitS) return true;
      notes.push(
        `${t}: not decoded at the TinyLlama shape: this build's ${t} quantizer would take ~${fmt(s)} s over its ${fmt(weightElements(TINYLLAMA) / 1e9)} G weights ` +
          `(${fmt((s * 1e9) / weightElements(TINYLLAMA))} ns a weight; the limit is ${limitS} s). \`--long\` includes it.`,
      );
      return false;
    });
    plans.push({ config: TINYLLAMA, types: tinyTypes, runs: (t) => (t === 'f32' ? 2 : 3) });
  }
  const threads = ctx.threads;
  setThreads(threads);
  const records: DecodeRecord[] = [];
  warmUpJit();
  // Progress in rough nanoseconds: ~5 ns a weight element per type to generate and quantize, then a
  // decode run streams every weight once a token (f32 ~8x the bytes of q4).
  const runCost = (c: LlamaConfig, t: string) => weightElements(c) * TOKENS * (t === 'f32' ? 0.15 : 0.03);
  const genCost = (t: WeightType) => (t.endsWith('_k') ? 100 : 6);
  const work = plans.map((p) => ({
    gen: weightElements(p.config) * p.types.reduce((a, t) => a + genCost(t), 0),
    dec: p.types.reduce((a, t) => a + runCost(p.config, t) * p.runs(t) * (t === 'q4_0' ? 2 : 1), 0),
  }));
  const total = work.reduce((a, w) => a + w.gen + w.dec, 0);
  let base = 0;

  for (const [pi, plan] of plans.entries()) {
    const c = plan.config;
    const w0 = work[pi];
    const t0 = performance.now();
    let models: Map<WeightType, LlamaWeights> | null = generateLlamaWeights(c, plan.types, {
      seed: 42,
      onProgress: (done, all) => ctx.progress.update('D', (base + (done / all) * w0.gen) / total, `D: ${c.name}: generating ${plan.types.join(', ')} weights ${Math.round((100 * done) / all)}%`),
    });
    const buildSeconds = (performance.now() - t0) / 1000;
    base += w0.gen;
    const tokens = tokenIds(TOKENS, c.vocab, 7);
    // One decoder per type (and q4_0 once more through prepare()), warmed up on the very code path
    // measured (JIT, scratch buffers, thread pool).
    const variants = plan.types.flatMap((t) => (t === 'q4_0' ? [t, 'q4_0 prepared'] : [t]));
    const variantWeights = new Map<string, LlamaWeights>();
    for (const v of variants) variantWeights.set(v, v === 'q4_0 prepared' ? prepareWeights(models.get('q4_0')!) : models.get(v as WeightType)!);
    const states = variants.map((t) => {
      const dec = new LlamaDecoder(variantWeights.get(t)!, Math.max(c.maxTokens, TOKENS));
      // A whole run where runs are short: matrices of another layout (prepare()) give the decoder's
      // property accesses new shapes, and V8 needs more than a few steps to re-optimize for them
      // (until then it boxes floats: allocations and scavenges that are not the library's).
      dec.reset();
      const warm = weightElements(c) < 1e8 ? TOKENS : 3;
      for (let i = 0; i < warm; i++) dec.step(tokens[i]);
      return { t, dec, runs: plan.runs(t === 'q4_0 prepared' ? 'q4_0' : (t as WeightType)), msPerToken: [] as number[], allocs: [] as number[], gcs: { minor: 0, major: 0, other: 0 } as GcCounts, spentMs: 0 };
    });
    // Runs interleaved across types (round r of every type, then round r + 1), so that a burst of load on a
    // shared machine spreads over the types instead of landing on one. Slow types (kernels without SIMD
    // yet) stop early: a run or two of 50 tokens says enough.
    const capMs = quick ? 3000 : 12000;
    const rounds = Math.max(...states.map((st) => st.runs));
    for (let r = 0; r < rounds; r++) {
      for (const st of states) {
        if (r >= st.runs || (r > 0 && st.spentMs >= capMs)) continue;
        ctx.progress.update('D', base / total, `D: ${c.name} ${st.t}: decoding ${TOKENS} tokens (run ${r + 1}/${st.runs})`);
        forceGc();
        // The collection's own gc entry (and the release of what it freed) must land before the run starts.
        await settle(60);
        const a0 = heapAndBuffers();
        const t1 = performance.now();
        decodeRun(st.dec, tokens);
        const t2 = performance.now();
        const a1 = heapAndBuffers();
        st.gcs = addGc(st.gcs, await gcCountsBetween(t1, t2));
        st.msPerToken.push((t2 - t1) / TOKENS);
        st.spentMs += t2 - t1;
        st.allocs.push((a1.heap - a0.heap + Math.max(0, a1.buffers - a0.buffers)) / TOKENS);
        base += runCost(c, st.t);
      }
    }
    const perType: DecodeRecord[] = [];
    for (const st of states) {
      const t = st.t;
      const weights = variantWeights.get(t)!;
      base += runCost(c, t) * (st.runs - st.msPerToken.length);
      const ms = median(st.msPerToken);
      const bytes = weightBytesPerToken(weights);
      const weightGBs = bytes / (ms * 1e6);
      const rec: DecodeRecord = {
        model: c.name,
        config: c,
        type: t,
        threads,
        tokens: TOKENS,
        runs: st.msPerToken.length,
        msPerToken: ms,
        runMsPerToken: st.msPerToken,
        tokensPerS: 1000 / ms,
        weightBytesPerToken: bytes,
        weightGBs,
        bwShare: null, // set from the final bandwidth (section E)
        allocBytesPerToken: Math.min(...st.allocs),
        gcs: st.gcs,
        buildSeconds,
        vsF32: null,
      };
      perType.push(rec);
      records.push(rec);
    }
    const f32 = perType.find((r) => r.type === 'f32');
    for (const r of perType) r.vsF32 = f32 ? f32.msPerToken / r.msPerToken : null;
    models = null; // the weights of this shape can go before the next is built
    variantWeights.clear();
    states.length = 0;
    forceGc();
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
    (p) =>
      `${p.config.name}: hidden ${p.config.hidden}, ${p.config.layers} layers, ${p.config.heads} heads (${p.config.kvHeads} KV), FFN ${p.config.ffn}, vocab ${p.config.vocab}, ` +
      `${fmt(weightElements(p.config) / 1e6)}M matmul weights; weights generated and quantized in ${fmt(records.find((r) => r.model === p.config.name)?.buildSeconds ?? NaN)} s`,
  );
  const intro = [
    'Per token: embedding row, then per layer RMSNorm, q/k/v projections, RoPE, attention over the growing KV cache, output projection, RMSNorm, SwiGLU FFN (gate, up, down), residuals; final RMSNorm and the output head (logits over the vocabulary). ' +
      'Every matmul is `matmul(w, x, 1, out)` into preallocated buffers; the rest is plain loops (bench/model.ts). ' +
      '"q4_0 prepared": the same q4_0 model with every matrix through prepare() at load (the interleaved layout).',
    ...shapes,
    `ms/token: median over runs of ${TOKENS} tokens (after a JIT warm-up); weight GB/s: bytes of all matmul weights (each read once per token) / time, as a share of the memory bandwidth in section E; ` +
      'JS bytes/token: JS heap (and ArrayBuffer) growth over a run, the smallest run, measuring included; GCs: collections that started during the runs (by their start time), all runs together.',
  ];
  return { report: { id: 'D', title: 'D. Realistic inference: batch-1 decode', intro, tables, notes, records: records as unknown as Record<string, unknown>[] }, records };
}

function addGc(a: GcCounts, b: GcCounts): GcCounts {
  return { minor: a.minor + b.minor, major: a.major + b.major, other: a.other + b.other };
}

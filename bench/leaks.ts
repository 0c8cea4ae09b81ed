// The leak campaign (npm run test:leaks; node --expose-gc dist/bench/leaks.js):
// every public call many times over, with resident memory, the JS heap,
// external memory and ArrayBuffer memory sampled after gc() at 20 points, and
// the slope of each (bytes per call, least squares over the samples after
// the first quarter, the warm-up) reported and checked. A leak of one small
// object per call shows as a slope of tens of bytes; the limits allow the
// noise of a shared machine.
//
//   node --expose-gc dist/bench/leaks.js [--scale S] [--only NAME,NAME] [--json]
//
// --scale multiplies every call count (1: 1,000,000 calls of the cheap ones;
// CI runs 0.1). Calls that do I/O or load a model run fewer times (their
// count is in the table); async calls are awaited one at a time.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  dequantize, gptq, loadModel, matmul, matmulAsync, openGguf, prepare, quantize, writeGguf, type Model, type QuantizedMatrix,
} from '../lib/index';
import { writeSyntheticLlama } from '../lib/model/synthetic';
import { loadAddon } from '../lib/native';

// glibc keeps freed pages: give them back before each sample, so resident
// memory is live memory and not the allocator's high-water mark (which rises
// in steps and looks like a leak to a slope)
const addon = loadAddon() as unknown as { releaseFreeMemory?: () => boolean };

interface Case {
  name: string;
  /** calls at scale 1 */
  calls: number;
  setup?: () => Promise<void>;
  run: (i: number) => void | Promise<unknown>;
}

interface Sample {
  calls: number;
  rss: number;
  /** rss - heapTotal: what is resident outside V8's heap (native code's memory; V8 grows its heap's capacity in steps of megabytes that rss alone would show as leaks) */
  native: number;
  heap: number;
  external: number;
  arrayBuffers: number;
}

const KEYS = ['rss', 'native', 'heap', 'external', 'arrayBuffers'] as const;
// bytes per call above which a slope is a leak (resident memory is page-granular and noisy; rss itself is reported, not judged)
const LIMITS: Record<(typeof KEYS)[number], number> = { rss: Infinity, native: 24, heap: 4, external: 4, arrayBuffers: 4 };
// bytes grown in all below which a slope is noise: resident memory moves by
// pages and megabyte-sized allocator and V8 steps, the JS heap by feedback
// and code as functions warm up
const FLOOR: Record<(typeof KEYS)[number], number> = { rss: Infinity, native: 2 * 2 ** 20, heap: 256 * 1024, external: 256 * 1024, arrayBuffers: 256 * 1024 };

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with node --expose-gc');
  g();
  g();
}

function sample(calls: number): Sample {
  gc();
  addon.releaseFreeMemory?.();
  const m = process.memoryUsage();
  return { calls, rss: m.rss, native: m.rss - m.heapTotal, heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

async function measure(c: Case, calls: number): Promise<{ name: string; calls: number; seconds: number; slopes: Record<string, number>; leak: string[] }> {
  await c.setup?.();
  const points = 20;
  const per = Math.max(1, Math.floor(calls / points));
  const samples: Sample[] = [];
  const t0 = Date.now();
  let i = 0;
  // warm-up: JIT, scratch buffers, pools
  for (let w = 0; w < Math.min(per, 1000); w++) await c.run(i++);
  samples.push(sample(0));
  for (let p = 1; p <= points; p++) {
    for (let k = 0; k < per; k++) {
      const r = c.run(i++);
      if (r instanceof Promise) await r;
    }
    // let finalizers and deferred frees run, as a server's event loop would
    // (V8 frees large ArrayBuffers' memory on a background task after gc())
    for (let k = 0; k < 3; k++) {
      await new Promise((res) => setTimeout(res, 5));
      gc();
    }
    samples.push(sample(p * per));
  }
  if (process.env.QKERNELS_LEAK_TRACE) process.stderr.write(`${c.name}: rss MB ${samples.map((s) => (s.rss / 2 ** 20).toFixed(1)).join(' ')}; native MB ${samples.map((s) => (s.native / 2 ** 20).toFixed(1)).join(' ')}\n`);
  const tail = samples.slice(Math.floor(samples.length / 4));
  const slopes: Record<string, number> = {};
  const leak: string[] = [];
  for (const k of KEYS) {
    slopes[k] = slope(tail.map((s) => s.calls), tail.map((s) => s[k]));
    // a leak: above the per-call limit, and enough bytes in all that it is not JIT or feedback warming up
    const grown = slopes[k] * (tail[tail.length - 1].calls - tail[0].calls);
    if (slopes[k] > LIMITS[k] && grown > FLOOR[k]) leak.push(k);
  }
  return { name: c.name, calls: per * points, seconds: (Date.now() - t0) / 1000, slopes, leak };
}

function cases(dir: string): Case[] {
  const K = 256;
  const N = 64;
  const w32 = new Float32Array(N * K).map((_, i) => Math.sin(i * 0.37));
  const x = new Float32Array(K).map((_, i) => Math.cos(i * 0.11));
  const out = new Float32Array(N);
  const deq = new Float32Array(N * K);
  const qbuf = new Uint8Array(N * (K / 32) * 18);
  let m4: QuantizedMatrix = quantize(w32, N, K, 'q4_0');
  let mk: QuantizedMatrix = quantize(w32, N, K, 'q4_k');
  const file = path.join(dir, 'tiny.gguf');
  const written = path.join(dir, 'written.gguf');
  let model: Model | null = null;
  const calib = new Float32Array(64 * K).map((_, i) => Math.sin(i * 0.013) * (1 + (i % 7)));
  const smallW = w32.subarray(0, 8 * K);
  return [
    { name: 'quantize (q4_0 64x256, out given)', calls: 1_000_000, run: () => void quantize(w32, N, K, 'q4_0', { out: qbuf }) },
    { name: 'quantize (q4_k 64x256, new buffer)', calls: 50_000, run: () => void (mk = quantize(w32, N, K, 'q4_k')) },
    { name: 'dequantize (q4_k, out given)', calls: 1_000_000, run: () => void dequantize(mk, deq) },
    { name: 'matmul (q4_0 64x256, out given)', calls: 1_000_000, run: () => void matmul(m4, x, 1, out) },
    { name: 'matmulAsync (q4_0 64x256)', calls: 200_000, run: () => matmulAsync(m4, x, 1, out) },
    { name: 'prepare (q4_0 64x256)', calls: 200_000, run: () => void prepare(m4) },
    {
      name: 'openGguf + tensor data + close',
      calls: 500_000,
      setup: async () => {
        await writeSyntheticLlama(file, { hidden: 64, layers: 1, heads: 2, kvHeads: 1, ffn: 128, vocab: 300, seed: 3 }, 'q4_0');
      },
      run: () => {
        const f = openGguf(file);
        if (f.tensors[1].data.byteLength === 0) throw new Error('empty tensor');
        f.close();
      },
    },
    { name: 'writeGguf (one q4_0 tensor)', calls: 10_000, run: () => writeGguf(written, { metadata: { 'general.architecture': 'llama' }, tensors: [{ name: 'w', matrix: m4 }] }) },
    {
      name: 'loadModel + evaluate + close',
      calls: 10_000,
      run: async () => {
        const m = await loadModel(file, { threads: 1, contextLength: 32 });
        await m.evaluate([1, 5, 9]);
        m.close();
      },
    },
    {
      name: 'model.generate (8 tokens, one sequence)',
      calls: 20_000,
      setup: async () => {
        model = await loadModel(file, { threads: 1, contextLength: 64 });
      },
      run: async () => {
        const seq = model!.createSequence();
        for await (const piece of seq.generate([1, 5, 9], { maxTokens: 8, temperature: 0 })) void piece;
      },
    },
    { name: 'gptq (8x256, 64 calibration rows)', calls: 10_000, run: () => void gptq(smallW, 8, K, calib, { type: 'q4_0' }) },
  ].map((c) => ({ ...c, run: c.run as Case['run'] })) as Case[];
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--scale');
  const scale = Number(at >= 0 ? argv[at + 1] : (process.env.QKERNELS_LEAK_SCALE ?? 1));
  if (!(scale > 0)) throw new Error(`--scale needs a positive number; got ${at >= 0 ? argv[at + 1] : process.env.QKERNELS_LEAK_SCALE}`);
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-leaks-'));
  const results = [];
  try {
    for (const c of cases(dir)) {
      if (only && !only.some((o) => c.name.startsWith(o))) continue;
      const r = await measure(c, Math.max(100, Math.round(c.calls * scale)));
      results.push(r);
      const f = (v: number) => `${v >= 0 ? ' ' : ''}${v.toFixed(2)}`.padStart(8);
      process.stdout.write(`${r.name.padEnd(42)} ${String(r.calls).padStart(9)} calls ${r.seconds.toFixed(1).padStart(6)} s  B/call: rss${f(r.slopes.rss)} native${f(r.slopes.native)} heap${f(r.slopes.heap)} ext${f(r.slopes.external)} ab${f(r.slopes.arrayBuffers)}${r.leak.length ? `  LEAK (${r.leak.join(', ')})` : ''}\n`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (argv.includes('--json')) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  const leaks = results.filter((r) => r.leak.length > 0);
  if (leaks.length > 0) {
    process.stderr.write(`leaks: ${leaks.map((r) => r.name).join('; ')} (limits in B/call: ${JSON.stringify(LIMITS)})\n`);
    return 1;
  }
  return 0;
}

void main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(2);
});

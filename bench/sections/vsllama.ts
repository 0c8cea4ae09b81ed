// G. Running a model, qkernels against llama.cpp: a TinyLlama-1.1B-shaped
// llama with random weights, written once as GGUF per recipe (q4_0, q4_k_m,
// q8_0), run end to end by both engines on the same file in the same run, at 1
// and all threads, mapped and read into memory. Each run is a process of its
// own (bench/runner.ts), alternating engines, so that resident memory is each
// engine's own and a burst of load on a shared machine does not land on one
// engine only.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Context, SectionReport } from '../context';
import { fmt, fmtMB, fmtX, type Table } from '../format';
import { benchModelDir, benchModelFile, TINYLLAMA } from '../models';
import { DECODE_TOKENS, PREFILL_TOKENS, PROMPT_TOKENS, type EngineRun } from '../runner';

export interface VsLlamaRecord {
  recipe: string;
  threads: number;
  mmap: boolean;
  qkernels: EngineRun | null;
  llamacpp: EngineRun | null;
  decodeRatio: number | null;
  prefillRatio: number | null;
  /** how many of the 64 greedy tokens agree before the first difference */
  sameTokens: number | null;
  error?: string;
}

async function modelFile(ctx: Context, recipe: string): Promise<{ file: string; writeSeconds: number | null }> {
  return benchModelFile(TINYLLAMA, recipe, () => ctx.progress.update('G', 0, `G: writing the TinyLlama-shaped ${recipe} model (once; kept in ${benchModelDir()})`));
}

function runChild(engine: string, file: string, threads: number, mmap: boolean): Promise<EngineRun> {
  const script = path.join(__dirname, '..', 'runner.js');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', script, engine, file, String(threads), mmap ? 'mmap' : 'read'], { maxBuffer: 1 << 20, timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${engine} on ${path.basename(file)}: ${(stderr || err.message).trim().split('\n').slice(-3).join(' ')}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as EngineRun);
      } catch {
        reject(new Error(`${engine}: unreadable output ${stdout.slice(0, 200)}`));
      }
    });
  });
}

function samePrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

export async function runVsLlama(ctx: Context): Promise<{ report: SectionReport; records: VsLlamaRecord[] }> {
  const quick = ctx.args.quick;
  // The whole matrix (3 recipes x thread counts x mmap and read, each engine
  // on each) takes ~8 minutes; the default run measures q4_0 and q4_k_m
  // mapped, and q4_0 read too; --filter G or --long runs all of it.
  const full = !quick && (ctx.args.filtered || ctx.args.long);
  const recipes = quick ? ['q4_0'] : full ? ['q4_0', 'q4_k_m', 'q8_0'] : ['q4_0', 'q4_k_m'];
  const threadCounts = quick ? [ctx.threads] : ctx.threadCounts;
  const modesOf = (recipe: string) => (quick ? [true] : full || recipe === 'q4_0' ? [true, false] : [true]);
  const notes: string[] = [];
  const files = new Map<string, string>();
  for (const r of recipes) {
    const { file, writeSeconds } = await modelFile(ctx, r);
    files.set(r, file);
    notes.push(`${r}: ${path.basename(file)}, ${fmtMB(fs.statSync(file).size)} MB${writeSeconds === null ? ' (written by an earlier run)' : `, written in ${fmt(writeSeconds)} s`}.`);
  }
  const records: VsLlamaRecord[] = [];
  const total = recipes.reduce((n, r) => n + threadCounts.length * modesOf(r).length, 0);
  let done = 0;
  for (const recipe of recipes) {
    for (const threads of threadCounts) {
      for (const mmap of modesOf(recipe)) {
        ctx.progress.update('G', done / total, `G: ${recipe}, ${threads} thread${threads > 1 ? 's' : ''}, ${mmap ? 'mmap' : 'read'}`);
        const rec: VsLlamaRecord = { recipe, threads, mmap, qkernels: null, llamacpp: null, decodeRatio: null, prefillRatio: null, sameTokens: null };
        try {
          // The order alternates, so neither engine always runs on a cold page cache.
          const first = done % 2 === 0 ? 'qkernels' : 'llama.cpp';
          const second = first === 'qkernels' ? 'llama.cpp' : 'qkernels';
          const a = await runChild(first, files.get(recipe)!, threads, mmap);
          const b = await runChild(second, files.get(recipe)!, threads, mmap);
          rec.qkernels = first === 'qkernels' ? a : b;
          rec.llamacpp = first === 'qkernels' ? b : a;
          rec.decodeRatio = rec.qkernels.decodeTokensPerSecond / rec.llamacpp.decodeTokensPerSecond;
          rec.prefillRatio = rec.qkernels.prefillTokensPerSecond / rec.llamacpp.prefillTokensPerSecond;
          rec.sameTokens = samePrefix(rec.qkernels.tokens, rec.llamacpp.tokens);
        } catch (e) {
          rec.error = (e as Error).message;
          notes.push(`${recipe}, ${threads} threads, ${mmap ? 'mmap' : 'read'}: FAILED: ${rec.error}`);
        }
        records.push(rec);
        done++;
      }
    }
  }
  ctx.progress.done('G');

  const ok = records.filter((r) => r.qkernels && r.llamacpp);
  const tables: Table[] = [
    {
      title: `TinyLlama-1.1B shape, random weights: decode (${DECODE_TOKENS} greedy tokens after a ${PROMPT_TOKENS}-token prompt) and prefill (${PREFILL_TOKENS}-token prompt), tokens/s`,
      headers: ['type', 'threads', 'weights', 'decode qk', 'decode llama.cpp', 'ratio', 'prefill qk', 'prefill llama.cpp', 'ratio', 'TTFT qk', 'TTFT llama.cpp', 'same tokens'],
      align: ['l', 'r', 'l'],
      rows: ok.map((r) => [
        r.recipe,
        String(r.threads),
        r.mmap ? 'mmap' : 'read',
        fmt(r.qkernels!.decodeTokensPerSecond),
        fmt(r.llamacpp!.decodeTokensPerSecond),
        fmtX(r.decodeRatio),
        fmt(r.qkernels!.prefillTokensPerSecond),
        fmt(r.llamacpp!.prefillTokensPerSecond),
        fmtX(r.prefillRatio),
        `${Math.round(r.qkernels!.timeToFirstTokenMs)} ms`,
        `${Math.round(r.llamacpp!.timeToFirstTokenMs)} ms`,
        `${r.sameTokens}/${DECODE_TOKENS}`,
      ]),
    },
    {
      title: 'Resident memory at the end of each run (its own process)',
      headers: ['type', 'threads', 'weights', 'file MB', 'KV cache qk MB', 'RSS qk MB', 'qk - file - KV MB', 'RSS llama.cpp MB', 'load qk', 'load llama.cpp'],
      align: ['l', 'r', 'l'],
      rows: ok.map((r) => [
        r.recipe,
        String(r.threads),
        r.mmap ? 'mmap' : 'read',
        fmtMB(r.qkernels!.fileBytes),
        fmtMB(r.qkernels!.kvBytes ?? 0),
        fmtMB(r.qkernels!.rssBytes),
        fmtMB(r.qkernels!.rssBytes - r.qkernels!.fileBytes - (r.qkernels!.kvBytes ?? 0)),
        fmtMB(r.llamacpp!.rssBytes),
        `${Math.round(r.qkernels!.loadMs)} ms`,
        `${Math.round(r.llamacpp!.loadMs)} ms`,
      ]),
    },
  ];
  const intro = [
    'Both engines get the same token ids and decode greedily; llama.cpp is node-llama-cpp ' +
      `(prebuilt, CPU, its defaults: f16 KV cache, flash attention 'auto'), qkernels is loadModel() with its defaults (f16 KV cache, q4_0 weights interleaved at load). ` +
      'Prefill: one evaluation of the prompt on an empty cache; TTFT: the 16-token prompt and the first token; decode: the tokens after the first / their time. ' +
      '"same tokens": how many greedy tokens agree before the first difference (random weights make near-ties common; the parity tests bound the logits).',
    'RSS is the process\'s resident memory (node, the addon and the model) after the run and a garbage collection (qkernels: of the prefill\'s sequence). With mmap, llama.cpp also keeps a repacked copy of q4_0/q4_K weights next to the mapped pages.',
  ];
  return { report: { id: 'G', title: 'G. Running a model: qkernels vs llama.cpp', intro, tables, notes, records: records as unknown as Record<string, unknown>[] }, records };
}

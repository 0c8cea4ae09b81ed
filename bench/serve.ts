// Load benchmark of `qkernels serve` (npm run bench:serve): the server in a
// child process on 127.0.0.1 with the TinyLlama-shaped q4_0 model, driven by
// streaming HTTP clients in this process, bounded in time and requests:
//   1. 1, 4 and 8 concurrent clients, each looping over streamed completions:
//      aggregate generated tokens/s, time to first token and inter-token
//      latency percentiles, the server's event-loop delay p99, failures;
//   2. churn: many short requests from 8 clients, 10% of which disconnect
//      mid-stream at random: failed or lost requests, and the server's
//      resident memory at request 200 and at the end;
//   3. node-llama-cpp on the same file with the same number of sequences in
//      one context (its batched decoding), generating the same lengths.
//
//   node dist/bench/serve.js [--quick] [--seconds S] [--churn N] [--no-llama]
import { spawn, type ChildProcess } from 'child_process';
import * as path from 'path';
import { benchModelFile, TINYLLAMA } from './models';
import { asTokens, benchPromptTokens, exactThreads, llamaCpp } from './llamacpp';

interface Args {
  seconds: number;
  churn: number;
  llama: boolean;
  clients: number[];
  maxTokens: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seconds: 20, churn: 2000, llama: true, clients: [1, 4, 8], maxTokens: 32 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--quick') {
      a.seconds = 8;
      a.churn = 300;
    } else if (v === '--seconds') a.seconds = Number(argv[++i]);
    else if (v === '--churn') a.churn = Number(argv[++i]);
    else if (v === '--no-llama') a.llama = false;
    else throw new Error(`unknown option ${v}; usage: serve.js [--quick] [--seconds S] [--churn N] [--no-llama]`);
  }
  if (!(a.seconds > 0) || !(a.churn >= 200)) throw new Error('--seconds must be > 0 and --churn at least 200');
  return a;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function startServer(file: string, parallel: number): Promise<{ child: ChildProcess; url: string }> {
  const cli = path.join(__dirname, '..', 'lib', 'cli.js');
  const child = spawn(process.execPath, [cli, 'serve', file, '--port', '0', '--parallel', String(parallel), '--threads', '2', '--ctx-size', '512', '--queue', '256'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += String(d);
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', (c) => reject(new Error(`the server exited (${String(c)}): ${err}`)));
  });
  return { child, url };
}

async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url + '/metrics')).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.length === 0) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

interface StreamResult {
  ok: boolean;
  aborted: boolean;
  tokens: number;
  ttftMs: number;
  gapsMs: number[];
}

/** One streamed completion; `abortAfter` chunks then the client goes away (null: read to the end). */
async function streamOnce(url: string, prompt: number[], maxTokens: number, seed: number, abortAfter: number | null): Promise<StreamResult> {
  const ac = new AbortController();
  const t0 = performance.now();
  const res = await fetch(url + '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0.8, seed, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
    signal: ac.signal,
  });
  if (res.status !== 200 || !res.body) return { ok: false, aborted: false, tokens: 0, ttftMs: NaN, gapsMs: [] };
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let last = 0;
  let first = NaN;
  let chunks = 0;
  let tokens = -1;
  let done = false;
  const gaps: number[] = [];
  try {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!ev.startsWith('data: ')) return { ok: false, aborted: false, tokens: 0, ttftMs: NaN, gapsMs: [] };
        const data = ev.slice(6);
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const o = JSON.parse(data) as { choices: { text: string }[]; usage?: { completion_tokens: number } };
        if (o.usage) tokens = o.usage.completion_tokens;
        if (o.choices.length > 0 && o.choices[0].text.length > 0) {
          const now = performance.now();
          if (Number.isNaN(first)) first = now - t0;
          else gaps.push(now - last);
          last = now;
          chunks++;
          if (abortAfter !== null && chunks >= abortAfter) {
            ac.abort();
            return { ok: true, aborted: true, tokens: chunks, ttftMs: first, gapsMs: gaps };
          }
        }
      }
    }
  } catch (e) {
    if (abortAfter !== null) return { ok: true, aborted: true, tokens: chunks, ttftMs: first, gapsMs: gaps };
    throw e;
  }
  return { ok: done && tokens === maxTokens, aborted: false, tokens: Math.max(0, tokens), ttftMs: first, gapsMs: gaps };
}

interface Phase {
  clients: number;
  seconds: number;
  requests: number;
  failed: number;
  tokens: number;
  ttft: number[];
  gaps: number[];
  loopP99Ms: number;
}

async function loadPhase(url: string, clients: number, seconds: number, maxTokens: number, vocab: number): Promise<Phase> {
  await scrape(url); // the event-loop histogram restarts from here
  const until = performance.now() + seconds * 1000;
  const p: Phase = { clients, seconds: 0, requests: 0, failed: 0, tokens: 0, ttft: [], gaps: [], loopP99Ms: NaN };
  const t0 = performance.now();
  let seed = 1;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < until) {
        const r = await streamOnce(url, benchPromptTokens(16, vocab, 1 + seed), maxTokens, seed++, null).catch(() => null);
        p.requests++;
        if (r === null || !r.ok) {
          p.failed++;
          continue;
        }
        p.tokens += r.tokens;
        p.ttft.push(r.ttftMs);
        p.gaps.push(...r.gapsMs);
      }
    }),
  );
  p.seconds = (performance.now() - t0) / 1000;
  // prom-client's monitor times a 10 ms timer: its intervals less 10 ms are the loop's delay
  p.loopP99Ms = ((await scrape(url)).get('qkernels_nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000 - LOOP_MONITOR_MS;
  return p;
}

interface Churn {
  requests: number;
  disconnected: number;
  failed: number;
  lost: number;
  rssAt200: number;
  rssEnd: number;
  seconds: number;
}

async function churnPhase(url: string, total: number, vocab: number): Promise<Churn> {
  const out: Churn = { requests: 0, disconnected: 0, failed: 0, lost: 0, rssAt200: NaN, rssEnd: NaN, seconds: 0 };
  let next = 0;
  let rng = 12345;
  const rand = () => ((rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const abortAfter = rand() < 0.1 ? 1 + Math.floor(rand() * 6) : null;
        const r = await streamOnce(url, benchPromptTokens(4 + (i % 5), vocab, 1 + i), 8, i, abortAfter).catch(() => null);
        out.requests++;
        if (r === null) out.lost++;
        else if (r.aborted) out.disconnected++;
        else if (!r.ok) out.failed++;
        if (out.requests === 200) out.rssAt200 = (await scrape(url)).get('qkernels_process_resident_memory_bytes') ?? NaN;
      }
    }),
  );
  out.seconds = (performance.now() - t0) / 1000;
  // the slots of the last disconnected clients are free by the next step
  await new Promise((r) => setTimeout(r, 200));
  const m = await scrape(url);
  out.rssEnd = m.get('qkernels_process_resident_memory_bytes') ?? NaN;
  if ((m.get('qkernels_active_requests') ?? 0) !== 0) out.lost += m.get('qkernels_active_requests')!;
  return out;
}

/** node-llama-cpp: `clients` sequences of one context decoding concurrently (its own batching), `maxTokens` after a 16-token prompt, for `seconds`. */
async function llamaPhase(file: string, clients: number, seconds: number, maxTokens: number, vocab: number): Promise<{ tokens: number; seconds: number }> {
  const llama = await llamaCpp();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  try {
    const context = await model.createContext({ contextSize: 512 * clients, sequences: clients, batchSize: 512, threads: exactThreads(2) });
    try {
      const until = performance.now() + seconds * 1000;
      const t0 = performance.now();
      let tokens = 0;
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          const seq = context.getSequence();
          let round = 0;
          while (performance.now() < until) {
            await seq.clearHistory();
            let n = 0;
            for await (const t of seq.evaluate(asTokens(benchPromptTokens(16, vocab, 1 + c * 1000 + round++)), { temperature: 0.8, seed: round, yieldEogToken: true })) {
              void t;
              if (++n >= maxTokens) break;
            }
            tokens += n;
          }
        }),
      );
      return { tokens, seconds: (performance.now() - t0) / 1000 };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

const LOOP_MONITOR_MS = 10;
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { file } = await benchModelFile(TINYLLAMA, 'q4_0', () => process.stderr.write('writing the TinyLlama-shaped q4_0 model once...\n'));
  const vocab = TINYLLAMA.spec.vocab;
  const { child, url } = await startServer(file, 8);
  const phases: Phase[] = [];
  let churn: Churn;
  const rss0 = (await scrape(url)).get('qkernels_process_resident_memory_bytes') ?? NaN;
  try {
    for (const c of args.clients) {
      process.stderr.write(`serve: ${c} streaming client(s) for ${args.seconds} s\n`);
      phases.push(await loadPhase(url, c, args.seconds, args.maxTokens, vocab));
    }
    process.stderr.write(`serve: churn, ${args.churn} requests from 8 clients, 10% disconnecting\n`);
    churn = await churnPhase(url, args.churn, vocab);
  } finally {
    child.kill('SIGTERM');
  }
  const llamaRates = new Map<number, number>();
  if (args.llama) {
    for (const c of args.clients) {
      process.stderr.write(`llama.cpp: ${c} sequence(s) for ${args.seconds} s\n`);
      const r = await llamaPhase(file, c, args.seconds, args.maxTokens, vocab);
      llamaRates.set(c, r.tokens / r.seconds);
    }
  }

  const single = phases[0].tokens / phases[0].seconds;
  console.log(`qkernels serve, TinyLlama-shaped q4_0 (${path.basename(file)}), --parallel 8, 2 threads, 127.0.0.1`);
  console.log(`streamed completions of ${args.maxTokens} tokens after a 16-token prompt; each client loops for ${args.seconds} s; loop p99: the server's`);
  console.log(`event-loop delay p99 (prom-client's monitor of a ${LOOP_MONITOR_MS} ms timer, less those ${LOOP_MONITOR_MS} ms; an idle Node process shows ~4 ms)\n`);
  console.log('clients  requests  failed  tokens/s  vs 1 client  TTFT p50 ms  TTFT p99 ms  ITL p50 ms  ITL p99 ms  loop p99 ms  llama.cpp tokens/s  qk / llama.cpp');
  for (const p of phases) {
    const rate = p.tokens / p.seconds;
    const l = llamaRates.get(p.clients);
    console.log(
      [
        String(p.clients).padStart(7),
        String(p.requests).padStart(8),
        String(p.failed).padStart(6),
        f1(rate).padStart(8),
        `${(rate / single).toFixed(2)}x`.padStart(11),
        f1(percentile(p.ttft, 50)).padStart(11),
        f1(percentile(p.ttft, 99)).padStart(11),
        f1(percentile(p.gaps, 50)).padStart(10),
        f1(percentile(p.gaps, 99)).padStart(10),
        f1(p.loopP99Ms).padStart(11),
        (l === undefined ? '-' : f1(l)).padStart(18),
        (l === undefined ? '-' : `${(rate / l).toFixed(2)}x`).padStart(14),
      ].join('  '),
    );
  }
  const c = churn!;
  const growth = (c.rssEnd - c.rssAt200) / c.rssAt200;
  console.log(
    `\nchurn: ${c.requests} requests of 8 tokens from 8 clients in ${c.seconds.toFixed(1)} s; ${c.disconnected} disconnected mid-stream on purpose; ` +
      `${c.failed} failed, ${c.lost} lost. Server RSS: ${(rss0 / 1e6).toFixed(0)} MB idle, ${(c.rssAt200 / 1e6).toFixed(0)} MB at request 200, ` +
      `${(c.rssEnd / 1e6).toFixed(0)} MB at request ${c.requests} (${(growth * 100).toFixed(1)}%).`,
  );
  const eight = phases.find((p) => p.clients === 8);
  if (eight) console.log(`8 clients / 1 client aggregate tokens/s: ${((eight.tokens / eight.seconds) / single).toFixed(2)}x (target >= 3x)`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:serve: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});

// Native GPTQ and AWQ on one LLM-sized layer (npm run build:ts, then
// node dist/bench/gptq.js): GPTQ on a 4096x4096 layer with 4096 calibration
// rows for q4_k and int4 g128, at 1 and 2 threads, the time split into the
// Hessian, the factorization (ordering, dampening, Cholesky, triangular
// inverse) and the column loop (in-batch updates and the trailing products);
// then AWQ on the same layer (20 exponents scored on 512 rows, clipping).
//
//   node dist/bench/gptq.js [--quick] [--rows R] [--cols C] [--n N] [--threads 1,2] [--no-awq] [--awq-threads LIST]
import { setThreads, backend } from '../lib/index';
import { loadAddon } from '../lib/native';
import { TYPES } from '../lib/types';
import { activationSource, gaussianWeights } from './calib-data';
import type { Context, SectionReport } from './context';

interface Args {
  rows: number;
  cols: number;
  n: number;
  threads: number[];
  awq: boolean;
  awqThreads: number[] | null;
}

export function parseGptqArgs(argv: string[]): Args {
  const a: Args = { rows: 4096, cols: 4096, n: 4096, threads: [1, 2], awq: true, awqThreads: null };
  const num = (i: number, flag: string) => {
    const v = Number(argv[i]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} needs a positive integer`);
    return v;
  };
  const list = (i: number, flag: string) => (argv[i] ?? '').split(',').map((s) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} needs a list of positive integers`);
    return v;
  });
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--quick') Object.assign(a, { rows: 1024, cols: 1024, n: 1024 });
    else if (f === '--rows') a.rows = num(++i, f);
    else if (f === '--cols') a.cols = num(++i, f);
    else if (f === '--n') a.n = num(++i, f);
    else if (f === '--threads') a.threads = list(++i, f);
    else if (f === '--awq-threads') a.awqThreads = list(++i, f);
    else if (f === '--no-awq') a.awq = false;
    else throw new Error(`unknown argument ${f}`);
  }
  return a;
}


export interface GptqBenchRecord {
  algo: 'gptq' | 'awq';
  target: string;
  threads: number;
  seconds: number;
  hessian?: number;
  factor?: number;
  columns?: number;
}

const TARGETS: { name: string; type: number; group: number; sym: boolean; storage: keyof typeof TYPES }[] = [
  { name: 'q4_k', type: TYPES.q4_k.ggmlId, group: 0, sym: true, storage: 'q4_k' },
  { name: 'int4 g128', type: -1, group: 128, sym: true, storage: 'q4_0' },
];

export function runGptqBench(a: Args, print: (s: string) => void = console.log, step: (done: number, total: number) => void = () => {}): GptqBenchRecord[] {
  if (backend().name !== 'native') throw new Error('the native addon is not loaded: nothing to measure');
  const addon = loadAddon();
  const { rows, cols, n } = a;
  print(`GPTQ / AWQ, native: a ${rows}x${cols} layer, ${n} calibration rows; ${backend().isa}`);
  const t0 = performance.now();
  const x = activationSource(cols, 7).rows(n, 11);
  const w = gaussianWeights(rows, cols, 5);
  print(`(inputs made in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const out: GptqBenchRecord[] = [];
  const total = TARGETS.length * (a.threads.length + (a.awq ? (a.awqThreads ?? a.threads).length : 0));
  const times = new Float64Array(3);
  const fmt = (s: number) => s.toFixed(2).padStart(7);
  print(`\n${'target'.padEnd(10)} threads   total  hessian   factor  columns`);
  for (const t of TARGETS) {
    const dst = new Uint8Array(rows * (cols / TYPES[t.storage].blockSize) * TYPES[t.storage].blockBytes);
    for (const th of a.threads) {
      setThreads(th);
      const s0 = performance.now();
      addon.gptq(t.type, t.group, t.sym, false, 0.01, 128, w, rows, cols, x, n, dst, times);
      const sec = (performance.now() - s0) / 1000;
      out.push({ algo: 'gptq', target: t.name, threads: th, seconds: sec, hessian: times[0], factor: times[1], columns: times[2] });
      step(out.length, total);
      print(`${t.name.padEnd(10)} ${String(th).padStart(7)} ${fmt(sec)}  ${fmt(times[0])}  ${fmt(times[1])}  ${fmt(times[2])}`);
    }
  }
  if (a.awq) {
    print(`\nAWQ (20 exponents scored on min(n, 512) rows, clipping search)\n${'target'.padEnd(10)} threads   total`);
    for (const t of TARGETS) {
      // AWQ's default int4 grid has zero points: stored as q8_0
      const storage = t.type === -1 ? 'q8_0' : t.storage;
      const dst = new Uint8Array(rows * (cols / TYPES[storage].blockSize) * TYPES[storage].blockBytes);
      const scales = new Float32Array(cols);
      for (const th of a.awqThreads ?? a.threads) {
        setThreads(th);
        const s0 = performance.now();
        addon.awq(t.type, t.group, false, 20, 512, true, w, rows, cols, x, n, dst, scales, null);
        const sec = (performance.now() - s0) / 1000;
        out.push({ algo: 'awq', target: `${t.name}${t.type === -1 ? ' asym' : ''}`, threads: th, seconds: sec });
        step(out.length, total);
        print(`${`${t.name}${t.type === -1 ? ' asym' : ''}`.padEnd(10)} ${String(th).padStart(7)} ${fmt(sec)}`);
      }
    }
  }
  return out;
}

/**
 * Section H of `npm run bench` (only with --filter gptq: it is not part of the
 * default run's time budget): the same measurements, at 1 and all threads;
 * --quick measures a 1024x1024 layer.
 */
export function runGptqSection(ctx: Context): { report: SectionReport; records: GptqBenchRecord[] } {
  const a: Args = ctx.args.quick ? { rows: 1024, cols: 1024, n: 1024, threads: ctx.threadCounts, awq: true, awqThreads: null } : { rows: 4096, cols: 4096, n: 4096, threads: ctx.threadCounts, awq: true, awqThreads: null };
  const lines: string[] = [];
  const records = runGptqBench(a, (s) => lines.push(s), (done, total) => ctx.progress.update('H', done / total, `H: GPTQ / AWQ, ${done} of ${total} runs`));
  ctx.progress.done('H');
  const f = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(2));
  const report: SectionReport = {
    id: 'H',
    title: 'H. GPTQ and AWQ on one layer (native)',
    intro: [`A ${a.rows}x${a.cols} layer with ${a.n} calibration rows of LLM-like activations. GPTQ: batch 128, dampening 0.01, no act-order; AWQ: 20 exponents scored on 512 rows, then the clipping search. Seconds.`],
    tables: [
      {
        headers: ['algorithm', 'target', 'threads', 'total s', 'Hessian s', 'factor s', 'column loop s'],
        rows: records.map((r) => [r.algo, r.target, String(r.threads), f(r.seconds), f(r.hessian), f(r.factor), f(r.columns)]),
        align: ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
      },
    ],
    notes: ['factor: column order, dampening, Cholesky and triangular inverse; column loop: in-batch updates, block parameters and the trailing products.'],
    records: records as unknown as Record<string, unknown>[],
  };
  return { report, records };
}

if (require.main === module) {
  try {
    const args = parseGptqArgs(process.argv.slice(2));
    const threads = backend().threads;
    runGptqBench(args);
    setThreads(threads);
  } catch (e) {
    console.error(`bench/gptq: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}

// The profiler benchmark: the complete, honest version of the seed report's
// (a C# library whose 4-bit matmul ran 2-3x slower than FP32), measured in one
// process, one run, so that the ratios mean something:
//   A quantization round trip, B quantized vs f32 matmul, C SIMD vs scalar C++
//   vs JS, D batch-1 decode through a llama-shaped model, E the machine's
//   memory bandwidth (the limit), F matmulAsync and the event loop;
// then a summary of the figures that must show. Tables print as sections end;
// results.json, results.md and speedups.svg go to bench/results/.
//
//   npm run bench [-- --quick] [--threads N] [--filter A,B,...] [--json FILE] [--out DIR]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { backend, setIsa, setThreads, WEIGHT_TYPES, type WeightType } from '../lib/index';
import { packageRoot } from '../lib/native';
import { parseArgs, SECTIONS, USAGE, type SectionId } from './args';
import type { Context, SectionReport } from './context';
import { fmtDuration, textTable } from './format';
import { probeTypes } from './probe';
import { Progress, type Stage } from './progress';
import { speedupChart } from './report/chart';
import { writeJson } from './report/json';
import { toMarkdown } from './report/markdown';
import { environmentLine, type BenchReport, type Environment } from './report/types';
import { applyBandwidth, bandwidthSection, measureBandwidth } from './sections/bandwidth';
import { runDecode, type DecodeRecord } from './sections/decode';
import { runEventLoop, type LoopDelayRecord } from './sections/eventloop';
import { runGptqSection } from './gptq';
import { runMatmul, type MatmulRecord } from './sections/matmul';
import { runRoundTrip } from './sections/roundtrip';
import { runSimd, type SimdRecord } from './sections/simd';
import { runVsLlama, type VsLlamaRecord } from './sections/vsllama';
import { dropOperands } from './shapes';
import { buildSummary } from './summary';
import { startGcCounter, stopGcCounter } from './timing';

// Expected seconds per section, for the progress bar.
const STAGE_SECONDS: Record<SectionId, [full: number, quick: number]> = {
  E: [10, 2],
  A: [45, 3],
  B: [170, 16],
  C: [70, 5],
  D: [110, 16],
  F: [7, 2],
  G: [180, 40],
  H: [150, 10],
};

function wrap(text: string, width = 110): string {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      if (line && line.length + 1 + word.length > width) {
        out.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    out.push(line);
  }
  return out.join('\n');
}

export function sectionText(s: SectionReport): string {
  const parts = [`\n=== ${s.title} ${'='.repeat(Math.max(3, 100 - s.title.length))}`];
  for (const p of s.intro) parts.push(wrap(p));
  for (const t of s.tables) parts.push('', textTable(t));
  if (s.notes.length) parts.push('', ...s.notes.map((n) => wrap(`* ${n}`)));
  return parts.join('\n');
}

/** Runs the benchmark; resolves to the process exit code. */
export async function runBench(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error(`qkernels bench: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const started = performance.now();
  startGcCounter();
  const info = backend();
  const threads = args.threads ?? info.threads;
  const threadCounts = [...new Set([1, threads])];
  const selected = args.sections;
  const native = info.name === 'native';
  const measureBw = native && (selected.has('E') || selected.has('B') || selected.has('D'));
  const order: SectionId[] = ['E', 'A', 'B', 'C', 'D', 'F', 'G', 'H'];
  const stages: Stage[] = order
    .filter((id) => (id === 'E' ? measureBw : selected.has(id)))
    .map((id) => ({ id, weight: STAGE_SECONDS[id][args.quick ? 1 : 0] }));
  if (measureBw && !args.quick) {
    // Measured again in the middle (before D) and at the end: the limit is the best of the three.
    const before = stages.findIndex((s) => s.id === 'D' || s.id === 'F');
    stages.splice(before < 0 ? stages.length : before, 0, { id: 'E1', weight: STAGE_SECONDS.E[args.quick ? 1 : 0] });
  }
  if (measureBw) stages.push({ id: 'E2', weight: STAGE_SECONDS.E[args.quick ? 1 : 0] });
  const progress = new Progress(stages, args.progress);
  const print = (text: string) => progress.print(text);

  const env: Environment = {
    date: new Date().toISOString(),
    qkernels: info.version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: os.cpus()[0]?.model?.trim() ?? 'unknown CPU',
    logicalCpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    backend: info.name,
    bestIsa: info.isa,
    isas: info.isas,
    threadCounts,
    quick: args.quick,
    argv,
  };
  print(`qkernels profiler benchmark\n${wrap(environmentLine(env))}`);
  print(`Sections: ${order.filter((id) => selected.has(id)).map((id) => SECTIONS[id].title).join('; ')}.`);
  if (!native) print('warning: the native addon is not loaded; measuring the TypeScript fallback (no bandwidth, no ISA comparison).');

  const typeStatus = probeTypes(WEIGHT_TYPES);
  const types = typeStatus.filter((s) => s.ok).map((s) => s.type);
  const skipped = typeStatus.filter((s) => !s.ok).map((s) => ({ type: s.type, reason: s.reason ?? 'unknown' }));
  print(`Types measured: ${types.join(', ')}.`);
  for (const s of skipped) print(`note: ${s.type} skipped: ${s.reason}`);
  for (const s of typeStatus.filter((x) => x.ok)) {
    const bad = Object.entries(s.isas).filter(([, why]) => why !== null);
    for (const [isa, why] of bad) print(`note: ${s.type} on ${isa} not measured: ${why}`);
  }
  // Without these two there is no benchmark: fail loudly rather than print empty tables.
  const core = (['q4_0', 'f32'] as WeightType[]).filter((t) => !types.includes(t));
  if (core.length) {
    print(`error: ${core.join(' and ')} did not pass the probe (see the notes above); nothing to compare.`);
    return 1;
  }

  setIsa('auto');
  setThreads(threads);
  const ctx: Context = { args, info, threads, threadCounts, types, typeStatus, progress, bandwidth: new Map(), print };
  const reports: SectionReport[] = [];
  let bRecords: MatmulRecord[] = [];
  let cRecords: SimdRecord[] = [];
  let dRecords: DecodeRecord[] = [];
  let fRecords: LoopDelayRecord[] = [];
  let gRecords: VsLlamaRecord[] = [];
  const failures: string[] = [];
  // A section that throws is reported and the run goes on: the other sections still measure and the
  // results are still written; the exit code says something failed.
  const section = async <T extends { report: SectionReport }>(id: SectionId, fn: () => T | Promise<T>): Promise<T | null> => {
    const t0 = performance.now();
    try {
      const r = await fn();
      r.report.seconds = (performance.now() - t0) / 1000;
      reports.push(r.report);
      print(sectionText(r.report));
      return r;
    } catch (e) {
      const msg = (e as Error).stack ?? String(e);
      failures.push(`${SECTIONS[id].title}: ${(e as Error).message}`);
      print(`\n=== ${SECTIONS[id].title}: FAILED\n${msg}`);
      reports.push({ id, title: SECTIONS[id].title, intro: [], tables: [], notes: [`FAILED: ${(e as Error).message}`], records: [] });
      return null;
    } finally {
      setIsa('auto');
      setThreads(threads);
    }
  };

  let eSeconds = 0;
  const bandwidthAt = (stage: string, when: 'start' | 'middle' | 'end') => {
    const t0 = performance.now();
    try {
      measureBandwidth(ctx, stage, when);
    } catch (e) {
      failures.push(`memory bandwidth (${when}): ${(e as Error).message}`);
      print(`memory bandwidth (${when} of the run) FAILED: ${(e as Error).message}`);
    }
    eSeconds += (performance.now() - t0) / 1000;
  };
  if (measureBw) {
    bandwidthAt('E', 'start');
    const bws = [...ctx.bandwidth.values()];
    print(`\nMemory read bandwidth, measured first (section E; measured again later): ${bws.map((b) => `${b.gbs?.toFixed(1)} GB/s on ${b.threads} thread${b.threads > 1 ? 's' : ''}`).join(', ')}.`);
  }
  if (selected.has('A')) await section('A', () => runRoundTrip(ctx));
  if (selected.has('B')) bRecords = (await section('B', () => runMatmul(ctx)))?.records ?? [];
  if (selected.has('C')) cRecords = (await section('C', () => runSimd(ctx)))?.records ?? [];
  dropOperands();
  if (measureBw && !args.quick) bandwidthAt('E1', 'middle');
  if (selected.has('D')) dRecords = (await section('D', () => runDecode(ctx)))?.records ?? [];
  if (selected.has('F')) fRecords = (await section('F', () => runEventLoop(ctx)))?.records ?? [];
  dropOperands();
  if (selected.has('G')) gRecords = (await section('G', () => runVsLlama(ctx)))?.records ?? [];
  if (selected.has('H')) await section('H', () => runGptqSection(ctx));
  if (measureBw) {
    bandwidthAt('E2', 'end');
    applyBandwidth(ctx, bRecords, dRecords);
  }
  if (selected.has('E')) {
    const r = bandwidthSection(ctx, bRecords, dRecords);
    r.seconds = eSeconds;
    reports.push(r);
    print(sectionText(r));
  }
  progress.finish();
  stopGcCounter();
  setThreads(threads);

  const summary = buildSummary(ctx, bRecords, cRecords, dRecords, fRecords, gRecords);
  const durationSeconds = (performance.now() - started) / 1000;
  print(`\n=== Summary ${'='.repeat(92)}\n${summary.lines.map((l) => wrap(`- ${l}`)).join('\n')}\nRun time: ${fmtDuration(durationSeconds * 1000)}.`);
  if (failures.length) print(`\nFAILED:\n${failures.map((f) => `- ${f}`).join('\n')}`);

  const report: BenchReport = {
    environment: env,
    types: { measured: types, skipped },
    sections: reports.sort((a, b) => a.id.localeCompare(b.id)),
    summary,
    failures,
    durationSeconds,
  };
  const written: string[] = [];
  const outDir = args.out ?? path.join(packageRoot(), 'bench', 'results');
  try {
    if (outDir !== '') {
      fs.mkdirSync(outDir, { recursive: true });
      const svgName = 'speedups.svg';
      fs.writeFileSync(path.join(outDir, svgName), speedupChart(env, bRecords, cRecords, dRecords));
      fs.writeFileSync(path.join(outDir, 'results.md'), toMarkdown(report, svgName));
      writeJson(path.join(outDir, 'results.json'), report);
      written.push(...['results.json', 'results.md', svgName].map((f) => path.join(outDir, f)));
    }
    if (args.json) {
      writeJson(args.json, report);
      written.push(path.resolve(args.json));
    }
  } catch (e) {
    console.error(`qkernels bench: could not write the results: ${(e as Error).message}`);
    return 1;
  }
  if (written.length) console.log(`\nResults: ${written.map((f) => path.relative(process.cwd(), f) || f).join(', ')}`);
  return failures.length ? 1 : 0;
}

if (require.main === module) {
  runBench(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}

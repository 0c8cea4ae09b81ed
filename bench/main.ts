// The profiler benchmark: the shapes of the seed report (a C# library whose
// 4-bit matmul ran 2-3x slower than FP32) and of a 7B-class model's batch-1
// decode, measured in one run so the ratios mean something.
//
//   npm run bench [-- --quick] [--threads N] [--filter TEXT] [--json FILE]
import * as fs from 'fs';
import * as path from 'path';
import { backend, matmul, quantize, setIsa, setThreads, type QuantizedMatrix, type WeightType } from '../lib/index';
import { fmt, syntheticWeights, table, timeIt } from './timing';

interface Args {
  quick: boolean;
  threads: number | null;
  filter: string | null;
  json: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, threads: null, filter: null, json: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--quick') a.quick = true;
    else if (v === '--threads') a.threads = Number(argv[++i]);
    else if (v === '--filter') a.filter = argv[++i];
    else if (v === '--json') a.json = argv[++i];
    else if (v === '--help' || v === '-h') {
      console.log('usage: qkernels bench [--quick] [--threads N] [--filter TEXT] [--json FILE]');
      process.exit(0);
    } else {
      console.error(`unknown argument: ${v}`);
      process.exit(2);
    }
  }
  return a;
}

interface Shape {
  label: string;
  m: number;
  k: number;
  n: number;
}

const SHAPES: Shape[] = [
  { label: 'seed: inference 1x512 @ 512x512', m: 1, k: 512, n: 512 },
  { label: 'seed: small batch 4x512 @ 512x512', m: 4, k: 512, n: 512 },
  { label: 'seed: large inference 1x1024 @ 1024x1024', m: 1, k: 1024, n: 1024 },
  { label: 'seed: training batch 32x256 @ 256x256', m: 32, k: 256, n: 256 },
  { label: 'attn proj 1x4096 @ 4096x4096', m: 1, k: 4096, n: 4096 },
  { label: 'ffn up 1x4096 @ 4096x11008', m: 1, k: 4096, n: 11008 },
];

const TYPES_MEASURED: WeightType[] = ['q4_0', 'q8_0', 'f32'];

interface Result {
  shape: string;
  m: number;
  k: number;
  n: number;
  isa: string;
  threads: number;
  type: WeightType;
  ms: number;
  gflops: number;
  weightGBs: number;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const info = backend();
  if (info.name !== 'native') console.warn('warning: the native addon is not loaded; measuring the TypeScript fallback');
  const allThreads = args.threads ?? info.threads;
  const budget = args.quick ? 150 : 600;
  console.log(`qkernels ${info.version} bench: backend ${info.name}, best ISA ${info.isa}, ISAs [${info.isas.join(', ')}], ${allThreads} threads by default`);
  console.log(`median of repeated runs, ~${budget} ms per cell; synthetic N(0, 0.02) weights, seed 42\n`);

  const results: Result[] = [];
  const shapes = SHAPES.filter((s) => !args.filter || s.label.includes(args.filter));
  const isas = info.name === 'native' ? [info.isa, 'scalar'] : [info.isa];
  for (const shape of shapes) {
    const { m, k, n } = shape;
    const weights = syntheticWeights(n * k, 42, 0.02);
    const x = syntheticWeights(m * k, 7);
    const out = new Float32Array(m * n);
    const mats = new Map<WeightType, QuantizedMatrix>();
    for (const t of TYPES_MEASURED) mats.set(t, quantize(weights, n, k, t));
    const rows: string[][] = [];
    for (const isa of isas) {
      setIsa(isa as 'auto');
      for (const threads of [...new Set([1, allThreads])]) {
        setThreads(threads);
        const byType = new Map<WeightType, number>();
        for (const t of TYPES_MEASURED) {
          const w = mats.get(t)!;
          // Scalar C++ on the big shapes is slow: fewer runs suffice.
          const tm = timeIt(() => matmul(w, x, m, out), isa === 'scalar' ? budget / 3 : budget, isa === 'scalar' ? 2 : 5);
          byType.set(t, tm.ms);
          const gflops = (2 * m * n * k) / (tm.ms * 1e6);
          const weightGBs = w.data.length / (tm.ms * 1e6);
          results.push({ shape: shape.label, m, k, n, isa, threads, type: t, ms: tm.ms, gflops, weightGBs });
        }
        const f32 = byType.get('f32')!;
        rows.push([
          `${isa} x${threads}`,
          ...TYPES_MEASURED.map((t) => fmt(byType.get(t)!)),
          `${fmt(f32 / byType.get('q4_0')!, 2)}x`,
          `${fmt(f32 / byType.get('q8_0')!, 2)}x`,
          fmt((mats.get('q4_0')!.data.length / (byType.get('q4_0')! * 1e6))),
        ]);
      }
    }
    setIsa('auto');
    setThreads(info.threads);
    console.log(`${shape.label}  (weights: f32 ${fmt((n * k * 4) / 1e6)} MB, q4_0 ${fmt((n * k * 0.5625) / 1e6)} MB)`);
    console.log(table(['ISA x threads', 'q4_0 ms', 'q8_0 ms', 'f32 ms', 'q4_0 vs f32', 'q8_0 vs f32', 'q4_0 GB/s'], rows));
    // SIMD vs scalar, q4_0, one thread.
    const simd = results.find((r) => r.shape === shape.label && r.isa === info.isa && r.threads === 1 && r.type === 'q4_0');
    const scalar = results.find((r) => r.shape === shape.label && r.isa === 'scalar' && r.threads === 1 && r.type === 'q4_0');
    if (simd && scalar && simd !== scalar) console.log(`q4_0 ${info.isa} vs scalar C++ (1 thread): ${fmt(scalar.ms / simd.ms, 2)}x faster`);
    console.log('');
  }
  if (args.json) {
    fs.mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
    fs.writeFileSync(args.json, JSON.stringify({ backend: info, results }, null, 2));
    console.log(`results written to ${args.json}`);
  }
}

main();

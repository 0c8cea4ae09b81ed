// C. SIMD vs scalar: every ISA this CPU has, against the portable scalar C++
// kernels and against the TypeScript fallback (jsBackend, timed directly in
// this process), one thread, same weights and activations. Scalar C++ and JS
// run only where a call is predicted to take under ~1.5 s (from their speed on
// the previous, smaller shape), with fewer repetitions.
import { matmul, setIsa, setThreads, WEIGHT_TYPES, type WeightType } from '../../lib/index';
import { jsBackend } from '../../lib/js/backend';
import { usable, type Context, type SectionReport } from '../context';
import { fmt, fmtMs, fmtX, type Table } from '../format';
import { MATMUL_SHAPES, operands, type MatShape } from '../shapes';
import { measure } from '../timing';

export interface SimdRecord {
  shape: string;
  m: number;
  k: number;
  n: number;
  type: WeightType;
  impl: string;
  threads: 1;
  ms: number | null;
  samples: number;
  gflops: number | null;
  /** why there is no time */
  skipped: string | null;
  /** max |y - y_oracle| / rms(y_oracle), oracle = JS (or scalar C++ where JS did not run) */
  diff: number | null;
}

const QUICK_TYPES: WeightType[] = ['f32', 'q8_0', 'q4_0', 'q4_k'];

export function simdShapes(quick: boolean): MatShape[] {
  const want = quick ? ['1x512 @ 512x512', '1x1024 @ 1024x1024', '1x4096 @ 4096x4096'] : MATMUL_SHAPES.slice(0, 6).map((s) => s.label);
  return MATMUL_SHAPES.filter((s) => want.includes(s.label));
}

function maxDiff(y: Float32Array, ref: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(y[i] - ref[i]));
    n += ref[i] * ref[i];
  }
  return d / Math.sqrt(n / ref.length || 1);
}

export function runSimd(ctx: Context): { report: SectionReport; records: SimdRecord[] } {
  const quick = ctx.args.quick;
  const types = usable(ctx, quick ? QUICK_TYPES : WEIGHT_TYPES);
  const shapes = simdShapes(quick);
  const isas = ctx.info.name === 'native' ? ctx.info.isas : [];
  const impls = [...isas, 'js'];
  const best = ctx.info.isa;
  const budgetMs = quick ? 40 : 150;
  const maxCallMs = ctx.args.long ? Infinity : quick ? 300 : 1500;
  const records: SimdRecord[] = [];
  const tables: Table[] = [];
  const notes: string[] = [];
  // ms per multiply-accumulate, per (impl, type), from the last shape measured: predicts the next one.
  const perMac = new Map<string, number>();
  const total = shapes.length * types.length * impls.length;
  let done = 0;
  setThreads(1);

  for (const s of shapes) {
    const op = operands(s, types);
    const macs = s.m * s.k * s.n;
    const rows: string[][] = [];
    for (const t of types) {
      const w = op.w.get(t);
      const status = ctx.typeStatus.find((x) => x.type === t);
      const outs = new Map<string, Float32Array>();
      const cell = new Map<string, SimdRecord>();
      for (const impl of impls) {
        ctx.progress.update('C', done++ / total, `C: ${s.label} ${t} ${impl}`);
        const rec: SimdRecord = { shape: s.label, m: s.m, k: s.k, n: s.n, type: t, impl, threads: 1, ms: null, samples: 0, gflops: null, skipped: null, diff: null };
        cell.set(impl, rec);
        records.push(rec);
        if (!w) {
          rec.skipped = 'quantize failed';
          continue;
        }
        const broken = impl !== 'js' ? status?.isas[impl] : null;
        if (broken) {
          rec.skipped = `broken: ${broken}`;
          continue;
        }
        const predicted = (perMac.get(`${impl}|${t}`) ?? 0) * macs;
        if (predicted > maxCallMs) {
          rec.skipped = `~${fmt(predicted / 1000)} s a call`;
          continue;
        }
        const out = new Float32Array(s.m * s.n);
        try {
          let fn: () => void;
          if (impl === 'js') {
            fn = () => jsBackend.matmul(t, w.data, w.rows, w.cols, op.x, s.m, out, 0, 0);
          } else {
            setIsa(impl as 'auto');
            fn = () => matmul(w, op.x, s.m, out);
          }
          const slow = impl === 'js' || impl === 'scalar';
          const tm = measure(fn, { budgetMs: slow ? budgetMs / 2 : budgetMs, minSamples: slow ? 2 : 3, slowMs: 800, verySlowMs: 2500 });
          rec.ms = tm.ms;
          rec.samples = tm.samples * tm.batch;
          rec.gflops = (2 * macs) / (tm.ms * 1e6);
          perMac.set(`${impl}|${t}`, tm.ms / macs);
          outs.set(impl, out);
        } catch (e) {
          rec.skipped = `threw: ${(e as Error).message}`;
        } finally {
          setIsa('auto');
        }
      }
      const oracle = outs.get('js') ?? outs.get('scalar');
      if (oracle) {
        for (const [impl, y] of outs) {
          if (y === oracle) continue;
          const r = cell.get(impl)!;
          r.diff = maxDiff(y, oracle);
          if (r.diff > 1e-3) notes.push(`${s.label} ${t}: ${impl} output differs from ${outs.has('js') ? 'the JS oracle' : 'scalar C++'} by ${fmt(r.diff, 4)} (max abs diff / rms)`);
        }
      }
      const ms = (impl: string) => cell.get(impl)?.ms ?? null;
      const show = (impl: string) => {
        const r = cell.get(impl)!;
        return r.ms !== null ? fmtMs(r.ms) : r.skipped?.startsWith('~') ? `(${r.skipped})` : r.skipped ? 'n/a' : '-';
      };
      const ratio = (a: number | null, b: number | null) => (a !== null && b !== null ? fmtX(b / a) : '-');
      const row = [t, ...impls.map(show)];
      for (const i of isas.filter((x) => x !== 'scalar')) row.push(ratio(ms(i), ms('scalar')));
      row.push(ratio(ms(best), ms('js')));
      rows.push(row);
    }
    const simd = isas.filter((x) => x !== 'scalar');
    tables.push({
      title: `${s.label}  (${s.role}), 1 thread`,
      headers: ['type', ...impls.map((i) => (i === 'js' ? 'JS ms' : `${i} ms`)), ...simd.map((i) => `${i} vs scalar`), `${best} vs JS`],
      rows,
    });
  }
  setIsa('auto');
  setThreads(ctx.threads);
  ctx.progress.done('C');

  // Overview: the best ISA against scalar C++ and against JS, per shape and type.
  for (const base of ['scalar', 'js']) {
    if (base === 'scalar' && !isas.includes('scalar')) continue;
    const rows = shapes.map((s) => [
      s.label,
      ...types.map((t) => {
        const a = records.find((r) => r.shape === s.label && r.type === t && r.impl === best)?.ms ?? null;
        const b = records.find((r) => r.shape === s.label && r.type === t && r.impl === base)?.ms ?? null;
        return a !== null && b !== null ? fmtX(b / a) : '-';
      }),
    ]);
    tables.push({ title: `${best} speedup over ${base === 'js' ? 'the JS fallback' : 'scalar C++'}, 1 thread`, headers: ['shape', ...types], rows });
  }
  const intro = [
    `One thread; ISAs on this CPU: ${isas.join(', ') || 'none (js backend)'}; 'q8' precision; the JS column is the TypeScript fallback (lib/js) timed in this process.`,
    '"(~N s a call)": not run, predicted from the previous shape to take longer than the limit; "n/a": not available for this type.',
  ];
  if (notes.length === 0) notes.push('Every output agrees with the JS oracle (or scalar C++) to within 1e-3 of its RMS.');
  return { report: { id: 'C', title: 'C. SIMD vs scalar C++ vs JS fallback', intro, tables, notes, records: records as unknown as Record<string, unknown>[] }, records };
}

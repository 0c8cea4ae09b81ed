// The panels of speedups.svg, from the sections' records.
import type { WeightType } from '../../lib/index';
import type { DecodeRecord } from '../sections/decode';
import type { MatmulRecord } from '../sections/matmul';
import type { SimdRecord } from '../sections/simd';
import { MATMUL_SHAPES } from '../shapes';
import { renderSvg, type Panel } from './svg';
import { environmentLine, type Environment } from './types';

export function speedupChart(env: Environment, b: MatmulRecord[], c: SimdRecord[], d: DecodeRecord[]): string {
  const panels: Panel[] = [];
  const tn = env.threadCounts[env.threadCounts.length - 1];
  if (b.length) {
    const pick: string[] = ['q4_0', 'q4_0 prepared', 'q4_k', 'q4_1', 'q8_0', 'f16'];
    const series = pick.filter((t) => b.some((r) => r.type === t));
    for (const th of [tn, 1].filter((v, i, a) => a.indexOf(v) === i)) {
      panels.push({
        title: `B. Matmul speedup over f32, ${th} thread${th > 1 ? 's' : ''}`,
        caption: 'f32 time / type time at the same shape (log scale; right of the dashed line = faster than f32). The seed report measured 0.21x-0.56x for its q4.',
        unit: 'x',
        series,
        groups: MATMUL_SHAPES.filter((s) => b.some((r) => r.shape === s.label)).map((s) => ({
          label: `${s.label}`,
          values: series.map((t) => b.find((r) => r.shape === s.label && r.type === t && r.threads === th)?.vsF32 ?? null),
        })),
      });
    }
  }
  if (c.length) {
    const best = env.bestIsa;
    const types: WeightType[] = ['q4_0', 'q4_k', 'q8_0', 'f32'];
    const have = types.filter((t) => c.some((r) => r.type === t && r.ms !== null));
    const vsJs = have.filter((t) => t === 'q4_0');
    const series = [...have.map((t) => `${t} vs scalar C++`), ...vsJs.map((t) => `${t} vs JS`)];
    const shapes = [...new Set(c.map((r) => r.shape))];
    const ms = (shape: string, t: string, impl: string) => c.find((r) => r.shape === shape && r.type === t && r.impl === impl)?.ms ?? null;
    const ratio = (a: number | null, bb: number | null) => (a !== null && bb !== null ? bb / a : null);
    panels.push({
      title: `C. ${best} speedup over scalar C++ and over the JS fallback, 1 thread`,
      caption: 'scalar (or JS) time / SIMD time. The seed report measured 0.84x for its SIMD q4 against its scalar q4.',
      unit: 'x',
      series,
      groups: shapes.map((s) => ({
        label: s,
        values: [...have.map((t) => ratio(ms(s, t, best), ms(s, t, 'scalar'))), ...vsJs.map((t) => ratio(ms(s, t, best), ms(s, t, 'js')))],
      })),
    });
  }
  if (d.length) {
    const types = [...new Set(d.map((r) => r.type))].filter((t) => t !== 'f32');
    const models = [...new Set(d.map((r) => r.model))];
    if (d.some((r) => r.vsF32 !== null && r.type !== 'f32')) {
      panels.push({
        title: `D. Batch-1 decode speed over f32 (tokens/s ratio), ${tn} threads`,
        unit: 'x',
        series: types,
        groups: models.map((m) => ({ label: m, values: types.map((t) => d.find((r) => r.model === m && r.type === t)?.vsF32 ?? null) })),
      });
    }
    if (d.some((r) => r.bwShare !== null)) {
      const all = [...new Set(d.map((r) => r.type))];
      panels.push({
        title: `D/E. Batch-1 decode: weight bytes per second as a share of the measured memory bandwidth, ${tn} threads`,
        unit: '%',
        series: all,
        groups: models.map((m) => ({ label: m, values: all.map((t) => d.find((r) => r.model === m && r.type === t)?.bwShare ?? null) })),
      });
    }
  }
  return renderSvg('qkernels: speed ratios', environmentLine(env), panels);
}

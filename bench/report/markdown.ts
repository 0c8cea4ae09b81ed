// results.md: the same tables as the terminal, in GitHub Markdown, with the chart.
import { markdownTable } from '../format';
import { environmentLine, type BenchReport } from './types';

export function toMarkdown(r: BenchReport, svgFile: string | null): string {
  const out: string[] = ['# qkernels profiler benchmark', '', environmentLine(r.environment), ''];
  out.push(`Run time: ${r.durationSeconds.toFixed(0)} s. Command: \`${['qkernels bench', ...r.environment.argv].join(' ')}\``, '');
  if (r.types.skipped.length) {
    out.push(`Types skipped (not working on this build): ${r.types.skipped.map((s) => `${s.type} (${s.reason})`).join('; ')}.`, '');
  }
  out.push('## Summary', '', ...r.summary.lines.map((l) => `- ${l}`), '');
  if (r.failures.length) out.push('**Failed:**', '', ...r.failures.map((f) => `- ${f}`), '');
  if (svgFile) out.push(`![speed ratios](${svgFile})`, '');
  for (const s of r.sections) {
    out.push(`## ${s.title}`, '');
    for (const p of s.intro) out.push(p, '');
    for (const t of s.tables) out.push(markdownTable(t), '');
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.notes.length) out.push('');
  }
  return out.join('\n');
}

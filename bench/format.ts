// Number formatting and the table model shared by the terminal, Markdown and JSON writers.

export interface Table {
  title?: string;
  headers: string[];
  rows: string[][];
  /** per column: 'l' left, 'r' right (default: first column left, the rest right) */
  align?: ('l' | 'r')[];
  notes?: string[];
}

/** Three significant-ish digits: 0.123, 1.23, 12.3, 123. */
export function fmt(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1 || digits <= 2) return v.toFixed(Math.min(2, digits));
  if (a === 0) return '0';
  if (a >= 0.001) return v.toFixed(digits);
  return v.toExponential(1);
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '-';
  if (ms === 0) return '0'; // e.g. an event-loop delay percentile at or under the timer's own period
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  if (ms >= 0.01) return ms.toFixed(3);
  return ms.toFixed(4);
}

export function fmtX(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '-';
  if (r >= 100) return `${r.toFixed(0)}x`;
  if (r >= 10) return `${r.toFixed(1)}x`;
  return `${r.toFixed(2)}x`;
}

export function fmtPct(f: number | null | undefined): string {
  if (f === null || f === undefined || !Number.isFinite(f)) return '-';
  return `${(f * 100).toFixed(f >= 0.1 ? 0 : 1)}%`;
}

export function fmtMB(bytes: number): string {
  const mb = bytes / 1e6;
  if (mb >= 100) return mb.toFixed(0);
  if (mb >= 10) return mb.toFixed(1);
  if (mb >= 0.1) return mb.toFixed(2);
  return mb.toFixed(3);
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return '-';
  const a = Math.abs(b);
  if (a >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  if (a >= 1e6) return `${(b / 1e6).toFixed(1)} MB`;
  if (a >= 1e4) return `${(b / 1e3).toFixed(1)} KB`;
  return `${b.toFixed(0)} B`;
}

export function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function threadsLabel(n: number): string {
  return `${n} thread${n === 1 ? '' : 's'}`;
}

export function shapeLabel(m: number, k: number, n: number): string {
  return `${m}x${k} @ ${k}x${n}`;
}

function alignOf(t: Table, i: number): 'l' | 'r' {
  return t.align?.[i] ?? (i === 0 ? 'l' : 'r');
}

/** Plain-text table for the terminal. */
export function textTable(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (alignOf(t, i) === 'l' ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  if (t.title) out.push(t.title);
  out.push(line(t.headers), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line));
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join('\n');
}

/** GitHub-flavoured Markdown table. */
export function markdownTable(t: Table): string {
  const esc = (s: string) => (s ?? '').replace(/\|/g, '\\|');
  const out: string[] = [];
  if (t.title) out.push(`**${esc(t.title)}**`, '');
  out.push(`| ${t.headers.map(esc).join(' | ')} |`);
  out.push(`|${t.headers.map((_, i) => (alignOf(t, i) === 'l' ? ':---' : '---:')).join('|')}|`);
  for (const r of t.rows) out.push(`| ${t.headers.map((_, i) => esc(r[i] ?? '')).join(' | ')} |`);
  if (t.notes?.length) out.push('', ...t.notes.map((n) => `_${n}_`));
  return out.join('\n');
}

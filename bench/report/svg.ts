// A self-contained SVG of the speed ratios (horizontal grouped bars, log
// scale, a line at 1x), readable in any browser.

export interface Panel {
  title: string;
  /** one colour per series */
  series: string[];
  groups: { label: string; values: (number | null)[] }[];
  /** 'x': ratios on a log scale with a line at 1x; '%': shares on a linear 0-100% scale */
  unit: 'x' | '%';
  /** caption under the title */
  caption?: string;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const W = 980;
const LEFT = 250;
const RIGHT = 70;
const BAR = 11;
const GAP = 2;
const GROUP_GAP = 9;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function label(v: number, unit: 'x' | '%'): string {
  if (unit === '%') return `${(v * 100).toFixed(0)}%`;
  return v >= 100 ? `${v.toFixed(0)}x` : v >= 10 ? `${v.toFixed(1)}x` : `${v.toFixed(2)}x`;
}

function renderPanel(p: Panel, y0: number): { svg: string; height: number } {
  const values = p.groups.flatMap((g) => g.values).filter((v): v is number => v !== null && Number.isFinite(v) && v > 0);
  const parts: string[] = [];
  let y = y0;
  parts.push(`<text x="12" y="${y + 16}" class="title">${esc(p.title)}</text>`);
  y += 24;
  if (p.caption) {
    parts.push(`<text x="12" y="${y + 10}" class="caption">${esc(p.caption)}</text>`);
    y += 18;
  }
  // Legend, wrapped to the width.
  let lx = LEFT;
  p.series.forEach((s, i) => {
    const w = 26 + s.length * 6.5;
    if (lx > LEFT && lx + w > W - 10) {
      lx = LEFT;
      y += 16;
    }
    parts.push(`<rect x="${lx}" y="${y + 2}" width="12" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    parts.push(`<text x="${lx + 16}" y="${y + 11}" class="legend">${esc(s)}</text>`);
    lx += w;
  });
  y += 22;
  if (values.length === 0) {
    parts.push(`<text x="${LEFT}" y="${y + 12}" class="caption">(nothing measured)</text>`);
    return { svg: parts.join('\n'), height: y - y0 + 24 };
  }
  const plotW = W - LEFT - RIGHT;
  let scale: (v: number) => number;
  let ticks: number[];
  if (p.unit === 'x') {
    const lo = Math.log2(Math.min(0.5, ...values.map((v) => v / 1.3)));
    const hi = Math.log2(Math.max(2, ...values.map((v) => v * 1.15)));
    const a = Math.floor(lo);
    const b = Math.ceil(hi);
    scale = (v) => LEFT + ((Math.log2(v) - a) / (b - a)) * plotW;
    ticks = [];
    for (let e = a; e <= b; e++) ticks.push(2 ** e);
  } else {
    const hi = Math.max(1, ...values) * 1.05;
    scale = (v) => LEFT + (v / hi) * plotW;
    ticks = [0, 0.25, 0.5, 0.75, 1].filter((t) => t <= hi);
  }
  const plotTop = y;
  const groupH = p.series.length * (BAR + GAP) - GAP;
  const plotH = p.groups.length * (groupH + GROUP_GAP);
  // Grid and ticks.
  for (const t of ticks) {
    const x = scale(t === 0 ? 1e-9 : t);
    const xx = p.unit === '%' && t === 0 ? LEFT : x;
    parts.push(`<line x1="${xx.toFixed(1)}" y1="${plotTop}" x2="${xx.toFixed(1)}" y2="${plotTop + plotH}" class="${(p.unit === 'x' && t === 1) || (p.unit === '%' && t === 1) ? 'ref' : 'grid'}"/>`);
    parts.push(`<text x="${xx.toFixed(1)}" y="${plotTop + plotH + 14}" class="tick">${p.unit === 'x' ? (t >= 1 ? `${t}x` : `1/${1 / t}x`) : `${t * 100}%`}</text>`);
  }
  const base = p.unit === 'x' ? scale(1) : LEFT;
  p.groups.forEach((g, gi) => {
    const gy = plotTop + gi * (groupH + GROUP_GAP);
    parts.push(`<text x="${LEFT - 8}" y="${gy + groupH / 2 + 4}" class="group">${esc(g.label)}</text>`);
    g.values.forEach((v, si) => {
      const by = gy + si * (BAR + GAP);
      if (v === null || !Number.isFinite(v) || v <= 0) {
        parts.push(`<text x="${base + 4}" y="${by + BAR - 2}" class="value muted">not measured</text>`);
        return;
      }
      const x = scale(v);
      const x1 = Math.min(base, x);
      const w = Math.max(1, Math.abs(x - base));
      parts.push(
        `<rect x="${x1.toFixed(1)}" y="${by}" width="${w.toFixed(1)}" height="${BAR}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${g.label}, ${p.series[si]}: ${label(v, p.unit)}`)}</title></rect>`,
      );
      const tx = x >= base ? x + 4 : x - 4;
      parts.push(`<text x="${tx.toFixed(1)}" y="${by + BAR - 1.5}" class="value" text-anchor="${x >= base ? 'start' : 'end'}">${label(v, p.unit)}</text>`);
    });
  });
  y = plotTop + plotH + 26;
  return { svg: parts.join('\n'), height: y - y0 };
}

function wrapText(text: string, chars: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > chars) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export function renderSvg(title: string, subtitle: string, panels: Panel[]): string {
  const body: string[] = [];
  const sub = wrapText(subtitle, 150);
  let y = 36 + sub.length * 15;
  for (const p of panels) {
    const r = renderPanel(p, y);
    body.push(r.svg);
    y += r.height + 12;
  }
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">
<style>
  .h1 { font-size: 18px; font-weight: 600; fill: #111; }
  .sub { font-size: 12px; fill: #555; }
  .title { font-size: 14px; font-weight: 600; fill: #222; }
  .caption { font-size: 11px; fill: #666; }
  .legend { font-size: 11px; fill: #333; }
  .group { font-size: 11px; fill: #333; text-anchor: end; }
  .value { font-size: 10px; fill: #222; }
  .muted { fill: #999; }
  .tick { font-size: 10px; fill: #666; text-anchor: middle; }
  .grid { stroke: #e3e3e3; stroke-width: 1; }
  .ref { stroke: #333; stroke-width: 1.2; stroke-dasharray: 4 3; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="22" class="h1">${esc(title)}</text>
${sub.map((l, i) => `<text x="12" y="${40 + i * 15}" class="sub">${esc(l)}</text>`).join('\n')}
${body.join('\n')}
</svg>
`;
}

// A progress bar on stderr. On a terminal it redraws one line in place
// (throttled); elsewhere (CI logs) it prints a line every 10%. Everything the
// benchmark prints goes through `print`, which lifts the bar out of the way.
import { fmtDuration } from './format';

export interface Stage {
  /** key of the stage (a section letter) */
  id: string;
  /** relative expected duration */
  weight: number;
}

export class Progress {
  private readonly tty: boolean;
  private readonly start = performance.now();
  private readonly total: number;
  private readonly offsets = new Map<string, number>();
  private readonly weights = new Map<string, number>();
  private current = 0;
  private label = '';
  private lastDraw = 0;
  private lastDecile = 0;
  private drawn = false;

  constructor(
    stages: Stage[],
    private readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
    let acc = 0;
    for (const s of stages) {
      this.offsets.set(s.id, acc);
      this.weights.set(s.id, s.weight);
      acc += s.weight;
    }
    this.total = acc || 1;
  }

  /** Position inside a stage: fraction in [0, 1]. */
  update(stage: string, fraction: number, label: string): void {
    const off = this.offsets.get(stage);
    if (off === undefined) return;
    const f = Math.min(1, Math.max(0, fraction));
    this.current = Math.max(this.current, (off + f * (this.weights.get(stage) ?? 0)) / this.total);
    this.label = label;
    this.draw(false);
  }

  done(stage: string): void {
    this.update(stage, 1, this.label);
  }

  private line(): string {
    const elapsed = performance.now() - this.start;
    const pct = this.current;
    const width = 24;
    const full = Math.round(pct * width);
    const eta = pct > 0.03 ? ` ~${fmtDuration((elapsed / pct) * (1 - pct))} left` : '';
    const cols = this.stream.columns ?? 100;
    const text = `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(pct * 100)).padStart(3)}% ${fmtDuration(elapsed)}${eta}  ${this.label}`;
    return text.length > cols - 1 ? text.slice(0, cols - 1) : text;
  }

  private draw(force: boolean): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (this.tty) {
      if (!force && now - this.lastDraw < 80) return;
      this.lastDraw = now;
      this.stream.write(`\r\x1b[K${this.line()}`);
      this.drawn = true;
      return;
    }
    const decile = Math.floor(this.current * 10);
    if (decile > this.lastDecile) {
      this.lastDecile = decile;
      this.stream.write(`${this.line()}\n`);
    }
  }

  /** Clears the bar, prints text on stdout, redraws the bar. */
  print(text: string): void {
    this.clear();
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    if (this.drawn) this.draw(true);
  }

  clear(): void {
    if (this.enabled && this.tty && this.drawn) this.stream.write('\r\x1b[K');
  }

  finish(): void {
    this.clear();
    this.drawn = false;
  }

  elapsedMs(): number {
    return performance.now() - this.start;
  }
}

// results.json: every measurement (the sections' records), the tables as printed, the summary.
import * as fs from 'fs';
import * as path from 'path';
import type { BenchReport } from './types';

export function toJson(r: BenchReport): string {
  return `${JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

export function writeJson(file: string, r: BenchReport): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, toJson(r));
}

// What every section receives, and what every section returns.
import type { BackendReport, WeightType } from '../lib/index';
import type { Args, SectionId } from './args';
import type { Table } from './format';
import type { TypeStatus } from './probe';
import type { Progress } from './progress';

export interface Bandwidth {
  threads: number;
  /** GB/s (1e9 bytes per second): the best measurement; null on the js backend */
  gbs: number | null;
  /** each measurement (best pass of `reps`), at the start and the end of the run */
  passes: { when: 'start' | 'middle' | 'end'; gbs: number }[];
  bytes: number;
  reps: number;
}

export interface Context {
  args: Args;
  info: BackendReport;
  /** the "all threads" count */
  threads: number;
  /** 1 and `threads` (once if equal) */
  threadCounts: number[];
  /** types whose quantize/matmul work on this build */
  types: WeightType[];
  typeStatus: TypeStatus[];
  progress: Progress;
  /** memory read bandwidth by thread count (filled by section E, which runs first) */
  bandwidth: Map<number, Bandwidth>;
  /** prints a block of text above the progress bar */
  print(text: string): void;
}

export interface SectionReport {
  id: SectionId;
  title: string;
  /** sentences printed before the tables */
  intro: string[];
  tables: Table[];
  /** sentences printed after the tables */
  notes: string[];
  /** the measurements, one object per cell, for the JSON file */
  records: Record<string, unknown>[];
  /** seconds the section took */
  seconds?: number;
}

/** Types in the order shown, restricted to those that work. */
export function usable(ctx: Context, wanted: readonly WeightType[]): WeightType[] {
  return wanted.filter((t) => ctx.types.includes(t));
}

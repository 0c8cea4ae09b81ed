// The whole run, as the writers see it.
import type { SectionReport } from '../context';

export interface Environment {
  date: string;
  qkernels: string;
  node: string;
  platform: string;
  cpu: string;
  logicalCpus: number;
  memoryGiB: number;
  backend: string;
  bestIsa: string;
  isas: string[];
  threadCounts: number[];
  quick: boolean;
  argv: string[];
}

export interface BenchReport {
  environment: Environment;
  /** types measured, and those skipped with the reason */
  types: { measured: string[]; skipped: { type: string; reason: string }[] };
  sections: SectionReport[];
  summary: { lines: string[]; figures: Record<string, number | null> };
  /** sections (or measurements) that threw */
  failures: string[];
  durationSeconds: number;
}

export function environmentLine(e: Environment): string {
  return (
    `qkernels ${e.qkernels}, ${e.backend} backend, best ISA ${e.bestIsa} (ISAs here: ${e.isas.join(', ')}), threads ${e.threadCounts.join(' and ')}; ` +
    `${e.cpu}, ${e.logicalCpus} logical CPUs, ${e.memoryGiB} GiB; Node ${e.node} ${e.platform}; ${e.quick ? 'quick run' : 'full run'}, ${e.date}`
  );
}

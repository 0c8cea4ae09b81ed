// Matmul shapes of sections B and C, and their synthetic operands (shared, so
// C reuses what B generated and quantized).
import { quantize, type QuantizedMatrix, type WeightType } from '../lib/index';
import { shapeLabel } from './format';
import { fillGaussian, mixSeed } from './timing';

export interface MatShape {
  /** e.g. "1x4096 @ 4096x11008" */
  label: string;
  /** what the shape stands for */
  role: string;
  m: number;
  k: number;
  n: number;
  /** one of the seed report's four shapes */
  report: boolean;
}

function shape(m: number, k: number, n: number, role: string, report = false): MatShape {
  return { label: shapeLabel(m, k, n), role, m, k, n, report };
}

/** The batch-1 shape the summary leads with (a 7B FFN projection): the memory-bandwidth figure. */
export const HEADLINE_SHAPE = shapeLabel(1, 4096, 11008);

export const MATMUL_SHAPES: MatShape[] = [
  shape(1, 512, 512, 'report: inference', true),
  shape(4, 512, 512, 'report: small batch', true),
  shape(1, 1024, 1024, 'report: large inference', true),
  shape(32, 256, 256, 'report: training batch', true),
  shape(1, 4096, 4096, '7B attention projection, batch 1'),
  shape(1, 4096, 11008, '7B FFN gate/up, batch 1'),
  shape(1, 11008, 4096, '7B FFN down, batch 1'),
  shape(64, 4096, 4096, '7B attention projection, 64 tokens'),
  shape(512, 4096, 4096, '7B attention projection, 512-token prefill'),
];

export function flops(s: MatShape): number {
  return 2 * s.m * s.k * s.n;
}

/** Weights that no cache holds between two calls: the shape's f32 weights are 64 MB or more. */
export function streamsFromMemory(s: MatShape): boolean {
  return s.k * s.n >= 4096 * 4096;
}

export interface Operands {
  shape: MatShape;
  /** m x k activations, N(0, 1) */
  x: Float32Array;
  /** the weights in every type asked for (f32: the generated values themselves) */
  w: Map<WeightType, QuantizedMatrix>;
  /** types whose quantize threw, with the message */
  failed: Map<WeightType, string>;
}

// Weights by "n x k" (shapes that differ only in m share them), kept until dropOperands().
const weights = new Map<string, { w: Map<WeightType, QuantizedMatrix>; failed: Map<WeightType, string> }>();

/**
 * x and W for a shape, W quantized to `types` (N(0, 0.02²) weights, a fixed
 * seed per n x k, so every shape with the same weights gets the same ones).
 * The weights stay cached for later shapes and sections until dropOperands().
 */
export function operands(s: MatShape, types: readonly WeightType[]): Operands {
  const key = `${s.n}x${s.k}`;
  let entry = weights.get(key);
  if (!entry) {
    const src = fillGaussian(new Float32Array(s.n * s.k), mixSeed(42, s.n, s.k), 0.02);
    entry = {
      w: new Map([['f32', Object.freeze({ type: 'f32' as WeightType, rows: s.n, cols: s.k, data: new Uint8Array(src.buffer) })]]),
      failed: new Map(),
    };
    weights.set(key, entry);
  }
  const f32 = entry.w.get('f32')!;
  const src = new Float32Array(f32.data.buffer, f32.data.byteOffset, s.n * s.k);
  for (const t of types) {
    if (entry.w.has(t) || entry.failed.has(t)) continue;
    try {
      entry.w.set(t, quantize(src, s.n, s.k, t));
    } catch (e) {
      entry.failed.set(t, (e as Error).message);
    }
  }
  const x = fillGaussian(new Float32Array(s.m * s.k), mixSeed(43, s.m, s.k), 1);
  return { shape: s, x, w: entry.w, failed: entry.failed };
}

export function dropOperands(): void {
  weights.clear();
}

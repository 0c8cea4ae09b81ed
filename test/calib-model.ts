// A tiny llama model for the calibration tests and bench: the synthetic
// model's random weights (lib/model/synthetic.ts), in f32, with what makes
// real models hard to quantize by rounding: a few hidden channels whose norm
// weights are 20-60x the others, in every layer (the "massive activations"
// of trained llamas), so the inputs of q/k/v and gate/up have outlier
// channels; and the KL divergence of a quantized copy from it, the measure of
// how much quantization changed the model.

import { writeGguf, loadModel } from '../lib/index';
import { syntheticMetadata, syntheticTensorF32, syntheticTensors, type SyntheticLlamaSpec } from '../lib/model/synthetic';
import { rng } from './helpers';

export const OUTLIER_SPEC: SyntheticLlamaSpec = Object.freeze({ hidden: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 768, vocab: 512, contextLength: 512, seed: 7 });

const ATTN_FACTOR = 0.15;

export async function writeOutlierLlama(path: string, spec: SyntheticLlamaSpec = OUTLIER_SPEC): Promise<void> {
  const r = rng(spec.seed ?? 1);
  const outliers = new Map<number, number>();
  for (let k = 0; k < Math.max(2, Math.round(spec.hidden / 64)); k++) outliers.set(Math.floor(r() * spec.hidden), 20 + 40 * r());
  const tensors = syntheticTensors(spec).map((t) => {
    const v = syntheticTensorF32(spec, t.name);
    // Attention's inputs get milder outliers: at the FFN's 20-60x, the
    // random q and k make every attention row one-hot, and the model chaotic.
    const factor = /ffn_norm/.test(t.name) ? 1 : /attn_norm/.test(t.name) ? ATTN_FACTOR : 0;
    if (factor > 0) for (const [j, f] of outliers) v[j] *= 1 + (f - 1) * factor;
    return { name: t.name, type: 'f32' as const, shape: t.shape, data: new Uint8Array(v.buffer) };
  });
  await writeGguf(path, { metadata: syntheticMetadata(spec, 0), tensors });
}

/** Per-position next-token distributions of a model on `ids` (one sequence, fed a token at a time). */
export async function positionLogits(path: string, ids: readonly number[]): Promise<Float32Array[]> {
  const model = await loadModel(path, { contextLength: ids.length + 1, threads: 1 });
  try {
    const seq = model.createSequence();
    const out: Float32Array[] = [];
    for (const id of ids) out.push((await seq.evaluate([id])).slice());
    return out;
  } finally {
    model.close();
  }
}

function logSoftmax(l: Float32Array): Float64Array {
  let mx = -Infinity;
  for (const v of l) mx = Math.max(mx, v);
  let s = 0;
  for (const v of l) s += Math.exp(v - mx);
  const lse = mx + Math.log(s);
  return Float64Array.from(l, (v) => v - lse);
}

/** Mean over positions of KL(p || q) in nats, and the mean NLL of the next tokens under q. */
export function divergence(ref: Float32Array[], q: Float32Array[], ids: readonly number[]): { kl: number; nll: number } {
  let kl = 0;
  let nll = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = logSoftmax(ref[i]);
    const b = logSoftmax(q[i]);
    let k = 0;
    for (let j = 0; j < a.length; j++) k += Math.exp(a[j]) * (a[j] - b[j]);
    kl += k;
    if (i + 1 < ids.length) nll -= b[ids[i + 1]];
  }
  return { kl: kl / ref.length, nll: nll / (ref.length - 1) };
}

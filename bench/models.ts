// The benchmark's model files: llama-shaped GGUF files with random weights,
// written once by lib/model/synthetic.ts and kept between runs.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TINYLLAMA_SPEC, writeSyntheticLlama, type SyntheticLlamaSpec } from '../lib/model/synthetic';

export interface BenchModel {
  name: string;
  /** a short tag for file names */
  tag: string;
  spec: SyntheticLlamaSpec;
}

/** The seed report's scenario: 512 hidden, 8 layers. */
export const LLAMA_512: BenchModel = { name: 'llama 512 x 8 layers', tag: 'llama512', spec: { hidden: 512, layers: 8, heads: 8, kvHeads: 8, ffn: 1536, vocab: 32000, contextLength: 2048, seed: 42 } };
/** TinyLlama 1.1B (hidden 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000). */
export const TINYLLAMA: BenchModel = { name: 'TinyLlama 1.1B shape', tag: 'tinyllama-shape', spec: { ...TINYLLAMA_SPEC } };

/** Where the files are kept (QKERNELS_BENCH_MODELS overrides). */
export function benchModelDir(): string {
  return process.env.QKERNELS_BENCH_MODELS ?? path.join(os.tmpdir(), 'qkernels-bench-models');
}

// The writer's output is a pure function of spec, recipe and seed; the
// version in the name changes whenever the writer's output would.
const WRITER_VERSION = 1;

/** The file of `model` in `recipe`, written now if no earlier run left it (then writeSeconds says how long that took). */
export async function benchModelFile(model: BenchModel, recipe: string, onWrite?: () => void): Promise<{ file: string; writeSeconds: number | null }> {
  const dir = benchModelDir();
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${model.tag}-${recipe}-v${WRITER_VERSION}.gguf`);
  if (fs.existsSync(file)) return { file, writeSeconds: null };
  onWrite?.();
  const t0 = performance.now();
  // written aside and renamed, so that a killed run never leaves a file that looks whole
  const tmp = `${file}.${process.pid}.part`;
  try {
    await writeSyntheticLlama(tmp, model.spec, recipe);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return { file, writeSeconds: (performance.now() - t0) / 1000 };
}

// Command line of `npm run bench` / `qkernels bench`.

export type SectionId = 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H';

export const SECTIONS: Record<SectionId, { name: string; aliases: string[]; title: string }> = {
  A: { name: 'roundtrip', aliases: ['quantize', 'quant'], title: 'A. Quantization round trip' },
  B: { name: 'matmul', aliases: ['gemm', 'gemv'], title: 'B. Quantized vs f32 matmul' },
  C: { name: 'simd', aliases: ['scalar', 'isa'], title: 'C. SIMD vs scalar C++ vs JS fallback' },
  D: { name: 'decode', aliases: ['inference', 'llama', 'model'], title: 'D. Realistic inference: batch-1 decode' },
  E: { name: 'bandwidth', aliases: ['limit', 'memory', 'bw'], title: 'E. The limit: memory read bandwidth' },
  F: { name: 'async', aliases: ['eventloop', 'loop', 'matmulasync'], title: 'F. matmulAsync and the event loop' },
  G: { name: 'run', aliases: ['llamacpp', 'llama.cpp', 'e2e', 'runner'], title: 'G. Running a model: qkernels vs llama.cpp' },
  H: { name: 'gptq', aliases: ['awq', 'calibrated'], title: 'H. GPTQ and AWQ on one layer (native)' },
};

/** Sections run only when --filter names them (not part of the default run's time budget). */
export const OPT_IN: readonly SectionId[] = ['H'];

export interface Args {
  quick: boolean;
  /** no time caps: slow kernels run on every shape, every decode type at the TinyLlama shape */
  long: boolean;
  /** "all threads": the second thread count measured (default: the backend's default, the physical cores) */
  threads: number | null;
  sections: Set<SectionId>;
  /** --filter was given: the sections named run in full (G: every recipe, thread count and mode) */
  filtered: boolean;
  json: string | null;
  /** folder for results.json, results.md, speedups.svg ('' = do not write) */
  out: string | null;
  progress: boolean;
  help: boolean;
}

export const USAGE = `usage: qkernels bench [options]     (npm run bench -- [options])

  --quick            a run under a minute: fewer types, sizes and repetitions; the TinyLlama shape
                     with q4_0 only
  --long             no time caps (the default run skips calls predicted to take over 6 s, and decode
                     types whose weights would take over 45 s to quantize at the TinyLlama shape)
  --threads N        the "all threads" count (default: the physical cores); 1 is always measured too
  --filter LIST      only these sections, comma-separated letters or names:
                       A roundtrip   B matmul   C simd   D decode   E bandwidth   F async   G run
                       H gptq (GPTQ and AWQ on a 4096x4096 layer; only when named here)
                     G named here (or --long) runs its whole matrix: q4_0, q4_k_m and q8_0, each
                     mapped and read; the default run does q4_0 both ways and q4_k_m mapped
                     (E is measured anyway when B or D runs: their percentages need it)
  --json FILE        also write the JSON results to FILE
  --out DIR          where results.json, results.md and speedups.svg go (default: bench/results;
                     --out '' writes nothing)
  --no-progress      no progress bar
  -h, --help         this text`;

export function parseSections(spec: string): Set<SectionId> {
  const out = new Set<SectionId>();
  for (const raw of spec.split(/[,\s]+/).filter(Boolean)) {
    const w = raw.toLowerCase();
    let found: SectionId | null = null;
    for (const [id, s] of Object.entries(SECTIONS) as [SectionId, (typeof SECTIONS)[SectionId]][]) {
      if (w === id.toLowerCase() || w === s.name || s.aliases.includes(w)) found = id;
    }
    if (!found && /^[a-h]+$/.test(w)) {
      for (const ch of w) out.add(ch.toUpperCase() as SectionId);
      continue;
    }
    if (!found) throw new Error(`--filter: unknown section '${raw}'; expected letters A-H or one of ${Object.values(SECTIONS).map((s) => s.name).join(', ')}`);
    out.add(found);
  }
  if (out.size === 0) throw new Error('--filter: no section given');
  return out;
}

export function parseArgs(argv: string[]): Args {
  const a: Args = {
    quick: false,
    long: false,
    threads: null,
    sections: new Set((Object.keys(SECTIONS) as SectionId[]).filter((id) => !OPT_IN.includes(id))),
    filtered: false,
    json: null,
    out: null,
    progress: true,
    help: false,
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const next = () => (inline !== undefined ? inline : value(++i, flag));
    switch (flag) {
      case '--quick':
        a.quick = true;
        break;
      case '--long':
        a.long = true;
        break;
      case '--threads': {
        const v = next();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`--threads must be an integer in [1, 256]; got '${v}'`);
        a.threads = n;
        break;
      }
      case '--filter':
        a.sections = parseSections(next());
        a.filtered = true;
        break;
      case '--json':
        a.json = next();
        break;
      case '--out':
        a.out = next();
        break;
      case '--no-progress':
        a.progress = false;
        break;
      case '-h':
      case '--help':
        a.help = true;
        break;
      default:
        throw new Error(`unknown argument '${arg}'`);
    }
  }
  return a;
}

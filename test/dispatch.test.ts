// CPU dispatch: the native addon picks the best ISA this CPU (and OS) runs, as
// the kernel reports it in /proc/cpuinfo; QKERNELS_ISA forces any lower level
// and refuses, in a sentence, a level the CPU lacks; and the same binary on
// older CPUs (qemu-x86_64 -cpu Haswell / qemu64, when qemu-user is installed;
// required when CI=true) picks lower kernels and never executes an instruction the CPU
// lacks (that would kill the process with SIGILL).
//
// Each case runs in a child process on lib/index.ts bundled by esbuild, so the
// environment variables are read at load exactly as a user's process reads them.
import { spawnSync } from 'child_process';
import { buildSync } from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { nativeBackend } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'build-test-dispatch');
const BUNDLE = path.join(OUT, 'qkernels.cjs');
const CHILD = path.join(OUT, 'child.cjs');
const ALL_ISAS = ['avx512', 'avx2', 'neon', 'scalar'];

const native = nativeBackend();
const jsForced = process.env.QKERNELS_BACKEND === 'js';

/** What the kernel says this CPU runs: the ISA list the addon must report, best first. */
function isasFromCpuinfo(): string[] {
  if (process.arch === 'arm64') return ['neon', 'scalar'];
  if (process.arch !== 'x64') return ['scalar'];
  const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const m = /^flags\s*:(.*)$/m.exec(text);
  const f = new Set((m ? m[1] : '').trim().split(/\s+/));
  const has = (...n: string[]) => n.every((x) => f.has(x));
  const out: string[] = [];
  // The addon's requirements (native/src/cpu.cc); the kernel hides avx* flags
  // when the OS does not save the registers (XCR0), like XGETBV does.
  const avx2 = has('avx', 'avx2', 'fma', 'f16c');
  if (avx2 && has('avx512f', 'avx512dq', 'avx512bw', 'avx512vl')) out.push('avx512');
  if (avx2) out.push('avx2');
  out.push('scalar');
  return out;
}

// The child: load qkernels (env applied at load), report, run a few matmuls on
// every ISA it reports and compare them with the scalar kernels.
const CHILD_SRC = `
const q = require(process.argv[2]);
const b = q.backend();
const K = 512, N = 24, M = 2;
let s = 99;
const rnd = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296 - 0.5; };
const W = new Float32Array(N * K).map(rnd), X = new Float32Array(M * K).map(rnd);
const run = (isa) => {
  q.setIsa(isa);
  const r = {};
  for (const t of ['q4_0', 'q4_1', 'q8_0', 'f16', 'f32']) {
    const w = q.quantize(W, N, K, t);
    r[t] = { bytes: Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength).toString('base64'),
             q8: Array.from(q.matmul(w, X, M)), f32: Array.from(q.matmul(w, X, M, undefined, { precision: 'f32' })) };
  }
  return r;
};
const chosen = b.isa;
const results = {};
for (const isa of b.isas) results[isa] = run(isa);
let worst = 0, bytesDiffer = [];
for (const isa of b.isas) for (const t of Object.keys(results.scalar)) {
  if (results[isa][t].bytes !== results.scalar[t].bytes) bytesDiffer.push(isa + ' ' + t);
  for (const p of ['q8', 'f32']) results[isa][t][p].forEach((v, i) => {
    const ref = results.scalar[t][p][i];
    worst = Math.max(worst, Math.abs(v - ref) / (Math.abs(ref) + 1));
  });
}
process.stdout.write(JSON.stringify({ name: b.name, isa: chosen, isas: b.isas, worst, bytesDiffer }));
`;

interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: { name: string; isa: string; isas: string[]; worst: number; bytesDiffer: string[] } | null;
  stderr: string;
}

function runChild(env: Record<string, string | undefined>, qemuCpu?: string): ChildResult {
  const childEnv: Record<string, string | undefined> = { ...process.env };
  delete childEnv.QKERNELS_ISA;
  delete childEnv.QKERNELS_BACKEND;
  delete childEnv.NODE_OPTIONS;
  Object.assign(childEnv, env);
  const cmd = qemuCpu ? 'qemu-x86_64' : process.execPath;
  const args = qemuCpu ? ['-cpu', qemuCpu, process.execPath, CHILD, BUNDLE] : [CHILD, BUNDLE];
  const r = spawnSync(cmd, args, { env: childEnv as NodeJS.ProcessEnv, encoding: 'utf8', timeout: 90_000 });
  const stderr = (r.stderr || '')
    .split('\n')
    .filter((l) => !/TCG doesn't support requested feature/.test(l))
    .join('\n')
    .trim();
  let out = null;
  try {
    out = r.stdout ? JSON.parse(r.stdout) : null;
  } catch {
    out = null;
  }
  return { status: r.status, signal: r.signal, out, stderr };
}

function hasQemuX86(): boolean {
  if (process.arch !== 'x64' || process.platform !== 'linux') return false;
  return spawnSync('qemu-x86_64', ['--version'], { encoding: 'utf8' }).status === 0;
}

const skipNative = !native || jsForced;
if (!native && !jsForced) {
  // The dispatch tests are about the native addon: say so instead of passing vacuously.
  console.warn('dispatch.test.ts: the native addon is not built; these tests are skipped (npm install builds it)');
}

describe.skipIf(skipNative)('CPU dispatch', () => {
  beforeAll(() => {
    fs.mkdirSync(OUT, { recursive: true });
    buildSync({
      entryPoints: [path.join(ROOT, 'lib', 'index.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node18',
      outfile: BUNDLE,
      external: ['node-gyp-build'],
      logLevel: 'warning',
    });
    fs.writeFileSync(CHILD, CHILD_SRC);
  });

  const want = isasFromCpuinfo();

  it(`picks the best ISA of this CPU per /proc/cpuinfo (${want[0]}) and lists exactly ${want.join(', ')}`, () => {
    const r = runChild({});
    expect(r.signal, r.stderr).toBe(null);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out!.name).toBe('native');
    expect(r.out!.isa).toBe(want[0]);
    expect(r.out!.isas).toEqual(want);
    expect(r.out!.bytesDiffer).toEqual([]);
    expect(r.out!.worst).toBeLessThan(1e-4);
  });

  it('QKERNELS_ISA=auto is the best ISA', () => {
    const r = runChild({ QKERNELS_ISA: 'auto' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.out!.isa).toBe(want[0]);
  });

  it.each(want)('QKERNELS_ISA=%s forces that level', (isa) => {
    const r = runChild({ QKERNELS_ISA: isa });
    expect(r.signal, r.stderr).toBe(null);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out!.isa).toBe(isa);
  });

  const lacking = ALL_ISAS.filter((i) => !want.includes(i));
  it.each(lacking.length ? lacking : ['(none)'])('QKERNELS_ISA=%s, which this CPU lacks, fails in a sentence, not with SIGILL', (isa) => {
    if (isa === '(none)') return;
    const r = runChild({ QKERNELS_ISA: isa });
    expect(r.signal).toBe(null);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_QK_ISA|not supported/);
    expect(r.stderr).toContain(isa);
  });

  it('no build file compiles for the build machine or turns an ISA on globally', () => {
    for (const f of ['binding.gyp', 'CMakeLists.txt', 'scripts/prebuild.sh']) {
      const text = fs
        .readFileSync(path.join(ROOT, f), 'utf8')
        .split('\n')
        .filter((l) => !/^\s*(#|\/\/)/.test(l))
        .join('\n');
      expect(text, f).not.toMatch(/-march=|-mcpu=native|-mtune=native|["'\s]-mavx|["'\s]-mfma|["'\s]-mf16c/);
    }
  });

  // Older x86-64 CPUs, emulated: the one binary must choose lower kernels there
  // and run them; any AVX/AVX-512 instruction reached would be SIGILL.
  const CPUS: Array<[string, string[]]> = [
    ['Haswell-noTSX', ['avx2', 'scalar']], // AVX2+FMA+F16C, no AVX-512
    ['qemu64', ['scalar']], // the x86-64 baseline
  ];
  // CI=true installs qemu-user first (scripts/test-all.sh): there a missing qemu fails.
  const x86Linux = process.arch === 'x64' && process.platform === 'linux';
  describe.skipIf(!x86Linux || (!hasQemuX86() && process.env.CI !== 'true'))('on older x86-64 CPUs (qemu-x86_64)', () => {
    it.each(CPUS)('-cpu %s: picks %j, every ISA agrees with scalar, no SIGILL', (cpu, isas) => {
      const r = runChild({}, cpu);
      expect(r.signal, `qemu -cpu ${cpu}: ${r.stderr}`).toBe(null);
      expect(r.status, `qemu -cpu ${cpu}: ${r.stderr}`).toBe(0);
      expect(r.out!.isas).toEqual(isas);
      expect(r.out!.isa).toBe(isas[0]);
      expect(r.out!.bytesDiffer).toEqual([]);
      expect(r.out!.worst).toBeLessThan(1e-4);
      // A level above what the emulated CPU has is refused, not run.
      const r2 = runChild({ QKERNELS_ISA: 'avx512' }, cpu);
      expect(r2.signal, r2.stderr).toBe(null);
      expect(r2.status).not.toBe(0);
      expect(r2.stderr).toMatch(/ERR_QK_ISA|not supported/);
    });
  });
});

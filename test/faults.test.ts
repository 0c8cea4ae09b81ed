// Faults: a file truncated under its mapping, and `qkernels quantize`
// interrupted (SIGINT, SIGKILL at random points), writing where it cannot
// (a full disk, a read-only folder), or reading an input that shrinks while it
// runs. The input must stay untouched, no partial output may appear under the
// output's name, stale temporary files are cleaned by the next run, and the
// exit is non-zero with one clear line. Mount-based cases (tmpfs of 1 MiB,
// read-only tmpfs) need root; elsewhere they are skipped with a message.
import { spawn, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, openGguf, QkError } from '../lib/index';
import { writeSyntheticLlama } from '../lib/model/synthetic';
import { rng } from './helpers';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli.js');
const GOLDEN = path.join(__dirname, 'fixtures', 'gguf', 'golden-q4_0.gguf');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-faults-'));
const input = path.join(dir, 'in-f32.gguf');
let inputHash = '';
const mounts: string[] = [];

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const temps = (d: string) => fs.readdirSync(d).filter((n) => n.endsWith('.tmp'));

beforeAll(async () => {
  // big enough that quantize runs for a while (~90 MB of f32)
  await writeSyntheticLlama(input, { hidden: 512, layers: 8, heads: 8, kvHeads: 4, ffn: 1536, vocab: 4000, seed: 11 }, 'f32');
  inputHash = sha(input);
}, 120_000);

afterAll(() => {
  for (const m of mounts) spawnSync('umount', [m]);
  fs.rmSync(dir, { recursive: true, force: true });
});

function quantize(out: string, extra: string[] = []) {
  return spawn(process.execPath, [CLI, 'quantize', input, out, '--type', 'q4_k_m', '--threads', '1', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function finish(p: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null; err: string }> {
  let err = '';
  p.stderr!.on('data', (d) => (err += String(d)));
  p.stdout!.resume();
  return new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal, err })));
}

/** A tmpfs mounted at a new folder, or null where this process may not mount. */
function tmpfs(name: string, options: string): string | null {
  const at = path.join(dir, name);
  fs.mkdirSync(at);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', at]);
  if (r.status !== 0) return null;
  mounts.push(at);
  return at;
}

describe('a mapped file truncated by another process', () => {
  it('a model reading past the new end gets a QkError, not SIGBUS', async () => {
    const f = path.join(dir, 'model.gguf');
    fs.copyFileSync(GOLDEN, f);
    const m = await loadModel(f, { threads: 1 });
    try {
      const ids = m.tokenize('Hello world', { addBos: true });
      await m.evaluate(ids);
      expect(m.file.mode).toBe('mmap');
      // to less than its header: the embedding rows (read from the mapping each step) are gone
      fs.truncateSync(f, 4096);
      const s = m.createSequence();
      await expect(s.evaluate(ids)).rejects.toThrow(/shrank while mapped/);
    } finally {
      m.close();
    }
  });

  it('a tensor view read past the new end reads zeros, and checkIntact says so', () => {
    const f = path.join(dir, 'reader.gguf');
    fs.copyFileSync(GOLDEN, f);
    const g = openGguf(f);
    try {
      const t = g.tensors[g.tensors.length - 1];
      const d = t.data;
      g.checkIntact();
      fs.truncateSync(f, 100_000);
      let nonzero = 0;
      for (let i = 0; i < d.length; i++) if (d[i] !== 0) nonzero++;
      expect(nonzero).toBe(0);
      expect(() => g.checkIntact()).toThrow(QkError);
    } finally {
      g.close();
    }
  });
});

describe('qkernels quantize under faults', () => {
  it('SIGINT at random points: exit 130, no output, no temporary file, input untouched', async () => {
    expect(fs.existsSync(CLI), 'npm run build:ts first').toBe(true);
    const r = rng(7);
    for (let i = 0; i < 4; i++) {
      const out = path.join(dir, `int-${i}.gguf`);
      const p = quantize(out);
      const done = finish(p);
      await new Promise((res) => setTimeout(res, 150 + Math.floor(r() * 900)));
      p.kill('SIGINT');
      const { code, signal } = await done;
      if (code === 0) continue; // finished before the signal: a whole file, checked below
      expect(signal ?? code).toBe(130);
      expect(fs.existsSync(out)).toBe(false);
    }
    expect(temps(dir)).toEqual([]);
    expect(sha(input)).toBe(inputHash);
  }, 120_000);

  it('SIGKILL: no output; the next run removes the stale temporary file and says so', async () => {
    const out = path.join(dir, 'killed.gguf');
    const p = quantize(out);
    const done = finish(p);
    await new Promise((res) => setTimeout(res, 500));
    p.kill('SIGKILL');
    const { signal } = await done;
    expect(signal).toBe('SIGKILL');
    expect(fs.existsSync(out)).toBe(false);
    const stale = temps(dir);
    expect(stale.length).toBe(1);
    const again = await finish(quantize(out));
    expect(again.code, again.err).toBe(0);
    expect(again.err).toMatch(new RegExp(`removed a stale temporary file .*${stale[0].replace(/\./g, '\\.')}`));
    expect(temps(dir)).toEqual([]);
    expect(openGguf(out).tensors.length).toBeGreaterThan(0);
    expect(sha(input)).toBe(inputHash);
  }, 120_000);

  it('a full disk (ENOSPC): exit 1, one clear line, no output, no temporary file', async (ctx) => {
    const small = tmpfs('full', 'size=1m');
    if (!small) return ctx.skip();
    const out = path.join(small, 'out.gguf');
    const { code, err } = await finish(quantize(out));
    expect(code).toBe(1);
    expect(err.trim().split('\n').filter((l) => l.startsWith('qkernels')).length).toBe(1);
    expect(err).toMatch(/ENOSPC|no space/i);
    expect(fs.readdirSync(small)).toEqual([]);
  }, 120_000);

  it('a read-only folder: exit 1, one clear line, nothing written', async (ctx) => {
    const ro = tmpfs('ro', 'ro,size=1m');
    if (!ro) return ctx.skip();
    const out = path.join(ro, 'out.gguf');
    const { code, err } = await finish(quantize(out));
    expect(code).toBe(1);
    expect(err).toMatch(/EROFS|read-only/i);
    expect(fs.readdirSync(ro)).toEqual([]);
  }, 120_000);

  it('an input truncated while it runs: exit 1 naming the input, no output, no SIGBUS', async () => {
    const copy = path.join(dir, 'shrinking.gguf');
    fs.copyFileSync(input, copy);
    const out = path.join(dir, 'from-shrinking.gguf');
    const p = spawn(process.execPath, [CLI, 'quantize', copy, out, '--type', 'q4_k_m', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const done = finish(p);
    await new Promise((res) => setTimeout(res, 300));
    fs.truncateSync(copy, Math.floor(fs.statSync(copy).size / 3));
    const { code, signal, err } = await done;
    expect(signal).toBeNull();
    expect(code).toBe(1);
    expect(err).toMatch(/shrinking\.gguf.*(shrank|truncated|ended)/);
    expect(fs.existsSync(out)).toBe(false);
    expect(temps(dir)).toEqual([]);
  }, 120_000);
});

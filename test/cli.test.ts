// The `qkernels` command: inspect (text and JSON), quantize (summary,
// progress, failures), bench (arguments passed through), help everywhere.
// Most runs call main() in this process; a few spawn the built bin.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../lib/cli';
import { openGguf, writeGguf } from '../lib/index';
import { llamaModel, tempDir } from './fixtures/gguf/model';
import { loadModel } from '../lib/model/model';
import { safetensorsBytes } from './fixtures/safetensors';
import { writeSyntheticLlama } from '../lib/model/synthetic';

const root = path.join(__dirname, '..');
const TV10 = path.join(__dirname, 'fixtures', 'gguf', 'tv10.gguf');
const GOLDEN = path.join(__dirname, 'fixtures', 'gguf', 'golden-q4_k_s.gguf');
const tmp = tempDir('qk-cli-');
const src = path.join(tmp.dir, 'model-f32.gguf');
afterAll(tmp.cleanup);

beforeAll(async () => {
  const m = llamaModel({ layers: 2, hidden: 256, ffn: 512, vocab: 64 });
  await writeGguf(src, { metadata: m.metadata, tensors: m.tensors });
});

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('qkernels run', () => {
  const model = path.join(tmp.dir, 'run-q4_0.gguf');
  beforeAll(async () => {
    await writeSyntheticLlama(model, { hidden: 128, layers: 2, heads: 4, kvHeads: 2, ffn: 256, vocab: 512, contextLength: 256, seed: 4 }, 'q4_0');
  });

  it('streams the prompt and the greedy continuation that model.complete gives, then a line of speeds', async () => {
    const r = await run('run', model, '-p', 'Hello world', '-n', '12', '--temp', '0', '--ignore-eos', '--threads', '1');
    expect(r.code).toBe(0);
    const m = await loadModel(model);
    try {
      const want = await m.complete('Hello world', { temperature: 0, maxTokens: 12, ignoreEos: true, parseSpecial: true });
      expect(want.generatedTokens).toBe(12);
      expect(r.out).toBe(`Hello world${want.text}\n`);
    } finally {
      m.close();
    }
    expect(r.err).toMatch(/^prompt: \d+ tokens in [\d.]+ ms \([\d.]+ tokens\/s\); generation: 12 tokens in [\d.]+ ms \([\d.]+ tokens\/s\); finish: length\n$/);
  });

  it('a seed makes a sampled run repeatable; a stop string ends it', async () => {
    const a = await run('run', model, '-p', 'Once', '-n', '16', '--temp', '1', '--seed', '7', '--ignore-eos');
    const b = await run('run', model, '-p', 'Once', '-n', '16', '--temp', '1', '--seed', '7', '--ignore-eos');
    expect(a.code).toBe(0);
    expect(a.out).toBe(b.out);
    const text = a.out.slice('Once'.length, -1);
    const cut = text.slice(2, 4);
    if (cut.length === 2) {
      const s = await run('run', model, '-p', 'Once', '-n', '16', '--temp', '1', '--seed', '7', '--ignore-eos', '--stop', cut);
      expect(s.out).toBe(`Once${text.slice(0, text.indexOf(cut))}\n`);
      expect(s.err).toMatch(/finish: stop/);
    }
  });

  it('bad usage is exit code 2, a file it cannot run exit code 1 with the reason', async () => {
    expect((await run('run', model)).err).toMatch(/run needs -p PROMPT/);
    expect((await run('run', model)).code).toBe(2);
    expect((await run('run', '-p', 'x')).code).toBe(2);
    expect((await run('run', model, '-p', 'x', '--engine', 'gpu')).err).toMatch(/--engine must be native or js/);
    const missing = await run('run', path.join(tmp.dir, 'nope.gguf'), '-p', 'x');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/qkernels run: .*nope\.gguf/);
    const notLlama = await run('run', TV10, '-p', 'x');
    expect(notLlama.code).toBe(1);
    expect(notLlama.err).toMatch(/qkernels run: /);
    expect((await run('run', '--help')).out).toMatch(/usage: qkernels run MODEL -p PROMPT/);
  });
});

describe('qkernels', () => {
  it('prints help for the command and each subcommand', async () => {
    expect((await run()).out).toMatch(/usage: qkernels <command>/);
    expect((await run('--help')).out).toMatch(/inspect FILE.*\n.*quantize IN OUT --type T.*\n.*run MODEL -p PROMPT.*\n.*serve MODEL.*\n.*bench/);
    expect((await run('serve', '--help')).out).toMatch(/usage: qkernels serve MODEL \[--port N\]/);
    expect((await run('inspect', '--help')).out).toMatch(/usage: qkernels inspect FILE \[--json\] \[--full\]/);
    const q = (await run('quantize', '-h')).out;
    expect(q).toMatch(/usage: qkernels quantize IN OUT --type TYPE/);
    expect(q).toMatch(/q4_k_m, q4_k_s, q5_k_m, q6_k, q8_0/);
  });

  it('refuses bad usage with exit code 2 and the usage', async () => {
    const r = await run('frobnicate');
    expect([r.code, r.err]).toEqual([2, expect.stringMatching(/unknown command 'frobnicate'/)]);
    expect((await run('inspect')).code).toBe(2);
    expect((await run('inspect', TV10, '--nope')).err).toMatch(/unknown option --nope/);
    expect((await run('quantize', src, 'x.gguf')).err).toMatch(/needs --type TYPE/);
    expect((await run('quantize', src, 'x.gguf', '--type', 'q3_k_s')).err).toMatch(/unknown --type 'q3_k_s'; expected one of q4_k_m/);
    expect((await run('quantize', src, 'x.gguf', '--type', 'q4_0', '--threads', '0')).code).toBe(2);
  });

  it('inspect: metadata with types and a tensor table', async () => {
    const r = await run('inspect', TV10);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/GGUF v3, 416 bytes .* alignment 32, data at byte 320/);
    expect(r.out).toMatch(/general\.architecture\s+string\s+"llama"/);
    expect(r.out).toMatch(/test\.ints\s+array\s+\[int32 x 3\] \[1, -2, 3\]/);
    expect(r.out).toMatch(/test\.flag\s+bool\s+true/);
    expect(r.out).toMatch(/w\s+q4_0\s+\[32, 2\]\s+36/);
    expect(r.out).toMatch(/norm\s+f32\s+\[4\]\s+16/);
    expect(r.out).toMatch(/total: 2 tensors, 68 weights/);
  });

  it('inspect: a safetensors file (text and JSON), found by its extension or its first bytes; a broken one is one clear line', async () => {
    const bytes = safetensorsBytes(
      { 'a.qweight': { dtype: 'I32', shape: [2, 8], data: new Uint8Array(64) }, 'a.scales': { dtype: 'F16', shape: [1, 8], data: new Uint8Array(16) }, 'a.step': { dtype: 'I64', shape: [], data: new Uint8Array(8) } },
      { format: 'pt', long: 'x'.repeat(300) },
    );
    const headerLength = Number(Buffer.from(bytes).readBigUInt64LE(0));
    const st = path.join(tmp.dir, 'w.safetensors');
    fs.writeFileSync(st, bytes);
    const r = await run('inspect', st);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${st}: safetensors, ${bytes.length} bytes (${bytes.length} B), header ${headerLength} bytes, data at byte ${8 + headerLength}`);
    expect(r.out).toMatch(/metadata \(2\):\n  format\s+"pt"\n  long\s+"x{200}…"/);
    expect(r.out).toMatch(/tensors \(3\):\n  name\s+dtype\s+shape\s+bytes\n  a\.qweight\s+I32\s+\[2, 8\]\s+64\n  a\.scales\s+F16\s+\[1, 8\]\s+16\n  a\.step\s+I64\s+\[\]\s+8\n/);
    expect(r.out).toMatch(/total: 3 tensors, 88 bytes \(88 B\), 25 elements \(I32 x 1, F16 x 1, I64 x 1\)/);
    expect((await run('inspect', st, '--full')).out).toMatch(/long\s+"x{300}"/);
    const j = JSON.parse((await run('inspect', st, '--json')).out);
    expect(j).toMatchObject({ format: 'safetensors', fileSize: bytes.length, headerLength, dataOffset: 8 + headerLength, metadata: { format: 'pt' } });
    expect(j.tensors.map((t: { name: string; bytes: number }) => [t.name, t.bytes])).toEqual([['a.qweight', 64], ['a.scales', 16], ['a.step', 8]]);
    expect(j.summary).toEqual({ tensors: 3, elements: 25, bytes: 88, dtypes: { I32: 1, F16: 1, I64: 1 } });
    // Another extension: the first bytes tell.
    const other = path.join(tmp.dir, 'weights.bin');
    fs.writeFileSync(other, bytes);
    expect((await run('inspect', other)).out).toMatch(/weights\.bin: safetensors, /);
    fs.truncateSync(st, bytes.length - 1);
    const bad = await run('inspect', st);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^qkernels inspect: .*w\.safetensors: tensor 'a\.step': data_offsets \[80, 88\] end at byte \d+, past the end of the \d+-byte file \[ERR_QK_LENGTH\]\n$/);
    // A .safetensors file too short to sniff is still read as one.
    fs.writeFileSync(st, new Uint8Array(3));
    expect((await run('inspect', st)).err).toMatch(/w\.safetensors: 3 bytes is too short for a safetensors file .*\[ERR_QK_LENGTH\]/);
  });

  it('inspect --json: everything, for machines', async () => {
    const r = await run('inspect', GOLDEN, '--json');
    const j = JSON.parse(r.out);
    expect(j.version).toBe(3);
    expect(j.metadata['general.file_type']).toEqual({ type: 'uint32', value: 14 });
    expect(j.metadata['llama.attention.layer_norm_rms_epsilon']).toEqual({ type: 'float32', value: 0.00001 });
    expect(j.metadata['tokenizer.ggml.tokens']).toMatchObject({ type: 'array', itemType: 'string', length: 512, truncated: true });
    expect(j.metadata['tokenizer.ggml.tokens'].value.length).toBe(64);
    expect(j.tensors.length).toBe(21);
    expect(j.tensors.find((t: { name: string }) => t.name === 'blk.0.attn_v.weight')).toMatchObject({ type: 'q5_K', ggmlType: 13, shape: [256, 256], bytes: 45056 });
    expect(j.summary.types).toEqual({ q6_K: 1, f32: 5, q4_K: 13, q5_K: 2 });
    const full = JSON.parse((await run('inspect', GOLDEN, '--json', '--full')).out);
    expect(full.metadata['tokenizer.ggml.tokens'].value.length).toBe(512);
  });

  it('inspect: a bad file is exit code 1 and a message with the offset', async () => {
    const bad = path.join(tmp.dir, 'bad.gguf');
    fs.writeFileSync(bad, fs.readFileSync(TV10).subarray(0, 300));
    const r = await run('inspect', bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/qkernels inspect: .*bad\.gguf: tensor 'w' \(36 bytes at 320\) ends at byte 356, past the end of the 300-byte file \(at byte 213\) \[ERR_QK_LENGTH\]/);
  });

  it('quantize: a recipe, a summary, a progress bar, and a file that reopens', async () => {
    const out = path.join(tmp.dir, 'model-q4_k_m.gguf');
    const r = await run('quantize', src, out, '--type', 'Q4_K_M', '--progress', '--threads', '2');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/quantized .* \(q4_k_m, general\.file_type 15\)/);
    expect(r.out).toMatch(/size before: .* \(32\.00 bits per weight\)/);
    expect(r.out).toMatch(/size after: .* bits per weight, .*x smaller\)/);
    expect(r.out).toMatch(/tensors: .*q4_K x \d+.*q6_K x \d+/);
    expect(r.out).toMatch(/time: +\d+\.\d s/);
    expect(r.err).toMatch(/\[#+\] 100%  21\/21 tensors  .* ETA 00:00/);
    const f = openGguf(out);
    expect(f.metadata['general.file_type']).toBe(15);
    expect(f.tensor('output.weight')!.typeName).toBe('q6_K');
    f.close();
    const j = await run('quantize', src, path.join(tmp.dir, 'model-q8.gguf'), '--type', 'q8_0', '--json');
    const s = JSON.parse(j.out);
    expect(s).toMatchObject({ type: 'q8_0', fileType: 7 });
    expect(s.bitsPerWeightAfter).toBeCloseTo(8.5, 0);
    expect(j.err).toBe('');
  });

  it('quantize --method gptq|awq: calibrated files of the recipe, a calibration progress line, and usage errors', async () => {
    const model = path.join(tmp.dir, 'synthetic-f32.gguf');
    await writeSyntheticLlama(model, { hidden: 128, layers: 2, heads: 4, kvHeads: 2, ffn: 256, vocab: 300, seed: 5 }, 'f32');
    const calib = path.join(tmp.dir, 'calib.txt');
    fs.writeFileSync(calib, 'the quick brown fox jumps over the lazy dog. '.repeat(40));
    const plain = path.join(tmp.dir, 'plain-q4_0.gguf');
    expect((await run('quantize', model, plain, '--type', 'q4_0')).code).toBe(0);
    for (const method of ['gptq', 'awq']) {
      const out = path.join(tmp.dir, `${method}-q4_0.gguf`);
      const r = await run('quantize', model, out, '--type', 'q4_0', '--method', method, '--calib', calib, '--calib-tokens', '256', '--progress');
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(new RegExp(`quantized .* \\(q4_0, ${method}, general\\.file_type 2\\)`));
      expect(r.err).toMatch(/calibrating \[[#.]+\] layer 2\/2 /);
      expect(fs.statSync(out).size).toBe(fs.statSync(plain).size);
    }
    expect((await run('quantize', model, 'x.gguf', '--type', 'q4_0', '--method', 'gptq')).err).toMatch(/--method gptq needs --calib TEXT_FILE/);
    expect((await run('quantize', model, 'x.gguf', '--type', 'q4_0', '--method', 'hqq', '--calib', calib)).err).toMatch(/--method must be gptq or awq/);
    expect((await run('quantize', model, 'x.gguf', '--type', 'q4_0', '--calib', calib)).err).toMatch(/go with --method/);
    expect((await run('quantize', model, 'x.gguf', '--type', 'q4_0', '--method', 'awq', '--calib', path.join(tmp.dir, 'none.txt'))).err).toMatch(/cannot read --calib/);
    expect(fs.existsSync('x.gguf')).toBe(false);
  });

  it('quantize: a failure leaves no output and says why', async () => {
    const out = path.join(tmp.dir, 'never.gguf');
    const r = await run('quantize', TV10, out, '--type', 'q4_k');
    // TV-10's q4_0 tensor has rows of 32: q4_K falls back to q5_0; the file converts.
    expect(r.code).toBe(0);
    const missing = await run('quantize', path.join(tmp.dir, 'nope.gguf'), out + '2', '--type', 'q8_0');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/cannot open .*ENOENT.*\[ERR_QK_ARG\]/);
    expect(fs.existsSync(out + '2')).toBe(false);
    expect(fs.readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('the built bin (dist/lib/cli.js)', () => {
  const bin = path.join(root, 'dist', 'lib', 'cli.js');
  const built = fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(path.join(root, 'lib', 'cli.ts')).mtimeMs;

  it('is the package bin and starts with a shebang', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ qkernels: 'dist/lib/cli.js' });
    expect(fs.readFileSync(path.join(root, 'lib', 'cli.ts'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it.skipIf(!built)('runs: inspect, exit codes', () => {
    const ok = spawnSync(process.execPath, [bin, 'inspect', TV10, '--json'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).tensors.length).toBe(2);
    const bad = spawnSync(process.execPath, [bin, 'inspect', path.join(tmp.dir, 'nope.gguf')], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/ENOENT/);
    const usage = spawnSync(process.execPath, [bin, 'nope'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
  });

  it.skipIf(!built)('quantize: Ctrl-C leaves neither an output nor a temporary file', async () => {
    const big = path.join(tmp.dir, 'big-f32.gguf');
    const m = llamaModel({ layers: 4, hidden: 512, ffn: 1536, vocab: 8000, seed: 5 });
    await writeGguf(big, { metadata: m.metadata, tensors: m.tensors });
    const out = path.join(tmp.dir, 'interrupted.gguf');
    const child = spawn(process.execPath, [bin, 'quantize', big, out, '--type', 'q4_k_m', '--progress', '--threads', '1']);
    let err = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        err += String(d);
        if (/tensors/.test(err)) child.kill('SIGINT'); // after the first tensor is written
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(err).toMatch(/1\/39 tensors/);
    expect(code).toBe(130);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it.skipIf(!built || !fs.existsSync(path.join(root, 'dist', 'bench', 'main.js')))('bench: runs dist/bench/main.js with the arguments given', () => {
    // The benchmark's own --help, and an argument it rejects: the arguments reach it, and nothing is measured.
    const help = spawnSync(process.execPath, [bin, 'bench', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/usage: qkernels bench/);
    const bad = spawnSync(process.execPath, [bin, 'bench', '--no-such-flag'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/no-such-flag/);
  });
});

describe('qkernels serve', () => {
  it('refuses bad usage', async () => {
    expect((await run('serve')).code).toBe(2);
    expect((await run('serve', GOLDEN, '--port', '70000')).err).toMatch(/--port must be in/);
    expect((await run('serve', GOLDEN, '--bogus')).err).toMatch(/unknown option --bogus/);
  });

  it('serves on the port it prints, and exits 0 on SIGTERM', async () => {
    const bin = path.join(root, 'dist', 'lib', 'cli.js');
    const child = spawn(process.execPath, [bin, 'serve', GOLDEN, '--port', '0', '--parallel', '2', '--threads', '1']);
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += String(d);
        const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
        if (m) resolve(m[1]);
      });
      child.on('exit', () => reject(new Error(`serve exited: ${err}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    try {
      const res = await fetch(url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Hello', max_tokens: 4, temperature: 0 }) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(4);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(err).toMatch(/SIGTERM: finishing 0 requests/);
  });
});

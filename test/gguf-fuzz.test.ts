// Fuzzing openGguf with a fixed seed: thousands of mutated and truncated GGUF
// files (bit flips, forged counts and lengths, offsets past the end,
// overlapping tensors, unknown types, splices), each opened, inspected and
// read. Every one must end in a QkError or in a read that is right (every
// tensor inside the file, aligned, not overlapping, its bytes the file's),
// with no crash, no hang and no large allocation.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { backend, dequantize, openGguf, QkError, writeGguf, type GgufFile } from '../lib/index';
import { inspectJson, inspectText } from '../lib/gguf/inspect';
import { ggmlType } from '../lib/gguf/types';
import { everyValue, rng, tempDir } from './fixtures/gguf/model';

const ITERATIONS = Number(process.env.QKERNELS_FUZZ_ITERATIONS ?? 4000);
const SEED = 0x6a09e667;
const fixtures = path.join(__dirname, 'fixtures', 'gguf');
const tmp = tempDir('qk-gguf-fuzz-');
afterAll(tmp.cleanup);

/** Where the fields of a valid file are, so mutations can aim at counts, lengths, types and offsets. */
interface Field {
  at: number;
  width: 4 | 8;
  kind: 'count' | 'length' | 'type' | 'dims' | 'dim' | 'offset' | 'ggml' | 'value';
}

function fieldsOf(b: Buffer): Field[] {
  const f: Field[] = [];
  let p = 0;
  const u32 = (kind: Field['kind']) => (f.push({ at: p, width: 4, kind }), (p += 4), b.readUInt32LE(p - 4));
  const u64 = (kind: Field['kind']) => (f.push({ at: p, width: 8, kind }), (p += 8), Number(b.readBigUInt64LE(p - 8)));
  const str = () => {
    const n = u64('length'); // read before p is updated: `p += u64()` would lose the increment
    p += n;
  };
  const SIZES = [1, 1, 2, 2, 4, 4, 4, 1, -1, -1, 8, 8, 8];
  const value = (t: number): void => {
    if (t === 8) return void str();
    if (t === 9) {
      const it = u32('type');
      const n = u64('count');
      for (let i = 0; i < n; i++) value(it);
      return;
    }
    if (SIZES[t] >= 4) f.push({ at: p, width: SIZES[t] as 4 | 8, kind: 'value' });
    p += SIZES[t];
  };
  p = 8;
  const nt = u64('count');
  const nkv = u64('count');
  for (let i = 0; i < nkv; i++) {
    str();
    value(u32('type'));
  }
  for (let i = 0; i < nt; i++) {
    str();
    const nd = u32('dims');
    for (let d = 0; d < nd; d++) u64('dim');
    u32('ggml');
    u64('offset');
  }
  return f;
}

async function bases(): Promise<{ name: string; bytes: Buffer; readAll: boolean }[]> {
  const p = path.join(tmp.dir, 'base.gguf');
  await writeGguf(p, {
    metadata: everyValue(),
    tensors: [
      { name: 'q4', type: 'q4_0', shape: [64, 2], data: new Uint8Array(72).fill(0x11) },
      { name: 'norm', type: 'f32', shape: [8], data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer) },
      { name: 'iq', ggmlType: 20, shape: [32, 1], data: new Uint8Array(18).fill(2) },
      { name: 'q8', type: 'q8_0', shape: [32, 3], data: new Uint8Array(102).fill(0x3c) },
      { name: 'h', type: 'f16', shape: [4, 2], data: new Uint8Array(16).fill(0x3c) },
      { name: 'k', type: 'q4_k', shape: [256, 1], data: new Uint8Array(144).fill(0x21) },
      { name: 'e', type: 'bf16', shape: [0, 3], data: new Uint8Array(0) },
    ],
  });
  const golden = fs.readFileSync(path.join(fixtures, 'golden-q4_k_s.gguf'));
  return [
    { name: 'tv10', bytes: fs.readFileSync(path.join(fixtures, 'tv10.gguf')), readAll: true },
    { name: 'every-type', bytes: fs.readFileSync(p), readAll: true },
    // A real llama.cpp file: mutations aim at its 14 KB of metadata and tensor infos.
    { name: 'llama.cpp', bytes: golden, readAll: false },
  ];
}

const SPECIAL = [0n, 1n, 2n, 31n, 32n, 33n, 255n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 2n ** 32n, 2n ** 53n, 2n ** 62n, 2n ** 63n, 2n ** 64n - 1n];

function mutate(src: Buffer, fields: Field[], r: () => number): { bytes: Buffer; what: string } {
  let b = Buffer.from(src);
  const int = (n: number) => Math.floor(r() * n);
  const headerEnd = Math.min(b.length, fields.length ? fields[fields.length - 1].at + 16 : b.length);
  const whats: string[] = [];
  const rounds = 1 + int(3);
  for (let k = 0; k < rounds; k++) {
    const m = int(10);
    if (m <= 1 && b.length > 0) {
      // bit flips, mostly in the header where they matter
      const n = 1 + int(4);
      for (let i = 0; i < n; i++) {
        const at = int(r() < 0.85 ? headerEnd : b.length);
        b[at] ^= 1 << int(8);
      }
      whats.push(`flip${n}`);
    } else if (m <= 4 && fields.length > 0) {
      // a count, length, dimension, type id or offset set to something hostile
      const f = fields[int(fields.length)];
      if (f.at + f.width > b.length) continue;
      const old = f.width === 8 ? b.readBigUInt64LE(f.at) : BigInt(b.readUInt32LE(f.at));
      const choices = [...SPECIAL, old + 1n, old - 1n, old * 2n, old + 32n, BigInt(b.length), BigInt(b.length) + 1n, BigInt(int(64))];
      let v = choices[int(choices.length)];
      v = BigInt.asUintN(f.width * 8, v);
      if (f.width === 8) b.writeBigUInt64LE(v, f.at);
      else b.writeUInt32LE(Number(v), f.at);
      whats.push(`${f.kind}@${f.at}=${v}`);
    } else if (m === 5 && fields.length > 0) {
      // one tensor's offset copied onto another's: overlap
      const offs = fields.filter((f) => f.kind === 'offset' && f.at + 8 <= b.length);
      if (offs.length >= 2) {
        const a = offs[int(offs.length)], c = offs[int(offs.length)];
        b.writeBigUInt64LE(b.readBigUInt64LE(a.at), c.at);
        whats.push('overlap');
      }
    } else if (m === 6) {
      const n = int(b.length + 1);
      b = b.subarray(0, n);
      whats.push(`truncate${n}`);
    } else if (m === 7) {
      const at = int(headerEnd + 1), len = int(24);
      b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + len))]);
      whats.push(`delete${len}@${at}`);
    } else if (m === 8) {
      const at = int(headerEnd + 1), from = int(b.length), len = int(24);
      b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + len), b.subarray(at)]);
      whats.push(`insert${len}@${at}`);
    } else {
      const fill = int(256);
      const at = int(headerEnd), len = 1 + int(16);
      b.fill(fill, at, Math.min(b.length, at + len));
      whats.push(`fill${len}@${at}`);
    }
  }
  return { bytes: b, what: whats.join(',') };
}

/** Everything a user could do with an opened file, checked against the file's own bytes. */
function exercise(f: GgufFile, bytes: Buffer, readAll: boolean): void {
  expect(f.fileSize).toBe(bytes.length);
  JSON.stringify(inspectJson(f), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  inspectText(f);
  const spans: [number, number, string][] = [];
  for (const t of f.tensors) {
    const g = ggmlType(t.ggmlType)!;
    expect(g).toBeDefined();
    expect(t.offset).toBeGreaterThanOrEqual(f.dataOffset);
    expect((t.offset - f.dataOffset) % f.alignment).toBe(0);
    expect(t.offset + t.bytes).toBeLessThanOrEqual(bytes.length);
    expect(t.bytes).toBe((t.elements / g.blockSize) * g.blockBytes);
    if (t.bytes > 0) spans.push([t.offset, t.offset + t.bytes, t.name]);
    if (!readAll && t.bytes > 4096) {
      // Large tensors of the llama.cpp file: the first and last bytes are enough to show the view is right.
      const d = t.data;
      expect(d.length).toBe(t.bytes);
      expect([d[0], d[d.length - 1]]).toEqual([bytes[t.offset], bytes[t.offset + t.bytes - 1]]);
      continue;
    }
    expect(Buffer.compare(t.data, bytes.subarray(t.offset, t.offset + t.bytes))).toBe(0);
    const m = t.matrix;
    if (m) {
      expect(m.rows * m.cols).toBe(t.elements);
      try {
        dequantize(m);
      } catch (e) {
        if (!(e instanceof QkError)) throw e;
      }
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
}

describe('openGguf under fuzzing', () => {
  it(`${ITERATIONS} mutated files: a QkError or a correct read, never a crash, hang or large allocation`, async () => {
    const r = rng(SEED);
    const files = await bases();
    const fields = files.map((f) => fieldsOf(f.bytes));
    const modes = backend().name === 'native' ? [true, false] : [false];
    const p = path.join(tmp.dir, 'fuzz.gguf');
    const outcomes = new Map<string, number>();
    const memBefore = process.memoryUsage();
    let maxRss = memBefore.rss, slowest = 0, opened = 0, worstAlloc = 0;
    const started = Date.now();
    for (let i = 0; i < ITERATIONS; i++) {
      const k = i % 10 === 9 ? 2 : i % 2; // the llama.cpp file gets a tenth of the runs
      const { bytes, what } = mutate(files[k].bytes, fields[k], r);
      fs.writeFileSync(p, bytes);
      for (const mmap of modes) {
        const t0 = performance.now();
        const ab0 = process.memoryUsage().arrayBuffers;
        let f: GgufFile | null = null;
        try {
          f = openGguf(p, { mmap });
          exercise(f, bytes, files[k].readAll);
          opened++;
          outcomes.set('read', (outcomes.get('read') ?? 0) + 1);
        } catch (e) {
          if (!(e instanceof QkError)) {
            throw new Error(`case ${i} (${files[k].name}: ${what}, ${mmap ? 'mmap' : 'read'}) threw ${(e as Error).stack}`);
          }
          outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
        } finally {
          // What one open and full read allocated, beyond the file's own size.
          worstAlloc = Math.max(worstAlloc, process.memoryUsage().arrayBuffers - ab0 - bytes.length);
          f?.close();
        }
        slowest = Math.max(slowest, performance.now() - t0);
      }
      if (i % 64 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`gguf fuzz: ${ITERATIONS} files x ${modes.length} modes in ${seconds.toFixed(1)} s; outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; ` +
      `slowest open ${slowest.toFixed(1)} ms; rss +${((maxRss - memBefore.rss) / 2 ** 20).toFixed(0)} MiB; largest allocation of one open beyond the file size ${(worstAlloc / 2 ** 10).toFixed(0)} KiB`);
    // Both outcomes must actually happen, or the mutations are too timid or too brutal.
    expect(opened).toBeGreaterThan(ITERATIONS / 20);
    expect(outcomes.get('ERR_QK_LENGTH') ?? 0).toBeGreaterThan(ITERATIONS / 20);
    expect(outcomes.get('ERR_QK_VALUE') ?? 0).toBeGreaterThan(ITERATIONS / 50);
    expect(outcomes.get('ERR_QK_TYPE') ?? 0).toBeGreaterThan(ITERATIONS / 200);
    expect(slowest).toBeLessThan(2000);
    expect(maxRss - memBefore.rss).toBeLessThan(256 * 2 ** 20);
    // Forged counts and lengths must not make an open allocate more than its file could justify.
    expect(worstAlloc).toBeLessThan(4 * 2 ** 20);
  });
});

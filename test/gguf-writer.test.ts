// writeGguf: byte-exact against TV-10, every metadata type round trips,
// tensor data is fetched one tensor at a time, and a failed write leaves
// neither a partial file nor a damaged old one.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { openGguf, QkError, quantize, writeGguf, type GgufTensorInput } from '../lib/index';
import { bytesOf, everyValue, randomF32, tempDir } from './fixtures/gguf/model';

const TV10 = path.join(__dirname, 'fixtures', 'gguf', 'tv10.gguf');
const tmp = tempDir();
afterAll(tmp.cleanup);
let n = 0;
const out = (name = `w${n++}.gguf`) => path.join(tmp.dir, name);

describe('writeGguf', () => {
  it('writes TV-10 byte for byte from its metadata and tensors', async () => {
    const tv = openGguf(TV10, { mmap: false });
    const p = out();
    const r = await writeGguf(p, { metadata: tv.typedMetadata, tensors: tv.tensors });
    expect(r).toEqual({ path: p, bytes: 416, tensors: 2, staleRemoved: [] });
    expect(Buffer.compare(fs.readFileSync(p), fs.readFileSync(TV10))).toBe(0);
    tv.close();
  });

  it('writes TV-10 from plain values and a QuantizedMatrix', async () => {
    const tv = openGguf(TV10);
    const w = tv.tensor('w')!.matrix!;
    const p = out();
    await writeGguf(p, {
      metadata: {
        'general.architecture': 'llama',
        'general.alignment': 32,
        'general.quantization_version': 2,
        'test.ints': [1, -2, 3],
        'test.flag': true,
      },
      tensors: [
        { name: 'w', matrix: { type: w.type, rows: w.rows, cols: w.cols, data: w.data.slice() } },
        { name: 'norm', type: 'f32', shape: [4], data: bytesOf(new Float32Array([1, 0.5, -2, 3.25])) },
      ],
    });
    expect(Buffer.compare(fs.readFileSync(p), fs.readFileSync(TV10))).toBe(0);
    tv.close();
  });

  it('round-trips every metadata type, 64-bit values past 2^53 and nested arrays', async () => {
    const meta = everyValue();
    const p = out();
    await writeGguf(p, { metadata: meta });
    const f = openGguf(p);
    expect(Object.keys(f.typedMetadata)).toEqual(Object.keys(meta));
    expect(f.typedMetadata).toEqual(meta);
    expect(f.metadata['t.u64']).toBe(18446744073709551615n);
    expect(f.metadata['t.u64small']).toBe(42);
    expect(f.metadata['t.i64']).toBe(-9223372036854775808n);
    expect(f.metadata['t.i64small']).toBe(-7);
    expect(f.metadata['t.str']).toBe('héllo ☃ 𝄞 "quoted"\n');
    expect(f.metadata['t.a.nested']).toEqual([Int32Array.from([1, 2]), ['x'], [[true]]]);
    // Written again from what was read: the same bytes.
    const q = out();
    await writeGguf(q, { metadata: f.typedMetadata, tensors: f.tensors });
    expect(Buffer.compare(fs.readFileSync(p), fs.readFileSync(q))).toBe(0);
    f.close();
  });

  it('treats keys such as __proto__ as plain keys', async () => {
    const meta = new Map<string, unknown>([['__proto__', 'x'], ['constructor', 1], ['toString', true]]);
    const p = out();
    await writeGguf(p, { metadata: meta as Map<string, never> });
    const f = openGguf(p);
    expect(Object.keys(f.metadata)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(f.metadata['__proto__']).toBe('x');
    const q = out();
    await writeGguf(q, { metadata: f.typedMetadata });
    expect(Buffer.compare(fs.readFileSync(p), fs.readFileSync(q))).toBe(0);
    f.close();
  });

  it('writes metadata of many megabytes (a 150k-token vocabulary)', async () => {
    const tokens = Array.from({ length: 150_000 }, (_, i) => `token-${i}-${'x'.repeat(i % 23)}`);
    const scores = Float32Array.from(tokens, (_, i) => -i);
    const p = out();
    await writeGguf(p, { metadata: { 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.scores': scores, 'after': 'end' }, tensors: [{ name: 'x', type: 'f32', shape: [2], data: new Uint8Array(8) }] });
    const f = openGguf(p);
    expect(f.metadata['tokenizer.ggml.tokens']).toEqual(tokens);
    expect(f.metadata['tokenizer.ggml.scores']).toEqual(scores);
    expect(f.metadata['after']).toBe('end');
    expect(f.dataOffset).toBeGreaterThan(2_000_000);
    f.close();
  });

  it('infers GGUF types for plain values the way llama.cpp files use them', async () => {
    const p = out();
    await writeGguf(p, {
      metadata: new Map<string, unknown>([
        ['u', 7], ['neg', -7], ['big', 2 ** 40], ['bigneg', -(2 ** 40)], ['f', 0.5], ['s', 's'], ['b', true],
        ['bi', 5n], ['bineg', -5n], ['ints', [1, 2]], ['floats', [0.5, 1]], ['strs', ['a']], ['bools', [false]],
        ['nested', [[1], ['x']]], ['typed', new Uint16Array([3])], ['bigs', [1n, 2n ** 64n - 1n]],
      ]) as Map<string, never>,
    });
    const f = openGguf(p);
    const types = Object.fromEntries(Object.entries(f.typedMetadata).map(([k, v]) => [k, v.type === 'array' ? `array<${v.itemType}>` : v.type]));
    expect(types).toEqual({
      u: 'uint32', neg: 'int32', big: 'uint64', bigneg: 'int64', f: 'float32', s: 'string', b: 'bool', bi: 'uint64',
      bineg: 'int64', ints: 'array<int32>', floats: 'array<float32>', strs: 'array<string>', bools: 'array<bool>',
      nested: 'array<array>', typed: 'array<uint16>', bigs: 'array<uint64>',
    });
    f.close();
  });

  it('asks for each tensor only when it gets there, in order, one ahead of the disk at most', async () => {
    const calls: string[] = [];
    const doneAtCall: number[] = [];
    let done = 0;
    const tensors: GgufTensorInput[] = ['a', 'b', 'c', 'd'].map((name, i) => ({
      name,
      type: 'q8_0',
      shape: [64, 8],
      data: async () => {
        calls.push(name);
        doneAtCall.push(done);
        return quantize(randomF32(512, i + 1), 8, 64, 'q8_0').data;
      },
    }));
    const p = out();
    const r = await writeGguf(p, { metadata: { 'general.architecture': 'llama' }, tensors, onProgress: (e) => (done = e.tensorsDone) });
    expect(calls).toEqual(['a', 'b', 'c', 'd']);
    // Tensor k is produced while tensor k - 1 is being written: never more than two in memory.
    expect(doneAtCall).toEqual([0, 0, 1, 2]);
    expect(done).toBe(4);
    const f = openGguf(p);
    expect(f.fileSize).toBe(r.bytes);
    for (let i = 0; i < 4; i++) {
      expect(Buffer.compare(f.tensors[i].data, quantize(randomF32(512, i + 1), 8, 64, 'q8_0').data)).toBe(0);
      expect(f.tensors[i].offset % 32).toBe(0);
    }
    f.close();
  });

  it('pads the data section to the alignment, and records a non-default one', async () => {
    const p = out();
    await writeGguf(p, { alignment: 64, tensors: [{ name: 'x', type: 'f32', shape: [3], data: new Uint8Array(12) }, { name: 'y', type: 'f16', shape: [1], data: new Uint8Array(2) }] });
    const f = openGguf(p);
    expect(f.alignment).toBe(64);
    expect(f.typedMetadata['general.alignment']).toEqual({ type: 'uint32', value: 64 });
    expect(f.tensors.map((t) => t.offset - f.dataOffset)).toEqual([0, 64]);
    expect(f.fileSize).toBe(f.dataOffset + 128); // the last tensor is padded too
    f.close();
  });

  it('copies tensors of types qkernels cannot compute with, by ggml type id', async () => {
    const src = out();
    await writeGguf(src, { tensors: [{ name: 'iq', ggmlType: 20, shape: [32, 1], data: new Uint8Array(18).fill(3) }] });
    const f = openGguf(src);
    const dst = out();
    await writeGguf(dst, { metadata: f.typedMetadata, tensors: f.tensors });
    const g = openGguf(dst);
    expect(g.tensors[0]).toMatchObject({ typeName: 'iq4_nl', type: null, bytes: 18 });
    expect(Array.from(g.tensors[0].data)).toEqual(new Array(18).fill(3));
    f.close();
    g.close();
  });

  it('leaves no file and no temporary behind when a tensor fails, and keeps an older file intact', async () => {
    const p = out('keep.gguf');
    fs.writeFileSync(p, 'old contents');
    const failing = writeGguf(p, {
      tensors: [
        { name: 'ok', type: 'f32', shape: [4], data: new Uint8Array(16) },
        { name: 'bad', type: 'f32', shape: [4], data: () => { throw new Error('disk on fire'); } },
      ],
    });
    await expect(failing).rejects.toThrow(/tensor 'bad': its data function failed: disk on fire/);
    expect(fs.readFileSync(p, 'utf8')).toBe('old contents');
    expect(fs.readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await expect(writeGguf(p, { tensors: [{ name: 'short', type: 'q4_0', shape: [32, 2], data: new Uint8Array(35) }] })).rejects.toThrow(/needs exactly 36 bytes; its data has 35/);
    expect(fs.readFileSync(p, 'utf8')).toBe('old contents');
    await expect(writeGguf(path.join(tmp.dir, 'no', 'such', 'dir.gguf'), {})).rejects.toThrow(QkError);
    expect(fs.readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects bad input with a QkError before writing anything', async () => {
    const bad: [string, Parameters<typeof writeGguf>[1], RegExp][] = [
      ['a long name', { tensors: [{ name: 'x'.repeat(64), type: 'f32', shape: [1], data: new Uint8Array(4) }] }, /longer than 63 bytes/],
      ['a repeated name', { tensors: [{ name: 'a', type: 'f32', shape: [1] }, { name: 'a', type: 'f32', shape: [1] }] }, /used twice/],
      ['no type', { tensors: [{ name: 'a', shape: [1] }] }, /type must be/],
      ['a bad ggml id', { tensors: [{ name: 'a', ggmlType: 4, shape: [1] }] }, /ggmlType 4 is not a ggml type id/],
      ['a partial block', { tensors: [{ name: 'a', type: 'q4_k', shape: [128, 2] }] }, /multiple of 256/],
      ['5 dimensions', { tensors: [{ name: 'a', type: 'f32', shape: [1, 1, 1, 1, 1] }] }, /at most 4/],
      ['a negative dimension', { tensors: [{ name: 'a', type: 'f32', shape: [-1] }] }, /integers >= 0/],
      ['no shape', { tensors: [{ name: 'a', type: 'f32' }] }, /needs a shape/],
      ['a uint8 of 256', { metadata: { k: { type: 'uint8', value: 256 } } }, /uint8 value must be an integer in \[0, 255\]/],
      ['a uint64 below 0', { metadata: { k: { type: 'uint64', value: -1n } } }, /uint64 value must be an integer/],
      ['a mixed array', { metadata: { k: [1, 'a'] } }, /items of one kind/],
      ['a null', { metadata: { k: null as never } }, /null is not a GGUF value/],
      ['an unknown type', { metadata: { k: { type: 'uint128', value: 1 } as never } }, /unknown GGUF type 'uint128'/],
      ['alignment 3', { alignment: 3 }, /power of two/],
      ['an int32 general.alignment', { metadata: { 'general.alignment': { type: 'int32', value: 32 } } }, /must be a uint32/],
      ['a disagreeing alignment', { alignment: 64, metadata: { 'general.alignment': { type: 'uint32', value: 32 } } }, /disagrees/],
    ];
    for (const [what, opts, msg] of bad) {
      const p = out();
      await expect(writeGguf(p, opts), what).rejects.toThrow(msg);
      await expect(writeGguf(p, opts), what).rejects.toBeInstanceOf(QkError);
      expect(fs.existsSync(p), what).toBe(false);
    }
  });
});

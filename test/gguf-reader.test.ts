// openGguf: the TV-10 test vector, a file llama.cpp wrote, both ways of
// getting at the bytes (mapped and read), files past 4 GiB, and a named,
// located QkError for each way a header can be wrong.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { backend, dequantize, openGguf, QkError } from '../lib/index';
import { GgufError } from '../lib/gguf/errors';
import { Raw, rawFile, kvStr, kvU32, type RawFile } from './fixtures/gguf/raw';
import { tempDir } from './fixtures/gguf/model';

const fixtures = path.join(__dirname, 'fixtures', 'gguf');
const TV10 = path.join(fixtures, 'tv10.gguf');
const GOLDEN = path.join(fixtures, 'golden-q4_k_s.gguf');
const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'golden', 'manifest.json'), 'utf8'));
const native = backend().name === 'native';
const modes: ('mmap' | 'read')[] = native ? ['mmap', 'read'] : ['read'];

const tmp = tempDir();
afterAll(tmp.cleanup);
let n = 0;
function fileWith(bytes: Uint8Array): string {
  const p = path.join(tmp.dir, `f${n++}.gguf`);
  fs.writeFileSync(p, bytes);
  return p;
}

describe.each(modes)('openGguf (%s)', (mode) => {
  const open = (p: string) => openGguf(p, { mmap: mode === 'mmap' });

  it('reads TV-10 as ggml does', () => {
    const f = open(TV10);
    expect(f.mode).toBe(mode);
    expect([f.version, f.alignment, f.dataOffset, f.fileSize]).toEqual([3, 32, 320, 416]);
    expect(f.metadata['general.architecture']).toBe('llama');
    expect(f.metadata['general.alignment']).toBe(32);
    expect(f.metadata['general.quantization_version']).toBe(2);
    expect(Array.from(f.metadata['test.ints'] as Int32Array)).toEqual([1, -2, 3]);
    expect(f.metadata['test.flag']).toBe(true);
    expect(f.typedMetadata['test.ints']).toMatchObject({ type: 'array', itemType: 'int32' });
    expect(f.typedMetadata['general.alignment'].type).toBe('uint32');
    const [w, norm] = f.tensors;
    expect([w.name, w.typeName, w.type, w.shape, w.offset, w.bytes, w.rows, w.cols]).toEqual(['w', 'q4_0', 'q4_0', [32, 2], 320, 36, 2, 32]);
    expect([norm.name, norm.typeName, norm.shape, norm.offset, norm.bytes]).toEqual(['norm', 'f32', [4], 384, 16]);
    expect(Buffer.from(w.data).toString('hex').slice(0, 8)).toBe('00388091');
    expect(Array.from(dequantize(norm.matrix!))).toEqual([1, 0.5, -2, 3.25]);
    expect(w.matrix).toMatchObject({ type: 'q4_0', rows: 2, cols: 32 });
    expect(f.tensor('norm')).toBe(norm);
    f.close();
  });

  it('reads a file llama-quantize wrote: its types and every tensor byte match the manifest', () => {
    const f = open(GOLDEN);
    const want = manifest.files['golden-q4_k_s'].tensors as Record<string, { type: string; sha256: string }>;
    expect(f.metadata['general.file_type']).toBe(14);
    expect(f.metadata['llama.block_count']).toBe(2);
    expect((f.metadata['tokenizer.ggml.tokens'] as string[]).length).toBe(512);
    expect((f.metadata['tokenizer.ggml.tokens'] as string[])[1]).toBe('<s>');
    expect(f.metadata['tokenizer.ggml.scores']).toBeInstanceOf(Float32Array);
    expect(f.metadata['llama.attention.layer_norm_rms_epsilon']).toBe(Math.fround(1e-5));
    let checked = 0;
    for (const t of f.tensors) {
      if (t.shape.length === 1) {
        expect(t.type).toBe('f32');
        continue;
      }
      expect(t.type, t.name).toBe(want[t.name].type);
      expect(createHash('sha256').update(t.data).digest('hex'), t.name).toBe(want[t.name].sha256);
      const m = t.matrix!;
      expect([m.rows, m.cols]).toEqual([t.shape[1], t.shape[0]]);
      checked++;
    }
    expect(checked).toBe(Object.keys(want).length);
    f.close();
  });

  it('lists tensors of types qkernels cannot compute with, without a matrix', () => {
    const data = new Uint8Array(18 * 2 + 14 + 84).fill(7);
    const p = fileWith(rawFile({
      kv: [kvStr('general.architecture', 'llama')],
      tensors: [
        { name: 'iq4', dims: [32, 2], type: 20, offset: 0 },
        { name: 'q2k', dims: [256], type: 10, offset: 64 },
        { name: 'i8', dims: [3], type: 24, offset: 160 },
      ],
      data: new Uint8Array(192).fill(7),
    }));
    void data;
    const f = open(p);
    expect(f.tensors.map((t) => [t.typeName, t.ggmlType, t.type, t.bytes, t.matrix])).toEqual([
      ['iq4_nl', 20, null, 36, null],
      ['q2_K', 10, null, 84, null],
      ['i8', 24, null, 3, null],
    ]);
    expect(f.tensors[1].data.length).toBe(84);
    f.close();
  });

  it('close() ends every view', () => {
    const f = open(GOLDEN);
    const t = f.tensors[0];
    const view = t.data;
    expect(view.length).toBe(t.bytes);
    f.close();
    f.close();
    if (mode === 'mmap') expect(view.length).toBe(0); // detached, never dangling
    expect(() => f.tensors[1].data).toThrow(QkError);
    expect(() => f.tensors[1].matrix).toThrow(/closed/);
  });

  it('accepts version 2, no tensors, no metadata, and tensors of zero elements', () => {
    const p = fileWith(rawFile({ version: 2, tensors: [{ name: 'empty', dims: [0, 4], type: 8, offset: 0 }], data: new Uint8Array(0) }));
    const f = open(p);
    expect(f.version).toBe(2);
    expect(f.tensors[0]).toMatchObject({ bytes: 0, elements: 0, matrix: null });
    expect(f.tensors[0].data.length).toBe(0);
    f.close();
    const g = open(fileWith(rawFile({})));
    expect([g.tensors.length, Object.keys(g.metadata).length]).toEqual([0, 0]);
    g.close();
  });

  it('honours general.alignment and tensors stored out of order', () => {
    const data = new Uint8Array(256);
    data.set([1, 2, 3, 4], 0);
    data.set([5, 6, 7, 8], 128);
    const p = fileWith(rawFile({
      kv: [kvU32('general.alignment', 128)],
      tensors: [
        { name: 'b', dims: [1], type: 0, offset: 128 },
        { name: 'a', dims: [1], type: 0, offset: 0 },
      ],
      align: 128,
      data,
    }));
    const f = open(p);
    expect(f.alignment).toBe(128);
    expect(f.dataOffset % 128).toBe(0);
    expect(Array.from(f.tensor('b')!.data)).toEqual([5, 6, 7, 8]);
    expect(Array.from(f.tensor('a')!.data)).toEqual([1, 2, 3, 4]);
    f.close();
  });

  it('reads a sparse 6 GiB file: offsets and sizes past 2^31 and 2^32', () => {
    const GiB = 2 ** 30;
    const header = rawFile({
      kv: [kvStr('general.architecture', 'llama')],
      tensors: [
        { name: 'big', dims: [2 ** 28, 3], type: 0, offset: 0 },
        { name: 'huge', dims: [4.5 * GiB], type: 24, offset: 3 * GiB },
        { name: 'tail', dims: [4], type: 0, offset: 7.5 * GiB },
      ],
    });
    const p = path.join(tmp.dir, 'sparse.gguf');
    const fd = fs.openSync(p, 'w');
    fs.writeSync(fd, header, 0, header.length, 0);
    const tail = Buffer.from(new Float32Array([1, -2, 3.5, 4]).buffer);
    fs.writeSync(fd, tail, 0, 16, header.length + 7.5 * GiB);
    fs.writeSync(fd, Buffer.from([9]), 0, 1, header.length + 3 * GiB - 1);
    fs.closeSync(fd);
    const f = open(p);
    expect(f.fileSize).toBe(header.length + 7.5 * GiB + 16);
    const t = f.tensor('tail')!;
    expect(t.offset).toBe(header.length + 7.5 * GiB);
    expect(Array.from(new Float32Array(t.data.slice().buffer))).toEqual([1, -2, 3.5, 4]);
    expect(Array.from(dequantize(t.matrix!))).toEqual([1, -2, 3.5, 4]);
    const b = f.tensor('big')!;
    expect([b.bytes, b.rows, b.cols]).toEqual([3 * GiB, 3, 2 ** 28]);
    if (mode === 'mmap') {
      // A 3 GiB view costs nothing until read.
      expect(b.data.length).toBe(3 * GiB);
      expect(b.data[3 * GiB - 1]).toBe(9);
      expect(b.matrix!.data.length).toBe(3 * GiB);
      // Past what one Uint8Array can hold on this runtime: a QkError, never a RangeError.
      let huge: Uint8Array | null = null;
      try {
        huge = f.tensor('huge')!.data;
      } catch (e) {
        expect(e).toBeInstanceOf(QkError);
        expect((e as Error).message).toMatch(/longer than the Uint8Array this JavaScript runtime can make/);
      }
      if (huge) expect(huge.length).toBe(4.5 * GiB);
    }
    f.close();
    fs.rmSync(p);
  });
});

const mapped = (p: string) => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith(p)).length;
const gc = (globalThis as { gc?: () => void }).gc;

describe.skipIf(!native || !gc || !fs.existsSync('/proc/self/maps'))('the mapping', () => {
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      gc!();
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('lives while any view does, and goes when the last is collected', async () => {
    const p = path.join(tmp.dir, 'gc.gguf');
    fs.copyFileSync(GOLDEN, p);
    let f: ReturnType<typeof openGguf> | null = openGguf(p);
    let m: { data: Uint8Array } | null = f.tensor('output.weight')!.matrix;
    expect(mapped(p)).toBe(1);
    f = null;
    await settle();
    expect(mapped(p)).toBe(1); // the matrix still reads the file
    expect(m!.data.length).toBe(107520);
    m = null;
    await settle();
    expect(mapped(p)).toBe(0);
  });

  it('goes at once on close()', () => {
    const p = path.join(tmp.dir, 'close.gguf');
    fs.copyFileSync(GOLDEN, p);
    const f = openGguf(p);
    const views = f.tensors.map((t) => t.data);
    expect(mapped(p)).toBe(1);
    f.close();
    expect(mapped(p)).toBe(0);
    expect(views.every((v) => v.length === 0)).toBe(true);
  });
});

describe('openGguf: bad files end in a QkError that names the problem and its byte offset', () => {
  const ok = (): RawFile => ({
    kv: [kvStr('general.architecture', 'llama')],
    tensors: [{ name: 'w', dims: [32, 2], type: 2, offset: 0 }],
    data: new Uint8Array(36),
  });
  const arr = (depth: number) => (r: Raw) => {
    r.str('deep').u32(9);
    for (let i = 0; i < depth - 1; i++) r.u32(9).u64(1);
    r.u32(5).u64(0);
  };
  const cases: [string, Buffer, string, RegExp, number][] = [
    ['an empty file', Buffer.alloc(0), 'ERR_QK_LENGTH', /ends \(0 bytes\) inside the magic/, 0],
    ['a GGML file', rawFile({ ...ok(), magic: 0x67676d6c }), 'ERR_QK_VALUE', /not a GGUF file/, 0],
    ['version 1', rawFile({ ...ok(), version: 1 }), 'ERR_QK_VALUE', /version 1 .* obsolete/, 4],
    ['version 4', rawFile({ ...ok(), version: 4 }), 'ERR_QK_VALUE', /unsupported GGUF version 4/, 4],
    ['a byte-swapped version', rawFile({ ...ok(), version: 0x03000000 }), 'ERR_QK_VALUE', /big-endian/, 4],
    ['a header cut short', rawFile(ok()).subarray(0, 20), 'ERR_QK_LENGTH', /tensor count is 1, but the 4 bytes left in the file hold at most 0/, 8],
    ['a header cut shorter', rawFile(ok()).subarray(0, 14), 'ERR_QK_LENGTH', /ends \(14 bytes\) inside the tensor count, which needs 8 bytes here/, 8],
    ['a huge tensor count', rawFile({ ...ok(), nTensors: 2n ** 62n }), 'ERR_QK_LENGTH', /tensor count is 4611686018427387904/, 8],
    ['a tensor count of 2^64 - 1', rawFile({ ...ok(), nTensors: 2n ** 64n - 1n }), 'ERR_QK_LENGTH', /tensor count is 18446744073709551615/, 8],
    ['a huge metadata count', rawFile({ ...ok(), nKv: 1e12 }), 'ERR_QK_LENGTH', /metadata count is 1000000000000/, 16],
    ['a key longer than the file', rawFile({ ...ok(), kv: [(r) => void r.u64(1e9)] }), 'ERR_QK_LENGTH', /length of the key of metadata entry 0 is 1000000000/, 24],
    ['a string value longer than the file', rawFile({ ...ok(), kv: [(r) => void r.str('k').u32(8).u64(2n ** 63n)] }), 'ERR_QK_LENGTH', /length of the value of 'k'/, 37],
    ['an unknown value type', rawFile({ ...ok(), kv: [(r) => void r.str('k').u32(13).u32(0)] }), 'ERR_QK_TYPE', /value type of 'k' is 13/, 33],
    ['an array item count beyond the file', rawFile({ ...ok(), kv: [(r) => void r.str('k').u32(9).u32(4).u64(2n ** 40n)] }), 'ERR_QK_LENGTH', /item count of array 'k' is 1099511627776/, 41],
    ['a string array count beyond the file', rawFile({ ...ok(), kv: [(r) => void r.str('k').u32(9).u32(8).u64(1e15)] }), 'ERR_QK_LENGTH', /item count of array 'k'/, 41],
    ['arrays nested 17 deep', rawFile({ ...ok(), kv: [arr(17)] }), 'ERR_QK_VALUE', /nests arrays more than 16 deep/, -1],
    ['a bool stored as 2', rawFile({ ...ok(), kv: [(r) => void r.str('k').u32(7).u8(2)] }), 'ERR_QK_VALUE', /bool stored as 2/, 37],
    ['a duplicate key', rawFile({ ...ok(), kv: [kvU32('k', 1), kvU32('k', 2)] }), 'ERR_QK_VALUE', /'k' appears twice/, 41],
    ['an empty key', rawFile({ ...ok(), kv: [kvU32('', 1)] }), 'ERR_QK_VALUE', /empty key/, 24],
    ['alignment 48', rawFile({ ...ok(), kv: [kvU32('general.alignment', 48)] }), 'ERR_QK_VALUE', /general.alignment is 48; it must be a power of two/, 24],
    ['alignment 0', rawFile({ ...ok(), kv: [kvU32('general.alignment', 0)] }), 'ERR_QK_VALUE', /general.alignment is 0/, 24],
    ['alignment as an int32', rawFile({ ...ok(), kv: [(r) => void r.str('general.alignment').u32(5).i32(32)] }), 'ERR_QK_VALUE', /must be a uint32; it is a int32/, 24],
    ['a 64-byte tensor name', rawFile({ ...ok(), kv: [], tensors: [{ name: 'x'.repeat(64), dims: [32, 2], type: 2, offset: 0 }] }), 'ERR_QK_VALUE', /name is 64 bytes; ggml allows at most 63/, 24],
    ['a duplicate tensor name', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [32], type: 0, offset: 0 }, { name: 'w', dims: [32], type: 0, offset: 128 }], data: new Uint8Array(256) }), 'ERR_QK_VALUE', /tensor name 'w' appears twice/, 57],
    ['5 dimensions', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [1, 1, 1, 1, 1], type: 0, offset: 0 }] }), 'ERR_QK_VALUE', /'w' has 5 dimensions/, 33],
    ['a removed type id', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [32, 2], type: 4, offset: 0 }] }), 'ERR_QK_TYPE', /type id 4/, 53],
    ['an unknown type id', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [32, 2], type: 999, offset: 0 }] }), 'ERR_QK_TYPE', /type id 999/, 53],
    ['a row that is not whole blocks', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [33, 2], type: 2, offset: 0 }] }), 'ERR_QK_VALUE', /rows of 33 elements; q4_0 rows must be a multiple of 32/, 33],
    ['a dimension past 2^53', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [2n ** 60n], type: 0, offset: 0 }] }), 'ERR_QK_VALUE', /dimension 0 of 'w' is 1152921504606846976/, 37],
    ['more than 2^53 elements', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [2 ** 40, 2 ** 40], type: 0, offset: 0 }] }), 'ERR_QK_VALUE', /more elements than 2\^53/, 33],
    ['a misaligned offset', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [4], type: 0, offset: 16 }], data: new Uint8Array(64) }), 'ERR_QK_VALUE', /offset 16, not a multiple of the alignment 32/, 49],
    ['an offset of 2^64 - 1', rawFile({ ...ok(), kv: [], tensors: [{ name: 'w', dims: [4], type: 0, offset: 2n ** 64n - 1n }] }), 'ERR_QK_LENGTH', /data offset 18446744073709551615, past the end/, 49],
    ['a tensor past the end', rawFile({ ...ok(), data: new Uint8Array(35) }), 'ERR_QK_LENGTH', /tensor 'w' \(36 bytes at \d+\) ends at byte \d+, past the end/, -2],
    ['overlapping tensors', rawFile({ ...ok(), kv: [], tensors: [{ name: 'a', dims: [64], type: 0, offset: 0 }, { name: 'b', dims: [4], type: 0, offset: 224 }], data: new Uint8Array(256) }), 'ERR_QK_VALUE', /'a' \(data 0..256\) and 'b' \(data from 224\) overlap/, -2],
  ];

  it.each(cases)('%s', (_name, bytes, code, message, offset) => {
    const p = fileWith(bytes);
    for (const mode of modes) {
      let err: unknown;
      try {
        openGguf(p, { mmap: mode === 'mmap' }).close();
      } catch (e) {
        err = e;
      }
      expect(err, `${mode}: should throw`).toBeInstanceOf(QkError);
      const e = err as GgufError;
      expect(e.code).toBe(code);
      expect(e.message).toMatch(message);
      expect(e.message).toContain(p);
      if (offset >= 0) {
        expect(e.offset).toBe(offset);
        expect(e.message).toContain(`(at byte ${offset})`);
      } else if (offset === -2) {
        expect(e.offset).toBeGreaterThan(0);
      }
    }
  });

  it('reports a missing file, a directory and a bad path as QkError', () => {
    expect(() => openGguf(path.join(tmp.dir, 'nope.gguf'))).toThrow(/cannot open .*ENOENT/);
    expect(() => openGguf(tmp.dir)).toThrow(/not a regular file/);
    expect(() => openGguf('' as string)).toThrow(QkError);
    expect(() => openGguf(42 as unknown as string)).toThrow(QkError);
  });
});

describe('GgufTensor.readInto', () => {
  it('reads a read file\'s tensor into the given buffer, and gives a mapped file\'s view', () => {
    for (const mmap of [false, true]) {
      const f = openGguf(TV10, { mmap });
      try {
        for (const t of f.tensors) {
          const into = new Uint8Array(t.bytes + 100).fill(0xee);
          const got = t.readInto(into);
          expect(got.byteLength).toBe(t.bytes);
          expect(Buffer.from(got).equals(Buffer.from(t.data))).toBe(true);
          if (f.mode === 'read') {
            expect(got.buffer).toBe(into.buffer);
            expect(into[t.bytes]).toBe(0xee);
          } else {
            expect(into.every((b) => b === 0xee)).toBe(true);
          }
        }
        if (f.mode === 'read') expect(() => f.tensors[0].readInto(new Uint8Array(f.tensors[0].bytes - 1))).toThrow(QkError);
      } finally {
        f.close();
      }
    }
  });
});

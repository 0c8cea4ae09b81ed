// The safetensors reader: files written by the tests' own writer read back in
// both modes; hostile headers each refused with a QkError that says what is
// wrong; and seeded mutations of a valid file that must either parse to a
// consistent result or end in a QkError.
import * as fs from 'fs';
import * as path from 'path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { QkError } from '../lib/errors';
import { openSafetensors, parseSafetensorsHeader, SAFETENSORS_DTYPE_BYTES, type SafetensorsTensor } from '../lib/safetensors';
import { tempDir } from './fixtures/gguf/model';
import { f32Bytes, rawSafetensors, safetensorsBytes, safetensorsParts } from './fixtures/safetensors';

const tmp = tempDir('qk-safetensors-');
afterAll(tmp.cleanup);
// Mapping needs the native addon; without it (QKERNELS_BACKEND=js) the file is read.
const MAPPED_MODE = process.env.QKERNELS_BACKEND === 'js' ? 'read' : 'mmap';

let fileNo = 0;
function write(bytes: Uint8Array, name = `t${fileNo++}.safetensors`): string {
  const p = path.join(tmp.dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

const u8 = (...v: number[]) => new Uint8Array(v);
const i32Bytes = (v: number[]) => new Uint8Array(new Int32Array(v).buffer);

function sample(): Uint8Array {
  return safetensorsBytes(
    {
      embed: { dtype: 'F32', shape: [2, 3], data: f32Bytes([1, 2, 3, 4, 5, 6.5]) },
      scale: { dtype: 'F16', shape: [3], data: u8(0x00, 0x3c, 0x00, 0x40, 0x00, 0xc0) },
      empty: { dtype: 'I64', shape: [0, 4], data: u8() },
      flag: { dtype: 'BOOL', shape: [], data: u8(1) },
      ids: { dtype: 'I32', shape: [2], data: i32Bytes([-7, 1 << 30]) },
    },
    { format: 'pt', note: 'ünïcode ✓' },
  );
}

describe('openSafetensors reads back what was written', () => {
  for (const mmap of [true, false]) {
    it(`mmap: ${mmap}`, () => {
      const file = write(sample());
      const f = openSafetensors(file, { mmap });
      try {
        expect(f.path).toBe(file);
        expect(f.mode).toBe(mmap ? MAPPED_MODE : 'read');
        expect({ ...f.metadata }).toEqual({ format: 'pt', note: 'ünïcode ✓' });
        // File order; a zero-sized tensor sorts before the one starting where it does.
        expect([...f.tensors.keys()]).toEqual(['embed', 'scale', 'empty', 'flag', 'ids']);
        const headerLen = Number(fs.readFileSync(file).readBigUInt64LE(0));
        expect(headerLen % 8).toBe(0);
        const embed = f.tensors.get('embed')!;
        expect(embed).toEqual({ name: 'embed', dtype: 'F32', shape: [2, 3], offset: 8 + headerLen, byteLength: 24 });
        expect([...new Float32Array(f.data(embed).slice().buffer)]).toEqual([1, 2, 3, 4, 5, 6.5]);
        expect([...f.data('scale')]).toEqual([0x00, 0x3c, 0x00, 0x40, 0x00, 0xc0]);
        expect(f.tensors.get('scale')).toMatchObject({ dtype: 'F16', shape: [3], offset: 8 + headerLen + 24, byteLength: 6 });
        expect(f.tensors.get('empty')).toMatchObject({ dtype: 'I64', shape: [0, 4], byteLength: 0 });
        expect(f.data('empty').length).toBe(0);
        expect(f.tensors.get('flag')).toMatchObject({ dtype: 'BOOL', shape: [], byteLength: 1 });
        expect([...f.data('flag')]).toEqual([1]);
        expect([...new Int32Array(f.data('ids').slice().buffer)]).toEqual([-7, 1 << 30]);
        // The bytes are the file's.
        const disk = fs.readFileSync(file);
        for (const t of f.tensors.values()) expect(Buffer.from(f.data(t)).equals(disk.subarray(t.offset, t.offset + t.byteLength))).toBe(true);
        if (!mmap) {
          const a = f.data('ids');
          a[0] ^= 0xff;
          expect(f.data('ids')[0]).toBe(disk[f.tensors.get('ids')!.offset]); // a fresh copy each time
        }
        expect(Object.isFrozen(embed) && Object.isFrozen(embed.shape)).toBe(true);
      } finally {
        f.close();
      }
      f.close(); // idempotent
      expect(() => f.data('embed')).toThrow(QkError);
      expect(() => f.data('embed')).toThrow(/closed; tensor 'embed'/);
    });
  }

  it('mmap is the default; an unknown name or a forged tensor is a QkError', () => {
    const f = openSafetensors(write(sample()));
    try {
      expect(f.mode).toBe(MAPPED_MODE);
      expect(() => f.data('nope')).toThrow(QkError);
      expect(() => f.data('nope')).toThrow(/t\d+\.safetensors: no tensor named "nope"/);
      const ids = f.tensors.get('ids')!;
      const forged: SafetensorsTensor = { ...ids, offset: 0 };
      expect(() => f.data(forged)).toThrow(/another offset or length/);
      expect(() => f.data({ ...ids, name: 'other' })).toThrow(/no tensor named "other"/);
    } finally {
      f.close();
    }
  });

  it('headers as other writers leave them: unpadded, extra spaces, tensors out of order, no tensors, odd names', () => {
    const { header, buffer } = safetensorsParts({ a: { dtype: 'U8', shape: [3], data: u8(1, 2, 3) }, b: { dtype: 'I16', shape: [1], data: u8(4, 5) } });
    const reordered = JSON.stringify({ b: header.b, a: header.a });
    for (const bytes of [rawSafetensors(reordered, buffer, false), rawSafetensors(reordered + ' '.repeat(19), buffer, false)]) {
      const r = parseSafetensorsHeader(bytes, bytes.length, 'x');
      expect(r.tensors.map((t) => t.name)).toEqual(['a', 'b']);
      expect(r.dataStart).toBe(bytes.length - 5);
      expect({ ...r.metadata }).toEqual({});
    }
    const none = rawSafetensors('{}');
    expect(parseSafetensorsHeader(none, none.length, 'x')).toMatchObject({ tensors: [], dataStart: 16 });
    const meta = rawSafetensors('{"__metadata__":{}}');
    expect(parseSafetensorsHeader(meta, meta.length, 'x').tensors).toEqual([]);
    // Names that are also field names or Object.prototype's are plain names; a nested key equal to a top-level one is no duplicate.
    const odd = rawSafetensors(
      '{"__metadata__":{"shape":"s","dtype":"d"},"shape":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
        '"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"constructor":{"shape":[1],"dtype":"U8","data_offsets":[2,3]}}',
      u8(9, 8, 7),
    );
    const r = parseSafetensorsHeader(odd, odd.length, 'x');
    expect(r.tensors.map((t) => t.name)).toEqual(['shape', '__proto__', 'constructor']);
    expect(r.metadata.shape).toBe('s');
    const f = openSafetensors(write(odd), { mmap: false });
    expect([...f.data('__proto__')]).toEqual([8]);
    expect(() => f.data('toString')).toThrow(/no tensor named "toString"/);
    f.close();
  });

  it('every dtype of the table, with its size', () => {
    const tensors: Record<string, { dtype: string; shape: number[]; data: Uint8Array }> = {};
    for (const [dtype, size] of Object.entries(SAFETENSORS_DTYPE_BYTES)) tensors[dtype.toLowerCase()] = { dtype, shape: [2, 1], data: new Uint8Array(2 * size).fill(size) };
    const bytes = safetensorsBytes(tensors);
    const r = parseSafetensorsHeader(bytes, bytes.length, 'x');
    expect(r.tensors.length).toBe(19);
    expect(Object.isFrozen(SAFETENSORS_DTYPE_BYTES)).toBe(true);
    for (const t of r.tensors) expect(t.byteLength).toBe(2 * SAFETENSORS_DTYPE_BYTES[t.dtype]);
  });
});

/** The QkError parsing `bytes` gives; opening them as a file (both modes) must give the same message. */
function refusal(bytes: Uint8Array, fileSize = bytes.length): QkError {
  let err: unknown;
  try {
    parseSafetensorsHeader(bytes, fileSize, 'bad.safetensors');
  } catch (e) {
    err = e;
  }
  if (!(err instanceof QkError)) throw new Error(`expected a QkError, got ${err === undefined ? 'a successful parse' : String(err)}`);
  if (fileSize === bytes.length) {
    const file = write(bytes, 'bad.safetensors');
    for (const mmap of [true, false]) {
      let e2: unknown;
      try {
        openSafetensors(file, { mmap }).close();
      } catch (e) {
        e2 = e;
      }
      expect(e2).toBeInstanceOf(QkError);
      expect((e2 as QkError).message.replace(file, 'bad.safetensors')).toBe(err.message);
    }
  }
  return err;
}

function expectRefused(bytes: Uint8Array, re: RegExp, code: string): void {
  const e = refusal(bytes);
  expect(e.message).toMatch(/^bad\.safetensors: /);
  expect(e.message).toMatch(re);
  expect(e.code).toBe(code);
}

const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
const header = (h: Record<string, unknown>, buffer = new Uint8Array(0)) => rawSafetensors(JSON.stringify(h), buffer);
function withLength(n: bigint, rest: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + rest.length);
  new DataView(out.buffer).setBigUint64(0, n, true);
  out.set(rest, 8);
  return out;
}

describe('hostile files: a QkError naming the file and the problem', () => {
  it('too short, a header length past the end or over the limit', () => {
    expectRefused(u8(), /0 bytes is too short/, 'ERR_QK_LENGTH');
    expectRefused(u8(1, 0, 0), /3 bytes is too short for a safetensors file/, 'ERR_QK_LENGTH');
    expectRefused(withLength(100n, new TextEncoder().encode('{}        ')), /header length 100 runs past the end of the 18-byte file/, 'ERR_QK_LENGTH');
    expectRefused(withLength(1n << 63n, u8(0x7b, 0x7d)), /header length 9223372036854775808 is over the limit of 100000000 bytes/, 'ERR_QK_VALUE');
    expectRefused(withLength((1n << 64n) - 1n, u8()), /header length 18446744073709551615 is over the limit/, 'ERR_QK_VALUE');
    expectRefused(withLength(100_000_001n, u8()), /header length 100000001 is over the limit/, 'ERR_QK_VALUE');
    // Only part of the file given to the pure parser.
    const ok = sample();
    expect(refusal(ok.subarray(0, 20), ok.length).message).toMatch(/only 12 of the \d+ header bytes were given/);
    expect(refusal(ok.subarray(0, 4), ok.length).message).toMatch(/only 4 of the 8 bytes of the header length/);
  });

  it('a header that is not UTF-8, not JSON, or not an object starting with {', () => {
    expectRefused(withLength(4n, u8(0x7b, 0xff, 0xfe, 0x7d)), /the 4-byte header is not valid UTF-8/, 'ERR_QK_VALUE');
    expectRefused(withLength(3n, u8(0x7b, 0xc3, 0x7d)), /not valid UTF-8/, 'ERR_QK_VALUE'); // a cut multi-byte sequence
    expectRefused(rawSafetensors('{"a":'), /the header is not valid JSON/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors('{"a":1}x'), /not valid JSON/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors('{}', new Uint8Array(0), false).subarray(0, 9), /header length 2 runs past the end of the 9-byte file/, 'ERR_QK_LENGTH');
    expectRefused(withLength(2n, new TextEncoder().encode('{}\0\0')), /the tensors end at byte 10, but the file has 12 bytes/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors('[]'), /does not start with '\{' \(its first byte is 0x5b\)/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors('"{}"'), /does not start with '\{'/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors(' {}'), /does not start with '\{' \(its first byte is 0x20\)/, 'ERR_QK_VALUE');
    expectRefused(withLength(0n, u8()), /does not start with '\{' \(it is empty\)/, 'ERR_QK_VALUE');
    expectRefused(withLength(3n, new TextEncoder().encode('\ufeff{}').subarray(0, 3)), /does not start with '\{' \(its first byte is 0xef\)/, 'ERR_QK_VALUE');
  });

  it('duplicate keys, at the top level and inside', () => {
    const a = '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}';
    expectRefused(rawSafetensors(`{"a":${a},"a":${a}}`, u8(1)), /the header names 'a' twice/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors(`{"a":${a},"\\u0061":${a}}`, u8(1)), /names 'a' twice/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors(`{"__metadata__":{},"a":${a},"__metadata__":{"k":"v"}}`, u8(1)), /names '__metadata__' twice/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors(`{"__metadata__":{"k":"v","k":"w"},"a":${a}}`, u8(1)), /duplicate key 'k' in an object of the header/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors('{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', u8(1)), /duplicate key 'dtype'/, 'ERR_QK_VALUE');
    // Keys inside strings, escaped quotes and arrays are not keys.
    const tricky = rawSafetensors(`{"__metadata__":{"a":"\\"a\\":{,[","b":"a"},"a":${a},"c\\"":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, u8(1, 2));
    expect(parseSafetensorsHeader(tricky, tricky.length, 'x').tensors.map((t) => t.name)).toEqual(['a', 'c"']);
  });

  it('unknown and sub-byte dtypes', () => {
    expectRefused(header({ w: entry('F128', [1], [0, 16]) }, new Uint8Array(16)), /tensor 'w': unknown dtype "F128"/, 'ERR_QK_TYPE');
    expectRefused(header({ w: entry('f32', [1], [0, 4]) }, new Uint8Array(4)), /tensor 'w': unknown dtype "f32"/, 'ERR_QK_TYPE');
    expectRefused(header({ w: entry('toString', [1], [0, 4]) }, new Uint8Array(4)), /unknown dtype "toString"/, 'ERR_QK_TYPE');
    expectRefused(header({ w: entry('F4', [2], [0, 1]) }, new Uint8Array(1)), /tensor 'w': unsupported dtype F4/, 'ERR_QK_TYPE');
    expectRefused(header({ w: entry('F6_E2M3', [4], [0, 3]) }, new Uint8Array(3)), /unsupported dtype F6_E2M3/, 'ERR_QK_TYPE');
    expectRefused(header({ w: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor 'w': dtype must be a string, got 4/, 'ERR_QK_VALUE');
  });

  it('bad shapes', () => {
    const bad = (shape: unknown, re: RegExp) => expectRefused(header({ w: entry('U8', shape, [0, 2]) }, new Uint8Array(2)), re, 'ERR_QK_VALUE');
    bad([-2], /tensor 'w': shape\[0\] must be a non-negative integer, got -2/);
    bad([2, 1.5], /shape\[1\] must be a non-negative integer, got 1.5/);
    bad(['2'], /shape\[0\] must be a non-negative integer, got "2"/);
    bad([null], /shape\[0\] must be a non-negative integer, got null/);
    bad([2 ** 53], /shape\[0\] must be a non-negative integer, got 9007199254740992/);
    bad(2, /shape must be an array, got 2/);
    bad({ 0: 2 }, /shape must be an array/);
    expectRefused(rawSafetensors('{"w":{"dtype":"U8","shape":[1e400],"data_offsets":[0,2]}}', new Uint8Array(2)), /shape\[0\] must be a non-negative integer, got Infinity/, 'ERR_QK_VALUE');
    expectRefused(rawSafetensors('{"w":{"dtype":"U8","shape":[-0.0001],"data_offsets":[0,2]}}', new Uint8Array(2)), /got -0.0001/, 'ERR_QK_VALUE');
    // Each dimension safe, their product not.
    expectRefused(header({ w: entry('F32', [2 ** 26, 2 ** 26, 2], [0, 8]) }, new Uint8Array(8)), /shape \[67108864, 67108864, 2\] of F32 is more bytes than a safe integer holds/, 'ERR_QK_VALUE');
    // A zero dimension makes even a huge product empty.
    const zero = header({ w: entry('F32', [2 ** 40, 0, 2 ** 40], [0, 0]) });
    expect(parseSafetensorsHeader(zero, zero.length, 'x').tensors[0].byteLength).toBe(0);
  });

  it('entries with missing, extra or mistyped fields', () => {
    expectRefused(header({ w: [1, 2] }), /tensor 'w': expected an object of dtype, shape and data_offsets, got \[1,2\]/, 'ERR_QK_VALUE');
    expectRefused(header({ w: null }), /tensor 'w': expected an object/, 'ERR_QK_VALUE');
    expectRefused(header({ w: { dtype: 'U8', shape: [1] } }, u8(1)), /tensor 'w': missing field 'data_offsets'/, 'ERR_QK_VALUE');
    expectRefused(header({ w: { ...entry('U8', [1], [0, 1]), offset: 0 } }, u8(1)), /tensor 'w': unexpected field 'offset'/, 'ERR_QK_VALUE');
  });

  it('data_offsets reversed, out of range, overlapping, with a gap, or short of the end', () => {
    const buf = new Uint8Array(16);
    expectRefused(header({ w: entry('U8', [0], [8, 0]) }, buf), /tensor 'w': data_offsets \[8, 0\] end before they begin/, 'ERR_QK_VALUE');
    expectRefused(header({ w: entry('U8', [1000], [0, 1000]) }, buf), /tensor 'w': data_offsets \[0, 1000\] end at byte \d+, past the end of the \d+-byte file/, 'ERR_QK_LENGTH');
    expectRefused(header({ w: entry('U8', [16], [2 ** 53, 2 ** 53 + 16]) }, buf), /data_offsets must be \[BEGIN, END\] of non-negative integers/, 'ERR_QK_VALUE');
    for (const off of [[0], [0, 8, 16], '0,16', [0, '16'], [-1, 15], [0.5, 16.5], null]) {
      expectRefused(header({ w: entry('U8', [16], off) }, buf), /tensor 'w': data_offsets must be \[BEGIN, END\] of non-negative integers/, 'ERR_QK_VALUE');
    }
    expectRefused(header({ a: entry('U8', [8], [0, 8]), b: entry('U8', [8], [4, 12]), c: entry('U8', [4], [12, 16]) }, buf), /tensor 'b' \(data_offsets begin at 4\) overlaps 'a', which ends at 8/, 'ERR_QK_VALUE');
    expectRefused(header({ a: entry('U8', [8], [0, 8]), b: entry('U8', [8], [0, 8]) }, new Uint8Array(8)), /overlaps/, 'ERR_QK_VALUE');
    // A zero-sized tensor inside another one is an overlap too.
    expectRefused(header({ a: entry('U8', [16], [0, 16]), z: entry('U8', [0], [4, 4]) }, buf), /tensor 'z' .* overlaps 'a'/, 'ERR_QK_VALUE');
    expectRefused(header({ a: entry('U8', [4], [0, 4]), b: entry('U8', [8], [8, 16]) }, buf), /a gap of 4 bytes in the data before tensor 'b' \(its data_offsets begin at 8, 'a' ends at 4\)/, 'ERR_QK_VALUE');
    expectRefused(header({ a: entry('U8', [8], [8, 16]) }, buf), /a gap of 8 bytes in the data before tensor 'a' \(its data_offsets begin at 8, the data at 0\)/, 'ERR_QK_VALUE');
    expectRefused(header({ a: entry('U8', [4], [0, 4]) }, buf), /the tensors end at byte \d+, but the file has \d+ bytes \(12 bytes at the end that no tensor covers\)/, 'ERR_QK_VALUE');
    expectRefused(header({}, u8(1)), /1 bytes at the end that no tensor covers/, 'ERR_QK_VALUE');
  });

  it('a size that disagrees with shape and dtype', () => {
    expectRefused(header({ w: entry('F32', [2], [0, 4]) }, new Uint8Array(4)), /tensor 'w': data_offsets \[0, 4\] hold 4 bytes, but shape \[2\] of F32 takes 8/, 'ERR_QK_VALUE');
    expectRefused(header({ w: entry('BF16', [], [0, 4]) }, new Uint8Array(4)), /hold 4 bytes, but shape \[\] of BF16 takes 2/, 'ERR_QK_VALUE');
  });

  it('metadata that is not an object of strings', () => {
    expectRefused(header({ __metadata__: { k: 1 } }), /__metadata__ 'k' must be a string, got 1/, 'ERR_QK_VALUE');
    expectRefused(header({ __metadata__: { k: { nested: 'x' } } }), /__metadata__ 'k' must be a string, got \{"nested":"x"\}/, 'ERR_QK_VALUE');
    expectRefused(header({ __metadata__: ['a'] }), /__metadata__ must be an object of strings, got \["a"\]/, 'ERR_QK_VALUE');
    expectRefused(header({ __metadata__: null }), /__metadata__ must be an object of strings, got null/, 'ERR_QK_VALUE');
    expectRefused(header({ __metadata__: 'pt' }), /__metadata__ must be an object of strings/, 'ERR_QK_VALUE');
  });
});

describe('mutated files: a consistent parse or a QkError, nothing else', () => {
  const base = sample();
  const headerEnd = 8 + Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true));
  // Bytes that turn valid JSON into other valid JSON more often than random ones do.
  const JSONISH = [...'0123456789-.eE,:[]{}" '].map((c) => c.charCodeAt(0));

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...JSONISH), fc.integer({ min: 0, max: 255 })) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('length' as const), value: fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: -16, max: 16 }).map((d) => BigInt(headerEnd - 8 + d))) }),
  );

  type Mutation = { kind: string; at?: number; bit?: number; value?: number | bigint };
  function apply(bytes: Uint8Array, m: Mutation): Uint8Array {
    // Aim three quarters of the byte mutations at the header, where they matter.
    const inHeader = (at: number) => (at % 4 !== 0 ? at % headerEnd : at % Math.max(1, bytes.length));
    switch (m.kind) {
      case 'flip': {
        const out = bytes.slice();
        if (out.length) out[inHeader(m.at!) % out.length] ^= 1 << m.bit!;
        return out;
      }
      case 'set': {
        const out = bytes.slice();
        if (out.length) out[inHeader(m.at!) % out.length] = Number(m.value);
        return out;
      }
      case 'truncate':
        return bytes.slice(0, m.at! % (bytes.length + 1));
      default: {
        const out = bytes.length >= 8 ? bytes.slice() : new Uint8Array(8);
        new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, m.value as bigint), true);
        return out;
      }
    }
  }

  it('a few hundred seeded mutations', () => {
    const seen = { parsed: 0, refused: 0 };
    let run = 0;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        const bytes = ms.reduce(apply, base);
        let result: ReturnType<typeof parseSafetensorsHeader> | undefined;
        try {
          result = parseSafetensorsHeader(bytes, bytes.length, 'fuzz.safetensors');
        } catch (e) {
          if (!(e instanceof QkError)) throw e;
          expect(e.message.startsWith('fuzz.safetensors: ')).toBe(true);
          seen.refused++;
        }
        if (result) {
          seen.parsed++;
          // What parses is consistent: the tensors tile the buffer to the file's end.
          let at = result.dataStart;
          for (const t of result.tensors) {
            expect(t.offset).toBe(at);
            const numel = t.shape.reduce((a, b) => a * b, 1);
            expect(t.byteLength).toBe(numel * SAFETENSORS_DTYPE_BYTES[t.dtype]);
            at += t.byteLength;
          }
          expect(at).toBe(bytes.length);
        }
        // Every tenth one also through a file, alternating the modes.
        if (run++ % 10 === 0) {
          const file = write(bytes, 'fuzz.safetensors');
          try {
            const f = openSafetensors(file, { mmap: run % 20 === 1 });
            for (const t of f.tensors.values()) expect(f.data(t).length).toBe(t.byteLength);
            f.close();
            expect(result).toBeDefined();
          } catch (e) {
            if (!(e instanceof QkError)) throw e;
            expect(result).toBeUndefined();
          }
        }
      }),
      { seed: 0x5afe7e45, numRuns: Number(process.env.QKERNELS_FUZZ_RUNS ?? 400) },
    );
    // Both outcomes happen: the mutations are neither all harmless nor all fatal.
    expect(seen.parsed).toBeGreaterThan(0);
    expect(seen.refused).toBeGreaterThan(100);
  });
});

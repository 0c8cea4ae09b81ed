// The safetensors reader (quant-formats.md §8): files from the tests' writer
// read back in both modes, and hostile headers that must end in a QkError.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { QkError } from '../lib/errors';
import { openSafetensors, parseSafetensorsHeader } from '../lib/safetensors';
import { writeSafetensors } from './checkpoint-pack';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-st-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(header: unknown, data = new Uint8Array(0), rawHeader?: string): Uint8Array {
  const json = rawHeader ?? JSON.stringify(header);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return new Uint8Array(Buffer.concat([len, Buffer.from(json), Buffer.from(data)]));
}
function parse(bytes: Uint8Array): ReturnType<typeof parseSafetensorsHeader> {
  return parseSafetensorsHeader(bytes, bytes.length, 'x.safetensors');
}
const T = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

describe('safetensors', () => {
  it('reads back what the writer wrote, mapped and read', () => {
    const p = path.join(dir, 'a.safetensors');
    const f32 = new Float32Array([1, -2, 3.5, 4, 5, 6]);
    writeSafetensors(p, { w: { dtype: 'F32', shape: [2, 3], bytes: new Uint8Array(f32.buffer) }, e: { dtype: 'I32', shape: [0], bytes: new Uint8Array(0) }, s: { dtype: 'F16', shape: [], bytes: new Uint8Array([0, 0x3c]) } }, { format: 'pt' });
    for (const mmap of [true, false]) {
      const st = openSafetensors(p, { mmap });
      try {
        expect([...st.tensors.keys()].sort()).toEqual(['e', 's', 'w']);
        expect(st.metadata).toEqual({ format: 'pt' });
        expect(st.tensors.get('w')).toMatchObject({ dtype: 'F32', shape: [2, 3], byteLength: 24 });
        expect(Array.from(new Float32Array(st.data('w').slice().buffer))).toEqual(Array.from(f32));
        expect(Array.from(st.data('s'))).toEqual([0, 0x3c]);
        expect(st.data('e').length).toBe(0);
        expect(() => st.data('nope')).toThrow(/no tensor 'nope'/);
      } finally {
        st.close();
      }
      expect(() => st.data('w')).toThrow(/closed/);
    }
  });

  const ok = T('U8', [4], [0, 4]);
  const HOSTILE: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /too short/],
    ['header past the end', (() => { const b = file({ a: ok }, new Uint8Array(4)); b[0] = 200; return b; })(), /runs past the end/],
    ['header length 2^63', (() => { const b = file({ a: ok }, new Uint8Array(4)); b[7] = 0x80; return b; })(), /over the 100000000-byte limit/],
    ['not JSON', file(null, new Uint8Array(0), '{"a": '), /not JSON/],
    ['not UTF-8', file(null, new Uint8Array(0), '{"\udcff"}'.replace('\udcff', '\u00ff')).map((v, i, a) => (i === 10 ? 0xff : v)), /not UTF-8|not JSON/],
    ['not an object', file(null, new Uint8Array(0), '[1] '), /does not start with '\{'/],
    ['leading space', file(null, new Uint8Array(0), ' {}'), /does not start with '\{'/],
    ['duplicate key', file(null, new Uint8Array(4), '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}'), /names 'a' twice/],
    ['unknown dtype', file({ a: T('Q4', [4], [0, 4]) }, new Uint8Array(4)), /dtype 'Q4' is unknown/],
    ['sub-byte dtype', file({ a: T('F4', [8], [0, 4]) }, new Uint8Array(4)), /sub-byte/],
    ['negative dim', file({ a: T('U8', [-4], [0, 4]) }, new Uint8Array(4)), /shape must be/],
    ['fractional dim', file({ a: T('U8', [2.5], [0, 4]) }, new Uint8Array(4)), /shape must be/],
    ['string dim', file({ a: T('U8', ['4'], [0, 4]) }, new Uint8Array(4)), /shape must be/],
    ['huge shape', file({ a: T('F64', [2 ** 30, 2 ** 30, 2 ** 30], [0, 4]) }, new Uint8Array(4)), /too large/],
    ['reversed offsets', file({ a: T('U8', [0], [4, 0]) }, new Uint8Array(4)), /data_offsets/],
    ['size disagrees', file({ a: T('U16', [4], [0, 4]) }, new Uint8Array(4)), /takes 8/],
    ['gap', file({ a: T('U8', [2], [0, 2]), b: T('U8', [1], [3, 4]) }, new Uint8Array(4)), /no gap or overlap/],
    ['overlap', file({ a: T('U8', [3], [0, 3]), b: T('U8', [2], [2, 4]) }, new Uint8Array(4)), /no gap or overlap/],
    ['short buffer', file({ a: T('U8', [8], [0, 8]) }, new Uint8Array(4)), /end at byte/],
    ['trailing bytes', file({ a: ok }, new Uint8Array(6)), /end at byte/],
    ['non-string metadata', file({ __metadata__: { n: 1 }, a: ok }, new Uint8Array(4)), /__metadata__\['n'\] is not a string/],
    ['extra field', file({ a: { ...ok, x: 1 } }, new Uint8Array(4)), /unknown field 'x'/],
  ];
  it.each(HOSTILE)('%s: QkError', (_label, bytes, msg) => {
    let err: unknown;
    try {
      parse(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QkError);
    expect((err as Error).message).toMatch(msg);
  });

  it('a nested key equal to a top-level key is not a duplicate', () => {
    expect(parse(file({ __metadata__: { a: 'x' }, a: ok }, new Uint8Array(4))).tensors.map((t) => t.name)).toEqual(['a']);
  });

  it('seeded byte flips and truncations of a valid file: a parse or a QkError, never another error', () => {
    const good = file({ __metadata__: { format: 'pt' }, w: T('F32', [2, 2], [0, 16]), b: T('I32', [3], [16, 28]) }, new Uint8Array(28));
    let s = 7, parsed = 0, refused = 0;
    const rnd = (n: number): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n);
    for (let i = 0; i < 2000; i++) {
      let b = good.slice();
      if (rnd(4) === 0) b = b.subarray(0, rnd(b.length));
      else for (let f = 1 + rnd(3); f > 0; f--) b[rnd(b.length)] = rnd(256);
      try {
        parse(b);
        parsed++;
      } catch (e) {
        if (!(e instanceof QkError)) throw e;
        refused++;
      }
    }
    expect(parsed + refused).toBe(2000);
    expect(refused).toBeGreaterThan(100);
  });
});

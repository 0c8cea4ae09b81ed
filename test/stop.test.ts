// StopMatcher against a reference that sees the whole text at once: the
// generation stops at the stop-string occurrence that ends first (ties: the
// one starting first, i.e. the longest), and emits what comes before it.
// Properties (fast-check): for random texts, stop sets and splits into pieces,
// the emitted text is the reference's whatever the split, each push emits as
// much as can no longer become a stop string, and no emit splits a surrogate pair.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QkError } from '../lib/errors';
import { StopMatcher } from '../lib/model/stop';

/** The whole-text answer: what is emitted, and which stop string ended it. */
function reference(text: string, stops: readonly string[]): { emit: string; stop?: string } {
  for (let end = 1; end <= text.length; end++) {
    let best: string | undefined;
    for (const s of stops) {
      if (s.length <= end && text.slice(end - s.length, end) === s && (best === undefined || s.length > best.length)) best = s;
    }
    if (best !== undefined) return { emit: text.slice(0, end - best.length), stop: best };
  }
  return { emit: text };
}

/** How much of `seen` may still be the start of a stop string: the longest suffix that is a proper prefix of one. */
function mayGrow(seen: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops) {
    for (let len = Math.min(s.length - 1, seen.length); len > hold; len--) {
      if (seen.endsWith(s.slice(0, len))) { hold = len; break; }
    }
  }
  return hold;
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** Cuts `text` at the given UTF-16 offsets (any, inside surrogate pairs too). */
function split(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let prev = 0;
  for (const c of at) { pieces.push(text.slice(prev, c)); prev = c; }
  pieces.push(text.slice(prev));
  return pieces; // empty pieces included: push('') must be harmless
}

interface Run { emits: string[]; out: string; stopped: boolean; matched?: string }

/** Feeds the pieces, checking at every step what the module's contract says about that step. */
function run(pieces: string[], stops: readonly string[]): Run {
  const m = new StopMatcher(stops);
  const emits: string[] = [];
  let seen = '';
  let out = '';
  for (const p of pieces) {
    const wasStopped = m.stopped;
    const r = m.push(p);
    seen += p;
    emits.push(r.emit);
    out += r.emit;
    expect(r.stopped).toBe(m.stopped);
    if (wasStopped) {
      expect(r).toEqual({ emit: '', stopped: true });
      continue;
    }
    if (r.stopped) break;
    // not stopped: everything is out but the longest tail that may still grow into a stop
    // (or, when there is none, a trailing high surrogate waiting for its pair)
    let hold = mayGrow(seen, stops);
    if (hold === 0 && seen.length > 0 && isHigh(seen.charCodeAt(seen.length - 1))) hold = 1;
    expect(out).toBe(seen.slice(0, seen.length - hold));
  }
  const stopped = m.stopped;
  const matched = m.matched;
  const rest = m.flush();
  if (stopped) expect(rest).toBe('');
  else out += rest;
  expect(m.flush()).toBe('');
  return { emits, out, stopped, matched };
}

// Small alphabets, so that stops occur, overlap and nest; astral characters so that pairs can be cut.
const CHARS = ['a', 'b', 'c', 'ab', '😀', '🦙', 'é'];
const text = (max: number) => fc.string({ unit: fc.constantFrom(...CHARS), maxLength: max });
const stopSet = fc.array(fc.string({ unit: fc.constantFrom(...CHARS), minLength: 1, maxLength: 4 }), { minLength: 0, maxLength: 4 });
const cuts = fc.array(fc.nat(200), { maxLength: 12 });

describe('StopMatcher', () => {
  it('examples: the occurrence that ends first wins, then the longest', () => {
    const whole = (t: string, stops: string[]) => run([t], stops);
    expect(whole('abcd', ['abcd', 'bc'])).toMatchObject({ out: 'a', matched: 'bc', stopped: true });
    expect(whole('xabcy', ['abc', 'bc'])).toMatchObject({ out: 'x', matched: 'abc' });
    expect(whole('hello world', ['wor', 'lo w'])).toMatchObject({ out: 'hel', matched: 'lo w' });
    expect(whole('no stop here', ['STOP'])).toMatchObject({ out: 'no stop here', stopped: false, matched: undefined });
    expect(whole('', ['x'])).toMatchObject({ out: '', stopped: false });
    expect(whole('anything', [])).toMatchObject({ out: 'anything', stopped: false });
    // the held-back tail comes out of flush() when the text ends without the stop
    const m = new StopMatcher(['</s>']);
    expect(m.push('abc</')).toEqual({ emit: 'abc', stopped: false });
    expect(m.flush()).toBe('</');
    // and after a stop, nothing more comes out
    const n = new StopMatcher(['END']);
    expect(n.push('xxEN')).toEqual({ emit: 'xx', stopped: false });
    expect(n.push('Dtail')).toEqual({ emit: '', stopped: true });
    expect(n.matched).toBe('END');
    expect(n.push('more')).toEqual({ emit: '', stopped: true });
    expect(n.flush()).toBe('');
  });

  it('property: emits (+ flush) equal the whole-text reference, whatever the split', () => {
    fc.assert(
      fc.property(text(30), stopSet, cuts, cuts, (t, stops, c1, c2) => {
        const want = reference(t, stops);
        const a = run(split(t, c1), stops);
        const b = run(split(t, c2), stops);
        expect(a.out).toBe(want.emit);
        expect(a.stopped).toBe(want.stop !== undefined);
        expect(a.matched).toBe(want.stop);
        expect(b.out).toBe(a.out);
        expect(b.matched).toBe(a.matched);
      }),
      { numRuns: 2000, seed: 424242 },
    );
  });

  it('property: one character per push and the whole text at once agree with the reference', () => {
    fc.assert(
      fc.property(text(40), stopSet, (t, stops) => {
        const want = reference(t, stops).emit;
        expect(run(t.split(''), stops).out).toBe(want); // UTF-16 units: every pair is cut
        expect(run([t], stops).out).toBe(want);
      }),
      { numRuns: 1000, seed: 777 },
    );
  });

  it('property: no emit ends inside a surrogate pair or starts with its second half', () => {
    fc.assert(
      fc.property(text(30), stopSet, (t, stops) => {
        for (const e of run(t.split(''), stops).emits) {
          if (e.length === 0) continue;
          expect(isHigh(e.charCodeAt(e.length - 1)), JSON.stringify(e)).toBe(false);
          expect(isLow(e.charCodeAt(0)), JSON.stringify(e)).toBe(false);
        }
      }),
      { numRuns: 500, seed: 99 },
    );
  });

  it('emoji cut inside their pairs: held until whole, the stop found across the cut', () => {
    const m = new StopMatcher(['🦙!']);
    expect(m.push('hi \ud83d')).toEqual({ emit: 'hi ', stopped: false });
    expect(m.push('\ude00 \ud83e')).toEqual({ emit: '😀 ', stopped: false });
    expect(m.push('\udd99')).toEqual({ emit: '', stopped: false }); // '🦙' may start '🦙!'
    expect(m.push('!')).toEqual({ emit: '', stopped: true });
    // a lone high surrogate at the very end comes out of flush()
    const n = new StopMatcher(['x']);
    expect(n.push('a\ud83d').emit).toBe('a');
    expect(n.flush()).toBe('\ud83d');
  });

  it('the stops array is copied: changing it later changes nothing', () => {
    const stops = ['ab'];
    const m = new StopMatcher(stops);
    stops[0] = 'zz';
    expect(m.stops).toEqual(['ab']);
    expect(m.push('xaby')).toEqual({ emit: 'x', stopped: true });
  });

  it('bad input ends in a QkError', () => {
    const bad = (fn: () => unknown) => {
      let err: unknown;
      try { fn(); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(QkError);
      expect((err as QkError).code).toBe('ERR_QK_ARG');
    };
    for (const stops of ['x', null, undefined, 3, { length: 1, 0: 'x' }]) bad(() => new StopMatcher(stops as unknown as string[]));
    for (const stops of [[''], ['a', 3], ['a', null], [['a']]]) bad(() => new StopMatcher(stops as unknown as string[]));
    const m = new StopMatcher(['a']);
    for (const piece of [3, null, undefined, ['a'], { toString: () => 'a' }]) bad(() => m.push(piece as unknown as string));
    expect(m.push('xa')).toEqual({ emit: 'x', stopped: true }); // a rejected push left no trace
  });
});

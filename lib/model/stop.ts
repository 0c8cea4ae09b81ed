// Stop strings on streamed text.
//
// The text arrives in pieces (one per token); push() returns the part that is
// safe to show now and holds back the longest suffix that could still grow
// into a stop string. The result does not depend on how the text is split:
//
//   the generation stops at the stop-string occurrence that ENDS first in the
//   whole text (a stream cannot wait for a later, longer match); among
//   occurrences ending at the same place, the one starting first (the longest).
//   Everything before that occurrence is emitted, the stop string itself and
//   whatever follows it are not.
//
// So with stops ["abcd", "bc"] the text "abcd" stops at "bc" (emitting "a"),
// however it is split. Without a stop, the concatenation of every emit and of
// flush() is the whole text.
//
// push() never emits half of a UTF-16 surrogate pair: a trailing high surrogate
// is held back until the next piece (flush() returns it if nothing follows).
import { QkError } from '../errors';

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/** Whether buf ends with the first len characters of s (compared in place: a slice per length tried would allocate on every piece). */
function endsWithPrefix(buf: string, s: string, len: number): boolean {
  const at = buf.length - len;
  for (let i = 0; i < len; i++) if (buf.charCodeAt(at + i) !== s.charCodeAt(i)) return false;
  return true;
}

export class StopMatcher {
  readonly stops: readonly string[];
  private held = '';
  private stopped_ = false;
  private matched_: string | undefined;
  /** The longest stop string, minus one: no held-back suffix is longer. */
  private readonly maxHold: number;

  constructor(stops: readonly string[]) {
    if (!Array.isArray(stops)) throw new QkError('ERR_QK_ARG', `StopMatcher: stops must be an array of strings, got ${stops === null ? 'null' : typeof stops}`);
    let maxLen = 0;
    for (let i = 0; i < stops.length; i++) {
      const s: unknown = stops[i];
      if (typeof s !== 'string') throw new QkError('ERR_QK_ARG', `StopMatcher: stops[${i}] must be a string, got ${s === null ? 'null' : typeof s}`);
      if (s.length === 0) throw new QkError('ERR_QK_ARG', `StopMatcher: stops[${i}] is the empty string (it would stop before any text)`);
      if (s.length > maxLen) maxLen = s.length;
    }
    this.stops = Object.freeze(stops.slice());
    this.maxHold = Math.max(0, maxLen - 1);
  }

  /** True once a stop string has completed. */
  get stopped(): boolean {
    return this.stopped_;
  }

  /** The stop string that ended the text (undefined while not stopped). */
  get matched(): string | undefined {
    return this.matched_;
  }

  /**
   * Adds a piece of text. `emit` is the text that can be shown now; when a stop
   * string completes, `emit` is the text before it and `stopped` is true. After
   * that, every push returns { emit: '', stopped: true }.
   */
  push(text: string): { emit: string; stopped: boolean } {
    if (typeof text !== 'string') throw new QkError('ERR_QK_ARG', `StopMatcher.push: text must be a string, got ${text === null ? 'null' : typeof text}`);
    if (this.stopped_) return { emit: '', stopped: true };
    const heldLen = this.held.length;
    const buf = heldLen === 0 ? text : this.held + text;
    // The occurrence ending first, then starting first. None lies entirely
    // within the held part (it would have been found before), so each stop's
    // search starts where it could first reach the new text.
    let bestEnd = Infinity;
    let bestStart = 0;
    let bestStop = '';
    const stops = this.stops;
    for (let k = 0; k < stops.length; k++) {
      const s = stops[k];
      const at = buf.indexOf(s, Math.max(0, heldLen - s.length + 1));
      if (at < 0) continue;
      const end = at + s.length;
      if (end < bestEnd || (end === bestEnd && at < bestStart)) {
        bestEnd = end;
        bestStart = at;
        bestStop = s;
      }
    }
    if (bestEnd !== Infinity) {
      this.stopped_ = true;
      this.matched_ = bestStop;
      this.held = '';
      return { emit: buf.slice(0, bestStart), stopped: true };
    }
    // Hold back the longest suffix that is a proper prefix of a stop string.
    let hold = 0;
    const limit = Math.min(this.maxHold, buf.length);
    for (let k = 0; k < stops.length; k++) {
      const s = stops[k];
      for (let len = Math.min(s.length - 1, limit); len > hold; len--) {
        if (endsWithPrefix(buf, s, len)) {
          hold = len;
          break;
        }
      }
    }
    if (hold === 0 && buf.length > 0 && isHighSurrogate(buf.charCodeAt(buf.length - 1))) hold = 1;
    const cut = buf.length - hold;
    this.held = buf.slice(cut);
    return { emit: buf.slice(0, cut), stopped: false };
  }

  /** The held-back text, at the end of the generation ('' after a stop); the matcher is empty afterwards. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }
}

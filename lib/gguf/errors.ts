// A GGUF file is untrusted input: whatever is wrong with it ends here, in a
// QkError naming the file, the problem and the byte offset where it was found.
import { QkError, type QkErrorCode } from '../errors';

export class GgufError extends QkError {
  /** byte offset in the file where the problem was found (-1: not tied to one place) */
  readonly offset: number;
  readonly path: string;
  constructor(code: QkErrorCode, path: string, offset: number, problem: string) {
    super(code, `${path}: ${problem}${offset >= 0 ? ` (at byte ${offset})` : ''}`);
    this.name = 'QkError';
    this.offset = offset;
    this.path = path;
  }
}

/** Bad content: a value out of range, a name reused, tensors that overlap. */
export const BAD = 'ERR_QK_VALUE' satisfies QkErrorCode;
/** The file ends before something it promises (a count, a length, a tensor past EOF). */
export const SHORT = 'ERR_QK_LENGTH' satisfies QkErrorCode;
/** A type id that is not a ggml or GGUF type. */
export const TYPE = 'ERR_QK_TYPE' satisfies QkErrorCode;

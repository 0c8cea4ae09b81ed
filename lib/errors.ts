/** Stable error codes; the native addon uses the same strings (native/src/ops.cc). */
export type QkErrorCode =
  | 'ERR_QK_TYPE'
  | 'ERR_QK_SHAPE'
  | 'ERR_QK_LENGTH'
  | 'ERR_QK_VALUE'
  | 'ERR_QK_ISA'
  | 'ERR_QK_ARG'
  | 'ERR_QK_BACKEND';

/** Every problem with an argument, a buffer or the environment ends in a QkError. */
export class QkError extends Error {
  readonly code: QkErrorCode;
  constructor(code: QkErrorCode, message: string) {
    super(message);
    this.name = 'QkError';
    this.code = code;
  }
}

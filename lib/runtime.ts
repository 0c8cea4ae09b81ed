// The backend this process computes with, chosen once at load: the native
// addon where it loads (QKERNELS_BACKEND=native insists on it), else the
// TypeScript kernels (QKERNELS_BACKEND=js forces them).
import type { Backend } from './backend';
import { QkError } from './errors';
import { jsBackend } from './js/backend';
import { loadNative } from './native';

function chooseBackend(): Backend {
  const want = process.env.QKERNELS_BACKEND;
  if (want === 'js') return jsBackend;
  if (want !== undefined && want !== '' && want !== 'native') {
    throw new QkError('ERR_QK_BACKEND', `QKERNELS_BACKEND must be 'native' or 'js'; got '${want}'`);
  }
  try {
    return loadNative();
  } catch (e) {
    if (want === 'native') {
      throw new QkError('ERR_QK_BACKEND', `QKERNELS_BACKEND=native but the native addon did not load: ${(e as Error).message}`);
    }
    return jsBackend;
  }
}

export const impl: Backend = chooseBackend();

function applyEnvironment(): void {
  const isa = process.env.QKERNELS_ISA;
  if (isa) impl.setIsa(isa);
  const threads = process.env.QKERNELS_THREADS;
  if (threads) {
    const n = Number(threads);
    if (!Number.isInteger(n) || n < 1 || n > 256) {
      throw new QkError('ERR_QK_ARG', `QKERNELS_THREADS must be an integer in [1, 256]; got '${threads}'`);
    }
    impl.setThreads(n);
  }
}
applyEnvironment();

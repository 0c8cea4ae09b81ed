// Type tests of the public API (what lib/index.ts exports, which both the
// CommonJS and the ESM entry declare): a signature change that would break a
// user's code fails `npm run test:types` (vitest --typecheck, run by npm test).
// Nothing here runs: vitest only type-checks this file.
//
// What is pinned: function signatures exactly; result types by the fields
// users read (toExtend: a new field is no break); option types by each field
// they take (a new optional option is no break, a removed or retyped one is);
// the string unions (WeightType, error codes, ...) exactly.
import { describe, expectTypeOf, it } from 'vitest';
import {
  awq,
  awqAsync,
  backend,
  dequantize,
  gptq,
  gptqAsync,
  loadModel,
  matmul,
  matmulAsync,
  Model,
  openCheckpoint,
  openGguf,
  prepare,
  QkError,
  quantize,
  Sequence,
  setThreads,
  TYPES,
  unprepare,
  WEIGHT_TYPES,
  writeGguf,
  type AwqOptions,
  type AwqResult,
  type BackendReport,
  type CalibratedType,
  type Checkpoint,
  type CheckpointTensor,
  type Completion,
  type FinishReason,
  type GeneratedPiece,
  type GenerateOptions,
  type GenerationResult,
  type GgufFile,
  type GgufPlainValue,
  type GgufTensor,
  type GgufTensorInput,
  type GgufValue,
  type GptqOptions,
  type GptqResult,
  type LoadModelOptions,
  type MatmulOptions,
  type OpenCheckpointOptions,
  type OpenGgufOptions,
  type QkErrorCode,
  type QuantizationConfig,
  type QuantizedMatrix,
  type QuantizeOptions,
  type TypeInfo,
  type WeightType,
  type WriteGgufOptions,
  type WriteGgufResult,
} from '../../lib/index';

declare const w: QuantizedMatrix;
declare const x: Float32Array;

describe('weight types', () => {
  it('WeightType is the eleven ggml block formats', () => {
    expectTypeOf<WeightType>().toEqualTypeOf<
      'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k'
    >();
    expectTypeOf(WEIGHT_TYPES).toEqualTypeOf<readonly WeightType[]>();
    expectTypeOf(TYPES).toEqualTypeOf<Readonly<Record<WeightType, TypeInfo>>>();
    expectTypeOf<TypeInfo['blockSize']>().toBeNumber();
  });

  it('QuantizedMatrix: readonly type, shape and bytes; optional layout and input order', () => {
    expectTypeOf<QuantizedMatrix['type']>().toEqualTypeOf<WeightType>();
    expectTypeOf<QuantizedMatrix['rows']>().toEqualTypeOf<number>();
    expectTypeOf<QuantizedMatrix['cols']>().toEqualTypeOf<number>();
    expectTypeOf<QuantizedMatrix['data']>().toEqualTypeOf<Uint8Array>();
    expectTypeOf<QuantizedMatrix['layout']>().toEqualTypeOf<'ggml' | 'interleaved16' | undefined>();
    expectTypeOf<QuantizedMatrix['inputOrder']>().toEqualTypeOf<Int32Array | undefined>();
    // A plain object literal is a QuantizedMatrix (users build them from their own bytes).
    expectTypeOf({ type: 'q4_0' as const, rows: 1, cols: 32, data: new Uint8Array(18) }).toExtend<QuantizedMatrix>();
    // @ts-expect-error readonly
    w.rows = 2;
  });
});

describe('kernels', () => {
  it('quantize / dequantize', () => {
    expectTypeOf(quantize).toEqualTypeOf<
      (src: Float32Array, rows: number, cols: number, type: WeightType, opts?: QuantizeOptions) => QuantizedMatrix
    >();
    expectTypeOf<QuantizeOptions['out']>().toEqualTypeOf<Uint8Array | undefined>();
    expectTypeOf<QuantizeOptions['importance']>().toEqualTypeOf<Float32Array | undefined>();
    expectTypeOf(dequantize).toEqualTypeOf<(w: QuantizedMatrix, out?: Float32Array) => Float32Array>();
    // @ts-expect-error not a weight type
    quantize(x, 1, 32, 'q3_k');
    // @ts-expect-error a Float32Array, not a number[]
    quantize([0], 1, 32, 'q4_0');
  });

  it('matmul / matmulAsync', () => {
    expectTypeOf(matmul).toEqualTypeOf<
      (w: QuantizedMatrix, x: Float32Array, m: number, out?: Float32Array, opts?: MatmulOptions) => Float32Array
    >();
    expectTypeOf(matmulAsync).toEqualTypeOf<
      (w: QuantizedMatrix, x: Float32Array, m: number, out?: Float32Array, opts?: MatmulOptions) => Promise<Float32Array>
    >();
    expectTypeOf<MatmulOptions['precision']>().toEqualTypeOf<'q8' | 'f32' | undefined>();
    matmul(w, x, 1, undefined, { precision: 'f32' });
    // @ts-expect-error no such precision
    matmul(w, x, 1, undefined, { precision: 'f16' });
  });

  it('prepare / unprepare', () => {
    expectTypeOf(prepare).toEqualTypeOf<(w: QuantizedMatrix) => QuantizedMatrix>();
    expectTypeOf(unprepare).toEqualTypeOf<(w: QuantizedMatrix) => QuantizedMatrix>();
  });

  it('backend / setThreads', () => {
    expectTypeOf(backend).toEqualTypeOf<() => BackendReport>();
    expectTypeOf<BackendReport['name']>().toEqualTypeOf<'native' | 'js'>();
    expectTypeOf<BackendReport['threads']>().toBeNumber();
    expectTypeOf(setThreads).toEqualTypeOf<(n: number) => void>();
  });
});

describe('errors', () => {
  it('QkError: an Error with a stable code', () => {
    expectTypeOf<QkError>().toExtend<Error>();
    expectTypeOf<QkError['code']>().toEqualTypeOf<QkErrorCode>();
    expectTypeOf<QkErrorCode>().toEqualTypeOf<
      'ERR_QK_TYPE' | 'ERR_QK_SHAPE' | 'ERR_QK_LENGTH' | 'ERR_QK_VALUE' | 'ERR_QK_ISA' | 'ERR_QK_ARG' | 'ERR_QK_BACKEND'
    >();
    expectTypeOf(QkError).constructorParameters.toEqualTypeOf<[code: QkErrorCode, message: string]>();
    const e: unknown = null;
    if (e instanceof QkError) expectTypeOf(e.code).toEqualTypeOf<QkErrorCode>();
  });
});

describe('GGUF', () => {
  it('openGguf', () => {
    expectTypeOf(openGguf).toEqualTypeOf<(path: string, opts?: OpenGgufOptions) => GgufFile>();
    expectTypeOf<OpenGgufOptions['mmap']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<GgufFile['tensors']>().toEqualTypeOf<readonly GgufTensor[]>();
    expectTypeOf<GgufFile['tensor']>().toEqualTypeOf<(name: string) => GgufTensor | undefined>();
    expectTypeOf<GgufFile['metadata']>().toEqualTypeOf<Readonly<Record<string, GgufPlainValue>>>();
    expectTypeOf<GgufFile['typedMetadata']>().toEqualTypeOf<Readonly<Record<string, GgufValue>>>();
    expectTypeOf<GgufFile['close']>().toEqualTypeOf<() => void>();
    expectTypeOf<GgufTensor['matrix']>().toEqualTypeOf<QuantizedMatrix | null>();
    expectTypeOf<GgufTensor['type']>().toEqualTypeOf<WeightType | null>();
    expectTypeOf<GgufTensor['data']>().toEqualTypeOf<Uint8Array>();
  });

  it('writeGguf', () => {
    expectTypeOf(writeGguf).toEqualTypeOf<(path: string, opts: WriteGgufOptions) => Promise<WriteGgufResult>>();
    expectTypeOf<WriteGgufResult>().toExtend<{ readonly path: string; readonly bytes: number; readonly tensors: number }>();
    // What users write: a QuantizedMatrix, or bytes with a type and shape, or a GgufTensor as is.
    expectTypeOf({ name: 'w', matrix: w }).toExtend<GgufTensorInput>();
    expectTypeOf({ name: 'w', type: 'f32' as const, shape: [4], data: new Uint8Array(16) }).toExtend<GgufTensorInput>();
    expectTypeOf({ name: 'w', data: async () => new Uint8Array(16) }).toExtend<GgufTensorInput>();
    expectTypeOf<GgufTensor>().toExtend<GgufTensorInput>();
    expectTypeOf({ metadata: { 'general.name': 'x', n: 3 }, tensors: [{ name: 'w', matrix: w }] }).toExtend<WriteGgufOptions>();
  });
});

describe('models', () => {
  it('loadModel / Model', () => {
    expectTypeOf(loadModel).toEqualTypeOf<(path: string, opts?: LoadModelOptions) => Promise<Model>>();
    expectTypeOf<LoadModelOptions['kvType']>().toEqualTypeOf<'f16' | 'f32' | undefined>();
    expectTypeOf<LoadModelOptions['engine']>().toEqualTypeOf<'native' | 'js' | undefined>();
    expectTypeOf<LoadModelOptions['mmap']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<LoadModelOptions['threads']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<LoadModelOptions['contextLength']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<Model['tokenize']>().parameter(0).toBeString();
    expectTypeOf<Model['tokenize']>().returns.toEqualTypeOf<number[]>();
    expectTypeOf<Model['detokenize']>().returns.toBeString();
    expectTypeOf<Model['evaluate']>().toEqualTypeOf<(ids: readonly number[]) => Promise<Float32Array>>();
    expectTypeOf<Model['createSequence']>().returns.toEqualTypeOf<Sequence>();
    expectTypeOf<Model['close']>().toEqualTypeOf<() => void>();
    expectTypeOf<Model['contextLength']>().toBeNumber();
  });

  it('generate / complete', () => {
    type Generate = (prompt: string | readonly number[], opts?: GenerateOptions) => AsyncGenerator<GeneratedPiece, GenerationResult, undefined>;
    expectTypeOf<Model['generate']>().toEqualTypeOf<Generate>();
    expectTypeOf<Sequence['generate']>().toEqualTypeOf<Generate>();
    expectTypeOf<Model['complete']>().toEqualTypeOf<(prompt: string | readonly number[], opts?: GenerateOptions) => Promise<Completion>>();
    expectTypeOf<GeneratedPiece>().toExtend<{ readonly text: string; readonly token: number }>();
    expectTypeOf<GenerationResult['finishReason']>().toEqualTypeOf<FinishReason>();
    expectTypeOf<FinishReason>().toEqualTypeOf<'eos' | 'length' | 'stop' | 'abort' | 'context'>();
    expectTypeOf<Completion>().toExtend<GenerationResult>();
    expectTypeOf<Completion['text']>().toBeString();
    expectTypeOf({ maxTokens: 8, stop: ['\n'], signal: new AbortController().signal, temperature: 0 }).toExtend<GenerateOptions>();
    expectTypeOf<GenerateOptions['maxTokens']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<GenerateOptions['stop']>().toEqualTypeOf<readonly string[] | undefined>();
    expectTypeOf<GenerateOptions['signal']>().toEqualTypeOf<AbortSignal | undefined>();

    async function use(model: Model): Promise<string> {
      let text = '';
      for await (const piece of model.generate('Hello', { maxTokens: 4 })) text += piece.text;
      return text;
    }
    expectTypeOf(use).returns.resolves.toBeString();
  });
});

describe('calibrated quantization (GPTQ, AWQ)', () => {
  type Args = [weights: Float32Array, rows: number, cols: number, calib: Float32Array];

  it('gptq / gptqAsync', () => {
    expectTypeOf(gptq).toEqualTypeOf<(...a: [...Args, opts?: GptqOptions]) => GptqResult>();
    expectTypeOf(gptqAsync).toEqualTypeOf<(...a: [...Args, opts?: GptqOptions]) => Promise<GptqResult>>();
    expectTypeOf<GptqResult>().toExtend<{ readonly matrix: QuantizedMatrix; readonly damp: number }>();
    expectTypeOf<GptqOptions['type']>().toEqualTypeOf<CalibratedType | undefined>();
    expectTypeOf({ type: 'int4' as const, groupSize: 128, sym: true, actOrder: true, damp: 0.01, batch: 128 }).toExtend<GptqOptions>();
    expectTypeOf<GptqOptions['groupSize']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<GptqOptions['sym']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<GptqOptions['actOrder']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<GptqOptions['damp']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<GptqOptions['batch']>().toEqualTypeOf<number | undefined>();
  });

  it('awq / awqAsync', () => {
    expectTypeOf(awq).toEqualTypeOf<(...a: [...Args, opts?: AwqOptions]) => AwqResult>();
    expectTypeOf(awqAsync).toEqualTypeOf<(...a: [...Args, opts?: AwqOptions]) => Promise<AwqResult>>();
    expectTypeOf<AwqResult>().toExtend<{
      readonly matrix: QuantizedMatrix;
      readonly inputScales: Float32Array;
      readonly ratio: number | null;
    }>();
    expectTypeOf({ type: 'q4_k' as const, grid: 20, tokens: 512, clip: true, inputScales: x }).toExtend<AwqOptions>();
    expectTypeOf<AwqOptions['type']>().toEqualTypeOf<CalibratedType | undefined>();
    expectTypeOf<AwqOptions['grid']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<AwqOptions['tokens']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<AwqOptions['clip']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<AwqOptions['inputScales']>().toEqualTypeOf<Float32Array | undefined>();
  });

  it('CalibratedType: the ggml block types GPTQ/AWQ write, and int4', () => {
    expectTypeOf<CalibratedType>().toEqualTypeOf<'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q4_k' | 'q5_k' | 'q6_k' | 'int4'>();
    // @ts-expect-error f16 is not a calibrated grid
    gptq(x, 1, 32, x, { type: 'f16' });
  });
});

describe('checkpoints', () => {
  it('openCheckpoint', () => {
    expectTypeOf(openCheckpoint).toEqualTypeOf<(dirOrFile: string, opts?: OpenCheckpointOptions) => Checkpoint>();
    expectTypeOf<OpenCheckpointOptions['mmap']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<Checkpoint['matrix']>().toEqualTypeOf<(name: string) => QuantizedMatrix>();
    expectTypeOf<Checkpoint['tensor']>().toEqualTypeOf<(name: string) => CheckpointTensor>();
    expectTypeOf<Checkpoint['layers']>().toEqualTypeOf<readonly string[]>();
    expectTypeOf<Checkpoint['config']>().toEqualTypeOf<QuantizationConfig>();
    expectTypeOf<QuantizationConfig['method']>().toEqualTypeOf<'gptq' | 'awq'>();
  });
});

// Converts a GGUF file to another weight type or llama.cpp recipe, one tensor
// at a time: read (mapped), expand to f32, quantize, stream to the output,
// drop the input's pages, so memory holds a tensor or two, never the model.
import * as fs from 'fs';
import { dequantize, quantize, rowBytes } from '../index';
import { QkError } from '../errors';
import { TYPES } from '../types';
import { GgufError } from './errors';
import { openGguf } from './reader';
import { modelInfo, planQuantization, typeNameOf, visitOrder, type PlannedType, type QuantizeTarget } from './recipes';
import { ggmlType, type GgufFile, type GgufTensor, type GgufTensorInput, type GgufValue } from './types';
import { writeGguf } from './writer';
import { calibrateLlama, type CalibratedTensors, type CalibrationMethod, type CalibrationProgress } from '../model/calibrate';
import { readHparams } from '../model/config';
import { Tokenizer } from '../model/tokenizer';
import { loadWeights } from '../model/weights';

export interface ConvertProgress {
  readonly tensorsDone: number;
  readonly tensors: number;
  /** input tensor bytes processed so far / in all */
  readonly inputBytesDone: number;
  readonly inputBytes: number;
  readonly outputBytesDone: number;
  readonly elapsedMs: number;
  readonly name: string;
}

export interface CalibrationOptions {
  method: CalibrationMethod;
  /** calibration text, tokenized with the model's own tokenizer */
  text: string;
  /** calibration tokens to use at most (default 4096) */
  tokens?: number;
  /** tokens per sequence, BOS included where the vocabulary has one (default 512, at most the trained context) */
  seqLen?: number;
  onProgress?: (p: CalibrationProgress) => void;
}

export interface ConvertOptions {
  type: QuantizeTarget;
  /** GPTQ or AWQ on this text instead of round-to-nearest, for llama models (same types, same file size) */
  calibration?: CalibrationOptions;
  onProgress?: (p: ConvertProgress) => void;
  /** false: read the input instead of mapping it */
  mmap?: boolean;
}

export interface ConvertedTensor {
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly shape: readonly number[];
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  readonly reason?: string;
}

export interface ConvertResult {
  readonly fileType: number;
  readonly inputFileBytes: number;
  readonly outputFileBytes: number;
  readonly elements: number;
  readonly tensorBytesBefore: number;
  readonly tensorBytesAfter: number;
  readonly bitsPerWeightBefore: number;
  readonly bitsPerWeightAfter: number;
  readonly seconds: number;
  readonly tensors: readonly ConvertedTensor[];
  /** temporary files of killed earlier runs to the same output, removed */
  readonly staleRemoved: readonly string[];
}

const SPLIT_KEYS = ['split.no', 'split.count', 'split.tensors.count'];
const SET_KEYS = ['general.quantization_version', 'general.file_type'];

function outputMetadata(typed: Readonly<Record<string, GgufValue>>, fileType: number): Record<string, GgufValue> {
  const meta: Record<string, GgufValue> = Object.create(null);
  for (const [k, v] of Object.entries(typed)) if (!SPLIT_KEYS.includes(k) && !SET_KEYS.includes(k)) meta[k] = v;
  // As llama-quantize: the quantization format version (GGML_QNT_VERSION) and the recipe number, last.
  meta['general.quantization_version'] = { type: 'uint32', value: 2 };
  meta['general.file_type'] = { type: 'uint32', value: fileType };
  return meta;
}

// Tensors are converted in slices of rows: the input's pages are dropped
// slice by slice and an f16 or quantized input is expanded only a slice at a
// time, so memory holds one slice and the converted tensor, whatever its size.
const SLICE_FLOATS = 1 << 24; // 64 MiB of f32

function withRow(e: QkError, firstRow: number, cols: number): string {
  // quantize() counts rows from the start of the slice it was given.
  return e.message.replace(/src\[(\d+)\] is (\S+) \(row (\d+), col (\d+)\)/, (_m, i, what, r, c) =>
    `element ${firstRow * cols + Number(i)} is ${what} (row ${firstRow + Number(r)}, col ${c})`);
}

function convertTensor(f: GgufFile, t: GgufTensor, p: PlannedType, path: string): Uint8Array {
  const to = ggmlType(p.ggmlType)!.weightType!;
  const { rows, cols } = t;
  const src = t.matrix!;
  const inRow = src.data.byteLength / rows;
  const outRow = to === 'f32' ? cols * 4 : rowBytes(to, cols);
  const out = new Uint8Array(rows * outRow);
  const step = Math.max(1, Math.floor(SLICE_FLOATS / cols));
  // An aligned f32 input is quantized in place; anything else is expanded into this.
  const direct = t.type === 'f32' && src.data.byteOffset % 4 === 0;
  const scratch = direct ? null : new Float32Array(Math.min(rows, step) * cols);
  for (let r0 = 0; r0 < rows; r0 += step) {
    const n = Math.min(step, rows - r0);
    const bytes = src.data.subarray(r0 * inRow, (r0 + n) * inRow);
    let x: Float32Array;
    try {
      if (direct) x = new Float32Array(bytes.buffer, bytes.byteOffset, n * cols);
      else x = dequantize({ type: src.type, rows: n, cols, data: bytes }, scratch!.subarray(0, n * cols));
      const dst = out.subarray(r0 * outRow, (r0 + n) * outRow);
      if (to === 'f32') dst.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
      else quantize(x, n, cols, to, { out: dst });
    } catch (e) {
      if (e instanceof QkError) throw new QkError(e.code, `${path}: tensor '${t.name}' (${t.typeName} -> ${typeNameOf(p.ggmlType)}): ${withRow(e, r0, cols)}`);
      throw e;
    }
    f.evict(t, r0 * inRow, (r0 + n) * inRow);
  }
  return out;
}

/** Converts `inPath` to `outPath` (written through a temporary file and renamed into place). */
export async function convertGguf(inPath: string, outPath: string, opts: ConvertOptions): Promise<ConvertResult> {
  const started = Date.now();
  const f = openGguf(inPath, { mmap: opts.mmap });
  try {
    const plan = planQuantization(opts.type, f.tensors, modelInfo(f.metadata, f.tensors));
    for (let i = 0; i < f.tensors.length; i++) {
      const t = f.tensors[i], p = plan.tensors[i];
      if (!p.convert) continue;
      const to = ggmlType(p.ggmlType)!.weightType;
      if (t.type === null) {
        throw new GgufError('ERR_QK_TYPE', inPath, t.offset, `tensor '${t.name}' is ${t.typeName}, which qkernels cannot read, so it cannot become ${typeNameOf(p.ggmlType)}`);
      }
      if (to === null) throw new QkError('ERR_QK_TYPE', `tensor '${t.name}' would become ${typeNameOf(p.ggmlType)}, which qkernels cannot write`);
      if (t.cols === 0 || t.elements === 0) continue;
      if (t.cols % TYPES[to].blockSize !== 0) throw new QkError('ERR_QK_SHAPE', `tensor '${t.name}': rows of ${t.cols} cannot be ${to}`);
    }

    const calibrated = opts.calibration ? await calibrate(f, plan.tensors.map((p) => p.ggmlType), opts.calibration) : null;

    const inputBytes = f.tensors.reduce((s, t) => s + t.bytes, 0);
    const outBytes = plan.tensors.map((p, i) => {
      const g = ggmlType(p.ggmlType)!;
      return (f.tensors[i].elements / g.blockSize) * g.blockBytes;
    });
    // Written in llama-quantize's order (by layer, then name), so that with
    // the same kernels the output is the file llama.cpp would write.
    const order = visitOrder(f.tensors);
    const inputs: GgufTensorInput[] = order.map((i, k) => {
      const t = f.tensors[i];
      return {
        name: t.name,
        ggmlType: plan.tensors[i].ggmlType,
        shape: t.shape,
        data: () => {
          if (k + 1 < order.length) f.prefetch(f.tensors[order[k + 1]]);
          const rep = calibrated?.get(t.name);
          if (rep !== undefined) return replacement(t, plan.tensors[i], rep);
          if (plan.tensors[i].convert && t.elements > 0) {
            const converted = convertTensor(f, t, plan.tensors[i], inPath);
            f.checkIntact();
            return converted;
          }
          return t.data;
        },
      };
    });

    let inputDone = 0, outputDone = 0;
    let written: Awaited<ReturnType<typeof writeGguf>>;
    try {
      written = await writeGguf(outPath, {
        metadata: outputMetadata(f.typedMetadata, plan.fileType),
        tensors: inputs,
        onProgress: (w) => {
          const i = order[w.tensorsDone - 1];
          // A tensor copied as is was read while being written: check it arrived whole.
          f.checkIntact();
          // The input's pages for this tensor are no longer needed: keep the resident set small.
          f.evict(f.tensors[i]);
          inputDone += f.tensors[i].bytes;
          outputDone += outBytes[i];
          opts.onProgress?.({
            tensorsDone: w.tensorsDone, tensors: w.tensors, inputBytesDone: inputDone, inputBytes,
            outputBytesDone: outputDone, elapsedMs: Date.now() - started, name: w.name,
          });
        },
      });
    } catch (e) {
      // A tensor copied as is goes from the mapping straight to write(2): if
      // the input shrank meanwhile, the kernel answers EFAULT, not SIGBUS. Name
      // the real cause.
      const now = (() => {
        try {
          return fs.statSync(inPath).size;
        } catch {
          return -1;
        }
      })();
      if (now < f.fileSize) throw new QkError('ERR_QK_LENGTH', `${inPath} shrank while being read (${f.fileSize} bytes when opened, ${now < 0 ? 'gone' : `${now} now`}); nothing was written to ${outPath}`);
      throw e;
    }

    const elements = f.tensors.reduce((s, t) => s + t.elements, 0);
    const after = outBytes.reduce((s, b) => s + b, 0);
    return {
      fileType: plan.fileType,
      inputFileBytes: f.fileSize,
      outputFileBytes: written.bytes,
      staleRemoved: written.staleRemoved,
      elements,
      tensorBytesBefore: inputBytes,
      tensorBytesAfter: after,
      bitsPerWeightBefore: elements > 0 ? (inputBytes * 8) / elements : 0,
      bitsPerWeightAfter: elements > 0 ? (after * 8) / elements : 0,
      seconds: (Date.now() - started) / 1000,
      tensors: f.tensors.map((t, i) => ({
        name: t.name,
        from: t.typeName,
        to: typeNameOf(plan.tensors[i].ggmlType),
        shape: t.shape,
        bytesBefore: t.bytes,
        bytesAfter: outBytes[i],
        ...(plan.tensors[i].reason ? { reason: plan.tensors[i].reason } : {}),
      })),
    };
  } finally {
    f.close();
  }
}

function replacement(t: GgufTensor, p: PlannedType, rep: NonNullable<ReturnType<CalibratedTensors['get']>>): Uint8Array {
  const to = ggmlType(p.ggmlType)!.weightType;
  if (rep.type === 'norm') {
    if (to === 'f32') return new Uint8Array(rep.values.buffer, rep.values.byteOffset, rep.values.byteLength);
    if (to === 'f16' || to === 'bf16') return quantize(rep.values, 1, rep.values.length, to).data;
    throw new QkError('ERR_QK_TYPE', `tensor '${t.name}': a rescaled norm cannot be stored as ${typeNameOf(p.ggmlType)}`);
  }
  if (rep.type !== to) throw new QkError('ERR_QK_TYPE', `tensor '${t.name}': calibration made ${rep.type}, the recipe wants ${typeNameOf(p.ggmlType)}`);
  return rep.data;
}

async function calibrate(f: GgufFile, planned: readonly number[], c: CalibrationOptions): Promise<CalibratedTensors> {
  if (c.method !== 'gptq' && c.method !== 'awq') throw new QkError('ERR_QK_ARG', `calibration method must be 'gptq' or 'awq'; got '${String(c.method)}'`);
  const { weights, hparams } = loadWeights(f, readHparams(f.metadata));
  const tok = Tokenizer.fromMetadata(f.metadata);
  const limit = c.tokens ?? 4096;
  if (!Number.isInteger(limit) || limit < 16) throw new QkError('ERR_QK_ARG', `calibration tokens must be an integer >= 16; got ${String(c.tokens)}`);
  const ids = tok.tokenize(c.text, { addBos: false });
  if (ids.length < 16) throw new QkError('ERR_QK_VALUE', `the calibration text is only ${ids.length} tokens; give at least 16`);
  const bos = tok.bos;
  let seqLen = Math.min(c.seqLen ?? 512, hparams.trainedContext, limit);
  const body = bos === null ? seqLen : seqLen - 1;
  const available = Math.min(ids.length, limit - (bos === null ? 0 : Math.ceil(limit / seqLen)));
  let count = Math.floor(available / body);
  let take = body;
  if (count === 0) {
    // shorter text than one sequence: one sequence of all of it
    count = 1;
    take = available;
    seqLen = take + (bos === null ? 0 : 1);
  }
  const sequences: Int32Array[] = [];
  for (let s = 0; s < count; s++) {
    const seq = new Int32Array(seqLen);
    let o = 0;
    if (bos !== null) seq[o++] = bos;
    for (let i = 0; i < take; i++) seq[o++] = ids[s * take + i];
    sequences.push(seq);
  }
  const byName = new Map(f.tensors.map((t, i) => [t.name, planned[i]]));
  return calibrateLlama(hparams, weights, sequences, {
    method: c.method,
    typeOf: (name) => {
      const id = byName.get(name);
      const wt = id === undefined ? null : ggmlType(id)?.weightType;
      if (!wt) throw new QkError('ERR_QK_TYPE', `tensor '${name}' has no type qkernels can write in this recipe`);
      return wt;
    },
    onProgress: c.onProgress,
  });
}

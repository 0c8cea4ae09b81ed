// Converts a GGUF file to another weight type or llama.cpp recipe, one tensor
// at a time: read (mapped), expand to f32, quantize, stream to the output,
// drop the input's pages, so memory holds a tensor or two, never the model.
import { dequantize, quantize, rowBytes } from '../index';
import { QkError } from '../errors';
import { TYPES } from '../types';
import { GgufError } from './errors';
import { openGguf } from './reader';
import { modelInfo, planQuantization, typeNameOf, visitOrder, type PlannedType, type QuantizeTarget } from './recipes';
import { ggmlType, type GgufFile, type GgufTensor, type GgufTensorInput, type GgufValue } from './types';
import { writeGguf } from './writer';

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

export interface ConvertOptions {
  type: QuantizeTarget;
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
          return plan.tensors[i].convert && t.elements > 0 ? convertTensor(f, t, plan.tensors[i], inPath) : t.data;
        },
      };
    });

    let inputDone = 0, outputDone = 0;
    const written = await writeGguf(outPath, {
      metadata: outputMetadata(f.typedMetadata, plan.fileType),
      tensors: inputs,
      onProgress: (w) => {
        const i = order[w.tensorsDone - 1];
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

    const elements = f.tensors.reduce((s, t) => s + t.elements, 0);
    const after = outBytes.reduce((s, b) => s + b, 0);
    return {
      fileType: plan.fileType,
      inputFileBytes: f.fileSize,
      outputFileBytes: written.bytes,
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

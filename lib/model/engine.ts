// What runs a batch of tokens through the model: the native decoder (one
// asynchronous call per batch, on the thread pool) or, where no addon loads,
// the TypeScript reference forward pass. The model above it owns tokens,
// sampling and positions; an engine only computes.
import { QkError } from '../errors';
import { impl } from '../runtime';
import { TYPES } from '../types';
import type { Backend, NativeLlama, NativeMatrix } from '../backend';
import type { QuantizedMatrix } from '../types';
import type { LlamaHparams } from './config';
import { ReferenceCache, ReferenceDecoder } from './reference';
import type { ModelWeights } from './weights';

/** Row i: token tokens[i] at positions[i] of caches[cacheIndex[i]]; logits for rows with wantLogits[i] = 1, in row order. */
export interface DecodeBatch {
  readonly tokens: Int32Array;
  readonly positions: Int32Array;
  readonly cacheIndex: Int32Array;
  readonly wantLogits: Uint8Array;
}

export interface Engine {
  readonly kind: 'native' | 'js';
  /** rows one decode() may carry */
  readonly maxBatch: number;
  createCache(context: number, f16: boolean): EngineCache;
  /** The batch's arrays must not change until it settles. */
  decode(caches: readonly EngineCache[], batch: DecodeBatch, logits: Float32Array): Promise<void>;
}

export interface EngineCache {
  readonly context: number;
  /** bytes of keys and values */
  readonly bytes: number;
}

function nativeMatrix(m: QuantizedMatrix): NativeMatrix {
  return { type: TYPES[m.type].ggmlId, rows: m.rows, cols: m.cols, data: m.data, layout: m.layout === 'interleaved16' ? 1 : 0 };
}

class NativeCache implements EngineCache {
  constructor(
    readonly handle: unknown,
    readonly context: number,
    readonly bytes: number,
  ) {}
}

class NativeEngine implements Engine {
  readonly kind = 'native';
  private readonly handle: unknown;
  private readonly handles: unknown[] = [];

  constructor(
    private readonly addon: NativeLlama,
    private readonly hp: LlamaHparams,
    w: ModelWeights,
    readonly maxBatch: number,
  ) {
    this.handle = addon.create(
      { ...hp, maxBatch },
      {
        tokEmbd: nativeMatrix(w.tokEmbd),
        output: nativeMatrix(w.output),
        outNorm: w.outNorm,
        ...(w.ropeFreqs ? { ropeFreqs: w.ropeFreqs } : {}),
        layers: w.layers.map((L) => ({
          attnNorm: L.attnNorm,
          ffnNorm: L.ffnNorm,
          wq: nativeMatrix(L.wq),
          wk: nativeMatrix(L.wk),
          wv: nativeMatrix(L.wv),
          wo: nativeMatrix(L.wo),
          gate: nativeMatrix(L.gate),
          up: nativeMatrix(L.up),
          down: nativeMatrix(L.down),
        })),
      },
    );
  }

  createCache(context: number, f16: boolean): EngineCache {
    const bytes = 2 * this.hp.layers * context * this.hp.kvHeads * this.hp.headDim * (f16 ? 2 : 4);
    return new NativeCache(this.addon.createCache(this.handle, context, f16), context, bytes);
  }

  decode(caches: readonly EngineCache[], b: DecodeBatch, logits: Float32Array): Promise<void> {
    // One array reused across calls: a decode step allocates no JS arrays.
    const hs = this.handles;
    hs.length = caches.length;
    for (let i = 0; i < caches.length; i++) hs[i] = (caches[i] as NativeCache).handle;
    return this.addon.decodeAsync(this.handle, hs, b.tokens, b.positions, b.cacheIndex, b.wantLogits, logits);
  }
}

class ReferenceEngine implements Engine {
  readonly kind = 'js';
  readonly maxBatch = 64;
  private readonly decoder: ReferenceDecoder;

  constructor(private readonly hp: LlamaHparams, w: ModelWeights, kernels?: Backend) {
    this.decoder = new ReferenceDecoder(hp, w, kernels);
  }

  createCache(context: number, f16: boolean): EngineCache {
    const c = new ReferenceCache(this.hp, context, f16);
    return Object.assign(c, { bytes: c.keys.byteLength + c.values.byteLength });
  }

  async decode(caches: readonly EngineCache[], b: DecodeBatch, logits: Float32Array): Promise<void> {
    const V = this.hp.vocab;
    let r = 0;
    for (let i = 0; i < b.tokens.length; i++) {
      const cache = caches[b.cacheIndex[i]] as unknown as ReferenceCache;
      if (!(cache instanceof ReferenceCache)) throw new QkError('ERR_QK_ARG', `batch row ${i} names no KV cache of this model`);
      const pos = b.positions[i];
      if (pos < 0 || pos >= cache.context) throw new QkError('ERR_QK_ARG', `position ${pos} is outside the context of ${cache.context}`);
      const tok = b.tokens[i];
      if (tok < 0 || tok >= V) throw new QkError('ERR_QK_ARG', `token ${tok} at batch row ${i} is outside the vocabulary [0, ${V})`);
      const out = b.wantLogits[i] ? logits.subarray(r * V, ++r * V) : null;
      this.decoder.decodeRow(cache, tok, pos, out);
    }
  }
}

export interface EngineOptions {
  /** 'native' or 'js' forces one; default: native where the addon loaded */
  engine?: 'native' | 'js';
  maxBatch?: number;
  /** @internal the kernels of the 'js' engine's matmuls (default the JS ones) */
  referenceKernels?: Backend;
}

export function createEngine(hp: LlamaHparams, w: ModelWeights, opts: EngineOptions = {}): Engine {
  const maxBatch = opts.maxBatch ?? 256;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) throw new QkError('ERR_QK_ARG', `batchSize must be an integer in [1, 4096]; got ${String(maxBatch)}`);
  const want = opts.engine;
  if (want !== undefined && want !== 'native' && want !== 'js') throw new QkError('ERR_QK_ARG', `engine must be 'native' or 'js'; got '${String(want)}'`);
  if (want === 'js' || (want === undefined && impl.llama === null)) return new ReferenceEngine(hp, w, opts.referenceKernels);
  if (impl.llama === null) throw new QkError('ERR_QK_BACKEND', "engine 'native' was asked for but the native addon is not loaded");
  return new NativeEngine(impl.llama, hp, w, maxBatch);
}

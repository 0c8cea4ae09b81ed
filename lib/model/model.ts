// loadModel(): a GGUF llama file as a Model that tokenizes, evaluates and
// generates. The file's tensors are used in place (mapped by default); each
// Sequence owns a KV cache allocated once for its context, so several
// sequences of one model decode independently. Everything per token runs in
// one engine call (native: on the thread pool, the event loop free); this
// side owns tokens, positions, sampling, stop strings and streaming.
import { QkError } from '../errors';
import { openGguf } from '../gguf/reader';
import type { GgufFile, GgufPlainValue } from '../gguf/types';
import type { Backend } from '../backend';
import type { WeightType } from '../types';
import { impl } from '../runtime';
import { readHparams, type LlamaHparams } from './config';
import { createEngine, type DecodeBatch, type Engine, type EngineCache } from './engine';
import { Sampler, type SamplingOptions } from './sampler';
import { StopMatcher } from './stop';
import { Tokenizer, type TokenizeOptions } from './tokenizer';
import { loadWeights, type ModelWeights } from './weights';

export interface LoadModelOptions {
  /** Map the file and compute on it in place (default true); false reads the tensors into memory. */
  mmap?: boolean;
  /** Threads of the kernel pool (process-wide, as setThreads). */
  threads?: number;
  /** Tokens each sequence holds (default: the model's trained context, at most 4096). */
  contextLength?: number;
  /** Only the tokenizer: for vocabulary files without weights. */
  vocabOnly?: boolean;
  /** KV cache element type (default 'f16', as llama.cpp). */
  kvType?: 'f16' | 'f32';
  /** Prompt tokens per engine call (default 256). */
  batchSize?: number;
  /** 'native' (default where the addon loads) or 'js' (the TypeScript reference forward pass). */
  engine?: 'native' | 'js';
  /**
   * Give q4_0 matmul weights the interleaved layout of prepare() at load
   * (default true: their matmuls run faster in it). It is a copy in memory,
   * made once; with mmap the file's pages of each such tensor are released
   * after copying, so resident memory stays about one copy of the weights.
   * false keeps every weight in the file's bytes, zero-copy.
   */
  interleave?: boolean;
  /** @internal the kernels of the 'js' engine's matmuls; tests pass the native ones */
  referenceKernels?: Backend;
}

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate at most (default: until the context is full). */
  maxTokens?: number;
  /** Generation ends before any of these strings; the string is not emitted. */
  stop?: readonly string[];
  /** Ends the generation within one decode step (finishReason 'abort'). */
  signal?: AbortSignal;
  /** For a string prompt: prepend BOS (default: the vocabulary's add_bos_token). */
  addBos?: boolean;
  /** For a string prompt: match special tokens' text (default false). */
  parseSpecial?: boolean;
  /** Keep generating after an end-of-generation token (default false). */
  ignoreEos?: boolean;
}

export interface GeneratedPiece {
  /** text completed by this token (may be '' while a UTF-8 character or a possible stop string is incomplete) */
  readonly text: string;
  readonly token: number;
}

/** A row of Model.step(): tokens appended to one sequence. */
export interface StepRow {
  readonly sequence: Sequence;
  readonly tokens: readonly number[];
}

export type FinishReason = 'eos' | 'length' | 'stop' | 'abort' | 'context';

export interface GenerationResult {
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  /** prompt tokens taken from the sequence's cache instead of evaluated again */
  readonly cachedPromptTokens: number;
  readonly generatedTokens: number;
  readonly promptMs: number;
  readonly generateMs: number;
  /** ms from the call to the first generated token */
  readonly timeToFirstTokenMs: number;
}

export interface Completion extends GenerationResult {
  readonly text: string;
  readonly tokens: number[];
}

export interface SequenceOptions {
  contextLength?: number;
}

function closedError(): QkError {
  return new QkError('ERR_QK_ARG', 'the model is closed');
}

function checkIds(ids: readonly number[], vocab: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new QkError('ERR_QK_ARG', `${what}[${i}] = ${String(t)} is not a token id in [0, ${vocab})`);
  }
}

export class Model {
  readonly path: string;
  readonly metadata: Readonly<Record<string, GgufPlainValue>>;
  readonly tokenizer: Tokenizer;
  /** null for a vocabulary-only model */
  readonly hparams: LlamaHparams | null;
  readonly contextLength: number;
  readonly kvType: 'f16' | 'f32';
  /** bytes of the file that the weights occupy */
  readonly fileSize: number;
  /** @internal */ readonly engine: Engine | null;
  private file: GgufFile | null;
  private inflight = 0;
  private closed = false;
  private defaultSeq: Sequence | null = null;

  /** @internal use loadModel() */
  constructor(path: string, file: GgufFile, tokenizer: Tokenizer, model: { hparams: LlamaHparams; weights: ModelWeights; engine: Engine } | null, contextLength: number, kvType: 'f16' | 'f32') {
    this.path = path;
    this.metadata = file.metadata;
    this.fileSize = file.fileSize;
    this.tokenizer = tokenizer;
    this.hparams = model?.hparams ?? null;
    this.engine = model?.engine ?? null;
    this.contextLength = contextLength;
    this.kvType = kvType;
    this.file = model ? file : null;
    this.weights = model?.weights ?? null;
  }

  /** @internal */ readonly weights: ModelWeights | null;

  /**
   * @internal After every step: a step that read past the end of a mapped
   * file that shrank under it read zeros (GgufFile.checkIntact), so its
   * logits are refused. One native call, nothing allocated.
   */
  checkFile(): void {
    this.file?.checkIntact();
  }

  get vocabOnly(): boolean {
    return this.engine === null;
  }

  tokenize(text: string, opts?: TokenizeOptions): number[] {
    if (typeof text !== 'string') throw new QkError('ERR_QK_ARG', `text must be a string; got ${typeof text}`);
    return this.tokenizer.tokenize(text, opts);
  }

  detokenize(ids: readonly number[], opts?: { removeSpecial?: boolean; unparseSpecial?: boolean }): string {
    if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) throw new QkError('ERR_QK_ARG', 'ids must be an array of token ids');
    checkIds(ids, this.tokenizer.vocabSize, 'ids');
    return this.tokenizer.detokenize(ids, opts);
  }

  /** A sequence of its own KV cache, for decoding several prompts concurrently. */
  createSequence(opts: SequenceOptions = {}): Sequence {
    const engine = this.requireEngine();
    const ctx = opts.contextLength ?? this.contextLength;
    if (!Number.isInteger(ctx) || ctx < 1 || ctx > 1 << 20) throw new QkError('ERR_QK_ARG', `contextLength must be an integer in [1, 2^20]; got ${String(ctx)}`);
    return new Sequence(this, engine, ctx);
  }

  /** The last position's logits of `ids` evaluated from an empty context (a new array). */
  async evaluate(ids: readonly number[]): Promise<Float32Array> {
    const seq = this.takeDefault();
    try {
      seq.reset();
      return (await seq.evaluate(ids)).slice();
    } finally {
      this.defaultSeq = seq;
    }
  }

  /** Streams the continuation of `prompt` (text or token ids) on the model's own sequence, reusing its cached prefix. */
  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedPiece, GenerationResult, undefined> {
    const seq = this.takeDefault();
    // The sequence's own generator, handed out as is: a yield* here would add
    // a second async-iterator round trip (~1 KB of promises) to every token.
    return seq.generateThen(prompt, opts, () => {
      this.defaultSeq = seq;
    });
  }

  /**
   * One batch for several sequences of this model: rows[i].tokens are
   * appended to rows[i].sequence, all of them in one native call (the weights
   * are read once for every row, as a server's decode step needs), and each
   * sequence's `logits` become its last token's. At most `maxStepTokens`
   * tokens in all; each sequence at most once, and not busy with another call.
   */
  async step(rows: readonly StepRow[]): Promise<void> {
    const engine = this.requireEngine();
    if (!Array.isArray(rows) || rows.length === 0) throw new QkError('ERR_QK_ARG', 'step needs a non-empty array of { sequence, tokens } rows');
    let total = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r === null || typeof r !== 'object' || !(r.sequence instanceof Sequence) || r.sequence.model !== this) {
        throw new QkError('ERR_QK_ARG', `step row ${i}: sequence must be a Sequence of this model`);
      }
      for (let j = 0; j < i; j++) if (rows[j].sequence === r.sequence) throw new QkError('ERR_QK_ARG', `step rows ${j} and ${i} name the same sequence`);
      r.sequence.checkStep(r.tokens);
      total += r.tokens.length;
    }
    if (total > engine.maxBatch) throw new QkError('ERR_QK_ARG', `a step carries at most ${engine.maxBatch} tokens (maxStepTokens); got ${total}`);
    const b = this.stepBatch(total, rows.length);
    const caches = this.stepCaches;
    caches.length = rows.length;
    let at = 0;
    for (let i = 0; i < rows.length; i++) {
      const { sequence, tokens } = rows[i];
      caches[i] = sequence.engineCache;
      const from = sequence.position;
      for (let j = 0; j < tokens.length; j++, at++) {
        b.tokens[at] = tokens[j];
        b.positions[at] = from + j;
        b.cacheIndex[at] = i;
        b.wantLogits[at] = j === tokens.length - 1 ? 1 : 0;
      }
    }
    for (const r of rows) r.sequence.setBusy(true);
    this.enter();
    try {
      await engine.decode(caches, b, this.stepLogits!);
      this.checkFile();
    } finally {
      this.leave();
      for (const r of rows) r.sequence.setBusy(false);
    }
    const V = this.hparams!.vocab;
    for (let i = 0; i < rows.length; i++) rows[i].sequence.commitStep(rows[i].tokens, this.stepLogits!.subarray(i * V, (i + 1) * V));
  }

  /** Tokens one step() may carry in all. */
  get maxStepTokens(): number {
    return this.requireEngine().maxBatch;
  }

  private stepArrays: DecodeBatch | null = null;
  private stepLogits: Float32Array | null = null;
  private readonly stepCaches: EngineCache[] = [];

  // Views of reused arrays: total rows, logits for `sequences` rows.
  private stepBatch(total: number, sequences: number): DecodeBatch {
    const max = this.requireEngine().maxBatch;
    if (this.stepArrays === null) {
      this.stepArrays = { tokens: new Int32Array(max), positions: new Int32Array(max), cacheIndex: new Int32Array(max), wantLogits: new Uint8Array(max) };
    }
    const V = this.hparams!.vocab;
    if (this.stepLogits === null || this.stepLogits.length < sequences * V) this.stepLogits = new Float32Array(Math.min(max, Math.max(8, sequences)) * V);
    const a = this.stepArrays;
    return total === max ? a : { tokens: a.tokens.subarray(0, total), positions: a.positions.subarray(0, total), cacheIndex: a.cacheIndex.subarray(0, total), wantLogits: a.wantLogits.subarray(0, total) };
  }

  /** generate() gathered: the whole text and its tokens. */
  async complete(prompt: string | readonly number[], opts: GenerateOptions = {}): Promise<Completion> {
    const seq = this.takeDefault();
    try {
      return await seq.complete(prompt, opts);
    } finally {
      this.defaultSeq = seq;
    }
  }

  /** Unmaps the file once running calls have settled; later calls throw. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.defaultSeq = null;
    if (this.inflight === 0) this.release();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.enter();
    try {
      return await fn();
    } finally {
      this.leave();
    }
  }

  // run()'s halves, for the per-token paths: no closure and no extra promise a token.
  /** @internal */
  enter(): void {
    if (this.closed) throw closedError();
    this.inflight++;
  }

  /** @internal */
  leave(): void {
    if (--this.inflight === 0 && this.closed) this.release();
  }

  private release(): void {
    const f = this.file;
    this.file = null;
    f?.close();
  }

  private requireEngine(): Engine {
    if (this.closed) throw closedError();
    if (!this.engine) throw new QkError('ERR_QK_ARG', `${this.path} was loaded with vocabOnly: it can tokenize, not evaluate`);
    return this.engine;
  }

  private takeDefault(): Sequence {
    this.requireEngine();
    if (this.defaultSeq === null) {
      if (this.defaultCreated) throw new QkError('ERR_QK_ARG', "the model's own sequence is busy with another call; use model.createSequence() for concurrent work");
      this.defaultSeq = this.createSequence();
      this.defaultCreated = true;
    }
    const s = this.defaultSeq;
    this.defaultSeq = null;
    return s;
  }

  private defaultCreated = false;
}

export class Sequence {
  readonly contextLength: number;
  private readonly cache: EngineCache;
  private readonly caches: EngineCache[];
  private readonly ids: Int32Array;
  private length = 0;
  private busy = false;
  private readonly logits: Float32Array;
  // A batch of one row, reused by every decode step.
  private readonly one: DecodeBatch;
  private chunk: DecodeBatch | null = null;

  /** @internal use model.createSequence() */
  constructor(
    readonly model: Model,
    private readonly engine: Engine,
    contextLength: number,
  ) {
    this.contextLength = contextLength;
    this.cache = engine.createCache(contextLength, model.kvType === 'f16');
    this.caches = [this.cache];
    this.ids = new Int32Array(contextLength);
    this.logits = new Float32Array(model.hparams!.vocab);
    this.one = { tokens: new Int32Array(1), positions: new Int32Array(1), cacheIndex: new Int32Array(1), wantLogits: Uint8Array.of(1) };
  }

  /** Tokens in the cache. */
  get position(): number {
    return this.length;
  }

  get tokens(): number[] {
    return Array.from(this.ids.subarray(0, this.length));
  }

  /** The last position's logits after evaluate() or model.step() (a buffer the sequence reuses). */
  get lastLogits(): Float32Array {
    return this.logits;
  }

  /** @internal */
  get engineCache(): EngineCache {
    return this.cache;
  }

  /** @internal model.step()'s checks of this sequence's row */
  checkStep(tokens: readonly number[]): void {
    if (this.busy) throw new QkError('ERR_QK_ARG', 'the sequence is busy with another call');
    this.checkPrompt(tokens, this.length);
  }

  /** @internal */
  setBusy(busy: boolean): void {
    this.busy = busy;
  }

  /** @internal model.step() appended `tokens`; `logits` are the last one's */
  commitStep(tokens: readonly number[], logits: Float32Array): void {
    for (let j = 0; j < tokens.length; j++) this.ids[this.length + j] = tokens[j];
    this.length += tokens.length;
    this.logits.set(logits);
  }

  /** Bytes of the KV cache. */
  get cacheBytes(): number {
    return this.cache.bytes;
  }

  /** Forgets the context (the cache is kept and overwritten). */
  reset(): void {
    this.length = 0;
  }

  /**
   * Appends `ids` to the context; resolves to the last position's logits (a
   * buffer the sequence reuses: copy it to keep it past the next call).
   */
  async evaluate(ids: readonly number[]): Promise<Float32Array> {
    if (this.busy) throw new QkError('ERR_QK_ARG', 'the sequence is busy with another call');
    this.checkPrompt(ids, this.length);
    const model = this.model;
    model.enter();
    this.busy = true;
    try {
      if (ids.length === 1) {
        // the decode step: the reused one-row batch, nothing allocated here
        const b = this.one;
        b.tokens[0] = ids[0];
        b.positions[0] = this.length;
        await this.engine.decode(this.caches, b, this.logits);
        this.model.checkFile();
        this.ids[this.length++] = ids[0];
      } else {
        await this.append(ids, 0);
      }
      return this.logits;
    } finally {
      this.busy = false;
      model.leave();
    }
  }

  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedPiece, GenerationResult, undefined> {
    return this.generateThen(prompt, opts, null);
  }

  /** @internal generate(), calling `done` when the generation ends, however it ends (or fails to start) */
  async *generateThen(prompt: string | readonly number[], opts: GenerateOptions, done: (() => void) | null): AsyncGenerator<GeneratedPiece, GenerationResult, undefined> {
    try {
      const model = this.model;
      const tokenizer = model.tokenizer;
      const vocab = model.hparams!.vocab;
      const t0 = performance.now();
      const ids = typeof prompt === 'string' ? tokenizer.tokenize(prompt, { addBos: opts.addBos, parseSpecial: opts.parseSpecial }) : Array.from(prompt);
      const maxTokens = opts.maxTokens ?? Infinity;
      if (maxTokens !== Infinity && (!Number.isInteger(maxTokens) || maxTokens < 0)) throw new QkError('ERR_QK_ARG', `maxTokens must be an integer >= 0; got ${String(maxTokens)}`);
      const sampler = new Sampler(vocab, opts);
      const stops = new StopMatcher(opts.stop ?? []);
      const signal = opts.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw new QkError('ERR_QK_ARG', 'signal must be an AbortSignal');
      if (this.busy) throw new QkError('ERR_QK_ARG', 'the sequence is busy with another call');
      if (ids.length === 0) throw new QkError('ERR_QK_ARG', 'the prompt has no tokens');
      this.checkPrompt(ids, 0);
      this.busy = true;
      let finishReason: FinishReason = 'length';
      let generated = 0;
      let cached = 0;
      let promptMs = 0;
      let ttft = 0;
      let tGen = 0;
      try {
        // Reuse the cached prefix; the last prompt token is always evaluated again for its logits.
        const limit = Math.min(this.length, ids.length - 1);
        while (cached < limit && this.ids[cached] === ids[cached]) cached++;
        this.length = cached;
        if (signal?.aborted) return this.result('abort', ids.length, cached, 0, 0, 0, 0);
        await model.run(() => this.append(ids, cached));
        promptMs = performance.now() - t0;
        tGen = performance.now();
        const decoder = tokenizer.createDecoder();
        // Primed with the prompt's last token, so the first piece is rendered as a continuation (SPM's leading space).
        decoder.push(ids[ids.length - 1]);
        decoder.flush();
        while (generated < maxTokens) {
          if (signal?.aborted) {
            finishReason = 'abort';
            break;
          }
          const tok = sampler.sample(this.logits, this.ids, this.length);
          if (!opts.ignoreEos && tokenizer.isEog(tok)) {
            finishReason = 'eos';
            break;
          }
          generated++;
          if (generated === 1) ttft = performance.now() - t0;
          const { emit, stopped } = stops.push(decoder.push(tok));
          if (emit.length > 0 || !stopped) yield { text: emit, token: tok };
          if (stopped) {
            finishReason = 'stop';
            break;
          }
          if (this.length >= this.contextLength) {
            finishReason = 'context';
            break;
          }
          if (generated >= maxTokens) break;
          const b = this.one;
          b.tokens[0] = tok;
          b.positions[0] = this.length;
          model.enter();
          try {
            await this.engine.decode(this.caches, b, this.logits);
            this.model.checkFile();
          } finally {
            model.leave();
          }
          this.ids[this.length++] = tok;
        }
        if (finishReason !== 'stop') {
          const rest = stops.flush() + (finishReason === 'abort' ? '' : decoder.flush());
          if (rest.length > 0) yield { text: rest, token: -1 };
        }
        return this.result(finishReason, ids.length, cached, generated, promptMs, performance.now() - tGen, ttft);
      } finally {
        this.busy = false;
      }
    } finally {
      done?.();
    }
  }

  async complete(prompt: string | readonly number[], opts: GenerateOptions = {}): Promise<Completion> {
    const it = this.generate(prompt, opts);
    let text = '';
    const tokens: number[] = [];
    for (;;) {
      const r = await it.next();
      if (r.done) return { ...r.value, text, tokens };
      text += r.value.text;
      if (r.value.token >= 0) tokens.push(r.value.token);
    }
  }

  private result(finishReason: FinishReason, promptTokens: number, cachedPromptTokens: number, generatedTokens: number, promptMs: number, generateMs: number, timeToFirstTokenMs: number): GenerationResult {
    return { finishReason, promptTokens, cachedPromptTokens, generatedTokens, promptMs, generateMs, timeToFirstTokenMs };
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new QkError('ERR_QK_ARG', 'the sequence is busy with another call');
    this.busy = true;
    try {
      return await this.model.run(fn);
    } finally {
      this.busy = false;
    }
  }

  private checkPrompt(ids: readonly number[], at: number): void {
    if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) throw new QkError('ERR_QK_ARG', 'ids must be an array of token ids');
    if (ids.length === 0) throw new QkError('ERR_QK_ARG', 'ids is empty: there is nothing to evaluate');
    checkIds(ids, this.model.hparams!.vocab, 'ids');
    if (at + ids.length > this.contextLength) {
      throw new QkError('ERR_QK_ARG', `${ids.length} tokens do not fit: the context holds ${this.contextLength} and ${at} are in use`);
    }
  }

  // ids[from..] at positions length.., in chunks of the engine's batch; the last row's logits land in this.logits.
  private async append(ids: readonly number[], from: number): Promise<void> {
    const max = this.engine.maxBatch;
    let b = this.chunk;
    if (b === null) {
      b = { tokens: new Int32Array(max), positions: new Int32Array(max), cacheIndex: new Int32Array(max), wantLogits: new Uint8Array(max) };
      this.chunk = b;
    }
    for (let i = from; i < ids.length; i += max) {
      const n = Math.min(max, ids.length - i);
      const last = i + n === ids.length;
      for (let r = 0; r < n; r++) {
        b.tokens[r] = ids[i + r];
        b.positions[r] = this.length + r;
        b.wantLogits[r] = last && r === n - 1 ? 1 : 0;
      }
      const view: DecodeBatch = n === max ? b : { tokens: b.tokens.subarray(0, n), positions: b.positions.subarray(0, n), cacheIndex: b.cacheIndex.subarray(0, n), wantLogits: b.wantLogits.subarray(0, n) };
      await this.engine.decode(this.caches, view, this.logits);
      this.model.checkFile();
      for (let r = 0; r < n; r++) this.ids[this.length + r] = ids[i + r];
      this.length += n;
    }
  }
}

// The types whose matmuls run faster interleaved (bench section C: q4_0 at
// batch 1, 1.4x on one thread); q8_0's layout gains nothing measurable there.
const INTERLEAVE_AT_LOAD: readonly WeightType[] = ['q4_0'];

/** Opens a GGUF llama model (or only its vocabulary). Throws a QkError for a file it cannot run, leaving nothing open. */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<Model> {
  if (typeof path !== 'string' || path.length === 0) throw new QkError('ERR_QK_ARG', 'path must be a non-empty string');
  if (typeof opts !== 'object' || opts === null) throw new QkError('ERR_QK_ARG', 'options must be an object');
  if (opts.threads !== undefined) {
    if (!Number.isInteger(opts.threads) || opts.threads < 1 || opts.threads > 256) throw new QkError('ERR_QK_ARG', `threads must be an integer in [1, 256]; got ${String(opts.threads)}`);
    impl.setThreads(opts.threads);
  }
  const kvType = opts.kvType ?? 'f16';
  if (kvType !== 'f16' && kvType !== 'f32') throw new QkError('ERR_QK_ARG', `kvType must be 'f16' or 'f32'; got '${String(kvType)}'`);
  const file = openGguf(path, { mmap: opts.mmap !== false });
  try {
    const tokenizer = Tokenizer.fromMetadata(file.metadata);
    if (opts.vocabOnly) {
      file.close();
      return new Model(path, file, tokenizer, null, 0, kvType);
    }
    if (opts.interleave !== undefined && typeof opts.interleave !== 'boolean') throw new QkError('ERR_QK_ARG', `interleave must be a boolean; got ${typeof opts.interleave}`);
    const { weights, hparams } = loadWeights(file, readHparams(file.metadata), { interleave: opts.interleave === false ? [] : INTERLEAVE_AT_LOAD });
    if (tokenizer.vocabSize !== hparams.vocab) {
      throw new QkError('ERR_QK_SHAPE', `${path}: the vocabulary has ${tokenizer.vocabSize} tokens but the model ${hparams.vocab} rows of embeddings`);
    }
    const ctx = opts.contextLength ?? Math.min(hparams.trainedContext, 4096);
    if (!Number.isInteger(ctx) || ctx < 1 || ctx > 1 << 20) throw new QkError('ERR_QK_ARG', `contextLength must be an integer in [1, 2^20]; got ${String(ctx)}`);
    const engine = createEngine(hparams, weights, { engine: opts.engine, maxBatch: opts.batchSize, referenceKernels: opts.referenceKernels });
    return new Model(path, file, tokenizer, { hparams, weights, engine }, ctx, kvType);
  } catch (e) {
    file.close();
    throw e;
  }
}

// Continuous batching on the public API: every active request owns a
// Sequence (a KV cache slot), and each turn of the loop is one model.step()
// carrying one token of every decoding request plus prompt chunks of the
// ones that just joined, so the weights are read once per step for all of
// them. Requests join and leave between steps. Sampling, stop strings and
// streaming are per request, on the JS side, as Sequence.generate does them.
import { QkError } from '../errors';
import type { FinishReason, Model, Sequence, StepRow } from '../model/model';
import type { Decoder } from '../model/tokenizer';
import { Sampler, type SamplingOptions } from '../model/sampler';
import { StopMatcher } from '../model/stop';

export interface Job {
  /** prompt token ids (at least one) */
  readonly prompt: readonly number[];
  readonly sampling: SamplingOptions;
  readonly maxTokens: number;
  readonly stop: readonly string[];
  readonly ignoreEos?: boolean;
  /** aborting ends the job at the next step, with finish reason 'abort' */
  readonly signal?: AbortSignal;
  /** each piece of text as it is decided (stop strings held back until they cannot match) */
  readonly onPiece?: (text: string) => void;
}

export interface JobResult {
  readonly text: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly finishReason: FinishReason;
  /** from submit() to the first token, queueing included */
  readonly timeToFirstTokenMs: number;
  readonly queuedMs: number;
}

/** submit() when every slot is busy and the queue is full; Retry-After material. */
export class QueueFullError extends QkError {
  constructor(readonly queued: number) {
    super('ERR_QK_ARG', `the server is busy: ${queued} requests are waiting for a slot`);
  }
}

export interface SchedulerOptions {
  /** requests decoded at once, each with its own KV cache (default 4) */
  parallel?: number;
  /** requests waiting for a slot beyond those (default 64); one more is a QueueFullError */
  maxQueue?: number;
  /** tokens of each slot's context (default the model's context length) */
  contextLength?: number;
  /** tokens one step carries at most, prompt chunks included (default and upper bound: model.maxStepTokens) */
  stepTokens?: number;
}

export interface StepStats {
  readonly rows: number;
  readonly tokens: number;
  readonly generated: number;
  readonly ms: number;
}

interface Active {
  readonly job: Job;
  readonly seq: Sequence;
  readonly sampler: Sampler;
  readonly stops: StopMatcher;
  readonly decoder: Decoder;
  readonly history: Int32Array;
  readonly submittedAt: number;
  readonly startedAt: number;
  readonly resolve: (r: JobResult) => void;
  readonly reject: (e: unknown) => void;
  /** prompt tokens already in the cache */
  fed: number;
  /** the sampled token the next step appends, -1 while the prompt is being fed */
  next: number;
  generated: number;
  text: string;
  ttft: number;
}

interface Waiting {
  readonly job: Job;
  readonly submittedAt: number;
  readonly resolve: (r: JobResult) => void;
  readonly reject: (e: unknown) => void;
}

export class Scheduler {
  readonly parallel: number;
  readonly maxQueue: number;
  readonly contextLength: number;
  readonly stepTokens: number;
  /** called after every step (metrics) */
  onStep: ((s: StepStats) => void) | null = null;
  private readonly free: Sequence[] = [];
  private readonly active: Active[] = [];
  private readonly queue: Waiting[] = [];
  private running = false;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(
    readonly model: Model,
    opts: SchedulerOptions = {},
  ) {
    this.parallel = intOption(opts.parallel, 4, 1, 256, 'parallel');
    this.maxQueue = intOption(opts.maxQueue, 64, 0, 1 << 20, 'maxQueue');
    this.contextLength = intOption(opts.contextLength, model.contextLength, 2, 1 << 20, 'contextLength');
    this.stepTokens = intOption(opts.stepTokens, model.maxStepTokens, 1, model.maxStepTokens, 'stepTokens');
    if (this.stepTokens < this.parallel) throw new QkError('ERR_QK_ARG', `stepTokens (${this.stepTokens}) must be at least parallel (${this.parallel}): every slot decodes a token a step`);
    for (let i = 0; i < this.parallel; i++) this.free.push(model.createSequence({ contextLength: this.contextLength }));
  }

  get activeCount(): number {
    return this.active.length;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /**
   * Queues `job`; the promise settles when it is done. Throws at once (no
   * promise) a QueueFullError when every slot is busy and the queue is full,
   * or a QkError for a job that cannot run (empty or too long a prompt, bad
   * sampling options, a scheduler that is draining).
   */
  submit(job: Job): Promise<JobResult> {
    if (this.closed) throw new QkError('ERR_QK_ARG', 'the server is shutting down');
    if (job.prompt.length === 0) throw new QkError('ERR_QK_ARG', 'the prompt has no tokens');
    if (job.prompt.length >= this.contextLength) {
      throw new QkError('ERR_QK_ARG', `the prompt has ${job.prompt.length} tokens; the context holds ${this.contextLength}, and a completion needs room for at least one more`);
    }
    if (this.free.length === 0 && this.queue.length >= this.maxQueue) throw new QueueFullError(this.queue.length);
    // Sampling options fail here, before the job takes a slot.
    new Sampler(this.model.hparams!.vocab, job.sampling);
    return new Promise<JobResult>((resolve, reject) => {
      const w: Waiting = { job, submittedAt: performance.now(), resolve, reject };
      if (job.maxTokens === 0) return resolve(this.emptyResult(w, 'length'));
      this.queue.push(w);
      // A request that gives up while it waits leaves the queue at once.
      job.signal?.addEventListener(
        'abort',
        () => {
          const i = this.queue.indexOf(w);
          if (i < 0) return;
          this.queue.splice(i, 1);
          resolve(this.emptyResult(w, 'abort'));
        },
        { once: true },
      );
      this.kick();
    });
  }

  /** Takes no more jobs; resolves when the running and queued ones are done. */
  drain(): Promise<void> {
    this.closed = true;
    if (!this.running && this.active.length === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.admit();
        this.dropAborted();
        if (this.active.length === 0) break;
        await this.step();
      }
    } finally {
      this.running = false;
      if (this.queue.length > 0 && this.free.length > 0) {
        this.kick();
      } else if (this.active.length === 0 && this.queue.length === 0) {
        const idle = this.idle;
        this.idle = [];
        for (const r of idle) r();
      }
    }
  }

  private admit(): void {
    while (this.free.length > 0 && this.queue.length > 0) {
      const w = this.queue.shift()!;
      if (w.job.signal?.aborted) {
        w.resolve(this.emptyResult(w, 'abort'));
        continue;
      }
      const seq = this.free.pop()!;
      seq.reset();
      const tokenizer = this.model.tokenizer;
      const decoder = tokenizer.createDecoder();
      // Primed with the prompt's last token, so the first piece renders as a continuation (as generate() does).
      decoder.push(w.job.prompt[w.job.prompt.length - 1]);
      decoder.flush();
      const history = new Int32Array(this.contextLength);
      history.set(w.job.prompt);
      this.active.push({
        job: w.job,
        seq,
        sampler: new Sampler(this.model.hparams!.vocab, w.job.sampling),
        stops: new StopMatcher(w.job.stop),
        decoder,
        history,
        submittedAt: w.submittedAt,
        startedAt: performance.now(),
        resolve: w.resolve,
        reject: w.reject,
        fed: 0,
        next: -1,
        generated: 0,
        text: '',
        ttft: 0,
      });
    }
  }

  private emptyResult(w: Waiting, finishReason: FinishReason): JobResult {
    return { text: '', promptTokens: w.job.prompt.length, completionTokens: 0, finishReason, timeToFirstTokenMs: 0, queuedMs: performance.now() - w.submittedAt };
  }

  private dropAborted(): void {
    for (let i = this.active.length - 1; i >= 0; i--) {
      const a = this.active[i];
      if (a.job.signal?.aborted) this.finish(i, 'abort');
    }
  }

  private async step(): Promise<void> {
    const rows: StepRow[] = [];
    const owners: Active[] = [];
    let budget = this.stepTokens;
    // One token for every decoding request first, then prompt chunks in the room left.
    for (const a of this.active) {
      if (a.next < 0) continue;
      rows.push({ sequence: a.seq, tokens: [a.next] });
      owners.push(a);
      budget--;
    }
    for (const a of this.active) {
      if (a.next >= 0 || budget === 0) continue;
      const n = Math.min(budget, a.job.prompt.length - a.fed);
      rows.push({ sequence: a.seq, tokens: a.job.prompt.slice(a.fed, a.fed + n) });
      owners.push(a);
      budget -= n;
    }
    const t0 = performance.now();
    try {
      await this.model.step(rows);
    } catch (e) {
      // A failed step leaves no request in a known state: end those it carried.
      for (const a of owners) {
        const i = this.active.indexOf(a);
        if (i >= 0) this.fail(i, e);
      }
      return;
    }
    let generated = 0;
    for (let r = 0; r < rows.length; r++) {
      const a = owners[r];
      if (a.next >= 0) {
        a.history[a.seq.position - 1] = a.next;
        a.next = -1;
      } else {
        a.fed += rows[r].tokens.length;
        if (a.fed < a.job.prompt.length) continue;
      }
      generated++;
      this.advance(a);
    }
    this.onStep?.({ rows: rows.length, tokens: this.stepTokens - budget, generated, ms: performance.now() - t0 });
  }

  // The sequence's logits are fresh: sample, stream, and finish or queue the token for the next step.
  private advance(a: Active): void {
    const i = this.active.indexOf(a);
    if (a.job.signal?.aborted) return this.finish(i, 'abort');
    let tok: number;
    try {
      tok = a.sampler.sample(a.seq.lastLogits, a.history, a.seq.position);
    } catch (e) {
      return this.fail(i, e);
    }
    if (!a.job.ignoreEos && this.model.tokenizer.isEog(tok)) return this.finish(i, 'eos');
    a.generated++;
    if (a.generated === 1) a.ttft = performance.now() - a.submittedAt;
    const { emit, stopped } = a.stops.push(a.decoder.push(tok));
    if (emit.length > 0) this.emit(a, emit);
    if (stopped) return this.finish(i, 'stop');
    if (a.seq.position >= this.contextLength) return this.finish(i, 'context');
    if (a.generated >= a.job.maxTokens) return this.finish(i, 'length');
    a.next = tok;
  }

  private emit(a: Active, text: string): void {
    a.text += text;
    try {
      a.job.onPiece?.(text);
    } catch {
      // a listener's failure is the listener's business; the job goes on
    }
  }

  private finish(i: number, reason: FinishReason): void {
    const a = this.active[i];
    if (reason !== 'stop') {
      const rest = a.stops.flush() + (reason === 'abort' ? '' : a.decoder.flush());
      if (rest.length > 0) this.emit(a, rest);
    }
    this.release(i);
    a.resolve({
      text: a.text,
      promptTokens: a.job.prompt.length,
      completionTokens: a.generated,
      finishReason: reason,
      timeToFirstTokenMs: a.ttft,
      queuedMs: a.startedAt - a.submittedAt,
    });
  }

  private fail(i: number, e: unknown): void {
    const a = this.active[i];
    this.release(i);
    a.reject(e);
  }

  private release(i: number): void {
    const a = this.active[i];
    this.active.splice(i, 1);
    this.free.push(a.seq);
  }
}

function intOption(v: number | undefined, dflt: number, lo: number, hi: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < lo || v > hi) throw new QkError('ERR_QK_ARG', `${name} must be an integer in [${lo}, ${hi}]; got ${String(v)}`);
  return v;
}

// An OpenAI-compatible HTTP server on the public API: fastify for HTTP and
// body validation, the Scheduler for continuous batching, the model's chat
// template for chat prompts, prom-client for /metrics. Meant to be read as
// the example of embedding qkernels in a server.
import { randomBytes } from 'crypto';
import * as path from 'path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { QkError } from '../errors';
import type { FinishReason, Model } from '../model/model';
import type { SamplingOptions } from '../model/sampler';
import { ChatTemplate, type ChatMessage } from './chat';
import { ServerMetrics } from './metrics';
import { QueueFullError, Scheduler, type JobResult, type SchedulerOptions } from './scheduler';

export interface ServerOptions extends SchedulerOptions {
  /** the id /v1/models lists and responses carry (default: the file's name) */
  modelName?: string;
  /** a Jinja chat template instead of the file's tokenizer.chat_template */
  chatTemplate?: string;
  /** largest request body in bytes (default 4 MiB) */
  bodyLimit?: number;
  /** fastify's logger (default off) */
  logger?: boolean;
}

export interface QkServer {
  readonly app: FastifyInstance;
  readonly scheduler: Scheduler;
  readonly metrics: ServerMetrics;
  /** Answers new completion requests with 503, lets the running and queued ones finish, then closes the HTTP server. */
  shutdown(): Promise<void>;
}

// ---- request bodies ----

const stopSchema = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 4 }, { type: 'null' }] };
const samplingProperties = {
  model: { type: 'string' },
  max_tokens: { type: ['integer', 'null'], minimum: 0 },
  max_completion_tokens: { type: ['integer', 'null'], minimum: 0 },
  temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
  top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
  top_k: { type: ['integer', 'null'], minimum: 0 },
  min_p: { type: ['number', 'null'], minimum: 0, maximum: 1 },
  repeat_penalty: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 10 },
  frequency_penalty: { type: ['number', 'null'], minimum: -2, maximum: 2 },
  presence_penalty: { type: ['number', 'null'], minimum: -2, maximum: 2 },
  seed: { type: ['integer', 'null'], minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  stop: stopSchema,
  stream: { type: ['boolean', 'null'] },
  stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
  n: { type: ['integer', 'null'], minimum: 1, maximum: 1 },
  ignore_eos: { type: 'boolean' },
};

const completionBody = {
  type: 'object',
  required: ['prompt'],
  properties: {
    ...samplingProperties,
    prompt: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 }] },
  },
};

const chatBody = {
  type: 'object',
  required: ['messages'],
  properties: {
    ...samplingProperties,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role', 'content'],
        properties: {
          role: { type: 'string', enum: ['system', 'user', 'assistant', 'developer', 'tool'] },
          content: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'text' }, text: { type: 'string' } } } }] },
        },
      },
    },
  },
};

interface SamplingBody {
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  repeat_penalty?: number | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  ignore_eos?: boolean;
}

interface CompletionBody extends SamplingBody {
  prompt: string | number[] | [string];
}

interface ChatBody extends SamplingBody {
  messages: { role: string; content: string | { type: 'text'; text: string }[] }[];
}

// ---- OpenAI shapes ----

function openAiError(message: string, type = 'invalid_request_error', code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

function finishReason(r: FinishReason): 'stop' | 'length' {
  return r === 'length' || r === 'context' ? 'length' : 'stop';
}

function usage(r: JobResult) {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}

function sampling(b: SamplingBody): SamplingOptions {
  const o: { -readonly [K in keyof SamplingOptions]: SamplingOptions[K] } = {};
  if (b.temperature != null) o.temperature = b.temperature;
  if (b.top_p != null) o.topP = b.top_p;
  if (b.top_k != null) o.topK = b.top_k;
  if (b.min_p != null) o.minP = b.min_p;
  if (b.repeat_penalty != null) o.repeatPenalty = b.repeat_penalty;
  if (b.frequency_penalty != null) o.frequencyPenalty = b.frequency_penalty;
  if (b.presence_penalty != null) o.presencePenalty = b.presence_penalty;
  if (b.seed != null) o.seed = b.seed;
  return o;
}

function stops(b: SamplingBody): string[] {
  if (b.stop == null) return [];
  return typeof b.stop === 'string' ? (b.stop.length > 0 ? [b.stop] : []) : b.stop;
}

export async function createServer(model: Model, opts: ServerOptions = {}): Promise<QkServer> {
  const scheduler = new Scheduler(model, opts);
  const metrics = new ServerMetrics(scheduler);
  const modelName = opts.modelName ?? path.basename(model.path);
  const created = Math.floor(Date.now() / 1000);
  // The chat endpoint answers 400 with the reason when the model has no template.
  let chat: ChatTemplate | null = null;
  let chatError = '';
  try {
    chat = new ChatTemplate(model, opts.chatTemplate);
  } catch (e) {
    if (opts.chatTemplate !== undefined) throw e;
    chatError = (e as Error).message;
  }
  let draining = false;

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 4 * 2 ** 20,
    // strict bodies: no type coercion, so "max_tokens": "5" is a 400 as with OpenAI
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const endpoint = req.routeOptions.url ?? 'unknown';
    if (err.validation) {
      metrics.requests.inc({ endpoint, status: 400 });
      return reply.code(400).send(openAiError(`invalid request body: ${err.message}`));
    }
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : err instanceof QkError ? 400 : 500;
    metrics.requests.inc({ endpoint, status });
    return reply.code(status).send(openAiError(status === 500 ? `internal error: ${err.message}` : err.message, status === 500 ? 'server_error' : 'invalid_request_error'));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(openAiError(`no route ${req.method} ${req.url}`, 'invalid_request_error', 'not_found')));

  app.get('/health', async () => ({ status: draining ? 'shutting down' : 'ok', slots_idle: scheduler.parallel - scheduler.activeCount, slots_processing: scheduler.activeCount, queued: scheduler.queuedCount }));
  app.get('/v1/models', async () => ({ object: 'list', data: [{ id: modelName, object: 'model', created, owned_by: 'qkernels' }] }));
  app.get('/metrics', async (_req, reply) => {
    reply.header('Content-Type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // One completion, streamed or not; `render` shapes each piece and the end for the endpoint.
  const complete = async (
    reply: FastifyReply,
    endpoint: string,
    prompt: number[],
    body: SamplingBody,
    defaultMaxTokens: number,
    shape: { id: string; piece(text: string): object; first?(): object; last(r: JobResult): object; whole(r: JobResult): object },
  ) => {
    const t0 = performance.now();
    if (draining) {
      metrics.requests.inc({ endpoint, status: 503 });
      return reply.code(503).header('Retry-After', '5').send(openAiError('the server is shutting down', 'server_error'));
    }
    const room = scheduler.contextLength - prompt.length;
    const maxTokens = Math.min(body.max_tokens ?? body.max_completion_tokens ?? defaultMaxTokens, Math.max(0, room));
    const ac = new AbortController();
    // A client that goes away frees its slot at the next step.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    const stream = body.stream === true;
    let started = false;
    const write = (o: object) => reply.raw.write(`data: ${JSON.stringify(o)}\n\n`);
    const job = {
      prompt,
      sampling: sampling(body),
      maxTokens,
      stop: stops(body),
      ignoreEos: body.ignore_eos === true,
      signal: ac.signal,
      onPiece: stream
        ? (text: string) => {
            if (!reply.raw.writableEnded) write(shape.piece(text));
          }
        : undefined,
    };
    let done: Promise<JobResult>;
    try {
      done = scheduler.submit(job);
    } catch (e) {
      return fail(reply, endpoint, e);
    }
    let result: JobResult;
    if (!stream) {
      try {
        result = await done;
      } catch (e) {
        return fail(reply, endpoint, e);
      }
      metrics.requests.inc({ endpoint, status: 200 });
      observe(result, endpoint, t0);
      return reply.send(shape.whole(result));
    }
    try {
      reply.hijack();
      reply.raw.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      started = true;
      if (shape.first) write(shape.first());
      result = await done;
      if (!reply.raw.writableEnded) {
        write(shape.last(result));
        if (body.stream_options?.include_usage) write({ id: shape.id, object: 'usage', created: Math.floor(Date.now() / 1000), model: modelName, choices: [], usage: usage(result) });
        reply.raw.end('data: [DONE]\n\n');
      }
      metrics.requests.inc({ endpoint, status: 200 });
      observe(result, endpoint, t0);
    } catch (e) {
      if (!started) return fail(reply, endpoint, e);
      // Headers are out: say it in the stream, then end it.
      metrics.requests.inc({ endpoint, status: 500 });
      if (!reply.raw.writableEnded) reply.raw.end(`data: ${JSON.stringify(openAiError((e as Error).message, 'server_error'))}\n\ndata: [DONE]\n\n`);
    }
  };

  const fail = (reply: FastifyReply, endpoint: string, e: unknown) => {
    if (e instanceof QueueFullError) {
      metrics.requests.inc({ endpoint, status: 429 });
      return reply.code(429).header('Retry-After', '1').send(openAiError(e.message, 'rate_limit_error', 'queue_full'));
    }
    const status = e instanceof QkError ? 400 : 500;
    metrics.requests.inc({ endpoint, status });
    return reply.code(status).send(openAiError((e as Error).message, status === 400 ? 'invalid_request_error' : 'server_error'));
  };

  const observe = (r: JobResult, endpoint: string, t0: number) => {
    metrics.promptTokens.inc(r.promptTokens);
    if (r.completionTokens > 0) metrics.ttftSeconds.observe(r.timeToFirstTokenMs / 1000);
    metrics.requestSeconds.observe({ endpoint }, (performance.now() - t0) / 1000);
  };

  const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;

  app.post('/v1/completions', { schema: { body: completionBody } }, async (req, reply) => {
    const body = req.body as CompletionBody;
    const prompt = typeof body.prompt === 'string' ? model.tokenize(body.prompt) : typeof body.prompt[0] === 'string' ? model.tokenize(body.prompt[0] as string) : (body.prompt as number[]);
    const vocab = model.hparams!.vocab;
    for (const t of prompt) if (t >= vocab) throw new QkError('ERR_QK_ARG', `prompt token ${t} is outside the vocabulary [0, ${vocab})`);
    const id = newId('cmpl');
    const now = () => Math.floor(Date.now() / 1000);
    const choice = (text: string, reason: 'stop' | 'length' | null) => ({ text, index: 0, logprobs: null, finish_reason: reason });
    return complete(reply, '/v1/completions', prompt, body, 16, {
      id,
      piece: (text) => ({ id, object: 'text_completion', created: now(), model: modelName, choices: [choice(text, null)] }),
      last: (r) => ({ id, object: 'text_completion', created: now(), model: modelName, choices: [choice('', finishReason(r.finishReason))] }),
      whole: (r) => ({ id, object: 'text_completion', created: now(), model: modelName, choices: [choice(r.text, finishReason(r.finishReason))], usage: usage(r) }),
    });
  });

  app.post('/v1/chat/completions', { schema: { body: chatBody } }, async (req, reply) => {
    if (chat === null) throw new QkError('ERR_QK_ARG', chatError);
    const body = req.body as ChatBody;
    const messages: ChatMessage[] = body.messages.map((m) => ({ role: m.role, content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('') }));
    const prompt = chat.tokenize(chat.render(messages));
    const id = newId('chatcmpl');
    const now = () => Math.floor(Date.now() / 1000);
    const chunk = (delta: object, reason: 'stop' | 'length' | null) => ({ id, object: 'chat.completion.chunk', created: now(), model: modelName, choices: [{ index: 0, delta, logprobs: null, finish_reason: reason }] });
    return complete(reply, '/v1/chat/completions', prompt, body, Infinity, {
      id,
      first: () => chunk({ role: 'assistant', content: '' }, null),
      piece: (text) => chunk({ content: text }, null),
      last: (r) => chunk({}, finishReason(r.finishReason)),
      whole: (r) => ({
        id,
        object: 'chat.completion',
        created: now(),
        model: modelName,
        choices: [{ index: 0, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: finishReason(r.finishReason) }],
        usage: usage(r),
      }),
    });
  });

  await app.ready();
  return {
    app,
    scheduler,
    metrics,
    async shutdown() {
      draining = true;
      await scheduler.drain();
      await app.close();
    },
  };
}

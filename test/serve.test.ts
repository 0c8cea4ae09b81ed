// The OpenAI-compatible server on a tiny model that llama.cpp made (a real
// SentencePiece vocabulary), over real HTTP on 127.0.0.1: answers against
// model.complete() with the same options, streaming, chat templates, bad
// bodies, a full queue, clients that disconnect, and shutdown.
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../lib/model/model';
import { createServer, type QkServer } from '../lib/serve/app';

const MODEL = path.join(__dirname, 'fixtures', 'gguf', 'golden-q4_0.gguf');
// ChatML, as many GGUF files carry it
const CHATML = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

let model: Model;

beforeAll(async () => {
  model = await loadModel(MODEL, { threads: 2 });
});
afterAll(() => model.close());

async function start(opts: Parameters<typeof createServer>[1] = {}): Promise<{ server: QkServer; url: string }> {
  const server = await createServer(model, opts);
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  return { server, url };
}

function post(url: string, route: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), signal });
}

/** The data lines of an SSE body, parsed (the final [DONE] as the string). */
function events(text: string): unknown[] {
  const out: unknown[] = [];
  for (const block of text.split('\n\n')) {
    if (block.length === 0) continue;
    expect(block.startsWith('data: ')).toBe(true);
    const data = block.slice(6);
    out.push(data === '[DONE]' ? data : JSON.parse(data));
  }
  return out;
}

interface CompletionJson {
  object: string;
  choices: { text: string; finish_reason: string; index: number }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

describe('qkernels serve', () => {
  let s: { server: QkServer; url: string };
  beforeAll(async () => {
    s = await start({ parallel: 4, chatTemplate: CHATML });
  });
  afterAll(async () => {
    await s.server.shutdown();
  });

  it('GET /v1/models, /health and /metrics', async () => {
    const models = (await (await fetch(s.url + '/v1/models')).json()) as { object: string; data: { id: string }[] };
    expect(models.object).toBe('list');
    expect(models.data.map((m) => m.id)).toEqual(['golden-q4_0.gguf']);
    const health = (await (await fetch(s.url + '/health')).json()) as { status: string; slots_idle: number };
    expect(health).toMatchObject({ status: 'ok', slots_idle: 4 });
    const metrics = await (await fetch(s.url + '/metrics')).text();
    for (const name of ['qkernels_requests_total', 'qkernels_generated_tokens_total', 'qkernels_queue_depth', 'qkernels_tokens_per_second', 'qkernels_request_duration_seconds', 'qkernels_time_to_first_token_seconds', 'qkernels_nodejs_eventloop_lag_p99_seconds', 'qkernels_process_resident_memory_bytes']) {
      expect(metrics).toContain(name);
    }
  });

  it.each([
    { name: 'greedy', opts: { temperature: 0 }, body: { temperature: 0 } },
    { name: 'sampled, seeded', opts: { temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, seed: 7 }, body: { temperature: 0.9, top_k: 20, top_p: 0.9, min_p: 0.02, seed: 7 } },
  ])('POST /v1/completions ($name) answers what model.complete() gives', async ({ opts, body }) => {
    const prompt = 'Once upon a time';
    const want = await model.complete(prompt, { ...opts, maxTokens: 24 });
    const res = await post(s.url, '/v1/completions', { prompt, max_tokens: 24, ...body });
    expect(res.status).toBe(200);
    const got = (await res.json()) as CompletionJson;
    expect(got.object).toBe('text_completion');
    expect(got.choices[0].text).toBe(want.text);
    expect(got.choices[0].finish_reason).toBe(want.finishReason === 'length' ? 'length' : 'stop');
    expect(got.usage).toEqual({ prompt_tokens: want.promptTokens, completion_tokens: want.generatedTokens, total_tokens: want.promptTokens + want.generatedTokens });
  });

  it('streams the same text as server-sent events, ending in [DONE]', async () => {
    const body = { prompt: 'The little dog', max_tokens: 20, temperature: 0.8, seed: 3 };
    const whole = (await (await post(s.url, '/v1/completions', body)).json()) as CompletionJson;
    const res = await post(s.url, '/v1/completions', { ...body, stream: true, stream_options: { include_usage: true } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const ev = events(await res.text());
    expect(ev[ev.length - 1]).toBe('[DONE]');
    const chunks = ev.slice(0, -1) as { object: string; choices: { text: string; finish_reason: string | null }[]; usage?: unknown }[];
    const usage = chunks.pop()!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual(whole.usage);
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe(whole.choices[0].text);
    expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null && c.object === 'text_completion')).toBe(true);
  });

  it('stop strings end the text before them', async () => {
    const base = (await (await post(s.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 24, temperature: 0 })).json()) as CompletionJson;
    const text = base.choices[0].text;
    const stop = text.slice(6, 9);
    expect(stop.length).toBe(3);
    const got = (await (await post(s.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 24, temperature: 0, stop })).json()) as CompletionJson;
    expect(got.choices[0].text).toBe(text.slice(0, text.indexOf(stop)));
    expect(got.choices[0].finish_reason).toBe('stop');
  });

  it('POST /v1/chat/completions renders the chat template and answers as model.complete() on that prompt', async () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Say hi.' },
    ];
    const rendered = '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n';
    const want = await model.complete(model.tokenize(rendered, { parseSpecial: true }), { temperature: 0, maxTokens: 16 });
    const got = (await (await post(s.url, '/v1/chat/completions', { messages, max_tokens: 16, temperature: 0 })).json()) as {
      object: string;
      choices: { message: { role: string; content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number };
    };
    expect(got.object).toBe('chat.completion');
    expect(got.choices[0].message).toEqual({ role: 'assistant', content: want.text });
    expect(got.usage.prompt_tokens).toBe(want.promptTokens);
    const res = await post(s.url, '/v1/chat/completions', { messages, max_tokens: 16, temperature: 0, stream: true });
    const ev = events(await res.text());
    const chunks = ev.slice(0, -1) as { object: string; choices: { delta: { role?: string; content?: string } }[] }[];
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(want.text);
  });

  it('concurrent requests share steps and each gets its own answer', async () => {
    const prompts = ['Once upon a time', 'The little dog', 'In a far land', 'Hello', 'A cat sat', 'Rain fell'];
    const solo: string[] = [];
    for (const p of prompts) solo.push(((await (await post(s.url, '/v1/completions', { prompt: p, max_tokens: 12, temperature: 0 })).json()) as CompletionJson).choices[0].text);
    const together = await Promise.all(prompts.map(async (p) => ((await (await post(s.url, '/v1/completions', { prompt: p, max_tokens: 12, temperature: 0 })).json()) as CompletionJson).choices[0].text));
    // Up to 4 decode rows a step run the same per-row kernels as one row: the same greedy text.
    expect(together).toEqual(solo);
  });

  it.each([
    ['not JSON', '{"prompt": "x",'],
    ['no prompt', { max_tokens: 3 }],
    ['a string for a number', { prompt: 'x', max_tokens: '3' }],
    ['temperature out of range', { prompt: 'x', temperature: 3 }],
    ['top_p of 0', { prompt: 'x', top_p: 0 }],
    ['n > 1', { prompt: 'x', n: 2 }],
    ['a negative max_tokens', { prompt: 'x', max_tokens: -1 }],
    ['five stop strings', { prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }],
    ['a token outside the vocabulary', { prompt: [1, 999999] }],
    ['an empty token list', { prompt: [] }],
    ['a prompt longer than the context', { prompt: Array.from({ length: 600 }, () => 5) }],
  ])('answers 400 with an OpenAI error body for %s', async (_name, body) => {
    const res = await post(s.url, '/v1/completions', body);
    expect(res.status).toBe(400);
    const e = (await res.json()) as { error: { message: string; type: string } };
    expect(e.error.type).toBe('invalid_request_error');
    expect(e.error.message.length).toBeGreaterThan(5);
    // and the server still answers
    expect((await post(s.url, '/v1/completions', { prompt: 'x', max_tokens: 1 })).status).toBe(200);
  });

  it('bad chat bodies are 400s too', async () => {
    for (const body of [{ messages: [] }, { messages: [{ role: 'wizard', content: 'x' }] }, { messages: [{ role: 'user' }] }, { messages: 'hi' }]) {
      const res = await post(s.url, '/v1/chat/completions', body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    }
    expect((await fetch(s.url + '/v1/nothing')).status).toBe(404);
  });
});

describe('qkernels serve: queue, disconnects, shutdown', () => {
  it('a model without a chat template answers chat requests with a 400 that says so', async () => {
    const s = await start();
    try {
      const res = await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/chat_template/);
    } finally {
      await s.server.shutdown();
    }
  });

  it('a full queue answers 429 with Retry-After', async () => {
    const s = await start({ parallel: 1, maxQueue: 1 });
    try {
      const long = { prompt: 'Once upon a time', max_tokens: 400, temperature: 0, ignore_eos: true };
      const first = post(s.url, '/v1/completions', long);
      const second = post(s.url, '/v1/completions', long);
      // wait until both are in (one decoding, one queued)
      for (let i = 0; i < 200 && s.server.scheduler.activeCount + s.server.scheduler.queuedCount < 2; i++) await new Promise((r) => setTimeout(r, 5));
      const third = await post(s.url, '/v1/completions', long);
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toBe('1');
      expect(((await third.json()) as { error: { type: string } }).error.type).toBe('rate_limit_error');
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
    } finally {
      await s.server.shutdown();
    }
  });

  it('a client that disconnects mid-stream frees its slot', async () => {
    const s = await start({ parallel: 1 });
    try {
      const ac = new AbortController();
      const res = await post(s.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 500, ignore_eos: true, stream: true }, ac.signal);
      const reader = res.body!.getReader();
      await reader.read();
      expect(s.server.scheduler.activeCount).toBe(1);
      ac.abort();
      for (let i = 0; i < 200 && s.server.scheduler.activeCount > 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(s.server.scheduler.activeCount).toBe(0);
      // the slot serves the next request
      const next = (await (await post(s.url, '/v1/completions', { prompt: 'Hello', max_tokens: 3, temperature: 0 })).json()) as CompletionJson;
      expect(next.usage.completion_tokens).toBe(3);
    } finally {
      await s.server.shutdown();
    }
  });

  it('shutdown finishes the running requests, answers new ones 503, then closes', async () => {
    const s = await start({ parallel: 1 });
    const running = post(s.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 300, temperature: 0, ignore_eos: true });
    for (let i = 0; i < 200 && s.server.scheduler.activeCount === 0; i++) await new Promise((r) => setTimeout(r, 2));
    const closing = s.server.shutdown();
    const late = await post(s.url, '/v1/completions', { prompt: 'x', max_tokens: 2 }).catch((e: Error) => e);
    if (late instanceof Response) expect(late.status).toBe(503);
    const r = await running;
    expect(r.status).toBe(200);
    expect(((await r.json()) as CompletionJson).usage.completion_tokens).toBe(300);
    await closing;
    await expect(fetch(s.url + '/health')).rejects.toThrow();
  });
});

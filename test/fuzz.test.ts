// Structure-aware fuzzing (fast-check) of the parsers of untrusted input that
// the GGUF and safetensors fuzz suites do not cover: the tokenizer's input
// text, the checkpoint's quantization config, and the server's request bodies.
// Every input must end in a correct result or a QkError (the server: a 4xx
// with an OpenAI-style error body), never a crash, another exception, a 5xx
// or a hang. QKERNELS_FUZZ_RUNS sets the inputs per parser (CI: the default;
// `npm run fuzz`: 100,000).
import * as fc from 'fast-check';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQuantizationConfig } from '../lib/checkpoint';
import { QkError } from '../lib/errors';
import { loadModel, type Model } from '../lib/model/model';
import { createServer, type QkServer } from '../lib/serve/app';

const RUNS = Number(process.env.QKERNELS_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.QKERNELS_FUZZ_SEED ?? 0x5eed);
const VOCABS = ['ggml-vocab-llama-spm.gguf', 'ggml-vocab-gpt-2.gguf'];
// one input may take at most this long (a hang is a failure, not a timeout of the whole suite)
const SLOW_MS = 1000;

/** Text that stresses a tokenizer: any code points (lone surrogates too), vocabulary pieces, special-token texts, long runs. */
function textArb(pieces: string[]): fc.Arbitrary<string> {
  const piece = fc.constantFrom(...pieces);
  const part = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: fc.constantFrom(' ', '\n', '\t', '\u00a0', '\u2581', '\u3000', '\r'), maxLength: 30 }),
    fc.array(piece, { maxLength: 12 }).map((a) => a.join('')),
    fc.tuple(fc.constantFrom('a', '1', ' ', '\u00e9', '\u{1f600}'), fc.integer({ min: 1, max: 2000 })).map(([c, n]) => c.repeat(n)),
  );
  return fc.array(part, { maxLength: 6 }).map((a) => a.join(''));
}

describe('tokenizer input text', () => {
  const models: Model[] = [];
  afterAll(() => models.forEach((m) => m.close()));

  for (const file of VOCABS) {
    it(`${file}: any text tokenizes to in-range ids, detokenizes without loss where the vocabulary allows, and the streaming decoder agrees`, async () => {
      const model = await loadModel(path.join(__dirname, 'fixtures', 'vocab', file), { vocabOnly: true });
      models.push(model);
      const tok = model.tokenizer;
      const pieces: string[] = [];
      for (let id = 0; id < Math.min(tok.vocabSize, 3000); id += 7) pieces.push(tok.detokenize([id], { unparseSpecial: true }));
      const byteLevel = tok.model === 'gpt2';
      let outcomes = { ok: 0, qkError: 0 };
      fc.assert(
        fc.property(textArb(pieces), fc.boolean(), (text, parseSpecial) => {
          const t0 = performance.now();
          let ids: number[];
          try {
            ids = tok.tokenize(text, { addBos: false, parseSpecial });
          } catch (e) {
            if (!(e instanceof QkError)) throw e;
            outcomes.qkError++;
            return;
          }
          for (const id of ids) if (!(Number.isInteger(id) && id >= 0 && id < tok.vocabSize)) throw new Error(`id ${id} out of range`);
          const whole = tok.detokenize(ids);
          const d = tok.createDecoder();
          let streamed = '';
          for (const id of ids) streamed += d.push(id);
          streamed += d.flush();
          if (streamed !== whole) throw new Error(`streamed ${JSON.stringify(streamed)} != whole ${JSON.stringify(whole)}`);
          // byte-level BPE loses nothing of well-formed text without special tokens' texts
          if (byteLevel && !parseSpecial && whole !== text.toWellFormed()) throw new Error(`round trip ${JSON.stringify(text)} -> ${JSON.stringify(whole)}`);
          const ms = performance.now() - t0;
          if (ms > SLOW_MS) throw new Error(`${ms.toFixed(0)} ms for ${text.length} chars`);
          outcomes.ok++;
        }),
        { numRuns: RUNS, seed: SEED },
      );
      expect(outcomes.ok + outcomes.qkError).toBe(RUNS);
      console.log(`${file}: ${RUNS} inputs, ${outcomes.ok} tokenized, ${outcomes.qkError} QkError`);
      outcomes = { ok: 0, qkError: 0 };
    }, 600_000);
  }
});

describe('checkpoint quantization config', () => {
  const VALID: Record<string, unknown>[] = [
    { quant_method: 'gptq', bits: 4, group_size: 128, desc_act: false, sym: true, checkpoint_format: 'gptq' },
    { quant_method: 'gptq', bits: 4, group_size: -1, desc_act: true, sym: false, checkpoint_format: 'gptq_v2' },
    { quant_method: 'awq', bits: 4, group_size: 128, zero_point: true, version: 'gemm' },
    { w_bit: 4, q_group_size: 64, zero_point: true, version: 'GEMM' },
  ];
  const value = fc.oneof(fc.anything({ maxDepth: 2 }), fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(4, 8, 3, 128, 32, -1, 0, 1e300, NaN, 'gptq', 'awq', 'gemm', 'gemv', 'marlin', 'gptq_v2', true, false, null));
  const mutated = fc.tuple(fc.constantFrom(...VALID), fc.array(fc.tuple(fc.constantFrom('quant_method', 'method', 'bits', 'w_bit', 'group_size', 'q_group_size', 'desc_act', 'sym', 'zero_point', 'checkpoint_format', 'version', 'static_groups', '__proto__', 'constructor'), value), { maxLength: 4 }))
    .map(([base, edits]) => {
      const o: Record<string, unknown> = JSON.parse(JSON.stringify(base));
      for (const [k, v] of edits) Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true });
      return o;
    });
  it('any config is parsed to a valid description or refused with a QkError', () => {
    const outcomes = { ok: 0, qkError: 0 };
    fc.assert(
      fc.property(fc.oneof(mutated, fc.dictionary(fc.string(), value, { maxKeys: 6 })), (raw) => {
        try {
          const c = parseQuantizationConfig(raw, 'config.json');
          if (c.bits !== 4) throw new Error(`accepted ${c.bits} bits`);
          if (!(c.groupSize === -1 || (Number.isInteger(c.groupSize) && c.groupSize > 0))) throw new Error(`accepted group size ${c.groupSize}`);
          outcomes.ok++;
        } catch (e) {
          if (!(e instanceof QkError)) throw e;
          outcomes.qkError++;
        }
      }),
      { numRuns: RUNS * 10, seed: SEED },
    );
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes.qkError).toBeGreaterThan(0);
    console.log(`quantization config: ${RUNS * 10} inputs, ${outcomes.ok} accepted, ${outcomes.qkError} QkError`);
  });
});

describe('server request bodies', () => {
  let model: Model;
  let server: QkServer;
  beforeAll(async () => {
    model = await loadModel(path.join(__dirname, 'fixtures', 'gguf', 'golden-q4_0.gguf'), { threads: 1, contextLength: 128 });
    server = await createServer(model, { parallel: 2, chatTemplate: "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}" });
  });
  afterAll(async () => {
    await server.app.close();
    model.close();
  });

  const field = fc.oneof(fc.anything({ maxDepth: 2 }), fc.integer({ min: -5, max: 40 }), fc.double(), fc.string({ maxLength: 20 }), fc.constantFrom(null, true, [], {}, 'user', 'system', -1, 0, 1e9));
  // mostly valid values, sometimes anything: valid bodies must reach the model, invalid ones every check
  const or = <T,>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: field });
  const message = fc.record({ role: or(fc.constantFrom('user', 'assistant', 'system')), content: or(fc.string({ maxLength: 30 })) }, { requiredKeys: ['role', 'content'] });
  const body = fc.record(
    {
      model: or(fc.string({ maxLength: 10 })),
      prompt: or(fc.oneof(fc.string({ maxLength: 40 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 8 }))),
      messages: or(fc.array(message, { minLength: 1, maxLength: 3 })),
      max_tokens: or(fc.integer({ min: 1, max: 8 })),
      temperature: or(fc.double({ min: 0, max: 2, noNaN: true })),
      top_p: or(fc.double({ min: 0.01, max: 1, noNaN: true })),
      stop: or(fc.oneof(fc.string({ maxLength: 5 }), fc.array(fc.string({ maxLength: 5 }), { maxLength: 5 }))),
      seed: or(fc.integer({ min: 0 })),
      stream: or(fc.boolean()),
    },
    { requiredKeys: ['prompt', 'messages'] },
  );
  const payload = fc.oneof(
    { weight: 6, arbitrary: body.map((b) => JSON.stringify(b)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
    { weight: 1, arbitrary: body.chain((b) => fc.nat({ max: Math.max(0, JSON.stringify(b).length - 1) }).map((n) => JSON.stringify(b).slice(0, n))) },
  );

  it('any body to /v1/completions and /v1/chat/completions gets a 200 or a 4xx with an error body, never a 5xx', async () => {
    const outcomes = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(payload, fc.constantFrom('/v1/completions', '/v1/chat/completions'), async (p, url) => {
        const t0 = performance.now();
        const r = await server.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: p });
        outcomes.set(r.statusCode, (outcomes.get(r.statusCode) ?? 0) + 1);
        if (process.env.QKERNELS_FUZZ_VERBOSE && r.statusCode === 400) console.log(p, '->', r.body);
        if (r.statusCode >= 500) throw new Error(`${r.statusCode} for ${p}: ${r.body}`);
        if (r.statusCode >= 400) {
          const e = JSON.parse(r.body);
          if (typeof e?.error?.message !== 'string' || typeof e?.error?.type !== 'string') throw new Error(`error body ${r.body}`);
        } else if (r.statusCode !== 200) {
          throw new Error(`status ${r.statusCode}`);
        }
        const ms = performance.now() - t0;
        if (ms > 5 * SLOW_MS) throw new Error(`${ms.toFixed(0)} ms for ${p}`);
      }),
      { numRuns: Math.max(50, Math.floor(RUNS / 2)), seed: SEED },
    );
    console.log(`server bodies: ${[...outcomes].map(([s, n]) => `${s} x ${n}`).join(', ')}`);
    expect(outcomes.get(200) ?? 0).toBeGreaterThan(0);
    expect([...outcomes.keys()].some((s) => s >= 400)).toBe(true);
  }, 600_000);
});

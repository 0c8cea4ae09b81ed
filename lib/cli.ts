#!/usr/bin/env node
// The `qkernels` command: inspect and quantize GGUF files, run the benchmark.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { QkError } from './errors';
import { convertGguf, type ConvertProgress, type ConvertResult } from './gguf/convert';
import type { CalibrationProgress } from './model/calibrate';
import { humanBytes, inspectJson, inspectText } from './gguf/inspect';
import { openGguf } from './gguf/reader';
import { openSafetensors } from './safetensors';
import { inspectSafetensorsJson, inspectSafetensorsText, looksLikeSafetensors } from './safetensors-inspect';
import { isQuantizeTarget, RECIPES, targetNames } from './gguf/recipes';
import { backend, setThreads } from './index';

const HELP = `usage: qkernels <command> [options]

commands:
  inspect FILE               metadata and tensors of a GGUF or safetensors file
  quantize IN OUT --type T   convert a GGUF file to a weight type or llama.cpp recipe
  run MODEL -p PROMPT        generate text with a GGUF llama model, streamed
  serve MODEL                an OpenAI-compatible HTTP server on the model
  bench [ARGS]               the benchmark (dist/bench/main.js; 'qkernels bench --help' for its options)

Run 'qkernels <command> --help' for a command's options.`;

const HELP_INSPECT = `usage: qkernels inspect FILE [--json] [--full]

Prints the header, every metadata key with its type and value, and a table of
tensors (name, type, shape in GGUF order with the row length first, bytes).
A .safetensors file (or one that starts like one): the header length, the
metadata strings and the tensors (name, dtype, shape outermost first, bytes).

  --json   one JSON document instead (64-bit integers as decimal strings)
  --full   every array item (default: the first 8, or 64 in JSON)`;

const HELP_QUANTIZE = `usage: qkernels quantize IN OUT --type TYPE [--method gptq|awq --calib TEXT_FILE] [--threads N] [--quiet] [--progress] [--json]

Converts the tensors of IN (f32, f16, bf16 or already quantized) and writes
OUT through a temporary file renamed into place, so a failed run leaves no
partial OUT. 1-D tensors (norms, biases) and other tensors llama.cpp keeps
stay as they are.

  --type TYPE    a llama.cpp recipe, choosing a type per tensor from its name
                 and layer as llama-quantize does for llama-like models:
                   ${RECIPES.join(', ')}
                 or a weight type for every quantizable tensor:
                   ${targetNames().filter((t) => !(RECIPES as readonly string[]).includes(t)).join(', ')}
                 (rows not a multiple of a type's block fall back like llama.cpp:
                 q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0, else f16)
  --method M     gptq or awq instead of round-to-nearest (llama models): runs
                 the model on --calib's text layer by layer and quantizes each
                 linear layer on its own inputs; same types, same file size,
                 a normal GGUF file (AWQ folds its scales into the norms)
  --calib FILE   the calibration text (UTF-8), needed by --method
  --calib-tokens N  calibration tokens to use at most (default 4096)
  --threads N    worker threads (default: all ${cpuCount()} of this machine)
  --quiet        no progress bar (shown on a terminal: tensors, bytes, ETA)
  --progress     the progress bar even when stderr is not a terminal
  --json         print the summary as JSON`;

const HELP_RUN = `usage: qkernels run MODEL -p PROMPT [-n N] [--temp T] [--threads N] [--no-mmap] [options]

Streams the continuation of PROMPT to stdout, then a line of prompt and
generation speed (tokens/s) to stderr.

  -p, --prompt TEXT      the prompt (special tokens' text is matched)
  -n, --n-predict N      tokens to generate at most (default 128; -1: until the context is full)
  --temp T               temperature (default 0.8; 0: greedy)
  --top-k K              (default 40; 0: off)     --top-p P   (default 0.95; 1: off)
  --min-p P              (default 0.05; 0: off)   --repeat-penalty R (default 1: off)
  --seed S               sampling seed (default: random)
  --stop TEXT            end before this text
  -c, --ctx-size N       context length (default: the model's, at most 4096)
  --threads N            kernel threads (default: all ${cpuCount()} of this machine)
  --no-mmap              read the weights into memory instead of mapping the file
  --ignore-eos           keep generating after an end-of-generation token
  --engine native|js     'js': the TypeScript reference forward pass`;

const HELP_SERVE = `usage: qkernels serve MODEL [--port N] [--host H] [--parallel N] [--threads N] [options]

Serves POST /v1/completions and /v1/chat/completions (OpenAI's shapes,
streamed as server-sent events with "stream": true), GET /v1/models,
/health and /metrics (Prometheus). Concurrent requests share each decode
step (continuous batching). SIGTERM or SIGINT: running and queued requests
finish, new ones get 503, then the server exits.

  --port N               (default 8080)        --host H   (default 127.0.0.1)
  --parallel N           requests decoded at once, each with its own KV cache (default 4)
  --queue N              requests waiting beyond those; one more gets 429 (default 64)
  -c, --ctx-size N       context length of each slot (default: the model's, at most 4096)
  --batch N              tokens per step at most, prompt chunks included (default 256)
  --chat-template FILE   a Jinja chat template instead of the model's own
  --name NAME            the model id in /v1/models and responses (default: the file name)
  --threads N            kernel threads (default: all ${cpuCount()} of this machine)
  --no-mmap              read the weights into memory instead of mapping the file
  --log                  fastify's request log on stderr`;

function cpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

function parse(args: string[], valued: string[], known: string[], short: Record<string, string> = {}): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = short[args[i]] !== undefined ? `--${short[args[i]]}` : args[i];
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--') || a === '-h') {
      const eq = a.indexOf('=');
      const name = a === '-h' ? 'help' : a.slice(2, eq > 0 ? eq : undefined);
      if (!valued.includes(name) && !known.includes(name) && name !== 'help') throw new UsageError(`unknown option --${name}`);
      if (valued.includes(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : args[++i];
        if (v === undefined) throw new UsageError(`--${name} needs a value`);
        flags.set(name, v);
      } else {
        flags.set(name, true);
      }
    } else {
      positional.push(a);
    }
  }
  return { positional, flags };
}

function isSafetensors(file: string): boolean {
  if (file.toLowerCase().endsWith('.safetensors')) return true;
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return false; // openGguf names the problem
  }
  try {
    const b = new Uint8Array(9);
    return looksLikeSafetensors(b.subarray(0, fs.readSync(fd, b, 0, 9, 0)));
  } catch {
    return false; // a directory, say: openGguf names the problem
  } finally {
    fs.closeSync(fd);
  }
}

function cmdInspect(args: string[]): number {
  const p = parse(args, [], ['json', 'full']);
  if (p.flags.has('help')) return print(HELP_INSPECT);
  if (p.positional.length !== 1) throw new UsageError('inspect needs exactly one FILE');
  const file = p.positional[0];
  if (isSafetensors(file)) {
    const st = openSafetensors(file);
    try {
      const size = fs.statSync(file).size;
      const full = p.flags.has('full');
      process.stdout.write((p.flags.has('json') ? JSON.stringify(inspectSafetensorsJson(st, size), null, 2) : inspectSafetensorsText(st, size, { full })) + '\n');
    } finally {
      st.close();
    }
    return 0;
  }
  const f = openGguf(file);
  try {
    const full = p.flags.has('full');
    if (p.flags.has('json')) process.stdout.write(JSON.stringify(inspectJson(f, { full }), null, 2) + '\n');
    else process.stdout.write(inspectText(f, { full }) + '\n');
  } finally {
    f.close();
  }
  return 0;
}

function duration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--:--';
  const m = Math.floor(s / 60), sec = Math.floor(s % 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

function progressLine(p: ConvertProgress): string {
  const frac = p.inputBytes > 0 ? p.inputBytesDone / p.inputBytes : p.tensorsDone / Math.max(1, p.tensors);
  const width = 24;
  const filled = Math.round(frac * width);
  const elapsed = p.elapsedMs / 1000;
  const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : NaN;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}%  ` +
    `${p.tensorsDone}/${p.tensors} tensors  ${humanBytes(p.inputBytesDone)}/${humanBytes(p.inputBytes)}  ` +
    `elapsed ${duration(elapsed)}  ETA ${duration(eta)}`;
}

function calibrationLine(c: CalibrationProgress, elapsed: number): string {
  const frac = c.layer / c.layers;
  const width = 24;
  const filled = Math.round(frac * width);
  const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : NaN;
  return `calibrating [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] layer ${c.layer + 1}/${c.layers} ${c.step}  elapsed ${duration(elapsed)}  ETA ${duration(eta)}`;
}

function summaryText(inPath: string, outPath: string, type: string, r: ConvertResult): string {
  const counts = new Map<string, number>();
  for (const t of r.tensors) counts.set(t.to, (counts.get(t.to) ?? 0) + 1);
  const fallbacks = r.tensors.filter((t) => t.reason?.includes('not a multiple'));
  const lines = [
    `quantized ${inPath} -> ${outPath} (${type}, general.file_type ${r.fileType})`,
    `  size before: ${humanBytes(r.inputFileBytes)} (${r.bitsPerWeightBefore.toFixed(2)} bits per weight)`,
    `  size after:  ${humanBytes(r.outputFileBytes)} (${r.bitsPerWeightAfter.toFixed(2)} bits per weight, ${(r.inputFileBytes / Math.max(1, r.outputFileBytes)).toFixed(2)}x smaller)`,
    `  tensors:     ${[...counts].map(([t, n]) => `${t} x ${n}`).join(', ')}`,
    `  time:        ${r.seconds.toFixed(1)} s (${humanBytes(r.tensorBytesBefore / Math.max(r.seconds, 1e-3))}/s of input)`,
  ];
  if (fallbacks.length > 0) lines.push(`  fallbacks:   ${fallbacks.map((t) => `${t.name} (${t.reason})`).join('; ')}`);
  return lines.join('\n');
}

async function cmdQuantize(args: string[]): Promise<number> {
  const p = parse(args, ['type', 'threads', 'method', 'calib', 'calib-tokens'], ['quiet', 'json', 'progress']);
  if (p.flags.has('help')) return print(HELP_QUANTIZE);
  const method = p.flags.get('method');
  const calibFile = p.flags.get('calib');
  if (method !== undefined && method !== 'gptq' && method !== 'awq') throw new UsageError(`--method must be gptq or awq; got '${String(method)}'`);
  if (method !== undefined && typeof calibFile !== 'string') throw new UsageError(`--method ${method} needs --calib TEXT_FILE`);
  if (method === undefined && (calibFile !== undefined || p.flags.has('calib-tokens'))) throw new UsageError('--calib and --calib-tokens go with --method gptq|awq');
  const calibTokens = numberFlag(p, 'calib-tokens', true);
  let calibText = '';
  if (typeof calibFile === 'string') {
    try {
      calibText = fs.readFileSync(calibFile, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read --calib '${calibFile}': ${(e as Error).message}`);
    }
  }
  if (p.positional.length !== 2) throw new UsageError('quantize needs IN and OUT');
  const [inPath, outPath] = p.positional;
  const type = p.flags.get('type');
  if (typeof type !== 'string') throw new UsageError('quantize needs --type TYPE');
  const target = type.toLowerCase();
  if (!isQuantizeTarget(target)) throw new UsageError(`unknown --type '${type}'; expected one of ${targetNames().join(', ')}`);
  const threads = p.flags.get('threads');
  if (threads !== undefined) {
    const n = Number(threads);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new UsageError(`--threads must be an integer in [1, 256]; got '${String(threads)}'`);
    setThreads(n);
  } else {
    setThreads(Math.min(256, Math.max(1, cpuCount())));
  }
  if (path.resolve(inPath) !== path.resolve(outPath) && fs.existsSync(outPath) && fs.statSync(outPath).isDirectory()) {
    throw new UsageError(`OUT '${outPath}' is a directory`);
  }
  const bar = p.flags.has('progress') || (!p.flags.has('quiet') && !p.flags.has('json') && process.stderr.isTTY === true);
  // On a terminal the bar redraws in place; elsewhere (logs) it prints a line a second.
  const tty = process.stderr.isTTY === true;
  let last = 0;
  const started = Date.now();
  let lastCal = 0;
  let lastLayer = -1;
  const result = await convertGguf(inPath, outPath, {
    type: target,
    calibration: method === undefined ? undefined : {
      method,
      text: calibText,
      tokens: calibTokens,
      onProgress: bar
        ? (c) => {
            // every layer's start, and otherwise at most 10 (terminal) or 1 (log) lines a second
            const now = Date.now();
            if (now - lastCal < (tty ? 100 : 1000) && c.layer === lastLayer) return;
            lastCal = now;
            lastLayer = c.layer;
            process.stderr.write(`${tty ? '\r' : ''}${calibrationLine(c, (now - started) / 1000)}${tty ? '\x1b[K' : '\n'}`);
          }
        : undefined,
    },
    onProgress: bar
      ? (pr) => {
          const now = Date.now();
          const done = pr.tensorsDone === pr.tensors;
          if (now - last < (tty ? 100 : 1000) && !done && pr.tensorsDone > 1) return;
          last = now;
          process.stderr.write(tty ? `\r${progressLine(pr)}\x1b[K${done ? '\n' : ''}` : `${progressLine(pr)}\n`);
        }
      : undefined,
  });
  if (bar && method !== undefined && tty) process.stderr.write('\n');
  for (const f of result.staleRemoved) process.stderr.write(`qkernels quantize: removed a stale temporary file ${f} (its process was gone)\n`);
  const label = method === undefined ? target : `${target}, ${method}`;
  if (p.flags.has('json')) process.stdout.write(JSON.stringify({ input: inPath, output: outPath, type: target, method: method ?? 'rtn', backend: backend().name, ...result }, null, 2) + '\n');
  else process.stdout.write(summaryText(inPath, outPath, label, result) + '\n');
  return 0;
}

function numberFlag(p: Parsed, name: string, integer: boolean): number | undefined {
  const v = p.flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} needs ${integer ? 'an integer' : 'a number'}; got '${String(v)}'`);
  return n;
}

async function cmdRun(args: string[]): Promise<number> {
  const valued = ['prompt', 'n-predict', 'temp', 'top-k', 'top-p', 'min-p', 'repeat-penalty', 'seed', 'stop', 'ctx-size', 'threads', 'engine'];
  const p = parse(args, valued, ['no-mmap', 'ignore-eos'], { '-p': 'prompt', '-n': 'n-predict', '-c': 'ctx-size', '-t': 'threads' });
  if (p.flags.has('help')) return print(HELP_RUN);
  if (p.positional.length !== 1) throw new UsageError('run needs exactly one MODEL');
  const prompt = p.flags.get('prompt');
  if (typeof prompt !== 'string') throw new UsageError('run needs -p PROMPT');
  const engine = p.flags.get('engine');
  if (engine !== undefined && engine !== 'native' && engine !== 'js') throw new UsageError(`--engine must be native or js; got '${String(engine)}'`);
  const n = numberFlag(p, 'n-predict', true) ?? 128;
  const { loadModel } = await import('./model/model');
  const model = await loadModel(p.positional[0], {
    mmap: !p.flags.has('no-mmap'),
    threads: numberFlag(p, 'threads', true) ?? Math.min(256, Math.max(1, cpuCount())),
    contextLength: numberFlag(p, 'ctx-size', true),
    engine: engine as 'native' | 'js' | undefined,
  });
  const ac = new AbortController();
  const onInt = () => ac.abort();
  process.once('SIGINT', onInt);
  try {
    const stop = p.flags.get('stop');
    const it = model.generate(prompt, {
      maxTokens: n < 0 ? undefined : n,
      temperature: numberFlag(p, 'temp', false),
      topK: numberFlag(p, 'top-k', true),
      topP: numberFlag(p, 'top-p', false),
      minP: numberFlag(p, 'min-p', false),
      repeatPenalty: numberFlag(p, 'repeat-penalty', false),
      seed: numberFlag(p, 'seed', true),
      stop: typeof stop === 'string' ? [stop] : undefined,
      parseSpecial: true,
      ignoreEos: p.flags.has('ignore-eos'),
      signal: ac.signal,
    });
    process.stdout.write(prompt);
    for (;;) {
      const r = await it.next();
      if (r.done) {
        const s = r.value;
        const rate = (tokens: number, ms: number) => (ms > 0 ? ((tokens * 1000) / ms).toFixed(2) : '-');
        const evaluated = s.promptTokens - s.cachedPromptTokens;
        process.stdout.write('\n');
        process.stderr.write(
          `prompt: ${evaluated} tokens in ${s.promptMs.toFixed(1)} ms (${rate(evaluated, s.promptMs)} tokens/s); ` +
            `generation: ${s.generatedTokens} tokens in ${s.generateMs.toFixed(1)} ms (${rate(Math.max(0, s.generatedTokens - 1), s.generateMs)} tokens/s); ` +
            `finish: ${s.finishReason}\n`,
        );
        return 0;
      }
      process.stdout.write(r.value.text);
    }
  } finally {
    process.removeListener('SIGINT', onInt);
    model.close();
  }
}

async function cmdServe(args: string[]): Promise<number> {
  const valued = ['port', 'host', 'parallel', 'queue', 'ctx-size', 'batch', 'chat-template', 'name', 'threads'];
  const p = parse(args, valued, ['no-mmap', 'log'], { '-c': 'ctx-size', '-t': 'threads' });
  if (p.flags.has('help')) return print(HELP_SERVE);
  if (p.positional.length !== 1) throw new UsageError('serve needs exactly one MODEL');
  const port = numberFlag(p, 'port', true) ?? 8080;
  if (port < 0 || port > 65535) throw new UsageError(`--port must be in [0, 65535]; got ${port}`);
  const host = p.flags.get('host');
  const templateFile = p.flags.get('chat-template');
  let chatTemplate: string | undefined;
  if (typeof templateFile === 'string') {
    try {
      chatTemplate = fs.readFileSync(templateFile, 'utf8');
    } catch (e) {
      throw new QkError('ERR_QK_ARG', `cannot read --chat-template ${templateFile}: ${(e as Error).message}`);
    }
  }
  const { loadModel } = await import('./model/model');
  const { createServer } = await import('./serve/app');
  const batch = numberFlag(p, 'batch', true);
  const model = await loadModel(p.positional[0], {
    mmap: !p.flags.has('no-mmap'),
    threads: numberFlag(p, 'threads', true) ?? Math.min(256, Math.max(1, cpuCount())),
    contextLength: numberFlag(p, 'ctx-size', true),
    batchSize: batch,
  });
  const name = p.flags.get('name');
  let server;
  try {
    server = await createServer(model, {
      parallel: numberFlag(p, 'parallel', true),
      maxQueue: numberFlag(p, 'queue', true),
      chatTemplate,
      modelName: typeof name === 'string' ? name : undefined,
      logger: p.flags.has('log'),
    });
  } catch (e) {
    model.close();
    throw e;
  }
  const address = await server.app.listen({ port, host: typeof host === 'string' ? host : '127.0.0.1' });
  process.stderr.write(`qkernels serve: ${model.path} on ${address} (${server.scheduler.parallel} slots of ${server.scheduler.contextLength} tokens, ${backend().isa})\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`qkernels serve: ${signal}: finishing ${server.scheduler.activeCount + server.scheduler.queuedCount} requests\n`);
      server.shutdown().then(
        () => {
          model.close();
          resolve(0);
        },
        (e: unknown) => {
          process.stderr.write(`qkernels serve: shutdown failed: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

// The benchmark parses its own arguments and prints its own --help.
function cmdBench(args: string[]): Promise<number> {
  const script = path.join(__dirname, '..', 'bench', 'main.js');
  if (!fs.existsSync(script)) throw new QkError('ERR_QK_ARG', `the benchmark is not built (${script} is missing); run 'npm run build:ts'`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
    child.on('error', (e) => {
      process.stderr.write(`qkernels bench: ${e.message}\n`);
      resolve(1);
    });
  });
}

function print(s: string): number {
  process.stdout.write(s + '\n');
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'inspect':
        return cmdInspect(rest);
      case 'quantize':
        return await cmdQuantize(rest);
      case 'bench':
        return await cmdBench(rest);
      case 'run':
        return await cmdRun(rest);
      case 'serve':
        return await cmdServe(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        return print(HELP);
      case '--version':
      case '-v':
        return print(backend().version);
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`qkernels: ${e.message}\n\n${cmd === 'inspect' ? HELP_INSPECT : cmd === 'quantize' ? HELP_QUANTIZE : cmd === 'run' ? HELP_RUN : cmd === 'serve' ? HELP_SERVE : HELP}\n`);
      return 2;
    }
    if (e instanceof QkError) {
      process.stderr.write(`qkernels ${cmd}: ${e.message} [${e.code}]\n`);
      return 1;
    }
    throw e;
  }
}

if (require.main === module) {
  // Exiting through process.exit lets the writer remove its temporary file.
  // (serve handles both signals itself: it finishes its requests first.)
  if (process.argv[2] !== 'serve') {
    process.once('SIGINT', () => process.exit(130));
    process.once('SIGTERM', () => process.exit(143));
  }
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`qkernels: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 70;
    },
  );
}

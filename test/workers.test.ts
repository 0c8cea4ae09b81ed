// The addon in worker_threads: several workers load it at once, each maps the
// same model file (shared read-only by the page cache) and evaluates it, with
// the main thread's logits as the oracle; workers exit and others start, 100
// of them in all, while the main thread keeps its own model open. Workers run
// the built package (dist/), as a user's would.
import * as path from 'path';
import { Worker } from 'worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../lib/index';

const DIST = path.join(__dirname, '..', 'dist', 'lib', 'index.js');
const MODEL = path.join(__dirname, 'fixtures', 'gguf', 'golden-q4_k_s.gguf');
const TEXT = 'The quick brown fox';

const WORKER = `
const { parentPort, workerData } = require('worker_threads');
const q = require(workerData.dist);
(async () => {
  const m = await q.loadModel(workerData.model, { threads: 1 });
  const logits = await m.evaluate(m.tokenize(workerData.text, { addBos: true }));
  const f = q.openGguf(workerData.model);
  const bytes = f.tensors[1].data.length;
  f.close();
  m.close();
  parentPort.postMessage({ logits: Array.from(logits), isa: q.backend().isa, name: q.backend().name, bytes });
})().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
`;

function runWorker(): Promise<{ logits: number[]; isa: string; name: string; bytes: number; exitCode: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { dist: DIST, model: MODEL, text: TEXT } });
    let msg: { logits: number[]; isa: string; name: string; bytes: number; error?: string } | null = null;
    w.on('message', (m) => (msg = m));
    w.on('error', reject);
    w.on('exit', (exitCode) => {
      if (!msg) return reject(new Error(`worker exited ${exitCode} without a result`));
      if (msg.error) return reject(new Error(msg.error));
      resolve({ ...msg, exitCode });
    });
  });
}

let main: Model;
let want: Float32Array;
beforeAll(async () => {
  main = await loadModel(MODEL, { threads: 1 });
  want = (await main.evaluate(main.tokenize(TEXT, { addBos: true }))).slice();
});
afterAll(() => main.close());

describe('worker_threads', () => {
  it('100 workers, 4 at a time, each loading the addon and the mapped model: the main thread\'s logits, clean exits', async () => {
    let done = 0;
    for (let round = 0; round < 25; round++) {
      const results = await Promise.all([runWorker(), runWorker(), runWorker(), runWorker()]);
      for (const r of results) {
        expect(r.exitCode).toBe(0);
        expect(r.name).toBe('native');
        expect(r.bytes).toBeGreaterThan(0);
        expect(r.logits.length).toBe(want.length);
        // same kernels, same numbers: bit for bit
        for (let i = 0; i < want.length; i++) if (r.logits[i] !== want[i]) throw new Error(`logit ${i}: ${r.logits[i]} vs ${want[i]}`);
        done++;
      }
    }
    expect(done).toBe(100);
    // the main thread's model still works after all of that
    const again = await main.createSequence().evaluate(main.tokenize(TEXT, { addBos: true }));
    expect(Array.from(again)).toEqual(Array.from(want));
  }, 300_000);
});

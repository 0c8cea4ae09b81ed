// Which weight types work on this build, asked of a child process so that a
// kernel still under construction that crashes (rather than throws) takes the
// child down, not the benchmark. Each type is quantized, dequantized and
// multiplied (m = 1 and 3, both precisions) on every ISA; the first failure
// is the reason the type is skipped (or the ISA, for that type, in section C).
import { spawnSync } from 'child_process';
import { backend, dequantize, matmul, prepare, quantize, setIsa, typeInfo, type WeightType } from '../lib/index';
import { packageRoot } from '../lib/native';
import { INTERLEAVED_TYPES, TYPES } from '../lib/types';

export interface TypeStatus {
  type: WeightType;
  /** quantize, dequantize and matmul work on the best ISA */
  ok: boolean;
  /** why not (the error message, or the signal that killed the child) */
  reason: string | null;
  /** per ISA: null = works, else the reason */
  isas: Record<string, string | null>;
}

// Runs in the child: loads the addon directly (no TypeScript needed), prints one line per step.
const CHILD = `
const addon = require(process.argv[1])(process.argv[2]);
class E extends Error { constructor(code, message) { super(message); this.code = code; } }
addon.setErrorClass(E);
const jobs = JSON.parse(process.argv[3]);
const isas = addon.info().isas;
const say = (s) => require('fs').writeSync(1, s + '\\n');
for (const j of jobs) {
  const cols = Math.max(512, j.block), rows = 8;
  const src = new Float32Array(rows * cols);
  let s = 7; for (let i = 0; i < src.length; i++) { s = (s * 1103515245 + 12345) >>> 0; src[i] = s / 4294967296 - 0.5; }
  const dst = new Uint8Array(rows * (cols / j.block) * j.bytes);
  say('try ' + j.type + ' quantize');
  try { addon.quantize(j.id, src, rows, cols, dst, null); addon.dequantize(j.id, dst, rows, cols, new Float32Array(rows * cols)); }
  catch (e) { say('err ' + j.type + ' - ' + JSON.stringify(String(e && e.message || e))); continue; }
  for (const isa of isas) {
    say('try ' + j.type + ' ' + isa);
    try {
      addon.setIsa(isa);
      for (const m of [1, 3]) for (const p of [0, 1]) {
        const y = new Float32Array(m * rows);
        addon.matmul(j.id, dst, rows, cols, src.subarray(0, m * cols), m, y, p, 0);
        for (let i = 0; i < y.length; i++) if (!Number.isFinite(y[i])) throw new Error('non-finite output');
        if (j.interleaved) {
          const tiles = new Uint8Array(16 * (cols / j.block) * j.bytes);
          addon.interleave(j.id, dst, rows, cols, tiles);
          addon.matmul(j.id, tiles, rows, cols, src.subarray(0, m * cols), m, y, p, 1);
          for (let i = 0; i < y.length; i++) if (!Number.isFinite(y[i])) throw new Error('non-finite output (interleaved layout)');
        }
      }
      say('ok ' + j.type + ' ' + isa);
    } catch (e) { say('err ' + j.type + ' ' + isa + ' ' + JSON.stringify(String(e && e.message || e))); }
  }
  say('done ' + j.type);
}
`;

function probeInProcess(types: readonly WeightType[]): TypeStatus[] {
  const isas = backend().isas;
  const out: TypeStatus[] = [];
  for (const type of types) {
    const st: TypeStatus = { type, ok: false, reason: null, isas: {} };
    const cols = Math.max(512, typeInfo(type).blockSize);
    const src = new Float32Array(8 * cols).map((_, i) => Math.sin(i * 0.37));
    try {
      const w = quantize(src, 8, cols, type);
      dequantize(w);
      for (const isa of isas) {
        try {
          setIsa(isa as 'auto');
          matmul(w, src.subarray(0, cols), 1);
          matmul(w, src.subarray(0, 3 * cols), 3, undefined, { precision: 'f32' });
          matmul(prepare(w), src.subarray(0, 3 * cols), 3);
          st.isas[isa] = null;
        } catch (e) {
          st.isas[isa] = (e as Error).message;
        }
      }
      setIsa('auto');
      st.ok = st.isas[backend().isa] === null;
      if (!st.ok) st.reason = st.isas[backend().isa];
    } catch (e) {
      st.reason = (e as Error).message;
    }
    out.push(st);
  }
  return out;
}

/** Status of each type; never throws, never crashes the caller. */
export function probeTypes(types: readonly WeightType[]): TypeStatus[] {
  const info = backend();
  if (info.name !== 'native') return probeInProcess(types);
  const best = info.isa;
  const status = new Map<WeightType, TypeStatus>();
  for (const t of types) status.set(t, { type: t, ok: false, reason: null, isas: {} });
  let pending = [...types];
  let guard = 0;
  while (pending.length > 0 && guard++ < 4 * types.length + 4) {
    const jobs = pending.map((t) => ({
      type: t,
      id: TYPES[t].ggmlId,
      block: TYPES[t].blockSize,
      bytes: TYPES[t].blockBytes,
      interleaved: INTERLEAVED_TYPES.includes(t),
    }));
    const r = spawnSync(process.execPath, ['-e', CHILD, require.resolve('node-gyp-build'), packageRoot(), JSON.stringify(jobs)], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, QKERNELS_THREADS: '2' },
    });
    let current: { type: WeightType; step: string } | null = null;
    const finished = new Set<WeightType>();
    for (const line of (r.stdout ?? '').split('\n')) {
      const [word, type, step, ...rest] = line.split(' ');
      const st = status.get(type as WeightType);
      if (!st) continue;
      if (word === 'try') current = { type: type as WeightType, step };
      else if (word === 'ok') st.isas[step] = null;
      else if (word === 'err') {
        const msg = rest.length ? JSON.parse(rest.join(' ')) : 'error';
        if (step === '-') st.reason = `quantize: ${msg}`;
        else st.isas[step] = msg;
        current = null;
      } else if (word === 'done') {
        finished.add(type as WeightType);
        current = null;
      }
    }
    if (current) {
      // The child died in this step: the type (or this ISA of it) is broken.
      const st = status.get(current.type)!;
      const why = `crashed (${r.signal ?? `exit ${r.status}`}) in ${current.step === 'quantize' ? 'quantize' : `matmul on ${current.step}`}`;
      if (current.step === 'quantize') st.reason = why;
      else st.isas[current.step] = why;
      // Retry the type's remaining ISAs? The crash may poison later ones; mark the rest unknown-as-broken.
      for (const isa of info.isas) if (!(isa in st.isas)) st.isas[isa] = `not probed after a crash on ${current.step}`;
      finished.add(current.type);
    } else if (r.error || (r.status !== 0 && finished.size === 0)) {
      for (const t of pending) status.get(t)!.reason = `probe failed: ${r.error?.message ?? r.stderr?.slice(0, 200) ?? r.status}`;
      break;
    }
    pending = pending.filter((t) => !finished.has(t));
  }
  for (const st of status.values()) {
    if (st.reason === null) {
      st.ok = st.isas[best] === null;
      if (!st.ok) st.reason = st.isas[best] ?? 'not probed';
    }
  }
  return types.map((t) => status.get(t)!);
}

#!/usr/bin/env node
// Loads the installed `qkernels` (resolved from the current directory, as a
// user's project would) and checks it, for scripts/test-pack.sh and
// scripts/test-arm64-node.sh. Plain CommonJS, no dependencies: it also runs
// under Debian's arm64 Node 18 in qemu-aarch64.
//
//   node pack-check.js js  OUT.json       QKERNELS_BACKEND=js is set by the caller:
//                                         writes the TypeScript oracle's results
//   node pack-check.js native REF.json    expects backend().name === 'native' and
//                                         isa === the best ISA of this CPU (from
//                                         /proc/cpuinfo), and matmul within 1e-5 of
//                                         the oracle's per-term magnitude bound
// Prints one JSON line with what it saw; exits 1 on any mismatch.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const [mode, file] = process.argv.slice(2);
if ((mode !== 'js' && mode !== 'native') || !file) {
  console.error('usage: node pack-check.js js|native FILE.json');
  process.exit(2);
}
const req = createRequire(path.join(process.cwd(), 'package.json'));
const q = req('qkernels');

/** The best ISA this CPU runs, from the kernel's view of it (/proc/cpuinfo). */
function cpuinfoBestIsa() {
  if (process.arch === 'arm64') return 'neon'; // Advanced SIMD is mandatory on AArch64
  if (process.arch !== 'x64') return 'scalar';
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
  const m = /^flags\s*:(.*)$/m.exec(text);
  if (!m) return null;
  const f = new Set(m[1].trim().split(/\s+/));
  const all = (...names) => names.every((n) => f.has(n));
  if (all('avx2', 'fma', 'f16c', 'avx512f', 'avx512dq', 'avx512bw', 'avx512vl')) return 'avx512';
  if (all('avx2', 'fma', 'f16c')) return 'avx2';
  return 'scalar';
}

// A small deterministic problem: q4_0 weights N x K, m activation rows.
const N = 48, K = 512, M = 3;
let s = 12345;
const rnd = () => {
  s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
  return s / 4294967296 - 0.5;
};
const W = new Float32Array(N * K).map(rnd);
const X = new Float32Array(M * K).map(rnd);
const w = q.quantize(W, N, K, 'q4_0');
const deq = q.dequantize(w);
const result = {
  backend: q.backend(),
  quantized: Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength).toString('base64'),
  q8: Array.from(q.matmul(w, X, M)),
  f32: Array.from(q.matmul(w, X, M, undefined, { precision: 'f32' })),
};

if (mode === 'js') {
  if (result.backend.name !== 'js') throw new Error(`expected the js backend (QKERNELS_BACKEND=js), got ${result.backend.name}`);
  fs.writeFileSync(file, JSON.stringify(result));
  console.log(JSON.stringify({ backend: result.backend }));
  process.exit(0);
}

const ref = JSON.parse(fs.readFileSync(file, 'utf8'));
const errors = [];
const b = result.backend;
const want = cpuinfoBestIsa();
if (b.name !== 'native') errors.push(`backend().name is '${b.name}', expected 'native' (the prebuild did not load)`);
if (want && b.isa !== want) errors.push(`backend().isa is '${b.isa}', but the CPU's best ISA is '${want}'`);
if (result.quantized !== ref.quantized) errors.push('quantize(q4_0) bytes differ from the TypeScript oracle');
let worst = 0;
for (const prec of ['q8', 'f32']) {
  for (let i = 0; i < M; i++) {
    for (let n = 0; n < N; n++) {
      let bound = 0;
      for (let k = 0; k < K; k++) bound += Math.abs(X[i * K + k] * deq[n * K + k]);
      const got = result[prec][i * N + n];
      const exp = ref[prec][i * N + n];
      // 'q8' also rounds the activations to int8 (the same on both sides, so the
      // integer dot is exact); only the float summation order may differ.
      const err = Math.abs(got - exp) / (bound + 1e-30);
      worst = Math.max(worst, err);
      if (!(err <= 1e-5)) {
        errors.push(`matmul ${prec} y[${i}][${n}] = ${got}, oracle ${exp} (|diff| / sum|x*w| = ${err.toExponential(2)})`);
        break;
      }
    }
  }
}
console.log(JSON.stringify({ backend: b, cpuinfoBestIsa: want, matmulWorstRelErr: worst, ok: errors.length === 0 }));
if (errors.length) {
  for (const e of errors) console.error('pack-check: ' + e);
  process.exit(1);
}

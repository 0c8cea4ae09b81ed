// Byte-exact against llama.cpp: quantize the golden sources and compare the
// sha256 of every tensor with what llama-quantize wrote.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../lib/backend';
import { TYPES, isWeightType, type WeightType } from '../lib/types';
import { jsBackend, nativeBackend } from './helpers';

const dir = path.join(__dirname, 'fixtures', 'golden');
interface Manifest {
  tensors: Record<string, { rows: number; cols: number; file: string }>;
  files: Record<string, { tensors: Record<string, { type: string; sha256: string; nbytes: number }> }>;
}
const manifest: Manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

function loadSource(name: string): Float32Array | null {
  const p = path.join(dir, manifest.tensors[name].file);
  if (!fs.existsSync(p)) return null;
  const b = fs.readFileSync(p);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

// Every (tensor, type) pair llama.cpp wrote whose source is in the fixtures and whose type qkernels has.
const cases: { file: string; tensor: string; type: WeightType; sha256: string; nbytes: number }[] = [];
for (const [file, f] of Object.entries(manifest.files)) {
  for (const [tensor, t] of Object.entries(f.tensors)) {
    if (isWeightType(t.type) && t.type !== 'f32' && fs.existsSync(path.join(dir, manifest.tensors[tensor]?.file ?? '-'))) {
      cases.push({ file, tensor, type: t.type, sha256: t.sha256, nbytes: t.nbytes });
    }
  }
}

const native = nativeBackend();
const runs: [string, Backend, string][] = [['js', jsBackend, 'js']];
if (native) for (const isa of native.info().isas) runs.push([`native ${isa}`, native, isa]);

describe('golden files from llama.cpp', () => {
  it('has cases for every quantized type llama.cpp wrote', () => {
    const types = new Set(cases.map((c) => c.type));
    for (const t of ['q4_0', 'q4_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k']) expect(types.has(t as WeightType), t).toBe(true);
    expect(native, 'native addon must load').not.toBeNull();
  });

  describe.each(runs)('%s', (_label, backend, isa) => {
    it.each(cases.map((c) => [`${c.file} ${c.tensor}`, c] as const))('%s', (_n, c) => {
      backend.setIsa(isa === 'js' ? 'auto' : isa);
      const { rows, cols } = manifest.tensors[c.tensor];
      const src = loadSource(c.tensor)!;
      const t = TYPES[c.type];
      const out = new Uint8Array(rows * (cols / t.blockSize) * t.blockBytes);
      expect(out.length).toBe(c.nbytes);
      backend.quantize(c.type, src, rows, cols, out, null);
      const sha = createHash('sha256').update(out).digest('hex');
      expect(sha, `${c.type} bytes of ${c.tensor} differ from llama.cpp's`).toBe(c.sha256);
      backend.setIsa('auto');
    });
  });
});

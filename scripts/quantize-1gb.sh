#!/usr/bin/env bash
# Figures for `qkernels quantize` on a model of about 1 GB: writes a
# llama-shaped f32 GGUF (random weights, real tensor names) with writeGguf in
# /tmp, quantizes it under /usr/bin/time -v, and prints wall time and peak RSS.
#
#   bash scripts/quantize-1gb.sh            # q4_k_m, 3 layers of TinyLlama's shape: 1.05 GB of f32
#   TYPE=q8_0 LAYERS=10 bash scripts/quantize-1gb.sh
#
# Needs the TypeScript build (npm run build:ts) and, for useful figures, the native addon.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TYPE="${TYPE:-q4_k_m}"
LAYERS="${LAYERS:-3}"
DIR="${DIR:-/tmp}"
IN="$DIR/qkernels-llama-f32.gguf"
OUT="$DIR/qkernels-llama-$TYPE.gguf"
TIME_LOG="$DIR/qkernels-quantize-time.txt"

[ -f dist/lib/cli.js ] || { echo "dist/lib/cli.js is missing: run 'npm run build:ts' first" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

echo "== writing $IN (hidden 2048, $LAYERS layers, FFN 5632, vocab 32000, 32 heads / 4 KV heads, f32)"
LAYERS="$LAYERS" IN="$IN" node -e '
const { writeGguf, backend } = require("./dist/lib/index.js");
const hidden = 2048, ffn = 5632, vocab = 32000, heads = 32, kvHeads = 4, layers = Number(process.env.LAYERS);
const kv = (hidden / heads) * kvHeads;
let seed = 1;
// Weights are made when the writer reaches each tensor, so the model is never in memory whole.
function weights(rows, cols) {
  let s = seed++ * 0x9e3779b9 >>> 0 || 1;
  return () => {
    const x = new Float32Array(rows * cols);
    for (let i = 0; i < x.length; i++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      x[i] = (s / 4294967296 - 0.5) * 0.04;
    }
    return new Uint8Array(x.buffer);
  };
}
const ones = (n) => () => new Uint8Array(new Float32Array(n).fill(1).buffer);
const t = [];
const mat = (name, rows, cols) => t.push({ name, type: "f32", shape: [cols, rows], data: weights(rows, cols) });
const norm = (name) => t.push({ name, type: "f32", shape: [hidden], data: ones(hidden) });
mat("token_embd.weight", vocab, hidden);
for (let i = 0; i < layers; i++) {
  norm(`blk.${i}.attn_norm.weight`);
  mat(`blk.${i}.attn_q.weight`, hidden, hidden);
  mat(`blk.${i}.attn_k.weight`, kv, hidden);
  mat(`blk.${i}.attn_v.weight`, kv, hidden);
  mat(`blk.${i}.attn_output.weight`, hidden, hidden);
  norm(`blk.${i}.ffn_norm.weight`);
  mat(`blk.${i}.ffn_gate.weight`, ffn, hidden);
  mat(`blk.${i}.ffn_up.weight`, ffn, hidden);
  mat(`blk.${i}.ffn_down.weight`, hidden, ffn);
}
norm("output_norm.weight");
mat("output.weight", vocab, hidden);
const metadata = {
  "general.architecture": "llama", "general.name": "qkernels-synthetic-llama",
  "llama.context_length": 2048, "llama.embedding_length": hidden, "llama.block_count": layers,
  "llama.feed_forward_length": ffn, "llama.rope.dimension_count": hidden / heads,
  "llama.attention.head_count": heads, "llama.attention.head_count_kv": kvHeads,
  "llama.attention.layer_norm_rms_epsilon": 1e-5, "general.file_type": 0,
  "tokenizer.ggml.model": "llama",
  "tokenizer.ggml.tokens": Array.from({ length: vocab }, (_, i) => `t${i}`),
  "tokenizer.ggml.scores": new Float32Array(vocab),
  "tokenizer.ggml.token_type": new Int32Array(vocab).fill(1),
};
const t0 = Date.now();
writeGguf(process.env.IN, { metadata, tensors: t }).then((r) => {
  console.log(`wrote ${(r.bytes / 1e9).toFixed(3)} GB, ${r.tensors} tensors in ${((Date.now() - t0) / 1000).toFixed(1)} s (backend ${backend().name})`);
});
'

LOAD="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
echo "== qkernels quantize $IN $OUT --type $TYPE"
/usr/bin/time -v -o "$TIME_LOG" node dist/lib/cli.js quantize "$IN" "$OUT" --type "$TYPE"
wall="$(sed -n 's/^.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$TIME_LOG")"
rss_kb="$(sed -n 's/^.*Maximum resident set size (kbytes): //p' "$TIME_LOG")"
cpu="$(sed -n 's/^.*Percent of CPU this job got: //p' "$TIME_LOG")"
user="$(sed -n 's/^.*User time (seconds): //p' "$TIME_LOG")"
sys="$(sed -n 's/^.*System time (seconds): //p' "$TIME_LOG")"
echo "== figures ($TYPE, $(nproc) CPUs)"
echo "input:     $(stat -c %s "$IN") bytes"
echo "output:    $(stat -c %s "$OUT") bytes"
echo "wall time: $wall"
echo "peak RSS:  $((rss_kb / 1024)) MiB"
echo "CPU:       $cpu (user $user s, system $sys s); load average before: $LOAD"
[ "${KEEP:-0}" = 1 ] || rm -f "$IN" "$OUT"

#!/usr/bin/env bash
# The fuzz campaign (`npm run fuzz`): every parser of untrusted input, RUNS
# inputs each (default 100,000; CI runs the same suites with a few hundred to
# a few thousand through `npm test`). JS: GGUF files (mutations of valid files),
# safetensors headers and files, checkpoint configs, tokenizer text, server
# bodies. Native: the libFuzzer targets of native/fuzz when clang is here
# (scripts/fuzz-native.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-100000}"
t0=$SECONDS
echo "== JS fuzzers, $RUNS inputs per parser"
mkdir -p build-logs
status=0
QKERNELS_FUZZ_ITERATIONS="$RUNS" QKERNELS_FUZZ_RUNS="$RUNS" npx vitest run test/gguf-fuzz.test.ts test/safetensors.test.ts test/fuzz.test.ts \
  --testTimeout=7200000 --reporter=verbose >build-logs/fuzz-js.log 2>&1 || status=$?
grep -E 'inputs|server bodies|✓|×|Tests|FAIL' build-logs/fuzz-js.log || true
if [ "$status" != 0 ]; then echo "JS fuzzers failed (build-logs/fuzz-js.log)"; exit "$status"; fi
if [ -x scripts/fuzz-native.sh ]; then
  echo "== native fuzzers"
  RUNS="$RUNS" bash scripts/fuzz-native.sh
fi
echo "== fuzz campaign done [$((SECONDS - t0)) s]"

#!/usr/bin/env bash
# Builds the C++ kernel parity test for this machine and runs it: every SIMD
# kernel table this CPU supports against the scalar one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT_DIR:-$ROOT/build-native-test}"
CXX="${CXX:-g++}"
mkdir -p "$OUT_DIR"
srcs=()
while read -r f; do
  [ -z "$f" ] && continue
  [ "$(basename "$f")" = addon.cc ] && continue
  srcs+=("$ROOT/$f")
done < "$ROOT/native/sources.txt"
"$CXX" -O2 -std=c++17 -ffp-contract=off -Wall -Wextra -pthread -I"$ROOT/native/src" \
  "${srcs[@]}" "$ROOT/native/test/test_kernels.cc" -o "$OUT_DIR/test_kernels"
# Byte-exact against llama.cpp's golden files, when the shared data is beside the repo.
MANIFEST="${QK_GOLDEN:-$ROOT/../shared/golden/manifest.json}"
"$CXX" -O2 -std=c++17 -ffp-contract=off -Wall -Wextra -pthread -I"$ROOT/native/src" \
  "${srcs[@]}" "$ROOT/native/test/test_golden.cc" -o "$OUT_DIR/test_golden"
if [ -f "$MANIFEST" ]; then
  "$OUT_DIR/test_golden" "$MANIFEST"
else
  echo "golden C++ test: SKIPPED ($MANIFEST not found; the vitest golden suite covers the fixtures in test/fixtures/golden)"
fi
"$OUT_DIR/test_kernels"

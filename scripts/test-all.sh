#!/usr/bin/env bash
# The whole test suite, as `npm test` runs it:
#   1. vitest: API, parity native-vs-TypeScript on every ISA, golden files, errors, GC;
#   2. the C++ kernel parity test on this CPU;
#   3. the NEON kernels under qemu-aarch64, when the cross toolchain is here or CI=true
#      (then scripts/test-arm64.sh installs it from Debian's packages).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
echo "== vitest"
npx vitest run
echo "== native kernel parity ($(uname -m))"
bash scripts/test-native.sh
if [ "${CI:-}" = "true" ] || { command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-g++ >/dev/null; }; then
  echo "== arm64 NEON kernels under qemu"
  bash scripts/test-arm64.sh
else
  echo "== arm64 NEON kernels: SKIPPED (needs qemu-user and g++-aarch64-linux-gnu; CI=true installs them)"
fi

#!/usr/bin/env bash
# Cross-builds the native kernels and their parity test for aarch64 and runs it
# under qemu-user twice: with a CPU that has SDOT (-cpu max) and with one that
# has only baseline ARMv8.0 NEON (cortex-a57). Installs the cross compiler and
# qemu-user with apt-get when missing (Debian/Ubuntu, as root or via sudo).
#   usage: bash scripts/test-arm64.sh        (env: CXX_ARM64, QEMU_ARM64, OUT_DIR)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT_DIR:-$ROOT/build-arm64}"
CXX_ARM64="${CXX_ARM64:-aarch64-linux-gnu-g++}"
QEMU_ARM64="${QEMU_ARM64:-qemu-aarch64}"

need=()
command -v "$CXX_ARM64" >/dev/null 2>&1 || need+=(g++-aarch64-linux-gnu)
command -v "$QEMU_ARM64" >/dev/null 2>&1 || need+=(qemu-user)
if ((${#need[@]})); then
  echo "== installing ${need[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$OUT_DIR"
srcs=()
for f in "$ROOT"/native/src/*.cc; do
  [ "$(basename "$f")" = addon.cc ] && continue
  srcs+=("$f")
done
srcs+=("$ROOT/native/test/test_kernels.cc")

BIN="$OUT_DIR/test_kernels"
echo "== building $BIN"
# Same floating-point contract as the addon build: no fused multiply-add
# unless written as one. Static so qemu needs no sysroot.
"$CXX_ARM64" -O3 -std=c++17 -ffp-contract=off -Wall -Wextra -static -pthread \
  -I"$ROOT/native/src" "${srcs[@]}" -o "$BIN"

status=0
for cpu in max cortex-a57; do
  echo "== qemu-aarch64 -cpu $cpu"
  if ! "$QEMU_ARM64" -cpu "$cpu" "$BIN"; then
    echo "FAILED under -cpu $cpu"
    status=1
  fi
done
exit $status

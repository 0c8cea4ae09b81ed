#!/usr/bin/env bash
# The linux-arm64 prebuild in a real arm64 Node: Debian's `nodejs:arm64` package
# and its libraries, unpacked into a private sysroot (never installed into the
# system) and run under qemu-aarch64 -L <sysroot>:
#   1. the parity suite (test/parity.test.ts, bundled with esbuild against
#      scripts/vitest-shim.cjs since vitest cannot run there) with the prebuild
#      loaded through node-gyp-build, on a CPU with SDOT (-cpu max) and on a
#      baseline ARMv8.0 one (-cpu cortex-a57), in parallel; a subset by default
#      (see below), all of it with QK_ARM64_PARITY=full;
#   2. when scripts/test-pack.sh left a tarball (build-pack/tarball): the packed
#      package unpacked as node_modules/qkernels, checked by scripts/pack-check.js
#      (backend 'native', isa 'neon', q4_0 matmul vs the TypeScript backend).
# Needs: prebuilds/linux-arm64 (made here when missing), qemu-user, apt access
# to Debian's arm64 archive (adds the arm64 dpkg architecture if missing, only
# to let apt-get download arm64 packages).
#   usage: bash scripts/test-arm64-node.sh     env: QEMU_ARM64, QK_ARM64_PARITY=full, QK_TEST_FILTER
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/build-arm64-node"
QEMU_ARM64="${QEMU_ARM64:-qemu-aarch64}"
SYSROOT="$OUT/sysroot"
start=$SECONDS

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive

if ! command -v "$QEMU_ARM64" >/dev/null 2>&1; then
  echo "== installing qemu-user"
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
fi

shopt -s nullglob
pre=(prebuilds/linux-arm64/*.node)
shopt -u nullglob
if [ ${#pre[@]} = 0 ]; then bash scripts/prebuild.sh arm64; fi

# ---- Debian's arm64 Node, unpacked ------------------------------------------
node_a64=("$QEMU_ARM64" -L "$SYSROOT" "$SYSROOT/usr/bin/node")
if [ ! -x "$SYSROOT/usr/bin/node" ] || ! "${node_a64[@]}" -e 0 >/dev/null 2>&1; then
  echo "== Debian nodejs:arm64 into $SYSROOT"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    as_root dpkg --add-architecture arm64
    as_root apt-get update -qq
  elif ! apt-cache show nodejs:arm64 >/dev/null 2>&1; then
    as_root apt-get update -qq
  fi
  # nodejs:arm64 and the libraries it loads: follow Depends through the arm64
  # packages; node-* are Debian's unbundled JavaScript modules (arch all, not followed).
  declare -A seen=([nodejs:arm64]=1)
  pkgs=(nodejs:arm64)
  frontier=(nodejs:arm64)
  while [ ${#frontier[@]} -gt 0 ]; do
    mapfile -t deps < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "${frontier[@]}" | awk '
        /^  [|]?(Pre)?Depends: / { d = $2; if (d ~ /^</) { want = 1; next } print d; want = 0; next }
        want && /^    / { print $1; want = 0 }')
    frontier=()
    for d in "${deps[@]}"; do
      case "$d" in *:arm64 | node-*) ;; *) continue ;; esac
      [ -n "${seen[$d]:-}" ] && continue
      seen[$d]=1
      pkgs+=("$d")
      case "$d" in *:arm64) frontier+=("$d") ;; esac
    done
  done
  rm -rf "$OUT/debs" "$SYSROOT.tmp"
  mkdir -p "$OUT/debs" "$SYSROOT.tmp"
  # apt-get download as root writes as the _apt user when it can: give it the folder.
  chown _apt "$OUT/debs" 2>/dev/null || true
  (cd "$OUT/debs" && apt-get download -qq "${pkgs[@]}")
  for deb in "$OUT"/debs/*.deb; do dpkg-deb -x "$deb" "$SYSROOT.tmp"; done
  rm -rf "$SYSROOT"
  mv "$SYSROOT.tmp" "$SYSROOT"
  echo "   ${#pkgs[@]} packages: ${pkgs[*]}"
fi
if ! v="$("${node_a64[@]}" -p 'process.version + " " + process.arch + ", N-API " + process.versions.napi' 2>&1)"; then
  echo "test-arm64-node: Debian's arm64 node does not run under $QEMU_ARM64:" >&2
  echo "$v" >&2
  exit 1
fi
echo "== arm64 Node: $v"

# ---- 1. the parity suite ---------------------------------------------------
H="$OUT/parity"
rm -rf "$H"
mkdir -p "$H/node_modules" "$H/prebuilds"
# A package root for lib/native.ts's node-gyp-build: no build/, only the prebuild.
node -e "const p=require('./package.json');process.stdout.write(JSON.stringify({name:p.name,version:p.version}))" >"$H/package.json"
cp -R prebuilds/linux-arm64 "$H/prebuilds/"
ln -s "$ROOT/node_modules/node-gyp-build" "$H/node_modules/node-gyp-build"
"$ROOT/node_modules/.bin/esbuild" test/parity.test.ts --bundle --platform=node --format=cjs --target=node18 \
  --alias:vitest=./scripts/vitest-shim.cjs --external:node-gyp-build --log-level=warning --outfile="$H/parity.test.cjs"

status=0
start_parity() { # start_parity CPU FILTER: runs in the background, log in $OUT/parity-CPU.log
  local cpu="$1" filter="$2"
  (cd "$H" && exec env -u QKERNELS_ISA -u QKERNELS_BACKEND -u QKERNELS_THREADS QK_TEST_FILTER="$filter" \
    "$QEMU_ARM64" -cpu "$cpu" -L "$SYSROOT" "$SYSROOT/usr/bin/node" parity.test.cjs >"$OUT/parity-$cpu.log" 2>&1) &
  pids+=($!)
}
report_parity() { # report_parity CPU FILTER PID
  local cpu="$1" filter="$2" pid="$3" log="$OUT/parity-$1.log"
  wait "$pid" || status=1
  echo "== parity suite, arm64 prebuild in arm64 Node, qemu-aarch64 -cpu $cpu${filter:+ (tests matching /$filter/)}"
  # The results, one line per (ISA, type): how many patterns passed.
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    const groups = new Map();
    for (const l of lines) {
      const m = /^  ([✓✗]) native (\S+) vs the TypeScript oracle > (\S+) > /.exec(l);
      if (!m) continue;
      const k = m[2].padEnd(7) + " " + m[3];
      const g = groups.get(k) || { ok: 0, bad: 0 };
      m[1] === "✓" ? g.ok++ : g.bad++;
      groups.set(k, g);
    }
    for (const [k, g] of groups) console.log(`   ${k.padEnd(16)} ${g.bad ? "FAIL" : "ok"}  ${g.ok}/${g.ok + g.bad} patterns`);
  ' "$log"
  grep -E '^  ✗|^Tests:|Error|error' "$log" | head -40 | sed 's/^/   /' || true
  echo "   (full log: ${log#"$ROOT"/})"
}
# The whole suite under emulation takes ~8 min (the TypeScript oracle is slow
# there), so by default: the NEON kernels on every type, on the random inputs
# ('normal') and the block-mix ('mixed': zero, negative, outlier blocks) with
# SDOT, and on 'normal' without SDOT, the two CPUs in parallel.
# The other patterns on NEON run in the C++ kernel tests (scripts/test-arm64.sh).
# QK_ARM64_PARITY=full: every test on every ISA with SDOT, every NEON test without.
if [ "${QK_ARM64_PARITY:-}" = full ]; then
  filters=('' '^native neon|^parity setup')
else
  filters=('^native neon .* pattern (normal|mixed)$|^parity setup' '^native neon .* pattern normal$')
fi
[ -n "${QK_TEST_FILTER:-}" ] && filters=("$QK_TEST_FILTER" "$QK_TEST_FILTER")
s=$SECONDS
pids=()
start_parity max "${filters[0]}"
start_parity cortex-a57 "${filters[1]}"
report_parity max "${filters[0]}" "${pids[0]}"
report_parity cortex-a57 "${filters[1]}" "${pids[1]}"
echo "   (both: $((SECONDS - s)) s)"

# ---- 2. the packed tarball -------------------------------------------------
if [ -f build-pack/tarball ] && [ -f "$(cat build-pack/tarball)" ]; then
  TGZ="$(cat build-pack/tarball)"
  echo "== packed $(basename "$TGZ") as node_modules/qkernels in arm64 Node"
  P="$OUT/pack"
  rm -rf "$P"
  mkdir -p "$P/node_modules/qkernels"
  tar -xzf "$TGZ" -C "$P/node_modules/qkernels" --strip-components=1
  ln -s "$ROOT/node_modules/node-gyp-build" "$P/node_modules/node-gyp-build"
  echo '{ "name": "qk-pack-test-arm64", "private": true }' >"$P/package.json"
  (cd "$P" && QKERNELS_BACKEND=js node "$ROOT/scripts/pack-check.js" js "$P/ref.json" >/dev/null)
  echo -n "   "
  if ! (cd "$P" && env -u QKERNELS_ISA -u QKERNELS_BACKEND "${node_a64[@]}" "$ROOT/scripts/pack-check.js" native "$P/ref.json"); then
    status=1
  fi
else
  echo "== packed tarball in arm64 Node: skipped (no build-pack/tarball; scripts/test-pack.sh makes it)"
fi
echo "== test-arm64-node: $([ $status = 0 ] && echo ok || echo FAILED) ($((SECONDS - start)) s)"
exit $status

#!/usr/bin/env bash
# Memory safety under AddressSanitizer + UndefinedBehaviorSanitizer (`npm run test:sanitize`):
#   1. the C++ kernel tests of scripts/test-native.sh (test_kernels: every SIMD table
#      this CPU runs against the scalar one, so every ISA in one run; test_golden:
#      the scalar kernels on worked examples, edge inputs and, when present, the
#      golden files), with LeakSanitizer on: any leak fails;
#   2. the addon built from the same objects (build-asan/qkernels.node), loaded by the
#      vitest suites through QKERNELS_ADDON, node started with the ASan runtime
#      preloaded, once per ISA of this CPU (QKERNELS_ISA=avx512|avx2|scalar).
# Any sanitizer report fails the script (-fno-sanitize-recover=all: the first report
# ends the process; the logs are grepped too, in case a child process reported).
#
#   QK_SANITIZE=full (default)  every suite below, on every ISA where the ISA matters
#                               (~8 min here with the objects built, ~9 min from scratch)
#   QK_SANITIZE=ci              what CI runs (scripts/test-all.sh, ~2.5 min here): the
#                               batch-tile checks of test_kernels on fewer sizes, and only
#                               the quick vitest suites (no parity, GPTQ/AWQ, workers)
#   QK_SANITIZE_SUITES="a b"    run these test files instead (paths under test/), per ISA
#   QK_SANITIZE_ISAS="avx2 ..." only these ISAs (default: every ISA this CPU runs)
#   OUT_DIR                     build folder (default build-asan/)
# Logs: build-logs/sanitize-*.log. Needs g++ with libasan/libubsan (Debian's g++ has them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT_DIR:-$ROOT/build-asan}"
MODE="${QK_SANITIZE:-full}"
CXX="${CXX:-g++}"
LOGS="$ROOT/build-logs"
mkdir -p "$OUT/obj" "$LOGS"
t0=$SECONDS
say() { echo "== sanitize: $* [$((SECONDS - t0)) s]"; }

SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
# -O1: the usual level for ASan (fast enough, stack traces still readable). The
# project's own flags otherwise: C++17, no FP contraction, PIC for the addon.
FLAGS=(-O1 -std=c++17 -ffp-contract=off -fPIC -pthread -Wall -Wextra "${SAN[@]}")
NAPI_INC="$(node -p "require('node-addon-api').include_dir")"
NODE_INC="$(node -p "require('node-api-headers').include_dir" 2>/dev/null || true)"
[ -n "$NODE_INC" ] && [ -f "$NODE_INC/node_api.h" ] || NODE_INC="$(dirname "$(dirname "$(command -v node)")")/include/node"
ADDON_DEFS=(-DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DBUILDING_NODE_EXTENSION -fexceptions)

# A report in a log (ASan, LSan, UBSan; also "runtime error" from a recovered check).
REPORT_RE='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'

# ---- build: one object per source, in parallel; make-like (newer source or flags) ----
say "building with ${SAN[*]} into ${OUT#"$ROOT"/}"
flags_id="$(printf '%s ' "$CXX" "${FLAGS[@]}" "${ADDON_DEFS[@]}" | md5sum | cut -c1-12)"
if [ "$(cat "$OUT/obj/.flags" 2>/dev/null)" != "$flags_id" ]; then rm -f "$OUT"/obj/*.o; echo "$flags_id" >"$OUT/obj/.flags"; fi
srcs=()
while read -r f; do
  [ -n "$f" ] && srcs+=("$f")
done <native/sources.txt
srcs+=(native/test/test_kernels.cc native/test/test_golden.cc)
export CXX OUT ROOT NAPI_INC NODE_INC
export FLAGS_STR="${FLAGS[*]}" ADDON_DEFS_STR="${ADDON_DEFS[*]}"
compile_one() {
  local src="$1" obj
  obj="$OUT/obj/$(basename "${src%.cc}").o"
  # rebuild when the source or any header of native/src is newer than the object
  if [ -f "$obj" ] && [ "$obj" -nt "$ROOT/$src" ] && [ -z "$(find "$ROOT/native/src" -name '*.h' -newer "$obj" -print -quit)" ]; then return 0; fi
  local extra=""
  [ "$(basename "$src")" = addon.cc ] && extra="$ADDON_DEFS_STR -I$NAPI_INC -I$NODE_INC"
  # shellcheck disable=SC2086
  "$CXX" $FLAGS_STR $extra -I"$ROOT/native/src" -c "$ROOT/$src" -o "$obj" || { echo "compile failed: $src" >&2; return 1; }
}
export -f compile_one
printf '%s\n' "${srcs[@]}" | xargs -P "$(nproc)" -I{} bash -c 'compile_one "$1"' _ {} 2>"$LOGS/sanitize-build.log" \
  || { cat "$LOGS/sanitize-build.log"; exit 1; }
core=()
for f in "${srcs[@]}"; do
  b="$(basename "${f%.cc}")"
  case "$b" in addon | test_kernels | test_golden) ;; *) core+=("$OUT/obj/$b.o") ;; esac
done
"$CXX" "${FLAGS[@]}" "${core[@]}" "$OUT/obj/test_kernels.o" -o "$OUT/test_kernels"
"$CXX" "${FLAGS[@]}" "${core[@]}" "$OUT/obj/test_golden.o" -o "$OUT/test_golden"
"$CXX" "${FLAGS[@]}" -shared "$OUT/obj/addon.o" "${core[@]}" -o "$OUT/qkernels.node"

status=0
check_log() {  # name log exit-status
  local name="$1" log="$2" rc="$3"
  if grep -Eq "$REPORT_RE" "$log"; then
    echo "   $name: SANITIZER REPORT ($log):"
    grep -E -A30 "$REPORT_RE" "$log" | head -60 | sed 's/^/     /'
    status=1
  elif [ "$rc" != 0 ]; then
    echo "   $name: FAILED, exit $rc ($log)"
    tail -30 "$log" | sed 's/^/     /'
    status=1
  else
    echo "   $name: clean$4"
  fi
}

# ---- 1. the C++ kernel tests, leaks checked ----
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
MANIFEST="${QK_GOLDEN:-$ROOT/../shared/golden/manifest.json}"
quick=()
[ "$MODE" = ci ] && quick=(QK_TEST_QUICK=1)  # CI: the batch-tile checks on fewer sizes
say "C++ kernel tests (LeakSanitizer on)"
for t in test_kernels test_golden; do
  log="$LOGS/sanitize-$t.log"
  args=()
  [ "$t" = test_golden ] && [ -f "$MANIFEST" ] && args=("$MANIFEST")
  rc=0
  s0=$SECONDS
  env "${quick[@]}" ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1" \
    "$OUT/$t" "${args[@]}" >"$log" 2>&1 || rc=$?
  check_log "$t" "$log" "$rc" ", 0 bytes leaked ($(grep -E '[0-9]+ passed' "$log" | tail -1); $((SECONDS - s0)) s)"
done

# ---- 2. the addon under the vitest suites ----
# Suites that load the addon. Those that switch ISAs themselves (parity: every ISA
# against the TypeScript oracle; dispatch: QKERNELS_ISA in child processes) or do
# not depend on the ISA (mapped GGUF files, their leaks, worker threads) run once;
# the others once per ISA with QKERNELS_ISA. Not here: faults.test.ts (its CLI child
# processes run dist/, and its signal timing assertions do not hold at ASan's speed)
# and the suites that never load the addon.
once_suites="test/parity.test.ts test/dispatch.test.ts test/gguf-fuzz.test.ts test/gguf-reader.test.ts test/leak.test.ts test/workers.test.ts test/golden.test.ts"
isa_suites="test/errors.test.ts test/prepare.test.ts test/model.test.ts test/calibrated-native.test.ts test/gptq.test.ts test/awq.test.ts"
# CI (QK_SANITIZE=ci): the quick ones (no parity, GPTQ/AWQ or worker suites), still on every ISA.
ci_once_suites="test/dispatch.test.ts test/gguf-fuzz.test.ts test/gguf-reader.test.ts test/leak.test.ts"
ci_isa_suites="test/errors.test.ts test/prepare.test.ts test/model.test.ts"
LIBASAN="$("$CXX" -print-file-name=libasan.so)"
LIBUBSAN="$("$CXX" -print-file-name=libubsan.so)"
# An ASan-built addon loads only into a process whose first library is the ASan runtime.
mapfile -t isas < <(LD_PRELOAD="$LIBASAN $LIBUBSAN" ASAN_OPTIONS=detect_leaks=0 \
  node -e "console.log(require(process.argv[1]).info().isas.join('\n'))" "$OUT/qkernels.node")
if [ -n "${QK_SANITIZE_ISAS:-}" ]; then read -r -a isas <<<"$QK_SANITIZE_ISAS"; fi
# node itself: no leak check (V8 does not free its heap at exit by design); V8 and
# the addon's SIGBUS handler install their own signal handlers.
NODE_ASAN="detect_leaks=0:halt_on_error=1:allow_user_segv_handler=1:handle_segv=0:handle_sigbus=0:detect_odr_violation=0"
# Tests that never load the addon here: the TypeScript backend's half of the
# two-backend suites (QKERNELS_ISA names a native ISA, which the js backend refuses
# at load), and the older-CPU runs under qemu-x86_64 (ASan's shadow memory does not
# map under qemu-user), and the 1024x2048 gptqAsync event-loop test, whose own
# 60 s timeout a layer that size does not meet at ASan's speed.
SKIP_RE='^(?!js backend)(?!.*older x86-64 CPUs)(?!.*1024x2048 layer)'
run_suites() {  # isa (or "" for none) suites...
  local isa="$1"
  shift
  local log="$LOGS/sanitize-vitest-${isa:-all}.log" rc=0 s0=$SECONDS
  LD_PRELOAD="$LIBASAN $LIBUBSAN" ASAN_OPTIONS="$NODE_ASAN" QKERNELS_ADDON="$OUT/qkernels.node" QKERNELS_ISA="$isa" \
    QKERNELS_FUZZ_ITERATIONS="${QKERNELS_FUZZ_ITERATIONS:-200}" QKERNELS_FUZZ_RUNS="${QKERNELS_FUZZ_RUNS:-200}" \
    npx vitest run "$@" -t "$SKIP_RE" --testTimeout=600000 --hookTimeout=600000 >"$log" 2>&1 || rc=$?
  # At ASan's speed a run of long synchronous calls (GPTQ/AWQ) can hold a worker's
  # event loop past the 60 s of vitest's own worker RPC, which it then reports as an
  # unhandled error although every test passed: not a failure here, when that is the
  # only error and no test or file failed.
  local unhandled timeouts
  unhandled="$(grep -c 'Unhandled Error ⎯' "$log" || true)"
  timeouts="$(grep -c 'Error: \[vitest-worker\]: Timeout calling "onTaskUpdate"' "$log" || true)"
  if [ "$rc" != 0 ] && [ "$unhandled" -gt 0 ] && [ "$unhandled" = "$timeouts" ] \
    && ! grep -Eq '^ +(Test Files|Tests) .*failed' "$log" && grep -Eq '^ +Tests +[0-9]+ passed' "$log"; then
    echo "   (vitest's worker RPC timed out $timeouts time(s) while native calls ran; every test passed)"
    rc=0
  fi
  check_log "vitest ${isa:+QKERNELS_ISA=$isa }$(echo "$@" | sed 's#test/##g;s#\.test\.ts##g')" "$log" "$rc" \
    ": $(grep -E '^ +Tests ' "$log" | sed 's/ \+/ /g;s/^ //') [$((SECONDS - s0)) s]"
}
say "vitest suites against ${OUT#"$ROOT"/}/qkernels.node (ISAs here: ${isas[*]})"
# shellcheck disable=SC2086
if [ -n "${QK_SANITIZE_SUITES:-}" ]; then
  for isa in "${isas[@]}"; do run_suites "$isa" $QK_SANITIZE_SUITES; done
elif [ "$MODE" = ci ]; then
  run_suites "" $ci_once_suites
  for isa in "${isas[@]}"; do run_suites "$isa" $ci_isa_suites; done
else
  run_suites "" $once_suites
  for isa in "${isas[@]}"; do run_suites "$isa" $isa_suites; done
fi

if [ "$status" != 0 ]; then say "FAILED"; exit 1; fi
say "clean: no sanitizer report, no leak"

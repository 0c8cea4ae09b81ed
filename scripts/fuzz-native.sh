#!/usr/bin/env bash
# libFuzzer targets of the native code that takes untrusted bytes or sizes
# (native/fuzz/*.cc, built with clang -fsanitize=fuzzer,address,undefined):
#   fuzz_ops          the kernels' entry points (ops.h) over arbitrary block bytes,
#                     every type, every ISA of this CPU, inconsistent lengths refused
#   fuzz_mapped_file  qk::MappedFile on a file written from the input: map, bytes,
#                     paging hints, copy-on-write, truncation under the mapping
#   fuzz_calibrated   GPTQ / AWQ (calibrated.h): small shapes, arbitrary parameters
#                     and floats (NaN, Inf, huge): an error Status or done
#
#   bash scripts/fuzz-native.sh            fuzz each target for RUNS inputs (default
#                                          100000, at most FUZZ_SECONDS s each, default 900)
#   bash scripts/fuzz-native.sh --replay   CI: every kept crash input and seed, then
#                                          REPLAY_RUNS (default 2000) fuzzed inputs per target
#   FUZZ_TARGETS="fuzz_ops ..."            only these targets
#
# Working corpora grow in build-fuzz/corpus/<target>/ (seeded from the committed
# native/fuzz/corpus/<target>/). A crashing input is written to
# test/fixtures/fuzz-crashes/<target>/ (crash-*, timeout-*, oom-*), where --replay runs
# it again on every CI run: commit it as a regression fixture. Logs: build-logs/fuzz-*.log.
# clang is installed from Debian's packages under CI=true when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${FUZZ_OUT:-$ROOT/build-fuzz}"
RUNS="${RUNS:-100000}"
FUZZ_SECONDS="${FUZZ_SECONDS:-900}"
REPLAY_RUNS="${REPLAY_RUNS:-2000}"
replay=false
[ "${1:-}" = --replay ] && replay=true
LOGS="$ROOT/build-logs"
mkdir -p "$OUT/obj" "$LOGS"
t0=$SECONDS
say() { echo "== fuzz-native: $* [$((SECONDS - t0)) s]"; }

CLANGXX="${CLANGXX:-clang++}"
fuzzer_runtime_ok() {
  command -v "$CLANGXX" >/dev/null 2>&1 || return 1
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$OUT/probe.cc"
  "$CLANGXX" -fsanitize=fuzzer,address,undefined "$OUT/probe.cc" -o "$OUT/probe" >/dev/null 2>&1
}
if ! fuzzer_runtime_ok; then
  if [ "${CI:-}" = "true" ]; then
    say "installing clang and its sanitizer/libFuzzer runtimes (Debian)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # libclang-rt-dev (Debian's default version) holds libFuzzer and the sanitizer
    # runtimes: only a recommend of clang, so named here
    $SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
  fi
  if ! fuzzer_runtime_ok; then
    echo "== native fuzzers: SKIPPED (needs clang with libFuzzer: apt-get install clang libclang-rt-dev; CI=true installs them)"
    exit 0
  fi
fi

SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
FLAGS=(-O1 -std=c++17 -ffp-contract=off -pthread -Wall -Wextra -Wno-unknown-pragmas "${SAN[@]}")
targets=()
for f in native/fuzz/*.cc; do targets+=("$(basename "${f%.cc}")"); done
[ -n "${FUZZ_TARGETS:-}" ] && read -r -a targets <<<"$FUZZ_TARGETS"

# ---- build: the library with coverage (fuzzer-no-link), one object per source in parallel ----
say "building ${targets[*]} with $("$CLANGXX" --version | head -1)"
flags_id="$(printf '%s ' "$CLANGXX" "${FLAGS[@]}" | md5sum | cut -c1-12)"
if [ "$(cat "$OUT/obj/.flags" 2>/dev/null)" != "$flags_id" ]; then rm -f "$OUT"/obj/*.o; echo "$flags_id" >"$OUT/obj/.flags"; fi
srcs=()
while read -r f; do
  [ -n "$f" ] && [ "$(basename "$f")" != addon.cc ] && srcs+=("$f")
done <native/sources.txt
export CLANGXX OUT ROOT FLAGS_STR="${FLAGS[*]}"
compile_one() {
  local src="$1" obj
  obj="$OUT/obj/$(basename "${src%.cc}").o"
  if [ -f "$obj" ] && [ "$obj" -nt "$ROOT/$src" ] && [ -z "$(find "$ROOT/native/src" "$ROOT/native/fuzz" -name '*.h' -newer "$obj" -print -quit)" ]; then return 0; fi
  # shellcheck disable=SC2086
  "$CLANGXX" $FLAGS_STR -fsanitize=fuzzer-no-link -I"$ROOT/native/src" -I"$ROOT/native/fuzz" -c "$ROOT/$src" -o "$obj" \
    || { echo "compile failed: $src" >&2; return 1; }
}
export -f compile_one
{ printf '%s\n' "${srcs[@]}"; for t in "${targets[@]}"; do echo "native/fuzz/$t.cc"; done; } \
  | xargs -P "$(nproc)" -I{} bash -c 'compile_one "$1"' _ {} 2>"$LOGS/fuzz-build.log" || { cat "$LOGS/fuzz-build.log"; exit 1; }
core=()
for f in "${srcs[@]}"; do core+=("$OUT/obj/$(basename "${f%.cc}").o"); done
for t in "${targets[@]}"; do
  "$CLANGXX" "${FLAGS[@]}" -fsanitize=fuzzer "$OUT/obj/$t.o" "${core[@]}" -o "$OUT/$t"
done

# The addon's SIGBUS guard (mapped_file.cc) must see SIGBUS: ASan leaves it alone.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:handle_sigbus=0:allow_user_segv_handler=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for t in "${targets[@]}"; do
  seeds="$ROOT/native/fuzz/corpus/$t"
  crashes="$ROOT/test/fixtures/fuzz-crashes/$t"
  corpus="$OUT/corpus/$t"
  mkdir -p "$corpus" "$crashes"
  max_len=4096
  [ "$t" = fuzz_mapped_file ] && max_len=20000
  common=(-max_len="$max_len" -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$crashes/" -print_final_stats=1)
  log="$LOGS/fuzz-$t.log"
  s0=$SECONDS
  if $replay; then
    # 1. every kept crash input (a regression fixture) and seed, once each; the
    #    inputs named in <crashes>/open.txt (bugs found, not fixed yet) run one by
    #    one and only warn while they still fail
    open_list="$crashes/open.txt"
    is_open() { [ -f "$open_list" ] && grep -qxF "$(basename "$1")" <(sed 's/[[:space:]]*#.*//;/^$/d' "$open_list"); }
    files=()
    : >"$log"
    while read -r f; do
      [ "$(basename "$f")" = open.txt ] && continue
      if is_open "$f"; then
        if QK_FUZZ_OPEN_BUGS=1 "$OUT/$t" "${common[@]}" -artifact_prefix="$OUT/replay-$t-" "$f" >>"$log.open" 2>&1; then
          echo "   $t: open bug $(basename "$f") no longer reproduces: remove it from ${open_list#"$ROOT"/}"
        else
          echo "   $t: open bug $(basename "$f") still reproduces (${open_list#"$ROOT"/})"
        fi
      else
        files+=("$f")
      fi
    done < <(find "$crashes" "$seeds" -type f 2>/dev/null | sort)
    rc=0
    if ((${#files[@]})); then
      "$OUT/$t" "${common[@]}" -artifact_prefix="$OUT/replay-$t-" "${files[@]}" >>"$log" 2>&1 || rc=$?
    fi
    # 2. a few thousand fuzzed inputs from the seeds (the corpus kept from earlier runs)
    if [ "$rc" = 0 ]; then
      "$OUT/$t" "${common[@]}" -runs="$REPLAY_RUNS" -max_total_time=20 "$corpus" "$seeds" >>"$log" 2>&1 || rc=$?
    fi
  else
    rc=0
    "$OUT/$t" "${common[@]}" -runs="$RUNS" -max_total_time="$FUZZ_SECONDS" "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
  fi
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  cov="$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)"
  if [ "$rc" = 0 ]; then
    echo "   $t: ${execs:-?} inputs, no crash ($cov, corpus $(find "$corpus" -type f | wc -l) files) [$((SECONDS - s0)) s]"
  else
    echo "   $t: FAILED (exit $rc) after ${execs:-?} inputs; see $log"
    grep -E -m1 -A25 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|^fuzz: ' "$log" | sed 's/^/     /' || tail -20 "$log"
    grep -E 'Test unit written to|artifact' "$log" | sed 's/^/     /' || true
    status=1
  fi
done
[ "$status" = 0 ] || { say "FAILED"; exit 1; }
say "done"

#!/usr/bin/env bash
# The whole test suite, as `npm test` runs it:
#   1. vitest: API, parity native-vs-TypeScript on every ISA, golden files, errors, GC,
#      CPU dispatch (ISA forcing, /proc/cpuinfo, older CPUs under qemu-x86_64);
#      then the type tests (test/types, vitest --typecheck) and the package lint
#      (scripts/pack-lint.sh: publint and @arethetypeswrong/cli on the packed tarball);
#   2. the C++ kernel parity test on this CPU; the same tests and a part of the vitest
#      suites under ASan+UBSan (scripts/test-sanitize.sh, QK_SANITIZE=ci), and the
#      libFuzzer targets of native/fuzz replaying their crash fixtures and seeds
#      (scripts/fuzz-native.sh --replay);
#   3. the NEON kernels under qemu-aarch64, when the cross toolchain is here or CI=true
#      (then scripts/test-arm64.sh installs it from Debian's packages);
#   4. packaging: prebuilds (linux-x64, and linux-arm64 cross-compiled when the cross
#      toolchain is here or CI=true), `npm pack` installed into a fresh project with no
#      compiler on PATH (scripts/test-pack.sh), the arm64 prebuild and the tarball in
#      Debian's arm64 Node under qemu (scripts/test-arm64-node.sh, same condition);
#   5. the CMake build: the addon with cmake-js plus the kernel tests with ctest (with
#      QK_CMAKE_ARM64=1 also the aarch64 toolchain file's ctest under qemu).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
t0=$SECONDS
step() { echo "== $* [$((SECONDS - t0)) s]"; }

cross=false
if [ "${CI:-}" = "true" ] || { command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-g++ >/dev/null; }; then
  cross=true
fi
if [ "${CI:-}" = "true" ]; then
  # Before vitest: the dispatch suite runs older x86-64 CPUs under qemu-x86_64.
  need=()
  command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
  command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || need+=(g++-aarch64-linux-gnu)
  command -v cmake >/dev/null 2>&1 || need+=(cmake)
  # the native fuzz targets (scripts/fuzz-native.sh): clang with libFuzzer
  command -v clang++ >/dev/null 2>&1 || need+=(clang)
  compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a" >/dev/null || need+=(libclang-rt-dev)
  if ((${#need[@]})); then
    step "installing ${need[*]}"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

step "vitest"
npx vitest run
step "type tests of the public API (vitest --typecheck)"
npm run --silent test:types
step "package lint: publint and attw on the npm pack tarball"
npm run --silent test:pack-lint
step "leak campaign (every public call, 1/10 of npm run test:leaks)"
node --expose-gc dist/bench/leaks.js --scale 0.1
step "native kernel parity ($(uname -m))"
bash scripts/test-native.sh
step "sanitizers: kernel tests and addon suites under ASan+UBSan (QK_SANITIZE=ci; npm run test:sanitize for all)"
QK_SANITIZE=ci bash scripts/test-sanitize.sh
step "native fuzz targets: crash fixtures and seed corpora replayed, a few thousand inputs each"
bash scripts/fuzz-native.sh --replay
if $cross; then
  step "arm64 NEON kernels under qemu"
  bash scripts/test-arm64.sh
else
  echo "== arm64 NEON kernels: SKIPPED (needs qemu-user and g++-aarch64-linux-gnu; CI=true installs them)"
fi

host_arch="$(node -p process.arch)"
if $cross; then
  step "prebuilds (linux-x64, linux-arm64)"
  bash scripts/prebuild.sh all
else
  step "prebuild (linux-$host_arch; linux-arm64 SKIPPED: no cross toolchain)"
  bash scripts/prebuild.sh "$host_arch"
fi
for f in prebuilds/*/*.node; do echo "   $f: $(wc -c <"$f") bytes"; done
step "packed package, installed without a compiler"
bash scripts/test-pack.sh
if $cross && [ "$host_arch" != arm64 ]; then
  step "arm64 prebuild and package in Debian's arm64 Node under qemu"
  bash scripts/test-arm64-node.sh
fi

if command -v cmake >/dev/null 2>&1; then
  step "CMake: addon (cmake-js) and kernel tests (ctest)"
  mkdir -p build-logs
  npx cmake-js rebuild --out build-cmake --CDQK_BUILD_TESTS=ON >build-logs/cmake-js.log 2>&1 || { cat build-logs/cmake-js.log; exit 1; }
  node -e "
    const a = require('./build-cmake/Release/qkernels.node');
    const i = a.info();
    console.log('   build-cmake/Release/qkernels.node loads: isa ' + i.isa + ', isas ' + i.isas.join(' '));"
  ctest --test-dir build-cmake --output-on-failure | grep -E 'Test +#|tests passed|Failed' | sed 's/^/   /'
  # The same tests as scripts/test-arm64.sh, built through the toolchain file:
  # only on request (QK_CMAKE_ARM64=1), to keep CI short.
  if $cross && [ "$host_arch" = x64 ] && [ "${QK_CMAKE_ARM64:-0}" = 1 ]; then
    step "CMake: aarch64 toolchain file, ctest under qemu-aarch64"
    cmake -S . -B build-ctest-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake >build-logs/ctest-arm64.log 2>&1 \
      && cmake --build build-ctest-arm64 -j"$(nproc)" >>build-logs/ctest-arm64.log 2>&1 || { cat build-logs/ctest-arm64.log; exit 1; }
    ctest --test-dir build-ctest-arm64 --output-on-failure | grep -E 'Test +#|tests passed|Failed' | sed 's/^/   /'
  fi
else
  echo "== CMake: SKIPPED (cmake not installed)"
fi
step "all tests passed"

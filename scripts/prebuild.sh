#!/usr/bin/env bash
# N-API prebuilds with prebuildify (stripped, libc-tagged) into prebuilds/<platform>-<arch>/,
# the folder node-gyp-build looks in before it ever builds from source.
#   usage: bash scripts/prebuild.sh [x64|arm64|all]...     (default: all = x64 arm64)
# An arch other than the host's is cross-compiled with Debian's <triple>-g++
# (g++-aarch64-linux-gnu for arm64, g++-x86-64-linux-gnu for x64), installed
# with apt-get when missing. Every build runs in its own staging folder under
# build-prebuild/, so the developer's build/ (which node-gyp-build prefers over
# prebuilds/) is never wiped nor replaced by a foreign-arch binary.
# No -march anywhere: the ISA is chosen at run time (native/src/dispatch.cc).
# Env: JOBS (parallel compiles, default: nproc).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# "prebuild" is also npm's pre-hook name for the "build" script: when this runs
# as the hook of `npm run build`, do nothing (prebuilds are made on request).
if [ -r /proc/$$/stat ]; then
  pid=$PPID
  while [ "${pid:-0}" -gt 1 ] && [ -r "/proc/$pid/cmdline" ]; do
    read -r -a words < <(tr '\0' ' ' < "/proc/$pid/cmdline"; echo) || true
    if [ "${words[0]:-}" = npm ] || [[ "${words[*]:0:2}" == *bin/npm* ]] || [[ "${words[*]:0:2}" == *npm-cli.js* ]]; then
      for ((i = 0; i < ${#words[@]} - 1; i++)); do
        case "${words[i]}" in
          run | run-script | rum | urn)
            if [ "${words[i + 1]}" = build ]; then
              echo "== prebuild: skipped (it is the pre-hook of 'npm run build'; run 'npm run prebuild' to make prebuilds)"
              exit 0
            fi
            break ;;
        esac
      done
      break
    fi
    pid=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f2) || break
  done
fi

arches=()
for a in "${@:-all}"; do
  case "$a" in
    all) arches+=(x64 arm64) ;;
    x64 | arm64) arches+=("$a") ;;
    *) echo "prebuild: unknown arch '$a' (expected x64, arm64 or all)" >&2; exit 2 ;;
  esac
done

host="$(node -p process.arch)"
export JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

# node-gyp needs the headers of this Node: use the ones installed beside it
# (Debian/NodeSource: /usr/include/node) instead of downloading them.
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix="$(node -p "require('path').resolve(process.execPath, '..', '..')")"
  if [ -f "$prefix/include/node/node_api.h" ] && [ -f "$prefix/include/node/common.gypi" ]; then
    export npm_config_nodedir="$prefix"
  fi
fi

apt_install() {
  echo "== installing $*"
  local sudo=""
  [ "$(id -u)" != 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

PREBUILDIFY="$ROOT/node_modules/.bin/prebuildify"
[ -x "$PREBUILDIFY" ] || { echo "prebuild: prebuildify is not installed (npm install)" >&2; exit 1; }

for arch in "${arches[@]}"; do
  case "$arch" in
    x64) triple=x86_64-linux-gnu; machine='X86-64'; pkg=g++-x86-64-linux-gnu ;;
    arm64) triple=aarch64-linux-gnu; machine='AArch64'; pkg=g++-aarch64-linux-gnu ;;
  esac
  stage="$ROOT/build-prebuild/$arch"
  rm -rf "$stage" "$ROOT/prebuilds/linux-$arch"
  mkdir -p "$stage/native"
  cp binding.gyp package.json "$stage/"
  cp -R native/src native/sources.txt "$stage/native/"

  env_cross=()
  strip_bin=strip
  if [ "$arch" != "$host" ]; then
    command -v "$triple-g++" >/dev/null 2>&1 || apt_install "$pkg"
    env_cross=(CC="$triple-gcc" CXX="$triple-g++" LINK="$triple-g++" AR="$triple-ar")
    strip_bin="$triple-strip"
  fi

  echo "== prebuild linux-$arch${env_cross:+ (cross: $triple-g++)}"
  start=$SECONDS
  env "${env_cross[@]}" "$PREBUILDIFY" --napi --strip --strip-bin "$strip_bin" --tag-libc \
    --arch "$arch" --cwd "$stage" --out "$ROOT"

  out=("$ROOT/prebuilds/linux-$arch"/*.node)
  [ -f "${out[0]}" ] || { echo "prebuild: no .node in prebuilds/linux-$arch" >&2; exit 1; }
  if command -v readelf >/dev/null 2>&1; then
    got="$(readelf -h "${out[0]}" | sed -n 's/^ *Machine: *//p')"
    case "$got" in
      *"$machine"*) ;;
      *) echo "prebuild: ${out[0]} is for '$got', expected $machine" >&2; exit 1 ;;
    esac
  fi
  size=$(wc -c < "${out[0]}")
  needs=""
  objdump_bin=objdump
  [ "$arch" != "$host" ] && objdump_bin="$triple-objdump"
  if command -v "$objdump_bin" >/dev/null 2>&1; then
    # The newest glibc / libstdc++ symbol versions it links against: the oldest
    # systems it loads on (elsewhere node-gyp-build falls back to a source build).
    needs="; needs $("$objdump_bin" -T "${out[0]}" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)"
    needs="$needs, $("$objdump_bin" -T "${out[0]}" | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -n 1)"
  fi
  echo "== prebuilds/linux-$arch/$(basename "${out[0]}"): $size bytes ($((size / 1024)) KiB, stripped$needs), $((SECONDS - start)) s"
done

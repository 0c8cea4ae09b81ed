#!/usr/bin/env bash
# The package as a user gets it:
#   1. `npm pack` (runs `prepare` = tsc) and checks the tarball holds dist/,
#      prebuilds/, the native sources listed in native/sources.txt and
#      binding.gyp, and nothing else of the repo;
#   2. installs the tarball into a fresh temporary project with a PATH that holds
#      only node, npm and sh (no compiler, make or python: a source build would fail),
#      with and without the package's install script allowed to run, and checks
#      (scripts/pack-check.js) that backend() is 'native' with the CPU's best ISA
#      and that a q4_0 matmul agrees with QKERNELS_BACKEND=js;
#   3. unless QK_PACK_SOURCE_BUILD=0: installs the same tarball with the compiler
#      and --build-from-source, i.e. the fallback node-gyp-build takes where no
#      prebuild matches, and checks that the addon it built is the one loaded.
# Needs prebuilds/linux-<arch>/ for this machine (npm run prebuild:<arch>).
#   usage: bash scripts/test-pack.sh      env: KEEP_TMP=1 keeps the temp folder
# Leaves the tarball path in build-pack/tarball (scripts/test-arm64-node.sh reuses it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
arch="$(node -p process.arch)"
start=$SECONDS

shopt -s nullglob
pre=(prebuilds/linux-"$arch"/*.node)
shopt -u nullglob
if [ ${#pre[@]} = 0 ]; then
  echo "test-pack: no prebuild for linux-$arch in prebuilds/ (run: npm run prebuild:$arch)" >&2
  exit 1
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/qkernels-pack.XXXXXX")"
cleanup() { if [ "${KEEP_TMP:-}" = 1 ]; then echo "test-pack: kept $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

echo "== npm pack"
npm pack --silent --pack-destination "$TMP" >"$TMP/pack.out" 2>"$TMP/pack.err" || { cat "$TMP/pack.err" >&2; exit 1; }
TGZ="$TMP/$(tail -n 1 "$TMP/pack.out")"
[ -f "$TGZ" ] || { echo "test-pack: npm pack made no tarball" >&2; cat "$TMP/pack.out" "$TMP/pack.err" >&2; exit 1; }
mkdir -p build-pack
cp "$TGZ" build-pack/
echo "$ROOT/build-pack/$(basename "$TGZ")" >build-pack/tarball

echo "== tarball contents ($(basename "$TGZ"), $(($(wc -c <"$TGZ") / 1024)) KiB)"
tar -tzf "$TGZ" | sort >"$TMP/files"
bad=$(grep -v -E '^package/(package\.json|README\.md|LICENSE[^/]*|binding\.gyp|native/sources\.txt|native/src/[^/]+\.(cc|h)|dist/(lib|bench)/.+\.(m?js|d\.m?ts)|prebuilds/[a-z0-9]+-[a-z0-9]+/[^/]+\.node)$' "$TMP/files" || true)
if [ -n "$bad" ]; then
  echo "test-pack: the tarball ships files it must not:" >&2
  echo "$bad" >&2
  exit 1
fi
need=(package/package.json package/binding.gyp package/native/sources.txt package/dist/lib/index.js package/dist/lib/index.d.ts package/dist/lib/index.mjs package/dist/lib/index.d.mts)
while read -r f; do [ -n "$f" ] && need+=("package/$f"); done <native/sources.txt
for p in prebuilds/*/*.node; do need+=("package/$p"); done
for f in "${need[@]}"; do
  grep -qxF "$f" "$TMP/files" || { echo "test-pack: the tarball lacks $f" >&2; exit 1; }
done
sed 's/^package\//  /' "$TMP/files" | grep -E 'prebuilds/|binding|sources' || true
echo "   $(wc -l <"$TMP/files") files"

# A bin folder with node, npm and sh (npm runs scripts with sh) only.
mkdir -p "$TMP/bin"
ln -s "$(command -v node)" "$TMP/bin/node"
ln -s "$(command -v sh)" "$TMP/bin/sh"
ln -s "$(readlink -f "$(command -v npm)")" "$TMP/bin/npm"
for tool in cc gcc g++ c++ clang clang++ make python3 python node-gyp; do
  if PATH="$TMP/bin" command -v "$tool" >/dev/null 2>&1; then
    echo "test-pack: $tool is still reachable from the hidden-toolchain PATH" >&2
    exit 1
  fi
done

# The environment of a fresh shell: nothing from the npm run that called us
# (npm_config_local_prefix would point npm back at this repo), no CC/CXX.
clean_env=(env -i "HOME=$HOME" "TMPDIR=${TMPDIR:-/tmp}" "LANG=${LANG:-C.UTF-8}")
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY NODE_EXTRA_CA_CERTS SSL_CERT_FILE \
  npm_config_registry npm_config_cache npm_config_userconfig npm_config_globalconfig npm_config_cafile; do
  if [ -n "${!v:-}" ]; then clean_env+=("$v=${!v}"); fi
done

# Reference results from the TypeScript backend of the installed package.
check() { # check DIR LABEL
  local dir="$1" label="$2"
  (cd "$dir" && "${clean_env[@]}" PATH="$TMP/bin" QKERNELS_BACKEND=js node "$ROOT/scripts/pack-check.js" js "$TMP/ref.json" >/dev/null)
  echo -n "   $label: "
  (cd "$dir" && "${clean_env[@]}" PATH="$TMP/bin" node "$ROOT/scripts/pack-check.js" native "$TMP/ref.json")
}

install_into() { # install_into DIR PATH [VAR=value...] [-- npm args...]
  local dir="$1" path="$2" extra=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do extra+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  mkdir -p "$dir"
  # npm >= 11.x runs a dependency's install script only when the project allows it.
  printf '{ "name": "qk-pack-test", "version": "1.0.0", "private": true%s }\n' \
    "$([ "${ALLOW_SCRIPTS:-0}" = 1 ] && echo ', "allowScripts": { "qkernels": true }')" >"$dir/package.json"
  if ! (cd "$dir" && "${clean_env[@]}" PATH="$path" "${extra[@]}" npm install --no-audit --no-fund --prefer-offline \
    --loglevel=error "$@" "$TGZ" >"$dir/install.log" 2>&1); then
    echo "test-pack: npm install failed in $dir:" >&2
    cat "$dir/install.log" >&2
    exit 1
  fi
}

echo "== install without a compiler (PATH=$TMP/bin: node, npm, sh)"
install_into "$TMP/app" "$TMP/bin"
[ ! -e "$TMP/app/node_modules/qkernels/build" ] || { echo "test-pack: something was compiled at install" >&2; exit 1; }
check "$TMP/app" "prebuild, install script not run (npm's default)"

echo "== install without a compiler, install script allowed (node-gyp-build finds the prebuild)"
ALLOW_SCRIPTS=1 install_into "$TMP/app2" "$TMP/bin" -- --foreground-scripts
[ ! -e "$TMP/app2/node_modules/qkernels/build" ] || { echo "test-pack: node-gyp-build built from source although a prebuild matches" >&2; cat "$TMP/app2/install.log" >&2; exit 1; }
check "$TMP/app2" "prebuild, install script run"

if [ "${QK_PACK_SOURCE_BUILD:-1}" != 0 ]; then
  echo "== install with the compiler and --build-from-source (the no-prebuild fallback)"
  nodedir="${npm_config_nodedir:-}"
  if [ -z "$nodedir" ]; then
    prefix="$(node -p "require('path').resolve(process.execPath, '..', '..')")"
    [ -f "$prefix/include/node/common.gypi" ] && nodedir="$prefix"
  fi
  s=$SECONDS
  # npm does not pass unknown flags on to scripts: node-gyp-build and node-gyp
  # read these two from the environment.
  ALLOW_SCRIPTS=1 install_into "$TMP/app3" "$PATH" JOBS=max npm_config_build_from_source=true ${nodedir:+npm_config_nodedir="$nodedir"} \
    -- --foreground-scripts
  built=("$TMP"/app3/node_modules/qkernels/build/Release/*.node)
  [ -f "${built[0]}" ] || { echo "test-pack: --build-from-source built nothing" >&2; cat "$TMP/app3/install.log" >&2; exit 1; }
  # node-gyp-build prefers build/ over prebuilds/: prove the loaded addon is the local build.
  rm -rf "$TMP/app3/node_modules/qkernels/prebuilds"
  check "$TMP/app3" "built from source at install ($((SECONDS - s)) s)"
fi
echo "== test-pack: ok ($((SECONDS - start)) s)"

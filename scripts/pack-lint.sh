#!/usr/bin/env bash
# Lints the package as npm packs it: `npm pack` (of the current dist/), then
# publint (package.json fields, exports map, file formats) and
# @arethetypeswrong/cli (types under node10, node16 from CJS and from ESM, and
# bundler resolution) on the tarball. Fails on any message of either, publint's
# suggestions included.
#   usage: bash scripts/pack-lint.sh       (npm run test:pack-lint)
# Packs with --ignore-scripts (no tsc, to keep it a few seconds); runs
# `npm run build:ts` first only when dist/ is missing or older than lib/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$SECONDS

if [ ! -f dist/lib/index.mjs ] || [ ! -f dist/lib/index.js ] || [ -n "$(find lib -name '*.ts' -newer dist/lib/index.mjs -print -quit)" ]; then
  echo "== dist/ missing or older than lib/: npm run build:ts"
  npm run --silent build:ts
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/qkernels-pack-lint.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
npm pack --silent --ignore-scripts --pack-destination "$TMP" >"$TMP/pack.out" 2>"$TMP/pack.err" || { cat "$TMP/pack.err" >&2; exit 1; }
TGZ="$TMP/$(tail -n 1 "$TMP/pack.out")"
[ -f "$TGZ" ] || { echo "pack-lint: npm pack made no tarball" >&2; cat "$TMP/pack.out" "$TMP/pack.err" >&2; exit 1; }
echo "== $(basename "$TGZ"): $(tar -tzf "$TGZ" | wc -l) files, $(($(wc -c <"$TGZ") / 1024)) KiB"

echo "== publint"
# --strict: warnings fail too; a suggestion only prints, so require "All good!".
if ! npx --no-install publint run --strict --level suggestion "$TGZ" >"$TMP/publint.out" 2>&1; then
  cat "$TMP/publint.out"; echo "pack-lint: publint failed" >&2; exit 1
fi
cat "$TMP/publint.out"
grep -q 'All good!' "$TMP/publint.out" || { echo "pack-lint: publint reported a suggestion" >&2; exit 1; }

echo "== attw (@arethetypeswrong/cli)"
npx --no-install attw --profile strict --format table --no-color "$TGZ" || { echo "pack-lint: attw found problems" >&2; exit 1; }

echo "== pack-lint: ok ($((SECONDS - start)) s)"

#!/usr/bin/env bash
# Prints the path of a built classic remote-key-server (Orange's Go server, which `rks migrate`
# takes deployments over from), for the migration tests.
#   1. $RKS_CLASSIC_BIN
#   2. a binary this script built before from the same source (cache: ${RKS_CACHE_DIR:-~/.cache/rks})
#   3. build it from its source, ${RKS_CLASSIC_SRC:-../shared/peers/remote-key-server}, with its
#      modules from the Go module proxy (under a minute); progress goes to stderr.
# Only the path goes to stdout: BIN=$(scripts/classic-bin.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${RKS_CLASSIC_SRC:-$ROOT/../shared/peers/remote-key-server}
CACHE_DIR=${RKS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/rks}

say() { printf 'classic-bin: %s\n' "$*" >&2; }
found() { echo "$1"; exit 0; }

if [ -n "${RKS_CLASSIC_BIN:-}" ]; then
  [ -x "$RKS_CLASSIC_BIN" ] || { say "RKS_CLASSIC_BIN=$RKS_CLASSIC_BIN is not an executable"; exit 1; }
  found "$RKS_CLASSIC_BIN"
fi
[ -f "$SRC/go.mod" ] || { say "no classic source at $SRC (set RKS_CLASSIC_SRC or RKS_CLASSIC_BIN)"; exit 1; }
# The cache is keyed by the source's content, so a changed source builds anew.
STAMP=$(cd "$SRC" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
BIN=$CACHE_DIR/classic-$STAMP/remote-key-server
[ -x "$BIN" ] && found "$BIN"

command -v go >/dev/null || { say "no Go toolchain to build the classic; set RKS_CLASSIC_BIN"; exit 1; }
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/classic-build.lock"
if ! flock -n 9; then
  say "waiting for another build to finish (see $CACHE_DIR)"
  flock 9
fi
[ -x "$BIN" ] && found "$BIN"
say "building the classic remote-key-server from $SRC"
start=$(date +%s)
mkdir -p "$(dirname "$BIN")"
(cd "$SRC" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -o "$BIN.tmp" ./cmd/remote-key-server) >&2
mv "$BIN.tmp" "$BIN"
say "built in $(( $(date +%s) - start ))s: $BIN"
found "$BIN"

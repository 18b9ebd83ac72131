#!/usr/bin/env bash
# Prints the path of a Pebble binary (Let's Encrypt's ACME test server), for the ACME tests and
# make dev ACME=1. Its companion pebble-challtestsrv (a DNS server for make dev) is built beside it.
#   1. $RKS_PEBBLE_BIN
#   2. `pebble` on PATH
#   3. a binary this script built before (cache: ${RKS_CACHE_DIR:-~/.cache/rks})
#   4. build it from the Go module proxy (about a minute); progress goes to stderr.
# Only the path goes to stdout: BIN=$(scripts/pebble-bin.sh).
set -euo pipefail

PEBBLE_VERSION=v2.10.1
CACHE_DIR=${RKS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/rks}
BIN=$CACHE_DIR/pebble-$PEBBLE_VERSION/pebble

say() { printf 'pebble-bin: %s\n' "$*" >&2; }
usable() { [ -x "$1" ] && "$1" -version >/dev/null 2>&1 && { [ "$1" != "$BIN" ] || [ -x "$(dirname "$1")/pebble-challtestsrv" ]; }; }
found() { echo "$1"; exit 0; }

if [ -n "${RKS_PEBBLE_BIN:-}" ]; then
  usable "$RKS_PEBBLE_BIN" || { say "RKS_PEBBLE_BIN=$RKS_PEBBLE_BIN is not a working binary"; exit 1; }
  found "$RKS_PEBBLE_BIN"
fi
if p=$(command -v pebble 2>/dev/null) && usable "$p"; then found "$p"; fi
usable "$BIN" && found "$BIN"

command -v go >/dev/null || { say "no pebble on PATH and no Go toolchain to build one; set RKS_PEBBLE_BIN"; exit 1; }
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/pebble-build.lock"
if ! flock -n 9; then
  say "waiting for another build to finish (another make dev or make test started it; see $CACHE_DIR)"
  flock 9
fi
usable "$BIN" && found "$BIN"
say "building Pebble $PEBBLE_VERSION from the Go module proxy (about a minute)"
start=$(date +%s)
GOFLAGS=-mod=mod GOTOOLCHAIN=local GOBIN=$(dirname "$BIN") go install \
  "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION" \
  "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$PEBBLE_VERSION" >&2
usable "$BIN" || { say "the build did not produce a working binary"; exit 1; }
say "built in $(( $(date +%s) - start ))s: $BIN"
found "$BIN"

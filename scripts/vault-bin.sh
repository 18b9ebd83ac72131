#!/usr/bin/env bash
# Prints the path of a usable Vault-compatible server binary (OpenBao or HashiCorp Vault).
#   1. $RKS_VAULT_BIN
#   2. `bao` or `vault` on PATH
#   3. a binary this script built before (cache: ${RKS_CACHE_DIR:-~/.cache/rks})
#   4. build one from the Go module proxy: OpenBao first, HashiCorp Vault if OpenBao's
#      module cannot be fetched. Takes minutes; progress goes to stderr.
# Only the path goes to stdout, so callers can do BIN=$(scripts/vault-bin.sh).
set -euo pipefail

OPENBAO_VERSION=v2.6.2
OPENBAO_COMMIT=dd9c19c37a878cf4a81b18efb8d6f0599c7da923
# The newest Vault release whose go.mod names an SDK version that matches its own tree
# (its replace directives for ./sdk and ./api do not apply from a wrapper module).
VAULT_VERSION=v1.21.0
CACHE_DIR=${RKS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/rks}
OPENBAO_BIN=$CACHE_DIR/openbao-$OPENBAO_VERSION/bao
VAULT_BIN=$CACHE_DIR/vault-$VAULT_VERSION/vault

say() { printf 'vault-bin: %s\n' "$*" >&2; }
usable() { [ -x "$1" ] && "$1" version >/dev/null 2>&1; }
found() { echo "$1"; exit 0; }

if [ -n "${RKS_VAULT_BIN:-}" ]; then
  usable "$RKS_VAULT_BIN" || { say "RKS_VAULT_BIN=$RKS_VAULT_BIN is not a working binary"; exit 1; }
  found "$RKS_VAULT_BIN"
fi
for name in bao vault; do
  if p=$(command -v "$name" 2>/dev/null) && usable "$p"; then found "$p"; fi
done
for b in "$OPENBAO_BIN" "$VAULT_BIN"; do usable "$b" && found "$b"; done

command -v go >/dev/null || { say "no bao/vault on PATH and no Go toolchain to build one; set RKS_VAULT_BIN"; exit 1; }

# One build at a time, even when make dev and make test start together.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/build.lock"
if ! flock -n 9; then
  say "waiting for another build to finish (another make dev or make test started it; see $CACHE_DIR)"
  flock 9
fi
for b in "$OPENBAO_BIN" "$VAULT_BIN"; do usable "$b" && found "$b"; done

export GOFLAGS=-mod=mod GOTOOLCHAIN=local
start=$(date +%s)
work=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
ticker=
cleanup() { [ -n "$ticker" ] && kill "$ticker" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Streams `go` output as progress: a line every 50 modules downloaded, errors as they come.
progress() {
  local n=0 line
  while IFS= read -r line; do
    case "$line" in
      "go: downloading "*) n=$((n + 1)); [ $((n % 50)) -eq 0 ] && say "      $n modules downloaded ($(( $(date +%s) - start ))s)" ;;
      "go: added "*|"go: upgraded "*) ;;
      *) printf '      %s\n' "$line" >&2 ;;
    esac
  done
  [ "$n" -gt 0 ] && say "      $n modules downloaded"
  return 0
}

# build MODULE OUT: compiles MODULE's main package from the wrapper module in $work.
build() {
  say "[3/3] compiling $1 (the long part: about 9 minutes on 2 cores with cold Go caches)"
  ( while sleep 30; do say "      still compiling... $(( $(date +%s) - start ))s"; done ) &
  ticker=$!
  go build -trimpath -ldflags='-s -w' -o "$work/out" "$1" 2>&1 | sed 's/^/      /' >&2
  kill "$ticker" 2>/dev/null; ticker=
  [ -x "$work/out" ] || return 1
  mkdir -p "$(dirname "$2")"
  mv "$work/out" "$2"
}

# wrapper MODULE: a module that imports MODULE, so `go build MODULE` works from it.
wrapper() {
  rm -rf "${work:?}"/*
  printf 'module rks.local/server-build\n\ngo 1.24\n' >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$1" >"$work/tools.go"
}

try_openbao() {
  say "building OpenBao $OPENBAO_VERSION from the Go module proxy (first run only)"
  wrapper github.com/openbao/openbao
  say "[1/3] resolving github.com/openbao/openbao@$OPENBAO_COMMIT"
  if ! (cd "$work" && go get "github.com/openbao/openbao@$OPENBAO_COMMIT" 2>&1 | progress; exit "${PIPESTATUS[0]}"); then
    say "      OpenBao's module is not available from this module proxy"
    return 1
  fi
  say "[2/3] pinning the modules OpenBao replaces with local directories"
  (cd "$work" && go mod edit \
      -require=github.com/openbao/openbao/api/v2@v2.6.0 \
      -require=github.com/openbao/openbao/sdk/v2@v2.6.2 \
      -replace=github.com/boltdb/bolt=github.com/boltdb/bolt@v1.3.1 &&
    go mod download 2>&1 | progress)
  (cd "$work" && build github.com/openbao/openbao "$OPENBAO_BIN")
}

try_vault() {
  say "building HashiCorp Vault $VAULT_VERSION from the Go module proxy (first run only)"
  wrapper github.com/hashicorp/vault
  say "[1/3] resolving github.com/hashicorp/vault@$VAULT_VERSION and downloading its modules (a few GB)"
  (cd "$work" && go get "github.com/hashicorp/vault@$VAULT_VERSION" 2>&1 | progress; exit "${PIPESTATUS[0]}") || return 1
  say "[2/3] dependencies downloaded"
  (cd "$work" && build github.com/hashicorp/vault "$VAULT_BIN")
}

if try_openbao && usable "$OPENBAO_BIN"; then
  bin=$OPENBAO_BIN
elif try_vault && usable "$VAULT_BIN"; then
  bin=$VAULT_BIN
else
  say "could not build OpenBao or Vault; install one and set RKS_VAULT_BIN"
  exit 1
fi
say "built $("$bin" version | head -1) in $(( $(date +%s) - start ))s: $bin"
echo "$bin"

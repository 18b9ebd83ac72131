#!/usr/bin/env bash
# Prints the path of a usable Vault-compatible server binary (OpenBao or Vault).
# Order: $RKS_VAULT_BIN, `bao` or `vault` on PATH, a cached OpenBao build, else build
# OpenBao from the Go module proxy into the cache. Progress goes to stderr; only the
# path goes to stdout, so callers can do BIN=$(scripts/vault-bin.sh).
set -euo pipefail

OPENBAO_VERSION=v2.6.2
OPENBAO_COMMIT=dd9c19c37a878cf4a81b18efb8d6f0599c7da923
CACHE_DIR=${RKS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rks}
BIN=$CACHE_DIR/openbao-$OPENBAO_VERSION/bao

say() { printf 'vault-bin: %s\n' "$*" >&2; }

usable() { [ -x "$1" ] && "$1" version >/dev/null 2>&1; }

if [ -n "${RKS_VAULT_BIN:-}" ]; then
  usable "$RKS_VAULT_BIN" || { say "RKS_VAULT_BIN=$RKS_VAULT_BIN is not a working binary"; exit 1; }
  echo "$RKS_VAULT_BIN"; exit 0
fi
for name in bao vault; do
  if p=$(command -v "$name" 2>/dev/null) && usable "$p"; then echo "$p"; exit 0; fi
done
if usable "$BIN"; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || { say "no bao/vault on PATH and no Go toolchain to build OpenBao; set RKS_VAULT_BIN"; exit 1; }

# One build at a time, even when make dev and make test start together.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/build.lock"
flock 9
if usable "$BIN"; then echo "$BIN"; exit 0; fi

work=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
say "building OpenBao $OPENBAO_VERSION from the Go module proxy (first run only, takes several minutes)"
say "cache: $BIN"
cd "$work"
cat > go.mod <<MOD
module rks.local/openbao-build

go 1.24
MOD
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/openbao/openbao"
GO
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
say "[1/3] resolving github.com/openbao/openbao@$OPENBAO_COMMIT"
go get "github.com/openbao/openbao@$OPENBAO_COMMIT" 2>&1 | sed 's/^/  /' >&2 || true
# OpenBao replaces these with directories that are not part of its module zip;
# from a wrapper module the published versions take their place.
go mod edit \
  -require=github.com/openbao/openbao/api/v2@v2.6.0 \
  -require=github.com/openbao/openbao/sdk/v2@v2.6.2 \
  -replace=github.com/boltdb/bolt=github.com/boltdb/bolt@v1.3.1
say "[2/3] downloading dependencies"
go mod tidy -e 2>&1 | grep -v '^go: finding' | sed 's/^/  /' >&2 || true
say "[3/3] compiling (this is the long part)"
( while sleep 30; do say "  still compiling... $(( $(date +%s) - start ))s"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null; rm -rf "$work"' EXIT
go build -trimpath -ldflags='-s -w' -o "$work/bao" github.com/openbao/openbao >&2
kill $ticker 2>/dev/null || true
mkdir -p "$(dirname "$BIN")"
mv "$work/bao" "$BIN"
usable "$BIN" || { say "built binary does not run"; exit 1; }
say "built $("$BIN" version) in $(( $(date +%s) - start ))s"
echo "$BIN"

#!/usr/bin/env bash
# Prints the path of a Python with resotolib 3.9.0 installed (Resoto / Fix Inventory's client
# library: it fetches rks's CA, checks it with the PSK and has CSRs signed), for the trust
# bootstrap's interoperability test.
#   1. $RKS_RESOTOLIB_PYTHON
#   2. a virtualenv this script made before (cache: ${RKS_CACHE_DIR:-~/.cache/rks})
#   3. make it: python3 -m venv, then pip install resotolib==3.9.0 from PyPI (under a minute)
# Only the path goes to stdout: PY=$(scripts/resotolib-python.sh).
set -euo pipefail

VERSION=3.9.0
CACHE_DIR=${RKS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/rks}
VENV=$CACHE_DIR/resotolib-$VERSION

say() { printf 'resotolib-python: %s\n' "$*" >&2; }
works() { "$1" -c 'import resotolib.core.ca' >/dev/null 2>&1; }

if [ -n "${RKS_RESOTOLIB_PYTHON:-}" ]; then
  works "$RKS_RESOTOLIB_PYTHON" || { say "RKS_RESOTOLIB_PYTHON=$RKS_RESOTOLIB_PYTHON cannot import resotolib.core.ca"; exit 1; }
  echo "$RKS_RESOTOLIB_PYTHON"; exit 0
fi
works "$VENV/bin/python" && { echo "$VENV/bin/python"; exit 0; }

command -v python3 >/dev/null || { say "no python3 to install resotolib with; set RKS_RESOTOLIB_PYTHON"; exit 1; }
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/resotolib.lock"
flock 9
works "$VENV/bin/python" && { echo "$VENV/bin/python"; exit 0; }
say "installing resotolib $VERSION from PyPI into $VENV"
start=$(date +%s)
# A half-made venv (an interrupted install) does not import, so it is made again from scratch.
rm -rf "$VENV"
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check "resotolib==$VERSION" >&2 || { rm -rf "$VENV"; say "pip install failed"; exit 1; }
works "$VENV/bin/python" || { say "resotolib installed but does not import"; exit 1; }
say "installed in $(( $(date +%s) - start )) s"
echo "$VENV/bin/python"

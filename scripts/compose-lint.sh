#!/usr/bin/env bash
# Validates docker-compose.yml and docker-compose.ha.yml with `docker-compose config`. There is no Docker engine here,
# only the file's syntax and references are checked. In CI the tool is installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "compose-lint: installing docker-compose (Debian package)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) >/dev/null
  else
    echo "compose-lint: docker-compose not installed; skipped (apt-get install docker-compose)" >&2
    exit 0
  fi
fi
# The file requires RKS_ADMIN_PASSWORD at run time; any value will do for a syntax check.
for f in docker-compose.yml docker-compose.ha.yml; do
  RKS_ADMIN_PASSWORD=lint docker-compose -f "$f" config --quiet
  echo "compose-lint: $f is valid" >&2
done

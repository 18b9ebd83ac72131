#!/usr/bin/env bash
# make dev: a local OpenBao/Vault dev server and rks in front of it, initialised, with
# .dev/env describing both. Ctrl-C stops everything this script started.
# RKS_* variables in the environment pass through to `rks serve`.
# ACME=1 (make dev ACME=1) also starts Pebble, Let's Encrypt's ACME test server, with a DNS
# server that resolves every name to 127.0.0.1, so that `rks edge --http-listen` answers its
# HTTP-01 challenges on RKS_DEV_EDGE_HTTP_PORT (5002).
set -euo pipefail
cd "$(dirname "$0")/.."

VAULT_PORT=${RKS_DEV_VAULT_PORT:-8200}
LISTEN=${RKS_LISTEN:-127.0.0.1:8080}
RKS_PORT=${LISTEN##*:}
# Each instance keeps its own state: .dev for the default port, .dev-<port> for others, so a
# second make dev (RKS_LISTEN=127.0.0.1:8081 RKS_DEV_VAULT_PORT=8210) leaves the first one's alone.
if [ "$RKS_PORT" = 8080 ]; then DEV=$PWD/.dev; else DEV=$PWD/.dev-$RKS_PORT; fi
mkdir -p "$DEV"
chmod 700 "$DEV"

say() { printf '\033[1mdev:\033[0m %s\n' "$*" >&2; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ACME=${ACME:-}
PEBBLE_PORT=${RKS_DEV_PEBBLE_PORT:-14000}
EDGE_HTTP_PORT=${RKS_DEV_EDGE_HTTP_PORT:-5002}
ports=("$VAULT_PORT" "$RKS_PORT")
[ -n "$ACME" ] && ports+=("$PEBBLE_PORT" $((PEBBLE_PORT + 1)) $((PEBBLE_PORT + 53)))
for p in "${ports[@]}"; do
  if port_busy "$p"; then
    say "port $p is in use (another make dev?); set RKS_DEV_VAULT_PORT or RKS_LISTEN to use others"
    exit 1
  fi
done

# Ports first, then the build (only what changed): a port in use is said at once.
"${MAKE:-make}" --no-print-directory build
BIN=$(scripts/vault-bin.sh)
ROOT_TOKEN=${RKS_DEV_ROOT_TOKEN:-root-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
ADMIN_LOGIN=${RKS_ADMIN_LOGIN:-admin}
ADMIN_PASSWORD=${RKS_ADMIN_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}
PSK=${RKS_PSK:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}
VAULT_ADDR_DEV=http://127.0.0.1:$VAULT_PORT
RKS_URL_DEV=https://127.0.0.1:$RKS_PORT

pids=()
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

say "starting $("$BIN" version | head -1) dev server on $VAULT_ADDR_DEV (log: ${DEV#$PWD/}/vault.log)"
"$BIN" server -dev -dev-root-token-id="$ROOT_TOKEN" -dev-listen-address="127.0.0.1:$VAULT_PORT" \
  -dev-no-store-token >"$DEV/vault.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "$VAULT_ADDR_DEV/v1/sys/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$VAULT_ADDR_DEV/v1/sys/health" >/dev/null || { say "Vault did not start; see ${DEV#$PWD/}/vault.log"; exit 1; }

umask 077
printf '%s' "$ADMIN_PASSWORD" >"$DEV/admin-password"
printf '%s' "$PSK" >"$DEV/psk"
rm -f "$DEV/ca.pem" "$DEV/ephemeral.pem"

say "starting rks on $RKS_URL_DEV"
RKS_LISTEN=$LISTEN RKS_ADMIN_LOGIN=$ADMIN_LOGIN \
  bin/rks serve --vault-addr "$VAULT_ADDR_DEV" --admin-password-file "$DEV/admin-password" \
  --psk-file "$DEV/psk" --ephemeral-cert-out "$DEV/ephemeral.pem" &
pids+=($!)
for _ in $(seq 100); do
  [ -s "$DEV/ephemeral.pem" ] && curl -fsS --cacert "$DEV/ephemeral.pem" "$RKS_URL_DEV/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS --cacert "$DEV/ephemeral.pem" "$RKS_URL_DEV/healthz" >/dev/null || { say "rks did not start"; exit 1; }

# Before init rks serves an ephemeral certificate (written where only we read it); init makes
# the CA in Vault, rks switches to a certificate from it, and the CA is fetched the way a
# bootstrapping client would: its fingerprint checked with the PSK.
curl -fsS --cacert "$DEV/ephemeral.pem" -X POST -H "X-Vault-Token: $ROOT_TOKEN" "$RKS_URL_DEV/rks/v1/init" >/dev/null
say "rks initialised; fetching its CA with the PSK"
bin/rks ca cert --url "$RKS_URL_DEV" --psk-file "$DEV/psk" --out "$DEV/ca.pem"
for _ in $(seq 100); do
  curl -fsS --cacert "$DEV/ca.pem" "$RKS_URL_DEV/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS --cacert "$DEV/ca.pem" "$RKS_URL_DEV/readyz" >/dev/null || { say "rks is not serving a certificate from its CA"; exit 1; }

if [ -n "$ACME" ]; then
  PEBBLE=$(scripts/pebble-bin.sh)
  mkdir -p "$DEV/pebble"
  # Pebble's own HTTPS certificate, from a throwaway CA that rks is told to trust for it.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj '/CN=make dev Pebble TLS CA' \
    -keyout "$DEV/pebble/tls-ca.key" -out "$DEV/pebble/tls-ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=localhost' \
    -keyout "$DEV/pebble/key.pem" -out "$DEV/pebble/req.pem" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$DEV/pebble/san.ext"
  openssl x509 -req -in "$DEV/pebble/req.pem" -CA "$DEV/pebble/tls-ca.pem" -CAkey "$DEV/pebble/tls-ca.key" -CAcreateserial \
    -days 30 -extfile "$DEV/pebble/san.ext" -out "$DEV/pebble/cert.pem" 2>/dev/null
  cat >"$DEV/pebble/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$PEBBLE_PORT", "managementListenAddress": "127.0.0.1:$((PEBBLE_PORT + 1))",
  "certificate": "$DEV/pebble/cert.pem", "privateKey": "$DEV/pebble/key.pem",
  "httpPort": $EDGE_HTTP_PORT, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false,
  "profiles": {"default": {"description": "make dev: one-hour certificates", "validityPeriod": 3600}}}}
JSON
  say "starting Pebble on https://127.0.0.1:$PEBBLE_PORT/dir (log: ${DEV#$PWD/}/pebble.log); it validates HTTP-01 on 127.0.0.1:$EDGE_HTTP_PORT"
  "$(dirname "$PEBBLE")/pebble-challtestsrv" -dnsserver "127.0.0.1:$((PEBBLE_PORT + 53))" -defaultIPv6 '' \
    -http01 '' -https01 '' -tlsalpn01 '' -doh '' -management "127.0.0.1:$((PEBBLE_PORT + 54))" >"$DEV/challtestsrv.log" 2>&1 &
  pids+=($!)
  PEBBLE_VA_NOSLEEP=1 "$PEBBLE" -config "$DEV/pebble/pebble.json" -dnsserver "127.0.0.1:$((PEBBLE_PORT + 53))" >"$DEV/pebble.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fsS --cacert "$DEV/pebble/tls-ca.pem" "https://127.0.0.1:$PEBBLE_PORT/dir" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS --cacert "$DEV/pebble/tls-ca.pem" "https://127.0.0.1:$PEBBLE_PORT/dir" >/dev/null || { say "Pebble did not start; see ${DEV#$PWD/}/pebble.log"; exit 1; }
fi

cat >"$DEV/env" <<ENV
export RKS_URL=$RKS_URL_DEV
export VAULT_ADDR=$VAULT_ADDR_DEV
export VAULT_TOKEN=$ROOT_TOKEN
export RKS_ADMIN_LOGIN=$ADMIN_LOGIN
export RKS_ADMIN_PASSWORD=$ADMIN_PASSWORD
export RKS_CA_CERT=$DEV/ca.pem
export RKS_PSK=$PSK
export PATH="$PWD/bin:\$PATH"
ENV
[ -n "$ACME" ] && cat >>"$DEV/env" <<ENV
export RKS_DEV_ACME_DIRECTORY=https://127.0.0.1:$PEBBLE_PORT/dir
export RKS_DEV_ACME_CA_BUNDLE=$DEV/pebble/tls-ca.pem
export RKS_DEV_PEBBLE_MANAGEMENT=https://127.0.0.1:$((PEBBLE_PORT + 1))
export RKS_DEV_EDGE_HTTP=127.0.0.1:$EDGE_HTTP_PORT
ENV

cat >&2 <<MSG

  rks      $RKS_URL_DEV   (API docs: $RKS_URL_DEV/docs; state in ${DEV#$PWD/}/)
  Vault    $VAULT_ADDR_DEV   (root token in ${DEV#$PWD/}/env)

  In another shell:
    source ${DEV#$PWD/}/env
    curl --cacert "\$RKS_CA_CERT" "\$RKS_URL/healthz"
    curl --cacert "\$RKS_CA_CERT" "\$RKS_URL/rks/v1/admin/login" -H 'Content-Type: application/json' \\
      -d "{\"login\":\"\$RKS_ADMIN_LOGIN\",\"password\":\"\$RKS_ADMIN_PASSWORD\"}"

  Everything is in memory: stopping make dev (Ctrl-C) forgets it all.

MSG
[ -n "$ACME" ] && cat >&2 <<MSG
  Pebble   https://127.0.0.1:$PEBBLE_PORT/dir   (ACME; see "ACME with make dev" in the README)
    rks acme issuer create pebble --directory "\$RKS_DEV_ACME_DIRECTORY" --ca-bundle "\$RKS_DEV_ACME_CA_BUNDLE" --agree-tos
    rks edge ... --http-listen "\$RKS_DEV_EDGE_HTTP"     (Pebble validates HTTP-01 there)

MSG
wait -n "${pids[@]}"

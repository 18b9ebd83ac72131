#!/usr/bin/env bash
# make dev-ha: a 3-node Vault cluster with integrated (Raft) storage and two rks instances in
# front of it, each given every node's address, initialised; .dev-ha/env describes it all.
# Kill, freeze, seal or step down Vault nodes by hand and watch rks follow (see the README).
# Ctrl-C stops everything this script started (nodes restarted with `start-node` included) and
# removes the cluster's data; the logs stay.
#   scripts/dev-ha.sh start-node N   starts node N again after you killed it, unsealed, tracked
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${RKS_DEV_VAULT_PORT:-8200}
RKS_PORTS=(${RKS_DEV_HA_PORTS:-8080 8081})
# Moved ports keep their own state, so a second cluster leaves the first one's alone.
if [ "$BASE" = 8200 ]; then DEV=$PWD/.dev-ha; else DEV=$PWD/.dev-ha-$BASE; fi
say() { printf '\033[1mdev-ha:\033[0m %s\n' "$*" >&2; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=process.argv[1].split(".").reduce((o,k)=>o?.[k],JSON.parse(s));process.stdout.write(String(v??""))})' "$1"; }
# The pid in a node's pid file, if that process is still this node's Vault (pids get reused).
node_pid() {
  local pid
  pid=$(cat "$DEV/node$1/pid" 2>/dev/null) || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-config=$DEV/node$1/vault.hcl" && echo "$pid"
}
unseal() { curl -fsS -X PUT -d "{\"key\":\"$(cat "$DEV/unseal-key")\"}" "$1/v1/sys/unseal" >/dev/null; }

if [ "${1:-}" = start-node ]; then
  n=${2:-}
  [[ "$n" =~ ^[123]$ ]] || { say "usage: $0 start-node 1|2|3"; exit 2; }
  [ -f "$DEV/node$n/vault.hcl" ] || { say "no cluster in ${DEV#$PWD/} (make dev-ha first, with the same RKS_DEV_VAULT_PORT)"; exit 1; }
  if pid=$(node_pid "$n"); then say "node$n is running already (pid $pid)"; exit 1; fi
  BIN=$(scripts/vault-bin.sh)
  addr=http://127.0.0.1:$((BASE + 2 * (n - 1)))
  # Its own session: it outlives this shell, and make dev-ha's stop ends it through its pid file.
  setsid "$BIN" server -config="$DEV/node$n/vault.hcl" >>"$DEV/node$n/vault.log" 2>&1 </dev/null &
  echo $! >"$DEV/node$n/pid"
  for _ in $(seq 100); do
    curl -s -o /dev/null "$addr/v1/sys/health" && break
    sleep 0.1
  done
  unseal "$addr" || { say "node$n did not start; see ${DEV#$PWD/}/node$n/vault.log"; exit 1; }
  say "node$n started again (pid $!) and unsealed; it rejoins the cluster as a standby"
  exit 0
fi

for p in $BASE $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 4)) $((BASE + 5)) "${RKS_PORTS[@]}"; do
  if port_busy "$p"; then
    say "port $p is in use (make dev or another make dev-ha?); set RKS_DEV_VAULT_PORT (Vault uses it and the next five) or RKS_DEV_HA_PORTS (\"8080 8081\")"
    exit 1
  fi
done

BIN=$(scripts/vault-bin.sh)
rm -rf "$DEV"
mkdir -p "$DEV"
chmod 700 "$DEV"
umask 077

pids=()
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  local all=("${pids[@]}") pid n
  # Nodes the user started again are not this script's children: their pid files name them.
  for n in 1 2 3; do pid=$(node_pid "$n") && all+=("$pid"); done
  for pid in "${all[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for _ in $(seq 100); do
    alive=0
    for pid in "${all[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${all[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  find "$DEV" -mindepth 1 ! -name '*.log' ! -type d -delete 2>/dev/null || true
  rm -rf "$DEV"/node*/data
  say "stopped; logs kept in ${DEV#$PWD/}/"
}
trap cleanup INT TERM EXIT

ADDRS=()
for i in 1 2 3; do
  api=$((BASE + 2 * (i - 1)))
  cluster=$((api + 1))
  dir=$DEV/node$i
  mkdir -p "$dir/data"
  cat >"$dir/vault.hcl" <<HCL
storage "raft" {
  path = "$dir/data"
  node_id = "node$i"
  performance_multiplier = 1
}
listener "tcp" {
  address = "127.0.0.1:$api"
  cluster_address = "127.0.0.1:$cluster"
  tls_disable = true
}
api_addr = "http://127.0.0.1:$api"
cluster_addr = "https://127.0.0.1:$cluster"
disable_mlock = true
HCL
  ADDRS+=("http://127.0.0.1:$api")
  "$BIN" server -config="$dir/vault.hcl" >"$dir/vault.log" 2>&1 &
  pids+=($!)
  echo $! >"$dir/pid"
done
say "started 3 Vault nodes on ${ADDRS[*]} (logs: ${DEV#$PWD/}/node*/vault.log)"
for a in "${ADDRS[@]}"; do
  for _ in $(seq 100); do
    curl -s -o /dev/null "$a/v1/sys/health" && break
    sleep 0.1
  done
done

INIT=$(curl -fsS -X PUT -d '{"secret_shares":1,"secret_threshold":1}' "${ADDRS[0]}/v1/sys/init")
UNSEAL_KEY=$(printf '%s' "$INIT" | json keys_base64.0)
ROOT_TOKEN=$(printf '%s' "$INIT" | json root_token)
printf '%s' "$UNSEAL_KEY" >"$DEV/unseal-key"
unseal "${ADDRS[0]}"
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${ADDRS[0]}/v1/sys/health")" = 200 ] && break
  sleep 0.1
done
for a in "${ADDRS[@]:1}"; do
  for _ in $(seq 100); do
    curl -fsS -X POST -d "{\"leader_api_addr\":\"${ADDRS[0]}\"}" "$a/v1/sys/storage/raft/join" >/dev/null 2>&1 && break
    sleep 0.3
  done
  for _ in $(seq 100); do
    unseal "$a" 2>/dev/null && [ "$(curl -s -o /dev/null -w '%{http_code}' "$a/v1/sys/health")" = 429 ] && break
    sleep 0.3
  done
done
say "cluster formed: node1 active, node2 and node3 standbys"

ADMIN_LOGIN=${RKS_ADMIN_LOGIN:-admin}
ADMIN_PASSWORD=${RKS_ADMIN_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}
PSK=${RKS_PSK:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}
printf '%s' "$ADMIN_PASSWORD" >"$DEV/admin-password"
printf '%s' "$PSK" >"$DEV/psk"
VAULT_ADDRS=$(IFS=,; echo "${ADDRS[*]}")

URLS=()
for p in "${RKS_PORTS[@]}"; do
  url=https://127.0.0.1:$p
  URLS+=("$url")
  RKS_ADMIN_LOGIN=$ADMIN_LOGIN bin/rks serve --listen "127.0.0.1:$p" --vault-addr "$VAULT_ADDRS" \
    --admin-password-file "$DEV/admin-password" --psk-file "$DEV/psk" --ephemeral-cert-out "$DEV/ephemeral-$p.pem" \
    >"$DEV/rks-$p.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    [ -s "$DEV/ephemeral-$p.pem" ] && curl -fsS --cacert "$DEV/ephemeral-$p.pem" "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
say "started rks on ${URLS[*]} (logs: ${DEV#$PWD/}/rks-*.log)"

curl -fsS --cacert "$DEV/ephemeral-${RKS_PORTS[0]}.pem" -X POST -H "X-Vault-Token: $ROOT_TOKEN" "${URLS[0]}/rks/v1/init" >/dev/null
bin/rks ca cert --url "${URLS[0]}" --psk-file "$DEV/psk" --out "$DEV/ca.pem"
for url in "${URLS[@]}"; do
  # The other instance finds the CA on its next try (within 10 s).
  for _ in $(seq 300); do
    curl -fsS --cacert "$DEV/ca.pem" "$url/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS --cacert "$DEV/ca.pem" "$url/readyz" >/dev/null || { say "$url is not ready; see its log"; exit 1; }
done
say "rks initialised; both instances ready"

cat >"$DEV/env" <<ENV
export RKS_URL=${URLS[0]}
export RKS_URL_2=${URLS[1]:-}
export VAULT_ADDR=${ADDRS[0]}
export VAULT_ADDRS=$VAULT_ADDRS
export VAULT_TOKEN=$ROOT_TOKEN
export RKS_ADMIN_LOGIN=$ADMIN_LOGIN
export RKS_ADMIN_PASSWORD=$ADMIN_PASSWORD
export RKS_CA_CERT=$DEV/ca.pem
export RKS_PSK=$PSK
export VAULT_BIN=$BIN
export PATH="$PWD/bin:\$PATH"
ENV

D=${DEV#$PWD/}
START_NODE="scripts/dev-ha.sh start-node 1"
[ "$BASE" = 8200 ] || START_NODE="RKS_DEV_VAULT_PORT=$BASE $START_NODE"
cat >&2 <<MSG

  rks      ${URLS[*]}
  Vault    ${ADDRS[*]}   (root token in $D/env, unseal key in $D/unseal-key)

  In another shell:
    source $D/env
    watch -n 0.5 'curl -s --cacert \$RKS_CA_CERT -H "X-Vault-Token: \$VAULT_TOKEN" \$RKS_URL/readyz'
    kill \$(cat $D/node1/pid)          # the active node dies; rks moves to the new leader
    $START_NODE        # node 1 back, unsealed (Ctrl-C here stops it too)
    kill -STOP \$(cat $D/node2/pid)    # a node that hangs (kill -CONT to thaw it)
    curl -X PUT -H "X-Vault-Token: \$VAULT_TOKEN" ${ADDRS[2]}/v1/sys/seal      # seal a node
    curl -X PUT -d "{\"key\":\"\$(cat $D/unseal-key)\"}" ${ADDRS[2]}/v1/sys/unseal

  Ctrl-C stops everything (restarted nodes too) and removes the cluster's data; the logs stay.

MSG
wait -n "${pids[@]:3}"

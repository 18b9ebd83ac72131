#!/bin/sh
# One-shot for docker-compose.ha.yml: initialises the cluster once (one unseal key and the root
# token kept in the bao-keys volume, a demo's choice, never production's) and unseals every node.
set -eu
KEYS=/keys/init.json
until wget -qO- "http://bao-1:8200/v1/sys/health?uninitcode=200&sealedcode=200" >/dev/null 2>&1; do sleep 1; done
if [ ! -s "$KEYS" ]; then
  wget -qO "$KEYS" --post-data='{"secret_shares":1,"secret_threshold":1}' http://bao-1:8200/v1/sys/init
fi
KEY=$(sed -n 's/.*"keys_base64":\["\([^"]*\)".*/\1/p' "$KEYS")
for n in bao-1 bao-2 bao-3; do
  until wget -qO- --post-data="{\"key\":\"$KEY\"}" "http://$n:8200/v1/sys/unseal" 2>/dev/null | grep -q '"sealed":false'; do sleep 1; done
  echo "unsealed $n"
done
echo "root token: $(sed -n 's/.*"root_token":"\([^"]*\)".*/\1/p' "$KEYS")"

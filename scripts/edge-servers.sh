#!/usr/bin/env bash
# Makes sure the TLS servers the edge tests run for real are installed: nginx with its Lua
# module and lua-resty-core (rks.lua), and HAProxy (its runtime API). Installs the missing ones
# from the system's packages when it can (root and apt-get), without starting them: the
# packages' own services would take ports 80 and 443.
set -euo pipefail

say() { printf 'edge-servers: %s\n' "$*" >&2; }
have() {
  [ -x /usr/sbin/nginx ] && [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] && [ -f /usr/lib/nginx/modules/ndk_http_module.so ] &&
    [ -f /usr/share/lua/5.1/resty/core.lua ] && [ -f /usr/share/lua/5.1/resty/lrucache.lua ] && command -v haproxy >/dev/null
}
PACKAGES=(nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache haproxy)

have && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  say "missing; install them (as root): apt-get install ${PACKAGES[*]}"
  exit 1
fi
say "installing ${PACKAGES[*]} (not started)"
# No service of the packages starts, whatever the system's init: policy-rc.d says no, and any
# policy that was there is put back.
policy=/usr/sbin/policy-rc.d
saved=$(mktemp)
had_policy=0
if [ -e "$policy" ]; then cp -p "$policy" "$saved"; had_policy=1; fi
restore() { if [ "$had_policy" = 1 ]; then cp -p "$saved" "$policy"; else rm -f "$policy"; fi; rm -f "$saved"; }
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 755 "$policy"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || say "apt-get update failed; trying the package lists at hand"
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2
have || { say "installed, but nginx's Lua module or HAProxy is still missing"; exit 1; }

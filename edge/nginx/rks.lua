-- rks for nginx (OpenResty, or nginx with its Lua module and lua-resty-core): each TLS
-- handshake's certificate and key come from the local `rks edge` agent, over its Unix socket,
-- and stay in the worker's memory, parsed, for at most the time the agent gives (the secret's
-- TTL). Nothing is written to disk. Keys withdrawn by rks (a dissociation, a revoked node, a
-- rotated group token) are dropped within a second of the agent dropping them.
--
--   lua_package_path "/usr/share/rks/nginx/?.lua;;";
--   init_worker_by_lua_block { require("rks").init_worker({ socket = "unix:/run/rks/edge.sock" }) }
--   server {
--     listen 443 ssl;
--     ssl_certificate     placeholder.pem;   # never served: nginx wants a file at start
--     ssl_certificate_key placeholder.key;
--     ssl_certificate_by_lua_block { require("rks").ssl_certificate() }
--     ssl_session_tickets off;   # a resumed session skips the certificate phase, and so rks
--   }                            # (nginx's default session cache, none, resumes nothing)

local ssl = require("ngx.ssl")
local lrucache = require("resty.lrucache")

local _M = { _VERSION = "1" }

local settings = {
  socket = "unix:/run/rks/edge.sock",
  -- Milliseconds for one question to the agent (which itself waits on rks for a cold name).
  timeout = 5000,
  -- Names kept per worker, parsed; the least recently used go first.
  names = 10000,
  -- Seconds an unknown name is answered from memory before the agent is asked again.
  miss_ttl = 1,
}

local cache
local generation

-- A server name as TLS clients send it; anything else fails the handshake without a question.
local function valid_name(name)
  return #name <= 253 and ngx.re.find(name, [[^[a-z0-9_][a-z0-9_-]{0,62}(\.[a-z0-9_][a-z0-9_-]{0,62})*\.?$]], "jo") ~= nil
end

-- One HTTP/1.1 GET to the agent on a pooled connection: status, headers, body.
local function ask(path)
  local sock = ngx.socket.tcp()
  sock:settimeout(settings.timeout)
  local ok, err = sock:connect(settings.socket)
  if not ok then
    return nil, "cannot reach the rks edge agent: " .. tostring(err)
  end
  local sent
  sent, err = sock:send("GET " .. path .. " HTTP/1.1\r\nHost: rks-edge\r\n\r\n")
  if not sent then
    sock:close()
    return nil, err
  end
  local line
  line, err = sock:receive("*l")
  local status = line and tonumber(string.match(line, "^HTTP/1%.%d (%d%d%d)"))
  if not status then
    sock:close()
    return nil, "bad answer from the agent: " .. tostring(err or line)
  end
  local headers = {}
  while true do
    line, err = sock:receive("*l")
    if not line then
      sock:close()
      return nil, err
    end
    if line == "" then
      break
    end
    local k, v = string.match(line, "^([^:]+):%s*(.-)%s*$")
    if k then
      headers[string.lower(k)] = v
    end
  end
  local length = tonumber(headers["content-length"] or "0") or 0
  local body = ""
  if length > 0 then
    body, err = sock:receive(length)
    if not body then
      sock:close()
      return nil, err
    end
  end
  sock:setkeepalive(60000, 64)
  return status, headers, body
end

local function load(name)
  local status, headers, body = ask("/v1/certificate/" .. name)
  if not status then
    return nil, headers
  end
  if status == 404 or status == 400 then
    cache:set(name, false, settings.miss_ttl)
    return false
  end
  if status ~= 200 then
    return nil, "the rks edge agent answered " .. status
  end
  local at = string.find(body, "-----BEGIN [%u ]*PRIVATE KEY-----")
  if not at then
    return nil, "no private key in the agent's answer"
  end
  local cert, cerr = ssl.parse_pem_cert(string.sub(body, 1, at - 1))
  local key, kerr = ssl.parse_pem_priv_key(string.sub(body, at))
  if not cert or not key then
    return nil, "cannot parse the certificate or key for " .. name .. ": " .. tostring(cerr or kerr)
  end
  local entry = { cert = cert, key = key, generation = tonumber(headers["x-rks-generation"]) }
  local keep = tonumber(headers["x-rks-expires-in"]) or 0
  if keep >= 1 then
    cache:set(name, entry, keep)
  end
  return entry
end

-- Drops every key when the agent says keys were withdrawn (its generation moved).
local function watch(premature)
  if premature then
    return
  end
  local status, err, body = ask("/v1/generation")
  if status == 200 then
    local g = tonumber(body)
    if g and g ~= generation then
      -- The first answer too: keys cached before it may be of an older generation.
      cache:flush_all()
      generation = g
    end
  elseif status == nil then
    -- The agent is down: what it gave stays only until its own deadline (the cache's TTL).
    ngx.log(ngx.WARN, "rks: ", err)
  end
end

function _M.init_worker(opts)
  for k, v in pairs(opts or {}) do
    settings[k] = v
  end
  cache = assert(lrucache.new(settings.names))
  local ok, err = ngx.timer.every(1, watch)
  if not ok then
    ngx.log(ngx.ERR, "rks: cannot start watching the agent: ", err)
  end
end

-- The entry for a handshake's name: its certificate and key, false when the node may not serve
-- it, nil (and why) when the agent could not say.
local function lookup(name)
  if not name then
    return false
  end
  name = string.lower(name)
  if not valid_name(name) then
    return false
  end
  local entry = cache:get(name)
  -- Loaded before keys were last withdrawn, and not yet flushed: asked again.
  if entry and generation and entry.generation ~= generation then
    entry = nil
  end
  if entry == nil then
    return load(name)
  end
  return entry
end

local function refuse(err)
  if err then
    ngx.log(ngx.WARN, "rks: ", err)
  end
  return ngx.exit(ngx.ERROR)
end

-- For ssl_certificate_by_lua_block: the handshake's name gets its certificate, or fails.
function _M.ssl_certificate()
  local name = ssl.server_name()
  local entry, err = lookup(name)
  if not entry then
    return refuse(err)
  end
  local ok
  ok, err = ssl.clear_certs()
  if ok then
    ok, err = ssl.set_cert(entry.cert)
  end
  if ok then
    ok, err = ssl.set_priv_key(entry.key)
  end
  if not ok then
    ngx.log(ngx.ERR, "rks: cannot use the certificate of ", name, ": ", err)
    return ngx.exit(ngx.ERROR)
  end
end

return _M

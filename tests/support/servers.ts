import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { issue } from './pki';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server binary from the system's packages (`make edge-servers` installs them), or a loud failure. */
export function serverBinary(name: 'nginx' | 'haproxy'): string {
  for (const dir of ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`${name} is not installed: run \`make edge-servers\` (as root; it installs nginx, its Lua module and HAProxy from the system's packages)`);
}

export interface RunningServer {
  dir: string;
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** A server process in `dir`, its output kept, stopped with SIGTERM (SIGKILL after 5 s). */
export function runServer(bin: string, args: string[], dir: string): RunningServer {
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  return {
    dir,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** The same server with a certificate from a file, for comparison (benchmarks): never in tests of rks's modes. */
export interface PlainFile {
  port: number;
  cert: string;
  key: string;
  /** Certificate and key in one file (HAProxy's form). */
  bundle: string;
}

/** A self-signed placeholder that nginx and HAProxy want at start; never a secret of rks's. */
export async function placeholder(dir: string): Promise<{ cert: string; key: string }> {
  const p = await issue({ name: 'placeholder.invalid', dns: ['placeholder.invalid'] });
  const cert = path.join(dir, 'placeholder.pem');
  const key = path.join(dir, 'placeholder.key');
  fs.writeFileSync(cert, p.certPem);
  fs.writeFileSync(key, p.keyPem, { mode: 0o600 });
  return { cert, key };
}

/**
 * nginx's main configuration in `dir` (its pid, logs and temporary files there, Debian's Lua
 * module loaded, workers as root when the tests run as root) around `http`, the http block's body.
 */
export function nginxMain(dir: string, http: string): string {
  const modules = '/usr/lib/nginx/modules';
  return `
${process.getuid?.() === 0 ? 'user root;' : ''}
daemon off;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
load_module ${modules}/ndk_http_module.so;
load_module ${modules}/ngx_http_lua_module.so;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${http}
}
`;
}

/**
 * nginx with its Lua module, in a directory of its own: `https` terminates TLS with the keys
 * that rks's Lua module asks the agent for, `http` passes ACME challenges to the agent.
 */
export async function startNginx(o: { agentSocket: string; https: number; http: number; luaDir: string; plain?: PlainFile }): Promise<RunningServer> {
  const bin = serverBinary('nginx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-nginx-'));
  const { cert, key } = await placeholder(dir);
  const conf = nginxMain(dir, `
  lua_package_path "${o.luaDir}/?.lua;;";
  init_worker_by_lua_block { require("rks").init_worker({ socket = "unix:${o.agentSocket}" }) }
  server {
    listen 127.0.0.1:${o.https} ssl;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_certificate_by_lua_block { require("rks").ssl_certificate() }
    ssl_session_tickets off;
    location / { return 200 "served by nginx\\n"; }
  }
  server {
    listen 127.0.0.1:${o.http};
    location /.well-known/acme-challenge/ { proxy_pass http://unix:${o.agentSocket}; }
    location / { return 404; }
  }
${o.plain ? `  server {
    listen 127.0.0.1:${o.plain.port} ssl;
    ssl_certificate ${o.plain.cert};
    ssl_certificate_key ${o.plain.key};
    location / { return 200 "served by nginx\\n"; }
  }` : ''}
`);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const server = runServer(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], dir);
  const started = Date.now();
  while (!fs.existsSync(path.join(dir, 'nginx.pid'))) {
    if (server.child.exitCode !== null) throw new Error(`nginx did not start: ${server.output()}${fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : ''}`);
    if (Date.now() - started > 10_000) throw new Error('nginx did not start within 10 s');
    await sleep(50);
  }
  return server;
}

/**
 * HAProxy with an empty crt-list and `strict-sni`, its runtime API on a socket of its own: the
 * agent loads the certificates; ACME challenges on `http` go to the agent's socket.
 */
export async function startHaproxy(o: { agentSocket: string; https: number; http: number; plain?: PlainFile }): Promise<RunningServer & { socket: string; crtList: string }> {
  const bin = serverBinary('haproxy');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-haproxy-'));
  const socket = path.join(dir, 'admin.sock');
  const crtList = path.join(dir, 'rks.crtlist');
  fs.writeFileSync(crtList, '');
  const conf = `
global
  stats socket ${socket} mode 600 level admin
defaults
  mode http
  timeout client 10s
  timeout server 10s
  timeout connect 2s
frontend tls
  bind 127.0.0.1:${o.https} ssl crt-list ${crtList} strict-sni
  http-request return status 200 content-type text/plain string "served by haproxy"
frontend plain
  bind 127.0.0.1:${o.http}
  acl acme path_beg /.well-known/acme-challenge/
  http-request return status 404 unless acme
  use_backend rks_agent if acme
backend rks_agent
  server agent ${o.agentSocket}
${o.plain ? `frontend plain_file
  bind 127.0.0.1:${o.plain.port} ssl crt ${o.plain.bundle}
  http-request return status 200 content-type text/plain string "served by haproxy"` : ''}
`;
  fs.writeFileSync(path.join(dir, 'haproxy.cfg'), conf);
  const server = runServer(bin, ['-f', path.join(dir, 'haproxy.cfg'), '-db'], dir);
  const started = Date.now();
  while (!fs.existsSync(socket)) {
    if (server.child.exitCode !== null) throw new Error(`haproxy did not start: ${server.output()}`);
    if (Date.now() - started > 10_000) throw new Error('haproxy did not start within 10 s');
    await sleep(50);
  }
  return Object.assign(server, { socket, crtList });
}

/** One command on HAProxy's runtime API: its answer. */
export function haproxyCommand(socket: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket, () => c.end(line.endsWith('\n') ? line : `${line}\n`));
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (out += d));
    c.on('close', () => resolve(out));
    c.on('error', reject);
  });
}

/** Every file under `dirs` that holds `needle` (a private key's bytes must be in none). */
export function filesHolding(dirs: string[], needle: string): string[] {
  const found: string[] = [];
  const walk = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    } else if (st.isFile() && st.size < 50_000_000) {
      try {
        if (fs.readFileSync(p).includes(needle)) found.push(p);
      } catch {
        // unreadable: not ours
      }
    }
  };
  for (const d of dirs) walk(d);
  return found;
}


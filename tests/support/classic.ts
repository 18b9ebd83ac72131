import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { issue } from './pki';
import { freePort } from './vault';

const ROOT = path.resolve(__dirname, '..', '..');

/** The classic remote-key-server binary: $RKS_CLASSIC_BIN, else what scripts/classic-bin.sh builds from ../shared/peers. */
export function classicBinary(): string {
  if (process.env.RKS_CLASSIC_BIN) return process.env.RKS_CLASSIC_BIN;
  return execFileSync(path.join(ROOT, 'scripts', 'classic-bin.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export interface ClassicAnswer {
  status: number;
  body: any;
}

export interface RunningClassic {
  url: string;
  /** A call to the classic's own API, as its clients make them. */
  call(method: string, path: string, opts?: { token?: string; body?: unknown; nodeId?: string }): Promise<ClassicAnswer>;
  /** The same, failing the test on any status but `expect`. */
  must(expect: number, method: string, path: string, opts?: { token?: string; body?: unknown; nodeId?: string }): Promise<any>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Orange's remote-key-server, built from its source and run in front of `vaultAddr` on a free
 * loopback port with a TLS certificate of its own: the real server whose Vault state
 * `rks migrate` takes over.
 */
export async function startClassic(vaultAddr: string, admin: { login: string; password: string }): Promise<RunningClassic> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-classic-'));
  const ca = await issue({ name: 'classic test CA', ca: true });
  const leaf = await issue({ name: 'classic', dns: ['localhost'], ips: ['127.0.0.1'], issuer: ca });
  fs.writeFileSync(path.join(dir, 'cert.pem'), leaf.certPem);
  fs.writeFileSync(path.join(dir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(
    classicBinary(),
    [
      '--vaultaddr', vaultAddr,
      '--adminLogin', admin.login,
      '--adminPwd', admin.password,
      '--cert', path.join(dir, 'cert.pem'),
      '--pkey', path.join(dir, 'key.pem'),
      '--listenAddress', `127.0.0.1:${port}`,
    ],
    { env: { ...process.env, VAULT_ADDR: vaultAddr, VAULT_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `https://127.0.0.1:${port}`;

  const call: RunningClassic['call'] = (method, p, opts = {}) =>
    new Promise((resolve, reject) => {
      const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      const headers: Record<string, string> = {};
      if (opts.token) headers['X-Vault-Token'] = opts.token;
      if (opts.nodeId) headers['X-LCDN-nodeId'] = opts.nodeId;
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const req = https.request(`${url}${p}`, { method, headers, ca: ca.certPem }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            /* the classic answers some errors as plain text */
          }
          resolve({ status: res.statusCode!, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(body);
    });

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the classic exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await call('GET', '/healthz')).status > 0) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`the classic did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    call,
    must: async (expect, method, p, opts) => {
      const res = await call(method, p, opts);
      if (res.status !== expect) throw new Error(`classic ${method} ${p}: expected ${expect}, got ${res.status} ${JSON.stringify(res.body)}\n${output.slice(-2000)}`);
      return res.body;
    },
    log: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/**
 * Everything of a Vault that an rks or a classic RKS touches, for before/after comparisons:
 * mounts, auth methods and their tuning, every policy's text, every token role, every userpass
 * user, and the whole rks/ KV tree with each entry's current data and version.
 */
export async function vaultState(addr: string, rootToken: string): Promise<Record<string, unknown>> {
  const get = async (p: string) => {
    const res = await fetch(`${addr}/v1/${p}`, { headers: { 'X-Vault-Token': rootToken } });
    return res.status === 200 ? ((await res.json()) as any).data : null;
  };
  const list = async (p: string): Promise<string[]> => ((await get(`${p}?list=true`))?.keys as string[] | undefined)?.sort() ?? [];
  const state: Record<string, unknown> = { mounts: await get('sys/mounts'), auth: await get('sys/auth') };
  for (const p of await list('sys/policies/acl')) state[`policy ${p}`] = (await get(`sys/policies/acl/${p}`))?.policy;
  for (const r of await list('auth/token/roles')) state[`role ${r}`] = await get(`auth/token/roles/${r}`);
  for (const m of ['userpass', 'rks-service']) state[`tune ${m}`] = await get(`sys/auth/${m}/tune`);
  for (const u of await list('auth/userpass/users')) state[`user ${u}`] = await get(`auth/userpass/users/${u}`);
  const walk = async (prefix: string): Promise<void> => {
    for (const k of await list(`rks/metadata/${prefix}`)) {
      if (k.endsWith('/')) await walk(prefix + k);
      else {
        const entry = await get(`rks/data/${prefix}${k}`);
        state[`kv ${prefix}${k}`] = entry && { data: entry.data, version: entry.metadata?.version };
      }
    }
  };
  await walk('');
  return state;
}

import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { env } from '../support/harness';
import { chainFor } from '../support/pki';
import { freePort } from '../support/vault';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'rks');

interface Served {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs the built `rks` binary (make test builds it first). */
function rks(args: string[], extraEnv: Record<string, string> = {}): Served {
  let out = '';
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH!, HOME: os.tmpdir(), ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

async function until(check: () => boolean, what: string, s: Served, ms = 10_000): Promise<void> {
  for (let i = 0; i < ms / 50; i++) {
    if (check()) return;
    if (s.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not happen; output:\n${s.output()}`);
}

function get(url: string, ca?: Buffer): Promise<{ status: number; body: string; cert?: string }> {
  return new Promise((resolve, reject) => {
    const lib = url.startsWith('https') ? https : require('node:http');
    const req = lib.get(url, { ca, agent: false }, (res: any) => {
      let body = '';
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({ status: res.statusCode, body, cert: res.socket.getPeerCertificate?.()?.subject?.CN }),
      );
    });
    req.on('error', reject);
  });
}

describe('rks serve', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-serve-'));
  const base = () => ({ RKS_VAULT_ADDR: env.vaultAddr, RKS_ADMIN_PASSWORD: 'wrong-4q5mXz-7Lp_2VbNc8Rt1', RKS_LOG_LEVEL: 'info' });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('with no CA it may use (wrong admin password), serves an ephemeral certificate written for clients, says the password is not init\'s; stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const certOut = path.join(dir, 'ephemeral.pem');
    const s = rks(['serve', '--ephemeral-cert-out', certOut], { ...base(), RKS_LISTEN: `127.0.0.1:${port}` });
    await until(() => s.output().includes('rks listening'), 'listening', s);
    expect(s.output()).toContain('ephemeral self-signed certificate');
    const res = await get(`https://127.0.0.1:${port}/healthz`, fs.readFileSync(certOut));
    expect(res.status).toBe(200);
    await expect(get(`https://127.0.0.1:${port}/healthz`)).rejects.toThrow(/self-signed|certificate/);
    // The harness's rks ran init with another password: said as such, once it is clear (a retry later).
    await until(() => s.output().includes('started with another administrator login or password than the one init ran with'), 'the wrong password said', s, 20_000);
    const said = s.output().split('\n').find((l) => l.includes('than the one init ran with ('))!;
    expect(JSON.parse(said).level).toBe('error');
    // The CLI, refused the ephemeral certificate, says what it means.
    const cli = rks(['status', '--url', `https://127.0.0.1:${port}`], { RKS_TOKEN: 'hvs.x' });
    expect(await cli.exited).toBe(3);
    expect(cli.output()).toMatch(/DEPTH_ZERO_SELF_SIGNED_CERT\): rks serves its ephemeral self-signed certificate: it is not initialised yet/);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    const lines = s.output().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down: finishing requests in flight', 'stopped']));
  });

  it('serves with --cert/--cert-key', async () => {
    const port = await freePort();
    const c = await chainFor(['localhost']);
    fs.writeFileSync(path.join(dir, 'c.pem'), c.certificate);
    fs.writeFileSync(path.join(dir, 'k.pem'), c.privateKey);
    const s = rks(['serve', '--listen', `127.0.0.1:${port}`, '--cert', path.join(dir, 'c.pem'), '--cert-key', path.join(dir, 'k.pem')], base());
    try {
      await until(() => s.output().includes('rks listening'), 'listening', s);
      const res = await get(`https://localhost:${port}/healthz`, Buffer.from(c.root.certPem));
      expect(res.status).toBe(200);
      expect(res.cert).toBe('localhost');
    } finally {
      s.child.kill('SIGINT');
      expect(await s.exited).toBe(0);
    }
  });

  it('serves plain HTTP with RKS_NO_TLS=true and warns', async () => {
    const port = await freePort();
    const s = rks(['serve'], { ...base(), RKS_LISTEN: `127.0.0.1:${port}`, RKS_NO_TLS: 'true' });
    try {
      await until(() => s.output().includes('rks listening'), 'listening', s);
      expect(s.output()).toContain('TLS is off');
      expect((await get(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  });

  it('refuses to start without an admin password, saying why', async () => {
    const s = rks(['serve', '--listen', '127.0.0.1:0'], { RKS_VAULT_ADDR: env.vaultAddr });
    expect(await s.exited).toBe(2);
    expect(s.output()).toContain('no administrator password');
  });

  it('refuses a bad flag value with a usage error', async () => {
    const s = rks(['serve', '--default-secret-ttl', 'soon'], base());
    expect(await s.exited).not.toBe(0);
    expect(s.output()).toContain('--default-secret-ttl must be a positive integer');
  });

  it('refuses a --trust-proxy that is not an address or CIDR, saying why', async () => {
    const s = rks(['serve', '--listen', '127.0.0.1:0', '--trust-proxy', '10.0.0.0/8,not-an-address'], base());
    expect(await s.exited).toBe(2);
    expect(s.output()).toContain("--trust-proxy: 'not-an-address' is not an address");
  });

  it('warns at start when --trust-proxy trusts a range rather than named proxies', async () => {
    for (const [given, warned] of [['uniquelocal,10.0.0.7', ['uniquelocal']], ['10.1.0.0/16,192.0.2.7/32,loopback', ['10.1.0.0/16']], ['10.0.0.7', []]] as const) {
      const s = rks(['serve', '--no-tls', '--listen', `127.0.0.1:${await freePort()}`, '--trust-proxy', given], base());
      try {
        await until(() => s.output().includes('rks listening'), 'listening', s);
        const line = s.output().split('\n').find((l) => l.includes('"trustProxy"'));
        if (warned.length) expect(JSON.parse(line!)).toMatchObject({ level: 'warn', trustProxy: warned, msg: expect.stringContaining('name the proxies\' own addresses') });
        else expect(line).toBeUndefined();
      } finally {
        s.child.kill('SIGTERM');
        await s.exited;
      }
    }
  });

  it('reads the password from a file and never logs it', async () => {
    const port = await freePort();
    const file = path.join(dir, 'pw');
    fs.writeFileSync(file, 'file-secret-Zq9-4q5mXz-7Lp_2VbN\n');
    const s = rks(['serve', '--admin-password-file', file, '--no-tls', '--log-level', 'debug'], {
      RKS_VAULT_ADDR: env.vaultAddr,
      RKS_LISTEN: `127.0.0.1:${port}`,
    });
    try {
      await until(() => s.output().includes('rks listening'), 'listening', s);
      await get(`http://127.0.0.1:${port}/healthz`);
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
    expect(s.output()).not.toContain('file-secret-Zq9-4q5mXz-7Lp_2VbN');
  });
});

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import https from 'node:https';
import path from 'node:path';
import { InitService } from '../src/init/service';
import { VaultClient } from '../src/vault/client';
import { Kv } from '../src/vault/kv';
import { Pki } from '../src/vault/pki';
import { Sys } from '../src/vault/sys';
import { Running, runRks } from '../tests/support/serve';
import { TestVault, freePort, startVault } from '../tests/support/vault';

export const ADMIN = { login: 'bench-admin', password: randomBytes(18).toString('base64url') };

export interface Stack {
  vault: TestVault;
  rks: Running;
  url: string;
  ca: string;
  stop(): Promise<void>;
}

/** An OpenBao/Vault dev server (in memory) and the built `rks serve`, initialised, with TLS on. */
export async function startStack(extraArgs: string[] = [], env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Stack> {
  const vault = await startVault();
  const client = new VaultClient({ addr: vault.addr });
  await new InitService(new Sys(client), new Kv(client), new Pki(client), ADMIN).init(vault.rootToken);
  const ca = (await new Pki(client).caPem())!;
  client.close();
  const port = await freePort();
  const rks = runRks(['serve', '--listen', `127.0.0.1:${port}`, '--log-level', 'info', ...extraArgs], {
    RKS_VAULT_ADDR: vault.addr,
    RKS_ADMIN_LOGIN: ADMIN.login,
    RKS_ADMIN_PASSWORD: ADMIN.password,
    ...env,
  }, nodeArgs);
  try {
    await rks.waitFor('serving with a certificate from the rks CA');
    await rks.waitFor('rks listening');
  } catch (err) {
    // Leave nothing running behind a failed start.
    await rks.stop();
    await vault.stop();
    throw err;
  }
  return {
    vault,
    rks,
    url: `https://127.0.0.1:${port}`,
    ca,
    async stop() {
      await rks.stop();
      await vault.stop();
    },
  };
}

/** JSON over HTTPS, on a keep-alive agent (or a new connection per request). */
export function client(url: string, ca: string, keepAlive = true) {
  const agent = keepAlive ? new https.Agent({ keepAlive: true, ca, maxSockets: 64 }) : new https.Agent({ keepAlive: false, ca, maxSockets: Infinity });
  return async (method: string, p: string, token?: string, body?: unknown, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = https.request(
        `${url}${p}`,
        {
          method,
          agent,
          headers: {
            ...(token ? { 'X-Vault-Token': token } : {}),
            ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
            ...headers,
          },
        },
        (res) => {
          let raw = '';
          res.on('data', (c) => (raw += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: raw ? JSON.parse(raw) : null }));
        },
      );
      req.on('error', reject);
      req.end(body !== undefined ? JSON.stringify(body) : undefined);
    });
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function summary(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, meanMs: round(mean), p50Ms: round(percentile(s, 50)), p99Ms: round(percentile(s, 99)) };
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Results go to bench/results (tracked) only with SAVE=1; otherwise to a temporary folder. */
export function writeResult(name: string, result: unknown): string {
  const dir = process.env.SAVE === '1' ? path.join(__dirname, 'results') : path.join(os.tmpdir(), 'rks-bench-results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  fs.writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, `${name}-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
  return path.join(dir, `${name}.json`);
}

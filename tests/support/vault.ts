import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { settingDefaults } from '../../src/settings';
import { VaultClient } from '../../src/vault/client';

export interface TestVault {
  /** The listener rks uses: small JSON limits (JSON_LIMITS). */
  addr: string;
  /** The dev listener, with Vault's default limits: for peers such as the classic RKS. */
  devAddr: string;
  /** What the binary says of itself, e.g. "Vault v1.21.0". */
  version: string;
  rootToken: string;
  pid: number;
  stop(): Promise<void>;
}

const ROOT = path.resolve(__dirname, '..', '..');

/** The server binary: $RKS_VAULT_BIN, else whatever scripts/vault-bin.sh finds or builds. */
export function vaultBinary(): string {
  if (process.env.RKS_VAULT_BIN) return process.env.RKS_VAULT_BIN;
  return execFileSync(path.join(ROOT, 'scripts', 'vault-bin.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}


async function waitReady(addr: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`vault exited with ${child.exitCode}:\n${log()}`);
    try {
      const res = await fetch(`${addr}/v1/sys/health`);
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`vault did not become ready:\n${log()}`);
}

/**
 * What the tests' Vault listens with: JSON limits far below Vault's defaults (10,000 array
 * elements, 1 MiB strings), so that anything rks writes that grows with the number of secrets
 * fails in the tests at a few hundred instead of in production at ten thousand.
 */
export const JSON_LIMITS = { arrayElements: 100, stringLength: 16_384 };

/**
 * Starts an in-memory dev server on free loopback ports; rks talks to it on a listener with small
 * JSON limits. A port found free can be taken by another test process before Vault binds it: then
 * it starts again on other ports.
 */
export async function startVault(): Promise<TestVault> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startVaultOnce();
    } catch (err) {
      if (attempt >= 5 || !/address already in use/.test(String(err))) throw err;
    }
  }
}

async function startVaultOnce(): Promise<TestVault> {
  const bin = vaultBinary();
  const [devPort, port, clusterPort, listenerClusterPort] = [await freePortWith([0, 1]), await freePort(), await freePort(), await freePort()];
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-vault-'));
  const config = path.join(dir, 'listener.hcl');
  fs.writeFileSync(
    config,
    `listener "tcp" {
  address = "127.0.0.1:${port}"
  cluster_address = "127.0.0.1:${listenerClusterPort}"
  tls_disable = true
  max_json_array_element_count = ${JSON_LIMITS.arrayElements}
  max_json_string_value_length = ${JSON_LIMITS.stringLength}
}
`,
  );
  let output = '';
  const child = spawn(
    bin,
    [
      'server',
      '-dev',
      `-dev-root-token-id=${rootToken}`,
      `-dev-listen-address=127.0.0.1:${devPort}`,
      '-dev-no-store-token',
      `-config=${config}`,
    ],
    { env: { ...process.env, HOME: dir, VAULT_ADDR: '', BAO_ADDR: '', VAULT_CLUSTER_ADDR: `https://127.0.0.1:${clusterPort}` }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const addr = `http://127.0.0.1:${port}`;
  try {
    await waitReady(addr, child, () => output);
  } catch (err) {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    addr,
    devAddr: `http://127.0.0.1:${devPort}`,
    version: execFileSync(bin, ['version'], { encoding: 'utf8' }).split(/[,\n]/)[0].trim(),
    rootToken,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Calls a test Vault's API straight, with the root token unless told otherwise (null: none). */
export function vaultCaller(vault: TestVault) {
  return async (method: string, path: string, body?: unknown, token: string | null = vault.rootToken): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${vault.addr}/v1/${path}`, {
      method,
      headers: { ...(token ? { 'X-Vault-Token': token } : {}), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

/** A Vault client on the settings' defaults, for tests that call Vault beside rks. */
export function vaultClient(addr: string): VaultClient {
  const d = settingDefaults();
  return new VaultClient({ addr, timeoutMs: d.vaultTimeout * 1000, maxInFlight: d.vaultMaxInFlight });
}

/** A free port whose successors at these offsets are free too (Vault's cluster port, Pebble's others). */
export async function freePortWith(offsets: number[]): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + Math.max(...offsets) >= 65535) continue;
    if ((await Promise.all(offsets.map((o) => bindable(port + o)))).every(Boolean)) return port;
  }
}

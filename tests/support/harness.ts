import type { Express } from 'express';
import request from 'supertest';
import { createLogger } from '../../src/log';
import { createMetrics } from '../../src/metrics';
import { buildRks } from '../../src/server/bootstrap';
import type { Services } from '../../src/server/services';
import type { VaultClient } from '../../src/vault/client';
import { Config, configFrom } from '../../src/config';
import { settingDefaults } from '../../src/settings';
import type { Tuning } from '../../src/server/services';

export const env = {
  get vaultAddr() {
    return must('RKS_TEST_VAULT_ADDR');
  },
  get rootToken() {
    return must('RKS_TEST_ROOT_TOKEN');
  },
  get adminLogin() {
    return must('RKS_TEST_ADMIN_LOGIN');
  },
  get adminPassword() {
    return must('RKS_TEST_ADMIN_PASSWORD');
  },
};

function must(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests through jest's global setup (make test)`);
  return v;
}

export interface Harness {
  app: Express;
  services: Services;
  vault: VaultClient;
  close(): void;
}

/** The configuration of the tests' rks: the declared defaults, on the run's Vault, with generous login limits. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...configFrom(settingDefaults(), {
      vaultAddrs: [env.vaultAddr],
      admin: { login: env.adminLogin, password: env.adminPassword },
      tls: 'managed',
      trustProxy: [],
      san: ['127.0.0.1'],
    }),
    listen: '127.0.0.1:0',
    logLevel: 'silent',
    loginRateLimit: 1000,
    hostname: 'localhost',
    certLifetime: 3600,
    certRenewBefore: 600,
    ...overrides,
  };
}

/**
 * An rks app (the same services and app as `rks serve`, not listening) on the run's shared Vault,
 * checking its answers against the contract.
 */
export function harness(overrides: Partial<Config> = {}, logger = createLogger((process.env.RKS_TEST_LOG_LEVEL as 'silent') ?? 'silent'), tuning: Tuning = {}): Harness {
  const { services, app } = buildRks(testConfig(overrides), logger, { metrics: createMetrics(undefined, false), validateResponses: true, tuning });
  return { app, services, vault: services.vault, close: () => services.vault.close() };
}

/** A fresh admin token, through the real login endpoint. */
export async function adminToken(app: Express): Promise<string> {
  const res = await request(app)
    .post('/rks/v1/admin/login')
    .send({ login: env.adminLogin, password: env.adminPassword })
    .expect(200);
  return res.body.adminToken as string;
}

/** Reads a path straight from Vault with the root token (to check state after a call). */
export async function vaultRead(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${env.vaultAddr}/v1/${path}`, { headers: { 'X-Vault-Token': env.rootToken } });
  return { status: res.status, body: res.status === 204 ? null : ((await res.json()) as any) };
}

/** The secrets a group's nodes may read, straight from Vault: its copies. */
export async function groupCopies(g: string): Promise<string[]> {
  const res = await vaultRead(`rks/metadata/groups/${g}/secrets?list=true`);
  return res.status === 404 ? [] : [...(res.body.data.keys as string[])].sort();
}

export async function vaultWrite(path: string, body: unknown, method = 'POST'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${env.vaultAddr}/v1/${path}`, {
    method,
    headers: { 'X-Vault-Token': env.rootToken, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** rks served over real HTTPS (a certificate from its CA), in this process. */
export interface ServedRks {
  url: string;
  port: number;
  ca: string;
  app: Express;
  stop(): Promise<void>;
  /** Listens again on the same port (after stop). */
  start(): Promise<void>;
}

/** A whole rks (the same bootstrap as `rks serve`) on the run's Vault, over HTTPS from its CA. */
export async function serveRks(overrides: Partial<Config> = {}): Promise<ServedRks> {
  const { startRks } = await import('../../src/server/bootstrap');
  const logger = createLogger('silent');
  const config = (port: number): Config => testConfig({ listen: `127.0.0.1:${port}`, ...overrides });
  let running = await startRks(config(0), logger);
  const port = Number(new URL(running.url).port);
  const ca = (await vaultRead('rks-pki/cert/ca')).body.data.certificate as string;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    ca,
    get app() {
      return running.app;
    },
    stop: () => running.stop(),
    start: async () => {
      running = await startRks(config(port), logger);
    },
  };
}

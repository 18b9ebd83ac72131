import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import nodeVault from 'node-vault';
import { Histogram, Registry } from 'prom-client';
import { Forbidden, ServiceUnavailable } from '../errors';

/** An answer from Vault that is not a success; `errors` are Vault's own reasons. */
export class VaultError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly operation: string,
  ) {
    super(`vault ${operation}: ${status} ${errors.join('; ')}`);
    this.name = 'VaultError';
  }
}

export interface VaultClientOptions {
  addr: string;
  /** PEM bundle trusted for Vault's TLS certificate, in addition to the system CAs. */
  caFile?: string;
  timeoutMs?: number;
  /** Upper bound of pooled connections to Vault. */
  maxSockets?: number;
  registry?: Registry;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';

export interface CallOptions {
  /** The caller's token, passed through; `null` only for Vault's unauthenticated endpoints. */
  token: string | null;
  body?: unknown;
  /** Metric label; defaults to the method. Never a path: paths carry names. */
  operation?: string;
}

/**
 * The one door to Vault. One node-vault client and one keep-alive connection pool per
 * process; every call carries the caller's token explicitly, so nothing ever runs with
 * a token the caller did not present.
 */
export class VaultClient {
  readonly addr: string;
  private readonly client: nodeVault.client;
  private readonly latency?: Histogram<'operation' | 'status'>;
  private readonly agentOptions: { httpAgent?: http.Agent; httpsAgent?: https.Agent };

  constructor(opts: VaultClientOptions) {
    this.addr = opts.addr.replace(/\/+$/, '');
    const pool = { keepAlive: true, maxSockets: opts.maxSockets ?? 128, maxFreeSockets: 32 };
    this.agentOptions = this.addr.startsWith('https:')
      ? {
          httpsAgent: new https.Agent({
            ...pool,
            ...(opts.caFile ? { ca: fs.readFileSync(opts.caFile) } : {}),
          }),
        }
      : { httpAgent: new http.Agent(pool) };
    this.client = nodeVault({
      endpoint: this.addr,
      apiVersion: 'v1',
      noCustomHTTPVerbs: true,
      // Verify Vault's certificate whatever $VAULT_SKIP_VERIFY says; time out a hung Vault.
      rpDefaults: { strictSSL: true, timeout: opts.timeoutMs ?? 10_000 },
    } as nodeVault.VaultOptions);
    // node-vault falls back to $VAULT_TOKEN; rks must never act with a token nobody presented.
    this.client.token = '';
    if (opts.registry) {
      this.latency = new Histogram({
        name: 'rks_vault_request_duration_seconds',
        help: 'Latency of requests from rks to Vault',
        labelNames: ['operation', 'status'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [opts.registry],
      });
    }
  }

  /**
   * Calls `/v1/<path>`. Resolves with Vault's JSON body (or `undefined` for 204).
   * Rejects with VaultError for a Vault answer and ServiceUnavailable when Vault
   * cannot be reached.
   */
  async call<T = any>(method: Method, path: string, opts: CallOptions): Promise<T> {
    const operation = opts.operation ?? method;
    if (opts.token === '') throw new Forbidden('missing X-Vault-Token');
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers['X-Vault-Token'] = opts.token;
    const listing = method === 'LIST';
    const started = process.hrtime.bigint();
    let status = 'error';
    try {
      const body = await this.client.request({
        path: `/${path}${listing ? '?list=true' : ''}`,
        method: listing ? 'GET' : method,
        headers,
        ...(opts.body !== undefined ? { json: opts.body } : {}),
        ...this.agentOptions,
      });
      status = '2xx';
      return body as T;
    } catch (err) {
      const e = err as { response?: { statusCode: number; body?: { errors?: unknown } } };
      if (e.response) {
        status = String(e.response.statusCode);
        const errors = Array.isArray(e.response.body?.errors)
          ? (e.response.body!.errors as unknown[]).map(String)
          : [];
        throw new VaultError(e.response.statusCode, errors, operation);
      }
      throw new ServiceUnavailable('vault is unreachable');
    } finally {
      this.latency?.observe(
        { operation, status },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    }
  }

  /** Vault's health without a token; never throws for an answer Vault gives. */
  async health(timeoutMs = 1000): Promise<VaultHealth> {
    const url = `${this.addr}/v1/sys/health?standbyok=true&perfstandbyok=true&sealedcode=200&uninitcode=200`;
    const agent = this.agentOptions.httpsAgent ?? this.agentOptions.httpAgent;
    return new Promise((resolve) => {
      const lib = url.startsWith('https:') ? https : http;
      const req = lib.get(url, { agent, timeout: timeoutMs }, (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (raw += c));
        res.on('end', () => {
          try {
            const b = JSON.parse(raw);
            resolve({
              reachable: true,
              initialized: Boolean(b.initialized),
              sealed: Boolean(b.sealed),
              standby: Boolean(b.standby),
              version: String(b.version ?? ''),
            });
          } catch {
            resolve({ reachable: false });
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ reachable: false }));
    });
  }

  close(): void {
    this.agentOptions.httpAgent?.destroy();
    this.agentOptions.httpsAgent?.destroy();
  }
}

export interface VaultHealth {
  reachable: boolean;
  initialized?: boolean;
  sealed?: boolean;
  standby?: boolean;
  version?: string;
}

/** True when `err` is Vault answering `status` (and, if given, a reason containing `text`). */
export function isVaultError(err: unknown, status: number, text?: string): err is VaultError {
  return (
    err instanceof VaultError &&
    err.status === status &&
    (text === undefined || err.errors.some((e) => e.includes(text)))
  );
}

import fs from 'node:fs';
import { Histogram, Registry } from 'prom-client';
import { Pool } from 'undici';
import { ServiceUnavailable } from '../errors';

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
 * The one door to Vault: one pool of keep-alive connections per process (undici), and every
 * call carries the caller's token explicitly, so nothing ever runs with a token the caller
 * did not present. Connecting times out after a second, so an unreachable Vault is a fast 503.
 */
export class VaultClient {
  readonly addr: string;
  private readonly pool: Pool;
  private readonly latency?: Histogram<'operation' | 'status'>;
  private readonly timeoutMs: number;

  constructor(opts: VaultClientOptions) {
    this.addr = opts.addr.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.pool = new Pool(this.addr, {
      connections: opts.maxSockets ?? 128,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: { timeout: 1000, ...(opts.caFile ? { ca: fs.readFileSync(opts.caFile) } : {}) },
    });
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
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers['X-Vault-Token'] = opts.token;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const listing = method === 'LIST';
    const started = process.hrtime.bigint();
    let status = 'error';
    try {
      let res;
      try {
        res = await this.pool.request({
          path: `/v1/${path}${listing ? '?list=true' : ''}`,
          method: listing ? 'GET' : method,
          headers,
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        });
      } catch {
        throw new ServiceUnavailable('vault is unreachable');
      }
      const text = await res.body.text();
      status = res.statusCode < 300 ? '2xx' : String(res.statusCode);
      let parsed: any;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      if (res.statusCode >= 300) {
        const errors = Array.isArray(parsed?.errors) ? (parsed.errors as unknown[]).map(String) : [];
        throw new VaultError(res.statusCode, errors, operation);
      }
      return parsed as T;
    } finally {
      this.latency?.observe({ operation, status }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** Vault's health without a token; never throws. */
  async health(timeoutMs = 1000): Promise<VaultHealth> {
    try {
      const res = await this.pool.request({
        path: '/v1/sys/health?standbyok=true&perfstandbyok=true&sealedcode=200&uninitcode=200',
        method: 'GET',
        signal: AbortSignal.timeout(timeoutMs),
      });
      const b = (await res.body.json()) as Record<string, unknown>;
      return {
        reachable: true,
        initialized: Boolean(b.initialized),
        sealed: Boolean(b.sealed),
        standby: Boolean(b.standby),
        version: String(b.version ?? ''),
      };
    } catch {
      return { reachable: false };
    }
  }

  close(): void {
    void this.pool.destroy();
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

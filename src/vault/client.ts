import fs from 'node:fs';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Dispatcher, Pool } from 'undici';
import { LayoutNewer, ServiceUnavailable } from '../errors';
import { KV_MOUNT, PKI_MOUNT } from './layout';

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
  /** One address (or a load balancer), or every node of a cluster: rks sends to the active one. */
  addr: string | string[];
  /** PEM bundle trusted for Vault's TLS certificate, in addition to the system CAs. */
  caFile?: string;
  /** Deadline of one call, failover and retries included (milliseconds). */
  timeoutMs: number;
  /** Calls waiting on Vault at once; beyond it callers get a fast 503. */
  maxInFlight: number;
  /** Upper bound of pooled connections to each address. */
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
  /**
   * The call may be sent again when the first attempt's fate is unknown (its connection broke
   * after sending). Reads are; writes only when a second attempt cannot do harm (check-and-set).
   */
  idempotent?: boolean;
  /** Told when the call is sent again after an attempt whose fate is unknown. */
  onResend?: () => void;
}

/** What one address said about itself on `sys/health`. */
export type NodeState = 'active' | 'standby' | 'perfstandby' | 'sealed' | 'uninitialised' | 'unreachable' | 'unknown';

export interface VaultHealth {
  reachable: boolean;
  initialized?: boolean;
  sealed?: boolean;
  standby?: boolean;
  version?: string;
  /** The cluster's id (the same on every node of a cluster), while unsealed. */
  clusterId?: string;
}

export interface VaultStatus {
  /** The address rks sends to, when it knows one that works. */
  active?: string;
  nodes: { addr: string; state: NodeState }[];
}

interface Endpoint {
  addr: string;
  pool: Pool;
  state: NodeState;
}

/** Vault's own words for "this node cannot serve now, another may". */
/**
 * What a layout watch holds: writes to rks's KV, policies, token roles, PKI roles, and token
 * revocations (a layout is the first four; registrations and deletions revoke before they write).
 */
const HELD_WRITES = new RegExp(`^(${KV_MOUNT}/|sys/policies/|sys/leases/revoke|auth/token/(roles|create|revoke)|${PKI_MOUNT}/roles/)`);

const NOT_ACTIVE = [/vault is sealed/i, /local node not active/i, /standby/i, /no active cluster node/i, /node not active/i];
/** Error codes undici gives when a request never reached the server. */
const NOT_SENT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const HEALTH_PATH = '/v1/sys/health?standbyok=false&perfstandbyok=false';
/** After a probe of every address found no active node, callers fail fast for this long. */
const NO_ACTIVE_HOLD_MS = 250;

/**
 * The one door to Vault: keep-alive connection pools (undici), one per configured address, and
 * every call carries the caller's token explicitly, so nothing ever runs with a token the caller
 * did not present. With several addresses rks finds the active node (`sys/health`, a standby's
 * 307, a sealed node's 503) and moves on when it dies, seals or steps down. Every call has one
 * deadline that covers queueing, failover and retries; beyond `maxInFlight` calls waiting,
 * callers get a fast 503 instead of a queue.
 */
export class VaultClient {
  private readonly endpoints: Endpoint[];
  private active?: Endpoint;
  /** The last address that served, to count failovers. */
  private lastActive?: Endpoint;
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private discovering?: Promise<Endpoint | undefined>;
  private noActiveUntil = 0;
  private readonly latency?: Histogram<'operation' | 'status'>;
  private readonly failovers?: Counter;
  private readonly activeGauge?: Gauge<'node'>;
  private readonly busy?: Counter;

  constructor(opts: VaultClientOptions) {
    const addrs = (Array.isArray(opts.addr) ? opts.addr : [opts.addr]).map((a) => a.replace(/\/+$/, ''));
    if (addrs.length === 0) throw new Error('no Vault address');
    this.timeoutMs = opts.timeoutMs;
    this.maxInFlight = opts.maxInFlight;
    const ca = opts.caFile ? fs.readFileSync(opts.caFile) : undefined;
    this.endpoints = addrs.map((addr) => ({
      addr,
      state: 'unknown' as NodeState,
      pool: new Pool(addr, {
        connections: opts.maxSockets ?? 128,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: Math.min(1000, this.timeoutMs), ...(ca ? { ca } : {}) },
      }),
    }));
    // One address: a single node or a load balancer, used whatever it says. Several: the first
    // call asks them which one is active.
    if (this.endpoints.length === 1) this.active = this.lastActive = this.endpoints[0];
    if (opts.registry) {
      const registers = [opts.registry];
      this.latency = new Histogram({
        name: 'rks_vault_request_duration_seconds',
        help: 'Latency of requests from rks to Vault',
        labelNames: ['operation', 'status'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers,
      });
      this.failovers = new Counter({ name: 'rks_vault_failovers_total', help: 'Times rks moved to another Vault address', registers });
      this.busy = new Counter({ name: 'rks_vault_busy_refusals_total', help: 'Calls refused with 503 because too many were waiting on Vault', registers });
      this.activeGauge = new Gauge({
        name: 'rks_vault_active',
        help: '1 for the Vault node rks sends to: one series per configured address, by its place in --vault-addr (1, 2, ...), which strangers reading /metrics do not learn',
        labelNames: ['node'],
        registers,
      });
      const client = this;
      new Gauge({
        name: 'rks_vault_in_flight',
        help: 'Calls from rks waiting on Vault',
        registers,
        collect() {
          this.set(client.inFlight);
        },
      });
      this.publishActive();
    }
  }

  /** Why rks's own objects (its KV, its policies) are not to be written now; undefined: they may be. */
  private writesHeld?: string;

  /** Refuses every write to rks's KV and policies with `reason` (LayoutNewer), or allows them again (undefined). */
  holdWrites(reason: string | undefined): void {
    this.writesHeld = reason;
  }

  /** The address rks sends to now (the first one until it knows better). */
  get addr(): string {
    return (this.active ?? this.endpoints[0]).addr;
  }

  get addrs(): string[] {
    return this.endpoints.map((e) => e.addr);
  }

  /**
   * Calls `/v1/<path>`. Resolves with Vault's JSON body (or `undefined` for 204). Rejects with
   * VaultError for a Vault answer and ServiceUnavailable (with Retry-After) when no Vault node
   * can answer within the deadline.
   */
  async call<T = any>(method: Method, path: string, opts: CallOptions): Promise<T> {
    if (this.writesHeld && method !== 'GET' && method !== 'LIST' && HELD_WRITES.test(path)) throw new LayoutNewer(this.writesHeld);
    if (this.inFlight >= this.maxInFlight) {
      this.busy?.inc();
      throw new ServiceUnavailable('too many requests are waiting on vault', 1);
    }
    this.inFlight++;
    const operation = opts.operation ?? method;
    const started = process.hrtime.bigint();
    const deadline = Date.now() + this.timeoutMs;
    let status = 'error';
    try {
      const answer = await this.attempt(method, path, opts, deadline);
      status = answer.status < 300 ? '2xx' : String(answer.status);
      if (answer.status >= 300) {
        const errors = Array.isArray(answer.body?.errors) ? (answer.body.errors as unknown[]).map(String) : [];
        throw new VaultError(answer.status, errors, operation);
      }
      return answer.body as T;
    } finally {
      this.inFlight--;
      this.latency?.observe({ operation, status }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** Sends until an answer that is Vault's to give, failing over between addresses, within the deadline. */
  private async attempt(method: Method, path: string, opts: CallOptions, deadline: number): Promise<{ status: number; body: any }> {
    const idempotent = opts.idempotent ?? (method === 'GET' || method === 'LIST' || method === 'PUT' || method === 'DELETE');
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers['X-Vault-Token'] = opts.token;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const listing = method === 'LIST';
    const request: Dispatcher.RequestOptions = {
      path: `/v1/${path}${listing ? '?list=true' : ''}`,
      method: listing ? 'GET' : method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    };
    // Bounded, so two standbys pointing at each other during an election cannot spin until the deadline.
    for (let tries = 0; tries <= 2 * this.endpoints.length; tries++) {
      const target = this.active ?? (await this.discover(deadline));
      if (!target) throw new ServiceUnavailable('no active vault node', 2);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw this.timedOut();
      let res: Dispatcher.ResponseData;
      try {
        res = await target.pool.request({ ...request, signal: AbortSignal.timeout(remaining) });
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if ((err as Error).name === 'TimeoutError' || code === 'UND_ERR_ABORTED') {
          // A node that holds requests past the deadline may be frozen: look again, in the background.
          if (this.endpoints.length > 1) this.lost(target, 'unknown');
          throw this.timedOut();
        }
        this.lost(target, 'unreachable');
        if (this.endpoints.length === 1) throw new ServiceUnavailable('vault is unreachable', 1);
        if (NOT_SENT.has(code)) continue;
        if (idempotent) {
          opts.onResend?.();
          continue;
        }
        throw new ServiceUnavailable('vault closed the connection before answering', 1);
      }
      const text = await res.body.text().catch(() => '');
      let body: any;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      if (res.statusCode === 307 || res.statusCode === 308) {
        // A standby's redirect to the active node; with one address rks does not follow it (the
        // token would go to an address nobody configured).
        if (this.endpoints.length === 1) throw new ServiceUnavailable('vault answered from a standby node: give rks every node\'s address', 1);
      }
      if (this.endpoints.length > 1 && this.notActive(res.statusCode, body)) {
        // A standby (307 to the active), a sealed node or one between leaders: the request was not served.
        this.lost(target, res.statusCode === 503 && /sealed/i.test(String(body?.errors)) ? 'sealed' : 'standby', res.headers.location);
        continue;
      }
      return { status: res.statusCode, body };
    }
    throw new ServiceUnavailable('no active vault node', 2);
  }

  private notActive(status: number, body: any): boolean {
    if (status === 307 || status === 308) return true;
    if (status !== 500 && status !== 503 && status !== 429) return false;
    const errors = Array.isArray(body?.errors) ? body.errors.join(' ') : '';
    return status === 429 ? !errors : NOT_ACTIVE.some((re) => re.test(errors));
  }

  private timedOut(): ServiceUnavailable {
    return new ServiceUnavailable(`vault did not answer within ${this.timeoutMs / 1000}s`, 1);
  }

  /** `target` cannot serve now; a redirect may name the active node. */
  private lost(target: Endpoint, state: NodeState, location?: string | string[]): void {
    target.state = state;
    if (this.endpoints.length === 1) return;
    const named = typeof location === 'string' ? this.endpoints.find((e) => e !== target && location.startsWith(e.addr + '/')) : undefined;
    if (this.active === target) this.setActive(named);
  }

  private setActive(next: Endpoint | undefined): void {
    if (this.active === next) return;
    this.active = next;
    if (next) {
      if (this.lastActive && next !== this.lastActive) this.failovers?.inc();
      this.lastActive = next;
      next.state = 'active';
    }
    this.publishActive();
  }

  private publishActive(): void {
    this.endpoints.forEach((e, i) => this.activeGauge?.set({ node: String(i + 1) }, e === this.active ? 1 : 0));
  }

  /** Asks every address which one is active (single flight); fails fast while none is. */
  private discover(deadline: number): Promise<Endpoint | undefined> {
    if (this.active) return Promise.resolve(this.active);
    if (Date.now() < this.noActiveUntil) return Promise.resolve(undefined);
    this.discovering ??= this.probeAll(Math.max(100, Math.min(1000, deadline - Date.now()))).finally(() => (this.discovering = undefined));
    return this.discovering;
  }

  private async probeAll(timeoutMs: number): Promise<Endpoint | undefined> {
    const states = await Promise.all(this.endpoints.map((e) => this.probe(e, timeoutMs)));
    this.endpoints.forEach((e, i) => (e.state = states[i]));
    const active = await this.trueActive(timeoutMs);
    if (!active) this.noActiveUntil = Date.now() + NO_ACTIVE_HOLD_MS;
    if (!this.active) this.setActive(active);
    return this.active;
  }

  /**
   * The node answering as active; when several do (a former active node, thawed after a
   * freeze, can go on saying so beside the new one), the one the others name as leader.
   */
  private async trueActive(timeoutMs: number): Promise<Endpoint | undefined> {
    const claiming = this.endpoints.filter((e) => e.state === 'active');
    if (claiming.length <= 1) return claiming[0];
    const named = await Promise.all(
      this.endpoints.map(async (e) => {
        try {
          const res = await e.pool.request({ path: '/v1/sys/leader', method: 'GET', signal: AbortSignal.timeout(timeoutMs) });
          const body = (await res.body.json()) as { leader_address?: string; is_self?: boolean };
          return body.is_self ? undefined : body.leader_address?.replace(/\/+$/, '');
        } catch {
          return undefined;
        }
      }),
    );
    const votes = claiming.map((c) => named.filter((n) => n === c.addr).length);
    const best = Math.max(...votes);
    for (const [i, c] of claiming.entries()) if (votes[i] !== best) c.state = 'standby';
    return claiming[votes.indexOf(best)];
  }

  private async probe(e: Endpoint, timeoutMs: number): Promise<NodeState> {
    try {
      const res = await e.pool.request({ path: HEALTH_PATH, method: 'GET', signal: AbortSignal.timeout(timeoutMs) });
      await res.body.dump();
      switch (res.statusCode) {
        case 200:
          return 'active';
        case 429:
          return 'standby';
        case 473:
          return 'perfstandby';
        case 501:
          return 'uninitialised';
        case 503:
          return 'sealed';
        default:
          return 'unknown';
      }
    } catch {
      return 'unreachable';
    }
  }

  /**
   * Every address's state, asked now (at most `timeoutMs`), and the address rks will use. With
   * several addresses an active node found here becomes the one rks sends to.
   */
  async status(timeoutMs = 1000): Promise<VaultStatus> {
    const states = await Promise.all(this.endpoints.map((e) => this.probe(e, timeoutMs)));
    this.endpoints.forEach((e, i) => (e.state = states[i]));
    if (this.endpoints.length > 1) {
      const active = await this.trueActive(timeoutMs);
      if (!this.active || this.active.state !== 'active') this.setActive(active);
    }
    const usable: NodeState[] = this.endpoints.length === 1 ? ['active', 'standby', 'perfstandby'] : ['active'];
    const active = this.active && usable.includes(this.active.state) ? this.active.addr : undefined;
    return { ...(active ? { active } : {}), nodes: this.endpoints.map((e) => ({ addr: e.addr, state: e.state })) };
  }

  /** Vault's health without a token, as the address in use sees it; never throws. */
  async health(timeoutMs = 1000): Promise<VaultHealth> {
    const target = this.active ?? this.endpoints[0];
    try {
      const res = await target.pool.request({
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
        ...(typeof b.cluster_id === 'string' && b.cluster_id ? { clusterId: b.cluster_id } : {}),
      };
    } catch {
      return { reachable: false };
    }
  }

  close(): void {
    for (const e of this.endpoints) void e.pool.destroy();
  }
}

/** True when `err` is Vault answering `status` (and, if given, a reason containing `text`). */
export function isVaultError(err: unknown, status: number, text?: string): err is VaultError {
  return (
    err instanceof VaultError &&
    err.status === status &&
    (text === undefined || err.errors.some((e) => e.includes(text)))
  );
}

// What a refusal means, for the services above, which branch on what happened and not on
// Vault's HTTP statuses.

/** The token may not do this (403): no policy grants it, or the token is dead. */
export function isDenied(err: unknown): err is VaultError {
  return isVaultError(err, 403);
}

/** Vault refused the request itself (400): a CSR its CA will not sign, a role that no longer exists. */
export function isRefused(err: unknown): err is VaultError {
  return isVaultError(err, 400);
}

/** No KV mount to read yet: 404 to root (no handler for the route), 400 while a new one is still upgrading. */
export function isNoMount(err: unknown): err is VaultError {
  return isVaultError(err, 404) || isVaultError(err, 400);
}

/** A KV mount made a moment ago, still upgrading (or Vault not ready yet): worth trying again shortly. */
export function isUpgrading(err: unknown): err is VaultError {
  return isVaultError(err, 400, 'pgrading') || isVaultError(err, 503);
}

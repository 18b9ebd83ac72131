import { X509Certificate } from 'node:crypto';
import type { Tell } from './events';
import { HeldKeys, NodeSecret } from './held';
import { HttpError } from './transport';
import type { SecretAnswer } from './wire';

/** Names whose failures are remembered at once (the oldest forgotten first). */
export const MAX_FAILURES = 10_000;
/** Fetches in flight at once when rks cannot tell which names the node may read (a classic RKS). */
const MAX_BLIND_FETCHES = 32;
/** Replaced keys fetched anew at once. */
const REFETCH_CONCURRENCY = 8;
/** Answers to a key's fetch that mean this node may not have it (any more). */
const REFUSED_STATUS = new Set([403, 404, 410]);

/**
 * How long a key handed on is left before it is fetched again, within its TTL. Names loaded
 * together are first fetched again at times spread over most of the TTL, then each at a steady
 * period of its own: the rate stays flat, with no burst a TTL after a load.
 */
export function handOffMs(ttlSeconds: number, reload: boolean): number {
  return ttlSeconds * 1000 * (reload ? 0.72 + Math.random() * 0.06 : 0.05 + Math.random() * 0.7);
}

interface Failure {
  until: number;
  delay: number;
  status?: number;
}

export interface KeysOptions {
  /** Keys handed on rather than kept (see RksNodeOptions.handOff). */
  handOff?: boolean;
  /** First and largest wait after a failure, in milliseconds. */
  backoffMs?: { min: number; max: number };
}

/** What the keys need to know of the node's list. */
export interface Listed {
  /** Whether rks, as last heard, lets this node serve `name` (always, when rks cannot say). */
  allows(name: string): boolean;
  /** rks cannot say which names this node may read (a classic RKS). */
  readonly blind: boolean;
}

/**
 * The node's keys: fetched when asked for, one request however many wait for a name, held
 * until their time, backed off after a failure, fetched anew when rks says it replaced them.
 */
export class Keys {
  readonly held = new HeldKeys((name) => this.due(name));
  private readonly inflight = new Map<string, Promise<NodeSecret | null>>();
  private readonly failures = new Map<string, Failure>();
  /** Held keys rks said were replaced (or may have been): fetched anew at the next revalidation. */
  private readonly stale = new Set<string>();
  /** Handed on: names whose time came, until fetched again (see handOffMs). */
  private readonly reloads = new Set<string>();
  /** Moves when rks says a name's key changed: a fetch that began before brings the old one. */
  private readonly generations = new Map<string, number>();

  /** `get(path)`: a node's GET to rks, with its token. */
  constructor(
    private readonly get: <T>(path: string) => Promise<T>,
    private readonly listed: Listed,
    private readonly opts: KeysOptions,
    private readonly tell: Tell,
  ) {}

  /** One name, exactly as stored in rks (`www.example.com`, `*.example.com`). */
  secret(name: string): Promise<NodeSecret | null> {
    const key = this.held.key(name);
    if (key) return Promise.resolve(key);
    if (this.held.overdue(name) && this.held.drop(name)) this.tell('expired', { name });
    const failed = this.failures.get(name);
    if (failed && failed.until > Date.now()) return Promise.resolve(null);
    let pending = this.inflight.get(name);
    if (!pending && this.listed.blind && this.inflight.size >= MAX_BLIND_FETCHES) return Promise.resolve(null);
    if (!pending) {
      pending = this.fetch(name).finally(() => this.inflight.delete(name));
      this.inflight.set(name, pending);
    }
    return pending;
  }

  /** Drops the keys `which` picks, told as revoked for `reason`. */
  revoke(which: (name: string) => boolean, reason: string): void {
    const names = this.held.names().filter(which);
    for (const name of names) this.held.drop(name);
    if (names.length) this.tell('revoked', { names, reason });
  }

  /** rks said `name`'s key changed: one held (or on its way) is not the one rks has now. */
  changed(name: string): void {
    if (!this.held.has(name) && !this.inflight.has(name)) return;
    this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
    if (this.generations.size > MAX_FAILURES) this.generations.delete(this.generations.keys().next().value!);
    if (this.held.has(name)) this.stale.add(name);
  }

  /** rks cannot say what changed: every key held or on its way may have been replaced. */
  allChanged(): void {
    for (const n of [...this.held.names(), ...this.inflight.keys()]) this.changed(n);
  }

  /**
   * Fetches anew the held keys rks replaced, a few at a time, and swaps each in as it comes: a
   * name refused now goes; one rks cannot give now (unreachable) keeps its key until its TTL
   * and is tried again at the next revalidation.
   */
  async refetchStale(): Promise<void> {
    const names = [...this.stale].filter((n) => this.held.has(n) && this.listed.allows(n));
    this.stale.clear();
    // Handed on: whoever holds the keys fetches them again.
    if (this.opts.handOff) {
      if (names.length) this.tell('replaced', { names: names.sort() });
      return;
    }
    const swapped: string[] = [];
    const queue = [...names];
    await Promise.all(
      Array.from({ length: Math.min(REFETCH_CONCURRENCY, queue.length) }, async () => {
        for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
          this.failures.delete(name);
          const secret = await this.fetch(name);
          if (secret) swapped.push(name);
          else if (REFUSED_STATUS.has(this.failures.get(name)?.status ?? 0)) this.revoke((n) => n === name, 'rks no longer gives it to this node');
          else if (this.held.has(name)) this.stale.add(name);
        }
      }),
    );
    if (swapped.length) this.tell('replaced', { names: swapped.sort() });
  }

  clear(): void {
    this.held.clear();
  }

  private async fetch(name: string, again = true): Promise<NodeSecret | null> {
    const started = Date.now();
    const generation = this.generations.get(name);
    try {
      const { data } = await this.get<SecretAnswer>(`/rks/v1/secret/${encodeURIComponent(name)}`);
      // rks said the key changed while this fetch was on its way: it may bring the old one.
      if (again && this.generations.get(name) !== generation) return this.fetch(name, false);
      // Kept for its TTL, and never past the certificate's own end.
      const notAfter = Date.parse(new X509Certificate(data.certificate).validTo);
      if (!Number.isFinite(notAfter)) throw new Error(`the certificate of ${name} has no end date this node can read`);
      const ttl = Math.max(1, Math.min(Number(data.meta?.ttl) || 1, Math.floor((notAfter - Date.now()) / 1000)));
      const secret: NodeSecret = { name, certificate: data.certificate, privateKey: data.private_key, ttl, expiresAt: Date.now() + ttl * 1000 };
      // A key fetched anew takes the place of the one held: new handshakes get it.
      if (this.opts.handOff) this.held.hold(name, null, Date.now() + handOffMs(ttl, this.reloads.delete(name)));
      else this.held.hold(name, secret, secret.expiresAt);
      this.failures.delete(name);
      this.tell('fetched', { name, ttl, ms: Date.now() - started });
      return secret;
    } catch (err) {
      // Fetched again later as a first load, not as a reload that is due.
      this.reloads.delete(name);
      const status = err instanceof HttpError ? err.status : undefined;
      if (err instanceof HttpError && ['forbidden', 'not_found', 'certificate_expired'].includes(err.code)) this.tell('refused', { name, status: err.status });
      else this.tell('error', err as Error);
      this.backoff(name, status);
      return null;
    }
  }

  /** A name's time came (it is no longer held): told as expired; one handed on is then due again. */
  private due(name: string): void {
    if (this.opts.handOff) this.reloads.add(name);
    this.tell('expired', { name });
  }

  private backoff(name: string, status?: number): void {
    const { min, max } = this.opts.backoffMs ?? { min: 1000, max: 60_000 };
    const previous = this.failures.get(name);
    const delay = previous ? Math.min(previous.delay * 2, max) : min;
    this.failures.delete(name);
    if (this.failures.size >= MAX_FAILURES) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(name, { until: Date.now() + delay, delay, status });
  }
}
